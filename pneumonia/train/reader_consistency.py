"""WHITE_RULE (10): the adult reader's last block taught that bright overlays
(`pneumonia.train.overlays`) are not disease, by pairs: each fit film and its
overlaid copy must get the right class *and the same logit*.

    python -m pneumonia.train.reader_consistency --model model --adults adult_cxr --hospitals lung_masks \\
        --more adult_more --reader runs/adult33/reader/model.keras --cache runs/consistency36.npz \\
        --out runs/consistency36

The frozen stages run once (`--cache`, written on the first run: the fit
films clean and overlaid, the validation films clean and stressed, the
validation normals of Shenzhen, Montgomery and JSRT under each non-opacity,
all read by the served lung finder). Each epoch is judged on validation by
the rule; the kept network is written to OUT/model.keras with OUT/record.json.
Shipping it (export, tuberculosis line, routing, served-path check) is the
rule's last sentence and a separate step.
"""
from __future__ import annotations

import json
from pathlib import Path
import sys
import time

import numpy as np

from pneumonia.config import MODEL_FILE
from pneumonia.rules import WHITE_RULE
from pneumonia.train import non_opacity, worst_source
from pneumonia.train.opacity_heads import WHITENED_ADULT_SOURCES, logit_point
from pneumonia.train.white_conditions import CONDITIONS, Decide, rate

LAYER, FROM = "conv5_block2_out", "conv5_block3"
EPOCHS, LR, BATCH, SCORE_DROP = 5, 1e-4, 30, 0.01


def read_films(folder: Path, dirs: tuple[str, str, str]) -> dict[str, np.ndarray]:
    """Lung views of every film the rule reads, with labels and sources."""
    from pneumonia.folder import read_config
    from pneumonia.serve.lung_view import LungReader
    from pneumonia.train import augment
    from pneumonia.train.adult_sources import load_films
    from pneumonia.train.painted_features import adult_fit_films
    from pneumonia.train.reader_overlays import overlaid_films
    config = read_config(folder)
    lungs = LungReader.exported(folder, config, "f32")
    seed = config["adult_reader"]["training"]["seed"]
    canons, masks, y, sources = adult_fit_films(lungs, dirs, seed)
    over, _, _, over_found = lungs.read(overlaid_films(canons, masks, seed))   # (9)'s overlaid films, film for film
    out = {"fit": lungs.read(canons)[0], "overlaid": over, "overlaid_found": over_found, "y_fit": y, "s_fit": sources}
    films = load_films(*dirs, seed)
    rows = films.rows("validation", labels=(0, 1))
    views, _, found_lungs, found = lungs.read(films.canons[rows])
    rows, vmasks = rows[found], [l.mask for l, ok in zip(found_lungs, found) if ok]
    vc, vy, vs = films.canons[rows], films.labels[rows], films.sources[rows].astype(str)
    out.update(val=views[found], y_val=vy, s_val=vs,
               stressed=augment.lung_stressed(lungs.read, vc, views[found], 1, seed))
    three = np.flatnonzero((vy == 0) & np.isin(vs, WHITENED_ADULT_SOURCES))
    out["three"] = three
    for name in non_opacity.EDITS:
        edited = np.stack([non_opacity.edit(vc[i], vmasks[i], name, k % 2) for k, i in enumerate(three)])
        out[f"edit_{name}"], _, _, out[f"edit_{name}_found"] = lungs.read(edited)
    return out


