"""WHITE_RULE (8): the lung-density rule beside the classifier, fitted on validation,
and the children's last layer chosen again with it.

    python -m pneumonia.train.opacity_rule --model model --before runs/layer_before --data chest_xray \
        --adults adult_cxr --hospitals lung_masks --more adult_more [--out runs/opacity_rule.json]

`--before`: a folder with the last layer served before the refit (head.npz
and config.json, e.g. from git). Every film passes the served path at fp32.
Writes config["opacity_rule"]; where the layer before wins, its head.npz and
its threshold, temperature, routing and int8 judgement come back.
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
import shutil
import sys

import numpy as np
from sklearn.metrics import roc_auc_score

from pneumonia.config import CONFIG_FILE
from pneumonia.folder import read_config
from pneumonia.rules import WHITE_RULE
from pneumonia.serve.density import OpacityRule, lung_density
from pneumonia.serve.routing import LinearHead
from pneumonia.train import data
from pneumonia.train.adult_sources import NORMAL, OPACITY, load_films
from pneumonia.train.white_conditions import CONDITIONS
from pneumonia.train.white_served import answers, judge_set, meets

PERCENTILE, MARGIN, STEP = 99.5, 0.10, 0.05
NORMAL_SOURCES = ("nih", "rsna", "jsrt", "shenzhen", "montgomery")
OPACITY_SOURCES = ("rsna", "nih", "bimcv")
SPECIFICITY_DROP = 0.01


def validation_sets(args, config: dict) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{set: (canons, labels 0/1)}: the children's validation part, each adult source's validation part."""
    tr = config["training"]
    split = data.load_train_split(args.data, config["data"].get("limit_per_class"), tr["seed"], tr["val_fraction"])
    films = load_films(args.adults, args.hospitals, args.more,
                       config.get("adult_reader", {}).get("training", {}).get("seed", 0))
    sets = {"children": (split.images[split.val_idx], split.labels[split.val_idx])}
    for src in dict.fromkeys(NORMAL_SOURCES + OPACITY_SOURCES):
        labels = tuple(k for k, among in ((NORMAL, NORMAL_SOURCES), (OPACITY, OPACITY_SOURCES)) if src in among)
        rows = films.rows("validation", (src,), labels)
        sets[src] = (films.canons[rows], (films.labels[rows] == OPACITY).astype(int))
    return sets


def fit_rule(dens: dict[str, np.ndarray], labels: dict[str, np.ndarray]) -> tuple[OpacityRule, dict]:
    """The threshold from every set's validation normals, the probability from the films that dense."""
    tops = {k: float(np.percentile(d[labels[k] == 0], PERCENTILE)) for k, d in dens.items() if (labels[k] == 0).any()}
    threshold = round(math.ceil((max(tops.values()) + MARGIN) / STEP - 1e-9) * STEP, 2)
    d, y = np.concatenate(list(dens.values())), np.concatenate(list(labels.values()))
    n, k = int((d >= threshold).sum()), int(y[d >= threshold].sum())
    per_set = {s: {"n": int((dens[s] >= threshold).sum()), "disease": int(labels[s][dens[s] >= threshold].sum()),
                   "films": len(dens[s])} for s in dens}
    return OpacityRule(threshold, (k + 1) / (n + 2), n, k), {"percentile_99_5": tops, "reaching": per_set}


def layer(folder: Path) -> tuple[LinearHead, dict]:
    config = read_config(folder)
    with np.load(folder / "head.npz") as f:
        return LinearHead(f["w"].astype(np.float64), float(f["b"]), float(config["temperature"]),
                          float(config["threshold"])), config


def judge_layer(predictor, head: LinearHead, children: tuple, clean_only: bool = False) -> dict:
    """WHITE_RULE (5) on the validation children with this layer (and the
    predictor's rule), as served; `clean_only`: the clean films' numbers alone."""
    predictor.head, predictor.threshold = head, head.threshold
    canons, masks, y = children
    clean, p = answers(predictor, canons)
    row = {} if clean_only else judge_set(predictor, canons, masks, y, clean)
    row["auc"] = round(float(roc_auc_score(y, p)), 4)
    row["specificity"] = float(np.mean(clean[y == 0] == "NORMAL"))
    return row


