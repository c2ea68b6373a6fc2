"""What the adult reader costs, side by side in one run: two model folders
(this one and today's, e.g. a copy of the committed `model/` before it), the
same code, children's and adults' X-rays interleaved.

    python bench/adult_speed.py --models model,/tmp/model_before [--runs 30]

1. In process (`Predictor.analyze` on the file's bytes), p50 / p95 ms for the
   bundled children and adults; the ratios asked for: a child's answer new /
   old, an adult's answer / a child's (same folder).
2. Each folder's app (`python app.py`, PNEUMONIA_MODEL=folder): ready (process
   start to the first answer), and resident memory after answering the
   children and adults through `gradio_client`.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from apps import first_answer, rss_mb  # noqa: E402

CHILDREN = sorted((ROOT / "examples").glob("*.jpeg"))
ADULTS = sorted((ROOT / "examples").glob("ADULT*.png")) + sorted((ROOT / "tests" / "data" / "adults").glob("*.png"))


def pct(ms: list[float]) -> tuple[float, float]:
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


def in_process(folders: list[str], runs: int) -> dict:
    from pneumonia.serve.loader import load_folder
    from pneumonia.pixels import ImageError
    predictors = {f: load_folder(f, f, f).predictor for f in folders}

    def answered(path: Path) -> bool:   # an X-ray either folder refuses (no lungs found) is left out
        try:
            return all(p.analyze(path.read_bytes()) for p in predictors.values())
        except ImageError:
            return False
    data = {"child": [p.read_bytes() for p in CHILDREN if answered(p)],
            "adult": [p.read_bytes() for p in ADULTS if answered(p)]}
    times = {(f, k): [] for f in folders for k in data}
    for i in range(runs):
        for kind, files in data.items():
            for f, pred in predictors.items():   # interleaved: the machine's drift hits both alike
                t = time.perf_counter()
                pred.analyze(files[i % len(files)])
                times[(f, kind)].append(1000 * (time.perf_counter() - t))
    return {**{key: pct(v) for key, v in times.items()}, "n": {k: len(v) for k, v in data.items()}}


def app(folder: str) -> dict:
    from conftest import free_port
    from gradio_client import handle_file
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "PNEUMONIA_MODEL": folder, "HF_HUB_OFFLINE": "1"}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        client = first_answer(proc, f"http://127.0.0.1:{port}/", ADULTS[0], t0, ssl_verify=False)
        ready = time.perf_counter() - t0
        for path in CHILDREN + ADULTS:
            client.predict(handle_file(str(path)), api_name="/predict")
        return {"ready_s": ready, "rss_mb": rss_mb(proc.pid)}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", default="model")
    p.add_argument("--runs", type=int, default=30)
    args = p.parse_args()
    folders = args.models.split(",")
    apps = {f: app(f) for f in folders}
    local = in_process(folders, args.runs)
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "?")
    print(f"\n{cpu}, {os.cpu_count()} cores; {local['n']['child']} children, {local['n']['adult']} adults (those "
          f"no folder refuses), {args.runs} runs each\n")
    print("| folder | child p50 / p95 ms | adult p50 / p95 ms | adult / child (p50) | ready | server memory |")
    print("|---|---|---|---|---|---|")
    for f in folders:
        c, a = local[(f, "child")], local[(f, "adult")]
        print(f"| {f} | {c[0]:.1f} / {c[1]:.1f} | {a[0]:.1f} / {a[1]:.1f} | **{a[0] / c[0]:.2f}x** (goal <= 2) "
              f"| {apps[f]['ready_s']:.1f} s (goal <= 6) | {apps[f]['rss_mb']:.0f} MB (goal <= 600) |")
    if len(folders) > 1:
        new, old = local[(folders[0], "child")][0], local[(folders[1], "child")][0]
        print(f"\na child's answer, {folders[0]} / {folders[1]} (p50): **{new / old:.2f}x** (goal: no slower)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
