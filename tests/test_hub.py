"""Hub round trip over real HTTP, against the local Hub stand-in (hub_server.py).

Push and pull run in subprocesses with HF_ENDPOINT pointing at the stand-in,
the way a user runs them; each gets its own Hugging Face cache.
"""
import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from conftest import ROOT, free_port
from hub_server import TOKEN, FakeHub

from pneumonia import metrics as metrics_lib

PROBE = np.random.default_rng(0).uniform(0, 255, (2, 224, 224, 3)).astype(np.float32)


def make_tiny_folder(folder, threshold=0.4):
    """A real (tiny) model folder: same files and graph contract as the shipped one."""
    folder.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(0)
    inputs = keras.Input((224, 224, 3), name="image")
    x = keras.layers.AveragePooling2D(32)(inputs)
    x = keras.layers.Conv2D(8, 1, activation="relu", name="conv5_block3_out")(x)
    x = keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    model = keras.Model(inputs, keras.layers.Dense(1, name="logit")(x))
    model.save(folder / "model.keras")
    from pneumonia.train.segmenter import build_segmenter
    build_segmenter(32, 2, depth=1).save(folder / "lungs.keras")
    (folder / "config.json").write_text(json.dumps({
        "class_names": ["NORMAL", "PNEUMONIA"], "input_size": [224, 224, 3], "threshold": threshold,
        "temperature": 1.5, "git_commit": "0123456789abcdef",
        "lungs": {"file": "lungs.keras", "variant": "crop+mask", "margin": 0.08, "dilation": 0.04}}))
    rng = np.random.default_rng(1)
    m = metrics_lib.evaluate_probs(rng.random(50) < 0.5, rng.random(50), threshold, bootstrap=20)
    (folder / "metrics.json").write_text(json.dumps(m))
    (folder / "README.md").write_text("---\nlicense: cc-by-4.0\n---\n# tiny test model\n")
    from pneumonia.train.export import export_folder
    export_folder(folder)  # the networks the app serves, as OpenVINO IR
    return model(PROBE).numpy()[:, 0]


@pytest.fixture()
def hub():
    server = FakeHub().start()
    yield server
    server.stop()


def env_for(hub_endpoint, cache, **extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update({"HF_ENDPOINT": hub_endpoint, "HF_HOME": str(cache), "HF_HUB_DISABLE_TELEMETRY": "1",
                "TF_CPP_MIN_LOG_LEVEL": "2", **extra})
    return env


def run(args, env, timeout=240):
    return subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout)


LOAD = """
import json, sys, time, numpy as np
from pneumonia.serve.loader import load
t = time.time()
served = load(sys.argv[1], sys.argv[2] or None)
seconds = time.time() - t
probe = np.random.default_rng(0).uniform(0, 255, (2, 224, 224, 3)).astype(np.float32)
logits = served.predictor.head.logits(served.predictor.forward(probe)[1])
print(json.dumps({"origin": served.origin, "revision": served.revision, "logits": logits.tolist(),
                  "threshold": served.predictor.threshold, "seconds": seconds,
                  "lungs": served.predictor.reader.segmenter.size if served.predictor.reader.segmenter else None,
                  "panel": served.panel_markdown()}))
"""


def load_via_app_loader(env, source, revision=""):
    proc = run(["-c", LOAD, source, revision], env)
    assert proc.returncode == 0, f"{source}@{revision} offline={env.get('HF_HUB_OFFLINE')}: {proc.stderr[-1500:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_push_then_pull_by_repo_id_and_pinned_revision(hub, tmp_path):
    expected = make_tiny_folder(tmp_path / "v1")
    env = env_for(hub.endpoint, tmp_path / "cache", HF_TOKEN=TOKEN)
    pushed = run(["-m", "pneumonia.train.publish", "push", str(tmp_path / "v1"), "tester/tiny"], env)
    assert pushed.returncode == 0, pushed.stderr[-3000:]
    first = pushed.stdout.split("Committed ")[1].split(":")[0]
    assert f"/tester/tiny/commit/{first}" in pushed.stdout
    repo = hub.state.repos[("model", "tester/tiny")]
    assert len(repo.commits) == 1  # the whole folder in one commit
    assert set(repo.commits[first]) == {"model.keras", "lungs.keras", "config.json", "metrics.json", "README.md",
                                        "classifier.xml", "classifier.bin", "lungs.xml", "lungs.bin", "head.npz"}
    assert repo.messages[first].startswith("Upload model: test accuracy")

    # A second version with another threshold; main now points at it.
    make_tiny_folder(tmp_path / "v2", threshold=0.9)
    assert run(["-m", "pneumonia.train.publish", "push", str(tmp_path / "v2"), "tester/tiny"], env).returncode == 0
    latest = load_via_app_loader(env, "tester/tiny")
    assert latest["origin"] == "Hub repo `tester/tiny`" and latest["threshold"] == 0.9
    assert latest["lungs"] == 32  # the segmenter came down with the classifier
    assert latest["revision"] == repo.refs["main"] != first

    pinned = load_via_app_loader(env, "tester/tiny", first)
    assert pinned["revision"] == first and pinned["threshold"] == 0.4
    # Served in bf16 from fp16-stored weights: the Keras logits to a few parts in a thousand.
    np.testing.assert_allclose(pinned["logits"], expected, rtol=5e-3)
    assert f"`{first}`" in pinned["panel"]

    # Second start from the cache: offline mode, then with the Hub gone.
    offline = load_via_app_loader({**env, "HF_HUB_OFFLINE": "1"}, "tester/tiny", first)
    assert offline["origin"] == "Hub repo `tester/tiny`" and offline["revision"] == first
    hub.stop()
    gone = load_via_app_loader(env, "tester/tiny", first)
    assert gone["origin"] == "Hub repo `tester/tiny`"
    np.testing.assert_allclose(gone["logits"], expected, rtol=5e-3)


