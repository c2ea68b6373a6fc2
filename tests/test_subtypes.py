"""The heads under the answer: where they apply, their file round trip, and
their fitting rule on features whose answers are known."""
import numpy as np
import pytest

from pneumonia.serve.routing import LinearHead
from pneumonia.serve.subtypes import Subtypes, describe
from pneumonia.train import subtypes as fit


def heads(n=4) -> Subtypes:
    w = np.zeros(n)
    w[0] = 1.0
    return Subtypes(LinearHead(w, 0.0, 1.0, 0.5), LinearHead(-w, 0.0, 2.0, 0.4),
                    {"bacterial": "measured on a", "tuberculosis": "measured on b"})


@pytest.mark.parametrize("answer, type_given, tb_given", [
    ({"decision": "PNEUMONIA", "looks_adult": False}, True, False),   # a child's pneumonia: which kind
    ({"decision": "NORMAL", "looks_adult": False}, False, False),     # a healthy child: neither
    ({"decision": "NORMAL", "looks_adult": True}, False, True),       # an adult: TB whatever the answer
    ({"decision": "PNEUMONIA", "looks_adult": True}, False, True),
    ({"decision": None}, False, False),                               # refused
])
def test_each_head_gives_a_number_only_where_it_applies(answer, type_given, tb_given):
    pooled = np.array([[2.0, 0, 0, 0]])
    out = describe(heads(), pooled if answer["decision"] else None, answer)
    for key, given in (("pneumonia_type", type_given), ("tuberculosis", tb_given)):
        o = out[key]
        assert (o["probability"] is not None) == given, key
        assert (o["reason"] is None) == given and (o["measured"] is not None) == given, key
    if type_given:
        assert out["pneumonia_type"]["decision"] == "bacterial"   # sigmoid(2) = 0.88 >= 0.5
    if tb_given:
        assert out["tuberculosis"]["decision"] == "no signs"      # sigmoid(-2 / 2) = 0.27 < 0.4


def test_subtypes_file_round_trips(tmp_path):
    s = heads()
    s.save(tmp_path / "subtypes.npz")
    back = Subtypes.load(tmp_path / "subtypes.npz")
    assert back.measured == s.measured
    for name in ("bacterial", "tuberculosis"):
        a, b = getattr(s, name), getattr(back, name)
        assert np.array_equal(a.w, b.w) and (a.b, a.temperature, a.threshold) == (b.b, b.temperature, b.threshold)
    Subtypes(None, s.tuberculosis, {}).save(tmp_path / "one.npz")
    assert Subtypes.load(tmp_path / "one.npz").bacterial is None


def test_fitting_rule_on_features_with_known_answers():
    rng = np.random.default_rng(0)

    def sample(n):
        y = rng.integers(0, 2, n)
        x = rng.normal(0, 1, (n, 8)) + 1.5 * y[:, None] * np.eye(8)[0]
        return x, y
    x, y = sample(400)
    xv, yv = sample(200)
    head, info = fit.fit_head(x, y, xv, yv)
    assert set(info["validation_auc_by_C"]) == {str(c) for c in fit.C_GRID}
    assert info["validation_auc_by_C"][str(info["C"])] == max(info["validation_auc_by_C"].values())
    assert head.temperature > 0 and fit.report(head, xv, yv)["roc_auc"] > 0.8
    t = fit.balanced_threshold(head.probability(xv), yv)
    p = head.probability(xv)
    best = max((np.mean(p[yv == 1] >= q) + np.mean(p[yv == 0] < q)) / 2 for q in np.unique(p))
    assert (np.mean(p[yv == 1] >= t) + np.mean(p[yv == 0] < t)) / 2 == pytest.approx(best)
    with pytest.raises(fit.TooFewError):
        fit._two_classes(validation=np.zeros(5))
    assert fit.report(head, xv[yv == 1], yv[yv == 1]) is None   # one class: nothing to report


def test_the_tuberculosis_line_shows_only_where_it_holds_on_another_hospital():
    """Fitted without each TB hospital, that hospital must keep ROC AUC >= 0.85 and
    specificity >= 0.70 for the line to show; otherwise the reason gives the numbers."""
    from pneumonia.serve.subtypes import describe, withheld_reason
    good = {"fitted without A, scored on all of A": {"roc_auc": 0.91, "specificity": 0.75}}
    assert withheld_reason(good) is None
    bad = {**good, "fitted without B, scored on all of B": {"roc_auc": 0.68, "specificity": 0.29}}
    reason = withheld_reason(bad)
    assert reason.startswith("not shown") and "on B ROC AUC 0.680 and specificity 0.290" in reason and " A," not in reason
    assert "not measurable on C" in withheld_reason({"fitted without C, scored on all of C": None})
    # a TB-only hospital (TBX11K) left out is judged by TB called TB and the other sources' normals (rules.TB_RULE)
    tb_only = {"fitted without T, scored on all of T": {"roc_auc": None, "sensitivity": 0.80,
                                                         "other_normals_specificity": 0.96}}
    assert withheld_reason({**good, **tb_only}) is None
    tb_only["fitted without T, scored on all of T"]["sensitivity"] = 0.60
    assert "TB on T called TB 0.600" in withheld_reason(tb_only)
    assert "never measured" in withheld_reason({})
    s = Subtypes(None, LinearHead(np.ones(2), 0.0, 1.0, 0.5), {"tuberculosis": "measured on b"},
                 {"tuberculosis": reason})
    out = describe(s, np.zeros((1, 2)), {"decision": "NORMAL", "looks_adult": True})["tuberculosis"]
    assert out["probability"] is None and out["reason"] == reason
    child = describe(s, np.zeros((1, 2)), {"decision": "NORMAL", "looks_adult": False})["tuberculosis"]
    assert "adults" in child["reason"]
    # a line fitted on the adult reader's features reads those, and nothing where the reader did not run
    s.withheld, s.tuberculosis_reads = {}, "reader"
    adult = {"decision": "NORMAL", "looks_adult": True}
    assert describe(s, np.zeros((1, 2)), adult)["tuberculosis"]["reason"].startswith("offered where the adult reader")
    given = describe(s, np.zeros((1, 2)), adult, np.full((1, 2), 3.0))["tuberculosis"]
    assert given["decision"] == "signs" and given["probability"] > 0.99
