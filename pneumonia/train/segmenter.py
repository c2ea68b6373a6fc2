"""The lung segmenter as a Keras network: a narrowed U-Net (Ronneberger et al. 2015), its loading, and its overlap scores.

It is built from Keras's own layers only, so `lungs.keras` loads without
custom code. Serving runs its OpenVINO export through `pneumonia.serve.lungs`.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from pneumonia.config import SEG_SIZE, SEG_WIDTH
from pneumonia.serve.lung_view import LungReader
from pneumonia.serve.lungs import Segmenter, SegmenterError, load_exported


def _conv_block(x, filters: int, name: str):
    import keras
    for i in (1, 2):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"{name}_conv{i}")(x)
        x = keras.layers.BatchNormalization(name=f"{name}_bn{i}")(x)
        x = keras.layers.ReLU(name=f"{name}_relu{i}")(x)
    return x


def build_segmenter(size: int = SEG_SIZE, width: int = SEG_WIDTH, depth: int = 4):
    """(size, size, 1) greyscale in [0, 255] -> (size, size, 1) lung probability (a keras.Model)."""
    import keras
    inputs = keras.Input((size, size, 1), name="xray")
    x = keras.layers.Rescaling(1 / 255.0, name="scale")(inputs)
    skips = []
    for level in range(depth):
        x = _conv_block(x, width * 2 ** level, f"down{level}")
        skips.append(x)
        x = keras.layers.MaxPooling2D(name=f"pool{level}")(x)
    x = _conv_block(x, width * 2 ** depth, "bottom")
    for level in reversed(range(depth)):
        x = keras.layers.Conv2DTranspose(width * 2 ** level, 2, strides=2, name=f"up{level}")(x)
        x = keras.layers.Concatenate(name=f"skip{level}")([x, skips[level]])
        x = _conv_block(x, width * 2 ** level, f"dec{level}")
    outputs = keras.layers.Conv2D(1, 1, activation="sigmoid", name="lungs")(x)
    return keras.Model(inputs, outputs, name="lung_unet")


class KerasForward:
    """A Keras segmenter as the plain callable `Segmenter` takes, its forward pass compiled once."""

    def __init__(self, net):
        import tensorflow as tf
        self.keras, self.size = net, int(net.inputs[0].shape[1])
        self._forward = tf.function(lambda x: net(x, training=False), input_signature=[
            tf.TensorSpec((None, self.size, self.size, 1), tf.float32)])

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self._forward(x).numpy()


def load_keras(path: str | Path):
    """`lungs.keras` as a keras.Model (built-in layers only: no custom objects needed)."""
    path = Path(path)
    if not path.is_file():
        raise SegmenterError(f"Lung segmenter not found: {path}")
    import keras
    try:
        return keras.saving.load_model(path, compile=False)
    except Exception as e:  # Keras raises many types for a bad archive
        raise SegmenterError(f"{path} is not a loadable Keras model ({e})") from None


def load_segmenter(path: str | Path, precision: str | None = None) -> Segmenter:
    """`lungs.keras` through TensorFlow, or its OpenVINO export `lungs.xml`."""
    if Path(path).suffix == ".xml":
        return load_exported(path, precision)
    return Segmenter(KerasForward(load_keras(path)))


def keras_reader(folder: str | Path, config: dict) -> LungReader:
    """A model folder's lung reader with its Keras segmenter (training, evaluation)."""
    lungs = config.get("lungs")
    return LungReader.from_config(config, load_segmenter(Path(folder) / lungs["file"]) if lungs else None)


def dice(pred: np.ndarray, truth: np.ndarray) -> float:
    """2|A∩B| / (|A| + |B|); 1.0 when both are empty."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    total = pred.sum() + truth.sum()
    return 1.0 if total == 0 else float(2 * np.logical_and(pred, truth).sum() / total)


def iou(pred: np.ndarray, truth: np.ndarray) -> float:
    """|A∩B| / |A∪B|; 1.0 when both are empty."""
    pred, truth = np.asarray(pred, bool), np.asarray(truth, bool)
    union = np.logical_or(pred, truth).sum()
    return 1.0 if union == 0 else float(np.logical_and(pred, truth).sum() / union)