def test_falls_back_to_committed_model_fast_when_hub_is_down(tmp_path):
    dead = f"http://127.0.0.1:{free_port()}"
    got = load_via_app_loader(env_for(dead, tmp_path / "cache"), "tester/tiny")
    assert got["origin"].startswith("the committed `model/` folder (fallback:")
    assert got["revision"].startswith("embedded@")
    assert got["seconds"] < 10


def test_offline_on_purpose_is_named_as_such(tmp_path):
    """HF_HUB_OFFLINE=1 with nothing cached: the fallback says offline mode, not an unreachable Hub."""
    dead = f"http://127.0.0.1:{free_port()}"
    got = load_via_app_loader({**env_for(dead, tmp_path / "cache"), "HF_HUB_OFFLINE": "1"}, "tester/tiny")
    assert "HF_HUB_OFFLINE is set" in got["origin"] and "could not be reached" not in got["origin"]


def test_incomplete_download_is_named_and_falls_back(hub, tmp_path):
    folder = tmp_path / "broken"
    make_tiny_folder(folder)
    env = env_for(hub.endpoint, tmp_path / "cache", HF_TOKEN=TOKEN)
    assert run(["-m", "pneumonia.train.publish", "push", str(folder), "tester/broken"], env).returncode == 0
    repo = hub.state.repos[("model", "tester/broken")]
    del repo.commits[repo.refs["main"]]["classifier.bin"]  # someone deleted the served weights on the Hub
    got = load_via_app_loader(env, "tester/broken")
    assert "missing classifier.bin" in got["origin"] and "fallback" in got["origin"]


def test_push_errors_are_clear(hub, tmp_path):
    folder = tmp_path / "m"
    make_tiny_folder(folder)
    cases = [
        ({}, "tester/x", "No valid Hugging Face token"),
        ({"HF_TOKEN": TOKEN}, "someone-else/x", "cannot write to someone-else/x"),
    ]
    for extra, repo_id, message in cases:
        proc = run(["-m", "pneumonia.train.publish", "push", str(folder), repo_id], env_for(hub.endpoint, tmp_path / "c", **extra))
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    dead = f"http://127.0.0.1:{free_port()}"
    proc = run(["-m", "pneumonia.train.publish", "push", str(folder), "tester/x"], env_for(dead, tmp_path / "c", HF_TOKEN=TOKEN))
    assert proc.returncode == 2 and "Could not reach the Hugging Face Hub" in proc.stderr
    (folder / "metrics.json").unlink()
    proc = run(["-m", "pneumonia.train.publish", "push", str(folder), "tester/x"], env_for(hub.endpoint, tmp_path / "c", HF_TOKEN=TOKEN))
    assert proc.returncode == 2 and "is missing metrics.json" in proc.stderr


def test_deploy_space_uploads_the_app(hub, tmp_path):
    root = tmp_path / "repo"
    for rel in ("app.py", "requirements.txt", "README.md", "pneumonia/config.py", "pneumonia/serve/predictor.py",
                "pneumonia/batch/scoring.py", "pneumonia/train/training.py", "pneumonia/report/card.py", "examples/a.jpeg", "model/config.json", "model/classifier.xml", "model/model.keras", "tests/test_x.py", "runs/big.bin"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(rel)
    code = ("import sys; from pneumonia.train.publish import deploy_space; "
            "print(deploy_space('tester/demo', root=sys.argv[1]))")
    proc = run(["-c", code, str(root)], env_for(hub.endpoint, tmp_path / "c", HF_TOKEN=TOKEN))
    assert proc.returncode == 0, proc.stderr[-3000:]
    space = hub.state.repos[("space", "tester/demo")]
    assert space.sdk == "gradio"
    files = set(space.commits[space.refs["main"]])
    # A light Space: the exported networks, not the Keras files; the serving wing, not training or report.
    assert files == {"app.py", "requirements.txt", "README.md", "pneumonia/config.py", "pneumonia/serve/predictor.py",
                     "pneumonia/batch/scoring.py", "examples/a.jpeg", "model/config.json", "model/classifier.xml"}
