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
from pneumonia.train import quantize, uncertain, worst_source
from pneumonia.train.adult_fit import balanced_weights
from pneumonia.train.operating_point import fit_operating_point, fit_temperature
from pneumonia.train.painted_features import STRENGTHS
from pneumonia.train.white_conditions import CONDITIONS, Decide, choose, edits, meets

SHARES = (0.25, 0.5, 1.0)
STRENGTHS_C = (0.01, 0.1, 1.0)
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


def fit_sets(g, p: str, labels: str) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, dict]:
    """(features, labels, sources or None, painted features by strength) the refit reads:
    the fit films and painted normals, with their augmented views where `g` has them (WHITE_RULE 7)."""
    x, y = [g[f"{p}_fit"]], [g[labels]]
    src = [g["as_fit"]] if p == "a" else None
    painted = {s: [g[f"{p}_fitpaint_{s}"][g[f"{p}_fitpaint_{s}_found"]]] for s in STRENGTHS}
    if f"{p}_aug" in g:
        ok = g[f"{p}_aug_found"]
        x.append(g[f"{p}_aug"][ok])
        y.append(g[f"{p}_aug_y"][ok])
        if src is not None:
            src.append(g["a_aug_sources"][ok])
        for s in STRENGTHS:
            painted[s].append(g[f"{p}_augpaint_{s}"][g[f"{p}_augpaint_{s}_found"]])
    return (np.concatenate(x), np.concatenate(y), None if src is None else np.concatenate(src),
            {s: np.concatenate(v) for s, v in painted.items()})


def children(g, served: tuple) -> dict:
    """WHITE_RULE for the children's last layer: every candidate judged, the chosen one (or None)."""
    y, ys = g["ky_val"], np.tile(g["ky_val"], STRESS_COPIES)
    x_fit, y_fit, _, painted = fit_sets(g, "k", "ky_fit")

    def judge(settings, w, b, point=None):
        lv, ls = g["k_val"] @ w + b, g["k_stressed"] @ w + b
        t, thr = point or fit_operating_point(lv, y, ls, TARGET_SENSITIVITY)
        d = Decide(w, b, t, thr)
        row = {**settings, "temperature": float(t), "threshold": float(thr),
               "auc": float(roc_auc_score(y, lv)), "auc_stressed": float(roc_auc_score(ys, ls)),
               "specificity": float(np.mean(d.normal(g["k_val"][y == 0]))),
               "edits": edits(g, "kv", d, g["k_val"], y, np.ones(len(y), bool))}
        return row, d

    before, _ = judge({"served": True}, *served[:2], served[2:])
    rows = []
    for settings, w, b in candidates(x_fit, y_fit, np.ones(len(y_fit)), painted):
        row, d = judge(settings, w, b)
        row["eligible"] = row["auc"] >= before["auc"] - 0.005 and row["auc_stressed"] >= before["auc_stressed"] - 0.005
        row["meets"] = meets(row["edits"]) and row["specificity"] >= before["specificity"] - CONDITIONS["specificity_drop"]
        rows.append((row, d))
    return choose(before, rows, "auc")


def logit_point(lv: np.ndarray, stressed: np.ndarray, y: np.ndarray, s: np.ndarray, scored: dict
                ) -> tuple[float, float, dict]:
    """(temperature, threshold, band) of validation logits by the served rules for adults: the temperature
    on validation plus one stressed copy, ADULT_RULE (3)'s worst-source threshold, (5)'s band."""
    t = fit_temperature(np.r_[lv, stressed], np.tile(y, 2))
    thr = float(sigmoid(scored["threshold"] / t))
    return t, thr, uncertain.choose_band(sigmoid(lv / t), y, s, thr)


def adult_point(g, w: np.ndarray, b: float, reader: AdultReader | None = None) -> tuple[Decide, dict]:
    """A reader's last layer with its operating point on the adults' validation features:
    ADULT_RULE (3)'s worst-source threshold, the temperature on validation plus one stressed
    copy, (5)'s band (or `reader`'s own); (decisions, the worst-source score)."""
    y, s = g["ay_val"], g["as_val"]
    lv = g["a_val"] @ w + b
    scored = worst_source.score(lv, y, s)
    band = None
    if reader is None:
        t, thr, band = logit_point(lv, g["a_stressed"] @ w + b, y, s, scored)
        reader = AdultReader(LinearHead(w, b, t, thr), band["low"], band["high"])
    h = reader.head
    d = Decide(h.w, h.b, h.temperature, h.threshold, reader.low, reader.high)
    d.band = band
    return d, scored


def adults(g, served: AdultReader) -> dict:
    """WHITE_RULE for the adult reader's last layer."""
    y, s = g["ay_val"], g["as_val"]
    x_fit, y_fit, s_fit, painted = fit_sets(g, "a", "ay_fit")
    whitened_normal = np.isin(s, WHITENED_ADULT_SOURCES)

    def judge(settings, w, b, reader: AdultReader | None = None):
        d, scored = adult_point(g, w, b, reader)
        row = {**settings, "temperature": float(d.t), "threshold": float(d.thr), "low": d.low,
               "high": d.high, "score": scored["score"], "where": scored["where"],
               "answered": float(np.mean(d.pneumonia(g["a_val"]) | d.normal(g["a_val"]))),
               "edits": edits(g, "av", d, g["a_val"], y, whitened_normal)}
        return row, d

    before, _ = judge({"served": True}, served.head.w, served.head.b, served)
    rows = []
    for settings, w, b in candidates(x_fit, y_fit, balanced_weights(y_fit, s_fit), painted):
        row, d = judge(settings, w, b)
        row["eligible"], row["meets"] = row["score"] >= before["score"] - 0.01, meets(row["edits"])
        rows.append((row, d))
    return choose(before, rows, "score")


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
    from pneumonia.train.cli import log, parser
    p = parser(__doc__, ("--model", "--data", "--adults", "--hospitals", "--more"))
    p.add_argument("--features", default="runs/white35.npz", help="read if it exists, else written")
    p.add_argument("--augmented", help="WHITE_RULE (7): the augmented fit sets, read if the file exists, else written")
    p.add_argument("--population", default="runs/population.npz",
                   help="population_refit's features: the children's clean features and the routing's sets")
    args = p.parse_args(argv)
    from pneumonia.train.painted_features import gather
    from pneumonia.train.population_refit import routing_sets
    from pneumonia.train.reader_serving import routing
    folder = Path(args.model)
    if not Path(args.features).exists():
        np.savez(args.features, **gather(folder, args.data, (args.adults, args.hospitals, args.more), args.features,
                                          args.population))
    g = dict(np.load(args.features))
    if args.augmented:
        from pneumonia.train.painted_features import gather_augmented
        if not Path(args.augmented).exists():
            np.savez(args.augmented, **gather_augmented(folder, args.data, (args.adults, args.hospitals, args.more)))
        g.update(np.load(args.augmented))
    config = read_config(folder)
    head = quantize.head_of(folder, config)
    kids, grown = children(g, head), adults(g, AdultReader.load(folder / READER_FILE))
    out = {"rule": WHITE_RULE, "augmented": bool(args.augmented), "children": record(kids), "adults": record(grown)}
    previous = config.get("white_lung") or {}
    if args.augmented and previous and not previous.get("augmented"):   # the run before WHITE_RULE (7), reported beside
        out["first_run"] = {k: previous[k] for k in ("children", "adults")}
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
