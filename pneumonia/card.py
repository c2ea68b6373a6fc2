"""The Hugging Face model card (README.md of the model folder), from
config.json and metrics.json, so its numbers can't drift from the files."""
from __future__ import annotations

import json
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .config import CARD_FILE, DATASET_CITATION, DATASET_PAPER, DISCLAIMER, LUNG_BLUR
from .figures import FIGURES

DATASET_ID = "paultimothymooney/chest-xray-pneumonia"
# keras.applications' ImageNet weights are not on the Hub; this is the Keras
# team's ResNet-50 ImageNet checkpoint there, named for discoverability.
BASE_MODEL = "keras/resnet_50_imagenet"
OOD_REPORT_FILE = "ood_report.json"
LUNGS_REPORT_FILE = "lungs_report.json"
# (metric key in metrics.json, model-index type, display name)
CARD_METRICS = [
    ("accuracy", "accuracy", "Accuracy"),
    ("sensitivity", "recall", "Sensitivity (recall)"),
    ("specificity", "specificity", "Specificity"),
    ("precision", "precision", "Precision"),
    ("f1", "f1", "F1"),
    ("roc_auc", "roc_auc", "ROC AUC"),
    ("pr_auc", "pr_auc", "PR AUC"),
    ("brier", "brier_score", "Brier score"),
    ("ece_15", "ece", "ECE (15 bins)"),
]


def metric_values(metrics: dict) -> dict[str, float]:
    """The card's headline numbers: threshold metrics at the stored threshold."""
    flat = {**metrics, **metrics["at_threshold"]}
    return {key: float(flat[key]) for key, _, _ in CARD_METRICS}


def card_data(config: dict, metrics: dict) -> ModelCardData:
    values = metric_values(metrics)
    results = [
        EvalResult(task_type="image-classification", task_name="Pneumonia detection",
                   dataset_type=DATASET_ID, dataset_name="Chest X-Ray Images (Pneumonia)",
                   dataset_split="test", metric_type=mtype, metric_name=name,
                   metric_value=round(values[key], 4))
        for key, mtype, name in CARD_METRICS
    ]
    return ModelCardData(
        # The segmenter learnt from CC BY-NC-SA masks: the folder takes the stricter licence.
        license="cc-by-nc-sa-4.0" if config.get("lungs") else "cc-by-4.0", library_name="keras", pipeline_tag="image-classification",
        tags=["medical-imaging", "chest-x-ray", "pneumonia", "resnet50", "grad-cam", "tensorflow"],
        datasets=[DATASET_ID], base_model=BASE_MODEL,
        metrics=[mtype for _, mtype, _ in CARD_METRICS],
        model_name="pneumonia-resnet50", eval_results=results,
    )


def _row(name: str, value: float, ci: list[float] | None = None) -> str:
    interval = f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else ""
    return f"| {name} | {value:.4f}{interval} |"


def _metric_row(name: str, m: dict) -> str:
    ci, t = m["ci95_at_threshold"], m["at_threshold"]
    return (f"| {name} | {m['n']} | {m['roc_auc']:.3f} [{ci['roc_auc'][0]:.3f}, {ci['roc_auc'][1]:.3f}] "
            f"| {t['sensitivity']:.3f} [{ci['sensitivity'][0]:.3f}, {ci['sensitivity'][1]:.3f}] "
            f"| {t['specificity']:.3f} [{ci['specificity'][0]:.3f}, {ci['specificity'][1]:.3f}] |")


def _population_lines(config: dict, metrics: dict) -> list[str]:
    """Who the answers are valid for: P(adult), the adult head, per hospital."""
    pop, a, p = config.get("population"), metrics.get("adult_transfer"), metrics.get("population")
    if not pop or not a or not p:
        return []
    head = pop["adult_head"]
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
        _metric_row("pediatric test split, as served", metrics),
        _metric_row("pediatric test split, pediatric head only", p["pediatric_head_only"]),
        _metric_row("NIH adults, report part, as served", a["served"]),
        _metric_row("NIH adults, report part, pediatric head only", a["pediatric_head"]),
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


def _ood_lines(config: dict, report: dict | None) -> list[str]:
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


def _lungs_lines(config: dict, report: dict | None) -> list[str]:
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


