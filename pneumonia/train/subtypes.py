"""Fitting the heads under the main answer (served by `pneumonia.serve.subtypes`):
bacterial or viral for a child's pneumonia, tuberculosis signs for an adult.

Both are logistic regressions on the classifier's pooled features, so they
cost a dot product at serving and need no network pass of their own; a head
trained with the classifier would need the 2-3 h full recipe, and a 3-class
head would change the main answer this project's validity and calibration
evidence is about. Every choice (C, temperature, threshold) is made on a
validation part grouped by patient, by the rule in RULE; test and report parts
are only reported.

- **Bacterial vs viral**: children of the training split answered PNEUMONIA
  in truth, labelled by file name (`personNNN_bacteria_*` / `_virus_*`),
  the patient-grouped validation part and its stressed copies for the
  temperature and the threshold; reported on the test split's PNEUMONIA.
- **Tuberculosis**: Shenzhen and Montgomery adults (`_1` TB, `_0` normal) in
  the existing patient split (`pneumonia.train.adults`): fit part to fit,
  validation part for the temperature and a threshold keeping sensitivity
  >= 0.90 there (the WHO triage target), report part to report, per
  hospital, and across hospitals (fitted without one hospital, scored on it).

    python -m pneumonia.train.subtypes --model model --data chest_xray --hospitals lung_masks
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys

import numpy as np

from pneumonia.calibration import threshold_for_sensitivity
from pneumonia.config import CONFIG_FILE
from pneumonia.serve.routing import LinearHead
from pneumonia.serve.subtypes import SUBTYPES_FILE, Subtypes

C_GRID = (1e-4, 1e-3, 1e-2, 1e-1)
TB_SENSITIVITY = 0.90
RULE = ("Validation only: C from {c} by validation ROC AUC (clean and stressed copies for bacterial/viral; the "
        "validation part for TB), the smaller on a tie; the temperature minimising validation NLL (clean and "
        "stressed); bacterial/viral threshold maximising validation balanced accuracy (clean and stressed); TB "
        "threshold the highest keeping validation sensitivity >= {s}. Test and report parts only reported."
        ).format(c=C_GRID, s=TB_SENSITIVITY)


class TooFewError(ValueError):
    """A part without both classes: that head is not fitted (tiny smoke runs)."""


def _two_classes(**parts: np.ndarray) -> None:
    for name, y in parts.items():
        if len(np.unique(y)) < 2:
            raise TooFewError(f"its {name} part has {len(y)} X-ray(s) of one class only")


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score
    return float(roc_auc_score(y, score))


def fit_head(x: np.ndarray, y: np.ndarray, x_val: np.ndarray, y_val: np.ndarray) -> tuple[LinearHead, dict]:
    """A logistic regression on raw pooled features, C chosen by validation ROC
    AUC, the temperature by validation NLL; threshold left at 0.5 for the caller."""
    from sklearn.linear_model import LogisticRegression
    from pneumonia.train.operating_point import fit_temperature
    table, best = {}, None
    for c in C_GRID:
        clf = LogisticRegression(C=c, max_iter=3000, class_weight="balanced").fit(x, y)
        auc = _auc(y_val, clf.decision_function(x_val))
        table[str(c)] = auc
        if best is None or auc > best[0] + 1e-9:
            best = (auc, c, clf)
    _, c, clf = best
    head = LinearHead(clf.coef_[0].astype(np.float64), float(clf.intercept_[0]))
    head.temperature = fit_temperature(head.logits(x_val), y_val)
    return head, {"C": c, "validation_auc_by_C": table}


def balanced_threshold(p: np.ndarray, y: np.ndarray) -> float:
    """The threshold maximising balanced accuracy (mean of both recalls)."""
    candidates = np.unique(p)
    scores = [(np.mean(p[y == 1] >= t) + np.mean(p[y == 0] < t)) / 2 for t in candidates]
    return float(candidates[int(np.argmax(scores))])


def report(head: LinearHead, x: np.ndarray, y: np.ndarray) -> dict | None:
    """ROC AUC, accuracy, balanced accuracy, sensitivity and specificity at the
    head's threshold, each with a 95% bootstrap interval, and ECE (15 bins)."""
    from pneumonia.metrics import bootstrap_ci, expected_calibration_error
    if len(np.unique(y)) < 2:
        return None
    p = head.probability(x)
    said = p >= head.threshold
    sens, spec = float(np.mean(said[y == 1])), float(np.mean(~said[y == 0]))
    ci = bootstrap_ci(y, p, head.threshold)
    return {"n": int(len(y)), "positives": int(y.sum()), "roc_auc": _auc(y, p), "roc_auc_ci95": ci["roc_auc"],
            "accuracy": float(np.mean(said == (y == 1))), "accuracy_ci95": ci["accuracy"],
            "balanced_accuracy": (sens + spec) / 2, "sensitivity": sens, "sensitivity_ci95": ci["sensitivity"],
            "specificity": spec, "specificity_ci95": ci["specificity"],
            "ece_15": float(expected_calibration_error(y, p))}


