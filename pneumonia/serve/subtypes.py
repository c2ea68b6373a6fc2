"""The answers under the main one, at serving: which pneumonia (bacterial or
viral, for a child answered PNEUMONIA) and tuberculosis signs (for an adult's
film), each a linear head on the same pooled features (fitted by
`pneumonia.train.subtypes`), so they cost a dot product and their Grad-CAM is
exact like the main head's.

COVID-19 is not offered: no public set reachable here has COVID-19 and
non-COVID films from the same hospitals, and models trained on such mixtures
learn the source, not the disease (DeGrave et al. 2021, Nature Machine
Intelligence).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from pneumonia.serve.routing import LinearHead

SUBTYPES_FILE = "subtypes.npz"
NO_COVID = ("COVID-19 is not offered: no public set reachable here has COVID-19 and non-COVID X-rays from the "
            "same hospitals, and models trained on such mixtures learn the hospital, not the disease "
            "(DeGrave et al. 2021).")


# A tuberculosis line is shown only if it holds on a hospital it was not fitted on
# (issue "Adults read by a model that has seen adults"): fitted without each TB
# hospital in turn, that hospital's ROC AUC and its normals' specificity at the threshold.
TB_SHOWN_IF = {"roc_auc": 0.85, "specificity": 0.70}


def withheld_reason(cross_hospital: dict | None) -> str | None:
    """Why the tuberculosis line is not shown (None: it is), from the folder's cross-hospital numbers."""
    if not cross_hospital:
        return "not shown: it was never measured on a hospital it was not fitted on"
    misses = []
    for name, r in cross_hospital.items():
        held = name.split(",")[0].replace("fitted without ", "")
        auc, spec = (r or {}).get("roc_auc"), (r or {}).get("specificity")
        sens, others = (r or {}).get("sensitivity"), (r or {}).get("other_normals_specificity")
        if auc is None and sens is not None and others is not None:   # TB only there (rules.TB_RULE)
            if not (sens >= TB_SHOWN_IF["specificity"] and others >= TB_SHOWN_IF["specificity"]):
                misses.append(f"fitted without {held}, TB on {held} called TB {sens:.3f}, other normals' "
                              f"specificity {others:.3f}")
        elif auc is None or spec is None:   # a part with one class only: nothing measured there
            misses.append(f"fitted without {held}, not measurable on {held}")
        elif not (auc >= TB_SHOWN_IF["roc_auc"] and spec >= TB_SHOWN_IF["specificity"]):
            misses.append(f"fitted without {held}, on {held} ROC AUC {auc:.3f} and specificity {spec:.3f}")
    if not misses:
        return None
    return (f"not shown: it does not hold on a hospital it was not fitted on ({'; '.join(misses)}; a line is "
            f"shown only above ROC AUC {TB_SHOWN_IF['roc_auc']:.2f} and specificity {TB_SHOWN_IF['specificity']:.2f})")


@dataclass
class Subtypes:
    bacterial: LinearHead | None     # P(bacterial | a child's pneumonia)
    tuberculosis: LinearHead | None  # P(tuberculosis signs | an adult's film)
    measured: dict                   # the one-line "measured on ..." caveat of each head
    withheld: dict | None = None     # head -> why it is not shown (a line that does not hold elsewhere)
    # Which features the TB line reads: the classifier's, or the adult reader's (pneumonia.train.tb_line).
    tuberculosis_reads: str = "classifier"

    def save(self, path: str | Path) -> None:
        arrays = {f"{name}_{k}": v for name in ("bacterial", "tuberculosis") if getattr(self, name) is not None
                  for k, v in asdict(getattr(self, name)).items()}
        np.savez(path, **arrays, **{f"measured_{k}": np.array(v) for k, v in self.measured.items()},
                 tuberculosis_reads=np.array(self.tuberculosis_reads))

    @classmethod
    def load(cls, path: str | Path) -> "Subtypes":
        with np.load(path) as f:
            def head(name):
                if f"{name}_w" not in f:
                    return None
                return LinearHead(f[f"{name}_w"].astype(np.float64), float(f[f"{name}_b"]),
                                  float(f[f"{name}_temperature"]), float(f[f"{name}_threshold"]))
            measured = {k[len("measured_"):]: str(f[k]) for k in f.files if k.startswith("measured_")}
            reads = str(f["tuberculosis_reads"]) if "tuberculosis_reads" in f.files else "classifier"
            return cls(head("bacterial"), head("tuberculosis"), measured, tuberculosis_reads=reads)


def _not_given(reason: str) -> dict:
    return {"probability": None, "threshold": None, "decision": None, "head": None, "reason": reason,
            "measured": None}


def _given(head: LinearHead, pooled: np.ndarray, yes: str, no: str, name: str, measured: str) -> dict:
    p = float(head.probability(pooled)[0])
    return {"probability": p, "threshold": head.threshold, "decision": yes if p >= head.threshold else no,
            "head": name, "reason": None, "measured": measured}


def opacity_decided(answer: dict) -> bool:
    """PNEUMONIA because the lung-density rule found an opaque lung, the networks alone below the threshold."""
    o = answer.get("opacity") or {}
    return bool(o.get("opaque")) and o["model_probability"] < answer["threshold"]


def describe(subtypes: "Subtypes | None", pooled: np.ndarray | None, answer: dict,
             reader_pooled: np.ndarray | None = None) -> dict:
    """`pneumonia_type` and `tuberculosis` for one answer (a Predictor result):
    a probability where the head applies, else no number and the reason.
    `reader_pooled`: the adult reader's features, where it read the X-ray."""
    if pooled is None or answer.get("decision") is None:
        why = "the image was refused"
        return {"pneumonia_type": _not_given(why), "tuberculosis": _not_given(why)}
    adult = bool(answer.get("looks_adult"))
    out = {}
    if subtypes is None or subtypes.bacterial is None:
        out["pneumonia_type"] = _not_given("this model folder has no bacterial/viral head")
    elif adult:
        out["pneumonia_type"] = _not_given("offered for children only (it learnt from children's X-rays)")
    elif answer["decision"] != "PNEUMONIA":
        out["pneumonia_type"] = _not_given("offered only when the answer is PNEUMONIA")
    elif opacity_decided(answer):
        out["pneumonia_type"] = _not_given("the answer is the lung-density rule's, not the network's reading")
    else:
        out["pneumonia_type"] = _given(subtypes.bacterial, pooled, "bacterial", "viral", "bacterial/viral head",
                                       subtypes.measured.get("bacterial", ""))
    if subtypes is None or subtypes.tuberculosis is None:
        out["tuberculosis"] = _not_given("this model folder has no tuberculosis head")
    elif not adult:
        out["tuberculosis"] = _not_given("offered for adults' X-rays only (it learnt from adults)")
    elif (subtypes.withheld or {}).get("tuberculosis"):
        out["tuberculosis"] = _not_given(subtypes.withheld["tuberculosis"])
    elif subtypes.tuberculosis_reads == "reader" and reader_pooled is None:
        out["tuberculosis"] = _not_given("offered where the adult reader reads the X-ray")
    else:
        tb_pooled = reader_pooled if subtypes.tuberculosis_reads == "reader" else pooled
        out["tuberculosis"] = _given(subtypes.tuberculosis, tb_pooled, "signs", "no signs", "tuberculosis head",
                                     subtypes.measured.get("tuberculosis", ""))
    return out
