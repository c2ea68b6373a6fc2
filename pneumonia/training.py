"""Two-phase fine-tuning of ResNet50 on cached activations.

The frozen stages run once per image view: each training image is cached as
its clean view plus `views` augmented ones (augmentation therefore happens
before the cache, a fresh random view is drawn from those per epoch), and the
trainable stages then train on the cached activations. Phase 1 fits the head
on pooled features of the frozen backbone; phase 2 fine-tunes from
`fine_tune_from` (BatchNorm frozen) with a lower learning rate. The epoch with
the best validation ROC AUC is kept. Then the threshold is fitted on the
validation split, which is grouped by patient, and the temperature on that
split together with its stressed copies (`augment.stressed`): a model
calibrated on clean validation images alone, which it nearly separates, is
overconfident on radiographs acquired elsewhere.
"""
from __future__ import annotations

import json
import platform
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from sklearn.metrics import roc_auc_score

from . import augment, calibration, data
from . import model as models
from .config import (CLASS_NAMES, CONFIG_FILE, HISTORY_FILE, IMAGE_SIZE, LUNG_DILATION, LUNG_VIEW,
                     MODEL_FILE, SEGMENTER_FILE, STRESS_COPIES,
                     TARGET_SENSITIVITY, TEMPERATURE_RULE)
from .lung_view import LungReader
from .segmentation import load_segmenter

# Written next to lungs.keras by pneumonia.lung_training; copied into the model folder with it.
SEGMENTER_COMPANIONS = ("lungs_report.json", "lungs_contact_sheet.jpg")


@dataclass
class TrainOptions:
    data_dir: str
    out_dir: str = "runs/model"
    weights: str | None = "imagenet"
    head_epochs: int = 20
    epochs: int = 5
    batch_size: int = 32
    fine_tune_from: str = "conv5"
    views: int = 1
    val_fraction: float = 0.15
    head_lr: float = 1e-3
    lr: float = 5e-5
    dropout: float = 0.3
    stress_copies: int = STRESS_COPIES
    seed: int = 0
    limit: int | None = None
    segmenter: str | None = None      # lungs.keras; None trains on whole images
    lung_view: str = LUNG_VIEW        # see pneumonia.lung_view; "full" needs no segmenter
    lung_dilation: float = LUNG_DILATION  # of the lung mask, as a fraction of the image side
    precision: str = "float32"        # or "mixed_bfloat16": compute in bf16, weights and saved model fp32


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


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


def _record(history: list[dict], row: dict, best: dict, net: keras.Model) -> dict:
    """Log an epoch; return the new best (a copy of `net`'s weights) if its
    validation ROC AUC beats the best so far."""
    history.append(row)
    speed = f" ({row['images_per_s']:.1f} img/s)" if "images_per_s" in row else ""
    stressed = f" stressed {row['val_auc_stressed']:.4f}" if "val_auc_stressed" in row else ""
    log(f"  {row['phase']} epoch {row['epoch']}: loss {row['loss']:.4f} val_loss {row['val_loss']:.4f} "
        f"val_auc {row['val_auc']:.4f}{stressed}{speed}")
    if row["val_auc"] <= best["val_auc"]:
        return best
    return {"val_auc": row["val_auc"], "phase": row["phase"], "epoch": row["epoch"],
            "weights": [w.copy() for w in net.get_weights()]}


