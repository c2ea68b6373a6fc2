"""The networks at serving time: OpenVINO, forward only, no TensorFlow.

`pneumonia.train.export` writes each Keras network of a model folder as an OpenVINO
IR (`.xml` + `.bin`); this module compiles them for the CPU. OpenVINO was
chosen by measurement on this 2-core CPU (bench/latency.py): ResNet50 to
conv5 in about a third of TensorFlow's time at batch 1, with outputs equal to
1e-6 relative in fp32, and the app then installs without TensorFlow.
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path
import threading
import time

import numpy as np

from pneumonia.config import RUNTIME_MAX_BATCH, RUNTIME_PRECISION, TIMING_REPEATS
from pneumonia.serve.batching import Batcher

# What `pneumonia.train.export` (and `pneumonia.train.quantize`, the int8
# classifier) write into a model folder.
CLASSIFIER_IR = "classifier.xml"
INT8_IR = "classifier.int8.xml"
SEGMENTER_IR = "lungs.xml"
HEAD_FILE = "head.npz"
# The adult reader's network, and its int8 export (pneumonia.train.reader_serving).
READER_IR = "reader.xml"
READER_INT8_IR = "reader.int8.xml"
# What the Hub download and the Space's preload fetch. The reader's int8 export
# is not among them: the served one missed the bar (config adult_reader.runtime.int8).
RUNTIME_FILES = [f for ir in (CLASSIFIER_IR, INT8_IR, SEGMENTER_IR, READER_IR)
                 for f in (ir, ir[:-4] + ".bin")] + [HEAD_FILE]
# What the classifier can run at: the fp32 export at fp32 or bf16 arithmetic,
# or the int8 export (its float layers at fp32).
PRECISIONS = ("f32", "bf16", "int8")

log = logging.getLogger(__name__)


def ir_files(config: dict) -> list[str]:
    """Every file the runtime reads from a folder, per its config."""
    rt = config.get("runtime") or {}
    files = [rt[k] for k in ("classifier", "segmenter", "head") if rt.get(k)]
    if int8_passed(config):
        files.append(rt["int8"]["classifier"])
    reader = config.get("adult_reader")   # its own network (and int8 export) under its own "runtime"
    if reader:
        files += [reader["file"], reader["runtime"]["classifier"]]
        if int8_passed(reader):
            files.append(reader["runtime"]["int8"]["classifier"])
    return files + [f[:-4] + ".bin" for f in files if f.endswith(".xml")]


def int8_passed(config: dict) -> bool:
    """The folder has an int8 classifier that passed the precision bar."""
    q = (config.get("runtime") or {}).get("int8") or {}
    return bool(q.get("passed") and q.get("classifier"))


@functools.cache
def core():
    import openvino as ov
    return ov.Core()


def bf16_arithmetic() -> bool:
    """This CPU computes in bf16 (AVX-512 BF16 or AMX); without it OpenVINO runs bf16 requests in fp32."""
    return "BF16" in core().get_property("CPU", "OPTIMIZATION_CAPABILITIES")


class Network:
    """A compiled IR: (n, ...) float32 -> its outputs, as numpy arrays, in order."""

    def __init__(self, path: str | Path, precision: str = RUNTIME_PRECISION):
        self.path = Path(path)
        try:
            self.compiled = core().compile_model(str(self.path), "CPU", {
                "INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"})
        except RuntimeError:  # a CPU without bf16 arithmetic: fp32, exact
            self.compiled = core().compile_model(str(self.path), "CPU", {
                "INFERENCE_PRECISION_HINT": "f32", "PERFORMANCE_HINT": "LATENCY"})
        # What the CPU actually runs (OpenVINO may fall back to f32 on its own).
        self.precision = self.compiled.get_property("INFERENCE_PRECISION_HINT").get_type_name()
        self._lock = threading.Lock()  # one infer request; Batcher callers never contend

    def __call__(self, x: np.ndarray) -> tuple[np.ndarray, ...]:
        with self._lock:
            out = self.compiled(np.ascontiguousarray(x, np.float32))
            return tuple(np.array(out[o]) for o in self.compiled.outputs)


def candidates(folder: Path, config: dict) -> dict[str, tuple[Path, str]]:
    """precision -> (IR file, OpenVINO inference precision) for each precision
    this CPU runs that the folder offers: fp32 always, bf16 only where the CPU
    computes in it, int8 only where the folder's int8 export passed the bar."""
    rt = config["runtime"]
    out = {"f32": (folder / rt["classifier"], "f32")}
    if bf16_arithmetic():
        out["bf16"] = (folder / rt["classifier"], "bf16")
    if int8_passed(config):
        out["int8"] = (folder / rt["int8"]["classifier"], "f32")
    return out