def _validity_lines(metrics: dict) -> list[str]:
    v = metrics.get("validity")
    if not v:
        return []
    g = v["goals"]
    rows = [("Swap test: AUC against the pasted lungs' label", "swap_lungs_auc", f">= {g['swap_lungs_auc_min']}"),
            ("Swap test: AUC against the surroundings' label", "swap_surroundings_auc",
             f"<= {g['swap_surroundings_auc_max']}"),
            ("AUC with the lungs hidden", "hidden_auc", f"<= {g['hidden_auc_max']}")]
    lines = ["## Where the answers come from", "",
             f"Measured by `pneumonia.validity` (lung masks from {v['masks_from']}; 95% bootstrap "
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


def render(config: dict, metrics: dict, ood_report: dict | None = None,
           lungs_report: dict | None = None) -> str:
    t, ci = metrics["at_threshold"], metrics["ci95_at_threshold"]
    half = metrics["at_0.5"]
    v = config.get("validation", {})
    tr = config.get("training", {})
    cm = t["confusion_matrix"]["rows_true_cols_pred"]
    lines = [
        "# Pneumonia detection on chest X-rays (ResNet50, calibrated, with Grad-CAM)",
        "",
        f"> **{DISCLAIMER}**",
        "",
        "A ResNet50 (ImageNet weights, fine-tuned) that reads a frontal pediatric chest "
        "radiograph and gives the probability of PNEUMONIA, calibrated by temperature "
        "scaling, with a decision threshold fixed on a validation split. The app that "
        "serves it also shows a Grad-CAM heatmap of where the model looked.",
        "",
        "Base model: `keras.applications.ResNet50` with its ImageNet weights (He et al. 2015). "
        f"The metadata's `base_model` ({BASE_MODEL}) is the Keras team's Hub entry for "
        "ResNet-50 on ImageNet; the starting weights were keras.applications' own.",
        "",
        "## Intended use",
        "",
        "Education and research on medical image classification, calibration and "
        "explanation methods. **Not a medical device**: not for diagnosis, screening, "
        "triage or any clinical decision. Trained on children from one hospital; X-rays that look like an "
        "adult's are answered by a last layer retrained with adults, measured per hospital (below).",
        "",
        "## Input and output",
        "",
        f"- Input: RGB pixels in [0, 255], {config['input_size'][0]}x{config['input_size'][1]}; "
        "greyscale radiographs repeated on 3 channels, squashed to size (aspect not kept). "
        "ResNet50's preprocessing runs inside the graph.",
        "- Output: one logit for PNEUMONIA. "
        f"P(PNEUMONIA) = sigmoid(logit / {config['temperature']:.4f}).",
        f"- Decision: PNEUMONIA when P >= {config['threshold']:.4f} "
        f"({config.get('threshold_rule', '')}).",
        *([f"- Serving: the networks exported as {config['runtime']['format']} "
           f"(`{config['runtime']['classifier']}` up to the last conv block, `{config['runtime'].get('segmenter')}`, "
           f"the last layer in `{config['runtime']['head']}`), run forward only by OpenVINO without TensorFlow; "
           "Grad-CAM is computed exactly from the conv block and the last layer. Agreement with the Keras model: "
           "bench/precision.py in the code repository."] if config.get("runtime") else []),
        "",
        "## Results on the official test split",
        "",
        f"{metrics['n']} images ({metrics['n_normal']} NORMAL, {metrics['n_pneumonia']} PNEUMONIA), "
        "at the threshold fixed on validation; 95% bootstrap intervals (2,000 resamples of images).",
        "",
        "| metric | value |",
        "|---|---|",
        _row("Accuracy", t["accuracy"], ci["accuracy"]),
        _row("Sensitivity (recall)", t["sensitivity"], ci["sensitivity"]),
        _row("Specificity", t["specificity"], ci["specificity"]),
        _row("Precision", t["precision"]),
        _row("F1", t["f1"]),
        _row("ROC AUC", metrics["roc_auc"], ci["roc_auc"]),
        _row("PR AUC", metrics["pr_auc"]),
        _row("Brier score", metrics["brier"]),
        _row("ECE (15 bins)", metrics["ece_15"]),
        "",
        f"Confusion matrix (rows true NORMAL / PNEUMONIA, columns predicted): "
        f"`{cm[0]}` / `{cm[1]}`. At a threshold of 0.5 instead: accuracy {half['accuracy']:.4f}, "
        f"sensitivity {half['sensitivity']:.4f}, specificity {half['specificity']:.4f}.",
        "",
        f"![Confusion matrix]({FIGURES['confusion']}) ![ROC]({FIGURES['roc']}) "
        f"![Reliability]({FIGURES['reliability']}) ![Training]({FIGURES['training']})",
        "",
        "## Evaluation protocol",
        "",
        f"- Validation: {v.get('images', '?')} training images of {v.get('patients', '?')} patients "
        f"({v.get('split', '')}); no patient is on both sides. The epoch (best validation ROC AUC), "
        f"the temperature ({config.get('temperature_rule', 'minimum validation NLL')}) and the "
        "threshold were all chosen there."
        + (f" The temperature and threshold were refitted after training by that rule (before: "
           f"T {config['refit']['temperature_before']:.4f}, threshold {config['refit']['threshold_before']:.4f}, "
           f"by {config['refit']['temperature_rule_before']})." if "refit" in config else ""),
        *_selection_lines(config),
        "- The test split was used once, for this report, and never to choose anything.",
        "- Validation drawn from the training hospital data is more optimistic than the test "
        f"split (validation ROC AUC {v.get('auc', float('nan')):.4f}"
        + (f"; {v['auc_stressed']:.4f} on its stressed copies" if v.get("auc_stressed") is not None else "")
        + ").",
        "",
        "## Training",
        "",
        f"- Data: {config['data']['train_images']} training images after the validation carve-out.",
        f"- Phase 1: the head (global average pooling, dropout {tr.get('dropout')}, Dense(1)) on the "
        f"frozen backbone, {tr.get('head_epochs')} epochs, Adam {tr.get('head_lr')}.",
        f"- Phase 2: fine-tuning from {tr.get('fine_tune_from')} with BatchNorm frozen, "
        f"{tr.get('epochs')} epochs, AdamW {tr.get('lr')}, batch {tr.get('batch_size')}; "
        f"kept: {config['best']['phase']} epoch {config['best']['epoch']}.",
        # Folders trained before the augmentation was widened lack the key.
        f"- Augmentation: {tr.get('augmentation', 'rotation, shift, zoom/crop, brightness, contrast, gamma')}; "
        f"{tr.get('views')} augmented views per image cached before the frozen stages, one "
        "drawn per image per epoch. Class imbalance: balanced class weights.",
        f"- TensorFlow {config['versions']['tensorflow']}, Keras {config['versions']['keras']}; "
        f"code commit `{config.get('git_commit', 'unknown')}`; {tr.get('seconds')} s of training on CPU.",
        "",
        *_lungs_lines(config, lungs_report),
        *_validity_lines(metrics),
        *_population_lines(config, metrics),
        *_ood_lines(config, ood_report),
        "## Training data and attribution",
        "",
        f"{DATASET_CITATION} Paper: {DATASET_PAPER} Pediatric patients (1 to 5 years old) "
        "of Guangzhou Women and Children's Medical Center.",
        "",
        "## Limitations",
        "",
        "- One pediatric hospital (plus Shenzhen's children for the age score), adults from three (NIH; "
        "Shenzhen and Montgomery normals only): validity elsewhere (other scanners, other sites) is unknown.",
        "- Labels come from the dataset's graders; bacterial and viral pneumonia are merged.",
        "- Images were downscaled to 224x224 with the aspect ratio lost.",
        f"- The temperature is fitted on the validation split; on the test split the probabilities are "
        f"calibrated less well (ECE {metrics['ece_15']:.3f}, see the reliability diagram).",
        "- The out-of-distribution guard is a statistical check on features, not a guarantee: "
        "unusual X-rays can be refused and some non-X-rays accepted.",
        "- Grad-CAM is coarse (7x7) and shows what drove the score, not where disease is.",
        *(["- Lung masks leave out the heart and the region below the diaphragm: pneumonia hidden "
           "behind the heart is partly outside what the classifier reads.",
           "- The segmenter learnt from adult hand-drawn masks and semi-automatic pediatric ones; "
           "a lung fully whitened by disease can be under-segmented."] if config.get("lungs") else []),
        "",
    ]
    return "\n".join(lines)


def _selection_lines(config: dict) -> list[str]:
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


def write_card(folder: str | Path, config: dict, metrics: dict) -> Path:
    report_path = Path(folder) / OOD_REPORT_FILE
    report = json.loads(report_path.read_text()) if report_path.is_file() else None
    lungs_path = Path(folder) / LUNGS_REPORT_FILE
    lungs = json.loads(lungs_path.read_text()) if lungs_path.is_file() else None
    card = ModelCard(f"---\n{card_data(config, metrics).to_yaml()}\n---\n\n"
                     f"{render(config, metrics, report, lungs)}")
    path = Path(folder) / CARD_FILE
    card.save(path)
    return path
