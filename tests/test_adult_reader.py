"""The adult reader's training pieces on hand-made values whose answers are known:
the worst-source score and its threshold, the can't-tell band, batches that
draw every source alike, the site augmentation, and the seven-source table
on the bundled hospital films."""
import numpy as np
import pytest

from pneumonia.train import adult_fit, site_augment, uncertain, worst_source


def test_the_score_is_the_worst_source_not_the_average():
    # Source a: perfect. Source b (normals only): two of four above 0. Source c (positives only): all above 0.
    logits = np.array([-3, -2, 2, 3, -1, -1, 1, 1, 1, 2, 3])
    labels = np.array([0, 0, 1, 1, 0, 0, 0, 0, 1, 1, 1])
    sources = np.array(["a"] * 4 + ["b"] * 4 + ["c"] * 3)
    # Above 1 every normal of b is NORMAL and 2 of c's 3 positives are found (worst 2/3);
    # at or below 1 half of b's normals are called PNEUMONIA (worst 1/2).
    t = worst_source.choose_threshold(logits, labels, sources)
    assert 1 < t <= 2
    judged = worst_source.score(logits, labels, sources)
    table = judged["sources"]
    assert set(table) == {"a", "b", "c"} and table["a"]["auc"] == 1.0
    assert "auc" not in table["b"] and "sensitivity" not in table["b"] and "specificity" not in table["c"]
    assert judged["score"] == pytest.approx(2 / 3) and judged["where"] == "c sensitivity"


def test_the_threshold_balances_the_worst_specificity_and_sensitivity():
    rng = np.random.default_rng(0)
    normals, positives = rng.normal(-1, 1, 400), rng.normal(1, 1, 400)
    logits = np.r_[normals, positives]
    labels = np.r_[np.zeros(400, int), np.ones(400, int)]
    sources = np.r_[np.full(400, "n"), np.full(400, "p")]
    t = worst_source.choose_threshold(logits, labels, sources)
    assert abs(t) < 0.15   # symmetric classes: the crossing near 0
    spec, sens = np.mean(normals < t), np.mean(positives >= t)
    assert abs(spec - sens) < 0.02
    # a film of neither class (tuberculosis, 2) is not counted
    assert worst_source.per_source(logits, np.r_[labels[:-1], 2], sources, t)["p"]["n"] == 399


def test_the_band_is_the_narrowest_that_answers_right_on_every_source():
    rng = np.random.default_rng(1)
    # Two sources; near the threshold 0.5 the answers are coin flips, far from it always right.
    p = rng.uniform(0, 1, 4000)
    y = np.where(np.abs(p - 0.5) < 0.15, rng.integers(0, 2, 4000), (p >= 0.5).astype(int))
    s = np.where(rng.random(4000) < 0.5, "a", "b")
    band = uncertain.choose_band(p, y, s, 0.5)
    assert band["rule_met"] and band["low"] <= 0.5 <= band["high"]
    for r in band["sources"].values():
        assert r["right"] >= uncertain.TARGET and r["answered"] > 0.6
    # A band wider than needed would answer less; a band of nothing would be right less often.
    none = uncertain.per_source(p, y, s, 0.5, 0.5, 0.5)
    assert min(r["right"] for r in none.values()) < uncertain.TARGET
    assert band["high"] - band["low"] < 0.35


def test_no_band_needed_when_every_answer_is_right():
    p = np.array([0.1, 0.2, 0.8, 0.9])
    band = uncertain.choose_band(p, np.array([0, 0, 1, 1]), np.array(["a", "a", "a", "a"]), 0.5)
    assert band["rule_met"] and band["sources"]["a"]["answered"] == 1.0


