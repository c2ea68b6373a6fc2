"""Report a model folder on the test split: metrics.json, figures, model card.

    python -m pneumonia.evaluate --model model --data path/to/chest_xray \
        [--segmenter lungs.keras] [--adults path/to/adult_cxr]

The threshold and temperature come from the folder's config (fitted on
validation); the test split is only read here, never used to choose anything.
Besides the usual metrics it measures where the answers come from
(`pneumonia.validity`), on test (to report) and on the validation part of
the patient split (the numbers models are chosen by). Lung masks come from the
folder's own segmenter, or from --segmenter for a whole-image model. With
--adults, ROC AUC on adult X-rays from another hospital (report only).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from . import card, cli, data, figures, validity
from .calibration import decision_logit
from .config import HISTORY_FILE, METRICS_FILE
from .gradcam import Activations
from .heatmap import linear_cam
from .lung_view import LungReader
from .metrics import evaluate_probs
from .model import grey_to_rgb, load_model_folder, pediatric_head, pooled_features
from .segmentation import load_segmenter, postprocess
from .adults import HOSPITALS, SOURCE as ADULTS_SOURCE, TB, load_adults, load_hospitals
from .ood import OOD_FILE, OODGuard
from .routing import POPULATION_FILE, Population, answer
from .training import log, predict_logits


def _masks(geometry, canons: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(lung masks of the images whose lungs were found, which were found)."""
    lungs = [postprocess(p) for p in geometry.probability(canons)]
    ok = np.asarray([lu.found for lu in lungs])
    return np.stack([lu.mask for lu, k in zip(lungs, ok) if k]), ok


def _validity(net, config: dict, variant: str, canons: np.ndarray, masks: np.ndarray, labels: np.ndarray,
              n_deletion: int, seed: int) -> dict:
    """The swap, lungs-hidden and heatmap tests on images with their lung masks."""
    # Grad-CAM as the app computes it (from the forward pass), for the class
    # decided at the folder's calibrated threshold.
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

    result = validity.auc_tests(logits, canons, masks, labels, variant, seed=seed)
    result["shortfall"] = validity.shortfall(result)
    if n_deletion:  # the heatmap tests are reported on test only
        result.update(validity.heat_tests(cams, logits, config["temperature"], threshold_logit, canons, masks,
                                          labels, variant, n_deletion, seed))
    return result


def validity_report(net, config: dict, reader: LungReader, geometry, data_dir: str | Path, images: np.ndarray,
                    labels: np.ndarray, n_deletion: int, seed: int, segmenter: str | Path | None = None) -> dict:
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
                        **_validity(net, config, reader.variant, canons, masks, y, n_del, seed)}
    fit = parts["train"]
    report["silhouette"] = validity.silhouette_auc(
        fit[1], fit[2], {name: parts[name][1:3] for name in ("validation", "test")},
        reader.variant, reader.margin, reader.dilation, seed)
    return report


def _answers(net, config: dict, folder: Path, views: np.ndarray) -> tuple[np.ndarray, dict]:
    """Pooled features of classifier inputs -> P(PNEUMONIA) as the app answers
    (`population.answer`) and, for the comparison, as the pediatric head alone does."""
    population = Population.load(folder / POPULATION_FILE) if (folder / POPULATION_FILE).is_file() else None
    pediatric = pediatric_head(net, config)
    pooled = pooled_features(net, views)
    probs, thresholds, share, _ = answer(pooled, pediatric, population)
    return pooled, {"probs": probs, "thresholds": thresholds, "adult_share": share, "population": population,
                    "pediatric": pediatric.probability(pooled), "pediatric_threshold": pediatric.threshold}


def _compact(m: dict) -> dict:
    m.pop("reliability", None)
    return m


def _routed(a: dict) -> np.ndarray:
    """Answered mostly by the adult head (hard routing: by it alone)."""
    return a["adult_share"] > 0.5


def adult_transfer(net, config: dict, folder: Path, reader: LungReader, adults_dir: str | Path, bootstrap: int,
                   seed: int, hospitals_dir: str | Path | None = None) -> dict:
    """The report parts, never fitted or tuned on: NIH adults (the app's answers
    and the pediatric head's alone, with the guard's and P(adult)'s verdicts),
    and per hospital of `hospitals_dir` (Shenzhen, Montgomery): specificity on
    normal X-rays at the served threshold, what the page says for TB X-rays,
    and how many are routed to the adult head, adults and children apart."""
    tr_seed = config.get("training", {}).get("seed", 0)
    adults = load_adults(adults_dir, tr_seed)
    idx = adults.part("report")
    labels = adults.labels[idx]
    views, _, _, found = reader.read(adults.canons[idx])
    pooled, a = _answers(net, config, folder, views[found])
    y = labels[found]
    out = {"part": "report", "source": ADULTS_SOURCE, "patients": len({adults.groups[i] for i in idx}),
           "without_lungs": int((~found).sum()),
           "served": _compact(evaluate_probs(y, a["probs"], a["thresholds"], bootstrap, seed)),
           "pediatric_head": _compact(evaluate_probs(y, a["pediatric"], a["pediatric_threshold"], bootstrap, seed)),
           "routed_to_adult_head": float(np.mean(_routed(a)))}
    guard_file = folder / OOD_FILE
    if guard_file.is_file():
        guard = OODGuard.load(guard_file)
        out["guard_accepted"] = float(np.mean(guard.score(pooled) <= guard.threshold))
    if hospitals_dir:
        out["hospitals"] = hospital_report(net, config, folder, reader, hospitals_dir, tr_seed, seed)
    return out


