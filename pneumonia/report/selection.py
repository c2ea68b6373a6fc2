"""Apply a selection rule's last step and record it in the new folder's config.

    python -m pneumonia.report.selection --model runs/model16 --previous model --data chest_xray [--probe runs/probe.json]

Both folders must have been evaluated (`pneumonia.report.evaluate`) so that their
metrics.json hold the validity tests on validation. TRAIN_RULE (6), revising
(3): the new model replaces the previous one if its swap-test shortfall on
validation composites (what the model uses: swap lungs and surroundings) is
smaller by more than TOLERANCE, or within TOLERANCE and its stressed
validation ROC AUC (`pneumonia.report.validation`, the same stressed X-rays
for both) is higher. Lungs hidden, the silhouette and (3)'s summed shortfall
are recorded for both and do not choose. Only validation numbers are
compared; test numbers are not read.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
import sys

from pneumonia.config import CONFIG_FILE, METRICS_FILE
from pneumonia.rules import SCREEN_RULE, TRAIN_RULE
from pneumonia.report import card, validity
from pneumonia.train import cli
from pneumonia.train.model import ModelFolderError

KEYS = ("auc", "swap_lungs_auc", "swap_surroundings_auc", "hidden_auc", "silhouette_auc")
TOLERANCE = 0.02


def _validation(folder: Path, silhouette: float | None = None) -> dict:
    """The validity tests on validation, with the silhouette's AUC (from the
    folder's metrics, else `silhouette`: it depends only on the segmenter, the
    margin, the dilation and whether the view shows the outline)."""
    path = folder / METRICS_FILE
    if not path.is_file():
        raise ModelFolderError(f"{folder} has no {METRICS_FILE}: run python -m pneumonia.report.evaluate on it first")
    report = json.loads(path.read_text()).get("validity", {})
    v = report.get("validation")
    if not v:
        raise ModelFolderError(f"{path} has no validity tests on validation (evaluate with --segmenter)")
    sil = report.get("silhouette", {}).get("validation", {}).get("auc", silhouette)
    if sil is None:
        raise ModelFolderError(f"{path} has no silhouette test: evaluate it again")
    v = {**v, "silhouette_auc": sil}
    return {**{k: v[k] for k in KEYS}, "shortfall": validity.shortfall(v),
            "reliance_shortfall": validity.reliance_shortfall(v)}


def decide(new: dict, previous: dict) -> bool:
    """Step 6 of TRAIN_RULE: reliance (the swap test) first, then stressed validation ROC AUC."""
    gain = previous["reliance_shortfall"] - new["reliance_shortfall"]
    return gain > TOLERANCE or (abs(gain) <= TOLERANCE and new["val_auc_stressed"] > previous["val_auc_stressed"])


def _same_silhouette(a: dict, b: dict) -> bool:
    la, lb = a.get("lungs", {}), b.get("lungs", {})
    return (la.get("variant") in validity.OUTLINED) == (lb.get("variant") in validity.OUTLINED) and all(
        la.get(k) == lb.get(k) for k in ("margin", "dilation", "segmenter_input"))


def record(model_dir: str | Path, previous_dir: str | Path, data_dir: str | Path,
           probe_file: str | Path | None = None) -> dict:
    from pneumonia.report.validation import report
    folder, previous = Path(model_dir), Path(previous_dir)
    config = json.loads((folder / CONFIG_FILE).read_text())
    prev_config = json.loads((previous / CONFIG_FILE).read_text())
    new = _validation(folder)
    old = _validation(previous, new["silhouette_auc"] if _same_silhouette(config, prev_config) else None)
    splits: dict = {}
    for r, f in ((new, folder), (old, previous)):
        v = report(f, data_dir, splits)
        r.update(val_auc=v["val_auc"], val_auc_stressed=v["val_auc_stressed"])
    config["selection"] = {
        "rule": TRAIN_RULE, "screen_rule": SCREEN_RULE,
        "probe": json.loads(Path(probe_file).read_text())["variants"] if probe_file else None,
        "this_model": new, "previous_model": {**old, "folder": previous.name},
        "replaces_previous": decide(new, old),
        "measured_with": "python -m pneumonia.report.evaluate (validity on validation), python -m pneumonia.report.selection "
                         "(stressed validation by pneumonia.report.validation)",
    }
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    card.write_card(folder, config, json.loads((folder / METRICS_FILE).read_text()))
    print(json.dumps(config["selection"], indent=2))
    return config["selection"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="the new model folder (evaluated)")
    p.add_argument("--previous", required=True, help="the model folder it would replace (evaluated)")
    p.add_argument("--data", required=True, help="chest_xray folder (its training split's validation part)")
    p.add_argument("--probe", help="runs/probe.json from python -m pneumonia.report.probe, recorded with the choice")
    args = p.parse_args(argv)
    return cli.run(lambda: record(args.model, args.previous, args.data, args.probe))


if __name__ == "__main__":
    sys.exit(main())
