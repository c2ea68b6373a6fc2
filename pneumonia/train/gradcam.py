"""Grad-CAM (Selvaraju et al. 2017) for the one-logit classifier.

The tape-based reference: serving reads Grad-CAM from one forward pass
(`heatmap.linear_cam`, exact for this head), and the tests hold the two equal.
`CAM` holds what every class-activation method shares: one compiled call that
returns the logit, the map and the pooled features (for the out-of-distribution
guard) together, so explaining costs a single forward pass plus the (cheap)
gradient of the logit with respect to the last conv block. Subclasses only say
how channels are weighted.
"""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from pneumonia.config import IMAGE_SIZE, LAST_CONV_LAYER
from pneumonia.serve.heatmap import PREDICTED, linear_cam, overlay

__all__ = ["PREDICTED", "Activations", "CAM", "GradCAM", "linear_cam", "overlay"]

POOLED_LAYER = "avg_pool"


class CAM:
    """Base class: logit and class-activation map in one `tf.function`."""

    def __init__(self, model: keras.Model, layer: str = LAST_CONV_LAYER):
        self.grad_model = keras.Model(model.input, [model.get_layer(layer).output, model.output,
                                                    model.get_layer(POOLED_LAYER).output])
        self._call = tf.function(self._logit_and_map, input_signature=[
            tf.TensorSpec((None, IMAGE_SIZE, IMAGE_SIZE, 3), tf.float32),
            tf.TensorSpec((), tf.int32),
            tf.TensorSpec((), tf.float32),
        ])

    def channel_weights(self, activations: tf.Tensor, grads: tf.Tensor) -> tf.Tensor:
        """(B, H, W, C) activations and gradients -> (B, C) channel weights."""
        raise NotImplementedError

    def _logit_and_map(self, images, target, decision_logit):
        with tf.GradientTape() as tape:
            activations, logits, pooled = self.grad_model(images, training=False)
        grads = tape.gradient(logits, activations)
        logit = logits[:, 0]
        # PNEUMONIA explains +logit, NORMAL explains -logit.
        is_positive = tf.where(target == PREDICTED, logit >= decision_logit,
                               tf.fill(tf.shape(logit), target == 1))
        sign = tf.where(is_positive, 1.0, -1.0)[:, None, None, None]
        weights = self.channel_weights(activations, sign * grads)
        cam = tf.nn.relu(tf.einsum("bhwc,bc->bhw", activations, weights))
        peak = tf.reduce_max(cam, axis=(1, 2), keepdims=True)
        return logit, tf.math.divide_no_nan(cam, peak), pooled

    def __call__(self, images: np.ndarray, target: int = PREDICTED,
                 decision_logit: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(B, 224, 224, 3) RGB [0, 255] -> logits (B,), maps (B, 7, 7) in [0, 1],
        pooled features (B, 2048).

        `target`: PREDICTED (the class on the side of `decision_logit` the
        logit falls), 0 for NORMAL or 1 for PNEUMONIA.
        """
        logit, cam, pooled = self._call(tf.convert_to_tensor(images, tf.float32),
                                        tf.constant(target, tf.int32), tf.constant(decision_logit, tf.float32))
        return logit.numpy(), cam.numpy(), pooled.numpy()


class GradCAM(CAM):
    """Channel weight = the gradient averaged over the map (global average pooling)."""

    def channel_weights(self, activations, grads):
        return tf.reduce_mean(grads, axis=(1, 2))


class Activations:
    """One forward pass: (B, 224, 224, 3) -> last conv block (B, 7, 7, C) and
    pooled features (B, C). With a head that is global-average-pool -> linear,
    that is all Grad-CAM needs (`linear_cam`)."""

    def __init__(self, model: keras.Model, layer: str = LAST_CONV_LAYER):
        net = keras.Model(model.input, [model.get_layer(layer).output, model.get_layer(POOLED_LAYER).output])
        self._call = tf.function(lambda x: net(x, training=False), input_signature=[
            tf.TensorSpec((None, IMAGE_SIZE, IMAGE_SIZE, 3), tf.float32)])

    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        activations, pooled = self._call(tf.convert_to_tensor(images, tf.float32))
        return activations.numpy(), pooled.numpy()


def keras_reference(model: keras.Model, views: np.ndarray) -> dict[str, np.ndarray]:
    """What the Keras model says of (B, 224, 224, 3) views: the logit, the pooled
    features and Grad-CAM for each class, the yardstick of its exports."""
    cam = GradCAM(model)
    out: dict[str, np.ndarray] = {}
    for target in (0, 1):
        out["logits"], out[f"maps{target}"], out["pooled"] = cam(views, target)
    return out
