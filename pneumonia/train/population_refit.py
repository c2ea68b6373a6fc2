"""The guard and the age gate refitted with every adult source, on the served
networks' features, and the routing chosen again with the new gate (rules.ADULT_RULE 6-7).

    python -m pneumonia.train.population_refit --model model --data chest_xray --adults adult_cxr \\
        --hospitals lung_masks --more adult_more --serving runs/reader_serving.npz --features runs/population.npz

The features are the exported fp32 networks' (what the app serves; the
Keras files need not be there): the children's training split and stressed
validation copies, the other hospitals' children, the fit and validation
parts of the seven adult sources (those parts' features from
`reader_serving`'s --out where they are there), and one in COPY_EVERY fit
films again with a 10% black border and re-saved as lossy WebP. Then
`pneumonia.train.population`'s fit, as written there, and ADULT_RULE (6)'s
routing, through `reader_serving.routing`.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys

import cv2
import numpy as np

from pneumonia.config import CONFIG_FILE, STRESS_COPIES
from pneumonia.folder import read_config
from pneumonia.serve.imaging import canonical
from pneumonia.serve.lung_view import LungReader
from pneumonia.serve.routing import POPULATION_FILE, READER_FILE, AdultReader, LinearHead, Population
from pneumonia.serve.runtime import HEAD_FILE, READER_IR, Network
from pneumonia.train import augment, data
from pneumonia.train.reader_serving import pooled, routing

COPY_EVERY = 8
WEBP_QUALITY = 50


def bordered(canon: np.ndarray) -> np.ndarray:
    h, w = canon.shape
    return canonical(cv2.copyMakeBorder(canon, h // 10, h // 10, w // 10, w // 10, cv2.BORDER_CONSTANT, value=0))


def webp(canon: np.ndarray) -> np.ndarray:
    ok, buf = cv2.imencode(".webp", canon, [cv2.IMWRITE_WEBP_QUALITY, WEBP_QUALITY])
    return cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)


def gather(folder: Path, args) -> dict:
    from pneumonia.train.adult_sources import load_films
    from pneumonia.train.adults import load_hospitals
    from pneumonia.train.cli import log
    config = read_config(folder)
    tr, seed = config["training"], config["training"]["seed"]
    lungs = LungReader.exported(folder, config, "f32")
    child, reader = Network(folder / config["runtime"]["classifier"], "f32"), Network(folder / READER_IR, "f32")

    def feats(canons: np.ndarray, labels: np.ndarray | None = None):
        """Pooled features of the films whose lungs are found (and their labels, if given)."""
        views, _, _, found = lungs.read(canons)
        return pooled(child, views[found]) if labels is None else (pooled(child, views[found]), labels[found])

    split, _, canons = data.lung_split(lungs, data.load_train_split(
        args.data, config["data"].get("limit_per_class"), seed, tr["val_fraction"]))
    kids = pooled(child, split.images)
    stressed_views = augment.lung_stressed(lungs.read, canons[split.val_idx], split.images[split.val_idx],
                                           STRESS_COPIES, seed)
    hosp = load_hospitals(args.hospitals, seed)
    other = {p: hosp.part(p)[~hosp.adult[hosp.part(p)]] for p in ("fit", "validation")}
    films = load_films(args.adults, args.hospitals, args.more, seed)
    fit = films.rows("fit")
    with np.load(args.serving) as f:   # the adults' validation and report parts, already read
        served = {name: k for k, name in enumerate(f["files"])}
        a_child, a_reader, a_labels, a_parts = f["child"], f["reader"], f["labels"], f["parts"]
    val = [served[films.files[i]] for i in films.rows("validation") if films.files[i] in served]
    rng = np.random.default_rng([seed, 7])
    k_copy = rng.permutation(canons[split.train_idx])[:len(split.train_idx) // COPY_EVERY]
    a_copy = films.canons[rng.permutation(fit)[:len(fit) // COPY_EVERY]]
    log(f"Population refit: {len(kids)} children, {len(fit)} adult fit films, copies of {len(k_copy)} + {len(a_copy)}")
    copies = lambda c: feats(np.stack([bordered(x) for x in c] + [webp(x) for x in c]))   # noqa: E731
    g = {"k_fit": kids[split.train_idx], "k_val": kids[split.val_idx], "stressed": pooled(child, stressed_views),
         "y_kids": split.labels[split.val_idx], "y_fit": split.labels[split.train_idx],
         "o_fit": np.concatenate([feats(hosp.canons[other["fit"]]), copies(k_copy)]),
         "o_val": feats(hosp.canons[other["validation"]]),
         "a_val": a_child[val].astype(np.float32)}
    fit_x, fit_y = feats(films.canons[fit], films.labels[fit])   # one pass: the guard's, and the head's two classes
    g["a_fit"] = np.concatenate([fit_x, copies(a_copy)])
    two = np.isin(a_labels[val], (0, 1))
    g["h_fit"], g["hy_fit"] = fit_x[np.isin(fit_y, (0, 1))], fit_y[np.isin(fit_y, (0, 1))]   # old adult head, unused
    g["h_val"], g["hy_val"] = g["a_val"][two], a_labels[val][two]
    g["r_val"], g["r_stressed"] = pooled(reader, split.images[split.val_idx]), pooled(reader, stressed_views)
    g["ra_val"] = a_reader[val][two].astype(np.float32)   # aligned with h_val
    with np.load(folder / HEAD_FILE) as f:
        g["pediatric_w"], g["pediatric_b"] = f["w"].astype(np.float64), np.float64(f["b"])
    g["part_sizes"] = np.array([len(films.rows(p)) for p in ("fit", "validation", "report")])
    return g


def routing_sets(g) -> dict[str, dict]:
    """ADULT_RULE (6)'s validation sets from the refit's features: both networks' features and labels."""
    return {"validation children": {"child": g["k_val"], "reader": g["r_val"], "y": g["y_kids"]},
            "validation children, stressed": {"child": g["stressed"], "reader": g["r_stressed"],
                                              "y": np.tile(g["y_kids"], STRESS_COPIES)},
            "adults' validation parts": {"child": g["h_val"], "reader": g["ra_val"], "y": g["hy_val"]}}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for flag in ("--model", "--data", "--adults", "--hospitals", "--more", "--serving"):
        p.add_argument(flag, required=True)
    p.add_argument("--features", default="runs/population.npz", help="read if it exists, else written")
    args = p.parse_args(argv)
    from pneumonia.train.cli import log
    from pneumonia.train.population import fit_folder
    folder = Path(args.model)
    if not Path(args.features).exists():
        np.savez(args.features, **gather(folder, args))
    population = fit_folder(folder, args.data, args.adults, args.hospitals, args.features)
    config = read_config(folder)
    with np.load(args.features) as g:
        child = LinearHead(g["pediatric_w"], float(g["pediatric_b"]), config["temperature"], config["threshold"])
        sets = routing_sets(g)
    chosen = routing(sets, Population.load(folder / POPULATION_FILE), child, AdultReader.load(folder / READER_FILE))
    config["adult_reader"]["routing"] = chosen
    config["ood"]["fitted_on"] = config["ood"]["fitted_on"].replace(
        "(NIH, Shenzhen, Montgomery fit parts)", "(the fit parts of NIH, RSNA, BIMCV, JSRT, TBX11K, Shenzhen and "
        f"Montgomery, with bordered and WebP copies of one in {COPY_EVERY}: rules.ADULT_RULE 7)")
    config["population"]["adults"]["others"] = ("the fit parts of all seven adult sources (NIH, RSNA, BIMCV, JSRT, "
                                                "TBX11K, Shenzhen, Montgomery), with bordered and WebP copies of "
                                                f"one in {COPY_EVERY} fit films (rules.ADULT_RULE 7)")
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    log(f"Routing: {chosen['routing']} ({chosen['log_loss']}); gate threshold {population.gate.threshold:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
