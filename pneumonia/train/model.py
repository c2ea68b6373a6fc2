"""The classifier graph: preprocessing, ResNet50 backbone, logit head.

One flat functional graph from RGB pixels to a logit, so Grad-CAM can reach
`conv5_block3_out` directly (a nested backbone model would hide it).
"""
from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from pneumonia.config import CACHE_LAYER, CONFIG_FILE, HUB_MODEL_REPO, IMAGE_SIZE, IMAGENET_BGR_MEAN, MODEL_FILE
from pneumonia.folder import ModelFolderError, read_config
from pneumonia.serve.imaging import grey_to_rgb

__all__ = ["ModelFolderError", "grey_to_rgb"]

# Blocks per ResNet50 stage, used to re-run the later stages on cached activations.
STAGES = {"conv2": 3, "conv3": 4, "conv4": 6, "conv5": 3}


def preprocessing_layer() -> keras.layers.Layer:
    """ResNet50's caffe preprocessing (RGB -> BGR, minus ImageNet mean) as a
    frozen 1x1 convolution: a built-in layer, so the saved model loads
    without custom code, and exact (a permutation plus a bias)."""
    layer = keras.layers.Conv2D(3, 1, name="resnet50_preprocess", trainable=False)
    layer.build((None, IMAGE_SIZE, IMAGE_SIZE, 3))
    kernel = np.zeros((1, 1, 3, 3), np.float32)
    for i in range(3):
        kernel[0, 0, i, 2 - i] = 1.0
    layer.set_weights([kernel, -np.asarray(IMAGENET_BGR_MEAN, np.float32)])
    return layer


def _imagenet_backbone(weights: str | None) -> keras.Model | None:
    if weights in (None, "none"):
        return None
    if weights != "imagenet" and not Path(weights).is_file():
        raise FileNotFoundError(f"Weights file not found: {weights}")
    return keras.applications.ResNet50(
        include_top=False, weights=weights, input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3))


