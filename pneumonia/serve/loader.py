"""Where the served model comes from, and what the app says about it."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import json
import logging
import os
from pathlib import Path

import numpy as np

from pneumonia.config import EMBEDDED_MODEL_DIR, HUB_MODEL_REPO, METRICS_FILE
from pneumonia.folder import ModelFolderError, read_config
from pneumonia.serve.density import OpacityRule
from pneumonia.serve.guard import OOD_FILE, OODGuard
from pneumonia.serve.hub import HubError, fetch_model
from pneumonia.serve.lung_view import LungReader
from pneumonia.serve.lungs import SegmenterError
from pneumonia.serve.notices import population_notice
from pneumonia.serve.predictor import Forward, Predictor
from pneumonia.serve.routing import POPULATION_FILE, AdultReader, LinearHead, Population
from pneumonia.serve.subtypes import SUBTYPES_FILE, Subtypes, withheld_reason
from pneumonia.serve.runtime import PRECISIONS, ir_files

# How a model folder becomes (forward pass, last layer, lung reader). The app
# serves the exported networks ("openvino", no TensorFlow); the benchmarks plug
# in the Keras files through TensorFlow as "keras" (pneumonia.train.keras_runtime,
# bench/keras_app.py), so this wing never imports the training one.
Networks = Callable[[Path, dict], tuple[Forward, LinearHead, LungReader]]
# A folder with an adult reader also gets its network as the forward pass's
# `adult` attribute (`adult_network`). The classifier's precision is chosen by the machine at load
# (runtime.choose); PNEUMONIA_PRECISION forces one (bench/precision.py says
# whether each gives the same answers).

log = logging.getLogger(__name__)


@dataclass
class ServedModel:
    predictor: Predictor
    folder: Path
    source: str          # what was asked for
    origin: str          # where it was actually loaded from, in words
    revision: str
    metrics: dict | None

    def _adults(self) -> str:
        """The operating point for adults, in the threshold's sentence."""
        cfg, reader = self.predictor.config, self.predictor.adult_reader
        if reader is None:
            return (f"; for X-rays that look like an adult's, the adult head's "
                    f"{cfg['population']['adult_head']['threshold']:.3f}.")
        rt = self.predictor.runtime or {}
        return (f"; X-rays that look like an adult's are read by the adult reader, a second network "
                f"({rt.get('adult_reader_precision', 'f32')} here; its int8 export "
                f"{'passed' if cfg['adult_reader']['runtime']['int8'].get('passed') else 'missed'} the bar), "
                f"threshold {reader.head.threshold:.3f}, \"can't tell\" for P in [{reader.low:.3f}, "
                f"{reader.high:.3f}); routing: {cfg['adult_reader']['routing']['routing']} by P(adult).")

    def panel_markdown(self) -> str:
        cfg = self.predictor.config
        lines = [
            f"**Model**: {self.origin}  ",
            f"**Revision**: `{self.revision}`  ",
            f"**Operating threshold**: P(PNEUMONIA) >= {cfg['threshold']:.3f} "
            f"({cfg.get('threshold_rule', '')}); temperature {cfg['temperature']:.3f}"
            + (self._adults() if cfg.get("population") else "."),
        ]
        rule = self.predictor.opacity_rule
        if rule is not None:
            lines += ["", f"**Opaque lung**: a lung whose density (its median grey between the lungs' darkest and "
                          f"the mediastinum's grey) reaches {rule.threshold:.2f} is opaque, and the answer's "
                          f"P(PNEUMONIA) is then at least {rule.probability:.3f}: {rule.k} of the {rule.n} "
                          "validation X-rays with a lung that dense had the disease."]
        rt = self.predictor.runtime
        if rt:
            times = "; ".join(f"{k} {v['alone_ms']:.0f} ms alone, {v['batched_ms_per_image']:.0f} ms an image in a batch"
                              for k, v in (rt.get("timings") or {}).items())
            lines += ["", f"**Runtime**: OpenVINO on this server's CPU, the classifier at **{rt['precision']}** "
                         f"({rt['chosen']}{': ' + times if times else ''}). Every precision offered gives the "
                         "fp32 answers within the bar of `bench/precision.py`."]
        m = self.metrics
        if m:   # two measurements of one model, each named for what it measured (the README quotes the first)
            t, ci = m["at_threshold"], m["ci95_at_threshold"]
            lines += ["", f"Test split ({m['n']} images, never used to choose anything), at the operating "
                          "threshold(s):", "", "| measured | accuracy | sensitivity | specificity | ROC AUC | ECE |",
                      "|---|---|---|---|---|---|"]
            s = m.get("served")
            if s:
                lines.append(f"| this app through `/predict`, at {s['precision']} on {s['cpu']} "
                             f"({s['n']} answered, `bench/served_test.py`) | {s['accuracy']:.3f} "
                             f"[{s['ci95']['accuracy'][0]:.3f}, {s['ci95']['accuracy'][1]:.3f}] "
                             f"| {s['sensitivity']:.3f} | {s['specificity']:.3f} | {s['roc_auc']:.3f} "
                             f"| {s['ece_15']:.3f} |")
            measured = ("the exported network in fp32 with its refitted last layer (`pneumonia.report.exported_eval`)"
                        if m.get("measured_with") else "the Keras model in fp32 (`pneumonia.report.evaluate`)")
            lines.append(f"| {measured} | {t['accuracy']:.3f} "
                         f"[{ci['accuracy'][0]:.3f}, {ci['accuracy'][1]:.3f}] | {t['sensitivity']:.3f} "
                         f"| {t['specificity']:.3f} | {m['roc_auc']:.3f} | {m['ece_15']:.3f} |")
        v = (m or {}).get("validity", {}).get("test")
        if v:
            lines += ["", f"Where its answers come from (test split): pasting one X-ray's lungs into another, "
                      f"the answer follows the lungs (AUC {v['swap_lungs_auc']:.2f}) rather than the "
                      f"surroundings ({v['swap_surroundings_auc']:.2f}); with the lungs hidden its AUC is "
                      f"{v['hidden_auc']:.2f}; {v['heat_in_lungs']['all']:.0%} of the heatmap falls on the lungs."]
        a = (m or {}).get("adult_transfer")
        if a and "served" in a:
            before, after = a["pediatric_head"], a["served"]
            lines += ["", f"On {after['n']} held-out adult X-rays from another hospital (NIH, noisy labels) its ROC "
                      f"AUC is {after['roc_auc']:.2f}; with the children's head alone it was {before['roc_auc']:.2f}. "
                      "X-rays that look like an adult's are flagged above the answer."]
        withheld = (self.predictor.subtypes.withheld or {}) if self.predictor.subtypes else {}
        if withheld.get("tuberculosis"):
            lines += ["", f"**Tuberculosis signs** are {withheld['tuberculosis']}."]
        lines += ["", "Trained on Chest X-Ray Images (Pneumonia), Kermany et al. 2018, CC BY 4.0, and NIH "
                  "ChestX-ray14 adults (NIH Clinical Center; Wang et al., CVPR 2017); the sample images are from "
                  "their test split and report part."]
        return "\n".join(lines)


