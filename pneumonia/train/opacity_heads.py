"""Opacity as evidence: the served last layers refitted with painted opacities (rules.WHITE_RULE).

    python -m pneumonia.train.opacity_heads --model model --data chest_xray --adults adult_cxr \\
        --hospitals lung_masks --more adult_more --features runs/white35.npz --population runs/population.npz

The networks stay; the children's last layer (head.npz) and the adult
reader's (reader.npz) are refitted on the served fp32 networks' pooled
features, NORMAL fit films painted with the training families counting as
PNEUMONIA (`painted_features`). Each candidate gets its operating point by
the served rules and is judged on validation: eligible if it keeps the served
layer's ROC AUC (children) or worst-source score (adults); ranked by painted
validation normals called PNEUMONIA; shipped only if the held-out family (one
lung whitened) and the non-opacities meet WHITE_RULE (5). Then the routing is
chosen again and the int8 classifier judged again with the new layer.
Everything is recorded under `white_lung` in the folder's config.json.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from pneumonia.calibration import sigmoid
from pneumonia.config import CONFIG_FILE, STRESS_COPIES, TARGET_SENSITIVITY
from pneumonia.folder import read_config
from pneumonia.rules import WHITE_RULE
from pneumonia.serve.routing import POPULATION_FILE, READER_FILE, AdultReader, LinearHead, Population
from pneumonia.train import non_opacity, quantize, uncertain, worst_source
from pneumonia.train.adult_fit import balanced_weights
from pneumonia.train.operating_point import fit_operating_point, fit_temperature
from pneumonia.train.painted_features import STRENGTHS, WHITE_STRENGTHS

SHARES = (0.25, 0.5, 1.0)
STRENGTHS_C = (0.01, 0.1, 1.0)
CONDITIONS = {"white_normal": 0.90, "white_disease_stays": 0.95, "non_opacity_stays": 0.95, "specificity_drop": 0.03}
WHITENED_ADULT_SOURCES = ("shenzhen", "montgomery", "jsrt")


def fit_linear(x: np.ndarray, y: np.ndarray, weight: np.ndarray, c: float) -> tuple[np.ndarray, float]:
    """L2 logistic regression on standardised features, folded back into (w, b) on raw ones."""
    mean, std = x.mean(0), x.std(0) + 1e-6
    m = LogisticRegression(C=c, max_iter=3000).fit((x - mean) / std, y, sample_weight=weight)
    return m.coef_[0] / std, float(m.intercept_[0] - m.coef_[0] @ (mean / std))


def candidates(x: np.ndarray, y: np.ndarray, weight: np.ndarray, painted: dict[float, np.ndarray]):
    """WHITE_RULE (3)'s grid: (settings, w, b); share 0 is the refit without paint."""
    normal_weight = weight[y == 0].sum()
    for c in STRENGTHS_C:
        yield {"strength": None, "share": 0.0, "C": c}, *fit_linear(x, y, weight, c)
    for s in STRENGTHS:
        for share in SHARES:
            px = painted[s]
            pw = np.full(len(px), share * normal_weight / len(px))
            for c in STRENGTHS_C:
                w, b = fit_linear(np.concatenate([x, px]), np.r_[y, np.ones(len(px), int)], np.r_[weight, pw], c)
                yield {"strength": s, "share": share, "C": c}, w, b


def rate(hit: np.ndarray, among: np.ndarray) -> float | None:
    return float(np.mean(hit[among])) if among.any() else None


class Decide:
    """A last layer with its operating point: decisions as served (the band only for adults)."""

    def __init__(self, w, b, temperature: float, threshold: float, low: float | None = None, high: float | None = None):
        self.w, self.b, self.t, self.thr = w, b, temperature, threshold
        self.low, self.high = (threshold, threshold) if low is None else (low, high)

    def p(self, x: np.ndarray) -> np.ndarray:
        return sigmoid((x.astype(np.float64) @ self.w + self.b) / self.t)

    def pneumonia(self, x: np.ndarray) -> np.ndarray:
        p = self.p(x)
        return (p >= self.thr) & ~((p >= self.low) & (p < self.high))

    def normal(self, x: np.ndarray) -> np.ndarray:
        p = self.p(x)
        return (p < self.thr) & ~((p >= self.low) & (p < self.high))


