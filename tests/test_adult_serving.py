"""The adult reader at serving: who reads an X-ray, the can't-tell band, and
the pieces that fitted it (routing, the TB map's pointing, the guard's copies)."""
import numpy as np
import pytest
from conftest import EXAMPLES

from pneumonia.serve.imaging import load_image
from pneumonia.serve.predictor import Predictor
from pneumonia.serve.response import respond
from pneumonia.serve.routing import MIN_SHARE, AdultReader, LinearHead, Population, reader_share


def logit(p: float) -> float:
    return float(np.log(p / (1 - p)))


class Counting:
    """A forward pass that counts the X-rays it was given."""

    def __init__(self, forward):
        self.forward, self.seen = forward, 0

    def __call__(self, x):
        self.seen += len(x)
        return self.forward(x)


def predictor(served, p_child: float, p_reader: float, p_adult: float, blend: bool = True):
    """The shipped networks; heads answering p_child (children) and p_reader (reader), P(adult) = p_adult."""
    real = served.predictor
    n = len(real.head.w)
    child = LinearHead(np.zeros(n), logit(p_child), 1.0, real.head.threshold)
    gate = LinearHead(np.zeros(n), logit(p_adult), 1.0, 0.5)
    reader = AdultReader(LinearHead(np.zeros(n), logit(p_reader), 1.0, 0.34), 0.18, 0.69)
    forward = Counting(real.reader_forward)
    return Predictor(real.forward, child, real.config, "test", None, real.reader, Population(gate, gate, blend),
                     "notice", None, reader, forward), forward


def test_the_reader_saves_and_loads_and_its_band_is_half_open(tmp_path):
    r = AdultReader(LinearHead(np.arange(3.0), 0.5, 1.3, 0.34), 0.18, 0.69)
    r.save(tmp_path / "r.npz")
    back = AdultReader.load(tmp_path / "r.npz")
    assert back.low == 0.18 and back.high == 0.69 and back.head.temperature == 1.3
    np.testing.assert_array_equal(back.head.w, r.head.w)
    assert [back.uncertain(p) for p in (0.1799, 0.18, 0.5, 0.6899, 0.69)] == [False, True, True, True, False]


def test_share_is_hard_by_the_gate_or_p_adult_above_the_floor():
    gate = LinearHead(np.zeros(1), 0.0, 1.0, 0.5)
    p = np.array([0.0, MIN_SHARE / 2, MIN_SHARE, 0.3, 0.5, 0.51, 1.0])
    np.testing.assert_array_equal(reader_share(Population(gate, gate, False), p), [0, 0, 0, 0, 0, 1, 1])
    np.testing.assert_array_equal(reader_share(Population(gate, gate, True), p), [0, 0, MIN_SHARE, 0.3, 0.5, 0.51, 1])


P_CHILD = 0.99   # a children's head's answer above its threshold


def test_an_adult_inside_the_band_is_uncertain_and_a_child_never_waits_for_the_reader(shipped_served, tmp_path):
    grey = load_image(EXAMPLES / "NORMAL_IM-0001-0001.jpeg")
    assert P_CHILD > shipped_served.predictor.head.threshold   # the children's head alone says PNEUMONIA
    adult, forward = predictor(shipped_served, P_CHILD, 0.40, 0.999)
    label, overlay, d = respond(adult.analyze_array(grey), tmp_path)
    assert d["decision"] == label["label"] == "UNCERTAIN" and forward.seen == 1
    assert d["band"] == {"low": 0.18, "high": 0.69} and overlay is not None
    share = {h["head"]: h["share"] for h in d["heads"]}
    assert share["adult reader"] == pytest.approx(0.999) and d["answered_by"].endswith("blended")
    assert d["probability_pneumonia"] == pytest.approx(0.001 * P_CHILD + 0.999 * 0.40)
    outside, _ = predictor(shipped_served, P_CHILD, 0.05, 0.999)
    assert outside.analyze_array(grey)["decision"] == "NORMAL"   # below the band: answered
    child, forward = predictor(shipped_served, P_CHILD, 0.40, MIN_SHARE / 10)
    d = child.analyze_array(grey)
    assert forward.seen == 0 and d["band"] is None and d["decision"] == "PNEUMONIA"
    assert [h["head"] for h in d["heads"]] == ["children's head"] and d["answered_by"] == "children's head"
    hard, forward = predictor(shipped_served, P_CHILD, 0.40, 0.7, blend=False)
    d = hard.analyze_array(grey)
    assert d["answered_by"] == "adult reader" and d["decision"] == "UNCERTAIN" and forward.seen == 1


def test_routing_takes_the_lower_log_loss():
    from pneumonia.train.reader_serving import routing
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4))
    gate = LinearHead(np.array([3.0, 0, 0, 0]), 0.0, 1.0, 0.5)
    child, reader = LinearHead(np.array([0, 2.0, 0, 0]), 0.0), LinearHead(np.array([0, 0, 2.0, 0]), 0.0)
    y = (x[:, 1] > 0).astype(float)   # the children's head is right everywhere
    sets = {"all": {"child": x, "reader": x, "y": y}}
    chosen = routing(sets, Population(gate, gate), child, AdultReader(reader, 0.5, 0.5))
    # the less the reader counts, the better: hard routing gives it every X-ray with P(adult) > 0.5
    assert chosen["routing"] in ("hard", "blend") and set(chosen["log_loss"]) == {"hard", "blend"}
    assert chosen["log_loss"][chosen["routing"]] == min(chosen["log_loss"].values())


def test_the_tb_maps_peak_counts_inside_a_lesion_box():
    from pneumonia.train.tb_line import pointing
    cam = np.zeros((2, 7, 7))
    cam[0, 1, 5] = 1.0    # upper right cell
    cam[1, 6, 0] = 1.0    # lower left cell
    whole = {"x0": 0.0, "y0": 0.0, "x1": 1.0, "y1": 1.0}
    box = [(0.6, 0.0, 1.0, 0.4)]
    out = pointing(cam, [whole, whole], [box, box])
    assert out["n"] == 2 and out["peak_in_box"] == 0.5 and out["chance"] == pytest.approx(0.16, abs=0.03)


def test_the_guards_copies_keep_the_canonical_size():
    from pneumonia.train.population_refit import bordered, webp
    canon = np.tile(np.linspace(0, 255, 224, dtype=np.uint8), (224, 1))
    b, w = bordered(canon), webp(canon)
    assert b.shape == w.shape == (224, 224) and b[0, 0] == 0 and b[:, :15].max() == 0   # 10% of the side, resized
    assert np.abs(w.astype(int) - canon).mean() < 8
