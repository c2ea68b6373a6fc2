"""WHITE_RULE (5)'s numbers through the served path: edited films submitted as
uploads (`Predictor.analyze_arrays`: lungs found again, guard, routing, the
answering head, the lung-density rule), used to choose (validation) and by
bench/white_lung.py to report."""
from __future__ import annotations

import numpy as np

from pneumonia.train import non_opacity, opacity, white_conditions
from pneumonia.train.painted_features import WHITE_STRENGTHS

STRENGTHS = (0.5, 0.85, 1.0)


def decisions(predictor, canons: np.ndarray, batch: int = 32) -> np.ndarray:
    """The served decision of each film: NORMAL, PNEUMONIA, UNCERTAIN or REFUSED."""
    return answers(predictor, canons, batch)[0]


def answers(predictor, canons: np.ndarray, batch: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(decisions, P(PNEUMONIA), NaN where refused) of each film, as served."""
    out, p = [], []
    for i in range(0, len(canons), batch):
        for a in predictor.analyze_arrays(list(canons[i:i + batch])):
            ok = isinstance(a, dict) and a.get("decision")
            out.append(a["decision"] if ok else "REFUSED")
            p.append(a["probability_pneumonia"] if ok else np.nan)
    return np.asarray(out), np.asarray(p, np.float64)


def share(hit: np.ndarray, among: np.ndarray | None = None) -> float | None:
    among = np.ones(len(hit), bool) if among is None else among
    return round(float(np.mean(hit[among])), 4) if among.any() else None


def judge_set(predictor, canons: np.ndarray, masks: list, y: np.ndarray, clean: np.ndarray | None = None) -> dict:
    """One set of films (y: 0 normal, 1 disease) through one model: the clean
    decisions, one lung whitened (side alternating by film) at each strength,
    and each non-opacity on the normal films. `clean`: the clean decisions when known."""
    clean = decisions(predictor, canons) if clean is None else clean
    row = {"n_normal": int((y == 0).sum()), "n_disease": int((y == 1).sum()),
           "clean": {"normal_called_normal": share(clean == "NORMAL", y == 0),
                     "disease_called_pneumonia": share(clean == "PNEUMONIA", y == 1)}}
    for s in STRENGTHS:
        d = decisions(predictor, np.stack([opacity.whiten_lung(c, m, i % 2, s) for i, (c, m) in enumerate(zip(canons, masks))]))
        row[f"white_{s}"] = {"normal_called_pneumonia": share(d == "PNEUMONIA", y == 0),
                             "normal_uncertain": share(d == "UNCERTAIN", y == 0),
                             "disease_stays": share(d == "PNEUMONIA", (y == 1) & (clean == "PNEUMONIA")),
                             "answered": share(d != "REFUSED")}
    n = np.flatnonzero(y == 0)
    for name in non_opacity.EDITS if len(n) else ():
        d = decisions(predictor, np.stack([non_opacity.edit(canons[i], masks[i], name, k % 2) for k, i in enumerate(n)]))
        row[f"{name}_stays"] = share(d == "NORMAL", clean[n] == "NORMAL")
    return row


def meets(row: dict) -> bool:
    """WHITE_RULE (5) on a `judge_set` row: its numbers in `white_conditions.meets`'
    table (the whitened normals and the disease staying at 85% and 100%, each
    non-opacity; a number not measured meets nothing)."""
    table = {f"{name}_{s}": row[f"white_{s}"][key] for s in WHITE_STRENGTHS
             for name, key in (("white_normal", "normal_called_pneumonia"), ("white_disease_stays", "disease_stays"))}
    return white_conditions.meets(table | {f"{name}_stays": row.get(f"{name}_stays") for name in non_opacity.EDITS})
