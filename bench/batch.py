"""Scoring an archive: the batch CLI's speed against the bare networks and against
one-at-a-time `/predict`, side by side in one run, and its memory over a long run.

    python bench/batch.py [--data chest_xray] [--files 400] [--long 5000] [--batch-size 16]

1. The bare compiled networks, segmenter then classifier, over the archive's
   X-rays already decoded and made canonical, in batches (the floor: what no
   scorer of these networks can beat at this precision and batch).
2. `pneumonia.batch.scoring.score` over the same files: reading, decoding,
   lungs, classifier, Grad-CAM, overlay, the answer files; its images/s and
   the ratio to (1) (goal >= 0.8).
3. The app's `/predict` through `gradio_client`, one X-ray after another.
4. One X-ray at a time, one client: in process (`Predictor.analyze`) against
   `POST /v1/analyze` on the app's server, p50 (goal <= 2x).
5. `python -m pneumonia.batch` over `--long` files (copies): its resident
   memory after the first 200 and at the end (goal: grows < 50 MB).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from apps import rss_mb  # noqa: E402


def archive(data: str | None, n: int, folder: Path) -> list[Path]:
    """n X-rays: the test split's (if given) or the bundled examples', copied as needed."""
    if data:
        from pneumonia.train.data import list_split
        sources = list_split(data, "test")[0]
    else:
        sources = sorted((ROOT / "examples").glob("*.jp*g")) + sorted((ROOT / "examples").glob("ADULT*.png"))
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        src = Path(sources[i % len(sources)])
        out.append(folder / f"{i:05d}{src.suffix}")
        shutil.copy(src, out[-1])
    return out


def bare(predictor, files: list[Path], batch: int) -> float:
    """Images/s of the segmenter and the classifier alone, on decoded canonical X-rays."""
    from pneumonia.serve.imaging import canonical, grey_to_rgb, load_image
    canons = np.stack([canonical(load_image(f)) for f in files])
    t0 = time.perf_counter()
    for i in range(0, len(canons), batch):
        views, _, _, found = predictor.reader.read(canons[i:i + batch])
        predictor.forward(grey_to_rgb(views[found]))
    return len(canons) / (time.perf_counter() - t0)


def scored(predictor, files: list[Path], batch: int, out: Path) -> float:
    from pneumonia.batch.answers import Answers
    from pneumonia.batch.inputs import items
    from pneumonia.batch.scoring import score
    todo = items(files[0].parent)
    answers = Answers(out)
    t0 = time.perf_counter()
    score(todo, predictor, answers, batch, progress=False)
    answers.close()
    return len(todo) / (time.perf_counter() - t0)


def one_at_a_time(files: list[Path]) -> float:
    from conftest import start_app
    from gradio_client import Client, handle_file
    proc, url = start_app()
    try:
        client = Client(url, verbose=False)
        client.predict(handle_file(str(files[0])), api_name="/predict")
        t0 = time.perf_counter()
        for f in files:
            client.predict(handle_file(str(f)), api_name="/predict")
        return len(files) / (time.perf_counter() - t0)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def http_against_in_process(predictor, files: list[Path]) -> tuple[float, float]:
    """p50 ms of one X-ray analysed in process and of one POST /v1/analyze (one client), same files."""
    import httpx
    from conftest import start_app
    inside = []
    for f in files:
        t0 = time.perf_counter()
        predictor.analyze(f.read_bytes())
        inside.append(time.perf_counter() - t0)
    proc, url = start_app()
    try:
        over = []
        with httpx.Client(timeout=60) as http:
            for f in [files[0], *files]:
                t0 = time.perf_counter()
                http.post(url + "v1/analyze", files={"file": (f.name, f.read_bytes())}).raise_for_status()
                over.append(time.perf_counter() - t0)
        return 1000 * float(np.median(inside)), 1000 * float(np.median(over[1:]))
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def long_run_memory(folder: Path, out: Path, batch: int) -> tuple[float, float, float]:
    """(RSS MB after the first 200 answers, RSS MB at the end, seconds) of the CLI over `folder`."""
    proc = subprocess.Popen([sys.executable, "-m", "pneumonia.batch", str(folder), "--out", str(out), "--model",
                             str(ROOT / "model"), "--quiet", "--batch-size", str(batch)], cwd=ROOT,
                            stderr=subprocess.DEVNULL)
    t0, early, last = time.perf_counter(), None, 0.0
    jsonl = out / "answers.jsonl"
    while proc.poll() is None:
        time.sleep(0.5)
        try:
            rss = rss_mb(proc.pid)
        except OSError:   # it ended between the poll and the read
            break
        if rss == rss:   # not nan: a process that is ending has no VmRSS any more
            last = rss
        if early is None and jsonl.exists() and sum(1 for _ in open(jsonl)) >= 200:
            early = rss
    return early or float("nan"), last, time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="chest_xray folder (its test split); default: the bundled examples")
    p.add_argument("--files", type=int, default=400)
    p.add_argument("--one-at-a-time", type=int, default=100, help="files sent to /predict")
    p.add_argument("--long", type=int, default=5000, help="files for the memory run (0: skip)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--http", type=int, default=60, help="files for POST /v1/analyze against in process")
    args = p.parse_args()
    from pneumonia.serve.loader import load
    predictor = load(str(ROOT / "model")).predictor
    precision = (predictor.runtime or {}).get("precision")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = archive(args.data, args.files, tmp / "archive")
        bare(predictor, files[:32], args.batch_size)   # warm
        floor = bare(predictor, files, args.batch_size)
        cli = scored(predictor, files, args.batch_size, tmp / "out")
        single = one_at_a_time(files[:args.one_at_a_time])
        print(f"\n{len(files)} X-rays, classifier at {precision}, batches of {args.batch_size}\n")
        print("| path | X-rays/s | against the bare networks |\n|---|---|---|")
        print(f"| bare networks (segmenter + classifier) | {floor:.1f} | 1.00 |")
        print(f"| python -m pneumonia.batch (whole path, answer files) | {cli:.1f} | **{cli / floor:.2f}** (goal >= 0.8) |")
        print(f"| /predict one at a time (gradio_client) | {single:.1f} | {single / floor:.2f} |")
        inside, over = http_against_in_process(predictor, files[:args.http])
        print(f"\nOne X-ray, one client, p50: in process {inside:.0f} ms, POST /v1/analyze {over:.0f} ms: "
              f"**{over / inside:.2f}x** (goal <= 2x)")
        if args.long:
            long_files = archive(args.data, args.long, tmp / "long")
            early, end, seconds = long_run_memory(long_files[0].parent, tmp / "long_out", args.batch_size)
            print(f"\nMemory over {args.long} X-rays ({seconds:.0f} s): RSS {early:.0f} MB after 200, {end:.0f} MB "
                  f"at the end: grew **{end - early:.0f} MB** (goal < 50)")


if __name__ == "__main__":
    main()
