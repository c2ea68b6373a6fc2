"""Everything the app needs to serve the adult reader, from its run folder (rules.ADULT_RULE 5-6).

    python -m pneumonia.train.reader_serving --run runs/adult33/reader --model model --data chest_xray \\
        --adults adult_cxr --hospitals lung_masks --more adult_more --out runs/reader_serving.npz

1. Export: the reader's ResNet50 up to its last conv block as `reader.xml/.bin`
   (fp16 weights, like `pneumonia.train.export`).
2. Its last layer, temperature, threshold and can't-tell band as `reader.npz`;
   the band by `pneumonia.train.uncertain` on the run's validation predictions.
3. int8: the reader quantised by the classifier's rule (`pneumonia.train.quantize`),
   calibrated on lung views of adults' fit parts, judged by PRECISION_BAR on
   the adults' validation parts.
4. Routing (ADULT_RULE 6): hard at the gate's threshold, or the two
   probabilities mixed by P(adult); the lower mean log loss over validation
   children (clean, stressed) and the adults' validation parts, each set
   weighing the same, through the exported fp32 networks.
All is recorded under `adult_reader` in the folder's config.json. Both
networks' pooled features of every film read are saved to --out, for the
guard's and the report's numbers without another pass.
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
import sys

import numpy as np

from pneumonia import calibration
from pneumonia.config import CONFIG_FILE, LAST_CONV_LAYER, MODEL_FILE, STRESS_COPIES
from pneumonia.rules import ADULT_RULE
from pneumonia.folder import read_config
from pneumonia.serve.imaging import grey_to_rgb
from pneumonia.serve.lung_view import LungReader
from pneumonia.serve.routing import MIN_SHARE, POPULATION_FILE, READER_FILE, AdultReader, LinearHead, Population
from pneumonia.serve.runtime import HEAD_FILE, READER_INT8_IR, READER_IR, Network
from pneumonia.train import augment, data, quantize, uncertain

CLASSES = (0, 1)


def export_network(run: Path, folder: Path) -> tuple[np.ndarray, float, str]:
    """The reader's trunk as READER_IR in `folder`; returns (w, b, sha256 of the Keras file)."""
    import keras

    from pneumonia.train.export import _export
    net = keras.saving.load_model(run / MODEL_FILE, compile=False)
    _export(keras.Model(net.input, net.get_layer(LAST_CONV_LAYER).output), folder / READER_IR, True)
    w, b = net.get_layer("logit").get_weights()
    return w[:, 0].astype(np.float64), float(b[0]), hashlib.sha256((run / MODEL_FILE).read_bytes()).hexdigest()


def band_of(run: Path, config: dict) -> dict:
    """ADULT_RULE 5 on the run's validation predictions (sources held out of the run excluded)."""
    with np.load(run / "predictions.npz") as f:
        val = (f["parts"] == "validation") & ~np.isin(f["sources"], config["held_out_sources"])
        p = calibration.sigmoid(f["logits"][val] / config["temperature"])
        return uncertain.choose_band(p, f["labels"][val], f["sources"][val], config["threshold"])


