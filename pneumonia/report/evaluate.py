"""Report a model folder on the test split: metrics.json, figures, model card.

    python -m pneumonia.report.evaluate --model model --data path/to/chest_xray \
        [--segmenter lungs.keras] [--adults path/to/adult_cxr]

The threshold and temperature come from the folder's config (fitted on
validation); the test split is only read here, never used to choose anything.
Besides the usual metrics it measures where the answers come from
(`pneumonia.report.validity`), on test (to report) and on the validation part of
the patient split (the numbers models are chosen by). Lung masks come from the
folder's own segmenter, or from --segmenter for a whole-image model. With
--adults, ROC AUC on adult X-rays from another hospital (report only).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys

import numpy as np

from pneumonia.calibration import decision_logit
from pneumonia.config import HISTORY_FILE, METRICS_FILE
from pneumonia.report import card, faithfulness, figures, validity
from pneumonia.metrics import evaluate_probs
from pneumonia.report.transfer import adult_transfer, compact, routed, served_answers
from pneumonia.serve.heatmap import linear_cam
from pneumonia.serve.lung_view import LungReader
from pneumonia.serve.lungs import postprocess
from pneumonia.train import cli, data
from pneumonia.train.cli import log
from pneumonia.train.gradcam import Activations
from pneumonia.train.model import grey_to_rgb, load_model_folder, pediatric_head
from pneumonia.train.phases import predict_logits
from pneumonia.train.segmenter import keras_reader, load_segmenter


def _masks(geometry, canons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lung masks of the images whose lungs were found, which were found)."""
    lungs = [postprocess(p) for p in geometry.probability(canons)]
    ok = np.asarray([lu.found for lu in lungs])
    return np.stack([lu.mask for lu, k in zip(lungs, ok) if k]), ok


def keras_functions(net, config: dict) -> tuple:
    """(logits, cams) of lung views through a Keras classifier: Grad-CAM as the
    app computes it (from the forward pass), for the class decided at the
    folder's calibrated threshold."""
    threshold_logit = decision_logit(config["temperature"], config["threshold"])
    forward = Activations(net, config.get("last_conv_layer", "conv5_block3_out"))
    head = pediatric_head(net, config)

    def logits(views):
        return predict_logits(net, grey_to_rgb(views), 32)

    def cams(views):
        acts = [forward(grey_to_rgb(views[i:i + 32])) for i in range(0, len(views), 32)]
        activations, pooled = np.concatenate([a for a, _ in acts]), np.concatenate([p for _, p in acts])
        z = head.logits(pooled)
        return z, linear_cam(activations, head.w, z >= threshold_logit)
    return logits, cams


def _validity(functions: tuple, config: dict, variant: str, canons: np.ndarray, masks: np.ndarray,
              labels: np.ndarray, n_deletion: int, seed: int) -> dict:
    """The swap, lungs-hidden and heatmap tests on images with their lung masks;
    `functions`: (logits, cams) of lung views (`keras_functions`, or the exported
    network's in `pneumonia.report.exported_eval`)."""
    logits, cams = functions
    threshold_logit = decision_logit(config["temperature"], config["threshold"])
    result = validity.auc_tests(logits, canons, masks, labels, variant, seed=seed)
    result["shortfall"] = validity.shortfall(result)
    if n_deletion:  # the heatmap tests are reported on test only
        result.update(faithfulness.heat_tests(cams, logits, config["temperature"], threshold_logit, canons, masks,
                                          labels, variant, n_deletion, seed))
    return result


def validity_report(functions: tuple, config: dict, reader: LungReader, geometry, data_dir: str | Path,
                    images: np.ndarray, labels: np.ndarray, n_deletion: int, seed: int,
                    segmenter: str | Path | None = None) -> dict:
    """Every validity test: on test (report) and on validation (choice), and the
    silhouette (fitted on the training part); each part's lungs found once."""
    log("Validity tests on test (report) and on validation (choice)")
    tr = config.get("training", {})
    split = data.load_train_split(data_dir, tr.get("limit"), tr.get("seed", 0), tr.get("val_fraction", 0.15))
    parts = {}
    for name, (canons, y) in {"test": (images, labels),
                              "validation": (split.images[split.val_idx], split.labels[split.val_idx]),
                              "train": (split.images[split.train_idx], split.labels[split.train_idx])}.items():
        masks, ok = _masks(geometry, canons)
        parts[name] = (canons[ok], masks, y[ok], int((~ok).sum()))
    report = {"masks_from": "the folder's segmenter" if reader.segmenter else f"segmenter {Path(segmenter).name}",
              "goals": validity.GOALS}
    for name, n_del in (("test", n_deletion), ("validation", 0)):
        canons, masks, y, without = parts[name]
        report[name] = {"without_lungs": without,
                        **_validity(functions, config, reader.variant, canons, masks, y, n_del, seed)}
    fit = parts["train"]
    report["silhouette"] = validity.silhouette_auc(
        fit[1], fit[2], {name: parts[name][1:3] for name in ("validation", "test")},
        reader.variant, reader.margin, reader.dilation, seed)
    return report


