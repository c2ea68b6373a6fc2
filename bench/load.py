"""Load test: N concurrent gradio_client clients against the app on 127.0.0.1,
each downloading the overlay as gradio_client does by default, for each app
asked for, one after the other in one run.

    python bench/load.py [--clients 8] [--requests 1000] [--modes distinct,identical]
                         [--apps served,HEAD] [--seconds 300] [--model model,runs/other]

Modes: "distinct" sends the 120 test X-rays of tests/data (different images at
any moment), "identical" has every client send the same X-ray at once (the
bundled examples, a class clicking the same thumbnail, a script retrying).
Apps: "served" is this working tree as the app serves it ("served@f32",
"served@int8": that precision forced); "keras" the same through TensorFlow
(PNEUMONIA_RUNTIME=keras); any git revision (e.g. HEAD, or a commit) runs
that revision's app.py from a temporary worktree on the same model folder,
side by side. Bounded in requests and time. Prints requests/s,
p50/p95/p99 latency, errors, the server's CPU time per request, and its
resident memory after warm-up, at its peak (sampled every 0.5 s), after the
run and per 100 requests answered. The clients run in this process, on the
same 2 cores as the server.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from conftest import free_port, wait_for_http  # noqa: E402
sys.path.insert(0, str(ROOT / "bench"))
from apps import app_dir, cleanup, cpu_seconds, rss_mb, thread_cpu, thread_names  # noqa: E402


# Where a request's server CPU goes, by thread (names from py-spy, when installed).
THREAD_GROUPS = {"classifier": "classifier (calling OpenVINO)", "segmenter": "segmenter (calling OpenVINO)",
                 "AnyIO worker thread": "request threads (decode, lungs, guard, overlay, JPEG)",
                 "Thread-1 (run)": "Gradio's event loop (HTTP, queue, JSON, file serving)"}


def run_load(model: str, app: str, mode: str, clients: int, requests: int, seconds: float, keep: list) -> dict:
    from gradio_client import Client, handle_file

    port = free_port()
    cwd, script, extra = app_dir(app, keep)
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "PNEUMONIA_MODEL": model, "HF_HUB_OFFLINE": "1", **extra}
    proc = subprocess.Popen([sys.executable, script], cwd=cwd, env=env, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    images = sorted(str(p) for p in (ROOT / "tests" / "data" / "xray" / "test").glob("*/*.jpeg"))
    if mode == "identical":
        images = [str(ROOT / "examples" / "PNEUMONIA-viral_person10_virus_35.jpeg")]
    try:
        wait_for_http(url, proc)
        warm = Client(url, verbose=False, ssl_verify=False)  # local http: skip TLS set-up per request
        for img in images[:24]:  # warm-up
            warm.predict(handle_file(img), api_name="/predict")
        rss_warm = rss_mb(proc.pid)
        cpu_start, threads_start = cpu_seconds(proc.pid), thread_cpu(proc.pid)
        latencies: list[float] = []
        errors: list[str] = []
        peak = [rss_warm]
        lock = threading.Lock()
        deadline = time.time() + seconds
        counter = iter(range(requests))
        running = threading.Event()
        running.set()

        marks: dict[int, float] = {}  # requests answered so far -> resident memory then

        def sample() -> None:
            while running.is_set():
                peak.append(rss_mb(proc.pid))
                marks.setdefault(len(latencies) // 100 * 100, peak[-1])
                time.sleep(0.5)

        def worker(k: int) -> None:
            client = Client(url, verbose=False, ssl_verify=False)
            while time.time() < deadline:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                t = time.perf_counter()
                try:
                    client.predict(handle_file(images[i % len(images)]), api_name="/predict")  # downloads the overlay
                    with lock:
                        latencies.append(1000 * (time.perf_counter() - t))
                except Exception as e:  # counted and reported, never fatal
                    with lock:
                        errors.append(f"{type(e).__name__}: {e}"[:200])

        threading.Thread(target=sample, daemon=True).start()
        start = time.perf_counter()
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
        running.clear()
        rss_after = rss_mb(proc.pid)
        cpu = cpu_seconds(proc.pid) - cpu_start
        names = thread_names(proc.pid)
        by_thread: dict[str, float] = {}
        for tid, sec in thread_cpu(proc.pid).items():
            name = THREAD_GROUPS.get(names.get(tid), names.get(tid, "native: the runtimes' worker threads"))
            by_thread[name] = by_thread.get(name, 0.0) + sec - threads_start.get(tid, 0.0)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    lat = np.asarray(latencies) if latencies else np.asarray([np.nan])
    return {"done": len(latencies), "errors": errors, "wall": wall, "rps": len(latencies) / wall,
            "p50": np.percentile(lat, 50), "p95": np.percentile(lat, 95), "p99": np.percentile(lat, 99),
            "rss_warm": rss_warm, "rss_peak": max(peak), "rss_after": rss_after, "marks": marks,
            "cpu_ms": 1000 * cpu / max(1, len(latencies) + len(errors)),
            "threads_ms": {k: 1000 * v / max(1, len(latencies) + len(errors)) for k, v in by_thread.items()} if names else {}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=300)
    p.add_argument("--model", default=str(ROOT / "model"), help="model folder(s), comma-separated: side by side")
    p.add_argument("--modes", default="distinct,identical")
    p.add_argument("--apps", default="served", help="comma-separated: served, keras, or git revisions (HEAD, ...)")
    args = p.parse_args()
    keep: list[str] = []
    try:
        models = args.model.split(",")
        results = {(a if len(models) == 1 else f"{a} {Path(f).name}", m):
                   run_load(f, a, m, args.clients, args.requests, args.seconds, keep)
                   for m in args.modes.split(",") for f in models for a in args.apps.split(",")}
    finally:
        cleanup(keep)
    print(f"\n{args.clients} concurrent clients downloading the overlay, up to {args.requests} requests each run, "
          f"on {os.cpu_count()} CPU cores\n")
    print("| app | images | requests | requests/s | p50 | p95 | p99 | errors | server CPU / request "
          "| RSS after warm-up | peak during run | after run |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (app, mode), r in results.items():
        print(f"| {app} | {mode} | {r['done'] + len(r['errors'])} | {r['rps']:.1f} | {r['p50']:.0f} ms "
              f"| {r['p95']:.0f} ms | {r['p99']:.0f} ms | {len(r['errors'])} | {r['cpu_ms']:.0f} ms "
              f"| {r['rss_warm']:.0f} MB | {r['rss_peak']:.0f} MB | {r['rss_after']:.0f} MB |")
    for (app, mode), r in results.items():
        if r["threads_ms"]:
            print(f"{app}, {mode}: server CPU per request by thread: " + ", ".join(
                f"{k} {v:.1f} ms" for k, v in sorted(r["threads_ms"].items(), key=lambda kv: -kv[1]) if v >= 0.05))
        for e in sorted(set(r["errors"]))[:3]:
            print(f"{app}, {mode}: error:", e)
        print(f"{app}, {mode}: resident memory by requests answered: " +
              ", ".join(f"{k}: {v:.0f} MB" for k, v in sorted(r["marks"].items())))
    print("Targets (served): >= 30 requests/s, p95 <= 400 ms, 0 errors in both modes, resident memory flat.")


if __name__ == "__main__":
    main()
