"""Wall-clock time spent inside the model and inside Lean, for every stage at once.

Wrapping the generator and the checker once counts their time wherever they are called
(formalize, solve, back-translate), so the pipeline's own overhead is total minus these.
Parallel Lean checks are counted as the union of their intervals, not the sum.
"""

from __future__ import annotations

import threading
import time
from typing import Any


class BusyTimer:
    """Seconds during which at least one timed call was running."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active = 0
        self._since = 0.0
        self.seconds = 0.0

    def __enter__(self) -> "BusyTimer":
        with self._lock:
            if self._active == 0:
                self._since = time.perf_counter()
            self._active += 1
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._active -= 1
            if self._active == 0:
                self.seconds += time.perf_counter() - self._since


class _Timed:
    """Delegates everything to `inner`, timing the named methods."""

    _timed_methods: tuple[str, ...] = ()

    def __init__(self, inner: Any, timer: BusyTimer) -> None:
        self.inner = inner
        self.timer = timer

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self.inner, name)
        if name not in self._timed_methods:
            return attr

        def timed(*args: Any, **kw: Any) -> Any:
            with self.timer:
                return attr(*args, **kw)
        return timed


class TimedGenerator(_Timed):
    _timed_methods = ("generate",)


class TimedChecker(_Timed):
    """Times `check` and `check_many`; `verify` reaches Lean only through `check`."""

    _timed_methods = ("check", "check_many")
