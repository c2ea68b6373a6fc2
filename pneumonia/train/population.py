"""Fitting who an answer is valid for and which head gives it (served by
`pneumonia.serve.routing` and `pneumonia.serve.guard`). All is read from the 2048 pooled
features the classifier's last layer reads: no extra network pass.

1. **Is it a chest X-ray?** `ood.OODGuard` fitted on chest X-rays of children
   (the training part) and adults (the `fit` parts of NIH, Shenzhen and
   Montgomery: `pneumonia.train.adults`). Its threshold lets through 99.5% of both
   validation parts. No non-X-ray image is used to fit or tune it.
2. **Is it an adult?** A logistic score, P(adult), fitted on children from two
   hospitals (the training part, Shenzhen's children) against adults from
   three (NIH, Shenzhen, Montgomery), so that it learns age rather than "not
   this hospital's machine". A child is answered by the children's model
   unless the evidence is strong: the threshold sends at most 1% of
   validation children, clean and stressed, to the adult head.
3. **The adult head**: the classifier's last layer refitted on the pediatric
   training features plus NIH adults and the normal adults of Shenzhen and
   Montgomery (their TB X-rays are neither class), chosen, calibrated and
   thresholded on the adults' validation parts. The convolutions are shared.
Routing is hard (one head answers) or a soft blend of the two heads by
P(adult), whichever rules.TRAIN_RULE picks on validation.

    python -m pneumonia.train.population --model model --data chest_xray --adults adult_cxr --hospitals lung_masks
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys

import numpy as np

from pneumonia import calibration
from pneumonia.config import CONFIG_FILE, TARGET_SENSITIVITY
from pneumonia.serve.guard import OOD_FILE
from pneumonia.serve.routing import POPULATION_FILE, LinearHead, Population, answer
from pneumonia.train import operating_point
from pneumonia.train.guard_fit import fit as fit_guard

# Share of validation children (clean and stressed) the adult threshold keeps with the children's model.
KEEP_CHILDREN = 0.998   # TRAIN_RULE (6); 0.99 under (4)
# P(adult) at the threshold (TRAIN_RULE 7): a blend's adult share passes one half where the notice starts.
GATE_MIDPOINT = 0.5
GUARD_QUANTILE = 0.995
# Candidates, chosen on validation only. Inverse L2 strengths (sklearn's C, on
# raw pooled features), and how much the adults weigh against the children in
# the adult head's loss (1 = the two populations weigh the same in total).
GATE_C = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)   # TRAIN_RULE (7): to 1e-3 under (4) and (6)
HEAD_C = (1e-3, 1e-2, 1e-1)
ADULT_WEIGHT = (0.1, 0.3, 1.0)

def _balanced(y: np.ndarray) -> np.ndarray:
    """Per-sample weights giving each class half of the group's total."""
    counts = np.bincount(y, minlength=2)
    return (len(y) / (2 * counts))[y]


def fit_gate(children: np.ndarray, adults: np.ndarray, val_children: np.ndarray,
             val_adults: np.ndarray) -> tuple[LinearHead, list[dict]]:
    """The logistic 'unlike the training children' score. Each C's threshold
    keeps KEEP_CHILDREN of validation children; the C that flags the most
    validation adults wins (ties: the stronger regularisation). Its intercept
    is then moved so that P(adult) = GATE_MIDPOINT at that threshold (the
    same images flagged, the score's slope kept)."""
    from sklearn.linear_model import LogisticRegression
    x = np.concatenate([children, adults])
    y = np.r_[np.zeros(len(children), int), np.ones(len(adults), int)]
    table, best = [], None
    for c in GATE_C:
        lr = LogisticRegression(C=c, max_iter=5000).fit(x, y, sample_weight=_balanced(y))
        head = LinearHead(lr.coef_[0].astype(np.float64), float(lr.intercept_[0]))
        # In logits: a weakly regularised score's probabilities round to 1.
        cut = float(np.quantile(head.logits(val_children), KEEP_CHILDREN))
        flagged = float(np.mean(head.logits(val_adults) > cut))
        table.append({"C": c, "validation_adults_flagged": flagged,
                      "threshold_before_centring": float(calibration.sigmoid(cut))})
        if best is None or flagged > best[0]:
            best = (flagged, head, cut)
    _, head, cut = best
    head.b -= cut - calibration.decision_logit(head.temperature, GATE_MIDPOINT)
    head.threshold = GATE_MIDPOINT
    return head, table