def test_every_batch_draws_every_source_alike():
    labels = np.r_[np.zeros(500, int), np.ones(500, int), np.ones(40, int), np.zeros(10, int)]
    sources = np.r_[np.full(1000, "big"), np.full(40, "positives"), np.full(10, "normals")]
    batches = adult_fit.balanced_batches(labels, sources, views=3, batch_size=30, rng=np.random.default_rng(0))
    n = len(labels)
    assert sum(map(len, batches)) == pytest.approx(n, abs=30)
    for rows in batches:
        films = rows % n
        assert all((rows // n) < 3)
        counts = {s: int(np.sum(sources[films] == s)) for s in ("big", "positives", "normals")}
        assert counts == {"big": 10, "positives": 10, "normals": 10}
    big = np.concatenate([r % n for r in batches])
    big = big[sources[big] == "big"]
    assert 0.4 < labels[big].mean() < 0.6          # a two-class source: half each class
    w = adult_fit.balanced_weights(labels, sources)
    for s in ("big", "positives", "normals"):
        assert w[sources == s].sum() == pytest.approx(len(labels) / 3)


def test_site_views_change_how_a_film_was_stored_not_what_it_shows():
    from conftest import EXAMPLES
    from pneumonia.serve.imaging import canonical, load_image
    film = canonical(load_image(EXAMPLES / "NORMAL_IM-0001-0001.jpeg"))
    views = site_augment.site_views(np.stack([film] * 12), np.random.default_rng(0))
    assert views.shape == (12, 224, 224) and views.dtype == np.uint8
    differs = [np.abs(v.astype(int) - film).mean() for v in views]
    assert min(differs) > 0.5                       # every view changed
    same = site_augment.site_views(np.stack([film] * 12), np.random.default_rng(0))
    assert np.array_equal(views, same)              # seeded: the same views again
    assert all(v.std() > 20 for v in views)         # still a film, not a blank or a blur of one


def test_seven_sources_in_one_table_with_parts_that_never_share_a_patient(tmp_path):
    """NIH and the hospitals keep the parts pneumonia.train.adults gives them; the
    four sources of adult_more/ (laid out as their README says, here with bundled
    films) are split by file, stratified by label; Shenzhen's children are left out."""
    import shutil
    from conftest import DATA
    from pneumonia.train.adult_sources import LABEL_NAMES, SOURCES, load_films
    films = sorted((DATA.parent / "adults").glob("*.png"))
    more = tmp_path / "adult_more"
    for name, column, value in (("rsna", "opacity", None), ("bimcv", "pneumonia", "1"), ("jsrt", "nodule", None),
                                ("tbx11k", "tb", "1")):
        (more / name).mkdir(parents=True)
        rows = []
        for i, f in enumerate(films[:8]):
            shutil.copy(f, more / name / f"{name}_{i}.png")
            rows.append(f"{name}_{i}.png,{value or i % 2},x")
        (more / name / "labels.csv").write_text(f"file,{column},finding\n" + "\n".join(rows) + "\n")
    table = load_films(DATA.parent / "adults", DATA.parent / "hospitals", more)
    assert set(table.sources) == set(SOURCES) and len(table.files) == len(table.labels) == len(table.canons)
    assert set(table.parts) == {"fit", "validation", "report"}
    assert set(table.labels[table.sources == "bimcv"]) == {1} and set(table.labels[table.sources == "tbx11k"]) == {2}
    assert set(table.labels[table.sources == "jsrt"]) == {0, 3} and set(table.labels[table.sources == "rsna"]) == {0, 1}
    for g in set(table.groups):   # a patient in one part only
        assert len(set(table.parts[[i for i, x in enumerate(table.groups) if x == g]])) == 1
    counts = table.counts()
    assert all(set(c) <= set(LABEL_NAMES.values()) for parts in counts.values() for c in parts.values())
    assert table.rows("fit", ["rsna"], [0, 1]).size == counts["rsna"]["fit"].get("normal", 0) + \
        counts["rsna"]["fit"].get("opacity", 0)


def test_the_report_reads_each_source_and_the_held_out_ones_apart(tmp_path):
    """pneumonia.report.adult_report on hand-made predictions: per source and part,
    at the reader's threshold; the band chosen on validation only; held-out sources whole."""
    import json
    from pneumonia.report.adult_report import reader_report
    rng = np.random.default_rng(0)
    sources, labels, parts = [], [], []
    for src, kinds in (("rsna", (0, 1)), ("bimcv", (1,)), ("jsrt", (0, 3)), ("tbx11k", (2,))):
        for part in ("validation", "report"):
            for k in kinds:
                sources += [src] * 40
                labels += [k] * 40
                parts += [part] * 40
    labels = np.asarray(labels)
    logits = np.where(labels == 1, 2.0, -2.0) + rng.normal(0, 1.2, len(labels))
    np.savez(tmp_path / "predictions.npz", rows=np.arange(len(labels)), sources=np.asarray(sources),
             labels=labels, parts=np.asarray(parts), logits=logits)
    (tmp_path / "config.json").write_text(json.dumps({"temperature": 1.0, "threshold": 0.5, "best": {},
                                                      "held_out_sources": ["jsrt"]}))
    out = reader_report(tmp_path, np.random.default_rng(0))
    assert set(out["validation"]) == {"rsna", "bimcv", "tbx11k"} and set(out["held_out_whole"]) == {"jsrt"}
    rsna = out["report"]["rsna"]
    p = 1 / (1 + np.exp(-logits))
    k = (np.asarray(sources) == "rsna") & (np.asarray(parts) == "report")
    assert rsna["specificity"][0] == pytest.approx(np.mean(p[k & (labels == 0)] < 0.5))
    assert rsna["specificity"][1] <= rsna["specificity"][0] <= rsna["specificity"][2]
    assert out["held_out_whole"]["jsrt"]["nodules called PNEUMONIA"][3] == 80
    assert "tuberculosis called PNEUMONIA" in out["report"]["tbx11k"]
    assert out["band"]["low"] <= 0.5 <= out["band"]["high"]
    assert all(r["with_band"]["right"] >= 0.9 for r in out["validation"].values() if "with_band" in r)
