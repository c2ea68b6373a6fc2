"""The two training phases on cached activations: the head on pooled features, then fine-tuning; the best epoch by validation ROC AUC."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
import time

import keras
import numpy as np
from sklearn.metrics import roc_auc_score
import tensorflow as tf

from pneumonia import calibration
from pneumonia.train import model as models
from pneumonia.train.cli import log

# Called with each epoch's row of the history, as it comes.
EpochHook = Callable[[dict], None]


@dataclass
class Cached:
    """The frozen stages' outputs for every view: the training part's clean and
    augmented views (`views` copies of `n_train` rows), then validation, then its stressed copies."""
    acts: np.ndarray
    pooled: np.ndarray
    n_train: int
    views: int
    val_rows: np.ndarray
    stress_rows: np.ndarray
    y_train: np.ndarray
    y_val: np.ndarray


def class_weights(labels: np.ndarray) -> dict[int, float]:
    """Balanced weights: each class contributes half of the loss."""
    counts = np.bincount(labels, minlength=2)
    return {c: float(len(labels) / (2 * counts[c])) for c in range(2)}


def cache_activations(features: keras.Model, images: np.ndarray, batch_size: int):
    """Run the frozen stages once: (activations as float16, pooled features)."""
    fn = tf.function(lambda x: features(x, training=False))
    act_shape = tuple(features.outputs[0].shape[1:])
    acts = np.zeros((len(images), *act_shape), np.float16)
    pooled = np.zeros((len(images), features.outputs[1].shape[-1]), np.float32)
    bar = keras.utils.Progbar(len(images), unit_name="image")
    for start in range(0, len(images), batch_size):
        a, p = fn(models.grey_to_rgb(images[start:start + batch_size]))
        acts[start:start + len(a)] = a.numpy().astype(np.float16)
        pooled[start:start + len(p)] = p.numpy()
        bar.add(len(a))
    return acts, pooled


def predict_logits(net: keras.Model, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
    """The logits of a one-logit `net` over `x`, batched."""
    return models.predict_batched(net, x, batch_size)[:, 0]


def val_stats(logits: np.ndarray, labels: np.ndarray, stressed_logits: np.ndarray) -> dict[str, float]:
    """Loss and ROC AUC on clean validation, and AUC on its stressed copies."""
    stressed_labels = np.tile(labels, len(stressed_logits) // max(len(labels), 1))
    stats = {"val_loss": calibration.nll(logits, labels), "val_auc": float(roc_auc_score(labels, logits))}
    if len(stressed_logits):
        stats["val_auc_stressed"] = float(roc_auc_score(stressed_labels, stressed_logits))
    return stats


def _record(history: list[dict], row: dict, best: dict, net: keras.Model, on_epoch: EpochHook | None) -> dict:
    """Log an epoch; return the new best (a copy of `net`'s weights) if its
    validation ROC AUC beats the best so far."""
    history.append(row)
    if on_epoch:
        on_epoch(row)
    speed = f" ({row['images_per_s']:.1f} img/s)" if "images_per_s" in row else ""
    stressed = f" stressed {row['val_auc_stressed']:.4f}" if "val_auc_stressed" in row else ""
    log(f"  {row['phase']} epoch {row['epoch']}: loss {row['loss']:.4f} val_loss {row['val_loss']:.4f} "
        f"val_auc {row['val_auc']:.4f}{stressed}{speed}")
    if row["val_auc"] <= best["val_auc"]:
        return best
    return {"val_auc": row["val_auc"], "phase": row["phase"], "epoch": row["epoch"],
            "weights": [w.copy() for w in net.get_weights()]}


def fit_head(net: keras.Model, c: Cached, epochs: int, lr: float, history: list[dict],
             on_epoch: EpochHook | None = None) -> dict:
    """Phase 1: the head on the frozen backbone's pooled features; its best
    epoch's weights are set. Returns the best epoch so far."""
    head = models.head_model(net)
    head.compile(optimizer=keras.optimizers.Adam(lr), loss=keras.losses.BinaryCrossentropy(from_logits=True))
    x_head = c.pooled[: c.views * c.n_train]
    y_head = np.tile(c.y_train, c.views).astype(np.float32)
    weights = class_weights(c.y_train)
    best = {"val_auc": -1.0}
    log(f"Phase 1: head only, {epochs} epochs")
    for epoch in range(1, epochs + 1):
        fit = head.fit(x_head, y_head, batch_size=64, epochs=1, shuffle=True, class_weight=weights, verbose=0)
        row = {"phase": "head", "epoch": epoch, "loss": fit.history["loss"][-1],
               **val_stats(predict_logits(head, c.pooled[c.val_rows]), c.y_val,
                           predict_logits(head, c.pooled[c.stress_rows]))}
        best = _record(history, row, best, head, on_epoch)
    head.set_weights(best["weights"])
    return best


def fine_tune(net: keras.Model, c: Cached, cache_layer: str, fine_tune_from: str, epochs: int, lr: float,
              batch_size: int, rng: np.random.Generator, best: dict, history: list[dict],
              on_epoch: EpochHook | None = None) -> tuple[keras.Model, dict]:
    """Phase 2: fine-tune from `fine_tune_from` on the cached activations, a
    fresh random view of each training image per epoch. Returns (the trainable
    top, set to the best epoch of both phases; that epoch)."""
    models.set_fine_tuning(net, fine_tune_from)
    top = models.top_model(net, cache_layer)
    top.compile(optimizer=keras.optimizers.AdamW(lr, weight_decay=1e-4),
                loss=keras.losses.BinaryCrossentropy(from_logits=True))
    best["weights"] = [w.copy() for w in top.get_weights()]
    weights = class_weights(c.y_train)
    n = c.n_train
    log(f"Phase 2: fine-tuning from {fine_tune_from}, {epochs} epochs, {len(top.trainable_weights)} trainable tensors")
    for epoch in range(1, epochs + 1):
        order = rng.permutation(n)
        rows = rng.integers(0, c.views, n) * n + order
        bar = keras.utils.Progbar(n, unit_name="image")
        losses = []
        t_epoch = time.time()
        for start in range(0, n, batch_size):
            batch = np.sort(rows[start:start + batch_size])
            y = c.y_train[batch % n].astype(np.float32)
            losses.append(float(top.train_on_batch(c.acts[batch].astype(np.float32), y, class_weight=weights)))
            bar.add(len(batch), [("loss", losses[-1])])
        row = {"phase": "finetune", "epoch": epoch, "loss": float(np.mean(losses)),
               "images_per_s": n / (time.time() - t_epoch),
               **val_stats(predict_logits(top, c.acts[c.val_rows]), c.y_val,
                           predict_logits(top, c.acts[c.stress_rows]))}
        best = _record(history, row, best, top, on_epoch)
    top.set_weights(best["weights"])
    return top, best