def edits(g, prefix: str, d: Decide, clean: np.ndarray, y: np.ndarray, whitened_normal: np.ndarray) -> dict:
    """WHITE_RULE (5)'s numbers for one layer: the held-out family and the non-opacities.
    `clean`: validation features; `whitened_normal` picks the normal films the whitened condition counts."""
    out = {}
    both = np.isin(y, (0, 1))
    yb, cb = y[both], clean[both]
    for s in WHITE_STRENGTHS:
        hit = d.pneumonia(g[f"{prefix}_white_{s}"]) & g[f"{prefix}_white_{s}_found"]
        out[f"white_normal_{s}"] = rate(hit, (yb == 0) & whitened_normal[both])
        out[f"white_disease_stays_{s}"] = rate(hit, (yb == 1) & d.pneumonia(cb))
    normal_called = d.normal(clean[y == 0])
    for name in non_opacity.EDITS:
        stays = d.normal(g[f"{prefix}_{name}"]) & g[f"{prefix}_{name}_found"]
        out[f"{name}_stays"] = rate(stays, normal_called)
    out["painted_called"] = float(np.mean((d.p(g[f"{prefix}_painted"]) >= d.thr) & g[f"{prefix}_painted_found"]))
    return out


def meets(e: dict) -> bool:
    """WHITE_RULE (5) on an `edits` table (an empty set meets nothing)."""
    limit = lambda k: CONDITIONS[k.rsplit("_", 1)[0] if k.startswith("white") else "non_opacity_stays"]   # noqa: E731
    return all(v is not None and v >= limit(k) for k, v in e.items() if k != "painted_called")


def children(g, served: tuple) -> dict:
    """WHITE_RULE for the children's last layer: every candidate judged, the chosen one (or None)."""
    y, ys = g["ky_val"], np.tile(g["ky_val"], STRESS_COPIES)
    painted = {s: g[f"k_fitpaint_{s}"][g[f"k_fitpaint_{s}_found"]] for s in STRENGTHS}

    def judge(settings, w, b, point=None):
        t, thr = point or fit_operating_point(g["k_val"] @ w + b, y, g["k_stressed"] @ w + b, TARGET_SENSITIVITY)
        d = Decide(w, b, t, thr)
        row = {**settings, "temperature": float(t), "threshold": float(thr),
               "auc": float(roc_auc_score(y, g["k_val"] @ w + b)),
               "auc_stressed": float(roc_auc_score(ys, g["k_stressed"] @ w + b)),
               "specificity": float(np.mean(d.normal(g["k_val"][y == 0]))),
               "edits": edits(g, "kv", d, g["k_val"], y, np.ones(len(y), bool))}
        return row, d

    before, _ = judge({"served": True}, *served[:2], served[2:])
    rows = []
    for settings, w, b in candidates(g["k_fit"], g["ky_fit"], np.ones(len(g["ky_fit"])), painted):
        row, d = judge(settings, w, b)
        row["eligible"] = row["auc"] >= before["auc"] - 0.005 and row["auc_stressed"] >= before["auc_stressed"] - 0.005
        row["meets"] = meets(row["edits"]) and row["specificity"] >= before["specificity"] - CONDITIONS["specificity_drop"]
        rows.append((row, d))
    return choose(before, rows, "auc")


def adults(g, served: AdultReader) -> dict:
    """WHITE_RULE for the adult reader's last layer."""
    y, s = g["ay_val"], g["as_val"]
    weight = balanced_weights(g["ay_fit"], g["as_fit"])
    painted = {k: g[f"a_fitpaint_{k}"][g[f"a_fitpaint_{k}_found"]] for k in STRENGTHS}
    whitened_normal = np.isin(s, WHITENED_ADULT_SOURCES)

    def judge(settings, w, b, reader: AdultReader | None = None):
        lv = g["a_val"] @ w + b
        scored = worst_source.score(lv, y, s)
        if reader is None:
            t = fit_temperature(np.r_[lv, g["a_stressed"] @ w + b], np.tile(y, 2))
            thr = float(sigmoid(scored["threshold"] / t))
            band = uncertain.choose_band(sigmoid(lv / t), y, s, thr)
            reader = AdultReader(LinearHead(w, b, t, thr), band["low"], band["high"])
        h = reader.head
        d = Decide(h.w, h.b, h.temperature, h.threshold, reader.low, reader.high)
        d.band = band if settings.get("share") is not None else None
        row = {**settings, "temperature": float(h.temperature), "threshold": float(h.threshold), "low": reader.low,
               "high": reader.high, "score": scored["score"], "where": scored["where"],
               "answered": float(np.mean(d.pneumonia(g["a_val"]) | d.normal(g["a_val"]))),
               "edits": edits(g, "av", d, g["a_val"], y, whitened_normal)}
        return row, d

    before, _ = judge({"served": True}, served.head.w, served.head.b, served)
    rows = []
    for settings, w, b in candidates(g["a_fit"], g["ay_fit"], weight, painted):
        row, d = judge(settings, w, b)
        row["eligible"], row["meets"] = row["score"] >= before["score"] - 0.01, meets(row["edits"])
        rows.append((row, d))
    return choose(before, rows, "score")


