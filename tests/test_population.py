"""Who an answer is valid for: hand-made features with known answers, the
adults' patient split, and the shipped folder's population files."""
import numpy as np
import pytest

from conftest import ROOT

from pneumonia.train import adults, population
from pneumonia.serve.routing import LinearHead, Population, answer


HOSPITALS = ROOT / "tests" / "data" / "hospitals"


def clusters(n: int, centre: float, seed: int, d: int = 32) -> np.ndarray:
    return np.random.default_rng(seed).normal(centre, 1.0, (n, d))


def test_gate_keeps_the_share_of_children_it_promises_and_flags_the_other_cluster():
    kids, grown = clusters(600, 0.0, 0), clusters(200, 1.5, 1)
    gate, table = population.fit_gate(kids, grown, clusters(400, 0.0, 2), clusters(100, 1.5, 3))
    assert len(table) == len(population.GATE_C)
    inside = gate.probability(clusters(2000, 0.0, 4)) <= gate.threshold
    assert abs(inside.mean() - population.KEEP_CHILDREN) < 0.015
    assert np.mean(gate.probability(clusters(500, 1.5, 5)) > gate.threshold) > 0.95
    # Centred: a blend's adult share passes one half where the notice starts.
    assert gate.threshold == population.GATE_MIDPOINT == 0.5
    mixed = np.concatenate([clusters(300, 0.0, 6), clusters(300, 1.5, 7)])
    share = answer(mixed, LinearHead(np.zeros(32), 0.0), Population(gate, gate, blend=True))[2]
    np.testing.assert_array_equal(share > 0.5, Population(gate, gate).looks_adult(gate.probability(mixed)))


def test_adult_head_learns_what_the_children_do_not_show():
    """Children's label lives on feature 0, adults' on feature 1: only a head
    fitted with adults can read theirs."""
    rng = np.random.default_rng(0)

    def sample(n, feature):
        y = rng.integers(0, 2, n)
        x = rng.normal(0, 1, (n, 8))
        x[:, feature] += 3 * (2 * y - 1)
        return x, y
    kx, ky = sample(800, 0)
    ax, ay = sample(200, 1)
    vx, vy = sample(200, 1)
    head, table = population.fit_adult_head(kx, ky, ax, ay, vx, vy)
    assert max(r["validation_adults_auc"] for r in table) > 0.95
    tx, ty = sample(400, 1)
    decided = head.probability(tx) >= head.threshold
    assert np.mean(decided[ty == 1]) >= 0.9 and np.mean(~decided[ty == 0]) >= 0.7
    assert 0 < head.temperature < 20


def test_answer_routes_each_image_to_its_head_with_that_heads_threshold(tmp_path):
    d = 4
    pediatric = LinearHead(np.array([1.0, 0, 0, 0]), 0.0, 1.0, 0.6)
    adult = LinearHead(np.array([0, 1.0, 0, 0]), 0.0, 2.0, 0.3)
    gate = LinearHead(np.array([0, 0, 0, 10.0]), 0.0, 1.0, 0.5)  # feature 3 > 0: an adult
    pop = Population(gate, adult)
    pop.save(tmp_path / "p.npz")
    pop = Population.load(tmp_path / "p.npz")
    assert pop.blend is False
    pooled = np.array([[2.0, -1, 0, -1], [2.0, -1, 0, 1]])
    probs, thresholds, share, weights = answer(pooled, pediatric, pop)
    assert share.tolist() == [0.0, 1.0]
    assert thresholds.tolist() == [0.6, 0.3]
    np.testing.assert_allclose(probs, [1 / (1 + np.exp(-2.0)), 1 / (1 + np.exp(0.5))])
    np.testing.assert_array_equal(weights, [pediatric.w, adult.w])
    no_population = answer(pooled, pediatric, None)
    assert not no_population[2].any() and weights.shape == (2, d)


def test_a_blend_weighs_both_heads_by_the_adult_probability(tmp_path):
    pediatric = LinearHead(np.array([1.0, 0, 0]), 0.0, 1.0, 0.6)
    adult = LinearHead(np.array([0, 1.0, 0]), 0.0, 1.0, 0.3)
    gate = LinearHead(np.array([0, 0, 1.0]), 0.0, 1.0, 0.5)
    Population(gate, adult, blend=True).save(tmp_path / "p.npz")
    pop = Population.load(tmp_path / "p.npz")
    assert pop.blend is True
    pooled = np.array([[1.0, -1.0, 0.0], [1.0, -1.0, 3.0], [1.0, -1.0, -3.0]])
    a = 1 / (1 + np.exp(-pooled[:, 2]))    # P(adult)
    probs, thresholds, share, weights = answer(pooled, pediatric, pop)
    np.testing.assert_allclose(share, a)
    np.testing.assert_allclose(probs, (1 - a) / (1 + np.exp(-1.0)) + a / (1 + np.exp(1.0)))
    np.testing.assert_allclose(thresholds, (1 - a) * 0.6 + a * 0.3)
    np.testing.assert_allclose(weights[1], (1 - a[1]) * pediatric.w + a[1] * adult.w)
    # Halfway, the two heads count the same.
    assert share[0] == 0.5 and thresholds[0] == pytest.approx(0.45)


def test_hospital_parts_never_share_a_patient_and_keep_each_kind():
    """Shenzhen and Montgomery X-rays (tests/data/hospitals): adults and
    children, normal and TB, in every part, never a patient in two."""
    h = adults.load_hospitals(HOSPITALS)
    assert set(h.sources) == {"Shenzhen", "Montgomery"} and set(h.labels.tolist()) == {0, adults.TB}
    assert (~h.adult).any() and h.adult.any()
    patients = [set(np.asarray(h.groups)[idx]) for idx in h.parts.values()]
    assert sum(len(p) for p in patients) == len(set(h.groups)) == len(h.files)
    assert all(len(idx) for idx in h.parts.values())
    assert h.canons.shape[1:] == (224, 224) and h.canons.dtype == np.uint8


def test_adult_parts_never_share_a_patient_and_keep_both_labels():
    labels = np.array([0, 1] * 60)
    groups = [f"p{i // 2}" for i in range(120)]  # two images per patient
    parts = adults.split_parts(labels, groups, seed=0)
    seen = [set(np.asarray(groups)[idx]) for idx in parts.values()]
    assert sum(len(s) for s in seen) == len(set(groups))
    assert sorted(np.concatenate(list(parts.values()))) == list(range(120))
    assert len(parts["fit"]) == pytest.approx(60, abs=6)
    assert all(0.3 < labels[idx].mean() < 0.7 for idx in parts.values())


def test_shipped_folder_answers_adults_with_the_adult_head(shipped_served):
    cfg = shipped_served.predictor.config
    assert cfg["population"]["validation_adults_routed"] >= 0.90
    assert cfg["population"]["validation_children_routed"] <= 0.02
    assert cfg["ood"]["validation_adults_accepted"] >= 0.97
    pop = shipped_served.predictor.population
    assert pop is not None and pop.adult.w.shape == (2048,)
    a = shipped_served.metrics["adult_transfer"]
    assert a["part"] == "report" and a["served"]["roc_auc"] > a["pediatric_head"]["roc_auc"]