def evaluate_folder(model_dir: str | Path, data_dir: str | Path, limit: int | None = None,
                    seed: int = 0, bootstrap: int = 2000, segmenter: str | Path | None = None,
                    adults_dir: str | Path | None = None, n_deletion: int = 60,
                    hospitals_dir: str | Path | None = None) -> dict:
    folder = Path(model_dir)
    net, config = load_model_folder(folder)
    reader = keras_reader(folder, config)
    paths, labels = data.list_split(data_dir, "test")
    paths, labels = data.limit_per_class(paths, labels, limit, seed)
    images, kept, skipped = data.load_images(paths)
    labels = labels[kept]
    views, _, _, found = reader.read(images)
    log(f"Evaluating on {len(kept)} test images ({len(skipped)} unreadable skipped, "
        f"{(~found).sum()} without lungs found, refused as at serving)")
    _, a = served_answers(net, config, folder, views[found])
    probs = a["probs"]
    metrics = evaluate_probs(labels[found], probs, a["thresholds"], bootstrap, seed)
    if a["population"] is not None:
        metrics["population"] = {
            "routed_to_adult_head": float(np.mean(routed(a))), "n_routed": int(routed(a).sum()),
            "mean_adult_share": float(np.mean(a["adult_share"])),
            "pediatric_head_only": compact(evaluate_probs(labels[found], a["pediatric"], a["pediatric_threshold"],
                                                           bootstrap, seed))}
    metrics.update({"split": "test", "data_dir_name": Path(data_dir).name,
                    "threshold_source": config.get("threshold_rule", "config"),
                    "temperature": config["temperature"], "limit_per_class": limit,
                    "without_lungs": int((~found).sum()), "lung_view": reader.variant})
    geometry = reader.segmenter or (load_segmenter(segmenter) if segmenter else None)
    if geometry is not None:
        metrics["validity"] = validity_report(keras_functions(net, config), config, reader, geometry, data_dir,
                                              images, labels, n_deletion, seed, segmenter)
    if adults_dir:
        metrics["adult_transfer"] = adult_transfer(net, config, folder, reader, adults_dir, bootstrap, seed,
                                                   hospitals_dir)
    return publish(folder, config, labels[found], probs, metrics)


