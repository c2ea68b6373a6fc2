"""Score many chest X-rays with the served model, from the command line.

    python -m pneumonia.batch SRC --out DIR [--overlays] [--model FOLDER_OR_REPO]

SRC: a folder (searched recursively: JPEG, PNG, TIFF, WebP, BMP, DICOM), a
.zip, or a CSV with a `file` column (relative paths are read next to it).
Writes DIR/answers.csv (a row per file: the decision, P(PNEUMONIA), the
threshold, which head answered, the refusal's reason, the lines under the
answer) and DIR/answers.jsonl (each file's whole `details`, as the API gives
it); --overlays also writes each Grad-CAM overlay to DIR/overlays/. A second
run over the same DIR answers only what the first did not; Ctrl-C stops after
the file being written, leaving both files whole. The model is the app's: the
Hub's published one, or the committed `model/` when the Hub can't be reached
(--model names another folder or repo). --ray [ADDRESS] maps the batches over
a Ray cluster's workers instead (ADDRESS, or "local" for this machine's CPUs;
`pip install -r requirements-ray.txt`), writing the same files.
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
import sys
import time

from pneumonia.batch.answers import Answers
from pneumonia.batch.inputs import ArchiveError, items
from pneumonia.batch.scoring import score


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m pneumonia.batch", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="SRC", help="a folder, a .zip or a CSV with a 'file' column")
    p.add_argument("--out", required=True, metavar="DIR", help="where answers.csv and answers.jsonl go")
    p.add_argument("--overlays", action="store_true", help="also write each Grad-CAM overlay (DIR/overlays/)")
    p.add_argument("--model", default=None, help="a model folder or Hub repo id (default: the app's)")
    p.add_argument("--batch-size", type=int, default=16, help="X-rays per network call (default %(default)s)")
    p.add_argument("--labels", metavar="CSV", help="your labels (file, label, any group columns): also write "
                   "DIR/report.html and report.json, how the model does on your data (needs requirements-train)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="score on a Ray cluster (its address, e.g. ray://head:10001; alone: Ray on this machine)")
    p.add_argument("--workers", type=int, default=None,
                   help="with --ray: how many workers hold the model (default: one per CPU of the cluster)")
    args = p.parse_args(argv)
    try:
        todo_all = items(args.source)
    except ArchiveError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.WARNING)
    from pneumonia.serve import loader   # after the arguments: a bad one is told at once
    model = loader.load(args.model)
    answers = Answers(args.out)
    todo = [it for it in todo_all if it.name not in answers.done]
    print(f"{len(todo_all)} X-rays in {args.source}; {len(todo_all) - len(todo)} answered before, {len(todo)} to go; "
          f"model: {model.origin}, classifier at {(model.predictor.runtime or {}).get('precision', '?')}",
          file=sys.stderr)
    t0 = time.perf_counter()
    overlays = Path(args.out) / "overlays" if args.overlays else None
    try:
        if args.ray:
            from pneumonia.batch.on_ray import score_on_ray
            # This machine's workers load the folder the driver loaded; a cluster's, what --model names.
            where = args.model or (model.folder.resolve().as_posix() if args.ray == "local" else None)
            counts = score_on_ray(todo, where, answers, args.ray, args.workers,
                                  args.batch_size, overlays, len(todo_all), not args.quiet)
        else:
            counts = score(todo, model.predictor, answers, args.batch_size, overlays, len(todo_all), not args.quiet)
    finally:
        answers.close()
    seconds = time.perf_counter() - t0
    done = counts["answered"] + counts["refused"]
    print(f"{done} X-rays in {seconds:.1f} s ({done / max(seconds, 1e-9):.1f}/s): {counts['answered']} answered, "
          f"{counts['refused']} refused" + ("; stopped by Ctrl-C, run again to go on" if counts["stopped"] else "")
          + f". {Path(args.out) / 'answers.csv'}", file=sys.stderr)
    if args.labels and not counts["stopped"]:
        from pneumonia.report.archive import LabelsError, write_report   # matplotlib, scikit-learn: not the Space's
        try:
            print(f"report: {write_report(args.out, args.labels)}", file=sys.stderr)
        except (LabelsError, FileNotFoundError) as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    return 130 if counts["stopped"] else 0


if __name__ == "__main__":
    sys.exit(main())
