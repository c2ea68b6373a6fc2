"""Grad-CAM equals the keras.io recipe; degenerate maps stay valid images."""
import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import EXAMPLES

from pneumonia.train.gradcam import PREDICTED, Activations, GradCAM
from pneumonia.serve.heatmap import linear_cam, overlay
from pneumonia.serve.imaging import load_image, to_model_input


def keras_io_gradcam(img_array, model, last_conv_layer_name, positive):
    """https://keras.io/examples/vision/grad_cam/ as written, for one logit
    (PNEUMONIA explains +logit, NORMAL explains -logit)."""
    grad_model = keras.models.Model(model.inputs, [model.get_layer(last_conv_layer_name).output, model.output])
    with tf.GradientTape() as tape:
        last_conv_layer_output, preds = grad_model(img_array)
        class_channel = preds[:, 0] if positive else -preds[:, 0]
    grads = tape.gradient(class_channel, last_conv_layer_output)
    pooled_grads = tf.reduce_mean(grads, axis=(0, 1, 2))
    last_conv_layer_output = last_conv_layer_output[0]
    heatmap = last_conv_layer_output @ pooled_grads[..., tf.newaxis]
    heatmap = tf.squeeze(heatmap)
    heatmap = tf.maximum(heatmap, 0) / tf.math.reduce_max(heatmap)
    return heatmap.numpy()


@pytest.fixture(scope="module")
def net(untrained_model):
    """The real graph with seeded weights: the recipes are arithmetic, any weights tell
    (the committed model.keras is on the Hub, not in git)."""
    return untrained_model


@pytest.fixture(scope="module")
def cam(net):
    return GradCAM(net)


@pytest.mark.parametrize("name", ["NORMAL_IM-0001-0001.jpeg",
                                  "PNEUMONIA-bacterial_person100_bacteria_475.jpeg"])
@pytest.mark.parametrize("target", [0, 1])
def test_matches_keras_io_recipe(net, cam, name, target):
    x = to_model_input(load_image(EXAMPLES / name))[None]
    logit, ours, _ = cam(x, target)
    ref = keras_io_gradcam(x, net, "conv5_block3_out", positive=target == 1)
    assert ours.shape == (1, 7, 7)
    np.testing.assert_allclose(ours[0], np.nan_to_num(ref), atol=1e-4)
    np.testing.assert_allclose(logit, net(x).numpy()[:, 0], atol=1e-4)


@pytest.mark.parametrize("target", [0, 1])
def test_forward_only_cam_equals_the_tape_based_one(net, cam, target):
    """Global-average-pool -> linear head: the head's weights are Grad-CAM's."""
    x = np.stack([to_model_input(load_image(p)) for p in sorted(EXAMPLES.glob("*.jpeg"))])
    logits, maps, pooled = cam(x, target)
    activations, pooled_fwd = Activations(net)(x)
    w, b = (v.numpy() for v in net.get_layer("logit").weights)
    got = linear_cam(activations, w[:, 0], np.full(len(x), target == 1))
    np.testing.assert_allclose(got, maps, atol=1e-4)
    np.testing.assert_allclose(pooled_fwd, pooled, atol=1e-4)
    np.testing.assert_allclose(pooled_fwd @ w[:, 0] + b[0], logits, atol=1e-3)


def test_predicted_target_follows_the_decision_logit(cam):
    x = to_model_input(load_image(EXAMPLES / "PNEUMONIA-viral_person10_virus_35.jpeg"))[None]
    logit, _, _ = cam(x, 1)
    above = cam(x, PREDICTED, float(logit[0]) - 1.0)[1]  # logit above threshold: PNEUMONIA
    below = cam(x, PREDICTED, float(logit[0]) + 1.0)[1]  # below: NORMAL
    np.testing.assert_allclose(above, cam(x, 1)[1], atol=1e-6)
    np.testing.assert_allclose(below, cam(x, 0)[1], atol=1e-6)


def test_all_zero_map_is_a_valid_image(cam):
    # A constant black image has near-zero activations; force the degenerate case too.
    _, maps, _ = cam(np.zeros((1, 224, 224, 3), np.float32), 1)
    assert np.isfinite(maps).all()
    img = overlay(np.zeros((300, 200), np.uint8), np.zeros((7, 7)))
    assert img.shape == (300, 200, 3) and img.dtype == np.uint8 and np.isfinite(img).all()


def test_overlay_keeps_the_image_size():
    grey = np.full((517, 389), 128, np.uint8)
    cam = np.zeros((7, 7))
    cam[3, 3] = 1.0
    out = overlay(grey, cam)
    assert out.shape == (517, 389, 3)
    # The hot cell is red in the middle, the cold corners blue.
    centre, corner = out[258, 194].astype(int), out[5, 5].astype(int)
    assert centre[0] > centre[2] and corner[2] > corner[0]
