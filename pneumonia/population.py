"""Who an answer is valid for: is it a chest X-ray, and is it like the X-rays
the model was trained on? Both are read from the 2048 pooled features the
classifier's last layer reads, so they cost no extra network pass.

1. **Is it a chest X-ray?** `ood.OODGuard` fitted on chest X-rays of two
   populations: the pediatric training part and the `fit` part of the NIH
   adults (`pneumonia.adults`). Its threshold lets through 99.5% of both
   validation parts. No non-X-ray image is used to fit or tune it.
2. **Is it like the training children?** A logistic score, "unlike the
   training children", fitted on the pediatric training part against the
   adults' `fit` part; its threshold keeps 99% of pediatric validation X-rays
   inside. It learns "not Guangzhou children": adults, other hospitals' machines.
3. X-rays outside that population are answered by an **adult head**: the
   classifier's last layer refitted on pediatric training features plus the
   adults' `fit` part (the convolutions are shared and unchanged), chosen,
   calibrated and thresholded on the adults' `validation` part. X-rays inside
   it get the shipped pediatric head, so answers on children do not change.

    python -m pneumonia.population --model model --data path/to/chest_xray --adults path/to/adult_cxr
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from . import calibration
from .config import CONFIG_FILE, TARGET_SENSITIVITY
from .ood import OOD_FILE, fit as fit_guard

POPULATION_FILE = "population.npz"
# Share of pediatric validation X-rays the population threshold keeps inside.
KEEP_CHILDREN = 0.99
GUARD_QUANTILE = 0.995
# Candidates, chosen on validation only. Inverse L2 strengths (sklearn's C, on
# raw pooled features), and how much the adults weigh against the children in
# the adult head's loss (1 = the two populations weigh the same in total).
GATE_C = (1e-5, 1e-4, 1e-3)
HEAD_C = (1e-3, 1e-2, 1e-1)
ADULT_WEIGHT = (0.1, 0.3, 1.0)
KEEP_RULE = ("The adult head is kept if, on pediatric validation (clean and its stressed copies), ROC AUC as "
             "served is within the paired-bootstrap 95% interval of the pediatric head alone (no drop beyond "
             "noise), and adult validation ROC AUC rises.")


@dataclass
class LinearHead:
    """logit = pooled . w + b; probability = sigmoid(logit / temperature)."""
    w: np.ndarray
    b: float
    temperature: float = 1.0
    threshold: float = 0.5

    def logits(self, pooled: np.ndarray) -> np.ndarray:
        return np.atleast_2d(np.asarray(pooled, np.float64)) @ self.w + self.b

    def probability(self, pooled: np.ndarray) -> np.ndarray:
        return calibration.sigmoid(self.logits(pooled) / self.temperature)


@dataclass
class Population:
    gate: LinearHead      # probability: "unlike the training children"; threshold on it
    adult: LinearHead     # the adult head, with its own temperature and threshold

    def unlike(self, pooled: np.ndarray) -> np.ndarray:
        return self.gate.probability(pooled)

    def inside(self, unlike: np.ndarray) -> np.ndarray:
        """Scores from `unlike` -> inside the training population?"""
        return np.asarray(unlike) <= self.gate.threshold

    def save(self, path: str | Path) -> None:
        np.savez(path, **{f"{name}_{k}": v for name, head in (("gate", self.gate), ("adult", self.adult))
                          for k, v in asdict(head).items()})

    @classmethod
    def load(cls, path: str | Path) -> "Population":
        with np.load(path) as f:
            def head(name):
                return LinearHead(f[f"{name}_w"].astype(np.float64), float(f[f"{name}_b"]),
                                  float(f[f"{name}_temperature"]), float(f[f"{name}_threshold"]))
            return cls(head("gate"), head("adult"))


def answer(pooled: np.ndarray, pediatric: LinearHead, population: Population | None,
           inside: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What the app answers for a batch of pooled features: (P(PNEUMONIA),
    each answer's threshold, inside the training population?, the head's
    weights per image (n, C) for Grad-CAM). Without a population score every
    X-ray counts as inside; `inside` may be passed when already known."""
    if inside is None:
        inside = (np.ones(len(pooled), bool) if population is None
                  else population.inside(population.unlike(pooled)))
    heads = [pediatric if ok else population.adult for ok in inside]
    probs = np.asarray([h.probability(f[None])[0] for h, f in zip(heads, pooled)])
    return probs, np.asarray([h.threshold for h in heads]), inside, np.stack([h.w for h in heads])


def _balanced(y: np.ndarray) -> np.ndarray:
    """Per-sample weights giving each class half of the group's total."""
    counts = np.bincount(y, minlength=2)
    return (len(y) / (2 * counts))[y]


