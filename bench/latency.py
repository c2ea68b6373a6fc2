"""Latency, cold start and memory of the app on this machine, side by side:
the served runtime (OpenVINO, forward only) against the same model through
TensorFlow (`PNEUMONIA_RUNTIME=keras`), in one run.

    python bench/latency.py [--model model] [--runs 40]

1. In-process, the whole path (`Predictor.analyze` on the file's bytes:
   decode, lungs, lung view, classifier forward pass, Grad-CAM from it, overlay),
   its two networks timed apart (the segmenter's step vs the classifier's
   call), for each runtime; and the keras.io Grad-CAM recipe run as written
   (eager GradientTape, plus `model.predict` for the probability).
2. The app in a subprocess, for each runtime: cold start (process start to
   first answer), end-to-end latency through `gradio_client`, resident memory.
Prints a table and the ratios.
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
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


# The app as served, and the same app through TensorFlow (the training wing plugs it in).
APPS = {"openvino": "app.py", "keras": "bench/keras_app.py"}


def pct(xs: list[float]) -> tuple[float, float]:
    return float(np.percentile(xs, 50)), float(np.percentile(xs, 95))


def keras_io_recipe(model, img_array, layer="conv5_block3_out"):
    """https://keras.io/examples/vision/grad_cam/ as written (eager)."""
    import keras
    import tensorflow as tf
    preds = model.predict(img_array, verbose=0)
    grad_model = keras.models.Model(model.inputs, [model.get_layer(layer).output, model.output])
    with tf.GradientTape() as tape:
        last_conv_layer_output, preds = grad_model(img_array)
        class_channel = preds[:, 0]
    grads = tape.gradient(class_channel, last_conv_layer_output)
    pooled_grads = tf.reduce_mean(grads, axis=(0, 1, 2))
    heatmap = last_conv_layer_output[0] @ pooled_grads[..., tf.newaxis]
    heatmap = tf.squeeze(heatmap)
    return preds, (tf.maximum(heatmap, 0) / tf.math.reduce_max(heatmap)).numpy()


