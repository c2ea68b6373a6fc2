"""A plain HTTP endpoint on the app's own server, for programs in any language:
`POST /v1/analyze` with the X-ray in the multipart field `file` returns the
`details` JSON the Gradio API gives, in one request.

Status codes: 200 an answer; 400 a file that can't be read as an X-ray
(no file, not an image, unreadable, too small, a bad shape) and 422 an image
the model refuses (no lungs found, not a chest X-ray), both with the refusal
JSON; 413 an upload over the size limit; 503 when every slot is busy.
"""
from __future__ import annotations

from collections.abc import Callable
import threading

from starlette.concurrency import run_in_threadpool
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from pneumonia.pixels import ImageError

PATH = "/v1/analyze"
REFUSED_BY_MODEL = ("no_lungs", "not_chest_xray")
Analyze = Callable[[bytes], dict]   # file bytes -> details (answered or refused)


def status_of(details: dict) -> int:
    if details.get("answered"):
        return 200
    return 422 if (details.get("refusal") or {}).get("reason") in REFUSED_BY_MODEL else 400


class Slots:
    """At most `size` requests in the building (running or waiting); more are told to come back."""

    def __init__(self, size: int):
        self._free, self._lock = size, threading.Lock()

    def take(self) -> bool:
        with self._lock:
            if self._free == 0:
                return False
            self._free -= 1
            return True

    def give(self) -> None:
        with self._lock:
            self._free += 1


def routes(analyze: Analyze, refuse: Callable[[ImageError], dict], max_bytes: int, slots: int) -> list[Route]:
    """`POST /v1/analyze`, for the app's server to have from its start (launch's app_kwargs)."""
    busy = Slots(slots)

    async def analyze_upload(request: Request) -> JSONResponse:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_bytes:
            if int(length) <= 8 * max_bytes:   # read and dropped, so the client is there to hear why
                async for _ in request.stream():
                    pass
            return JSONResponse(refuse(ImageError(f"The upload is larger than {max_bytes // 2**20} MB.",
                                                  "too_large")), 413)
        if not busy.take():
            return JSONResponse({"error": "busy", "message": "Every slot is busy: try again in a few seconds."},
                                503, headers={"Retry-After": "5"})
        try:
            form = await request.form(max_files=1, max_part_size=max_bytes)
            upload = form.get("file")
            if upload is None or not hasattr(upload, "read"):
                details = refuse(ImageError("No image was given: send the X-ray in the multipart field 'file'.",
                                            "no_image"))
            else:
                data = await upload.read()
                details = await run_in_threadpool(analyze, data)
        except ImageError as e:
            details = refuse(e)
        except MultiPartException as e:   # a malformed body, or a part over the limit without a length header
            too_large = "size" in str(e).lower()
            details = refuse(ImageError(f"The upload is larger than {max_bytes // 2**20} MB." if too_large else
                                        f"The request is not a multipart upload with a field 'file' ({e}).",
                                        "too_large" if too_large else "no_image"))
            return JSONResponse(details, 413 if too_large else 400)
        finally:
            busy.give()
        return JSONResponse(details, status_of(details))

    return [Route(PATH, analyze_upload, methods=["POST"])]
