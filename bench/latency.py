"""Latency, cold start and memory of the app on this machine, side by side
in one run: the served runtime (OpenVINO, forward only) at each precision
asked for against the same model through TensorFlow, and apps of other
revisions.

    python bench/latency.py [--model model] [--runs 40] [--precisions auto,f32,int8] [--apps served,keras,REV]

1. In-process, the whole path (`Predictor.analyze` on the file's bytes:
   decode, lungs, lung view, classifier forward pass, Grad-CAM from it, overlay),
   its steps timed apart, for OpenVINO at each precision
   (`PNEUMONIA_PRECISION`; "auto" is what the app chooses on this CPU) and
   for TensorFlow (whose classifier step is the plain TensorFlow forward the
   ratios are taken against); and the keras.io Grad-CAM recipe run as written
   (eager GradientTape, plus `model.predict` for the probability).
2. Each app in a subprocess ("served", "served@int8", "keras", or a git
   revision, as bench/load.py takes them): cold start (process start to first
   answer), latency through `gradio_client`, resident memory.
Prints tables and the ratios.
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


sys.path.insert(0, str(ROOT / "bench"))
from apps import app_dir, cleanup, first_answer, rss_mb  # noqa: E402


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


def in_process(model_dir: str, images: list[Path], runs: int, runtime: str, precision: str = "auto") -> dict:
    from unittest import mock

    from pneumonia.serve.imaging import load_image, to_model_input
    from pneumonia.serve.loader import load
    if runtime == "keras":
        from pneumonia.train import keras_runtime
        keras_runtime.register()
    with mock.patch.dict(os.environ, {"PNEUMONIA_PRECISION": precision}):
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
        return {"ours": pct(ours), **found, **heads, "variant": predictor.reader.variant,
                "precision": predictor.runtime["precision"]}
    from pneumonia.train.model import load_model_folder
    net, _ = load_model_folder(model_dir)
    keras_io_recipe(net, to_model_input(greys[0])[None])
    recipe = []
    for i in range(max(10, runs // 4)):
        t = time.perf_counter()
        keras_io_recipe(net, to_model_input(greys[i % len(greys)])[None])
        recipe.append(1000 * (time.perf_counter() - t))
    return {"ours": pct(ours), "recipe": pct(recipe), **found, "variant": predictor.reader.variant}


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


def end_to_end(model_dir: str, images: list[Path], runs: int, app: str, keep: list) -> dict:
    from conftest import free_port
    from gradio_client import Client, handle_file
    port = free_port()
    cwd, script, extra = app_dir(app, keep)
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "PNEUMONIA_MODEL": model_dir, "HF_HUB_OFFLINE": "1", **extra}
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, script], cwd=cwd, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/"
    try:
        client = first_answer(proc, url, images[0], t0)
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
    proc = subprocess.Popen([sys.executable, script], cwd=cwd, env=env,
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
    p.add_argument("--precisions", default="auto,f32,int8", help="OpenVINO precisions in process (auto: the app's choice)")
    p.add_argument("--apps", default="served,keras", help="apps end to end: served[@precision], keras, git revisions")
    args = p.parse_args()
    images = sorted((ROOT / "examples").glob("*.jpeg"))
    # The apps first, one at a time, on a quiet machine; then the libraries.
    keep: list[str] = []
    try:
        e2e = {a: end_to_end(args.model, images, args.runs, a, keep) for a in args.apps.split(",")}
    finally:
        cleanup(keep)
    local = {f"OpenVINO {q}": in_process(args.model, images, args.runs, "openvino", q)
             for q in args.precisions.split(",")}
    if (Path(args.model) / "model.keras").is_file():   # the Keras file is on the Hub, not in git
        local["TensorFlow"] = in_process(args.model, images, args.runs, "keras")
    else:
        print(f"{args.model} has no model.keras: TensorFlow is left out (hf download it to compare)")
    tf = local.get("TensorFlow")
    names = list(local)
    print(f"\n{os.cpu_count()} CPU cores, {args.runs} runs, {len(images)} example images; in process, p50 / p95 ms "
          f"(OpenVINO auto chose {local.get('OpenVINO auto', {}).get('precision', '-')})\n")
    print("| in process | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))

    def row(label: str, key: str) -> None:
        print(f"| {label} | " + " | ".join(f"{local[n][key][0]:.1f} / {local[n][key][1]:.1f}" for n in names) + " |")
    row(f"whole path: lungs ({local[names[0]].get('variant', '?')}), classifier, Grad-CAM, overlay", "ours")
    row("of which decoding the upload", "decode")
    row("of which lung segmentation, post-processing and lung view", "lungs")
    row("of which classifier forward pass (Grad-CAM is read from it)", "classifier")
    row("of which drawing the overlay (heat where the model read, outline)", "overlay")
    row("of which encoding the overlay as JPEG and writing its file", "jpeg")
    if tf:
        print("| whole path / plain TensorFlow forward (p50; goal <= 0.40x on a CPU without bf16) | "
              + " | ".join(f"{local[n]['ours'][0] / tf['classifier'][0]:.2f}x" for n in names) + " |")
    for n, r in local.items():
        if "with_heads" in r:
            w, o = r["with_heads"], r["without_heads"]
            print(f"\n{n}: with the heads under the answer / without (interleaved): {w[0]:.1f} / {o[0]:.1f} ms p50")
    if tf:
        print(f"keras.io recipe (eager, TensorFlow): {tf['recipe'][0]:.0f} / {tf['recipe'][1]:.0f} ms\n")
    apps = list(e2e)
    print("| app | " + " | ".join(apps) + " | goal (no bf16) |")
    print("|---|" + "---|" * len(apps) + "---|")
    for label, key, goal in (("gradio_client, Client(url, ssl_verify=False), p50 / p95", "e2e_no_tls", ""),
                             ("gradio_client, default Client(url), p50 / p95", "e2e", "p50 <= 200 ms")):
        print(f"| {label} | " + " | ".join(f"{e2e[a][key][0]:.0f} / {e2e[a][key][1]:.0f} ms" for a in apps) + f" | {goal} |")
    print("| raw HTTP: upload + join + queue stream (holds the model call) + overlay download | "
          + " | ".join(" + ".join(f"{v:.0f}" for v in e2e[a]["raw"].values()) + " ms" for a in apps) + " | |")
    print("| cold start: process start to first answer | " + " | ".join(f"{e2e[a]['cold_s']:.1f} s" for a in apps)
          + " | <= 5 s |")
    print("| first request after a restart | " + " | ".join(f"{e2e[a]['first_after_restart_ms']:.0f} ms" for a in apps)
          + " | |")
    print("| server resident memory after the runs | " + " | ".join(f"{e2e[a]['rss_mb']:.0f} MB" for a in apps)
          + " | <= 450 MB |")


if __name__ == "__main__":
    main()
