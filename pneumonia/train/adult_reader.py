"""Train the adult reader: a ResNet50 from ImageNet, fine-tuned on seven adult
sources, chosen by its worst validation source (rules.ADULT_RULE).

    python -m pneumonia.train.adult_reader --adults adult_cxr --hospitals lung_masks --more adult_more \\
        --segmenter model/lungs.keras --weights resnet50_notop.h5 --out runs/adult33 --hold-out bimcv,jsrt

One activation cache (clean and site-augmented lung views of every fit film,
validation films clean and stressed) trains two readers: OUT/reader on every
source, and OUT/held_out with the --hold-out sources in no part of training
or choice, so that their films show what a stranger's hospital will see.
Each folder gets model.keras, config.json, history.json and predictions.npz:
logits and pooled features of every film not fitted on (validation, report,
and the held-out sources whole), for the steps that follow (the can't-tell
band, the source probe, the report) without another network pass.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from pneumonia import calibration
from pneumonia.config import CONFIG_FILE, HISTORY_FILE, LUNG_DILATION, MODEL_FILE
from pneumonia.rules import ADULT_RULE
from pneumonia.serve.lung_view import LungReader
from pneumonia.train import adult_fit, augment, site_augment, worst_source
from pneumonia.train import model as models
from pneumonia.train.adult_sources import WHERE, Films, load_films
from pneumonia.train.cli import git_commit, log
from pneumonia.train.operating_point import fit_temperature
from pneumonia.train.phases import cache_activations, predict_logits
from pneumonia.train.segmenter import load_segmenter

CLASSES = (0, 1)


def outputs(net: keras.Model, views: np.ndarray, batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(logits, pooled features) of the full network over lung views."""
    both = keras.Model(net.input, [net.get_layer("logit").output, net.get_layer("avg_pool").output])
    fn = tf.function(lambda x: both(x, training=False))
    logits, pooled = [], []
    for i in range(0, len(views), batch_size):
        a, b = fn(models.grey_to_rgb(views[i:i + batch_size]))
        logits.append(a.numpy()[:, 0]), pooled.append(b.numpy().astype(np.float16))
    return np.concatenate(logits), np.concatenate(pooled)


