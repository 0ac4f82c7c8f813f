"""A run directory: everything needed to reproduce an evaluation, its records and its metrics.

    RUN_DIR/config.json    what was run: task, data file and its hash, the items, seed, model
                           config, sampling, task options, Lean header and backend; plus the
                           environment it ran in (versions, start time), which is not compared
    RUN_DIR/records.jsonl  one record per finished item, appended and fsynced (batch.run_batch)
    RUN_DIR/metrics.json   the task's metrics over the records, rewritten at the end of each run

Running again into the same directory resumes it: finished items are skipped. A directory
whose config differs (other data, seed, model, options...) is refused, so two runs never mix.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable

from solve_in_lean.batch import BatchSummary, run_batch
from solve_in_lean.errors import InputError
from solve_in_lean.eval.benchmarks import BENCHMARKS, load_benchmark
from solve_in_lean.eval.datasets import select, usable
from solve_in_lean.eval.tasks import NEEDS_LEAN, RUNNERS, TaskContext, TaskOptions, task_metrics
from solve_in_lean.problems import detect_format, file_sha256, load_items
from solve_in_lean.options import SAMPLED_TEMPERATURE
from solve_in_lean.records import read_jsonl
from solve_in_lean.runlock import RunLock

CONFIG, RECORDS, METRICS = "config.json", "records.jsonl", "metrics.json"
NOT_COMPARED = {("data",), ("model", "cache"), ("model", "cache_chunk_size"), ("model", "cache_claim_wait_s")}
"""Settings that do not change what a run produces: where the data file lies (its hash is
compared) and where generations are cached."""


class RunError(InputError):
    """The run directory cannot be used: another run's config, or not a run directory at all."""


def run_config(*, task: str, data: str | Path, data_sha256: str, data_format: str, split: str | None,
               limit: int | None, seed: int, item_ids: list[str], model: dict[str, Any],
               sampling: dict[str, Any], options: TaskOptions, header: str,
               lean: dict[str, Any] | None) -> dict[str, Any]:
    """The part of config.json that must match for a resume (JSON-ready)."""
    return {"task": task, "data": str(Path(data).resolve()), "data_sha256": data_sha256, "data_format": data_format,
            "split": split, "limit": limit, "seed": seed, "item_ids": list(item_ids), "model": model,
            "sampling": sampling, "options": options.to_dict(), "header": header, "lean": lean}


def environment(lean_version: str | None = None) -> dict[str, Any]:
    """What the run ran on: recorded for the reader, never compared."""
    from importlib.metadata import PackageNotFoundError, version

    def ver(name: str) -> str | None:
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    return {"lean_solve": ver("lean-solve"), "python": sys.version.split()[0], "platform": platform.platform(),
            "torch": ver("torch"), "transformers": ver("transformers"), "lean_version": lean_version,
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "argv": sys.argv}


def _differences(old: Any, new: Any, path: tuple[str, ...] = ()) -> list[str]:
    if path in NOT_COMPARED:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        return [d for key in sorted(old.keys() | new.keys())
                for d in _differences(old.get(key), new.get(key), path + (key,))]
    return [".".join(path)] if old != new else []


def _write_json(path: Path, obj: Any) -> None:
    """Write whole or not at all (a kill mid-write must not leave half a config)."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1, default=str)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


@dataclass
class Run:
    dir: Path
    config: dict[str, Any]
    environment: dict[str, Any]

    @property
    def name(self) -> str:
        return self.dir.name

    @property
    def task(self) -> str:
        return self.config["task"]

    @property
    def options(self) -> TaskOptions:
        return TaskOptions.from_dict(self.config["options"])

    def records(self) -> list[dict[str, Any]]:
        """Finished records of this run's items, in item order (a torn last line is ignored)."""
        path = self.dir / RECORDS
        if not path.exists():
            return []
        try:
            by_id = {str(r["id"]): r for r in read_jsonl(path)}
        except ValueError as e:
            raise RunError(f"{e}: the run's records file is damaged there; delete or repair that line (a "
                           "resumed run redoes that item)") from None
        return [by_id[i] for i in self.config["item_ids"] if i in by_id]

    def metrics(self) -> dict[str, Any]:
        """The task's metrics recomputed from the records (so a run in progress can be reported)."""
        return task_metrics(self.task, self.records(), self.options)


def open_run(run_dir: str | Path, config: dict[str, Any], env: dict[str, Any]) -> Run:
    """A new run in `run_dir`, or the run already there if its config matches; else RunError."""
    run_dir = Path(run_dir)
    path = run_dir / CONFIG
    if path.exists():
        old = load_run(run_dir)
        diff = _differences(old.config, config)
        if diff:
            raise RunError(f"{run_dir} holds a run with other settings ({', '.join(diff[:6])}"
                           f"{', ...' if len(diff) > 6 else ''}); choose another --out or delete it")
        return old
    if run_dir.exists() and any(run_dir.iterdir()):
        raise RunError(f"{run_dir} is not empty and holds no {CONFIG}; choose another --out")
    run_dir.mkdir(parents=True, exist_ok=True)
    _write_json(path, {"config": config, "environment": env})
    return Run(run_dir, config, env)


