"""The model card's evidence sections (population and adults, guard, lungs, validity, selection), each from config and metrics."""
from __future__ import annotations

from pneumonia.config import LUNG_BLUR


def metric_row(name: str, m: dict) -> str:
    ci, t = m["ci95_at_threshold"], m["at_threshold"]
    return (f"| {name} | {m['n']} | {m['roc_auc']:.3f} [{ci['roc_auc'][0]:.3f}, {ci['roc_auc'][1]:.3f}] "
            f"| {t['sensitivity']:.3f} [{ci['sensitivity'][0]:.3f}, {ci['sensitivity'][1]:.3f}] "
            f"| {t['specificity']:.3f} [{ci['specificity'][0]:.3f}, {ci['specificity'][1]:.3f}] |")


def population_lines(config: dict, metrics: dict) -> list[str]:
    """Who the answers are valid for: P(adult), the adult head, per hospital."""
    pop, a, p = config.get("population"), metrics.get("adult_transfer"), metrics.get("population")
    if not pop or not a or not p:
        return []
    head = pop["adult_head"]
    if config.get("adult_reader"):   # the adult head is not served: the reader answers adults (reader_card)
        return ["## Who the answers are valid for", "",
                f"The model was trained on {pop['trained_on']}. Every X-ray also gets a score, {pop['score']}; above "
                f"{pop['threshold']:.3f} ({pop['threshold_rule']}) the app says the X-ray looks like an adult's, "
                f"above the answer, and the adult reader's share in the answer is P(adult) "
                f"({pop.get('routing', 'hard')}). Adults it was fitted with: {pop['adults'].get('others')}. "
                f"Validation adults past the threshold: {pop['validation_adults_routed']:.1%}; validation children: "
                f"{pop['validation_children_routed']:.1%}.", ""]
    lines = [
        "## Who the answers are valid for",
        "",
        f"The model was trained on {pop['trained_on']}. Every X-ray also gets a score, {pop['score']}; above "
        f"{pop['threshold']:.3f} ({pop['threshold_rule']}) the app says the X-ray looks like an adult's, above "
        f"the answer. Routing: {pop.get('routing', 'hard')} ({pop.get('routing_rule', 'one head answers')}). The "
        f"adult head: {head['rule']}. Parts (by patient): {pop['adults']['images']}. The convolutions are shared.",
        "",
        "| answers | images | ROC AUC [95% CI] | sensitivity | specificity |",
        "|---|---|---|---|---|",
        metric_row("pediatric test split, heads as routed (Keras fp32)", metrics),
        metric_row("pediatric test split, pediatric head only", p["pediatric_head_only"]),
        metric_row("NIH adults, report part, heads as routed (Keras fp32)", a["served"]),
        metric_row("NIH adults, report part, pediatric head only", a["pediatric_head"]),
        "",
        f"{p['n_routed']} of {metrics['n']} test children ({p['routed_to_adult_head']:.1%}) are answered mostly "
        f"by the adult head; {a['routed_to_adult_head']:.1%} of the NIH report part are.",
    ]
    hospitals = {k: v for k, v in a.get("hospitals", {}).items() if isinstance(v, dict)}
    if hospitals:
        lines += ["", "Shenzhen and Montgomery, report part (never fitted or tuned on), at the served thresholds:",
                  "", "| X-rays | n | routed to the adult head | specificity on normals [95% CI] | "
                  "tuberculosis answered PNEUMONIA |", "|---|---|---|---|---|"]
        for name, r in hospitals.items():
            spec = (f"{r['specificity']:.3f} [{r['specificity_ci95'][0]:.3f}, {r['specificity_ci95'][1]:.3f}] "
                    f"(n {r['n_normal']})" if "specificity" in r else "-")
            tb = f"{r['tb_answered_pneumonia']:.1%} (n {r['n_tb']})" if "tb_answered_pneumonia" in r else "-"
            lines.append(f"| {name} | {r['n']} | {r['routed_to_adult_head']:.1%} | {spec} | {tb} |")
    lines += ["", "Adult pneumonia comes from one hospital (NIH, labels mined from reports: noisy) while adult "
              "NORMAL comes from three: the adult head can partly learn the hospital, so its numbers say "
              "\"adults at these hospitals\", not \"adults\", and their intervals are wide.", ""]
    return lines


def ood_lines(config: dict, report: dict | None) -> list[str]:
    ood = config.get("ood")
    if not ood:
        return []
    lines = [
        "## Out-of-distribution guard",
        "",
        f"Images that do not look like a chest X-ray get no diagnosis. Score: {ood['method']} on the "
        f"{ood['features']} features, fitted on {ood['fitted_on']}; threshold {ood['threshold']:.3f} "
        f"({ood['threshold_rule']}). No non-X-ray image was used to fit or tune it.",
        "",
    ]
    if report and "xrays" in report:
        n = report["non_xrays"]
        lines += ["Measured by `bench/ood_report.py` on images never used to fit or tune it:", "",
                  "| images | n | recognised as chest X-rays | of those, looking like an adult's |",
                  "|---|---|---|---|"]
        lines += [f"| {name} | {t['n']} | {t['recognised']:.1%} | {t['looks_adult']:.1%} |"
                  for name, t in report["xrays"].items()]
        lines += [f"| non-X-rays (photos shipped in scikit-image and matplotlib, synthetic images, CT/MR/US/NM "
                  f"images from pydicom's test files) | {n['n']} | {1 - n['refused']:.1%} | |", ""]
    return lines


