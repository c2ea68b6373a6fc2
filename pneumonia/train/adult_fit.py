"""Training the adult reader on cached activations: sources balanced in every
batch, each epoch judged by its worst validation source (rules.ADULT_RULE).

Like `pneumonia.train.phases`, the frozen stages ran once per view; here the
batches are drawn per source (each source the same share of every batch,
each class half of a two-class source's share), so a source with many films
of one class cannot teach "this hospital means this class".
"""
from __future__ import annotations

from dataclasses import dataclass
import time

import keras
import numpy as np

from pneumonia.train import model as models
from pneumonia.train import worst_source
from pneumonia.train.cli import log
from pneumonia.train.phases import predict_logits


@dataclass
class Cache:
    """Cached activations and pooled features: row `v * n_fit + i` is view `v`
    (0 clean) of fit film `i`; validation films' clean rows follow from `val_at`."""
    acts: np.ndarray
    pooled: np.ndarray
    n_fit: int
    views: int
    val_at: int


def cells(labels: np.ndarray, sources: np.ndarray) -> list[np.ndarray]:
    """Row indices of each (source, class) cell, grouped by source: [[cell, ...], ...]."""
    return [[np.flatnonzero((sources == s) & (labels == k)) for k in (0, 1) if ((sources == s) & (labels == k)).any()]
            for s in np.unique(sources)]


def balanced_weights(labels: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """Per-row weights: each source the same total, split evenly over its classes; mean 1."""
    w = np.zeros(len(labels))
    by_source = cells(labels, sources)
    for source_cells in by_source:
        for rows in source_cells:
            w[rows] = 1.0 / (len(by_source) * len(source_cells) * len(rows))
    return w * len(labels)


def balanced_batches(labels: np.ndarray, sources: np.ndarray, views: int, batch_size: int,
                     rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch (as many rows as films) of cache rows: every batch takes
    batch_size / sources rows of each source, drawn with replacement, a random view each."""
    by_source = cells(labels, sources)
    n, per = len(labels), max(1, batch_size // len(by_source))
    out = []
    for _ in range(max(1, n // (per * len(by_source)))):
        picks = []
        for source_cells in by_source:
            which = rng.integers(0, len(source_cells), per)
            picks += [source_cells[c][rng.integers(0, len(source_cells[c]))] for c in which]
        rows = np.asarray(picks) + rng.integers(0, views, len(picks)) * n
        out.append(np.sort(rows))
    return out


def _judge(history: list[dict], row: dict, logits: np.ndarray, y: np.ndarray, s: np.ndarray, best: dict,
           weights: list[np.ndarray]) -> dict:
    judged = worst_source.score(logits, y, s)
    row.update({"score": judged["score"], "worst": judged["where"], "threshold_logit": judged["threshold"],
                "sources": judged["sources"]})
    history.append(row)
    log(f"  {row['phase']} epoch {row['epoch']}: loss {row['loss']:.4f} worst source {judged['score']:.4f} "
        f"({judged['where']})" + (f" ({row['images_per_s']:.1f} img/s)" if "images_per_s" in row else ""))
    if judged["score"] <= best["score"]:
        return best
    return {"score": judged["score"], "phase": row["phase"], "epoch": row["epoch"], "weights": [w.copy() for w in weights]}


def fit(net: keras.Model, c: Cache, y_fit: np.ndarray, s_fit: np.ndarray, y_val: np.ndarray, s_val: np.ndarray,
        cache_layer: str, fine_tune_from: str, head_epochs: int, epochs: int, head_lr: float, lr: float, batch_size: int,
        rng: np.random.Generator) -> tuple[keras.Model, dict, list[dict]]:
    """Head on pooled features, then `fine_tune_from` on on cached activations; returns (the
    trainable top at the best epoch of both phases, that epoch, the history)."""
    history: list[dict] = []
    best: dict = {"score": -1.0}
    val_rows = np.arange(c.val_at, c.val_at + len(y_val))
    head = models.head_model(net)
    head.compile(optimizer=keras.optimizers.Adam(head_lr), loss=keras.losses.BinaryCrossentropy(from_logits=True))
    x_head = c.pooled[: c.views * c.n_fit]
    y_head = np.tile(y_fit, c.views).astype(np.float32)
    w_head = np.tile(balanced_weights(y_fit, s_fit), c.views)
    log(f"Phase 1: head only, {head_epochs} epochs")
    for epoch in range(1, head_epochs + 1):
        h = head.fit(x_head, y_head, sample_weight=w_head, batch_size=64, epochs=1, shuffle=True, verbose=0)
        row = {"phase": "head", "epoch": epoch, "loss": h.history["loss"][-1]}
        best = _judge(history, row, predict_logits(head, c.pooled[val_rows]), y_val, s_val, best, head.get_weights())
    head.set_weights(best["weights"])

    models.set_fine_tuning(net, fine_tune_from)
    top = models.top_model(net, cache_layer)
    top.compile(optimizer=keras.optimizers.AdamW(lr, weight_decay=1e-4),
                loss=keras.losses.BinaryCrossentropy(from_logits=True))
    best["weights"] = [w.copy() for w in top.get_weights()]
    log(f"Phase 2: fine-tuning from {fine_tune_from}, {epochs} epochs, sources balanced in every batch")
    for epoch in range(1, epochs + 1):
        t0, losses = time.time(), []
        batches = balanced_batches(y_fit, s_fit, c.views, batch_size, rng)
        bar = keras.utils.Progbar(len(batches), unit_name="batch")
        for rows in batches:
            y = y_fit[rows % c.n_fit].astype(np.float32)
            losses.append(float(top.train_on_batch(c.acts[rows].astype(np.float32), y)))
            bar.add(1, [("loss", losses[-1])])
        row = {"phase": "finetune", "epoch": epoch, "loss": float(np.mean(losses)),
               "images_per_s": sum(map(len, batches)) / (time.time() - t0)}
        best = _judge(history, row, predict_logits(top, c.acts[val_rows]), y_val, s_val, best, top.get_weights())
    top.set_weights(best["weights"])
    return top, {k: v for k, v in best.items() if k != "weights"}, history