def time_network(net: "Network", max_batch: int = RUNTIME_MAX_BATCH, repeats: int = TIMING_REPEATS) -> tuple[float, float]:
    """(ms for one image alone, ms per image in a batch of `max_batch`), best of `repeats`."""
    # An X-ray-like spread of pixels: all-zero inputs ran ~15% faster than real ones here.
    x = np.random.default_rng(0).uniform(0, 255, (max_batch, 224, 224, 3)).astype(np.float32)
    net(x[:1])  # the first inference sets up its buffers
    best = [np.inf, np.inf]
    for _ in range(repeats):
        for i, n in enumerate((1, max_batch)):
            t = time.perf_counter()
            net(x[:n])
            best[i] = min(best[i], 1000 * (time.perf_counter() - t) / n)
    return best[0], best[1]


def shortlist(offered: list[str], capabilities: list[str]) -> tuple[list[str], str]:
    """Which offered precisions are worth timing on a CPU with these OpenVINO
    capabilities, and why: where bf16 arithmetic exists fp32 is never faster
    (Zen 4: ~18.5 vs ~39 ms a forward), so bf16 and int8 are timed; without
    it, a CPU with int8 dot products runs int8 (Zen 3: 55 vs 70 ms the whole
    in-process path, bench/latency.py), so nothing is timed and start-up pays
    for one network only."""
    if "bf16" in offered:
        return [q for q in offered if q != "f32"], "bf16 arithmetic here: fp32 is never the fastest"
    if "int8" in offered and "INT8" in capabilities:
        return ["int8"], "no bf16 arithmetic here, int8 dot products: int8 (the fastest on such CPUs), not timed"
    return offered, "the precisions offered here"


def fastest(nets: dict[str, "Network"]) -> tuple[str, dict[str, dict]]:
    """The network fastest to answer one image alone plus a full batch (a
    server sees both: lone requests, and batches under load), and each one's timing."""
    timings = {}
    for name, net in nets.items():
        alone, batched = time_network(net)
        timings[name] = {"alone_ms": round(alone, 2), "batched_ms_per_image": round(batched, 2)}
    return min(timings, key=lambda k: timings[k]["alone_ms"] + RUNTIME_MAX_BATCH * timings[k]["batched_ms_per_image"]), timings


def choose(folder: Path, config: dict, forced: str | None = None) -> tuple["Network", dict]:
    """The classifier network this machine serves, and how it was chosen:
    the forced precision, or by this CPU's capabilities (`shortlist`), then
    the fastest of what is left, timed at start-up."""
    options = candidates(folder, config)
    if forced:
        if forced not in options:
            raise ValueError(f"precision {forced!r} is not available here (available: {', '.join(options)})")
        names, how = [forced], "forced by PNEUMONIA_PRECISION"
    else:
        names, how = shortlist(list(options), core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    nets = {name: Network(*options[name]) for name in names}
    timings = None
    if len(nets) > 1:
        name, timings = fastest(nets)
        how += f"; the fastest of {', '.join(nets)} timed at start-up (one image alone, then {RUNTIME_MAX_BATCH} together)"
    else:
        name = names[0]
    info = {"precision": name, "chosen": how, "timings": timings, "cpu_bf16": bf16_arithmetic()}
    log.info("classifier at %s: %s %s", name, how, timings or "")
    return nets[name], info


class Classifier:
    """RGB (n, 224, 224, 3) in [0, 255] -> (last conv block (n, 7, 7, C),
    pooled features (n, C)), the same contract as `gradcam.Activations`.
    Concurrent callers are batched. `runtime` says which precision runs and why."""

    def __init__(self, net: "Network", runtime: dict | None = None, max_batch: int = RUNTIME_MAX_BATCH):
        self.net, self.runtime = net, runtime or {"precision": net.precision}
        self.batcher = Batcher(self._run, max_batch, name="classifier")

    @classmethod
    def load(cls, folder: str | Path, config: dict, forced: str | None = None) -> "Classifier":
        """The folder's classifier at the precision `choose` picks."""
        return cls(*choose(Path(folder), config, forced))

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