def main(argv: list[str] | None = None) -> int:
    from pneumonia.train.cli import parser
    p = parser(__doc__, ("--model", "--before", "--data", "--adults", "--hospitals", "--more"))
    p.add_argument("--out", help="the whole table as JSON here too")
    args = p.parse_args(argv)
    os.environ["PNEUMONIA_PRECISION"] = "f32"
    from pneumonia.serve.loader import load_folder
    folder, before = Path(args.model), Path(args.before)
    config = read_config(folder)
    predictor = load_folder(folder, str(folder), str(folder)).predictor
    sets, found = validation_sets(args, config), {}
    for name, (canons, y) in sets.items():
        lungs = predictor.reader.find(canons)
        ok = np.asarray([l is not None and l.found for l in lungs])
        found[name] = (canons[ok], [l.mask for l, k in zip(lungs, ok) if k], y[ok])
    dens = {k: np.asarray([max(lung_density(c, m)) for c, m in zip(v[0], v[1])]) for k, v in found.items()}
    rule, table = fit_rule(dens, {k: v[2] for k, v in found.items()})
    print(json.dumps({"rule": rule.as_dict(), **table}, indent=1), flush=True)
    reader = predictor.adult_reader
    need = max(reader.head.threshold, reader.high) if reader is not None else 0.0
    layers = {"refit": layer(folder), "before": layer(before)}
    predictor.opacity_rule = None   # a folder loaded with a rule is judged without it first
    served = judge_layer(predictor, layers["before"][0], found["children"], clean_only=True)
    predictor.opacity_rule = rule
    rows = {}
    for name, (head, _) in layers.items():
        rows[name] = judge_layer(predictor, head, found["children"])
        rows[name]["rule_probability_covers"] = rule.probability >= max(need, head.threshold)
        rows[name]["specificity_holds"] = rows[name]["specificity"] >= served["specificity"] - CONDITIONS["specificity_drop"]
        rows[name]["meets"] = all((meets(rows[name]), rows[name]["rule_probability_covers"],
                                   rows[name]["specificity_holds"]))
        print(name, json.dumps(rows[name]), flush=True)
    ok = [n for n in rows if rows[n]["meets"]]
    chosen = max(ok, key=lambda n: rows[n]["auc"]) if ok else None
    adults = {}
    if chosen:
        head = layers[chosen][0]
        predictor.head, predictor.threshold = head, head.threshold
        for src in found:
            if src == "children":
                continue
            canons, masks, y = found[src]
            with_rule = answers(predictor, canons)[0]
            predictor.opacity_rule = None
            without = answers(predictor, canons)[0]
            predictor.opacity_rule = rule
            adults[src] = judge_set(predictor, canons, masks, y, with_rule) | {
                "specificity_without_rule": float(np.mean(without[y == 0] == "NORMAL")) if (y == 0).any() else None}
    drops = {s: a["specificity_without_rule"] - a["clean"]["normal_called_normal"] for s, a in adults.items()
             if a["specificity_without_rule"] is not None}
    shipped = chosen is not None and all(v <= SPECIFICITY_DROP for v in drops.values())
    result = {"rule_text": WHITE_RULE[WHITE_RULE.index("(8)"):], "rule": rule.as_dict(), "shipped": shipped, "layer": chosen if shipped else None,
              **table, "children": rows, "adults": adults, "specificity_drops": drops, "served_before_without_rule": served,
              "command": "python -m pneumonia.train.opacity_rule " + " ".join(argv or sys.argv[1:])}
    print(json.dumps({k: result[k] for k in ("rule", "shipped", "layer", "specificity_drops")}), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1))
    config["opacity_rule"] = result
    if shipped and chosen == "before":
        shutil.copy(before / "head.npz", folder / "head.npz")
        old = layers["before"][1]
        # The refit's operating point, int8 judgement and routing are kept as its record.
        config.setdefault("white_lung", {})["withdrawn_by_step_8"] = {
            "threshold": config["threshold"], "temperature": config["temperature"],
            "int8": config.get("runtime", {}).get("int8"), "routing": config.get("adult_reader", {}).get("routing")}
        for key in ("threshold", "temperature"):
            config[key] = old[key]
        for section, key in (("runtime", "int8"), ("adult_reader", "routing")):
            if key in old.get(section, {}):
                config[section][key] = old[section][key]
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
