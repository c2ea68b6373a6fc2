"""The model card's section on adults: the adult reader, source by source (rules.ADULT_RULE)."""
from __future__ import annotations

from pneumonia.rules import ADULT_RULE


def _pct(v) -> str:
    return "-" if v is None else f"{v:.0%}"


def _findings(r: dict) -> str:
    out = []
    for key in ("tuberculosis films", "nodule films"):
        if key in r:
            out.append(f"{key.split()[0]}: " + ", ".join(f"{d} {s:.0%}" for d, s in r[key].items()))
    return "; ".join(out) or "-"


def reader_lines(config: dict, metrics: dict) -> list[str]:
    """The section, or nothing for a folder without an adult reader."""
    cfg, m = config.get("adult_reader"), metrics.get("adult_reader", {})
    if not cfg:
        return []
    band, routing = cfg["band"], cfg["routing"]
    tuned = ((config.get("white_lung") or {}).get("reader_consistency") or {}).get("shipped")
    lines = [
        "## Adults: the adult reader",
        "",
        f"An X-ray the age score calls an adult's is read by a second ResNet50 (ImageNet start), trained on "
        f"adult X-rays of seven sources, each source the same weight, with augmentations that blur what tells "
        f"hospitals apart; it was chosen by its worst validation source (rule below)"
        + (", and its last block then fine-tuned so that bright bands and lines over the lungs carry no class "
           "(WHITE_RULE step 10, in the white-lung section)" if tuned else "") +
        f". Routing: {routing['routing']} "
        f"(validation log loss {routing['log_loss']['hard']:.4f} hard, {routing['log_loss']['blend']:.4f} blended). "
        f"Its threshold is {cfg['threshold']:.3f} (temperature {cfg['temperature']:.3f}); P(PNEUMONIA) in "
        f"[{band['low']:.3f}, {band['high']:.3f}) is answered \"can't tell\" (UNCERTAIN): the band fixed on "
        "validation so that the answers given are right at least 90% of the time on every source.",
        "",
    ]
    served = m.get("served", {}).get("sources", {})
    if served:
        lines += [f"Report parts (never fitted or chosen on), through the served model (`bench/adult_served.py`, "
                  f"{m['served'].get('cpu', '')}):", "",
                  "| source | films | recognised | answered | normals NORMAL | opacity PNEUMONIA | ROC AUC [95% CI] "
                  "| TB / nodule films called |", "|---|---|---|---|---|---|---|---|"]
        for name, r in served.items():
            auc = (f"{r['roc_auc']:.3f} [{r['roc_auc_ci95'][0]:.3f}, {r['roc_auc_ci95'][1]:.3f}]"
                   if "roc_auc" in r else "-")
            lines.append(f"| {name} | {r['n']} | {_pct(r['recognised'])} | {_pct(r['answered'])} | "
                         f"{_pct(r.get('normals_called_normal'))} | {_pct(r.get('opacity_called_pneumonia'))} | "
                         f"{auc} | {_findings(r)} |")
        lines += ["", "Normals and opacity are counted among the films answered (not \"can't tell\"); a source "
                  "with one class shows no ROC AUC (it cannot show disease against health by itself).", ""]
    held = m.get("held_out", {})
    if held:
        b, j = held.get("bimcv", {}), held.get("jsrt", {})
        lines += ["What a stranger's hospital sees" + (" (by the recipe before step 10; not tuned again)" if tuned else "")
                  + ": a second reader trained by the same recipe with BIMCV (Spain, "
                  "COVID-19) and JSRT (Japan) left out of every part, on all their films: "
                  + (f"BIMCV pneumonia called PNEUMONIA {b['sensitivity'][0]:.3f} [{b['sensitivity'][1]:.3f}, "
                     f"{b['sensitivity'][2]:.3f}] (n {b['sensitivity'][3]}); " if "sensitivity" in b else "")
                  + (f"JSRT normals called NORMAL {j['specificity'][0]:.3f} (n {j['specificity'][3]}); nodules "
                     f"called PNEUMONIA {j['nodules called PNEUMONIA'][0]:.3f}." if "specificity" in j else ""), ""]
    probe = m.get("source_probe")
    if probe:
        lines += [f"How much of the source the features still carry (a linear probe telling the seven sources "
                  f"apart, cross-validated accuracy; chance {probe['chance']:.2f}): ImageNet start "
                  f"{probe['imagenet']:.3f}, the children's network {probe['children_served']:.3f}, the adult "
                  f"reader{' before step 10' if tuned else ''} {probe['adult_reader']:.3f}.", ""]
    sources = cfg.get("sources") or {}
    if sources:
        lines += ["Sources: " + "; ".join(f"{k} ({v})" for k, v in sources.items()) + ". Attribution and terms: "
                  "docs/licences.md in the code repository.", ""]
    return lines + [f"Rule (as written before each run it judged; (7) added before the guard's and gate's refit): "
                    f"{ADULT_RULE}", ""]
