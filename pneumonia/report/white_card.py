"""The model card's section on opacity as evidence: a white lung is not NORMAL (rules.WHITE_RULE)."""
from __future__ import annotations

from pneumonia.rules import WHITE_RULE

SETS = ("validation children", "test children", "adults, report parts", "adults, report parts, rsna opacity",
        "adults, report parts, nih opacity", "adults, report parts, bimcv opacity")


def _v(x) -> str:
    return "-" if x is None else f"{x:.2f}"


def _choice_rows(name: str, r: dict) -> list[str]:
    """Validation: the served last layer before, and the one chosen (or none)."""
    rows = []
    for label, row in (("before", r["served"]), ("chosen", r["chosen"])):
        if row is None:
            rows.append(f"| {name}, {label} | nothing met the conditions: unchanged | | | | |")
            continue
        e = row["edits"]
        setting = "" if label == "before" else f" (paint s {row['strength']}, share {row['share']}, C {row['C']})"
        quality = f"ROC AUC {row['auc']:.3f}" if "auc" in row else f"worst source {row['score']:.3f}"
        rows.append(f"| {name}, {label}{setting} | {_v(e['white_normal_0.85'])} / {_v(e['white_normal_1.0'])} "
                    f"| {_v(e['white_disease_stays_0.85'])} / {_v(e['white_disease_stays_1.0'])} "
                    f"| {_v(e['darker_lung_stays'])} / {_v(e['contrast_stays'])} / {_v(e['rib_band_stays'])} "
                    f"| {_v(e['painted_called'])} | {quality} |")
    return rows


def _served_rows(m: dict) -> list[str]:
    rows = []
    for name in SETS:
        r = m.get(name)
        if not r:
            continue
        w = [r[f"white_{s}"] for s in ("0.5", "0.85", "1.0")]
        shown = "normal adults (Shenzhen, Montgomery, JSRT report parts)" if name == "adults, report parts" else name
        rows.append(f"| {shown} | {r['n_normal']} / {r['n_disease']} "
                    f"| {' / '.join(_v(x['normal_called_pneumonia']) for x in w)} "
                    f"| {' / '.join(_v(x['disease_stays']) for x in w)} | {' / '.join(_v(x['answered']) for x in w)} "
                    f"| {' / '.join(_v(r.get(k + '_stays')) for k in ('darker_lung', 'contrast', 'rib_band'))} |")
    return rows


def white_lines(config: dict, metrics: dict) -> list[str]:
    """The section, or nothing for a folder whose last layers were not refitted for it."""
    cfg, m = config.get("white_lung"), metrics.get("white_lung")
    if not cfg:
        return []
    lines = ["## A white lung is not NORMAL: opacity as evidence", "",
             *rule_lines(config.get("opacity_rule")), *overlay_lines(cfg.get("reader_overlays")),
             *consistency_lines(cfg.get("reader_consistency")),
             ("**The refit (steps 1-7), served in one revision and withdrawn by step 8.** " if
              (config.get("opacity_rule") or {}).get("layer") == "before" else "") +
             "The Kermany children's pneumonias are mostly patchy; nothing in them told the model that a lung "
             "with no air in it is abnormal. The last layers (the children's and the adult reader's; the networks "
             "unchanged) were refitted with NORMAL training films given painted opacities (consolidation, "
             "effusion, haze, patchy) and counted as PNEUMONIA. One family, one lung whitened toward the "
             "mediastinum's grey, was kept out of every fit and ranking and judges the result; painted "
             "*non*-opacities (a darker lung, raised contrast, a bright rib band) check that the painter's "
             "signature was not learnt instead.", "",
             "Validation (what chose it): whitened NORMAL films called PNEUMONIA at 85% / 100%, films with the "
             "disease still PNEUMONIA whitened, NORMAL films still NORMAL under each non-opacity, painted "
             "validation normals called PNEUMONIA:", "",
             "| last layer | whitened normal -> PNEUMONIA | disease stays | non-opacities stay NORMAL | painted "
             "-> PNEUMONIA | quality |", "|---|---|---|---|---|---|"]
    lines += _choice_rows("children", cfg["children"]) + _choice_rows("adult reader", cfg["adults"]) + [""]
    first = cfg.get("first_run")
    if first:
        best = max((r["auc_stressed"] for r in first["children"]["candidates"] if r["share"] > 0), default=None)
        lines += [f"A first run fitted on clean films only (before the rule's step 7): no painted children's candidate "
                  f"kept the stressed validation ROC AUC (at best {_v(best)} against "
                  f"{first['children']['served']['auc_stressed']:.3f}) and no adult candidate met the conditions.", ""]
    int8 = config.get("runtime", {}).get("int8", {}).get("white_lung_head")
    if int8:
        lines += [f"The int8 classifier judged again with the new layer: decisions agree {int8['decisions_agree']:.4f}, "
                  f"99th percentile of the probability change {int8['dp_p99']:.4f}: "
                  f"{'passes' if int8['passes'] else 'misses'} the precision bar"
                  f"{'' if int8['passes'] else ', so the classifier is served at fp32 (bf16 where the CPU computes in it)'}.", ""]
    if m:
        lines += ["Through the served model (`bench/white_lung.py`; validation part and test split / report parts; "
                  "one lung whitened at 50% / 85% / 100%):", "",
                  "| set | normal / disease films | whitened normal -> PNEUMONIA | disease stays PNEUMONIA "
                  "| answered | non-opacities stay NORMAL |", "|---|---|---|---|---|---|", *_served_rows(m), ""]
        o, s = m.get("opaque test pneumonia"), m.get("swap test (test split)")
        if o:
            lines.append(f"The {o['n']} test PNEUMONIA films with the most opaque lung (by the lung finder): "
                         f"{o['called_pneumonia']:.0%} called PNEUMONIA.")
        if s:
            lines.append(f"Swap test on those test films with this last layer: lungs AUC {s['swap_lungs_auc']:.3f}, "
                         f"surroundings {s['swap_surroundings_auc']:.3f} (goals >= 0.90, <= 0.65).")
        lines.append("")
    return lines + [f"Rule (written and committed before the run it judged): {WHITE_RULE}", ""]


