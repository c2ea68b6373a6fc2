"""The Keras reference runtime: a model folder's Keras files through TensorFlow, plugged into the served predictor.

The benchmarks compare the exported networks the app serves against it
(bench/keras_app.py serves the app with it). It lives in the training wing
because it needs TensorFlow; the serving wing only sees a plain callable.
"""
from __future__ import annotations

from pathlib import Path

from pneumonia.serve import loader
from pneumonia.serve.lung_view import LungReader
from pneumonia.serve.predictor import Forward
from pneumonia.serve.routing import LinearHead
from pneumonia.train.gradcam import Activations
from pneumonia.train.model import load_model_folder, pediatric_head
from pneumonia.train.segmenter import keras_reader


def keras_networks(folder: Path, config: dict) -> tuple[Forward, LinearHead, LungReader]:
    """The folder's Keras classifier (activations and logit), its last layer and its Keras lung reader."""
    net, config = load_model_folder(folder)
    return Activations(net), pediatric_head(net, config), keras_reader(folder, config)


def register() -> None:
    """Make `runtime="keras"` (and PNEUMONIA_RUNTIME=keras) load through TensorFlow."""
    loader.RUNTIMES["keras"] = keras_networks