LUNG_MASK_SOURCES = (
    "Lung masks for training the segmenter: Shenzhen (Shenzhen No. 3 People's Hospital) and Montgomery "
    "County chest X-rays from the U.S. National Library of Medicine (Jaeger et al., Quant Imaging Med Surg "
    "2014;4(6):475-477; Jaeger et al., IEEE TMI 2014;33(2):233-245; Montgomery masks: Candemir et al., IEEE "
    "TMI 2014;33(2):577-590). **The Shenzhen masks (Stirenko et al., IEEE ELNANO 2018, arXiv:1803.01199) are "
    "licensed CC BY-NC-SA 4.0: non-commercial, share-alike.** The segmenter trained on them inherits that "
    "restriction as far as it applies: do not use it commercially. Pediatric masks: semi-automatic masks of "
    "the COVID-19 Radiography Database (Chowdhury et al., IEEE Access 2020; Rahman et al., Comput Biol Med "
    "2021) for viral-pneumonia images of this model's own training split (Kermany et al., CC BY 4.0); their "
    "licence could not be verified."
)


def lungs_lines(config: dict, report: dict | None) -> list[str]:
    lungs = config.get("lungs")
    if not lungs:
        return []
    views = {"crop": "the lungs' bounding box", "crop+mask": "the lungs' bounding box with everything "
             "outside the dilated lung mask set to black", "crop+blur": "the lungs' bounding box with everything "
             f"outside the dilated lung mask blurred (Gaussian, sigma {LUNG_BLUR:.0%} of the side): coarse "
             "context kept, sharp detail only in the lungs"}
    lines = [
        "## Lung segmentation and what the classifier reads",
        "",
        f"A small U-Net (`{lungs['file']}`, Keras, built-in layers only) finds both lung fields on the "
        f"image squashed to 224x224 (read at {lungs['segmenter_input']}x{lungs['segmenter_input']}). "
        "Post-processing keeps the two largest components, fills holes and accepts them only if they form "
        "a plausible pair; otherwise the image is refused (\"No lung fields found\"). The classifier reads "
        f"{views.get(lungs['variant'], lungs['variant'])} (margin {lungs['margin']:.0%} of the box, dilation "
        f"{lungs['dilation']:.0%} of the image side), resized to 224x224, at training and serving alike. "
        f"Training-split images without lungs found, left out: {lungs.get('without_lungs')}.",
        "",
    ]
    if report:
        lines += [f"Segmenter: {report['architecture']}; split {report['split_rule']} "
                  f"({', '.join(f'{k} {v}' for k, v in report['split'].items())}). Held-out hand-drawn masks:", "",
                  "| held out | n | Dice mean | Dice median | Dice min | IoU mean | lungs found |",
                  "|---|---|---|---|---|---|---|"]
        for key, name in (("test_adults", "adults (Shenzhen, Montgomery)"), ("test_children", "children (Shenzhen, 1-17 y)")):
            r = report[key]
            lines.append(f"| {name} | {r['n']} | {r['dice_mean']:.4f} | {r['dice_median']:.4f} | "
                         f"{r['dice_min']:.4f} | {r['iou_mean']:.4f} | {r['found']}/{r['n']} |")
        sheet = report.get("contact_sheet")
        if sheet:
            lines += ["", f"Lungs found on {sheet['test_xrays_lungs_found']} of {sheet['test_xrays']} test-split "
                      "X-rays" + (f" and {sheet['adult_xrays_lungs_found']} of {sheet['adult_xrays']} NIH adults"
                                  if "adult_xrays" in sheet else "") + ".",
                      "", "![Predicted lung outlines](lungs_contact_sheet.jpg)"]
        lines.append("")
    lines += [LUNG_MASK_SOURCES, ""]
    return lines


