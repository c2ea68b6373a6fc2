"""Run concurrent requests through a network together.

One worker thread owns the network. Whatever requests are waiting when it is
free run as one batch; a request that arrives while a batch runs waits for
the next one. So a lone request starts at once (no timer: it pays nothing for
batching), and under load batches grow by themselves, which is where a CPU's
throughput per image improves.
"""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from concurrent.futures import Future
import queue
import threading

import numpy as np


class Batcher:
    """`submit(x)` -> `fn(stack of x's)[i]`, from any thread.

    `fn` takes an (n, ...) array and returns an array or a tuple of arrays
    with n rows each; each caller gets its own row (or tuple of rows).
    """

    def __init__(self, fn: Callable[[np.ndarray], np.ndarray | tuple], max_batch: int = 8, name: str = "batcher"):
        self.fn, self.max_batch = fn, max_batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self.batch_sizes: Counter[int] = Counter()  # for the benchmarks: how batches actually formed
        threading.Thread(target=self._work, name=name, daemon=True).start()

    def __call__(self, batch: np.ndarray):
        """`fn(batch)`: a lone row waits its turn with the other callers'; a
        caller's own batch (evaluation, warm-up) runs as it is."""
        if len(batch) != 1:
            return self.fn(batch)
        out = self.submit(batch[0])
        return tuple(o[None] for o in out) if isinstance(out, tuple) else out[None]

    def submit(self, x: np.ndarray):
        future: Future = Future()
        self._queue.put((np.asarray(x), future))
        return future.result()

    def _work(self) -> None:
        while True:
            items = [self._queue.get()]
            while len(items) < self.max_batch:
                try:
                    items.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self.batch_sizes[len(items)] += 1
            try:
                out = self.fn(np.stack([x for x, _ in items]))
            except Exception as e:  # every waiting caller gets the error, the worker lives on
                for _, future in items:
                    future.set_exception(e)
                continue
            for i, (_, future) in enumerate(items):
                future.set_result(tuple(o[i] for o in out) if isinstance(out, tuple) else out[i])