def cache(net, films: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """`films` with every set of views replaced by its activations at LAYER."""
    from pneumonia.train import model as models
    from pneumonia.train.phases import cache_activations
    features = models.feature_model(net, LAYER)
    return {k: cache_activations(features, v, 32)[0] if v.ndim == 3 else v for k, v in films.items()}


def judge(top, c: dict[str, np.ndarray], epoch: int) -> dict:
    """One epoch by the rule: (3)'s score, (5)'s band, the three sources' non-opacities."""
    from pneumonia.train.phases import predict_logits
    y, s = c["y_val"], c["s_val"]
    lv = predict_logits(top, c["val"].astype(np.float32))
    scored = worst_source.score(lv, y, s)
    t, thr, band = logit_point(lv, predict_logits(top, c["stressed"].astype(np.float32)), y, s, scored)
    d = Decide(np.ones(1), 0.0, t, thr, band["low"], band["high"])
    called = d.normal(lv[c["three"]][:, None])
    stays = {name: rate(d.normal(predict_logits(top, c[f"edit_{name}"].astype(np.float32))[:, None])
                        & c[f"edit_{name}_found"], called) for name in non_opacity.EDITS}
    row = {"epoch": epoch, "score": scored["score"], "where": scored["where"], "sources": scored["sources"],
           "temperature": float(t), "threshold": thr, "band": band, "stays": stays,
           "answered": float(np.mean(d.pneumonia(lv[:, None]) | d.normal(lv[:, None])))}
    return row


def train(net, c: dict[str, np.ndarray], rng: np.random.Generator, log) -> tuple[list[dict], list]:
    """EPOCHS of paired fine-tuning of FROM and the last layer; (the judged epochs, each epoch's weights)."""
    import keras
    import tensorflow as tf
    from pneumonia.train import model as models
    from pneumonia.train.adult_fit import balanced_batches
    models.set_fine_tuning(net, FROM)
    top = models.top_model(net, LAYER)
    opt = keras.optimizers.AdamW(LR, weight_decay=1e-4)
    bce = keras.losses.BinaryCrossentropy(from_logits=True)
    ok = np.flatnonzero(c["overlaid_found"])
    y, s = c["y_fit"][ok], c["s_fit"][ok]

    @tf.function
    def step(clean, over, labels):
        with tf.GradientTape() as tape:
            a, b = top(clean, training=True), top(over, training=True)
            loss = bce(labels, a) + bce(labels, b) + tf.reduce_mean(tf.square(a - b))
        grads = tape.gradient(loss, top.trainable_variables)
        opt.apply_gradients(zip(grads, top.trainable_variables))
        return loss

    history, weights = [judge(top, c, 0)], [[w.copy() for w in top.get_weights()]]
    log(f"epoch 0 (served): {json.dumps({k: history[0][k] for k in ('score', 'where', 'stays')})}")
    for epoch in range(1, EPOCHS + 1):
        t0, losses = time.time(), []
        for rows in balanced_batches(y, s, 1, BATCH, rng):
            i = ok[rows]
            losses.append(float(step(c["fit"][i].astype(np.float32), c["overlaid"][i].astype(np.float32),
                                     c["y_fit"][i, None].astype(np.float32))))
        row = judge(top, c, epoch) | {"loss": float(np.mean(losses)), "seconds": round(time.time() - t0, 1)}
        history.append(row)
        weights.append([w.copy() for w in top.get_weights()])
        log(f"epoch {epoch}: {json.dumps({k: row[k] for k in ('loss', 'score', 'where', 'stays', 'seconds')})}")
    return history, weights


def eligible(row: dict, served: dict) -> bool:
    return row["epoch"] > 0 and row["score"] >= served["score"] - SCORE_DROP and all(
        v is not None and v >= CONDITIONS["non_opacity_stays"] for v in row["stays"].values())


def main(argv: list[str] | None = None) -> int:
    from pneumonia.train.cli import log, parser
    p = parser(__doc__, ("--model", "--adults", "--hospitals", "--more", "--reader"))
    p.add_argument("--cache", default="runs/consistency36.npz", help="read if it exists, else written")
    p.add_argument("--out", default="runs/consistency36")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    import keras
    net = keras.saving.load_model(args.reader, compile=False)
    if not Path(args.cache).exists():
        films = read_films(Path(args.model), (args.adults, args.hospitals, args.more))
        log(f"Read {len(films['fit'])} fit films and their overlaid copies, {len(films['val'])} validation films")
        np.savez(args.cache, **cache(net, films))
    c = dict(np.load(args.cache))
    log(f"Cache: {', '.join(f'{k} {v.shape}' for k, v in c.items())}")
    keras.utils.set_random_seed(args.seed)
    history, weights = train(net, c, np.random.default_rng(args.seed), log)
    ok = [r for r in history if eligible(r, history[0])]
    kept = max(ok, key=lambda r: r["score"]) if ok else None
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if kept:
        from pneumonia.train import model as models
        models.top_model(net, LAYER).set_weights(weights[kept["epoch"]])   # shares net's layers
        for layer in net.layers:
            layer.trainable = True
        net.save(out / MODEL_FILE)
    record = {"rule": WHITE_RULE[WHITE_RULE.index("(10)"):], "history": history, "kept": kept and kept["epoch"],
              "reader": args.reader, "command": "python -m pneumonia.train.reader_consistency " + " ".join(argv or sys.argv[1:])}
    (out / "record.json").write_text(json.dumps(record, indent=1, default=float) + "\n")
    log(f"kept: {kept and {k: kept[k] for k in ('epoch', 'score', 'stays')}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