def fit_adult_head(children: np.ndarray, y_children: np.ndarray, adults: np.ndarray, y_adults: np.ndarray,
                   val_adults: np.ndarray, y_val_adults: np.ndarray) -> tuple[LinearHead, list[dict]]:
    """The last layer refitted on children + adults; the candidate with the best
    adult validation ROC AUC, its temperature (NLL) and threshold (sensitivity
    TARGET_SENSITIVITY) fitted on the same adult validation part."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    x = np.concatenate([children, adults])
    y = np.r_[y_children, y_adults]
    table, best = [], None
    for weight in ADULT_WEIGHT:
        sw = np.r_[_balanced(y_children), _balanced(y_adults) * weight * len(y_children) / len(y_adults)]
        for c in HEAD_C:
            lr = LogisticRegression(C=c, max_iter=5000).fit(x, y, sample_weight=sw)
            head = LinearHead(lr.coef_[0].astype(np.float64), float(lr.intercept_[0]))
            auc = float(roc_auc_score(y_val_adults, head.logits(val_adults)))
            table.append({"adult_weight": weight, "C": c, "validation_adults_auc": auc})
            if best is None or auc > best[0]:
                best = (auc, head)
    head = best[1]
    val_logits = head.logits(val_adults)
    head.temperature = operating_point.fit_temperature(val_logits, y_val_adults)
    head.threshold = calibration.threshold_for_sensitivity(
        calibration.sigmoid(val_logits / head.temperature), y_val_adults, TARGET_SENSITIVITY)
    return head, table


def routing_loss(population: Population, pediatric: LinearHead, sets: list[tuple[np.ndarray, np.ndarray]]) -> float:
    """Mean log loss of the served P(PNEUMONIA) over (pooled, labels) sets, each set weighing the same."""
    losses = []
    for pooled, y in sets:
        p = np.clip(answer(pooled, pediatric, population)[0], 1e-7, 1 - 1e-7)
        losses.append(float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))))
    return float(np.mean(losses))


def fit_folder(model_dir: str | Path, data_dir: str | Path, adults_dir: str | Path,
               hospitals_dir: str | Path | None = None, features: str | Path | None = None) -> Population:
    """Fit the chest-X-ray guard (ood.npz), P(adult) and the adult head
    (population.npz) for a model folder; record how in its config. Without
    `hospitals_dir` (lung_masks) the adults are NIH's alone and the children
    the training part alone. `features`: an .npz of
    `population_features.gather`'s arrays, read
    if it exists, else written (a refit of the same folder skips the network)."""
    from pneumonia.config import STRESS_COPIES
    from pneumonia.train.adults import SOURCE
    from pneumonia.train.cli import log
    from pneumonia.folder import read_config
    folder = Path(model_dir)
    if features is not None and Path(features).exists():
        with np.load(features) as f:
            g = dict(f)
        log(f"Population: features read from {features}")
    else:
        from pneumonia.train.population_features import gather
        g = gather(folder, data_dir, adults_dir, hospitals_dir)
        if features is not None:
            np.savez(features, **g)
    config = read_config(folder)
    tr = config["training"]
    pediatric = LinearHead(g["pediatric_w"], float(g["pediatric_b"]), float(config["temperature"]),
                           float(config["threshold"]))
    k_fit, k_val, stressed, y_kids = g["k_fit"], g["k_val"], g["stressed"], g["y_kids"]
    o_fit, o_val, a_fit, a_val = g["o_fit"], g["o_val"], g["a_fit"], g["a_val"]
    h_fit, hy_fit, h_val, hy_val = g["h_fit"], g["hy_fit"], g["h_val"], g["hy_val"]
    children_fit, children_val = np.concatenate([k_fit, o_fit]), np.concatenate([k_val, stressed, o_val])

    guard = fit_guard(np.concatenate([children_fit, a_fit]), k_val, quantile=GUARD_QUANTILE)
    guard.threshold = max(guard.threshold, float(np.quantile(guard.score(a_val), GUARD_QUANTILE)))
    guard.save(folder / OOD_FILE)
    gate, gate_table = fit_gate(children_fit, a_fit, children_val, a_val)
    adult, head_table = fit_adult_head(k_fit, g["y_fit"], h_fit, hy_fit, h_val, hy_val)
    loss_sets = [(k_val, y_kids), (stressed, np.tile(y_kids, STRESS_COPIES)), (h_val, hy_val)]
    losses = {mode: routing_loss(Population(gate, adult, mode == "blend"), pediatric, loss_sets)
              for mode in ("hard", "blend")}
    population = Population(gate, adult, losses["blend"] < losses["hard"])
    population.save(folder / POPULATION_FILE)

    def share(accepted: np.ndarray) -> float:
        return float(np.mean(accepted))

    names = ["NIH"] + (["Shenzhen, Montgomery"] if hospitals_dir else [])
    config["ood"] = {
        "file": OOD_FILE, "method": f"Mahalanobis distance, probabilistic PCA ({len(guard.variances)} components)",
        "features": "avg_pool (2048)", "threshold": guard.threshold,
        "threshold_rule": f"the larger of the {GUARD_QUANTILE:.1%} quantiles of pediatric and of adult "
                          "validation X-ray scores",
        "fitted_on": f"{len(children_fit)} children (training part, other hospitals' fit part) and {len(a_fit)} "
                     f"adults ({', '.join(names)} fit parts); threshold on {len(k_val)} pediatric and {len(a_val)} "
                     "adult validation X-rays",
        "validation_accepted": share(guard.score(k_val) <= guard.threshold),
        "validation_adults_accepted": share(guard.score(a_val) <= guard.threshold),
    }
    config["population"] = {
        "file": POPULATION_FILE, "trained_on": "children aged 1-5, Guangzhou Women and Children's Medical Center",
        "adults": {"source": SOURCE, "others": "Shenzhen and Montgomery X-rays of lung_masks (normal or TB)"
                   if hospitals_dir else None, "seed": tr["seed"],
                   "images": dict(zip(("fit", "validation", "report"), map(int, g["part_sizes"]))),
                   "fit": {"children": int(len(children_fit)), "adults": int(len(a_fit)),
                           "adult_head_adults": int(len(h_fit))}},
        "score": "P(adult): logistic regression on pooled features, children (training part + other hospitals' "
                 "children, fit part) vs adults (fit parts), classes weighed equally",
        "threshold": gate.threshold,
        "threshold_rule": f"sends at most {1 - KEEP_CHILDREN:.1%} of validation children (clean, stressed, other "
                          "hospitals') to the adult head; the intercept moved so that P(adult) is "
                          f"{GATE_MIDPOINT:.0%} there",
        "gate_candidates": gate_table,
        "validation_adults_routed": share(gate.probability(a_val) > gate.threshold),
        "validation_children_routed": share(gate.probability(children_val) > gate.threshold),
        "routing": "blend" if population.blend else "hard",
        "routing_log_loss": losses,
        "routing_rule": "lower mean log loss over validation children (clean, stressed) and adult validation "
                        "X-rays (NIH, normal adults of the other hospitals), each set weighing the same",
        "adult_head": {
            "rule": "last layer refitted (logistic regression) on pediatric training-part features and adults' "
                    "fit parts (NIH; the other hospitals' normal adults, TB left out), each population's classes "
                    "balanced; the candidate with the best ROC AUC on the adults' validation parts; temperature "
                    f"by NLL and threshold for sensitivity {TARGET_SENSITIVITY:.0%} on the same",
            "candidates": head_table, "temperature": adult.temperature, "threshold": adult.threshold,
            "validation_auc": float(_auc(hy_val, adult.logits(h_val))),
            "validation_auc_pediatric_head": float(_auc(hy_val, pediatric.logits(h_val)))},
    }
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    log(f"Guard threshold {guard.threshold:.3f}: validation children accepted "
        f"{config['ood']['validation_accepted']:.1%}, adults {config['ood']['validation_adults_accepted']:.1%}")
    log(f"P(adult) threshold {gate.threshold:.3f}: validation adults routed "
        f"{config['population']['validation_adults_routed']:.1%}, children "
        f"{config['population']['validation_children_routed']:.1%}; routing {config['population']['routing']} "
        f"(log loss {losses}); adult head validation ROC AUC {config['population']['adult_head']['validation_auc']:.3f}")
    return population


def _auc(y: np.ndarray, score: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score
    return float(roc_auc_score(y, score))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True, help="chest_xray folder (its train split)")
    p.add_argument("--adults", required=True, help="adult_cxr folder")
    p.add_argument("--hospitals", help="lung_masks folder: Shenzhen's and Montgomery's X-rays join the fit")
    p.add_argument("--features", help=".npz of the pooled features: read if it exists, else written")
    args = p.parse_args(argv)
    from pneumonia.train import cli
    return cli.run(lambda: fit_folder(args.model, args.data, args.adults, args.hospitals, args.features))


if __name__ == "__main__":
    sys.exit(main())