def build_model(weights: str | None = "imagenet", dropout: float = 0.3) -> keras.Model:
    """RGB [0, 255] (224, 224, 3) -> logit of PNEUMONIA.

    `weights`: "imagenet" (Keras's download), None / "none", or the path of a
    ResNet50 notop .h5 file.
    """
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3), name="image")
    x = preprocessing_layer()(inputs)
    # Building on input_tensor keeps every backbone layer in our own graph.
    backbone = keras.applications.ResNet50(include_top=False, weights=None, input_tensor=x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(backbone.output)
    x = keras.layers.Dropout(dropout, name="dropout")(x)
    logit = keras.layers.Dense(1, name="logit", dtype="float32")(x)   # fp32 even under mixed precision
    model = keras.Model(inputs, logit, name="pneumonia_resnet50")
    pretrained = _imagenet_backbone(weights)
    if pretrained is not None:
        for layer in pretrained.layers:
            if layer.weights:
                model.get_layer(layer.name).set_weights(layer.get_weights())
    return model



def predict_batched(net: keras.Model, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """`net` over `x` in compiled batches (far faster than model.predict on CPU)."""
    fn = tf.function(lambda b: net(b, training=False), reduce_retracing=True)
    outs = [fn(x[i:i + batch_size].astype(np.float32)).numpy() for i in range(0, len(x), batch_size)]
    return np.concatenate(outs) if outs else np.zeros((0, *net.outputs[0].shape[1:]), np.float32)


def cache_layer_for(fine_tune_from: str) -> str:
    """Fine-tuning from stage convK means caching the output of stage conv(K-1)."""
    stages = list(STAGES)
    if fine_tune_from not in stages[1:]:
        raise ValueError(f"fine-tuning can start at {', '.join(stages[1:])}, not {fine_tune_from!r}")
    before = stages[stages.index(fine_tune_from) - 1]
    return f"{before}_block{STAGES[before]}_out"


def feature_model(model: keras.Model, cache_layer: str = CACHE_LAYER) -> keras.Model:
    """Image -> (activations at `cache_layer`, pooled backbone features)."""
    return keras.Model(model.input, [model.get_layer(cache_layer).output,
                                     model.get_layer("avg_pool").output])


def _block(model: keras.Model, x, name: str, first: bool):
    get = model.get_layer
    shortcut = get(f"{name}_0_bn")(get(f"{name}_0_conv")(x)) if first else x
    for part in ("1", "2"):
        x = get(f"{name}_{part}_relu")(get(f"{name}_{part}_bn")(get(f"{name}_{part}_conv")(x)))
    x = get(f"{name}_3_bn")(get(f"{name}_3_conv")(x))
    return get(f"{name}_out")(get(f"{name}_add")([shortcut, x]))


def top_model(model: keras.Model, cache_layer: str = CACHE_LAYER) -> keras.Model:
    """Cached activations -> logit, sharing `model`'s layers (training one
    trains the other). Lets fine-tuning skip the frozen stages' forward pass."""
    stage, block = cache_layer.split("_")[:2]   # a stage's last block, or one inside it
    stages = list(STAGES)
    inputs = keras.Input(model.get_layer(cache_layer).output.shape[1:], name="cached")
    x = inputs
    for name in stages[stages.index(stage):]:
        first = int(block[len("block"):]) + 1 if name == stage else 1
        for b in range(first, STAGES[name] + 1):
            x = _block(model, x, f"{name}_block{b}", first=b == 1)
    for layer in ("avg_pool", "dropout", "logit"):
        x = model.get_layer(layer)(x)
    return keras.Model(inputs, x, name="top")


def head_model(model: keras.Model) -> keras.Model:
    """Pooled features -> logit, sharing the head layers of `model`."""
    inputs = keras.Input((model.get_layer("avg_pool").output.shape[-1],), name="pooled")
    x = model.get_layer("logit")(model.get_layer("dropout")(inputs))
    return keras.Model(inputs, x, name="head")


def set_fine_tuning(model: keras.Model, fine_tune_from: str) -> None:
    """Train convolutions from stage `fine_tune_from` on, plus the head.

    BatchNorm layers stay frozen: in Keras 3 a non-trainable BatchNormalization
    also runs in inference mode, keeping ImageNet statistics.
    """
    trainable = False
    for layer in model.layers:
        if layer.name.startswith(f"{fine_tune_from}_"):
            trainable = True
        is_bn = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = trainable and not is_bn and layer.name != "resnet50_preprocess"


def load_model_folder(folder: str | Path) -> tuple[keras.Model, dict]:
    """Load `model.keras` and `config.json` from a model folder."""
    folder = Path(folder)
    if (folder / CONFIG_FILE).is_file() and not (folder / MODEL_FILE).is_file():
        # The committed model/ carries what the app serves; its Keras file is on the Hub.
        raise ModelFolderError(f"{folder} has no {MODEL_FILE}: the app serves the exported networks without it; "
                               f"for a model from the Hub: hf download {HUB_MODEL_REPO} {MODEL_FILE} --local-dir {folder}")
    config = read_config(folder, needs=(MODEL_FILE,))
    try:
        model = keras.saving.load_model(folder / MODEL_FILE, compile=False)
    except Exception as e:  # Keras raises many types for a bad archive
        raise ModelFolderError(f"{folder / MODEL_FILE} is not a loadable Keras model ({e})") from None
    return model, config


def pooled_features(net: keras.Model, images: np.ndarray, batch_size: int = 32) -> np.ndarray:
    """(n, 224, 224) uint8 greyscale -> (n, 2048) pooled backbone features."""
    features = keras.Model(net.input, net.get_layer("avg_pool").output)
    return predict_batched(features, grey_to_rgb(images), batch_size)


def pediatric_head(model: keras.Model, config: dict):
    """The model's own last layer, with the folder's temperature and threshold."""
    from pneumonia.serve.routing import LinearHead
    w, b = (np.asarray(v, np.float64) for v in model.get_layer("logit").get_weights())
    return LinearHead(w[:, 0], float(b[0]), float(config["temperature"]), float(config["threshold"]))
