"""The out-of-distribution score on known distributions, and the guard in use."""
import numpy as np
import pytest

from pneumonia.serve import guard as ood
from pneumonia.train import guard_fit


@pytest.fixture(scope="module")
def gaussian():
    rng = np.random.default_rng(0)
    d = 64
    scales = np.linspace(3.0, 0.1, d)
    basis, _ = np.linalg.qr(rng.normal(size=(d, d)))

    def sample(n):
        return (rng.normal(size=(n, d)) * scales) @ basis.T + 5.0
    return sample, basis, scales


def test_in_distribution_is_accepted_and_far_points_refused(gaussian):
    sample, basis, scales = gaussian
    guard = guard_fit.fit(sample(4000), sample(1000), k=63, quantile=0.995)
    held_out = guard.score(sample(2000))
    assert np.mean(held_out <= guard.threshold) == pytest.approx(0.995, abs=0.01)
    assert held_out.mean() == pytest.approx(1.0, rel=0.1)  # scaled so typical points score ~1
    # A shift along the least-varying direction is far in Mahalanobis terms,
    # though tiny in Euclidean terms; with few components (PPCA) the residual
    # directions share one variance, so only larger shifts there stand out.
    shifted = sample(200) + 1.0 * basis[:, -1]
    assert np.mean(guard.score(shifted) > guard.threshold) > 0.95
    ppca = guard_fit.fit(sample(4000), sample(1000), k=16, quantile=0.995)
    assert np.mean(ppca.score(shifted) > ppca.threshold) < 0.05
    assert np.mean(ppca.score(sample(200) + 20.0 * basis[:, -1]) > ppca.threshold) > 0.95


def test_save_and_load_round_trip(gaussian, tmp_path):
    sample, _, _ = gaussian
    guard = guard_fit.fit(sample(500), sample(200), k=8)
    guard.save(tmp_path / "ood.npz")
    loaded = ood.OODGuard.load(tmp_path / "ood.npz")
    x = sample(50)
    np.testing.assert_allclose(loaded.score(x), guard.score(x), rtol=1e-5)
    assert loaded.threshold == guard.threshold


def test_shipped_guard_accepts_xrays_and_noise_is_refused_before_it(shipped_served):
    import dataclasses

    from conftest import DATA
    from pneumonia.serve.predictor import NoLungsError, Predictor
    predictor = shipped_served.predictor
    xrays = sorted((DATA / "test" / "NORMAL").iterdir())[:10] + sorted((DATA / "test" / "PNEUMONIA").iterdir())[:10]
    assert all(predictor.analyze(p)["is_chest_xray"] for p in xrays)
    noise = np.random.default_rng(0).uniform(0, 255, (400, 400)).astype(np.uint8)
    with pytest.raises(NoLungsError, match="No lung fields found"):
        predictor.analyze_array(noise)
    # The guard's refusal: lungs found, features unlike any training X-ray.
    strict = dataclasses.replace(predictor.guard, threshold=0.0)
    refusing = Predictor(predictor.forward, predictor.head, predictor.config, guard=strict, reader=predictor.reader)
    refused = refusing.analyze(xrays[0])
    assert refused["is_chest_xray"] is False and refused["refusal"] == {"reason": "not_chest_xray", "message": ood.VERDICT}
    assert refused["decision"] is None and refused["overlay"] is None
    assert refused["ood_score"] > refused["ood_threshold"] and refused["lungs"]["area_fraction"] > 0.1
