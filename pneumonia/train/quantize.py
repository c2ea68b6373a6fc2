"""An int8 classifier that keeps the answers: NNCF post-training quantisation
of the exported classifier, with the stages that carry int8's error left in float.

    python -m pneumonia.train.quantize --model model --data path/to/chest_xray

Calibration: the lung views of `INT8_CALIBRATION_IMAGES` training-part X-rays,
each clean and as one stressed copy (the acquisition changes validation is
stressed with), so the activation ranges cover what uploads look like. Each
stage set of `INT8_FLOAT_STAGES` is tried in turn, fewest float layers first;
the first whose export passes `PRECISION_BAR` on the validation part's lung
views, against the fp32 export (equal to Keras within 1e-4), is written as
`classifier.int8.xml/.bin` and recorded under `runtime.int8` in config.json
with its numbers; the app may then choose it (`pneumonia.serve.runtime`).
None passing, nothing is written and the record says so.

A stage is found by its output's size (conv1 112 px and the input's
channel conversion at 224, conv2 56, conv3 28, conv4 14, conv5 7): the IR's
layer names are the exporter's, not Keras's.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from pneumonia.calibration import decision_logit, sigmoid
from pneumonia.config import CONFIG_FILE, INT8_CALIBRATION_IMAGES, INT8_FLOAT_STAGES, PRECISION_BAR
from pneumonia.folder import read_config
from pneumonia.serve.heatmap import linear_cam
from pneumonia.serve.imaging import grey_to_rgb
from pneumonia.serve.lung_view import LungReader
from pneumonia.serve.runtime import INT8_IR, Network, core
from pneumonia.train import augment, data

STAGE_SIZES = {"conv1": (224, 112), "conv2": (56,), "conv3": (28,), "conv4": (14,), "conv5": (7,)}


def correlations(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pearson correlation of each pair of maps (flat maps: 1 if both are flat)."""
    a, b = a.reshape(len(a), -1), b.reshape(len(b), -1)
    a, b = a - a.mean(1, keepdims=True), b - b.mean(1, keepdims=True)
    den = np.sqrt((a * a).sum(1) * (b * b).sum(1))
    return np.where(den > 0, (a * b).sum(1) / np.where(den > 0, den, 1), 1.0)


def head_of(folder: Path, config: dict) -> tuple[np.ndarray, float, float, float]:
    """The served last layer and operating point: (w, b, temperature, threshold)."""
    with np.load(folder / config["runtime"]["head"]) as f:
        w, b = f["w"].astype(np.float64), float(f["b"])
    return w, b, float(config["temperature"]), float(config["threshold"])


def answers(acts: np.ndarray, head: tuple) -> tuple[np.ndarray, np.ndarray]:
    """A conv block's (logits, Grad-CAM maps of the decided class), as served."""
    w, b, t, thr = head
    logits = acts.mean(axis=(1, 2)).astype(np.float64) @ w + b
    return logits, linear_cam(acts, w, logits >= decision_logit(t, thr))


def agreement(reference: tuple[np.ndarray, np.ndarray], acts: np.ndarray, labels: np.ndarray, head: tuple) -> dict:
    """How far a runtime's conv block `acts` moves the served answer from a
    reference's (logits, maps of the decided class): the numbers
    `PRECISION_BAR` judges, and `passes`."""
    ref_logits, ref_maps = reference
    t, cut = head[2], decision_logit(head[2], head[3])
    logits, maps = answers(acts, head)
    decided = logits >= cut
    r = correlations(maps, ref_maps)
    dp = np.abs(sigmoid(logits / t) - sigmoid(ref_logits / t))
    out = {"n": int(len(logits)), "decisions_agree": float(np.mean(decided == (ref_logits >= cut))),
           # a one-class validation part (smoke runs on a handful of images) has no ROC AUC to keep
           "auc_diff": float(roc_auc_score(labels, logits) - roc_auc_score(labels, ref_logits))
           if len(np.unique(labels)) == 2 else 0.0,
           "cam_mean": float(r.mean()), "cam_p1": float(np.percentile(r, 1)), "cam_min": float(r.min()),
           "dp_p99": float(np.percentile(dp, 99)), "dp_max": float(dp.max()),
           "logit_max_diff": float(np.abs(logits - ref_logits).max())}
    out["passes"] = passes(out)
    return out


def passes(m: dict) -> bool:
    bar = PRECISION_BAR
    return bool(m["decisions_agree"] >= bar["decisions_agree"] and abs(m["auc_diff"]) <= bar["auc_within"]
                and m["cam_mean"] >= bar["cam_mean"] and m["cam_p1"] >= bar["cam_p1"] and m["dp_p99"] <= bar["dp_p99"])


