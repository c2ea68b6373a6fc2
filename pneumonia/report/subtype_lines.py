"""The card's section on the heads under the answer (bacterial or viral,
tuberculosis signs), from the numbers `pneumonia.train.subtypes` recorded."""
from __future__ import annotations


def _ci(r: dict, key: str) -> str:
    lo, hi = r[f"{key}_ci95"]
    return f"{r[key]:.3f} [{lo:.3f}, {hi:.3f}]"


def subtype_lines(config: dict) -> list[str]:
    sub = config.get("subtypes")
    if not sub:
        return []
    lines = ["## Which pneumonia, and tuberculosis signs", "",
             "Two logistic heads on the same pooled features (a dot product each at serving), shown under the "
             f"main answer only where they apply. Rule: {sub['rule']}", ""]
    b = sub.get("bacterial", {})
    if b.get("test"):
        t = b["test"]
        lines += [f"- **Bacterial vs viral** (children answered PNEUMONIA; fitted on {b['fit']} training-part "
                  f"children with pneumonia, chosen on {b['validation']} validation ones and "
                  f"{b['validation_stressed']} stressed copies; C {b['C']}, temperature {b['temperature']:.3f}, "
                  f"threshold P(bacterial) >= {b['threshold']:.3f}). Test split, {t['n']} children with "
                  f"pneumonia ({t['positives']} bacterial): ROC AUC {_ci(t, 'roc_auc')}, accuracy "
                  f"{_ci(t, 'accuracy')}, balanced accuracy {t['balanced_accuracy']:.3f}, sensitivity "
                  f"(bacterial) {_ci(t, 'sensitivity')}, specificity {_ci(t, 'specificity')}, ECE {t['ece_15']:.3f}. "
                  "Kermany et al. 2018 reported ROC AUC 0.940 on the same test split, chosen on it."]
    else:
        lines.append(f"- Bacterial vs viral: {b.get('skipped', 'not fitted')}.")
    tb = sub.get("tuberculosis") or {}
    if tb.get("report"):
        r = tb["report"]
        where = ("the adult reader's features; TB of Shenzhen, Montgomery and TBX11K against normals of five "
                 "sources" if tb.get("features") else "Shenzhen and Montgomery, TB against normal")
        lines += [f"- **Tuberculosis signs** (adults; {where}, fit parts {tb['fit']}, validation parts "
                  f"{tb['validation']}; C {tb['C']}, threshold P(TB) >= {tb['threshold']:.3f}, the highest keeping "
                  f"validation sensitivity >= 0.90). Report parts of Shenzhen and Montgomery, {r['n']} adults "
                  f"({r['positives']} TB): ROC AUC {_ci(r, 'roc_auc')}, sensitivity {_ci(r, 'sensitivity')}, "
                  f"specificity {_ci(r, 'specificity')}."]
        for h, hr in (tb.get("per_hospital") or tb.get("per_source") or {}).items():
            if hr and hr.get("roc_auc") is not None:
                lines.append(f"  - {h} report part ({hr['n']}, {hr['positives']} TB): ROC AUC {hr['roc_auc']:.3f}, "
                             f"sensitivity {hr['sensitivity']:.3f}, specificity {hr['specificity']:.3f}.")
            elif hr:
                said = (f"TB called TB {hr['sensitivity']:.3f}" if "sensitivity" in hr
                        else f"normals called normal {hr['specificity']:.3f}")
                lines.append(f"  - {h} report part ({hr['n']}, one class): {said}.")
        for name, cr in tb.get("cross_hospital", {}).items():
            if cr and cr.get("roc_auc") is not None:
                lines.append(f"  - Across hospitals, {name} ({cr['n']}): ROC AUC {_ci(cr, 'roc_auc')}, "
                             f"sensitivity {cr['sensitivity']:.3f}, specificity {cr['specificity']:.3f}.")
            elif cr:
                lines.append(f"  - Across hospitals, {name} ({cr['n']}, TB only): TB called TB "
                             f"{cr['sensitivity']:.3f}; the other sources' normals called normal "
                             f"{cr['other_normals_specificity']:.3f}.")
        from pneumonia.serve.subtypes import withheld_reason
        why = withheld_reason(tb.get("cross_hospital"))
        lines.append(f"  - On the page: {'shown' if why is None else why}.")
        point = tb.get("pointing_tbx11k")
        if point and point.get("n"):
            lines.append(f"  - Where its map points, TBX11K report part ({point['n']} films with lesion boxes): the "
                         f"peak inside a box {point['peak_in_box']:.0%} of the time; the boxes cover "
                         f"{point['chance']:.0%} of the region read (a random point's chance).")
    else:
        lines.append(f"- Tuberculosis signs: {tb.get('skipped', 'not fitted')}.")
    lines += ["- COVID-19 is not offered: no public set reachable here has COVID-19 and non-COVID X-rays from the "
              "same hospitals, and models trained on such mixtures learn the hospital, not the disease "
              "(DeGrave et al. 2021, Nature Machine Intelligence).", ""]
    return lines
