"""An archive scored on a Ray cluster (`--ray [ADDRESS]`): Ray Data reads the
X-rays' bytes on the workers and maps batches over them, each worker holding
the served model once (`Scorer`, the same `answer_chunk` as one machine);
the driver writes the answers, in the archive's order, into the same files.

Ray is not in the Space's requirements: `pip install -r requirements-ray.txt`.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from pneumonia.batch.answers import Answers
from pneumonia.batch.inputs import Item
from pneumonia.batch.scoring import answer_chunk, write_answers
from pneumonia.serve.heatmap import encode_jpeg


class Scorer:
    """One worker's model: a batch of {"file", "path", "bytes"} -> {"file", "details", "overlay"}."""

    def __init__(self, model: str | None, overlays: bool):
        from pneumonia.serve import loader
        self.predictor = loader.load(model).predictor
        self.overlays = overlays

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        chunk = [Item(str(name), (lambda p=str(path), b=data: Path(p).read_bytes() if p else bytes(b)))
                 for name, path, data in zip(batch["file"], batch["path"], batch["bytes"])]
        answered = answer_chunk(chunk, self.predictor)
        return {"file": batch["file"],
                "details": np.array([json.dumps(d) for d, _ in answered], dtype=object),
                "overlay": np.array([encode_jpeg(o) if self.overlays and o is not None else b""
                                     for _, o in answered], dtype=object)}


def score_on_ray(todo: list[Item], model: str | None, answers: Answers, address: str, workers: int | None,
                 batch_size: int = 16, overlays: Path | None = None, total: int | None = None,
                 progress: bool = True) -> dict:
    """`scoring.score` on Ray: ADDRESS "local" starts Ray on this machine
    (`workers` CPUs), anything else joins that cluster."""
    import logging

    import ray

    import pneumonia
    logging.getLogger("ray").setLevel(logging.ERROR)
    # The workers get this package from the driver (its code, not the model: `model` must be a Hub repo id or a
    # folder every node can read).
    ray.init(address=None if address == "local" else address, num_cpus=workers if address == "local" else None,
             runtime_env={"py_modules": [str(Path(pneumonia.__file__).parent)]},
             ignore_reinit_error=True, include_dashboard=False, log_to_driver=False,
             logging_level=logging.ERROR)
    ray.data.DataContext.get_current().execution_options.preserve_order = True   # answers.csv in the archive's order
    ray.data.DataContext.get_current().enable_progress_bars = False
    workers = workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
    # A file on disk is read by the worker; a zip's member travels as bytes.
    rows = [{"file": it.name, "path": str(it.path) if it.path else "", "bytes": b"" if it.path else it.read()}
            for it in todo]
    if not rows:
        return {"answered": 0, "refused": 0, "stopped": False}
    ds = ray.data.from_items(rows).map_batches(
        Scorer, fn_constructor_kwargs={"model": model, "overlays": overlays is not None}, batch_size=batch_size,
        concurrency=workers, num_cpus=1, batch_format="numpy")
    results = ((row["file"], json.loads(row["details"]), row["overlay"] or None) for row in ds.iter_rows())
    counts = write_answers(results, answers, overlays, total or len(todo), len(todo), progress)
    ray.shutdown()
    return counts
