"""Apply the selection rule's second step and record it in the new folder's config.

    python -m pneumonia.selection --model runs/model_lungs --previous model --probe runs/probe.json

Both folders must have been evaluated (`pneumonia.evaluate`, with --segmenter
for a whole-image model) so that their metrics.json hold the validity tests
on validation. The new model replaces the previous one if its validation
composites meet the goals or fall short of them by less (SELECTION_RULE).
Only the validation numbers are compared; test numbers are not read.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from . import card, cli, validity
from .config import CONFIG_FILE, METRICS_FILE, SELECTION_RULE
from .model import ModelFolderError

KEYS = ("auc", "swap_lungs_auc", "swap_surroundings_auc", "hidden_auc")


def _validation(folder: Path) -> dict:
    path = folder / METRICS_FILE
    if not path.is_file():
        raise ModelFolderError(f"{folder} has no {METRICS_FILE}: run python -m pneumonia.evaluate on it first")
    v = json.loads(path.read_text()).get("validity", {}).get("validation")
    if not v:
        raise ModelFolderError(f"{path} has no validity tests on validation (evaluate with --segmenter)")
    return {**{k: v[k] for k in KEYS}, "shortfall": validity.shortfall(v)}


def decide(new: dict, previous: dict) -> bool:
    """Step 2 of the rule: goals met on validation, or a smaller shortfall than the previous model's."""
    return new["shortfall"] == 0 or new["shortfall"] < previous["shortfall"]


def record(model_dir: str | Path, previous_dir: str | Path, probe_file: str | Path | None = None) -> dict:
    folder, previous = Path(model_dir), Path(previous_dir)
    new, old = _validation(folder), _validation(previous)
    config = json.loads((folder / CONFIG_FILE).read_text())
    config["selection"] = {
        "rule": SELECTION_RULE,
        "probe": json.loads(Path(probe_file).read_text())["variants"] if probe_file else None,
        "this_model": new, "previous_model": {**old, "folder": previous.name},
        "replaces_previous": decide(new, old),
        "measured_with": "python -m pneumonia.evaluate (validity on validation), python -m pneumonia.selection",
    }
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")
    metrics_path = folder / METRICS_FILE
    card.write_card(folder, config, json.loads(metrics_path.read_text()))
    print(json.dumps(config["selection"], indent=2))
    return config["selection"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="the new model folder (evaluated)")
    p.add_argument("--previous", required=True, help="the model folder it would replace (evaluated)")
    p.add_argument("--probe", help="runs/probe.json from python -m pneumonia.probe, recorded with the choice")
    args = p.parse_args(argv)
    return cli.run(lambda: record(args.model, args.previous, args.probe))


if __name__ == "__main__":
    sys.exit(main())