def fit_bacterial(kids: np.ndarray, split, stressed: np.ndarray, test_x: np.ndarray,
                  test_y: np.ndarray) -> tuple[LinearHead, dict]:
    """Bacterial (1) vs viral (0) among the training split's PNEUMONIA children."""
    bacterial = np.array(["_bacteria_" in n for n in split.names])
    sick = split.labels == 1
    tr = split.train_idx[sick[split.train_idx]]
    va = split.val_idx[sick[split.val_idx]]
    val_pos = np.flatnonzero(sick[split.val_idx])          # their rows among the validation part
    n_val = len(split.val_idx)
    st = np.concatenate([stressed[k * n_val + val_pos] for k in range(len(stressed) // n_val)])
    x_val = np.concatenate([kids[va], st])
    y_val = np.tile(bacterial[va].astype(int), 1 + len(st) // max(len(va), 1))
    _two_classes(fit=bacterial[tr], validation=bacterial[va])
    head, info = fit_head(kids[tr], bacterial[tr].astype(int), x_val, y_val)
    head.threshold = balanced_threshold(head.probability(x_val), y_val)
    info.update(fit=int(len(tr)), validation=int(len(va)), validation_stressed=int(len(st)),
                validation_report=report(head, kids[va], bacterial[va].astype(int)),
                test=report(head, test_x, test_y))
    return head, info


def fit_tuberculosis(feats: np.ndarray, hospitals, found: np.ndarray) -> tuple[LinearHead, dict]:
    """TB (1) vs normal (0) among Shenzhen and Montgomery adults, parts kept."""
    from pneumonia.train.adults import TB
    y_all = (hospitals.labels == TB).astype(int)
    src = np.asarray(hospitals.sources)
    ok = found & hospitals.adult

    def part(name: str, where: np.ndarray | None = None) -> np.ndarray:
        idx = hospitals.part(name)
        idx = idx[ok[idx]]
        return idx if where is None else idx[where[idx]]

    fit, val, rep = part("fit"), part("validation"), part("report")
    _two_classes(fit=y_all[fit], validation=y_all[val])
    head, info = fit_head(feats[fit], y_all[fit], feats[val], y_all[val])
    head.threshold = threshold_for_sensitivity(head.probability(feats[val]), y_all[val], TB_SENSITIVITY)
    info.update(fit=int(len(fit)), validation=int(len(val)), report=report(head, feats[rep], y_all[rep]),
                per_hospital={h: report(head, feats[part("report", src == h)], y_all[part("report", src == h)])
                              for h in ("Shenzhen", "Montgomery")})
    cross = {}
    for held in ("Shenzhen", "Montgomery"):   # fitted without one hospital, scored on all of it
        other = src != held
        f_, v_ = part("fit", other), part("validation", other)
        if len(np.unique(y_all[f_])) < 2 or len(np.unique(y_all[v_])) < 2:
            continue
        h, _ = fit_head(feats[f_], y_all[f_], feats[v_], y_all[v_])
        h.threshold = threshold_for_sensitivity(h.probability(feats[v_]), y_all[v_], TB_SENSITIVITY)
        on = np.flatnonzero(ok & (src == held))
        cross[f"fitted without {held}, scored on all of {held}"] = report(h, feats[on], y_all[on])
    info["cross_hospital"] = cross
    return head, info


def fit_folder(model_dir: str | Path, data_dir: str | Path, hospitals_dir: str | Path | None) -> Subtypes:
    """Fit both heads for a model folder, write subtypes.npz, record how in its config."""
    from pneumonia.train import data
    from pneumonia.train.adults import load_hospitals
    from pneumonia.train.child_features import child_features
    from pneumonia.train.cli import log
    from pneumonia.train.model import pooled_features
    folder = Path(model_dir)
    cf = child_features(folder, data_dir)
    net, reader, split = cf.net, cf.reader, cf.split
    tr = cf.config["training"]
    kids, stressed = cf.pooled, cf.stressed
    paths, labels = data.list_split(data_dir, "test")
    sick = [p for p, y in zip(paths, labels) if y == 1]
    images, kept, _ = data.load_images(sick)
    views, _, _, found = reader.read(images)
    test_x = pooled_features(net, views[found])
    test_y = np.array(["_bacteria_" in sick[i].name for i in kept[found]]).astype(int)
    try:
        bacterial, b_info = fit_bacterial(kids, split, stressed, test_x, test_y)
    except TooFewError as e:
        bacterial, b_info = None, {"skipped": f"not fitted: {e}"}
    tb, t_info = None, {"skipped": "not fitted: no --hospitals"}
    if hospitals_dir:
        hospitals = load_hospitals(hospitals_dir, tr["seed"])
        views, _, _, found = reader.read(hospitals.canons)
        try:
            tb, t_info = fit_tuberculosis(pooled_features(net, views), hospitals, found)
        except TooFewError as e:
            t_info = {"skipped": f"not fitted: {e}"}
    b, t = b_info.get("test"), t_info.get("report")
    measured = {}
    if b:
        measured["bacterial"] = (f"measured on the test split's {b['n']} children with pneumonia: ROC AUC "
                                 f"{b['roc_auc']:.2f}, balanced accuracy {b['balanced_accuracy']:.0%}")
    if t:
        measured["tuberculosis"] = (f"measured on {t['n']} held-out Shenzhen and Montgomery adults: ROC AUC "
                                    f"{t['roc_auc']:.2f}, sensitivity {t['sensitivity']:.0%}, specificity "
                                    f"{t['specificity']:.0%}")
    subtypes = Subtypes(bacterial, tb, measured)
    subtypes.save(folder / SUBTYPES_FILE)
    config = json.loads((folder / CONFIG_FILE).read_text())   # as the steps before left it
    config["subtypes"] = {"file": SUBTYPES_FILE, "rule": RULE, **{
        name: {**info, **({"threshold": h.threshold, "temperature": h.temperature} if h else {})}
        for name, h, info in (("bacterial", bacterial, b_info), ("tuberculosis", tb, t_info))}}
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    log("Subtypes: bacterial/viral " + (f"test ROC AUC {b['roc_auc']:.3f} {b['roc_auc_ci95']}" if b else
                                        b_info.get("skipped", "not reported"))
        + "; TB " + (f"report ROC AUC {t['roc_auc']:.3f} {t['roc_auc_ci95']}" if t else
                     t_info.get("skipped", "not reported")))
    return subtypes


def main(argv: list[str] | None = None) -> int:
    from pneumonia.train import cli
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model folder to fit the heads for")
    p.add_argument("--data", required=True, help="chest_xray folder")
    p.add_argument("--hospitals", help="lung_masks folder (Shenzhen and Montgomery): the tuberculosis head")
    args = p.parse_args(argv)
    return cli.run(lambda: fit_folder(args.model, args.data, args.hospitals))


if __name__ == "__main__":
    sys.exit(main())