def local_revision(config_commit: str | None) -> str:
    return f"embedded@{(config_commit or 'unknown')[:12]}"


def openvino_networks(folder: Path, config: dict) -> tuple[Forward, LinearHead, LungReader]:
    """The classifier's exported forward pass, its last layer and the lung reader."""
    if not config.get("runtime"):
        raise ModelFolderError(f"{folder} has no exported networks: run python -m pneumonia.train.export --model {folder}")
    missing = [f for f in ir_files(config) if not (folder / f).is_file()]
    if missing:
        raise ModelFolderError(f"Model folder {folder} is missing {', '.join(missing)}")
    from pneumonia.serve.runtime import Classifier
    rt = config["runtime"]
    forced = os.environ.get("PNEUMONIA_PRECISION") or None
    if forced not in (None, "auto", *PRECISIONS):
        raise ValueError(f"PNEUMONIA_PRECISION must be auto or one of {', '.join(PRECISIONS)}, not {forced!r}")
    with np.load(folder / rt["head"]) as f:
        head = LinearHead(f["w"].astype(np.float64), float(f["b"]), float(config["temperature"]),
                          float(config["threshold"]))
    forward = Classifier.load(folder, config, None if forced == "auto" else forced)
    reader = LungReader.exported(folder, config, "f32" if forced == "f32" else None)
    # The first request pays no compilation: the networks run once now.
    forward(np.zeros((1, 224, 224, 3), np.float32))
    if config.get("adult_reader"):
        forward.adult = adult_network(folder, config, forward.runtime["precision"])
        forward.adult(np.zeros((1, 224, 224, 3), np.float32))
        forward.runtime["adult_reader_precision"] = forward.adult.runtime["precision"]
    if reader.segmenter is not None:
        reader.segmenter.probability(np.zeros((1, 224, 224), np.uint8))
    return forward, head, reader


