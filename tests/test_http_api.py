"""`POST /v1/analyze`: one request, the details JSON, status codes that mean
something; over HTTP against the real app, and the slots on a stand-in app."""
import io
import threading
import time

import numpy as np
import pytest
from conftest import EXAMPLES
from PIL import Image

from pneumonia.pixels import ImageError
from pneumonia.serve import http_api


def post(url: str, data: bytes | None, name: str = "xray.jpeg") -> tuple[int, dict]:
    """A multipart POST as curl -F would send it (no body at all when `data` is None); (status, JSON)."""
    import httpx
    r = httpx.post(url, files=None if data is None else {"file": (name, data)}, timeout=60)
    return r.status_code, r.json()


def test_one_request_gets_the_details_the_gradio_api_gives(app_url):
    from gradio_client import Client, handle_file
    client = Client(app_url, verbose=False)
    path = EXAMPLES / "PNEUMONIA-viral_person10_virus_35.jpeg"
    status, details = post(app_url + "v1/analyze", path.read_bytes())
    _, _, via_gradio = client.predict(handle_file(str(path)), api_name="/predict")
    assert status == 200 and details["answered"] and details["decision"] == "PNEUMONIA"
    assert list(details) == list(via_gradio)
    for key in ("decision", "threshold", "heads", "lungs", "heatmap", "answered_by"):
        assert details[key] == via_gradio[key], key
    assert details["probability_pneumonia"] == pytest.approx(via_gradio["probability_pneumonia"], abs=1e-6)


def test_each_refusal_has_its_status_and_the_refusal_json(app_url):
    noise = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).uniform(0, 255, (300, 300)).astype(np.uint8)).save(noise, "PNG")
    cases = [(b"this is not an image", 400, "not_an_image"), (None, 400, "no_image"),
             (noise.getvalue(), 422, "no_lungs")]
    for data, code, reason in cases:
        status, details = post(app_url + "v1/analyze", data)
        assert status == code and details["refusal"]["reason"] == reason, (status, details)
        assert details["answered"] is False and details["decision"] is None and details["refusal"]["message"]
    status, details = post(app_url + "v1/analyze", b"\x89PNG\r\n\x1a\n" + bytes(26 * 2**20))
    assert status == 413 and details["refusal"]["reason"] == "too_large"
    status, details = post(app_url + "v1/analyze", (EXAMPLES / "NORMAL_IM-0001-0001.jpeg").read_bytes())
    assert status == 200 and details["decision"] == "NORMAL"   # the server keeps serving


def test_a_full_house_is_told_to_come_back():
    """The slots on a stand-in app: with every slot busy, the next request gets 503 at once."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    started, release = threading.Semaphore(0), threading.Event()

    def slow(data: bytes) -> dict:
        started.release()
        release.wait(10)
        return {"answered": True, "refusal": None}

    app = FastAPI(routes=http_api.routes(slow, lambda e: {"answered": False, "refusal": {"reason": e.reason}},
                                         2**20, slots=2))
    client = TestClient(app)
    results = []
    workers = [threading.Thread(target=lambda: results.append(
        client.post(http_api.PATH, files={"file": ("a.png", b"x")}).status_code)) for _ in range(2)]
    for w in workers:
        w.start()
    assert started.acquire(timeout=10) and started.acquire(timeout=10)
    t0 = time.perf_counter()
    full = client.post(http_api.PATH, files={"file": ("a.png", b"x")})
    assert full.status_code == 503 and full.headers["retry-after"] and time.perf_counter() - t0 < 2
    release.set()
    for w in workers:
        w.join(10)
    assert results == [200, 200]
    assert client.post(http_api.PATH, files={"file": ("a.png", b"x")}).status_code == 200
    assert http_api.status_of({"answered": False, "refusal": {"reason": "not_chest_xray"}}) == 422
    assert http_api.status_of({"answered": False, "refusal": {"reason": ImageError("x", "too_small").reason}}) == 400
