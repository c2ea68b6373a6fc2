"""WHITE_RULE (10)'s last sentence: the network `reader_consistency` kept becomes
the served adult reader, and ships only if it then meets (9)'s served-path conditions.

    python -m pneumonia.train.reader_ship --run runs/consistency36 --model /tmp/model_new --data chest_xray \\
        --adults adult_cxr --hospitals lung_masks --more adult_more --population runs/population.npz \\
        --serving runs/reader_serving.npz

Works on a copy of the model folder: exports the network (reader.xml/.bin)
with its last layer, operating point and band from the epoch the rule kept,
refits the tuberculosis line on its features (TB_RULE), chooses ADULT_RULE
(6)'s routing again with the new reader's features of the routing sets, then
judges through the served path. Everything lands under config
`white_lung.reader_consistency`; `shipped` says whether the folder may be served.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
import sys

import numpy as np

from pneumonia.config import CONFIG_FILE, STRESS_COPIES
from pneumonia.folder import read_config
from pneumonia.serve.routing import POPULATION_FILE, READER_FILE, AdultReader, LinearHead, Population


def routing_features(folder: Path, args) -> dict[str, np.ndarray]:
    """The new reader's pooled features of ADULT_RULE (6)'s sets, aligned with population_refit's."""
    from pneumonia.serve.lung_view import LungReader
    from pneumonia.serve.runtime import READER_IR, Network
    from pneumonia.train import augment, data
    from pneumonia.train.adult_sources import load_films
    from pneumonia.train.reader_serving import pooled
    config = read_config(folder)
    tr, seed = config["training"], config["training"]["seed"]
    lungs = LungReader.exported(folder, config, "f32")
    reader = Network(folder / READER_IR, "f32")
    split, _, canons = data.lung_split(lungs, data.load_train_split(
        args.data, config["data"].get("limit_per_class"), seed, tr["val_fraction"]))
    stressed = augment.lung_stressed(lungs.read, canons[split.val_idx], split.images[split.val_idx], STRESS_COPIES, seed)
    films = load_films(args.adults, args.hospitals, args.more, seed)
    with np.load(args.serving) as f:
        served = {name: k for k, name in enumerate(f["files"])}
        labels = f["labels"]
    val = [i for i in films.rows("validation") if films.files[i] in served]
    two = [i for i in val if labels[served[films.files[i]]] in (0, 1)]
    views, _, _, found = lungs.read(films.canons[two])
    if not found.all():
        raise SystemExit("the served lung finder no longer finds lungs it found for the routing sets")
    return {"r_val": pooled(reader, split.images[split.val_idx]), "r_stressed": pooled(reader, stressed),
            "ra_val": pooled(reader, views)}


def main(argv: list[str] | None = None) -> int:
    from pneumonia.train.cli import log, parser
    p = parser(__doc__, ("--run", "--model", "--data", "--adults", "--hospitals", "--more", "--population", "--serving"))
    args = p.parse_args(argv)
    os.environ["PNEUMONIA_PRECISION"] = "f32"
    from pneumonia.train import quantize, tb_line
    from pneumonia.train.population_refit import routing_sets
    from pneumonia.train.reader_overlays import normal_films, served_judge
    from pneumonia.train.reader_serving import export_network, routing
    run, folder = Path(args.run), Path(args.model)
    record = json.loads((run / "record.json").read_text())
    if record["kept"] is None:
        raise SystemExit(f"{run}: the rule kept no epoch, so there is nothing to ship")
    kept = record["history"][record["kept"]]
    w, b, sha = export_network(run, folder)
    AdultReader(LinearHead(w, b, kept["temperature"], kept["threshold"]), kept["band"]["low"],
                kept["band"]["high"]).save(folder / READER_FILE)
    config = read_config(folder)
    ar = config["adult_reader"]
    record["before"] = {k: ar.get(k) for k in ("exported_from", "temperature", "threshold", "band", "validation",
                                                "routing")} | {"int8": ar["runtime"]["int8"]}
    ar.update(exported_from={str(run / "model.keras"): sha}, temperature=kept["temperature"],
              threshold=kept["threshold"], band=kept["band"],
              validation={"worst": kept["score"], "where": kept["where"], "sources": kept["sources"]})
    ar["runtime"]["int8"] = {"passed": False, "rule": ar["runtime"]["int8"].get("rule"),
                             "note": "not judged for the network of WHITE_RULE 10: served at fp32"}
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2, default=float) + "\n")
    log(f"Exported the epoch {record['kept']} reader: threshold {kept['threshold']:.3f}, "
        f"band [{kept['band']['low']:.3f}, {kept['band']['high']:.3f})")
    tb_line.main(["--model", str(folder), "--adults", args.adults, "--hospitals", args.hospitals, "--more", args.more])
    with np.load(args.population) as pop:
        sets = routing_sets({**pop, **routing_features(folder, args)})
    config = read_config(folder)
    reader = AdultReader.load(folder / READER_FILE)
    route = routing(sets, Population.load(folder / POPULATION_FILE), LinearHead(*quantize.head_of(folder, config)), reader)
    config["adult_reader"]["routing"] = route
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2, default=float) + "\n")
    log(f"Routing: {route['routing']} ({json.dumps(route['log_loss'])})")
    from pneumonia.serve.loader import load_folder
    predictor = load_folder(folder, str(folder), str(folder)).predictor
    row = served_judge(predictor, normal_films(predictor, args, ar["training"]["seed"]), predictor.adult_reader, route)
    log(f"Through the served path: {json.dumps(row)}")
    record.update(served_path=row, shipped=bool(row["meets"]),
                  ship_command="python -m pneumonia.train.reader_ship " + " ".join(argv or sys.argv[1:]))
    config = read_config(folder)
    config.setdefault("white_lung", {})["reader_consistency"] = record
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2, default=float) + "\n")
    log(f"shipped: {record['shipped']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