def hospital_report(net, config: dict, folder: Path, reader: LungReader, hospitals_dir: str | Path,
                    split_seed: int, seed: int) -> dict:
    """Shenzhen's and Montgomery's report parts, per hospital and age group."""
    h = load_hospitals(hospitals_dir, split_seed)
    idx = h.part("report")
    views, _, _, found = reader.read(h.canons[idx])
    idx = idx[found]
    _, a = _answers(net, config, folder, views[found])
    said = a["probs"] >= a["thresholds"]
    out = {"part": "report", "without_lungs": int((~found).sum())}
    rng = np.random.default_rng(seed)
    for hospital in HOSPITALS:
        for age, is_adult in (("adults", True), ("children", False)):
            here = (np.asarray(h.sources)[idx] == hospital) & (h.adult[idx] == is_adult)
            if not here.any():
                continue
            normal, tb = here & (h.labels[idx] == 0), here & (h.labels[idx] == TB)
            row = {"n": int(here.sum()), "routed_to_adult_head": float(np.mean(_routed(a)[here])),
                   "n_normal": int(normal.sum()), "n_tb": int(tb.sum())}
            if normal.any():
                spec = ~said[normal]
                boots = [rng.choice(spec, len(spec)).mean() for _ in range(1000)]
                row.update(specificity=float(spec.mean()),
                           specificity_ci95=[float(np.percentile(boots, 2.5)), float(np.percentile(boots, 97.5))])
            if tb.any():
                row["tb_answered_pneumonia"] = float(said[tb].mean())
            out[f"{hospital} {age}"] = row
    return out


def evaluate_folder(model_dir: str | Path, data_dir: str | Path, limit: int | None = None,
                    seed: int = 0, bootstrap: int = 2000, segmenter: str | Path | None = None,
                    adults_dir: str | Path | None = None, n_deletion: int = 60,
                    hospitals_dir: str | Path | None = None) -> dict:
    folder = Path(model_dir)
    net, config = load_model_folder(folder)
    reader = LungReader.from_config(folder, config)
    paths, labels = data.list_split(data_dir, "test")
    paths, labels = data.limit_per_class(paths, labels, limit, seed)
    images, kept, skipped = data.load_images(paths)
    labels = labels[kept]
    views, _, _, found = reader.read(images)
    log(f"Evaluating on {len(kept)} test images ({len(skipped)} unreadable skipped, "
        f"{(~found).sum()} without lungs found, refused as at serving)")
    _, a = _answers(net, config, folder, views[found])
    probs = a["probs"]
    metrics = evaluate_probs(labels[found], probs, a["thresholds"], bootstrap, seed)
    if a["population"] is not None:
        metrics["population"] = {
            "routed_to_adult_head": float(np.mean(_routed(a))), "n_routed": int(_routed(a).sum()),
            "mean_adult_share": float(np.mean(a["adult_share"])),
            "pediatric_head_only": _compact(evaluate_probs(labels[found], a["pediatric"], a["pediatric_threshold"],
                                                           bootstrap, seed))}
    metrics.update({"split": "test", "data_dir_name": Path(data_dir).name,
                    "threshold_source": config.get("threshold_rule", "config"),
                    "temperature": config["temperature"], "limit_per_class": limit,
                    "without_lungs": int((~found).sum()), "lung_view": reader.variant})
    geometry = reader.segmenter or (load_segmenter(segmenter) if segmenter else None)
    if geometry is not None:
        metrics["validity"] = validity_report(net, config, reader, geometry, data_dir, images, labels, n_deletion,
                                              seed, segmenter)
    if adults_dir:
        metrics["adult_transfer"] = adult_transfer(net, config, folder, reader, adults_dir, bootstrap, seed,
                                                   hospitals_dir)
    (folder / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    history_path = folder / HISTORY_FILE
    history = json.loads(history_path.read_text()) if history_path.is_file() else None
    figures.write_all(folder, labels[found], probs, metrics, history)
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
    reader = LungReader.from_config(folder, config)
    geometry = reader.segmenter or load_segmenter(segmenter)
    paths, labels = data.list_split(data_dir, "test")
    images, kept, _ = data.load_images(paths)
    report = validity_report(net, config, reader, geometry, data_dir, images, labels[kept], n_deletion, seed,
                             segmenter)
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
