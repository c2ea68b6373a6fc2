"""`pneumonia.report.evaluate` for a folder whose last layer was refitted after export.

    python -m pneumonia.report.exported_eval --model model --data path/to/chest_xray

`pneumonia.train.opacity_heads` refits head.npz on the exported network's
features, so the Keras file no longer holds the served last layer. This
measures the same numbers as `evaluate` (test split at the folder's
threshold, the validity tests on test and validation, figures, card) with
the exported fp32 classifier and the folder's head.npz, and keeps the rest
of metrics.json (the served numbers, the adults', the white lung's).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys

import numpy as np

from pneumonia.calibration import decision_logit
from pneumonia.config import METRICS_FILE
from pneumonia.folder import read_config
from pneumonia.metrics import evaluate_probs
from pneumonia.report.evaluate import publish, validity_report
from pneumonia.report.transfer import compact, routed
from pneumonia.serve.heatmap import linear_cam
from pneumonia.serve.imaging import grey_to_rgb
from pneumonia.serve.lung_view import LungReader
from pneumonia.serve.routing import POPULATION_FILE, LinearHead, Population, answer
from pneumonia.serve.runtime import Network
from pneumonia.train import cli, data, quantize
from pneumonia.train.reader_serving import pooled

MEASURED_WITH = ("the exported fp32 classifier (classifier.xml) with the folder's last layer (head.npz): "
                 "`python -m pneumonia.report.exported_eval`")


def exported_functions(folder: Path, config: dict) -> tuple:
    """(logits, cams, pooled features) of lung views through the exported fp32 classifier and head.npz."""
    net = Network(folder / config["runtime"]["classifier"], "f32")
    w, b, t, thr = quantize.head_of(folder, config)

    def features(views):
        return pooled(net, views)

    def logits(views):
        return features(views).astype(np.float64) @ w + b

    def cams(views):
        acts = quantize.conv_block(net, grey_to_rgb(views))
        z = acts.mean(axis=(1, 2)).astype(np.float64) @ w + b
        return z, linear_cam(acts, w, z >= decision_logit(t, thr))
    return logits, cams, features


def evaluate_exported(model_dir: str | Path, data_dir: str | Path, seed: int = 0, bootstrap: int = 2000,
                      n_deletion: int = 60) -> dict:
    folder = Path(model_dir)
    config = read_config(folder)
    reader = LungReader.exported(folder, config, "f32")
    functions = exported_functions(folder, config)
    paths, labels = data.list_split(data_dir, "test")
    images, kept, _ = data.load_images(paths)
    labels = labels[kept]
    views, _, _, found = reader.read(images)
    cli.log(f"Evaluating on {len(kept)} test images through the exported classifier and head.npz")
    w, b, t, thr = quantize.head_of(folder, config)
    head = LinearHead(w, b, t, thr)
    population = Population.load(folder / POPULATION_FILE) if (folder / POPULATION_FILE).is_file() else None
    features = functions[2](views[found])
    probs, thresholds, share, _ = answer(features, head, population)
    metrics = evaluate_probs(labels[found], probs, thresholds, bootstrap, seed)
    if population is not None:
        a = {"adult_share": share}
        metrics["population"] = {"routed_to_adult_head": float(np.mean(routed(a))), "n_routed": int(routed(a).sum()),
                                 "mean_adult_share": float(np.mean(share)),
                                 "pediatric_head_only": compact(evaluate_probs(labels[found], head.probability(features),
                                                                               thr, bootstrap, seed))}
    metrics.update({"split": "test", "data_dir_name": Path(data_dir).name,
                    "threshold_source": config.get("threshold_rule", "config"), "temperature": t,
                    "limit_per_class": None, "without_lungs": int((~found).sum()), "lung_view": reader.variant,
                    "measured_with": MEASURED_WITH})
    metrics["validity"] = validity_report(functions[:2], config, reader, reader.segmenter, data_dir, images, labels,
                                          n_deletion, seed)
    path = folder / METRICS_FILE
    kept_sections = {k: v for k, v in json.loads(path.read_text()).items() if k not in metrics} if path.is_file() else {}
    return publish(folder, config, labels[found], probs, {**metrics, **kept_sections})


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--data", required=True)
    args = p.parse_args(argv)
    return cli.run(lambda: evaluate_exported(args.model, args.data))


if __name__ == "__main__":
    sys.exit(main())
