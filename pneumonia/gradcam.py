"""Grad-CAM (Selvaraju et al. 2017) for the one-logit classifier.

`CAM` holds what every class-activation method shares: one compiled call that
returns the logit, the map and the pooled features (for the out-of-distribution
guard) together, so explaining costs a single forward pass plus the (cheap)
gradient of the logit with respect to the last conv block. Subclasses only say
how channels are weighted.
"""
from __future__ import annotations

import cv2
import keras
import numpy as np
import tensorflow as tf

from .config import IMAGE_SIZE, LAST_CONV_LAYER
from .lung_view import draw_outline

PREDICTED = -1  # target: the class decided at the operating threshold
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


def linear_cam(activations: np.ndarray, weights: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """Grad-CAM of logit = mean over positions of activations . weights + b.

    The logit's gradient with respect to every position is weights / (H W),
    so Grad-CAM's channel weights are the head's weights (the constant cancels
    in the normalisation): exact, with no gradient computed. `positive` (B,)
    says, per image, whether the map explains PNEUMONIA (+logit) or NORMAL.
    Returns (B, H, W) in [0, 1].
    """
    sign = np.where(np.asarray(positive, bool), 1.0, -1.0)[:, None, None]
    cam = np.maximum(np.einsum("bhwc,c->bhw", activations, np.asarray(weights, np.float32)) * sign, 0.0)
    peak = cam.max(axis=(1, 2), keepdims=True)
    return np.divide(cam, peak, out=np.zeros_like(cam), where=peak > 0)


def overlay(grey: np.ndarray, heat: np.ndarray, outline: np.ndarray | None = None,
            region: np.ndarray | None = None, alpha: float = 0.4) -> np.ndarray:
    """Blend a [0, 1] map over a (H, W) uint8 X-ray at the X-ray's own size.

    `heat`: any size (a 7x7 map is stretched over the image, a full-size map
    from `lung_view.to_image` is used as it is). `outline`: an optional (H, W)
    lung mask whose contour is drawn in white, so a user sees where the lungs
    were found. `region`: an optional (H, W) bool mask of what the model read;
    outside it the X-ray is left uncoloured. Returns (H, W, 3) uint8 RGB: JET
    colormap (red = most influence).
    """
    h, w = grey.shape[:2]
    heat = np.asarray(heat, np.float32)
    if heat.shape != (h, w):
        heat = cv2.resize(heat, (w, h), interpolation=cv2.INTER_CUBIC)
    heat = np.uint8(np.clip(heat, 0, 1) * 255)
    colored = cv2.cvtColor(cv2.applyColorMap(heat, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    base = cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)
    out = cv2.addWeighted(colored, alpha, base, 1 - alpha, 0)
    if region is not None:
        out[~region] = base[~region]
    return out if outline is None else draw_outline(out, outline)
