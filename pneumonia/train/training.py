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

from dataclasses import asdict, dataclass, replace
import json
from pathlib import Path
import platform
import shutil
import time

import keras
import numpy as np
import tensorflow as tf

from pneumonia.config import (CLASS_NAMES, CONFIG_FILE, HISTORY_FILE, IMAGE_SIZE, LUNG_DILATION, LUNG_VIEW, MODEL_FILE,
                              SEGMENTER_FILE, STRESS_COPIES, TARGET_SENSITIVITY, TEMPERATURE_RULE)
from pneumonia.serve.lung_view import LungReader
from pneumonia.train import augment, devices, data
from pneumonia.train import model as models
from pneumonia.train import operating_point
from pneumonia.train.cli import git_commit, log
from pneumonia.train.phases import Cached, EpochHook, cache_activations, fine_tune, fit_head, predict_logits, val_stats
from pneumonia.train.segmenter import load_segmenter

# Written next to lungs.keras by pneumonia.train.lung_training; copied into the model folder with it.
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
    lung_view: str = LUNG_VIEW        # see pneumonia.serve.lung_view; "full" needs no segmenter
    lung_dilation: float = LUNG_DILATION  # of the lung mask, as a fraction of the image side
    # Compute precision ("auto": pneumonia.train.devices decides); weights and saved model stay fp32.
    # float32 by default: bf16 missed the validation rule on this project's CPU (bench/bf16_training.py).
    precision: str = "float32"


def train(opts: TrainOptions, on_epoch: EpochHook | None = None) -> Path:
    """Train, calibrate and save a model folder (without test metrics). `on_epoch`
    sees each epoch's row of the history as it comes (a notebook draws the curves)."""
    t0 = time.time()
    keras.utils.set_random_seed(opts.seed)
    opts = replace(opts, precision=devices.resolve(opts.precision))   # "auto": by the machine
    log(f"Precision {opts.precision}; GPUs: {len(tf.config.list_physical_devices('GPU'))}")
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
    split, without_lungs, canons = data.lung_split(reader, split)
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
    cached = Cached(acts, pooled, n_train, 1 + opts.views, val_rows, stress_rows, labels[train_idx], labels[val_idx])
    y_val = cached.y_val
    history: list[dict] = []
    best = fit_head(net, cached, opts.head_epochs, opts.head_lr, history, on_epoch)
    top, best = fine_tune(net, cached, cache_layer, opts.fine_tune_from, opts.epochs, opts.lr, opts.batch_size,
                          rng, best, history, on_epoch)
    log(f"Kept {best['phase']} epoch {best['epoch']} (val AUC {best['val_auc']:.4f})")

    # Calibration and operating point, on validation only.
    val_logits = predict_logits(top, acts[val_rows])
    stressed_logits = predict_logits(top, acts[stress_rows])
    final = val_stats(val_logits, y_val, stressed_logits)
    temperature, threshold = operating_point.fit_operating_point(val_logits, y_val, stressed_logits,
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
