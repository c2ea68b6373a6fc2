"""The pooled features `opacity_heads` fits and judges on (rules.WHITE_RULE), one network pass.

Every film is read the way the app reads it: canonical image -> the served
lung finder -> the lung view -> the served fp32 network. Edited films are
edited on the canonical image, inside the lungs found on the clean film, and
then read again (a user's white lung is found on the white film). `found`
says, per edited film, whether the lung finder still found its lungs (the
app would refuse it otherwise).
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from pneumonia.config import STRESS_COPIES
from pneumonia.folder import read_config
from pneumonia.serve.lung_view import LungReader
from pneumonia.serve.runtime import READER_IR, Network
from pneumonia.train import augment, data, non_opacity, opacity, site_augment
from pneumonia.train.reader_serving import pooled

PAINT_FAMILIES = ("consolidation", "effusion", "haze", "patchy")   # never white_lung: held out
STRENGTHS = (0.5, 1.0)         # of the paint, WHITE_RULE (3)
WHITE_STRENGTHS = (0.85, 1.0)  # of the held-out family, WHITE_RULE (5)
PAINT_SEED = 35
AUGMENT_SEED = 3507   # WHITE_RULE (7): the augmented views' own generator


def paint(canons: np.ndarray, masks: list[np.ndarray], seed: list[int]) -> np.ndarray:
    """Each film painted once at full strength with a family drawn by the seeded generator."""
    rng = np.random.default_rng(seed)
    out = []
    for c, m in zip(canons, masks):
        family = PAINT_FAMILIES[rng.integers(len(PAINT_FAMILIES))]
        out.append(opacity.patchy(c, m, rng) if family == "patchy" else opacity.paint(c, m, rng, family))
    return np.stack(out)


def at_strength(clean: np.ndarray, painted: np.ndarray, s: float) -> np.ndarray:
    return np.clip(np.round(clean + s * (painted.astype(np.float32) - clean)), 0, 255).astype(np.uint8)


def whitened(canons: np.ndarray, masks: list[np.ndarray], strength: float) -> np.ndarray:
    """The held-out family: one lung whitened, the side alternating by film."""
    return np.stack([opacity.whiten_lung(c, m, i % 2, strength) for i, (c, m) in enumerate(zip(canons, masks))])


def edited(canons: np.ndarray, masks: list[np.ndarray], name: str) -> np.ndarray:
    return np.stack([non_opacity.edit(c, m, name, i % 2) for i, (c, m) in enumerate(zip(canons, masks))])


def edit_sets(canons: np.ndarray, masks: list[np.ndarray], normal: np.ndarray, disease: np.ndarray,
              seed: list[int]) -> dict[str, np.ndarray]:
    """Validation films edited every way the rule judges: painted (training families,
    another seed), whitened at each strength, each non-opacity; by row index."""
    n = np.flatnonzero(normal)
    sets = {"painted": paint(canons[n], [masks[i] for i in n], seed)}
    both = np.flatnonzero(normal | disease)
    for s in WHITE_STRENGTHS:
        sets[f"white_{s}"] = whitened(canons[both], [masks[i] for i in both], s)
    for name in non_opacity.EDITS:
        sets[name] = edited(canons[n], [masks[i] for i in n], name)
    return sets


def read_sets(read: Callable, net: Network, sets: dict[str, np.ndarray], prefix: str) -> dict[str, np.ndarray]:
    """{prefix_name: pooled features, prefix_name_found: lungs found} per set."""
    out = {}
    for name, canons in sets.items():
        views, _, _, found = read(canons)
        out[f"{prefix}_{name}"], out[f"{prefix}_{name}_found"] = pooled(net, views), found
    return out


def clean_matches(clean: dict, net: Network, split) -> bool:
    """Whether saved clean features (population_refit's --features) are this split's, by a few rows."""
    if len(clean["k_fit"]) != len(split.train_idx) or len(clean["k_val"]) != len(split.val_idx):
        return False
    rows = split.train_idx[:8]
    return bool(np.allclose(pooled(net, split.images[rows]), clean["k_fit"][:8], atol=1e-3, rtol=1e-3))


def children(folder: Path, config: dict, lungs: LungReader, net: Network, data_dir: str,
             clean: dict | None = None) -> dict[str, np.ndarray]:
    """The training split's children: clean fit/validation/stressed (from `clean`
    where it holds this split's), painted fit NORMAL films at each strength, and
    the validation edit sets."""
    tr, seed = config["training"], config["training"]["seed"]
    split, _, canons = data.lung_split(lungs, data.load_train_split(
        data_dir, config["data"].get("limit_per_class"), seed, tr["val_fraction"]))
    masks = [l.mask for l in lungs.find(canons)]
    y = split.labels
    fit_n = split.train_idx[y[split.train_idx] == 0]
    val = split.val_idx
    g = {"ky_fit": y[split.train_idx], "ky_val": y[val], "k_val_views": split.images[val]}   # views: int8 re-judged
    if clean is not None and clean_matches(clean, net, split):
        g.update(k_fit=clean["k_fit"], k_val=clean["k_val"], k_stressed=clean["stressed"])
    else:
        stressed = augment.lung_stressed(lungs.read, canons[val], split.images[val], STRESS_COPIES, seed)
        g.update(k_fit=pooled(net, split.images[split.train_idx]), k_val=pooled(net, split.images[val]),
                 k_stressed=pooled(net, stressed))
    full = paint(canons[fit_n], [masks[i] for i in fit_n], [seed, PAINT_SEED, 0])
    g.update(read_sets(lungs.read, net, {f"fitpaint_{s}": at_strength(canons[fit_n], full, s) for s in STRENGTHS}, "k"))
    g.update(read_sets(lungs.read, net, edit_sets(canons[val], [masks[i] for i in val], y[val] == 0, y[val] == 1,
                                                   [seed, PAINT_SEED, 1]), "kv"))
    return g


def adults(folder: Path, config: dict, lungs: LungReader, net: Network, dirs: tuple[str, str, str]) -> dict[str, np.ndarray]:
    """The adults' two-class fit and validation films (reader features), a stressed
    validation copy, painted fit normals at each strength, the validation edit sets."""
    from pneumonia.train.adult_sources import load_films
    seed = config["adult_reader"]["training"]["seed"]
    films = load_films(*dirs, seed)
    g: dict[str, np.ndarray] = {}
    for part in ("fit", "validation"):
        rows = films.rows(part, labels=(0, 1))
        views, _, found_lungs, found = lungs.read(films.canons[rows])
        rows, views = rows[found], views[found]
        tag = part[:3]
        g[f"a_{tag}"], g[f"ay_{tag}"], g[f"as_{tag}"] = pooled(net, views), films.labels[rows], films.sources[rows].astype(str)
        masks = [l.mask for l, ok in zip(found_lungs, found) if ok]
        canons, y = films.canons[rows], films.labels[rows]
        if part == "fit":
            n = np.flatnonzero(y == 0)
            full = paint(canons[n], [masks[i] for i in n], [seed, PAINT_SEED, 2])
            g.update(read_sets(lungs.read, net, {f"fitpaint_{s}": at_strength(canons[n], full, s) for s in STRENGTHS}, "a"))
            g["a_fitpaint_sources"] = g["as_fit"][n]
        else:
            g["a_stressed"] = pooled(net, augment.lung_stressed(lungs.read, canons, views, 1, seed))
            g.update(read_sets(lungs.read, net, edit_sets(canons, masks, y == 0, y == 1, [seed, PAINT_SEED, 3]), "av"))
    return g


def gather(folder: str | Path, data_dir: str, adult_dirs: tuple[str, str, str], out: str | Path,
           clean: str | Path | None = None) -> dict[str, np.ndarray]:
    from pneumonia.train.cli import log
    folder = Path(folder)
    config = read_config(folder)
    lungs = LungReader.exported(folder, config, "f32")
    part = Path(str(out) + ".children.npz")   # a rerun after a failure in the adults' part starts there
    if part.exists():
        g = dict(np.load(part))
    else:
        saved = dict(np.load(clean)) if clean and Path(clean).exists() else None
        g = children(folder, config, lungs, Network(folder / config["runtime"]["classifier"], "f32"), data_dir, saved)
        np.savez(part, **g)
    log(f"Children: {len(g['k_fit'])} fit, {len(g['k_val'])} validation, painted and edited sets read")
    g.update(adults(folder, config, lungs, Network(folder / READER_IR, "f32"), adult_dirs))
    log(f"Adults: {len(g['a_fit'])} fit, {len(g['a_val'])} validation, painted and edited sets read")
    return g


def augmented(read: Callable, net: Network, canons: np.ndarray, masks: list[np.ndarray], normal: np.ndarray,
              view: Callable, seed: list[int]) -> dict[str, np.ndarray]:
    """WHITE_RULE (7): one augmented view (`view`, before the lungs are found) of every
    fit film and of every painted NORMAL fit film at each strength (the paint as in
    `children`/`adults`, same seed), kept where the lungs are found."""
    rng = np.random.default_rng(seed)
    n = np.flatnonzero(normal)
    full = paint(canons[n], [masks[i] for i in n], seed[:1] + [PAINT_SEED, seed[2]])
    sets = {"aug": view(canons, rng), **{f"augpaint_{s}": view(at_strength(canons[n], full, s), rng) for s in STRENGTHS}}
    return read_sets(read, net, sets, "x")


def gather_augmented(folder: str | Path, data_dir: str, adult_dirs: tuple[str, str, str]) -> dict[str, np.ndarray]:
    """The augmented fit sets of children (k) and adults (a), aligned with `gather`'s fit rows."""
    from pneumonia.train.cli import log
    folder = Path(folder)
    config = read_config(folder)
    lungs = LungReader.exported(folder, config, "f32")
    tr, seed = config["training"], config["training"]["seed"]
    split, _, canons = data.lung_split(lungs, data.load_train_split(
        data_dir, config["data"].get("limit_per_class"), seed, tr["val_fraction"]))
    fit = split.train_idx
    masks = [l.mask for l in lungs.find(canons[fit])]
    child = Network(folder / config["runtime"]["classifier"], "f32")
    g = {"k" + k[1:]: v for k, v in augmented(lungs.read, child, canons[fit], masks, split.labels[fit] == 0,
                                              augment.views, [seed, AUGMENT_SEED, 0]).items()}
    g["k_aug_y"] = split.labels[fit]
    log(f"Children: augmented views of {len(fit)} fit films and their painted normals read")
    aseed = config["adult_reader"]["training"]["seed"]
    canons, masks, y, sources = adult_fit_films(lungs, adult_dirs, aseed)
    reader = Network(folder / READER_IR, "f32")
    g.update({"a" + k[1:]: v for k, v in augmented(lungs.read, reader, canons, masks, y == 0,
                                                   site_augment.site_views, [aseed, AUGMENT_SEED, 2]).items()})
    g["a_aug_y"], g["a_aug_sources"] = y, sources
    log(f"Adults: augmented views of {len(y)} fit films and their painted normals read")
    return g


def adult_fit_films(lungs: LungReader, adult_dirs: tuple[str, str, str], seed: int
                    ) -> tuple[np.ndarray, list[np.ndarray], np.ndarray, np.ndarray]:
    """The adults' two-class fit films whose lungs are found, in `adults`' order:
    (canonical images, lung masks, labels, sources)."""
    from pneumonia.train.adult_sources import load_films
    films = load_films(*adult_dirs, seed)
    rows = films.rows("fit", labels=(0, 1))
    _, _, found_lungs, found = lungs.read(films.canons[rows])
    rows = rows[found]
    return (films.canons[rows], [l.mask for l, ok in zip(found_lungs, found) if ok], films.labels[rows],
            films.sources[rows].astype(str))
