"""The networks at serving time: OpenVINO, forward only, no TensorFlow.

`pneumonia.train.export` writes each Keras network of a model folder as an OpenVINO
IR (`.xml` + `.bin`); this module compiles them for the CPU. OpenVINO was
chosen by measurement on this 2-core CPU (bench/latency.py): ResNet50 to
conv5 in about a third of TensorFlow's time at batch 1, with outputs equal to
1e-6 relative in fp32, and the app then installs without TensorFlow.
"""
from __future__ import annotations

import functools
from pathlib import Path
import threading

import numpy as np

from pneumonia.config import RUNTIME_MAX_BATCH, RUNTIME_PRECISION
from pneumonia.serve.batching import Batcher

# What `pneumonia.train.export` writes into a model folder.
CLASSIFIER_IR = "classifier.xml"
SEGMENTER_IR = "lungs.xml"
HEAD_FILE = "head.npz"
RUNTIME_FILES = [CLASSIFIER_IR, CLASSIFIER_IR[:-4] + ".bin", SEGMENTER_IR, SEGMENTER_IR[:-4] + ".bin", HEAD_FILE]


def ir_files(config: dict) -> list[str]:
    """Every file the runtime reads from a folder, per its config."""
    rt = config.get("runtime") or {}
    files = [rt[k] for k in ("classifier", "segmenter", "head") if rt.get(k)]
    return files + [f[:-4] + ".bin" for f in files if f.endswith(".xml")]


@functools.cache
def _core():
    import openvino as ov
    return ov.Core()


class Network:
    """A compiled IR: (n, ...) float32 -> its outputs, as numpy arrays, in order."""

    def __init__(self, path: str | Path, precision: str = RUNTIME_PRECISION):
        self.path = Path(path)
        try:
            self.compiled = _core().compile_model(str(self.path), "CPU", {
                "INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"})
        except RuntimeError:  # a CPU without bf16 arithmetic: fp32, exact
            self.compiled = _core().compile_model(str(self.path), "CPU", {
                "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"})
        # What the CPU actually runs (OpenVINO may fall back to f32 on its own).
        self.precision = self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        self._lock = threading.Lock()  # one infer request; Batcher callers never contend

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        with self._lock:
            out = self.compiled(np.ascontiguousarray(x, np.float32))
            return tuple(np.array(out[o]) for o in self.compiled.outputs)


class Classifier:
    """RGB (n, 224, 224, 3) in [0, 255] -> (last conv block (n, 7, 7, C),
    pooled features (n, C)), the same contract as `gradcam.Activations`.
    Concurrent callers are batched."""

    def __init__(self, path: str | Path, precision: str = RUNTIME_PRECISION, max_batch: int = RUNTIME_MAX_BATCH):
        self.net = Network(path, precision)
        self.batcher = Batcher(self._run, max_batch, name="classifier")

    def _run(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        activations = self.net(x)[0]
        return activations, activations.mean(axis=(1, 2))

    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.batcher(images)


class SegmenterNet:
    """The lung U-Net as an IR: (n, size, size, 1) -> (n, size, size, 1) probability;
    a drop-in for the Keras network inside `segmentation.Segmenter`."""

    def __init__(self, path: str | Path, precision: str = RUNTIME_PRECISION, max_batch: int = RUNTIME_MAX_BATCH):
        self.net = Network(path, precision)
        self.size = int(self.net.compiled.inputs[0].get_partial_shape()[1].get_length())
        self.batcher = Batcher(lambda x: self.net(x)[0], max_batch, name="segmenter")

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.batcher(x)