def publish(folder: Path, config: dict, labels: np.ndarray, probs: np.ndarray, metrics: dict) -> dict:
    """metrics.json, the figures and the model card of a folder from its test numbers."""
    (folder / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    history_path = folder / HISTORY_FILE
    history = json.loads(history_path.read_text()) if history_path.is_file() else None
    figures.write_all(folder, labels, probs, metrics, history)
    card.write_card(folder, config, metrics)
    summary(metrics)
    return metrics


def summary(metrics: dict) -> None:
    t, ci = metrics["at_threshold"], metrics["ci95_at_threshold"]
    log(f"Test ({metrics['n']} images) at " + (f"threshold {t['threshold']:.3f}: " if t["threshold"] is not None
                                                else "each answer's threshold: ") +
        f"accuracy {t['accuracy']:.4f} [{ci['accuracy'][0]:.3f}, {ci['accuracy'][1]:.3f}], "
        f"sensitivity {t['sensitivity']:.4f}, specificity {t['specificity']:.4f}, "
        f"F1 {t['f1']:.4f}; ROC AUC {metrics['roc_auc']:.4f}, PR AUC {metrics['pr_auc']:.4f}, "
        f"Brier {metrics['brier']:.4f}, ECE {metrics['ece_15']:.4f}")
    h = metrics["at_0.5"]
    log(f"At 0.5: accuracy {h['accuracy']:.4f}, sensitivity {h['sensitivity']:.4f}, "
        f"specificity {h['specificity']:.4f}")
    log_validity(metrics.get("validity", {}))
    if "population" in metrics:
        old = metrics["population"]["pediatric_head_only"]
        log(f"Routed to the adult head: {metrics['population']['n_routed']} test X-rays; pediatric head "
            f"alone: accuracy {old['at_threshold']['accuracy']:.4f}, ROC AUC {old['roc_auc']:.4f}")
    if "adult_transfer" in metrics:
        a = metrics["adult_transfer"]
        for name in ("served", "pediatric_head"):
            m = a[name]
            log(f"Adults (NIH report part, {m['n']} images), {name}: ROC AUC {m['roc_auc']:.3f} "
                f"[{m['ci95_at_threshold']['roc_auc'][0]:.3f}, {m['ci95_at_threshold']['roc_auc'][1]:.3f}], "
                f"sensitivity {m['at_threshold']['sensitivity']:.3f}, specificity {m['at_threshold']['specificity']:.3f}")
        for name, r in a.get("hospitals", {}).items():
            if isinstance(r, dict):
                log(f"{name} (report part, {r['n']}): routed to the adult head {r['routed_to_adult_head']:.1%}"
                    + (f", specificity on {r['n_normal']} normals {r['specificity']:.3f}" if "specificity" in r else "")
                    + (f", TB answered PNEUMONIA {r['tb_answered_pneumonia']:.1%} of {r['n_tb']}"
                       if "tb_answered_pneumonia" in r else ""))


def log_validity(report: dict) -> None:
    for part, v in report.items():
        if isinstance(v, dict) and "swap_lungs_auc" in v:
            heat, d, r, pt = v.get("heat_in_lungs"), v.get("deletion"), v.get("road"), v.get("pointing_game")
            log(f"Validity ({part}): swap lungs {v['swap_lungs_auc']:.3f} / surroundings "
                f"{v['swap_surroundings_auc']:.3f}, lungs hidden {v['hidden_auc']:.3f}"
                + (f", heat in lungs {heat['NORMAL']:.3f} (NORMAL) {heat['PNEUMONIA']:.3f} (PNEUMONIA)" if heat else "")
                + (f", pointing game {pt['all']:.3f}" if pt else "")
                + (f"; deletion AUC Grad-CAM {d['gradcam']['auc']:.3f}, random {d['random']['auc']:.3f}, "
                   f"centre {d['centre']['auc']:.3f}" if d else "")
                + (f"; ROAD Grad-CAM {r['gradcam']:.3f}, random {r['random']:.3f}, centre {r['centre']:.3f} "
                   f"(Grad-CAM - random {r['gradcam_minus_random']['mean']:+.3f} "
                   f"[{r['gradcam_minus_random']['ci95'][0]:+.3f}, {r['gradcam_minus_random']['ci95'][1]:+.3f}])"
                   if r else ""))
    sil = report.get("silhouette")
    if sil:
        log(f"Silhouette (fitted on {sil['fit_n']} training-part masks): ROC AUC " + ", ".join(
            f"{part} {v['auc']:.3f} [{v['ci95'][0]:.3f}, {v['ci95'][1]:.3f}]" for part, v in sil.items()
            if isinstance(v, dict)) + f" (goal <= {validity.GOALS['silhouette_auc_max']})")


def validity_only(model_dir: str | Path, data_dir: str | Path, segmenter: str | Path | None = None,
                  n_deletion: int = 60, seed: int = 0) -> dict:
    """The validity tests of a folder, printed; nothing is written."""
    folder = Path(model_dir)
    net, config = load_model_folder(folder)
    reader = keras_reader(folder, config)
    geometry = reader.segmenter or load_segmenter(segmenter)
    paths, labels = data.list_split(data_dir, "test")
    images, kept, _ = data.load_images(paths)
    report = validity_report(keras_functions(net, config), config, reader, geometry, data_dir, images, labels[kept],
                             n_deletion, seed, segmenter)
    log_validity(report)
    print(json.dumps(report, indent=2))
    return report


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model folder (model.keras + config.json)")
    p.add_argument("--data", required=True, help="dataset folder holding test/NORMAL and test/PNEUMONIA")
    p.add_argument("--limit", type=int, default=None, help="at most N test images per class")
    p.add_argument("--bootstrap", type=int, default=2000, help="bootstrap resamples for the 95%% intervals")
    p.add_argument("--segmenter", help="lungs.keras for the validity tests of a whole-image model")
    p.add_argument("--adults", help="adult_cxr folder: report transfer to adults (another hospital)")
    p.add_argument("--hospitals", help="lung_masks folder: report Shenzhen's and Montgomery's X-rays (with --adults)")
    p.add_argument("--deletion", type=int, default=60, help="test images in the deletion curves")
    p.add_argument("--validity-only", action="store_true",
                   help="run only the validity tests (swap, lungs hidden, heatmap, ROAD, pointing, silhouette), "
                        "print them and write nothing")
    args = p.parse_args(argv)
    if args.validity_only:
        return cli.run(lambda: validity_only(args.model, args.data, args.segmenter, args.deletion))
    return cli.run(lambda: evaluate_folder(args.model, args.data, args.limit, bootstrap=args.bootstrap,
                                           segmenter=args.segmenter, adults_dir=args.adults,
                                           n_deletion=args.deletion, hospitals_dir=args.hospitals))


if __name__ == "__main__":
    sys.exit(main())