def fit_gate(children: np.ndarray, adults: np.ndarray, val_children: np.ndarray,
             val_adults: np.ndarray) -> tuple[LinearHead, list[dict]]:
    """The logistic 'unlike the training children' score. Each C's threshold
    keeps KEEP_CHILDREN of validation children; the C that flags the most
    validation adults wins (ties: the stronger regularisation)."""
    from sklearn.linear_model import LogisticRegression
    x = np.concatenate([children, adults])
    y = np.r_[np.zeros(len(children), int), np.ones(len(adults), int)]
    table, best = [], None
    for c in GATE_C:
        lr = LogisticRegression(C=c, max_iter=5000).fit(x, y, sample_weight=_balanced(y))
        head = LinearHead(lr.coef_[0].astype(np.float64), float(lr.intercept_[0]))
        head.threshold = float(np.quantile(head.probability(val_children), KEEP_CHILDREN))
        flagged = float(np.mean(head.probability(val_adults) > head.threshold))
        table.append({"C": c, "validation_adults_flagged": flagged})
        if best is None or flagged > best[0]:
            best = (flagged, head)
    return best[1], table


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
    head.temperature = calibration.fit_temperature(val_logits, y_val_adults)
    head.threshold = calibration.threshold_for_sensitivity(
        calibration.sigmoid(val_logits / head.temperature), y_val_adults, TARGET_SENSITIVITY)
    return head, table


def paired_difference(y: np.ndarray, served: tuple[np.ndarray, np.ndarray], before: tuple[np.ndarray, float],
                      n: int = 1000, seed: int = 0) -> dict:
    """Served minus before (pediatric head alone) on the same images: ROC AUC
    and accuracy, each with a paired bootstrap 95% interval."""
    from sklearn.metrics import roc_auc_score
    from .metrics import threshold_metrics
    (p, t), (p0, t0) = served, before
    rng = np.random.default_rng(seed)
    diffs: dict[str, list[float]] = {"roc_auc": [], "accuracy": []}
    for _ in range(n):
        i = rng.integers(0, len(y), len(y))
        if y[i].min() == y[i].max():
            continue
        diffs["roc_auc"].append(roc_auc_score(y[i], p[i]) - roc_auc_score(y[i], p0[i]))
        diffs["accuracy"].append(threshold_metrics(y[i], p[i], t[i])["accuracy"]
                                 - threshold_metrics(y[i], p0[i], t0)["accuracy"])
    return {k: {"mean": float(np.mean(v)), "ci95": [float(np.percentile(v, 2.5)), float(np.percentile(v, 97.5))]}
            for k, v in diffs.items()}


