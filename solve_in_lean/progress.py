"""Progress bars for long work: shown on a terminal, silent in pipes, tests and `--json` runs."""

from __future__ import annotations

import os
import sys
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")


def progress_enabled() -> bool:
    if os.environ.get("LEAN_SOLVE_PROGRESS") == "1":
        return True
    if os.environ.get("LEAN_SOLVE_PROGRESS") == "0":
        return False
    return sys.stderr.isatty()


def track(items: Iterable[T], *, total: int | None = None, description: str = "working",
          enabled: bool | None = None) -> Iterator[T]:
    """Yield `items`, drawing a bar with count, rate and ETA on stderr when enabled."""
    if not (progress_enabled() if enabled is None else enabled):
        yield from items
        return
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn,
                               TimeElapsedColumn, TimeRemainingColumn)

    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task(description, total=total)
        for item in items:
            yield item
            bar.advance(task)
