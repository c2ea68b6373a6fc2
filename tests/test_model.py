import keras
import numpy as np
import pytest

from pneumonia.train import model as models
from pneumonia.config import LAST_CONV_LAYER


def test_output_is_one_logit(untrained_model):
    assert untrained_model.output.shape == (None, 1)
    head = untrained_model.get_layer("logit")
    assert head.activation is keras.activations.linear


def test_graph_is_flat_and_conv5_is_reachable(untrained_model):
    # No nested Model layers, and the last conv block is a tensor of this graph.
    assert not any(isinstance(layer, keras.Model) for layer in untrained_model.layers)
    grad_model = keras.Model(untrained_model.input,
                             [untrained_model.get_layer(LAST_CONV_LAYER).output, untrained_model.output])
    conv, logit = grad_model(np.zeros((1, 224, 224, 3), np.float32))
    assert conv.shape == (1, 7, 7, 2048) and logit.shape == (1, 1)


def test_preprocessing_layer_matches_keras_resnet50():
    x = np.random.default_rng(0).uniform(0, 255, (2, 224, 224, 3)).astype(np.float32)
    ours = models.preprocessing_layer()(x).numpy()
    ref = keras.applications.resnet50.preprocess_input(x.copy())
    np.testing.assert_allclose(ours, ref, atol=1e-4)


@pytest.mark.parametrize("cache_layer", [models.CACHE_LAYER, "conv5_block2_out"])
def test_top_model_equals_full_model(untrained_model, cache_layer):
    # From a stage's end, or from inside a stage (the adult reader's last block alone, WHITE_RULE 10).
    x = np.random.default_rng(1).uniform(0, 255, (2, 224, 224, 3)).astype(np.float32)
    cached, _ = models.feature_model(untrained_model, cache_layer)(x)
    top = models.top_model(untrained_model, cache_layer)
    np.testing.assert_allclose(top(cached).numpy(), untrained_model(x).numpy(), rtol=1e-4, atol=1e-4)


def test_fine_tuning_freezes_batchnorm_and_early_stages():
    net = models.build_model(weights=None)
    models.set_fine_tuning(net, "conv5")
    assert net.get_layer("conv5_block1_1_conv").trainable
    assert not net.get_layer("conv5_block1_1_bn").trainable
    assert not net.get_layer("conv4_block6_3_conv").trainable
    assert not net.get_layer("resnet50_preprocess").trainable
    assert net.get_layer("logit").trainable


def test_cache_layer_for_stage():
    assert models.cache_layer_for("conv5") == "conv4_block6_out"
    assert models.cache_layer_for("conv4") == "conv3_block4_out"


def test_missing_weights_file_is_named(tmp_path):
    import pytest
    with pytest.raises(FileNotFoundError, match="nothere.h5"):
        models.build_model(weights=str(tmp_path / "nothere.h5"))


def test_model_folder_errors_name_the_problem(tmp_path):
    import pytest
    with pytest.raises(models.ModelFolderError, match="missing model.keras, config.json"):
        models.load_model_folder(tmp_path)
    (tmp_path / "config.json").write_text('{"class_names": [], "threshold": 0.5, "temperature": 1, "input_size": [224, 224, 3]}')
    # The committed model/ has no Keras file (the app serves its exports): say where it is.
    with pytest.raises(models.ModelFolderError, match="has no model.keras.*hf download .* model.keras --local-dir"):
        models.load_model_folder(tmp_path)
    (tmp_path / "model.keras").write_bytes(b"junk")
    with pytest.raises(models.ModelFolderError, match="not a loadable Keras model"):
        models.load_model_folder(tmp_path)