def pooled(net: Network, views: np.ndarray, batch: int = 16) -> np.ndarray:
    """Pooled features of grey lung views through an exported classifier."""
    return np.concatenate([net(grey_to_rgb(views[i:i + batch]))[0].mean(axis=(1, 2))
                           for i in range(0, len(views), batch)]).astype(np.float32)


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(p, 1e-7, 1 - 1e-7)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def routing(sets: dict[str, dict], population: Population, child: LinearHead, reader: AdultReader) -> dict:
    """ADULT_RULE 6: hard or blend, by mean log loss over the sets (each weighing the same)."""
    losses = {"hard": [], "blend": []}
    for s in sets.values():
        pc, pr = child.probability(s["child"]), reader.head.probability(s["reader"])
        p_adult = population.adult_probability(s["child"])
        hard = population.looks_adult(p_adult).astype(float)
        blend = np.where(p_adult >= MIN_SHARE, p_adult, 0.0)
        for name, share in (("hard", hard), ("blend", blend)):
            losses[name].append(log_loss((1 - share) * pc + share * pr, s["y"]))
        s["routed_to_reader"] = float(np.mean(hard))
    mean = {k: float(np.mean(v)) for k, v in losses.items()}
    return {"routing": min(mean, key=mean.get), "log_loss": mean,
            "per_set": {name: {"hard": losses["hard"][i], "blend": losses["blend"][i], "n": int(len(s["y"])),
                               "routed_to_reader": s["routed_to_reader"]} for i, (name, s) in enumerate(sets.items())},
            "rule": ADULT_RULE.split("(6) ")[1]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for flag in ("--run", "--model", "--data", "--adults", "--hospitals", "--more"):
        p.add_argument(flag, required=True)
    p.add_argument("--out", default="runs/reader_serving.npz")
    p.add_argument("--calibration", type=int, default=quantize.INT8_CALIBRATION_IMAGES)
    args = p.parse_args(argv)
    from pneumonia.train.adult_sources import load_films
    from pneumonia.train.cli import log
    run, folder = Path(args.run), Path(args.model)
    rcfg, config = json.loads((run / CONFIG_FILE).read_text()), read_config(folder)
    if rcfg["lungs"]["variant"] != config["lungs"]["variant"] or rcfg["lungs"]["dilation"] != config["lungs"]["dilation"]:
        raise SystemExit("the reader was trained on another lung view than the served one")
    w, b, sha = export_network(run, folder)
    band = band_of(run, rcfg)
    reader = AdultReader(LinearHead(w, b, rcfg["temperature"], rcfg["threshold"]), band["low"], band["high"])
    reader.save(folder / READER_FILE)
    log(f"Exported {READER_IR}, {READER_FILE}: band [{band['low']:.3f}, {band['high']:.3f}), rule met {band['rule_met']}")

    lungs = LungReader.exported(folder, config, "f32")
    tr = config["training"]
    split, _, canons = data.lung_split(lungs, data.load_train_split(
        args.data, config["data"].get("limit_per_class"), tr["seed"], tr["val_fraction"]))
    kids = split.images[split.val_idx]
    kids_stressed = augment.lung_stressed(lungs.read, canons[split.val_idx], kids, STRESS_COPIES, tr["seed"])
    films = load_films(args.adults, args.hospitals, args.more, rcfg["training"]["seed"])
    rows = np.flatnonzero(films.parts != "fit")
    views, _, _, found = lungs.read(films.canons[rows])
    rows, views = rows[found], views[found]
    rng = np.random.default_rng(rcfg["training"]["seed"])
    fit = rng.permutation(films.rows("fit", labels=CLASSES))[:args.calibration]
    fit_views, _, _, fit_found = lungs.read(films.canons[fit])
    fit, fit_views = fit[fit_found], fit_views[fit_found]
    log(f"Views: {len(kids)} validation children (+{len(kids_stressed)} stressed), {len(rows)} adult "
        f"validation and report films, {len(fit)} adult fit films for int8 calibration")

    child_net, reader_net = Network(folder / config["runtime"]["classifier"], "f32"), Network(folder / READER_IR, "f32")
    with np.load(folder / HEAD_FILE) as f:
        child = LinearHead(f["w"].astype(np.float64), float(f["b"]), config["temperature"], config["threshold"])
    population = Population.load(folder / POPULATION_FILE)
    val = (films.parts[rows] == "validation") & np.isin(films.labels[rows], CLASSES)
    adults = {"child": pooled(child_net, views), "reader": pooled(reader_net, views)}
    sets = {"validation children": {"child": pooled(child_net, kids), "reader": pooled(reader_net, kids),
                                    "y": split.labels[split.val_idx]},
            "validation children, stressed": {"child": pooled(child_net, kids_stressed),
                                              "reader": pooled(reader_net, kids_stressed),
                                              "y": np.tile(split.labels[split.val_idx], STRESS_COPIES)},
            "adults' validation parts": {"child": adults["child"][val], "reader": adults["reader"][val],
                                         "y": films.labels[rows][val]}}
    chosen = routing(sets, population, child, reader)
    log(f"Routing: {chosen['routing']} (log loss {chosen['log_loss']})")
    np.savez_compressed(args.out, files=np.asarray(films.files)[rows], sources=films.sources[rows].astype(str),
                        labels=films.labels[rows], parts=films.parts[rows].astype(str),
                        child=adults["child"].astype(np.float16), reader=adults["reader"].astype(np.float16),
                        kids_child=sets["validation children"]["child"].astype(np.float16))

    val_x = grey_to_rgb(views[val])
    calib = grey_to_rgb(np.concatenate([fit_views, augment.lung_stressed(
        lungs.read, films.canons[fit], fit_views, 1, rcfg["training"]["seed"])]))
    int8 = quantize.quantize_network(folder / READER_IR, folder / READER_INT8_IR, (w, b, rcfg["temperature"],
                                     rcfg["threshold"]), calib, val_x, films.labels[rows][val])
    config = read_config(folder)
    config["adult_reader"] = {
        "file": READER_FILE, "runtime": {"classifier": READER_IR, "int8": int8, "format": "OpenVINO IR (fp16 weights)"},
        "exported_from": {str(run / MODEL_FILE): sha}, "rule": ADULT_RULE, "temperature": rcfg["temperature"],
        "threshold": rcfg["threshold"], "band": band, "best": rcfg["best"], "validation": rcfg["validation"],
        "training": rcfg["training"], "films": rcfg["films"], "sources": rcfg["sources"], "routing": chosen,
        "git_commit": rcfg["git_commit"]}
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    log(f"Recorded adult_reader in {folder / CONFIG_FILE}; int8 {'passed' if int8['passed'] else 'missed the bar'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
