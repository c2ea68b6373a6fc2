"""Load test: N concurrent gradio_client clients against the app on 127.0.0.1.

    python bench/load.py [--clients 8] [--requests 500] [--seconds 300]

Bounded in requests and time. Prints requests/s, p50/p95/p99 latency, errors,
and the server's resident memory after warm-up and after the run.
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--requests", type=int, default=500)
    p.add_argument("--seconds", type=float, default=300)
    p.add_argument("--model", default=str(ROOT / "model"))
    args = p.parse_args()
    from gradio_client import Client, handle_file

    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "PNEUMONIA_MODEL": args.model}
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
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
        lock = threading.Lock()
        deadline = time.time() + args.seconds
        counter = iter(range(args.requests))

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

        start = time.perf_counter()
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - start
        rss_after = rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    done = len(latencies)
    lat = np.asarray(latencies) if latencies else np.asarray([np.nan])
    print(f"\n{args.clients} concurrent clients, {done + len(errors)} requests in {wall:.1f} s "
          f"on {os.cpu_count()} CPU cores\n")
    print("| requests/s | p50 | p95 | p99 | errors | RSS after warm-up | RSS after run | growth |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {done / wall:.2f} | {np.percentile(lat, 50):.0f} ms | {np.percentile(lat, 95):.0f} ms "
          f"| {np.percentile(lat, 99):.0f} ms | {len(errors)} | {rss_warm:.0f} MB | {rss_after:.0f} MB "
          f"| {rss_after - rss_warm:+.0f} MB |")
    for e in sorted(set(errors))[:5]:
        print("error:", e)


if __name__ == "__main__":
    main()
