"""Ordered parallel maps on threads: the one helper every batch of independent work uses.

Lean checks run in their own processes and model calls wait on I/O or release the GIL, so
threads keep every core busy without pickling anything.
"""

from __future__ import annotations

import os
from typing import Callable, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def default_workers() -> int:
    """The cores this process may run on (its CPU affinity, not the machine's count)."""
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def ordered_map(fn: Callable[[T], R], items: Sequence[T], workers: int, *, progress: bool = False,
                description: str = "working") -> list[R]:
    """`fn` over `items` on up to `workers` threads; results in input order."""
    from solve_in_lean.progress import track

    if workers <= 1 or len(items) <= 1:
        return [fn(x) for x in track(items, total=len(items), description=description, enabled=progress)]
    from concurrent.futures import ThreadPoolExecutor, as_completed  # only here: a one-file check never pays for it

    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(fn, x) for x in items]
        for _ in track(as_completed(futures), total=len(futures), description=description, enabled=progress):
            pass
        return [f.result() for f in futures]
