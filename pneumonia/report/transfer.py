"""How the served answer carries to X-rays from other hospitals: NIH adults, Shenzhen and Montgomery (report parts only)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pneumonia.metrics import evaluate_probs
from pneumonia.serve.guard import OOD_FILE, OODGuard
from pneumonia.serve.lung_view import LungReader
from pneumonia.serve.routing import POPULATION_FILE, Population, answer
from pneumonia.train.adults import HOSPITALS
from pneumonia.train.adults import SOURCE as ADULTS_SOURCE
from pneumonia.train.adults import TB, load_adults, load_hospitals
from pneumonia.train.model import pediatric_head, pooled_features


def served_answers(net, config: dict, folder: Path, views: np.ndarray) -> tuple[np.ndarray, dict]:
    """Pooled features of classifier inputs -> P(PNEUMONIA) as the app answers
    (`population.answer`) and, for the comparison, as the pediatric head alone does."""
    population = Population.load(folder / POPULATION_FILE) if (folder / POPULATION_FILE).is_file() else None
    pediatric = pediatric_head(net, config)
    pooled = pooled_features(net, views)
    probs, thresholds, share, _ = answer(pooled, pediatric, population)
    return pooled, {"probs": probs, "thresholds": thresholds, "adult_share": share, "population": population,
                    "pediatric": pediatric.probability(pooled), "pediatric_threshold": pediatric.threshold}


def compact(m: dict) -> dict:
    m.pop("reliability", None)
    return m


def routed(a: dict) -> np.ndarray:
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
    pooled, a = served_answers(net, config, folder, views[found])
    y = labels[found]
    out = {"part": "report", "source": ADULTS_SOURCE, "patients": len({adults.groups[i] for i in idx}),
           "without_lungs": int((~found).sum()),
           "served": compact(evaluate_probs(y, a["probs"], a["thresholds"], bootstrap, seed)),
           "pediatric_head": compact(evaluate_probs(y, a["pediatric"], a["pediatric_threshold"], bootstrap, seed)),
           "routed_to_adult_head": float(np.mean(routed(a)))}
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
    _, a = served_answers(net, config, folder, views[found])
    said = a["probs"] >= a["thresholds"]
    out = {"part": "report", "without_lungs": int((~found).sum())}
    rng = np.random.default_rng(seed)
    for hospital in HOSPITALS:
        for age, is_adult in (("adults", True), ("children", False)):
            here = (np.asarray(h.sources)[idx] == hospital) & (h.adult[idx] == is_adult)
            if not here.any():
                continue
            normal, tb = here & (h.labels[idx] == 0), here & (h.labels[idx] == TB)
            row = {"n": int(here.sum()), "routed_to_adult_head": float(np.mean(routed(a)[here])),
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
