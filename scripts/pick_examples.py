"""Choose the page's example X-rays by a written rule, and caption them with the truth.

    python scripts/pick_examples.py --data path/to/chest_xray [--model model]

The rule: for each kind of child (NORMAL, bacterial pneumonia, viral
pneumonia), the first two patients by file name in the dataset's test split
(the part only reported on), one X-ray each (that patient's first by file
name); the two NIH adults stay the first NIH X-ray of each label in the report
part of the project's NIH split (examples/ATTRIBUTION.md); with --hospitals,
the first adult with tuberculosis by file name in the report part of the
Shenzhen/Montgomery split (pneumonia.train.adults). Each caption says
the truth; where the served model answers otherwise, the caption says so too,
and the example stays. Writes the children's files and examples/captions.json.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pneumonia.serve.loader import load_folder  # noqa: E402
from pneumonia.train.data import patient_id  # noqa: E402

EXAMPLES = ROOT / "examples"
KINDS = {"NORMAL": ("NORMAL", "", "Child, NORMAL"),
         "PNEUMONIA-bacterial": ("PNEUMONIA", "_bacteria_", "Child, bacterial pneumonia"),
         "PNEUMONIA-viral": ("PNEUMONIA", "_virus_", "Child, viral pneumonia")}
ADULTS = {"ADULT-NIH-no-finding": ("NORMAL", "Adult, no finding"), "ADULT-NIH-pneumonia": ("PNEUMONIA", "Adult, pneumonia"),
          "ADULT-TB": ("TB", "Adult, tuberculosis")}
PER_KIND = 2
CAPTIONS_FILE = "captions.json"


def first_patients(folder: Path, marker: str, n: int) -> list[Path]:
    """The first file of each of the first `n` patients, by file name."""
    chosen, seen = [], set()
    for f in sorted(p for p in folder.iterdir() if marker in p.name):
        if patient_id(f.name) not in seen:
            seen.add(patient_id(f.name))
            chosen.append(f)
        if len(chosen) == n:
            break
    return chosen


def caption(truth_text: str, truth: str, answer: dict | None) -> str:
    if answer is None or not answer.get("decision"):
        return f"{truth_text} (not answered)"
    if truth == "TB":   # neither class: what counts is the tuberculosis line
        tb = (answer.get("tuberculosis") or {}).get("decision")
        return truth_text if tb in (None, "signs") else f"{truth_text}; the model sees no signs"
    if answer["decision"] == "UNCERTAIN":
        return f"{truth_text}; the model can't tell"
    if answer["decision"] != truth:
        return f"{truth_text}; the model says {answer['decision']}"
    kind = (answer.get("pneumonia_type") or {}).get("decision")   # for a child's pneumonia: which kind
    if kind and kind not in truth_text:
        return f"{truth_text}; it looks {kind} to the model"
    return truth_text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="chest_xray folder (its test split)")
    p.add_argument("--model", default=str(ROOT / "model"), help="the served model folder (for the captions)")
    p.add_argument("--hospitals", help="lung_masks folder: add its first tuberculosis adult of the report part")
    args = p.parse_args(argv)
    predictor = load_folder(args.model, args.model, "examples").predictor
    for old in EXAMPLES.glob("*.jp*g"):
        old.unlink()
    table = {}
    for prefix, (truth, marker, text) in KINDS.items():
        for f in first_patients(Path(args.data) / "test" / truth, marker, PER_KIND):
            dest = EXAMPLES / f"{prefix}_{f.name}"
            shutil.copyfile(f, dest)
            table[dest.name] = (truth, text)
    if args.hospitals:
        from pneumonia.train.adults import TB, load_hospitals
        h = load_hospitals(args.hospitals)
        report = [i for i in h.part("report") if h.labels[i] == TB and h.adult[i]]
        first = min(report, key=lambda i: h.files[i])
        for old in EXAMPLES.glob("ADULT-TB_*.png"):
            old.unlink()
        shutil.copyfile(Path(args.hospitals) / "images" / h.files[first],
                        EXAMPLES / f"ADULT-TB_{h.files[first]}")
    for f in sorted(EXAMPLES.glob("ADULT-*.png")):
        truth, text = ADULTS[f.name.split("_")[0]]
        table[f.name] = (truth, text)
    captions = {}
    for name, (truth, text) in table.items():
        answer = predictor.analyze(EXAMPLES / name)
        captions[name] = {"truth": truth, "model_says": answer.get("decision"), "caption": caption(text, truth, answer)}
        print(f"{name}: {captions[name]['caption']}")
    (EXAMPLES / CAPTIONS_FILE).write_text(json.dumps(captions, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
