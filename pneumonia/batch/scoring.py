"""The served model over an archive: X-rays read and answered in batches (one
segmenter call and one classifier call per batch, at the precision the
machine chose), each answer written as it comes, a bad file a row with its
reason, never a stop."""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
import re
import signal

from tqdm import tqdm

from pneumonia.pixels import ImageError
from pneumonia.serve.heatmap import encode_jpeg
from pneumonia.serve.imaging import load_image
from pneumonia.serve.predictor import Predictor
from pneumonia.serve.response import details, refuse
from pneumonia.batch.answers import Answers
from pneumonia.batch.inputs import Item


def _read(item: Item):
    """The X-ray of an item, or the ImageError saying why it can't be read."""
    try:
        return load_image(item.read())
    except ImageError as e:
        return e
    except OSError as e:   # a listed file that vanished or can't be opened
        return ImageError(f"The file could not be read ({e.strerror or e}).", "unreadable")


def overlay_name(name: str) -> str:
    """A flat file name for an X-ray's overlay: its path with / as __, ending .jpg."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", name.replace("/", "__")) + ".jpg"


class Stop:
    """Ctrl-C asks the run to stop after the X-ray being written (files stay whole); a second one stops at once."""

    def __init__(self):
        self.asked = False

    def __enter__(self):
        self._old = signal.signal(signal.SIGINT, self._ask)
        return self

    def _ask(self, *_):
        if self.asked:
            raise KeyboardInterrupt
        self.asked = True

    def __exit__(self, *_):
        signal.signal(signal.SIGINT, self._old)


def answer_chunk(chunk: list[Item], predictor: Predictor) -> list[tuple[dict, dict | None]]:
    """(details, the overlay's RGB or None) of each item: one segmenter and one classifier call for the chunk."""
    read = [_read(it) for it in chunk]
    greys = [r for r in read if not isinstance(r, ImageError)]
    results = iter(predictor.analyze_arrays(greys) if greys else [])
    out = []
    for r in read:
        result = r if isinstance(r, ImageError) else next(results)
        if isinstance(result, ImageError):
            out.append((refuse(result, predictor.version, predictor.runtime)[2], None))
        else:
            out.append((details(result), result.get("overlay")))
    return out


def answer_items(todo: list[Item], predictor: Predictor, batch_size: int = 16,
                 progress=None) -> list[tuple[str, dict]]:
    """(name, details) of every item, in order; `progress` (a gr.Progress) sees each chunk."""
    out: list[tuple[str, dict]] = []
    for start in range(0, len(todo), batch_size):
        if progress is not None:
            progress((start, len(todo)), desc="X-rays answered", unit="X-rays")
        chunk = todo[start:start + batch_size]
        out += [(it.name, d) for it, (d, _) in zip(chunk, answer_chunk(chunk, predictor))]
    return out


def write_answers(results: Iterable[tuple[str, dict, bytes | None]], answers: Answers, overlays: Path | None,
                  total: int, todo: int, progress: bool = True) -> dict:
    """Write each (name, details, overlay JPEG or None) as it comes, with a
    progress bar; Ctrl-C stops after the one being written. Returns counts
    {"answered", "refused", "stopped"}."""
    counts = {"answered": 0, "refused": 0, "stopped": False}
    bar = tqdm(total=total, initial=total - todo, unit="X-ray", disable=not progress, dynamic_ncols=True)
    with Stop() as stop:
        for name, answer, jpeg in results:
            if overlays is not None and jpeg:
                overlays.mkdir(parents=True, exist_ok=True)
                (overlays / overlay_name(name)).write_bytes(jpeg)
            answers.add(name, answer)
            counts["answered" if answer["answered"] else "refused"] += 1
            bar.update(1)
            if stop.asked:
                counts["stopped"] = True
                break
    bar.close()
    return counts


def score(todo: list[Item], predictor: Predictor, answers: Answers, batch_size: int = 16,
          overlays: Path | None = None, total: int | None = None, progress: bool = True) -> dict:
    """Answer every item of `todo` into `answers`; returns counts {"answered", "refused", "stopped"}."""
    def results():
        for start in range(0, len(todo), batch_size):
            chunk = todo[start:start + batch_size]
            for item, (answer, overlay) in zip(chunk, answer_chunk(chunk, predictor)):
                yield item.name, answer, encode_jpeg(overlay) if overlays is not None and overlay is not None else None
    return write_answers(results(), answers, overlays, total or len(todo), len(todo), progress)