def train_one(name: str, args, films: Films, views: np.ndarray, found: np.ndarray, cache: adult_fit.Cache,
              fit_rows: np.ndarray, val_rows: np.ndarray, held: tuple[str, ...], out: Path) -> None:
    """One reader from the shared cache, on the fit and validation films outside `held`."""
    t0 = time.time()
    keras.utils.set_random_seed(args.seed)
    use_fit = ~np.isin(films.sources[fit_rows], held)
    use_val = ~np.isin(films.sources[val_rows], held)
    n = len(fit_rows)
    keep = np.concatenate([np.flatnonzero(use_fit) + v * n for v in range(cache.views)])
    sub = adult_fit.Cache(np.concatenate([cache.acts[keep], cache.acts[cache.val_at + np.flatnonzero(use_val)]]),
                          np.concatenate([cache.pooled[keep], cache.pooled[cache.val_at + np.flatnonzero(use_val)]]),
                          int(use_fit.sum()), cache.views, len(keep))
    f_rows, v_rows = fit_rows[use_fit], val_rows[use_val]
    log(f"Reader {name!r}: {len(f_rows)} fit films, {len(v_rows)} validation films, held out: {held or 'none'}")
    net = models.build_model(args.weights, 0.3)
    top, best, history = adult_fit.fit(net, sub, films.labels[f_rows], films.sources[f_rows], films.labels[v_rows],
                                       films.sources[v_rows], args.cache_layer, "conv5", args.head_epochs,
                                       args.epochs, 1e-3, args.lr, args.batch_size, np.random.default_rng(args.seed))
    del sub
    for layer in net.layers:
        layer.trainable = True
    folder = out / name
    folder.mkdir(parents=True, exist_ok=True)
    net.save(folder / MODEL_FILE)
    # Every film not fitted on, through the whole network: validation, report, the held-out sources whole.
    rows = np.flatnonzero(found & ((films.parts != "fit") | np.isin(films.sources, held)))
    logits, pooled = outputs(net, views[rows])
    val_logits = logits[np.searchsorted(rows, v_rows)]   # v_rows lie within rows, both sorted
    stressed = predict_logits(top, cache.acts[cache.val_at + len(val_rows) + np.flatnonzero(use_val)])
    y_val = films.labels[v_rows]
    two = np.isin(y_val, CLASSES)
    temperature = fit_temperature(np.r_[val_logits[two], stressed[two]], np.r_[y_val[two], y_val[two]].astype(float))
    judged = worst_source.score(val_logits, y_val, films.sources[v_rows])
    config = {
        "reader": "adult", "rule": ADULT_RULE, "held_out_sources": list(held),
        "temperature": temperature, "threshold": float(calibration.sigmoid(judged["threshold"] / temperature)),
        "threshold_logit": judged["threshold"], "best": best,
        "validation": {"worst": judged["score"], "where": judged["where"], "sources": judged["sources"]},
        "lungs": {"variant": "crop+blur", "dilation": args.dilation, "segmenter": str(args.segmenter)},
        "training": {"fit_films": int(len(f_rows)), "views": cache.views, "fine_tune_from": "conv5",
                     "cache_layer": args.cache_layer, "epochs": args.epochs, "head_epochs": args.head_epochs,
                     "lr": args.lr, "batch_size": args.batch_size, "seed": args.seed,
                     "augmentation": site_augment.DESCRIPTION, "seconds": round(time.time() - t0, 1)},
        "sources": {s: WHERE[s] for s in WHERE}, "films": films.counts(),
        "git_commit": git_commit(),
    }
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    (folder / HISTORY_FILE).write_text(json.dumps(history, indent=2) + "\n")
    np.savez_compressed(folder / "predictions.npz", rows=rows, files=np.asarray(films.files)[rows],
                        sources=films.sources[rows].astype(str), labels=films.labels[rows],
                        parts=films.parts[rows].astype(str), logits=logits, pooled=pooled,
                        imagenet_pooled=cache.pooled[cache.val_at:cache.val_at + len(val_rows)].astype(np.float16),
                        imagenet_rows=val_rows)
    log(f"Saved {folder}: worst validation source {judged['score']:.4f} ({judged['where']}), "
        f"temperature {temperature:.3f}, {time.time() - t0:.0f} s")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for flag in ("--adults", "--hospitals", "--more", "--segmenter", "--weights"):
        p.add_argument(flag, required=True)
    p.add_argument("--out", default="runs/adult")
    p.add_argument("--hold-out", default="bimcv,jsrt", help="sources kept out of the second reader ('' for none)")
    p.add_argument("--views", type=int, default=2, help="site-augmented views cached per fit film")
    p.add_argument("--head-epochs", type=int, default=20)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--lr", type=float, default=1e-4)
    p.add_argument("--batch-size", type=int, default=30)
    p.add_argument("--cache-layer", default=models.cache_layer_for("conv5"))
    p.add_argument("--dilation", type=float, default=LUNG_DILATION)
    p.add_argument("--limit", type=int, default=None, help="at most N films per source (smoke runs)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    t0, out = time.time(), Path(args.out)
    rng = np.random.default_rng(args.seed)
    films = load_films(args.adults, args.hospitals, args.more, args.seed)
    if args.limit:
        keep = np.concatenate([np.flatnonzero(films.sources == s)[:args.limit] for s in np.unique(films.sources)])
        films = Films([films.files[i] for i in keep], films.canons[keep], films.labels[keep], films.sources[keep],
                      [films.groups[i] for i in keep], films.parts[keep])
    log(f"Read {len(films.files)} adult films: {json.dumps(films.counts())}")
    reader = LungReader(load_segmenter(args.segmenter), "crop+blur", dilation=args.dilation)
    views, _, _, found = reader.read(films.canons)
    for s in np.unique(films.sources):
        log(f"  {s}: no lungs found in {int((~found[films.sources == s]).sum())} of {int((films.sources == s).sum())}")
    fit_rows = np.intersect1d(films.rows("fit", labels=CLASSES), np.flatnonzero(found))
    val_rows = np.intersect1d(films.rows("validation"), np.flatnonzero(found))
    c = films.canons
    train_views = [views[fit_rows]] + [augment.lung_views(reader.read, site_augment.site_views(c[fit_rows], rng),
                                                          views[fit_rows]) for _ in range(args.views)]
    stressed = augment.lung_stressed(reader.read, c[val_rows], views[val_rows], 1, args.seed)
    all_views = np.concatenate(train_views + [views[val_rows], stressed])
    net = models.build_model(args.weights, 0.3)
    log(f"Caching {args.cache_layer} for {len(all_views)} views")
    acts, pooled = cache_activations(models.feature_model(net, args.cache_layer), all_views, 32)
    cache = adult_fit.Cache(acts, pooled, len(fit_rows), 1 + args.views, (1 + args.views) * len(fit_rows))
    held = tuple(s for s in args.hold_out.split(",") if s)
    for name, h in (("reader", ()), *((("held_out", held),) if held else ())):
        train_one(name, args, films, views, found, cache, fit_rows, val_rows, h, out)
    log(f"Done in {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
