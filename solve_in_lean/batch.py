"""Resumable batches: one JSONL line per finished item, skipped on the next run.

A kill loses at most the item in flight. An item whose run raises is recorded with its
error (so one bad problem cannot stop a night's run) and retried only when asked; a model
that cannot be reached at all (GenerationError) stops the batch, since every later item
would fail the same way, and nothing finished is lost.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from solve_in_lean.models.base import GenerationError
from solve_in_lean.progress import track
from solve_in_lean.records import ResultStore


@dataclass
class BatchSummary:
    total: int
    resumed: int
    """Items already in the output file from an earlier run."""
    done_now: int
    errors: int
    """Items whose run raised (this run)."""


def run_resumable(items: Iterable[dict[str, Any]], output: str | Path, fn: Callable[[dict[str, Any]], dict[str, Any]],
                  *, description: str = "working", progress: bool | None = None,
                  retry_errors: bool = False) -> BatchSummary:
    """Apply `fn` to every item (each with a unique "id") not yet in `output`, appending results."""
    items = list(items)
    store = ResultStore(output)
    def done(item: dict[str, Any]) -> bool:
        rec = store.records.get(str(item["id"]))
        return rec is not None and not (retry_errors and "error" in rec)
    resumed = sum(1 for it in items if done(it))
    todo = [it for it in items if not done(it)]
    errors = 0
    for item in track(todo, total=len(todo), description=description, enabled=progress):
        try:
            record = fn(item)
        except GenerationError:
            raise
        except Exception as e:  # noqa: BLE001 - recorded with its traceback, the batch goes on
            errors += 1
            record = {"id": item["id"], "error": f"{type(e).__name__}: {e}",
                      "traceback": traceback.format_exc(limit=8)}
        store.add({**record, "id": item["id"]})
    return BatchSummary(total=len(items), resumed=resumed, done_now=len(todo), errors=errors)
