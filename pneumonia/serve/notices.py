"""What the app says above an answer for an X-ray that looks like an adult's:
what was measured, where, and nothing more (short: it sits above the answer)."""
from __future__ import annotations


def reader_notice(metrics: dict | None) -> str:
    """The notice for a folder with an adult reader, from its served numbers
    (`bench/adult_served.py --record`) and its held-out sources."""
    r = (metrics or {}).get("adult_reader", {})
    text = ("This X-ray looks like an adult's, so a second network reads it: a ResNet50 trained on adult X-rays "
            "of seven public collections (USA, Spain, Japan, China)")
    served = r.get("served", {}).get("sources", {})
    normal = [v["normals_called_normal"] for v in served.values() if "normals_called_normal" in v]
    opacity = [v["opacity_called_pneumonia"] for v in served.values() if "opacity_called_pneumonia" in v]
    told = [v["answered"] for k, v in served.items() if "normals_called_normal" in v or "opacity_called_pneumonia" in v]
    if normal and opacity:
        text += (f". On their held-out films, among those it answered: normal adults called NORMAL "
                 f"{min(normal):.0%}-{max(normal):.0%} by collection, opacity or pneumonia called PNEUMONIA "
                 f"{min(opacity):.0%}-{max(opacity):.0%}; it answered {min(told):.0%}-{max(told):.0%} of each "
                 "collection's films and said \"can't tell\" on the rest")
    unseen = r.get("held_out", {}).get("bimcv", {}).get("sensitivity")
    if unseen:
        text += (f". Trained again without a Spanish hospital's COVID-19 films, it found {unseen[0]:.0%} of them: "
                 "expect less at a hospital it never saw")
    return text + ". Treat it as a rough guess, not a reading."


def population_notice(config: dict, metrics: dict | None) -> str | None:
    """What the app says above an answer for an X-ray that looks like an
    adult's: what was measured, where, and nothing more (short: it sits above
    the answer)."""
    population = config.get("population")
    if not population:
        return None
    if config.get("adult_reader"):
        return reader_notice(metrics)
    fit = population["adults"].get("fit", {}).get("adult_head_adults")
    others = population["adults"].get("others")
    text = ("The model was trained on children aged 1-5 at one hospital; this answer comes from a last layer "
            "retrained with " + (f"{fit} adult X-rays of three hospitals" if fit and others
                                 else "adult X-rays from one US hospital (NIH)"))
    a = (metrics or {}).get("adult_transfer", {})
    served = a.get("served")
    if served:
        lo, hi = served["ci95_at_threshold"]["roc_auc"]
        text += f". Held out: NIH ROC AUC {served['roc_auc']:.2f} ({lo:.2f}-{hi:.2f}, noisy labels)"
    rows = [(name.split()[0], a.get("hospitals", {}).get(name, {})) for name in ("Shenzhen adults", "Montgomery adults")]
    rows = [(h, r) for h, r in rows if "specificity" in r]
    if rows:
        text += "; normal adults called NORMAL: " + ", ".join(f"{h} {r['specificity']:.0%}" for h, r in rows)
        tb = [f"{r['tb_answered_pneumonia']:.0%}" for _, r in rows if "tb_answered_pneumonia" in r]
        if tb:
            text += f"; TB called PNEUMONIA {' / '.join(tb)}"
    text += (". Adult pneumonia came from NIH only: the answer may partly follow the hospital. " if others
             else ". On adults from other hospitals it has not been measured. ")
    good = served is not None and served["roc_auc"] >= 0.8
    return text + ("Treat it as a rough guess, not a reading." if good else "Treat it as little better than a guess.")


