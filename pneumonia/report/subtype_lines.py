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
        lines += [f"- **Tuberculosis signs** (adults; Shenzhen and Montgomery, TB against normal, fit part "
                  f"{tb['fit']}, validation part {tb['validation']}; C {tb['C']}, threshold P(TB) >= "
                  f"{tb['threshold']:.3f}, the highest keeping validation sensitivity >= 0.90). Report part, "
                  f"{r['n']} adults ({r['positives']} TB): ROC AUC {_ci(r, 'roc_auc')}, sensitivity "
                  f"{_ci(r, 'sensitivity')}, specificity {_ci(r, 'specificity')}."]
        for h, hr in tb.get("per_hospital", {}).items():
            if hr:
                lines.append(f"  - {h} report part ({hr['n']}, {hr['positives']} TB): ROC AUC {hr['roc_auc']:.3f}, "
                             f"sensitivity {hr['sensitivity']:.3f}, specificity {hr['specificity']:.3f}.")
        for name, cr in tb.get("cross_hospital", {}).items():
            if cr:
                lines.append(f"  - Across hospitals, {name} ({cr['n']}): ROC AUC {_ci(cr, 'roc_auc')}, "
                             f"sensitivity {cr['sensitivity']:.3f}, specificity {cr['specificity']:.3f}.")
    else:
        lines.append(f"- Tuberculosis signs: {tb.get('skipped', 'not fitted')}.")
    lines += ["- COVID-19 is not offered: no public set reachable here has COVID-19 and non-COVID X-rays from the "
              "same hospitals, and models trained on such mixtures learn the hospital, not the disease "
              "(DeGrave et al. 2021, Nature Machine Intelligence).", ""]
    return lines