def validity_lines(metrics: dict) -> list[str]:
    v = metrics.get("validity")
    if not v:
        return []
    g = v["goals"]
    rows = [("Swap test: AUC against the pasted lungs' label", "swap_lungs_auc", f">= {g['swap_lungs_auc_min']}"),
            ("Swap test: AUC against the surroundings' label", "swap_surroundings_auc",
             f"<= {g['swap_surroundings_auc_max']}"),
            ("AUC with the lungs hidden", "hidden_auc", f"<= {g['hidden_auc_max']}")]
    lines = ["## Where the answers come from", "",
             f"Measured by `pneumonia.report.validity` (lung masks from {v['masks_from']}; 95% bootstrap "
             "intervals). Test: reported; validation: what the model was chosen by.", "",
             "| test | test split | validation | goal |", "|---|---|---|---|"]
    t, va = v["test"], v["validation"]

    def cell(r: dict, key: str) -> str:
        ci = r.get("ci95", {}).get(key)
        return f"{r[key]:.3f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")
    lines += [f"| {name} | {cell(t, key)} | {cell(va, key)} | {goal} |" for name, key, goal in rows]
    for cls in ("NORMAL", "PNEUMONIA"):
        lines.append(f"| Share of Grad-CAM mass inside the dilated lungs, {cls} | {t['heat_in_lungs'][cls]:.3f} | "
                     f"| >= {g['heat_in_lungs_min']} |")
    if "pointing_game" in t:
        lines.append(f"| Pointing game: the map's hottest point inside the dilated lungs | "
                     f"{t['pointing_game']['all']:.3f} | | >= {g['pointing_game_min']} |")
    sil = v.get("silhouette")
    if sil:
        lines.append("| Silhouette: AUC of a classifier that sees only the lung view's outline | "
                     f"{sil['test']['auc']:.3f} | {sil['validation']['auc']:.3f} | <= {g['silhouette_auc_max']} |")
    d = t.get("deletion")
    if d:
        lines += ["", f"Deletion curves ({t['deletion_n']} test images; area under the decided class's "
                  "probability as 7x7 cells are removed, lower = the order finds what matters sooner): "
                  f"Grad-CAM order {d['gradcam']['auc']:.3f}, random {d['random']['auc']:.3f}, centre first "
                  f"{d['centre']['auc']:.3f}."]
    r = t.get("road")
    if r:
        lines += ["", "ROAD (noisy linear imputation inside the region the model reads, 10-90% removed most "
                  "relevant first; mean probability of the decided class, lower = the order finds what matters "
                  f"sooner): Grad-CAM {r['gradcam']:.3f}, random {r['random']:.3f}, centre first {r['centre']:.3f}; "
                  f"Grad-CAM minus random {r['gradcam_minus_random']['mean']:+.3f} "
                  f"(95% CI {r['gradcam_minus_random']['ci95'][0]:+.3f} to {r['gradcam_minus_random']['ci95'][1]:+.3f})."]
    lines.append("")
    return lines


def selection_lines(config: dict) -> list[str]:
    """How this model was chosen over the one before it, if it replaced one."""
    sel = config.get("selection")
    if not sel:
        return []
    this, prev = sel["this_model"], sel["previous_model"]
    if "shortfall" not in this:  # the whole-image runs' rule (stressed validation AUC)
        return [f"- Chosen over the previous model by a rule {sel['rule']}: validation ROC AUC "
                f"{this['val_auc']:.4f} (previous {prev['val_auc']:.4f}), on the stressed copies "
                f"{this['val_auc_stressed']:.4f} (previous {prev['val_auc_stressed']:.4f})."
                + (f" {sel['disclosure']}" if sel.get("disclosure") else "")]

    def tests(r: dict) -> str:
        return (f"validation ROC AUC {r['auc']:.4f}, swap test lungs {r['swap_lungs_auc']:.3f} / surroundings "
                f"{r['swap_surroundings_auc']:.3f}, lungs hidden {r['hidden_auc']:.3f}"
                + (f", silhouette {r['silhouette_auc']:.3f}" if "silhouette_auc" in r else "")
                + (f", stressed validation ROC AUC {r['val_auc_stressed']:.4f}" if "val_auc_stressed" in r else "")
                + f" (shortfall {r['shortfall']:.3f})")
    lines = [f"- Selection rule, committed before the runs it judged: {sel['rule']}"]
    for variant, r in (sel.get("probe") or {}).items():
        lines.append(f"  - Probe, lung view `{variant}`: {tests(r)}.")
    lines.append(f"  - This model: {tests(this)}; the previous model: {tests(prev)}. "
                 + ("It replaces it." if sel["replaces_previous"] else "It does not replace it."))
    return lines


def int8_lines(config: dict) -> list[str]:
    """The int8 classifier's line: how it was made and what it keeps, or why there is none."""
    q = (config.get("runtime") or {}).get("int8")
    if not q:
        return []
    if not q.get("passed"):   # none passed, or the one that did missed when judged again with a refitted layer
        why = "missed the bar when judged again with the refitted last layer" if q.get("white_lung_head") else \
            "none passed the precision bar on validation"
        return [f"- int8: tried ({q['rule']}); {why}, so none is served."]
    v = q["validation"]
    return [f"- int8: `{q['classifier']}`, NNCF post-training quantisation calibrated on {q['calibration_views']} "
            f"training-part lung views (clean and stressed), {' + '.join(q['float_stages'])} left in float "
            f"(the {q['rule']}). On {v['n']} validation X-rays against the fp32 export: decisions agree "
            f"{v['decisions_agree']:.2%}, ROC AUC {v['auc_diff']:+.4f}, Grad-CAM correlation "
            f"{v['cam_mean']:.4f} mean / {v['cam_p1']:.4f} 1st percentile, P(PNEUMONIA) change "
            f"{v['dp_p99']:.3f} at the 99th percentile. The app picks among fp32, bf16 (on CPUs that "
            "compute in it) and this int8 at start-up, by the CPU's capabilities and then timing."]