def fit_folder(model_dir: str | Path, data_dir: str | Path, adults_dir: str | Path) -> Population:
    """Fit the chest-X-ray guard (ood.npz), the population score and the adult
    head (population.npz) for a model folder; record how in its config."""
    from sklearn.metrics import roc_auc_score
    from . import data
    from .adults import SOURCE, load_adults
    from .lung_view import LungReader
    from . import augment
    from .config import STRESS_COPIES
    from .model import load_model_folder, pediatric_head, pooled_features
    from .training import log
    folder = Path(model_dir)
    net, config = load_model_folder(folder)
    reader = LungReader.from_config(folder, config)
    tr = config["training"]
    split = data.load_train_split(data_dir, tr.get("limit"), tr["seed"], tr["val_fraction"])
    split, _, _ = reader.read_split(split)
    adults = load_adults(adults_dir, tr["seed"])
    views, _, _, found = reader.read(adults.canons)
    log(f"Population: features of {len(split.images)} training-split X-rays and {found.sum()} adults")
    kids = pooled_features(net, split.images)
    grown = pooled_features(net, views)
    part = {name: idx[found[idx]] for name, idx in adults.parts.items()}
    k_fit, k_val = kids[split.train_idx], kids[split.val_idx]
    a_fit, a_val = grown[part["fit"]], grown[part["validation"]]
    y_fit, y_val = adults.labels[part["fit"]], adults.labels[part["validation"]]

    guard = fit_guard(np.concatenate([k_fit, a_fit]), k_val, quantile=GUARD_QUANTILE)
    guard.threshold = max(guard.threshold, float(np.quantile(guard.score(a_val), GUARD_QUANTILE)))
    guard.save(folder / OOD_FILE)
    gate, gate_table = fit_gate(k_fit, a_fit, k_val, a_val)
    adult, head_table = fit_adult_head(k_fit, split.labels[split.train_idx], a_fit, y_fit, a_val, y_val)
    population = Population(gate, adult)
    # Keep or drop: pediatric validation, clean and stressed, as served vs the pediatric head alone.
    pediatric = pediatric_head(net, config)
    y_kids = split.labels[split.val_idx]
    stressed = pooled_features(net, augment.stressed(split.images[split.val_idx], STRESS_COPIES, tr["seed"]))
    check = {}
    for name, x, y in (("clean", k_val, y_kids), ("stressed", stressed, np.tile(y_kids, STRESS_COPIES))):
        probs, thresholds, inside, _ = answer(x, pediatric, population)
        check[name] = {"outside": float(np.mean(~inside)), **paired_difference(
            y, (probs, thresholds), (pediatric.probability(x), pediatric.threshold))}
    kept = (all(c["roc_auc"]["ci95"][1] >= 0 for c in check.values())
            and roc_auc_score(y_val, adult.logits(a_val)) > roc_auc_score(y_val, pediatric.logits(a_val)))
    if not kept:  # X-rays outside the population are still flagged, and answered as before
        population.adult = pediatric
    population.save(folder / POPULATION_FILE)

    def share(accepted: np.ndarray) -> float:
        return float(np.mean(accepted))

    config["ood"] = {
        "file": OOD_FILE, "method": f"Mahalanobis distance, probabilistic PCA ({len(guard.variances)} components)",
        "features": "avg_pool (2048)", "threshold": guard.threshold,
        "threshold_rule": f"the larger of the {GUARD_QUANTILE:.1%} quantiles of pediatric and of adult "
                          "validation X-ray scores",
        "fitted_on": f"{len(k_fit)} pediatric training-part X-rays and {len(a_fit)} NIH adults (fit part); "
                     f"threshold on {len(k_val)} pediatric and {len(a_val)} adult validation X-rays",
        "validation_accepted": share(guard.score(k_val) <= guard.threshold),
        "validation_adults_accepted": share(guard.score(a_val) <= guard.threshold),
    }
    config["population"] = {
        "file": POPULATION_FILE, "trained_on": "children aged 1-5, Guangzhou Women and Children's Medical Center",
        "adults": {"source": SOURCE, "seed": tr["seed"],
                   "images": {name: int(len(idx)) for name, idx in part.items()},
                   "without_lungs": int((~found).sum())},
        "score": "P(unlike the training children): logistic regression on pooled features, children "
                 "(training part) vs adults (fit part), classes weighed equally",
        "threshold": gate.threshold, "threshold_rule": f"keeps {KEEP_CHILDREN:.0%} of pediatric validation X-rays",
        "gate_candidates": gate_table,
        "validation_adults_outside": share(gate.probability(a_val) > gate.threshold),
        "adult_head": {
            "rule": "last layer refitted (logistic regression) on pediatric training-part and adult fit-part "
                    "features, each population's classes balanced; the candidate with the best adult "
                    "validation ROC AUC; temperature by NLL and threshold for sensitivity "
                    f"{TARGET_SENSITIVITY:.0%} on adult validation",
            "candidates": head_table, "temperature": adult.temperature, "threshold": adult.threshold,
            "validation_auc": float(roc_auc_score(y_val, adult.logits(a_val))),
            "validation_auc_pediatric_head": float(roc_auc_score(y_val, pediatric.logits(a_val)))},
        "pediatric_validation_served_minus_before": check,
        "keep_rule": KEEP_RULE, "adult_head_kept": bool(kept),
    }
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    log(f"Guard threshold {guard.threshold:.3f}: validation children accepted "
        f"{config['ood']['validation_accepted']:.1%}, adults {config['ood']['validation_adults_accepted']:.1%}")
    for name, c in check.items():
        log(f"Pediatric validation ({name}), served minus pediatric head alone: ROC AUC "
            f"{c['roc_auc']['mean']:+.4f} {c['roc_auc']['ci95']}, accuracy {c['accuracy']['mean']:+.4f} "
            f"{c['accuracy']['ci95']} ({c['outside']:.1%} outside the population)")
    log(f"Adult head {'kept' if kept else 'dropped'} by the rule")
    log(f"Population threshold {gate.threshold:.3f}: validation adults outside "
        f"{config['population']['validation_adults_outside']:.1%}; adult head validation ROC AUC "
        f"{config['population']['adult_head']['validation_auc']:.3f}")
    return population


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True, help="chest_xray folder (its train split)")
    p.add_argument("--adults", required=True, help="adult_cxr folder")
    args = p.parse_args(argv)
    from . import cli
    return cli.run(lambda: fit_folder(args.model, args.data, args.adults))


if __name__ == "__main__":
    sys.exit(main())