def train(opts: TrainOptions) -> Path:
    """Train, calibrate and save a model folder (without test metrics)."""
    t0 = time.time()
    keras.utils.set_random_seed(opts.seed)
    keras.mixed_precision.set_global_policy(opts.precision)   # bf16 runs ~1.6x faster on AVX-512 BF16 CPUs
    rng = np.random.default_rng(opts.seed)
    out = Path(opts.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    if (Path(opts.data_dir) / "val").is_dir():
        log("Ignoring the dataset's val/ folder (16 images); validation is carved out of train.")
    log(f"Reading training images from {opts.data_dir}/train")
    split = data.load_train_split(opts.data_dir, opts.limit, opts.seed, opts.val_fraction)
    for path, why in split.skipped:
        log(f"  skipped unreadable file {path}: {why}")
    log(f"Read {len(split.labels)} images, skipped {len(split.skipped)} unreadable")
    segmenter = load_segmenter(opts.segmenter) if opts.lung_view != "full" else None
    reader = LungReader(segmenter, opts.lung_view, dilation=opts.lung_dilation)
    split, without_lungs, canons = reader.read_split(split)
    if segmenter is not None:
        log(f"Lung view {opts.lung_view!r}: images without lungs found, left out: {without_lungs}")
    images, labels, groups = split.images, split.labels, split.groups
    train_idx, val_idx, skipped = split.train_idx, split.val_idx, split.skipped
    log(f"Split by patient: train {len(train_idx)} images ({len({groups[i] for i in train_idx})} patients), "
        f"validation {len(val_idx)} ({len({groups[i] for i in val_idx})} patients)")

    net = models.build_model(opts.weights, opts.dropout)
    cache_layer = models.cache_layer_for(opts.fine_tune_from)
    features = models.feature_model(net, cache_layer)

    # Views: the clean image, then `views` augmented ones per training image;
    # validation images clean, then their fixed stressed copies.
    train_views = [images[train_idx]] + [augment.lung_augmented(reader.read, canons[train_idx], images[train_idx], rng)
                                         for _ in range(opts.views)]
    stressed_val = augment.lung_stressed(reader.read, canons[val_idx], images[val_idx], opts.stress_copies, opts.seed)
    view_images = np.concatenate(train_views + [images[val_idx], stressed_val])
    n_train, n_val = len(train_idx), len(val_idx)
    log(f"Caching {cache_layer} for {len(view_images)} views ({1 + opts.views} per training image, "
        f"1 + {opts.stress_copies} stressed per validation image)")
    acts, pooled = cache_activations(features, view_images, opts.batch_size)
    val_rows = np.arange((1 + opts.views) * n_train, (1 + opts.views) * n_train + n_val)
    stress_rows = np.arange((1 + opts.views) * n_train + n_val, len(view_images))
    y_train, y_val = labels[train_idx], labels[val_idx]
    weights = class_weights(y_train)
    history: list[dict] = []

    # Phase 1: the head on the frozen backbone's pooled features.
    head = models.head_model(net)
    head.compile(optimizer=keras.optimizers.Adam(opts.head_lr),
                 loss=keras.losses.BinaryCrossentropy(from_logits=True))
    x_head = pooled[: (1 + opts.views) * n_train]
    y_head = np.tile(y_train, 1 + opts.views).astype(np.float32)
    best = {"val_auc": -1.0}
    log(f"Phase 1: head only, {opts.head_epochs} epochs")
    for epoch in range(1, opts.head_epochs + 1):
        fit = head.fit(x_head, y_head, batch_size=64, epochs=1, shuffle=True,
                       class_weight=weights, verbose=0)
        row = {"phase": "head", "epoch": epoch, "loss": fit.history["loss"][-1],
               **val_stats(predict_logits(head, pooled[val_rows]), y_val,
                            predict_logits(head, pooled[stress_rows]))}
        best = _record(history, row, best, head)
    head.set_weights(best["weights"])

    # Phase 2: fine-tune from `fine_tune_from` on the cached activations.
    models.set_fine_tuning(net, opts.fine_tune_from)
    top = models.top_model(net, cache_layer)
    top.compile(optimizer=keras.optimizers.AdamW(opts.lr, weight_decay=1e-4),
                loss=keras.losses.BinaryCrossentropy(from_logits=True))
    best["weights"] = [w.copy() for w in top.get_weights()]
    log(f"Phase 2: fine-tuning from {opts.fine_tune_from}, {opts.epochs} epochs, "
        f"{len(top.trainable_weights)} trainable tensors")
    for epoch in range(1, opts.epochs + 1):
        order = rng.permutation(n_train)
        rows = rng.integers(0, 1 + opts.views, n_train) * n_train + order
        bar = keras.utils.Progbar(n_train, unit_name="image")
        losses = []
        t_epoch = time.time()
        for start in range(0, n_train, opts.batch_size):
            batch = np.sort(rows[start:start + opts.batch_size])
            y = y_train[batch % n_train].astype(np.float32)
            loss = top.train_on_batch(acts[batch].astype(np.float32), y, class_weight=weights)
            losses.append(float(loss))
            bar.add(len(batch), [("loss", losses[-1])])
        row = {"phase": "finetune", "epoch": epoch, "loss": float(np.mean(losses)),
               "images_per_s": n_train / (time.time() - t_epoch),
               **val_stats(predict_logits(top, acts[val_rows]), y_val,
                            predict_logits(top, acts[stress_rows]))}
        best = _record(history, row, best, top)
    top.set_weights(best["weights"])
    log(f"Kept {best['phase']} epoch {best['epoch']} (val AUC {best['val_auc']:.4f})")

    # Calibration and operating point, on validation only.
    val_logits = predict_logits(top, acts[val_rows])
    stressed_logits = predict_logits(top, acts[stress_rows])
    final = val_stats(val_logits, y_val, stressed_logits)
    temperature, threshold = calibration.fit_operating_point(val_logits, y_val, stressed_logits,
                                                             TARGET_SENSITIVITY)
    log(f"Temperature {temperature:.4f} (validation + {opts.stress_copies} stressed copies), "
        f"threshold {threshold:.4f} (highest with clean validation sensitivity >= {TARGET_SENSITIVITY})")

    if opts.precision != "float32":  # the weights were kept in fp32; serve and explain from an fp32 graph
        keras.mixed_precision.set_global_policy("float32")
        trained, net = net, models.build_model(None, opts.dropout)
        net.set_weights(trained.get_weights())
    for layer in net.layers:
        layer.trainable = True
    net.save(out / MODEL_FILE)
    lungs = None
    if reader.variant != "full":
        src = Path(opts.segmenter)
        if src.resolve() != (out / SEGMENTER_FILE).resolve():
            shutil.copyfile(src, out / SEGMENTER_FILE)
            for name in SEGMENTER_COMPANIONS:
                if (src.parent / name).is_file():
                    shutil.copyfile(src.parent / name, out / name)
        lungs = {"file": SEGMENTER_FILE, **reader.describe(), "segmenter_input": reader.segmenter.size,
                 "without_lungs": without_lungs}
    config = {
        "class_names": list(CLASS_NAMES),
        "positive_class": CLASS_NAMES[1],
        "input_size": [IMAGE_SIZE, IMAGE_SIZE, 3],
        "input": "RGB pixels in [0, 255]; greyscale radiographs repeated on 3 channels",
        "preprocessing": "inside the graph: ResNet50 caffe (RGB->BGR, minus ImageNet mean)",
        "output": "logit of PNEUMONIA; probability = sigmoid(logit / temperature)",
        "temperature": temperature,
        "threshold": threshold,
        "threshold_rule": f"highest threshold with validation sensitivity >= {TARGET_SENSITIVITY}",
        "temperature_rule": TEMPERATURE_RULE.format(copies=opts.stress_copies),
        "last_conv_layer": "conv5_block3_out",
        **({"lungs": lungs} if lungs else {}),
        "best": {"phase": best["phase"], "epoch": best["epoch"], "val_auc": best["val_auc"]},
        "validation": {"images": int(len(val_idx)), "patients": len({groups[i] for i in val_idx}),
                       "auc": final["val_auc"], "auc_stressed": final.get("val_auc_stressed"),
                       "stress_copies": opts.stress_copies,
                       "split": f"StratifiedGroupKFold by patient, fraction {opts.val_fraction}, seed {opts.seed}"},
        "data": {"dataset": "Chest X-Ray Images (Pneumonia), Kermany et al. 2018",
                 "train_images": int(len(train_idx)), "skipped_files": len(skipped),
                 "limit_per_class": opts.limit},
        "training": {**asdict(opts), "cache_layer": cache_layer, "augmentation": augment.DESCRIPTION,
                     "seconds": round(time.time() - t0, 1)},
        "versions": {"tensorflow": tf.__version__, "keras": keras.__version__,
                     "python": platform.python_version()},
        "git_commit": git_commit(),
    }
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    (out / HISTORY_FILE).write_text(json.dumps(history, indent=2) + "\n")
    log(f"Saved model folder {out} after {time.time() - t0:.0f} s")
    return out
