"""The Hugging Face model card (README.md of the model folder), from
config.json and metrics.json, so its numbers can't drift from the files."""
from __future__ import annotations

import json
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from pneumonia.config import CARD_FILE, DATASET_CITATION, DATASET_PAPER, DISCLAIMER
from pneumonia.rules import RULE_REVISION
from pneumonia.report import sections
from pneumonia.report.figures import FIGURES
from pneumonia.report.reader_card import reader_lines
from pneumonia.report.subtype_lines import subtype_lines
from pneumonia.report.white_card import white_lines

DATASET_ID = "paultimothymooney/chest-xray-pneumonia"
# keras.applications' ImageNet weights are not on the Hub; this is the Keras
# team's ResNet-50 ImageNet checkpoint there, named for discoverability.
BASE_MODEL = "keras/resnet_50_imagenet"
OOD_REPORT_FILE = "ood_report.json"
KERAS_MEASURED = "the Keras model in fp32 (`python -m pneumonia.report.evaluate`)"
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


def test_table_lines(metrics: dict) -> list[str]:
    """The test split's numbers at the operating threshold, 95% intervals where bootstrapped (Markdown rows)."""
    t, ci = metrics["at_threshold"], metrics["ci95_at_threshold"]
    return ["| metric | value |", "|---|---|",
            _row("Accuracy", t["accuracy"], ci["accuracy"]),
            _row("Sensitivity (recall)", t["sensitivity"], ci["sensitivity"]),
            _row("Specificity", t["specificity"], ci["specificity"]),
            _row("Precision", t["precision"]),
            _row("F1", t["f1"]),
            _row("ROC AUC", metrics["roc_auc"], ci["roc_auc"]),
            _row("PR AUC", metrics["pr_auc"]),
            _row("Brier score", metrics["brier"]),
            _row("ECE (15 bins)", metrics["ece_15"])]


def render(config: dict, metrics: dict, ood_report: dict | None = None,
           lungs_report: dict | None = None) -> str:
    t = metrics["at_threshold"]
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
        "adult's are answered " + ("by a second network trained on adults of seven sources, which says \"can't "
        "tell\" where it cannot, measured source by source (below)." if config.get("adult_reader") else
        "by a last layer retrained with adults, measured per hospital (below)."),
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
        *sections.int8_lines(config),
        "",
        "## Results on the official test split",
        "",
        f"{metrics['n']} images ({metrics['n_normal']} NORMAL, {metrics['n_pneumonia']} PNEUMONIA), "
        "at the threshold fixed on validation; 95% bootstrap intervals (2,000 resamples of images). "
        f"Computed with {metrics.get('measured_with', KERAS_MEASURED)}:",
        "",
        *test_table_lines(metrics),
        "",
        *served_lines(metrics.get("served")),
        f"Confusion matrix (rows true NORMAL / PNEUMONIA, columns predicted): "
        f"`{cm[0]}` / `{cm[1]}`. At a threshold of 0.5 instead: accuracy {half['accuracy']:.4f}, "
        f"sensitivity {half['sensitivity']:.4f}, specificity {half['specificity']:.4f}.",
        "",
        f"![Confusion matrix]({FIGURES['confusion']}) ![ROC]({FIGURES['roc']}) "
        f"![Reliability]({FIGURES['reliability']}) ![Training]({FIGURES['training']})",
        "",
        *subtype_lines(config),
        "## Evaluation protocol",
        "",
        f"- Validation: {v.get('images', '?')} training images of {v.get('patients', '?')} patients "
        f"({v.get('split', '')}); no patient is on both sides. The epoch (best validation ROC AUC), "
        f"the temperature ({config.get('temperature_rule', 'minimum validation NLL')}) and the "
        "threshold were all chosen there."
        + (f" The temperature and threshold were refitted after training by that rule (before: "
           f"T {config['refit']['temperature_before']:.4f}, threshold {config['refit']['threshold_before']:.4f}, "
           f"by {config['refit']['temperature_rule_before']})." if "refit" in config else ""),
        *sections.selection_lines(config),
        f"- {RULE_REVISION}",
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
        *sections.lungs_lines(config, lungs_report),
        *sections.validity_lines(metrics),
        *sections.population_lines(config, metrics),
        *reader_lines(config, metrics),
        *white_lines(config, metrics),
        *sections.ood_lines(config, ood_report),
        "## Training data and attribution",
        "",
        f"{DATASET_CITATION} Paper: {DATASET_PAPER} Pediatric patients (1 to 5 years old) "
        "of Guangzhou Women and Children's Medical Center.",
        "",
        "## Limitations",
        "",
        ("- One pediatric hospital (plus Shenzhen's children for the age score); adults from seven sources, "
         "several of one class only: validity elsewhere (other scanners, other sites) is measured only as far "
         "as two sources held out of a second reader go." if config.get("adult_reader") else
         "- One pediatric hospital (plus Shenzhen's children for the age score), adults from three (NIH; "
         "Shenzhen and Montgomery normals only): validity elsewhere (other scanners, other sites) is unknown."),
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


def served_lines(s: dict | None) -> list[str]:
    """The same test split through the app's /predict (bench/served_test.py --record), if measured."""
    if not s:
        return []
    ci = s["ci95"]
    return [f"Through the app's `/predict`, as users get it ({s['n']} answered, {s['refused']} refused; the "
            f"classifier at {s['precision']} on {s['cpu']}; `{s['command']}`): accuracy {s['accuracy']:.3f} "
            f"[{ci['accuracy'][0]:.3f}, {ci['accuracy'][1]:.3f}], sensitivity {s['sensitivity']:.3f}, specificity "
            f"{s['specificity']:.3f}, ROC AUC {s['roc_auc']:.3f}, ECE {s['ece_15']:.3f}.", ""]


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