def _rule_row(name: str, r: dict) -> str:
    w = [r[f"white_{k}"] for k in ("0.5", "0.85", "1.0")]
    stays = " / ".join(_v(r.get(k + "_stays")) for k in ("darker_lung", "contrast", "rib_band"))
    return (f"| {name} | {' / '.join(_v(x['normal_called_pneumonia']) for x in w)} "
            f"| {' / '.join(_v(x['disease_stays']) for x in w[1:])} | {stays} "
            f"| {r['auc']:.4f} | {r['clean']['normal_called_normal']:.3f} |")


def rule_lines(rule: dict | None) -> list[str]:
    """WHITE_RULE (8): the lung-density rule and the last layer chosen again with it (nothing without one)."""
    if not rule:
        return []
    r, tops = rule["rule"], rule["percentile_99_5"]
    worst = max(tops, key=tops.get)
    chosen = {"before": "the last layer served before the refit (its threshold, temperature, routing and int8 "
                        "judgement back); the refit described further down is no longer served",
              "refit": "the refit described further down", None: "neither: nothing shipped"}[rule["layer"]]
    lines = ["**Opacity measured on the film (served).** Each lung the lung finder finds has a *density*: where its "
             "median grey sits between the lungs' darkest grey and the mediastinum's (about 0.3 for an aerated lung, "
             "about 1 for a lung as dense as the tissue between the lungs); being a ratio of one film's greys, it does "
             f"not move with contrast or brightness. A lung at or above **{r['threshold']:.2f}** is opaque: the "
             f"largest 99.5th percentile of the validation normals of any set ({worst}, {tops[worst]:.2f}) plus "
             f"0.10 for hospitals not seen. Of the {r['n']} validation films with a lung that dense, {r['k']} had the "
             f"disease, so an opaque film's P(PNEUMONIA) is at least (k + 1) / (n + 2) = **{r['probability']:.3f}**, "
             "and the answer says the rule decided. This rule (WHITE_RULE step 8) was written after the refit's test "
             "numbers below had been read (it had lost accuracy, specificity and calibration on this hospital's test "
             f"split): disclosed. With it, the children's last layer was chosen again on validation: {chosen}.", "",
             "| validation children, with the rule | whitened normal -> PNEUMONIA 50% / 85% / 100% | disease stays "
             "85% / 100% | normals stay NORMAL: darker lung / contrast / rib band | ROC AUC | specificity |",
             "|---|---|---|---|---|---|"]
    names = {"before": "layer before the refit", "refit": "refitted layer"}
    lines += [_rule_row(names[k] + (" (**chosen**)" if k == rule["layer"] else ""), v) for k, v in rule["children"].items()]
    adults = rule.get("adults") or {}
    if adults:
        lines += ["", "| adults' validation part, with the rule | normal / opacity films | whitened normal -> "
                  "PNEUMONIA 50% / 85% / 100% | normals called NORMAL without / with the rule |", "|---|---|---|---|"]
        for src, a in adults.items():
            w = " / ".join(_v(a[f"white_{k}"]["normal_called_pneumonia"]) for k in ("0.5", "0.85", "1.0"))
            lines.append(f"| {src} | {a['n_normal']} / {a['n_disease']} | {w if a['n_normal'] else '-'} "
                         f"| {_v(a['specificity_without_rule'])} / {_v(a['clean']['normal_called_normal'])} |")
    return lines + [""]


def _stays(st: dict) -> str:
    return " / ".join(_v(st.get(k)) for k in ("darker_lung", "contrast", "rib_band"))


