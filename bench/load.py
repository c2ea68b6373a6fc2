"""Load test: N concurrent gradio_client clients against the app on 127.0.0.1,
for the served runtime (OpenVINO, batched) and the same model through
TensorFlow, one after the other in one run.

    python bench/load.py [--clients 8] [--requests 500] [--seconds 300]

Bounded in requests and time. Prints requests/s, p50/p95/p99 latency, errors,
and the server's resident memory after warm-up, its peak during the run
(sampled every 0.5 s) and after the run. The clients run in this process, on
the same 2 cores as the server.
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
from latency import rss_mb  # noqa: E402


def run_load(model: str, runtime: str, clients: int, requests: int, seconds: float) -> dict:
    from gradio_client import Client, handle_file

    port = free_port()
    runtime, _, precision = runtime.partition(":")
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "PNEUMONIA_MODEL": model, "PNEUMONIA_RUNTIME": runtime, "PNEUMONIA_PRECISION": precision}
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    images = sorted(str(p) for p in (ROOT / "examples").glob("*.jpeg"))
    try:
        wait_for_http(url, proc)
        warm = Client(url, verbose=False, ssl_verify=False)  # local http: skip TLS set-up per request
        for img in images * 3:  # warm-up: every example, several times
            warm.predict(handle_file(img), api_name="/predict")
        rss_warm = rss_mb(proc.pid)
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
                    client.predict(handle_file(images[i % len(images)]), api_name="/predict")
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
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    lat = np.asarray(latencies) if latencies else np.asarray([np.nan])
    return {"done": len(latencies), "errors": errors, "wall": wall, "rps": len(latencies) / wall,
            "p50": np.percentile(lat, 50), "p95": np.percentile(lat, 95), "p99": np.percentile(lat, 99),
            "rss_warm": rss_warm, "rss_peak": max(peak), "rss_after": rss_after, "marks": marks}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--requests", type=int, default=500)
    p.add_argument("--seconds", type=float, default=300)
    p.add_argument("--model", default=str(ROOT / "model"))
    p.add_argument("--runtimes", default="openvino,keras",
                   help="comma-separated; openvino:bf16 serves at PNEUMONIA_PRECISION=bf16")
    args = p.parse_args()
    results = {r: run_load(args.model, r, args.clients, args.requests, args.seconds)
               for r in args.runtimes.split(",")}
    print(f"\n{args.clients} concurrent clients, up to {args.requests} requests each run, "
          f"on {os.cpu_count()} CPU cores\n")
    print("| runtime | requests | requests/s | p50 | p95 | p99 | errors | RSS after warm-up | peak during run "
          "| after run |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['done'] + len(r['errors'])} | {r['rps']:.1f} | {r['p50']:.0f} ms | {r['p95']:.0f} ms "
              f"| {r['p99']:.0f} ms | {len(r['errors'])} | {r['rss_warm']:.0f} MB | {r['rss_peak']:.0f} MB "
              f"| {r['rss_after']:.0f} MB |")
        for e in sorted(set(r["errors"]))[:5]:
            print("error:", e)
        print(f"{name}: resident memory by requests answered: " +
              ", ".join(f"{k}: {v:.0f} MB" for k, v in sorted(r["marks"].items())))
    print("Targets (OpenVINO): >= 25 requests/s, p95 <= 500 ms, 0 errors, resident memory <= 500 MB and flat.")


if __name__ == "__main__":
    main()