def adult_network(folder: Path, config: dict, precision: str) -> Forward:
    """The adult reader's exported network at the classifier's precision where
    the reader itself passed the bar at it (int8: its own export; bf16: a check
    on a bf16 machine recorded under adult_reader.runtime.bf16), else fp32."""
    from pneumonia.serve.runtime import Classifier, Network, candidates
    rt = config["adult_reader"]["runtime"]
    options = candidates(folder, {"runtime": rt})
    if not (rt.get("bf16") or {}).get("passed"):
        options.pop("bf16", None)
    name = precision if precision in options else "f32"
    return Classifier(Network(*options[name]), {"precision": name})


RUNTIMES: dict[str, Networks] = {"openvino": openvino_networks}


def load_folder(folder: str | Path, source: str, origin: str, revision: str | None = None,
                runtime: str = "openvino") -> ServedModel:
    """Load a model folder into a ready Predictor. A folder that did not come
    from the Hub is versioned by the code commit that trained it."""
    folder = Path(folder)
    config = read_config(folder)
    revision = revision or local_revision(config.get("git_commit"))
    metrics_path = folder / METRICS_FILE
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else None
    guard = OODGuard.load(folder / OOD_FILE) if (folder / OOD_FILE).is_file() else None
    population = Population.load(folder / POPULATION_FILE) if (folder / POPULATION_FILE).is_file() else None
    subtypes = Subtypes.load(folder / SUBTYPES_FILE) if (folder / SUBTYPES_FILE).is_file() else None
    if subtypes is not None and subtypes.tuberculosis is not None:
        tb = config.get("subtypes", {}).get("tuberculosis", {})
        reason = withheld_reason(tb.get("cross_hospital"))
        subtypes.withheld = {"tuberculosis": reason} if reason else {}
    try:
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r} "
                             "(pneumonia.train.keras_runtime.register() plugs in 'keras')")
        forward, head, reader = RUNTIMES[runtime](folder, config)
    except SegmenterError as e:
        raise ModelFolderError(str(e)) from None
    adult_reader, reader_forward = None, getattr(forward, "adult", None)
    if config.get("adult_reader") and population is not None and reader_forward is not None:
        adult_reader = AdultReader.load(folder / config["adult_reader"]["file"])
        population.blend = config["adult_reader"]["routing"]["routing"] == "blend"
    rule = config.get("opacity_rule")
    predictor = Predictor(forward, head, config, revision, guard, reader, population,
                          population_notice(config, metrics), subtypes, adult_reader, reader_forward,
                          OpacityRule(**rule["rule"]) if rule and rule.get("shipped") else None)
    return ServedModel(predictor, folder, source, origin, revision, metrics)


def load(source: str | Path | None = None, revision: str | None = None, runtime: str = "openvino") -> ServedModel:
    """Load the model named by `source`: a local model folder, or a Hub repo id
    (default `HUB_MODEL_REPO`) at `revision`. When the Hub model can't be had
    (no network and nothing cached, unknown repo, incomplete download), serve
    the committed `model/` folder and say why."""
    requested = str(source or HUB_MODEL_REPO)
    if Path(requested).is_dir():
        return load_folder(requested, requested, f"local folder `{requested}`", runtime=runtime)
    try:
        folder, commit = fetch_model(requested, revision)
        return load_folder(folder, requested, f"Hub repo `{requested}`", commit, runtime)
    except (HubError, ModelFolderError) as e:
        log.warning("serving the committed model: %s", e)
        return load_folder(EMBEDDED_MODEL_DIR, requested, f"the committed `model/` folder (fallback: {e})",
                           runtime=runtime)


def load_from_environment() -> ServedModel:
    """`PNEUMONIA_MODEL` (Hub repo id or folder), `PNEUMONIA_MODEL_REVISION` and
    `PNEUMONIA_RUNTIME` (openvino, the default, or one plugged into `RUNTIMES`)."""
    runtime = os.environ.get("PNEUMONIA_RUNTIME") or "openvino"
    if runtime not in RUNTIMES:
        raise ValueError(f"PNEUMONIA_RUNTIME must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
    return load(os.environ.get("PNEUMONIA_MODEL") or None, os.environ.get("PNEUMONIA_MODEL_REVISION") or None,
                runtime)