def conv_block(net, x: np.ndarray, batch: int = 16) -> np.ndarray:
    """A classifier Network's last conv block for (n, 224, 224, 3) inputs, in batches."""
    return np.concatenate([net(x[i:i + batch])[0] for i in range(0, len(x), batch)])


def float_layers(model, stages: tuple[str, ...]) -> list[str]:
    """The IR's convolutions (and matrix products) of `stages`, by their output's size."""
    sizes = {s for stage in stages for s in STAGE_SIZES[stage]}
    names = []
    for op in model.get_ordered_ops():
        if op.get_type_name() in ("Convolution", "GroupConvolution", "MatMul"):
            shape = op.get_output_partial_shape(0)
            if shape.rank.get_length() == 4 and shape[2].is_static and shape[2].get_length() in sizes:
                names.append(op.get_friendly_name())
    return names


def views_for(folder: Path, config: dict, data_dir: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(calibration RGB views, validation RGB views, validation labels), cut by
    the folder's own lung reader (its fp32 export) from its training split."""
    from pneumonia.serve.lungs import load_exported
    tr = config["training"]
    split = data.load_train_split(data_dir, tr.get("limit"), tr["seed"], tr["val_fraction"])
    seg = config["runtime"].get("segmenter")
    reader = LungReader.from_config(config, load_exported(folder / seg, "f32") if seg else None)
    lsplit, _, canons = data.lung_split(reader, split)
    rng = np.random.default_rng([tr["seed"], 0x1A78])
    pick = rng.permutation(lsplit.train_idx)[:INT8_CALIBRATION_IMAGES]
    clean = lsplit.images[pick]
    stressed = augment.lung_stressed(reader.read, canons[pick], clean, 1, tr["seed"])
    calibration = grey_to_rgb(np.concatenate([clean, stressed]))
    return calibration, grey_to_rgb(lsplit.images[lsplit.val_idx]), lsplit.labels[lsplit.val_idx]


def quantize_network(source: Path, out: Path, head: tuple, calibration: np.ndarray, val_x: np.ndarray,
                     val_y: np.ndarray) -> dict:
    """Write `out`, the int8 export of the classifier IR `source`, by the rule
    above (None passing: nothing written); returns the record."""
    import nncf
    import openvino as ov

    from pneumonia.train.cli import log
    log(f"int8 of {source.name}: {len(calibration)} calibration views, {len(val_x)} validation views")
    reference = answers(conv_block(Network(source, "f32"), val_x), head)
    model = core().read_model(str(source))
    dataset = nncf.Dataset([calibration[i:i + 1] for i in range(len(calibration))])
    tried = []
    record: dict = {"rule": "first of float stages " + " / ".join("+".join(s) for s in INT8_FLOAT_STAGES)
                    + " whose export passes PRECISION_BAR on validation (against the fp32 export)",
                    "bar": PRECISION_BAR, "calibration_views": len(calibration), "passed": False}
    for stages in INT8_FLOAT_STAGES:
        start = time.time()
        ignored = float_layers(model, stages)
        q = nncf.quantize(model.clone(), dataset, subset_size=len(calibration),
                          ignored_scope=nncf.IgnoredScope(names=ignored, validate=False))
        ov.save_model(q, str(out), compress_to_fp16=True)
        m = agreement(reference, conv_block(Network(out, "f32"), val_x), val_y, head)
        m.update(float_stages=list(stages), float_layers=len(ignored), seconds=round(time.time() - start, 1))
        tried.append(m)
        log(f"int8, {'+'.join(stages)} in float ({len(ignored)} layers): decisions {m['decisions_agree']:.2%}, "
            f"AUC {m['auc_diff']:+.4f}, CAM {m['cam_mean']:.4f} / {m['cam_p1']:.4f}, dP99 {m['dp_p99']:.4f} "
            f"-> {'passes' if m['passes'] else 'misses'}")
        if m["passes"]:
            record.update(passed=True, classifier=out.name, float_stages=list(stages), validation=m)
            break
    else:
        out.unlink(missing_ok=True)
        out.with_suffix(".bin").unlink(missing_ok=True)
    record["tried"] = tried
    return record


def quantize_folder(model_dir: str | Path, data_dir: str | Path) -> dict:
    """Write the folder's int8 classifier by the rule above; returns the record."""
    folder = Path(model_dir)
    config = read_config(folder)
    calibration, val_x, val_y = views_for(folder, config, data_dir)
    record = quantize_network(folder / config["runtime"]["classifier"], folder / INT8_IR, head_of(folder, config),
                              calibration, val_x, val_y)
    config = read_config(folder)
    config["runtime"]["int8"] = record
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    return record


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model folder with exported networks")
    p.add_argument("--data", required=True, help="the dataset folder the model was trained on")
    args = p.parse_args(argv)
    from pneumonia.train import cli
    return cli.run(lambda: quantize_folder(args.model, args.data))


if __name__ == "__main__":
    sys.exit(main())
