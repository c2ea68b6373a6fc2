import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

DATA = ROOT / "tests" / "data" / "xray"
EXAMPLES = ROOT / "examples"
MODEL_DIR = ROOT / "model"


@pytest.fixture(scope="session")
def untrained_model():
    """The real graph with random weights (no 95 MB download)."""
    import keras
    from pneumonia.train.model import build_model
    keras.utils.set_random_seed(0)
    return build_model(weights=None)


@pytest.fixture(scope="session")
def shipped_served():
    """The committed model folder as the app serves it (segmenter, guard, lung view)."""
    from pneumonia.serve.loader import load_folder
    return load_folder(MODEL_DIR, str(MODEL_DIR), "committed model")


def free_port() -> int:
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_http(url: str, proc, timeout: float = 180.0) -> None:
    import time
    import urllib.request
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"app exited early:\n{proc.stdout.read()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer in {timeout} s")


def start_app(env_extra: dict | None = None):
    """`python app.py` on a free 127.0.0.1 port; returns (process, url).

    Offline: the Hub is unreachable in tests, so the app serves the committed model."""
    import subprocess
    port = free_port()
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port),
           "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        wait_for_http(url, proc)
    except Exception:
        proc.kill()
        raise
    return proc, url


@pytest.fixture(scope="session")
def app_url():
    proc, url = start_app()
    yield url
    proc.terminate()
    proc.wait(timeout=30)