def overlay_lines(r: dict | None) -> list[str]:
    """WHITE_RULE (9): the adult reader's last layer refitted with label-kept overlays (nothing without a record)."""
    if not r:
        return []
    lines = ["**The adult reader and bright structures (step 9).** A bright band across a normal adult's lungs (a "
             "rib's shadow) moved the adult reader's answers from NORMAL into can't tell. Its last layer was refitted "
             "(the network unchanged) with one more view of every fit film, of both classes, its label kept: oblique "
             "bright bands inside one lung and thin curved lines (tubes, leads) across the film; the check's "
             "horizontal band was never drawn. Validation (the reader alone; of Shenzhen, Montgomery and JSRT "
             "normals called NORMAL, the share still NORMAL under each non-opacity):", "",
             "| adult reader's last layer | overlays' share, C | worst source (ADULT_RULE 3) | answered "
             "| stay NORMAL: darker lung / contrast / rib band |", "|---|---|---|---|---|",
             f"| served before | - | {r['served']['score']:.3f} | {r['served']['answered']:.2f} "
             f"| {_stays(r['served']['stays'])} |"]
    for c in r["candidates"]:
        mark = " (**chosen**)" if r["chosen"] and (c["share"], c["C"]) == (r["chosen"]["share"], r["chosen"]["C"]) else ""
        lines.append(f"| refit{mark} | {c['share']}, {c['C']} | {c['score']:.3f} | {c['answered']:.2f} "
                     f"| {_stays(c['stays'])} |")
    lines += ["", "Through the served path on those validation normals (the density rule on; whitened 50% / 85% / "
              "100% called PNEUMONIA, answered, non-opacities stay NORMAL):", ""]
    for name, row in [("served before", r["served_path"])] + [
            (f"refit {c['share']}, {c['C']}", c["served_path"]) for c in r["candidates"] if c.get("served_path")]:
        w = [row[f"white_{k}"] for k in ("0.5", "0.85", "1.0")]
        lines.append(f"- {name}: {' / '.join(_v(x['normal_called_pneumonia']) for x in w)}; answered "
                     f"{' / '.join(_v(x['answered']) for x in w)}; "
                     f"{_stays({k: row.get(k + '_stays') for k in ('darker_lung', 'contrast', 'rib_band')})}"
                     f"{' (meets)' if row.get('meets') else ''}")
    verdict = ("none met every condition: step 9 shipped nothing" if not r["chosen"] else
               f"served: share {r['chosen']['share']}, C {r['chosen']['C']} (threshold {r['chosen']['threshold']:.3f}, "
               f"temperature {r['chosen']['temperature']:.3f}, can't tell [{r['chosen']['low']:.3f}, "
               f"{r['chosen']['high']:.3f}), routing {r['chosen']['routing']['routing']})")
    return lines + ["", f"Step 9 was written after the report parts' rib-band number had been read (disclosed). "
                        f"Result: {verdict}.", ""]


def consistency_lines(r: dict | None) -> list[str]:
    """WHITE_RULE (10): the adult reader's last block fine-tuned in pairs (nothing without a record)."""
    if not r:
        return []
    lines = ["**The adult reader's last block taught to ignore them (step 10).** The refit above moves only the last "
             "layer on features that still see the band. So the last block of the reader's network (conv5_block3) "
             "and its last layer were fine-tuned from the served reader on pairs, each fit film and its overlaid "
             "copy (the same overlays, label kept), the loss asking both for the right class and the same logit; "
             "5 epochs, each judged on validation (the reader alone; the same three sources' normals):", "",
             "| epoch | worst source (ADULT_RULE 3) | answered | threshold | can't tell | stay NORMAL: darker lung / "
             "contrast / rib band |", "|---|---|---|---|---|---|"]
    for h in r["history"]:
        name = "0 (served before)" if h["epoch"] == 0 else str(h["epoch"])
        mark = " (**kept**)" if h["epoch"] == r["kept"] else ""
        lines.append(f"| {name}{mark} | {h['score']:.3f} ({h['where']}) | {h['answered']:.2f} | {h['threshold']:.3f} "
                     f"| [{h['band']['low']:.3f}, {h['band']['high']:.3f}) | {_stays(h['stays'])} |")
    row = r.get("served_path")
    if row:
        w = [row[f"white_{k}"] for k in ("0.5", "0.85", "1.0")]
        lines += ["", f"Exported and served (tuberculosis line refitted on its features, routing chosen again: "
                      f"{row['routing']}), on those validation normals through the served path: whitened 50% / 85% / "
                      f"100% called PNEUMONIA {' / '.join(_v(x['normal_called_pneumonia']) for x in w)}, answered "
                      f"{' / '.join(_v(x['answered']) for x in w)}; non-opacities stay NORMAL "
                      f"{_stays({k: row.get(k + '_stays') for k in ('darker_lung', 'contrast', 'rib_band')})}: "
                      f"{'every condition met, served' if r.get('shipped') else 'a condition missed, not served'}."]
    return lines + ["", "Step 10 was written after step 9's validation table had been read (disclosed); no report "
                        "number chose anything.", ""]