def choose(before: dict, rows: list[tuple[dict, Decide]], second: str) -> dict:
    """The best-ranked eligible candidate meeting the conditions (WHITE_RULE 4-5), or none."""
    ranked = sorted((r for r in rows if r[0]["eligible"] and r[0]["share"] > 0),
                    key=lambda r: (r[0]["edits"]["painted_called"], r[0][second]), reverse=True)
    chosen = next((r for r in ranked if r[0]["meets"]), None)
    return {"served": before, "candidates": [r for r, _ in rows],
            "ranked_first": ranked[0][0] if ranked else None,
            "chosen": chosen[0] if chosen else None, "layer": chosen[1] if chosen else None}


def record(result: dict) -> dict:
    return {k: result[k] for k in ("served", "ranked_first", "chosen", "candidates")}


def rejudge_int8(folder: Path, config: dict, views: np.ndarray, labels: np.ndarray, head: tuple) -> dict:
    """WHITE_RULE (6): the int8 classifier against the fp32 export, with the new last layer."""
    from pneumonia.serve.imaging import grey_to_rgb
    from pneumonia.serve.runtime import Network
    x, rt = grey_to_rgb(views), config["runtime"]
    reference = quantize.answers(quantize.conv_block(Network(folder / rt["classifier"], "f32"), x), head)
    return quantize.agreement(reference, quantize.conv_block(Network(folder / rt["int8"]["classifier"], "f32"), x),
                              labels, head)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for flag in ("--model", "--data", "--adults", "--hospitals", "--more"):
        p.add_argument(flag, required=True)
    p.add_argument("--features", default="runs/white35.npz", help="read if it exists, else written")
    p.add_argument("--population", default="runs/population.npz",
                   help="population_refit's features: the children's clean features and the routing's sets")
    args = p.parse_args(argv)
    from pneumonia.train.cli import log
    from pneumonia.train.painted_features import gather
    from pneumonia.train.population_refit import routing_sets
    from pneumonia.train.reader_serving import routing
    folder = Path(args.model)
    if not Path(args.features).exists():
        np.savez(args.features, **gather(folder, args.data, (args.adults, args.hospitals, args.more), args.features,
                                          args.population))
    g = dict(np.load(args.features))
    config = read_config(folder)
    head = quantize.head_of(folder, config)
    kids, grown = children(g, head), adults(g, AdultReader.load(folder / READER_FILE))
    out = {"rule": WHITE_RULE, "children": record(kids), "adults": record(grown)}
    for name, r in (("children", kids), ("adults", grown)):
        log(f"{name}: served {r['served']['edits']}; chosen {r['chosen'] and {k: r['chosen'][k] for k in ('strength', 'share', 'C')}}")
    if kids["layer"] is not None:
        d = kids["layer"]
        np.savez(folder / config["runtime"]["head"], w=d.w.astype(np.float32), b=np.float32(d.b))
        config["temperature"], config["threshold"] = float(d.t), float(d.thr)
        int8 = rejudge_int8(folder, config, g["k_val_views"], g["ky_val"], (d.w, d.b, d.t, d.thr))
        config["runtime"]["int8"]["passed"] = bool(config["runtime"]["int8"]["passed"] and int8["passes"])
        config["runtime"]["int8"]["white_lung_head"] = int8
        log(f"int8 with the new head: {'passes' if int8['passes'] else 'misses'} ({int8['decisions_agree']:.4f} agree)")
    if grown["layer"] is not None:
        d = grown["layer"]
        AdultReader(LinearHead(d.w, d.b, d.t, d.thr), d.low, d.high).save(folder / READER_FILE)
        ar = config["adult_reader"]
        ar["temperature"], ar["threshold"] = float(d.t), float(d.thr)
        ar["band"] = d.band
    if kids["layer"] is not None or grown["layer"] is not None:
        with np.load(args.population) as pop:
            sets = routing_sets(pop)
        child = LinearHead(*quantize.head_of(folder, config))
        config["adult_reader"]["routing"] = routing(sets, Population.load(folder / POPULATION_FILE), child,
                                                    AdultReader.load(folder / READER_FILE))
        log(f"Routing: {config['adult_reader']['routing']['routing']}")
    config["white_lung"] = out
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2, default=float) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
