"""What the committed model's Keras file says of the example X-rays, for the
tests that check the committed exports without it.

    python scripts/keras_reference.py [--model model]

model.keras is not in git (the app serves the exported networks; the Keras
file is on the Hub with them, huggingface_hub can fetch it). So the lung views
of the examples, as the served lung finder cuts them at fp32, and the Keras
model's logits, pooled features and both classes' Grad-CAM maps on them are
kept in tests/data/keras_reference.npz, with the SHA-256 of the model.keras
they came from: tests/test_runtime.py holds the committed exports to them and
fails if the reference belongs to another model than the export's.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pneumonia.config import MODEL_FILE  # noqa: E402
from pneumonia.serve.imaging import canonical, grey_to_rgb, load_image  # noqa: E402

EXAMPLES = ROOT / "examples"
REFERENCE = ROOT / "tests" / "data" / "keras_reference.npz"


def example_xrays() -> list[Path]:
    """Every example X-ray: the children's JPEGs, then the adults' PNGs."""
    return sorted(EXAMPLES.glob("*.jp*g")) + sorted(EXAMPLES.glob("ADULT*.png"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(ROOT / "model"), help="model folder with its model.keras")
    p.add_argument("--out", default=str(REFERENCE))
    args = p.parse_args(argv)
    from pneumonia.serve.lung_view import LungReader
    from pneumonia.train.gradcam import keras_reference
    from pneumonia.train.model import load_model_folder
    folder = Path(args.model)
    net, config = load_model_folder(folder)
    xrays = example_xrays()
    views = LungReader.exported(folder, config, "f32").read(np.stack([canonical(load_image(x)) for x in xrays]))[0]
    ref = keras_reference(net, grey_to_rgb(views))
    sha = hashlib.sha256((folder / MODEL_FILE).read_bytes()).hexdigest()
    # The Keras file's own last layer and operating point: a folder whose head.npz was
    # refitted later (pneumonia.train.opacity_heads) is still held to the network it exported.
    w, b = net.get_layer("logit").get_weights()
    own = (config.get("white_lung") or {}).get("children", {}).get("served") or config
    np.savez_compressed(args.out, views=views, names=np.array([x.name for x in xrays]), model_sha256=sha,
                        w=w[:, 0], b=b[0], temperature=own["temperature"], threshold=own["threshold"], **ref)
    print(json.dumps({"wrote": args.out, "views": len(views), MODEL_FILE: sha}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