def in_process(model_dir: str, images: list[Path], runs: int, runtime: str) -> dict:
    from pneumonia.serve.imaging import load_image, to_model_input
    from pneumonia.serve.loader import load
    if runtime == "keras":
        from pneumonia.train import keras_runtime
        keras_runtime.register()
    served = load(model_dir, runtime=runtime)
    predictor = served.predictor
    greys = [load_image(p) for p in images]
    files = [p.read_bytes() for p in images]
    predictor.analyze(files[0])  # warm, as the app is once it answers
    ours = []
    for i in range(runs):
        t = time.perf_counter()
        predictor.analyze(files[i % len(files)])
        ours.append(1000 * (time.perf_counter() - t))
    import tempfile

    from pneumonia.serve.heatmap import linear_cam, save_jpeg
    from pneumonia.serve.imaging import canonical, grey_to_rgb
    steps: dict[str, list[float]] = {"decode": [], "lungs": [], "classifier": [], "overlay": [], "jpeg": []}
    out = tempfile.mkdtemp()
    for i in range(runs):
        t = [time.perf_counter()]
        grey = load_image(files[i % len(files)])
        t.append(time.perf_counter())
        views, boxes, lungs, _ = predictor.reader.read(canonical(grey)[None])
        t.append(time.perf_counter())
        acts, _ = predictor.forward(grey_to_rgb(views))
        t.append(time.perf_counter())
        rgb = predictor._overlay(grey, linear_cam(acts, predictor.head.w, [True])[0], boxes[0],
                                 predictor.reader.seen(lungs[0], boxes[0]))
        t.append(time.perf_counter())
        save_jpeg(rgb, out)
        t.append(time.perf_counter())
        for name, a, b in zip(steps, t, t[1:]):
            steps[name].append(1000 * (b - a))
    found = {name: pct(v) for name, v in steps.items()}
    if runtime != "keras":
        heads = {}
        if predictor.subtypes is not None:   # the heads under the answer on and off, interleaved
            kept, on, off = predictor.subtypes, [], []
            for i in range(runs):
                for state, acc in ((kept, on), (None, off)):
                    predictor.subtypes = state
                    t0 = time.perf_counter()
                    predictor.analyze(files[i % len(files)])
                    acc.append(1000 * (time.perf_counter() - t0))
            predictor.subtypes = kept
            heads = {"with_heads": pct(on), "without_heads": pct(off)}
        return {"ours": pct(ours), **found, **heads, "variant": predictor.reader.variant}
    from pneumonia.train.model import load_model_folder
    net, _ = load_model_folder(model_dir)
    keras_io_recipe(net, to_model_input(greys[0])[None])
    recipe = []
    for i in range(max(10, runs // 4)):
        t = time.perf_counter()
        keras_io_recipe(net, to_model_input(greys[i % len(greys)])[None])
        recipe.append(1000 * (time.perf_counter() - t))
    return {"ours": pct(ours), "recipe": pct(recipe), **found, "variant": predictor.reader.variant}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def raw_http(url: str, image: Path, runs: int) -> dict[str, float]:
    """The same call as plain HTTP on one kept-alive connection, step by step
    (upload, queue join, queue stream until the answer, overlay download):
    what the server and the protocol cost, without gradio_client."""
    import json
    import uuid

    import httpx
    api = f"{url}gradio_api"
    config = httpx.get(f"{url}config").json()
    fn_index = next(i for i, d in enumerate(config["dependencies"]) if d.get("api_name") == "predict")
    steps: dict[str, list[float]] = {"upload": [], "join": [], "stream": [], "download": []}
    with httpx.Client() as http:
        for i in range(runs + 3):
            t = [time.perf_counter()]
            path = http.post(f"{api}/upload", files={"files": image.open("rb")}).json()[0]
            t.append(time.perf_counter())
            session = uuid.uuid4().hex
            http.post(f"{api}/queue/join", json={
                "data": [{"path": path, "meta": {"_type": "gradio.FileData"}}, "decided class"],
                "fn_index": fn_index, "session_hash": session})
            t.append(time.perf_counter())
            with http.stream("GET", f"{api}/queue/data", params={"session_hash": session}) as stream:
                done = next(json.loads(line[5:]) for line in stream.iter_lines()
                            if "process_completed" in line)
            t.append(time.perf_counter())
            http.get(done["output"]["data"][1]["url"])
            t.append(time.perf_counter())
            if i >= 3:  # after warm-up
                for name, a, b in zip(steps, t, t[1:]):
                    steps[name].append(1000 * (b - a))
    return {name: float(np.median(v)) for name, v in steps.items()}


def end_to_end(model_dir: str, images: list[Path], runs: int, runtime: str) -> dict:
    from conftest import free_port
    from gradio_client import Client, handle_file
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "PNEUMONIA_MODEL": model_dir, "PNEUMONIA_RUNTIME": runtime}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, APPS[runtime]], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        while True:
            try:
                client = Client(url, verbose=False)
                client.predict(handle_file(str(images[0])), api_name="/predict")
                break
            except Exception:
                if proc.poll() is not None or time.perf_counter() - t0 > 180:
                    raise RuntimeError("app did not start")
                time.sleep(0.2)
        cold = time.perf_counter() - t0
        # gradio_client builds a TLS context (loading the CA bundle, ~20 ms) for
        # each of its 4 HTTP requests, even for http:// URLs; ssl_verify=False
        # skips that for a local server.
        fast = Client(url, verbose=False, ssl_verify=False)
        result = {"cold_s": cold}
        for name, c in (("e2e", client), ("e2e_no_tls", fast)):
            lat = []
            for i in range(runs):
                t = time.perf_counter()
                c.predict(handle_file(str(images[i % len(images)])), api_name="/predict")
                lat.append(1000 * (time.perf_counter() - t))
            result[name] = pct(lat)
        result["raw"] = raw_http(url, images[0], runs)
        result["rss_mb"] = rss_mb(proc.pid)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    # A restart: the first user's request,
    # 3 s after the server answers.
    from conftest import wait_for_http
    proc = subprocess.Popen([sys.executable, APPS[runtime]], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_http(url, proc)
        time.sleep(3)
        first = Client(url, verbose=False, ssl_verify=False)
        t = time.perf_counter()
        first.predict(handle_file(str(images[1])), api_name="/predict")
        result["first_after_restart_ms"] = 1000 * (time.perf_counter() - t)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    return result


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=str(ROOT / "model"))
    p.add_argument("--runs", type=int, default=40)
    args = p.parse_args()
    images = sorted((ROOT / "examples").glob("*.jpeg"))
    runtimes = ("openvino", "keras")
    # The apps first, one at a time, on a quiet machine; then the libraries.
    e2e = {r: end_to_end(args.model, images, args.runs, r) for r in runtimes}
    local = {r: in_process(args.model, images, args.runs, r) for r in runtimes}
    ov, tf = local["openvino"], local["keras"]
    print(f"\n{os.cpu_count()} CPU cores, {args.runs} runs, {len(images)} example images; "
          "OpenVINO (served) | TensorFlow, same model\n")
    print("| measurement | OpenVINO p50 / p95 | TensorFlow p50 / p95 | target (OpenVINO) |")
    print("|---|---|---|---|")

    def row(name, a, b, target=""):
        print(f"| {name} | {a[0]:.1f} / {a[1]:.1f} ms | {b[0]:.1f} / {b[1]:.1f} ms | {target} |")
    row(f"in-process path: lungs ({ov['variant']}), classifier, Grad-CAM, overlay", ov["ours"], tf["ours"],
        "p50 <= 30 ms")
    row("of which decoding the upload", ov["decode"], tf["decode"])
    row("of which lung segmentation, post-processing and lung view", ov["lungs"], tf["lungs"])
    row("of which classifier forward pass (Grad-CAM is read from it)", ov["classifier"], tf["classifier"])
    row("of which drawing the overlay (heat where the model read, outline)", ov["overlay"], tf["overlay"])
    row("of which encoding the overlay as JPEG and writing its file", ov["jpeg"], tf["jpeg"])
    if "with_heads" in ov:
        w, o = ov["with_heads"], ov["without_heads"]
        print(f"| in-process path with the heads under the answer / without (interleaved, OpenVINO) | "
              f"{w[0]:.1f} / {w[1]:.1f} ms | {o[0]:.1f} / {o[1]:.1f} ms without | ratio p50 {w[0] / o[0]:.3f} |")
    a, b = e2e["openvino"], e2e["keras"]
    row("through gradio_client, Client(url, ssl_verify=False)", a["e2e_no_tls"], b["e2e_no_tls"], "p50 <= 80 ms")
    row("through gradio_client, default Client(url)", a["e2e"], b["e2e"], "p50 <= 150 ms")
    raw = a["raw"]
    print(f"| same call as raw HTTP (OpenVINO app): upload {raw['upload']:.0f} + join {raw['join']:.0f} + queue "
          f"stream {raw['stream']:.0f} (holds the model call) + overlay download {raw['download']:.0f} | "
          f"{sum(raw.values()):.0f} ms | | |")
    print(f"| cold start: process start to first answer | {a['cold_s']:.1f} s | {b['cold_s']:.1f} s | <= 6 s |")
    print(f"| first request after a restart, Client(url, ssl_verify=False) | "
          f"{a['first_after_restart_ms']:.0f} ms | {b['first_after_restart_ms']:.0f} ms | no tracing or compilation |")
    print(f"| server resident memory after the runs | {a['rss_mb']:.0f} MB | {b['rss_mb']:.0f} MB | <= 500 MB |")
    print(f"| predict + Grad-CAM, keras.io recipe (eager, TensorFlow) | | {tf['recipe'][0]:.0f} / {tf['recipe'][1]:.0f} ms | |")
    print(f"\nIn-process path, TensorFlow / OpenVINO (p50): {tf['ours'][0] / ov['ours'][0]:.2f}x; "
          f"classifier step: {tf['classifier'][0] / ov['classifier'][0]:.2f}x; "
          f"keras.io recipe / OpenVINO path: {tf['recipe'][0] / ov['ours'][0]:.1f}x")
    print(f"Through gradio_client (ssl_verify=False), TensorFlow app / OpenVINO app (p50): "
          f"{b['e2e_no_tls'][0] / a['e2e_no_tls'][0]:.2f}x; cold start {b['cold_s'] / a['cold_s']:.2f}x; "
          f"memory {b['rss_mb'] / a['rss_mb']:.2f}x")


if __name__ == "__main__":
    main()
