"""The one resumable batch runner: `solve -i`, `formalize -i` and `eval` all go through it.

One JSONL line per finished item, flushed and fsynced, skipped on the next run, so a kill
loses at most the items in flight. An item whose run raises is recorded with its error (one
bad problem cannot stop a night's run) and retried only when asked. Two kinds of failure stop
the batch instead, since every later item would fail the same way and nothing finished is lost:
a model or a Lean backend that cannot be reached at all (GenerationError, UnavailableError), and
the infrastructure (a full disk, a read-only directory, a cache that cannot be written):
`InfrastructureError`. Neither is recorded as an item's result, so a rerun once the cause is
fixed resumes cleanly.
With `workers` > 1 that many items are in flight on threads (eval on a GPU, eval/parallel.py).
"""

from __future__ import annotations

import errno
import sqlite3
import threading
import traceback
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from solve_in_lean.errors import InputError, UnavailableError
from solve_in_lean.models.base import GenerationError
from solve_in_lean.progress import track
from solve_in_lean.records import ResultStore

INFRASTRUCTURE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG, errno.EIO}
"""Errors of the machine, not of an item: no space, quota, read-only, permission, file too large, I/O."""
_SQLITE_INFRASTRUCTURE = ("disk is full", "disk i/o error", "readonly database", "unable to open database")


class InfrastructureError(UnavailableError):
    """The batch cannot write (disk full, permissions, ...): it stops; a rerun resumes."""


def infrastructure_problem(error: BaseException) -> str | None:
    """What went wrong with the machine, in a few words, when `error` is not the item's fault."""
    if isinstance(error, OSError) and error.errno in INFRASTRUCTURE_ERRNOS:
        where = f" ({error.filename})" if error.filename else ""
        return f"{error.strerror or error}{where}"
    if isinstance(error, sqlite3.OperationalError) and any(s in str(error).lower() for s in _SQLITE_INFRASTRUCTURE):
        return f"the generation cache cannot be written: {error}"
    return None


@dataclass
class BatchSummary:
    total: int
    resumed: int
    """Items already in the output file from an earlier run (an error counts only without retry)."""
    done_now: int
    errors: int
    """Items of the batch whose latest record is an error (this run or an earlier one)."""
    records: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)
    """The latest record of each item of the batch, by id."""

    @property
    def finished(self) -> int:
        return len(self.records)


def open_store(output: str | Path) -> ResultStore:
    """The results file, or InputError saying which line is damaged and what to do."""
    try:
        return ResultStore(output)
    except ValueError as e:
        raise InputError(f"{e}: the results file is damaged there; delete or repair that line (the other "
                         "lines are kept and resumed) or write to another file") from None
    except OSError as e:
        raise InfrastructureError(f"{output}: cannot open the results file ({e.strerror})") from None


def run_batch(items: Iterable[dict[str, Any]], output: str | Path, fn: Callable[[dict[str, Any]], dict[str, Any]],
              *, workers: int = 1, description: str = "working", progress: bool | None = None,
              retry_errors: bool = False) -> BatchSummary:
    """Apply `fn` to every item (each with a unique "id") not yet in `output`, appending records."""
    items = list(items)
    store = open_store(output)

    def done(item: dict[str, Any]) -> bool:
        rec = store.records.get(str(item["id"]))
        return rec is not None and not (retry_errors and "error" in rec)

    todo = [it for it in items if not done(it)]
    lock = threading.Lock()
    broken: list[InfrastructureError] = []
    """Set at the first failed write: no later line may follow a torn one."""

    def one(item: dict[str, Any]) -> None:
        try:
            record = fn(item)
        except (GenerationError, UnavailableError):
            raise  # no model, no Lean, no GPU: every later item would fail the same way
        except Exception as e:  # noqa: BLE001 - classified: the machine's failures stop, the item's are recorded
            if (problem := infrastructure_problem(e)) is not None:
                raise _stop(problem, output) from e
            record = {"error": f"{type(e).__name__}: {e}", "traceback": traceback.format_exc(limit=8)}
        with lock:
            if broken:
                raise broken[0]
            try:
                store.add({**record, "id": item["id"]})
            except OSError as e:
                broken.append(_stop(infrastructure_problem(e) or str(e), output))
                raise broken[0] from e

    if workers <= 1:
        for item in track(todo, total=len(todo), description=description, enabled=progress):
            one(item)
    else:
        _run_threads(one, todo, workers, description, progress)
    records = {str(it["id"]): store.records[str(it["id"])] for it in items if str(it["id"]) in store.records}
    return BatchSummary(total=len(items), resumed=len(items) - len(todo), done_now=len(todo),
                        errors=sum("error" in r for r in records.values()), records=records)


def _run_threads(one: Callable[[dict[str, Any]], None], todo: list[dict[str, Any]], workers: int,
                 description: str, progress: bool | None) -> None:
    """`one` on every item, `workers` at a time; the first exception stops the batch (items not
    started stay undone; those running finish and are kept)."""
    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(one, it) for it in todo]
        bar = iter(track(range(len(futures)), total=len(futures), description=description, enabled=progress))
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for _ in finished:
                next(bar, None)
            failed = next((f for f in finished if f.exception() is not None), None)
            if failed is not None:
                for f in pending:
                    f.cancel()
                raise failed.exception()  # type: ignore[misc]


def _stop(problem: str, output: str | Path) -> InfrastructureError:
    return InfrastructureError(f"the batch stopped: {problem}. Finished items are kept in {output}; fix this "
                               "(free space, permissions) and run the same command again to resume")
