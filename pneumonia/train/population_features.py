"""The pooled features every population fit reads (`pneumonia.train.population`):
the training split's children, their stressed validation copies, the other
hospitals' children and the adults' parts, with their labels. One network
pass; `population --features FILE` keeps them so a refit of the same folder
skips it."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def gather(model_dir: str | Path, data_dir: str | Path, adults_dir: str | Path,
           hospitals_dir: str | Path | None = None) -> dict:
    """The pooled features (and labels) of every set the fit reads, the
    children's last layer and the adult parts' sizes: one network pass over
    children, adults and other hospitals."""
    from pneumonia.train.adults import TB, load_adults, load_hospitals
    from pneumonia.train.child_features import child_features
    from pneumonia.train.cli import log
    from pneumonia.train.model import pediatric_head, pooled_features
    cf = child_features(model_dir, data_dir)
    split, seed = cf.split, cf.config["training"]["seed"]
    sets = [load_adults(adults_dir, seed)] + ([load_hospitals(hospitals_dir, seed)] if hospitals_dir else [])
    feats, parts = [], {}   # per set: pooled features of the X-rays whose lungs were found
    for k, s in enumerate(sets):
        views, _, _, found = cf.reader.read(s.canons)
        feats.append(pooled_features(cf.net, views))
        for name, idx in s.parts.items():
            parts[(k, name)] = idx[found[idx]]
    log(f"Population: features of {len(split.images)} training-split X-rays and {sum(len(f) for f in feats)} others")

    def pick(part: str, who: str, labels: tuple[int, ...] = (0, 1, TB)) -> tuple[np.ndarray, np.ndarray]:
        """(pooled, labels) of a part: who = 'adults' or 'children' of the other hospitals."""
        xs, ys = [], []
        for k, s in enumerate(sets):
            idx = parts[(k, part)]
            adult = np.ones(len(s.labels), bool) if s.adult is None else s.adult
            idx = idx[(adult[idx] == (who == "adults")) & np.isin(s.labels[idx], labels)]
            xs.append(feats[k][idx])
            ys.append(s.labels[idx])
        return np.concatenate(xs), np.concatenate(ys)

    g = {"k_fit": cf.pooled[split.train_idx], "k_val": cf.pooled[split.val_idx], "stressed": cf.stressed,
         "y_kids": split.labels[split.val_idx], "y_fit": split.labels[split.train_idx],
         "o_fit": pick("fit", "children")[0], "o_val": pick("validation", "children")[0],
         "a_fit": pick("fit", "adults")[0], "a_val": pick("validation", "adults")[0]}
    g["h_fit"], g["hy_fit"] = pick("fit", "adults", (0, 1))
    g["h_val"], g["hy_val"] = pick("validation", "adults", (0, 1))
    head = pediatric_head(cf.net, cf.config)   # the children's last layer, for the routing loss
    g["pediatric_w"], g["pediatric_b"] = head.w, np.float64(head.b)
    g["part_sizes"] = np.array([sum(len(parts[(k, name)]) for k in range(len(sets)))
                                for name in ("fit", "validation", "report")])
    return g
