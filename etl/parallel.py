"""Order-preserving parallel map with a bounded number of results in flight.

`ProcessPoolExecutor.map` submits every item at once and buffers every result; with millions of files that
breaks the bounded-memory promise. Here at most `window` items are submitted ahead of the consumer.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int, window: int | None = None) -> Iterator[R]:
    """Yield `fn(item)` for each item, in order, computed by `workers` processes (inline when 1)."""
    if workers <= 1:
        for item in items:
            yield fn(item)
        return
    window = window or 2 * workers
    iterator = iter(items)
    # forkserver: children must not inherit the parent's open database connections.
    context = multiprocessing.get_context("forkserver")
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=context)
    pending: deque[Future[R]] = deque()
    try:
        for item in iterator:
            pending.append(pool.submit(fn, item))
            if len(pending) >= window:
                break
        while pending:
            result = pending.popleft().result()
            for item in iterator:
                pending.append(pool.submit(fn, item))
                break
            yield result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
