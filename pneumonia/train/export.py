"""Export a model folder's networks for the forward-only runtime (`pneumonia.serve.runtime`).

    python -m pneumonia.train.export --model model

Writes, next to the Keras files it reads:
- `classifier.xml/.bin`: ResNet50 up to its last conv block (what Grad-CAM
  and the pooled features are read from), as an OpenVINO IR,
- `lungs.xml/.bin`: the lung segmenter, if the folder has one,
- `head.npz`: the classifier's last layer (w, b): with the head being
  global-average-pool -> one dense unit, its logit and Grad-CAM follow from
  the conv block and these weights exactly (`heatmap.linear_cam`),
and records them under `runtime` in config.json. Weights are stored as
fp16 (half the download and the memory OpenVINO keeps mapped; 2^-11 relative
rounding, far below the bf16 arithmetic it serves with, see
bench/precision.py); `--fp32-weights` keeps them exact.
"""
from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path
import sys

import keras
import numpy as np

from pneumonia.config import CONFIG_FILE, LAST_CONV_LAYER, MODEL_FILE
from pneumonia.serve.runtime import CLASSIFIER_IR, HEAD_FILE, SEGMENTER_IR, ir_files


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _export(model: keras.Model, path: Path, fp16_weights: bool) -> None:
    """Keras -> OpenVINO IR at `path` (.xml + .bin)."""
    import openvino as ov
    raw = path.with_name(path.stem + ".fp32.xml")
    model.export(str(raw), format="openvino", verbose=False)
    ov.save_model(ov.Core().read_model(str(raw)), str(path), compress_to_fp16=fp16_weights)
    raw.unlink()
    raw.with_suffix(".bin").unlink()


def export_folder(model_dir: str | Path, fp16_weights: bool = True) -> dict:
    from pneumonia.train.cli import log
    from pneumonia.train.model import load_model_folder
    folder = Path(model_dir)
    net, config = load_model_folder(folder)
    trunk = keras.Model(net.input, net.get_layer(config.get("last_conv_layer", LAST_CONV_LAYER)).output)
    _export(trunk, folder / CLASSIFIER_IR, fp16_weights)
    w, b = net.get_layer("logit").get_weights()
    np.savez(folder / HEAD_FILE, w=w[:, 0].astype(np.float32), b=np.float32(b[0]))
    runtime = {"format": f"OpenVINO IR ({'fp16' if fp16_weights else 'fp32'} weights)", "classifier": CLASSIFIER_IR,
               "head": HEAD_FILE, "exported_from": {MODEL_FILE: _sha256(folder / MODEL_FILE)}}
    lungs = config.get("lungs")
    if lungs:
        from pneumonia.train.segmenter import load_keras
        _export(load_keras(folder / lungs["file"]), folder / SEGMENTER_IR, fp16_weights)
        runtime["segmenter"] = SEGMENTER_IR
        runtime["exported_from"][lungs["file"]] = _sha256(folder / lungs["file"])
    config["runtime"] = runtime
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    log(f"Exported {', '.join(ir_files(config))} into {folder}")
    return runtime


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model folder")
    p.add_argument("--fp32-weights", action="store_true", help="store the weights as fp32 (twice the size)")
    args = p.parse_args(argv)
    from pneumonia.train import cli
    return cli.run(lambda: export_folder(args.model, not args.fp32_weights))


if __name__ == "__main__":
    sys.exit(main())