def load_run(run_dir: str | Path) -> Run:
    """The run in `run_dir`; RunError when there is none."""
    run_dir = Path(run_dir)
    path = run_dir / CONFIG
    if not path.is_file():
        raise RunError(f"{run_dir} is not a run directory (no {CONFIG})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return Run(run_dir, data["config"], data.get("environment", {}))
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise RunError(f"{path}: not a run config ({e})") from e


def _record_fn(task: str, ctx: TaskContext) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The task on one item, as a record with the item itself and the wall time."""
    runner = RUNNERS[task]

    def one(item: dict[str, Any]) -> dict[str, Any]:
        start = time.perf_counter()
        if item.get("question"):
            ctx.options.solve.check_problem(item["question"])  # too long: this item's error, the run goes on
        record = runner(item, ctx)
        return {"id": item["id"], "task": task, "dataset": item["dataset"], "item": item, **record,
                "seconds": round(time.perf_counter() - start, 3)}
    return one


def execute(run: Run, items: list[dict[str, Any]], ctx: TaskContext, *, progress: bool | None = None,
            retry_errors: bool = False, workers: int = 1) -> tuple[BatchSummary, dict[str, Any]]:
    """Run the task on every item not yet done, then write metrics.json; (summary, metrics).

    `workers` > 1 keeps that many items in flight, their model calls batched together
    (parallel.py): for GPU backends. Records are the same; only their order in the file changes.
    """
    if [it["id"] for it in items] != run.config["item_ids"]:
        raise RunError(f"the items given are not the items of the run in {run.dir}")
    if run.task in NEEDS_LEAN and ctx.checker is None:
        raise RunError(f"the {run.task} task needs a Lean checker")
    description = f"{run.task} {run.name}"
    if workers > 1:
        from solve_in_lean.eval.parallel import BatchingGenerator

        with BatchingGenerator(ctx.generator, workers) as batching:
            summary = run_batch(items, run.dir / RECORDS, _record_fn(run.task, replace(ctx, generator=batching)),
                                workers=workers, description=description, progress=progress,
                                retry_errors=retry_errors)
    else:
        summary = run_batch(items, run.dir / RECORDS, _record_fn(run.task, ctx), description=description,
                            progress=progress, retry_errors=retry_errors)
    metrics = run.metrics()
    _write_json(run.dir / METRICS, metrics)
    return summary, metrics



@dataclass
class Selection:
    """The items a run covers, and what identifies them: the file, its hash, format, limit, seed."""

    task: str
    data: Path
    sha256: str
    format: str
    split: str | None
    limit: int | None
    seed: int
    items: list[dict[str, Any]]
    unusable: int = 0
    """Items of the file the task cannot use (say, compute problems for the prove task)."""


def select_items(task: str, data: str | Path, *, fmt: str = "auto", split: str | None = None,
                 limit: int | None = None, seed: int = 0) -> Selection:
    """Load a data file, keep the items the task can use, and draw `limit` of them under `seed`."""
    loaded = load_benchmark(data, fmt, split=split) if fmt in BENCHMARKS else load_items(data, fmt, split=split)
    fit = usable(task, loaded, data)
    if fmt == "auto":
        fmt = detect_format(next(read_jsonl(data)))
    return Selection(task, Path(data), file_sha256(data), fmt, split, limit, seed, select(fit, limit, seed),
                     len(loaded) - len(fit))


def lean_headers(selection: Selection, header: str) -> list[str]:
    """The distinct Lean headers a run will elaborate under (an item's own, else the run's)."""
    if selection.task not in NEEDS_LEAN:
        return []
    found = [(it.get("formal") or {}).get("header") or header for it in selection.items]
    return list(dict.fromkeys(found))


def evaluate(run_dir: str | Path, selection: Selection, ctx: TaskContext, *, model: dict[str, Any],
             progress: bool | None = None, retry_errors: bool = False,
             workers: int = 1) -> tuple[Run, BatchSummary, dict[str, Any]]:
    """Open (or resume) the run of `selection` in `run_dir` and execute it, as its only writer
    (runlock.RunLock: a second process on the same directory stops with one sentence)."""
    checker = ctx.checker if selection.task in NEEDS_LEAN else None
    lean = None
    if checker is not None:
        lean = {"backend": checker.name, "allowed_axioms": sorted(ctx.policy.allowed_axioms),
                "allow_native": ctx.policy.allow_native}
    config = run_config(task=selection.task, data=selection.data, data_sha256=selection.sha256,
                        data_format=selection.format, split=selection.split, limit=selection.limit,
                        seed=selection.seed, item_ids=[it["id"] for it in selection.items], model=model,
                        sampling={**ctx.params.to_dict(),
                                  "several_samples_temperature": SAMPLED_TEMPERATURE if ctx.auto_temperature else None},
                        options=ctx.options,
                        header=ctx.header if checker is not None else "", lean=lean)
    env = {**environment(checker.lean_version if checker is not None else None), "workers": workers}
    Path(run_dir).parent.mkdir(parents=True, exist_ok=True)  # the lock file lives beside the run directory
    with RunLock(run_dir):
        run = open_run(run_dir, config, env)
        summary, metrics = execute(run, selection.items, ctx, progress=progress, retry_errors=retry_errors,
                                   workers=workers)
    return run, summary, metrics
