"""A resumable augmentation run: one log record per source problem, the new problems file built from it.

The log (`NEW.log.jsonl` beside `--output NEW.jsonl`) goes through the one batch runner
(batch.py), so a killed run resumes where it stopped; each record keeps the source id, the mode,
the certified new problems with their Lean evidence, and every dropped variant with its reason.
The new problems file is rewritten from the log at the end of every run: the certified problems
in source order, each question and statement once, none repeating the source set or an
evaluation split given to this run.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from solve_in_lean.augment.dedup import Seen
from solve_in_lean.batch import BatchSummary, run_batch
from solve_in_lean.errors import InputError

MODES = ("numbers", "rephrase", "harder", "from-lean")


def log_path(output: str | Path) -> Path:
    """Where the run's log lives: `new.jsonl` -> `new.log.jsonl`."""
    p = Path(output)
    return p.with_suffix(".log.jsonl") if p.suffix == ".jsonl" else p.with_name(p.name + ".log.jsonl")


@dataclass
class AugmentSummary:
    sources: int
    resumed: int
    kept: int
    dropped: dict[str, int] = field(default_factory=dict)
    """Reason -> variants dropped for it (Lean's verdict, a duplicate, a leak)."""
    skipped: dict[str, int] = field(default_factory=dict)
    """Reason -> source problems that could not be augmented at all."""
    errors: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"sources": self.sources, "resumed": self.resumed, "kept": self.kept, "dropped": self.dropped,
                "skipped": self.skipped, "errors": self.errors}


def run(items: list[dict[str, Any]], output: str | Path, augment_one: Callable[[dict[str, Any]], dict[str, Any]],
        *, config: dict[str, Any], seen: Seen, retry_errors: bool = False, progress: bool | None = None
        ) -> AugmentSummary:
    """Augment every item into the log (resuming it), then write the new problems file.

    `config` (mode, k, seed, ...) is stored in every record; a log made under another config is
    refused rather than mixed. `seen` holds the source set and the evaluation splits."""
    log = log_path(output)
    _check_config(log, config)

    summary = run_batch(items, log, lambda item: {**augment_one(item), "config": config},
                        description=f"augmenting ({config['mode']})", progress=progress, retry_errors=retry_errors)
    return _write(summary, output, seen)


def _check_config(log: Path, config: dict[str, Any]) -> None:
    if not log.is_file():
        return
    from solve_in_lean.batch import open_store

    for record in open_store(log).values():
        if "config" in record and record["config"] != config:
            raise InputError(f"{log}: this log was made with {json.dumps(record['config'], sort_keys=True)}, not "
                             f"{json.dumps(config, sort_keys=True)}; give another --output or delete the log")


def _write(summary: BatchSummary, output: str | Path, seen: Seen) -> AugmentSummary:
    """The new problems file from the log: in source order, each question and statement once, none in
    `seen` (checked here, at every run, so a rerun with another --exclude applies it to resumed items)."""
    out = AugmentSummary(sources=summary.total, resumed=summary.resumed, kept=0, errors=summary.errors)
    within = Seen()
    rows = []
    for record in summary.records.values():
        if "error" in record:
            continue
        if record.get("skipped"):
            out.skipped[record["skipped"]] = out.skipped.get(record["skipped"], 0) + 1
        for d in record["dropped"]:
            reason = _short(d["reason"])
            out.dropped[reason] = out.dropped.get(reason, 0) + 1
        for row in record["problems"]:
            clash = seen.clash(row) or within.clash(row)
            if clash is not None:
                reason = f"duplicate: {clash}"
                out.dropped[reason] = out.dropped.get(reason, 0) + 1
                continue
            within.add([row], "another new problem")
            rows.append(row)
    out.kept = len(rows)
    tmp = Path(f"{output}.tmp")
    tmp.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    os.replace(tmp, output)
    return out


def _short(reason: str, limit: int = 160) -> str:
    """A reason as the summary counts it: its first line, cut to `limit` characters."""
    line = reason.strip().splitlines()[0] if reason.strip() else reason
    return line if len(line) <= limit else line[:limit - 1] + "…"
