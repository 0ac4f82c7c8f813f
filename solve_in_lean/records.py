"""Append-only JSONL result files that a killed run can resume from without losing a line.

Each finished item is written as one line and flushed (and fsynced) before the next item
starts, so a kill loses at most the item in flight. A torn last line from a kill is ignored
on reading and overwritten on the next append.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterator


def read_jsonl(path: str | Path, *, strict: bool = False) -> Iterator[dict]:
    """Yield the objects of a JSONL file; skip a torn final line unless `strict`."""
    path = Path(path)
    with path.open("rb") as f:
        lines = f.read().split(b"\n")
    for i, raw in enumerate(lines):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            is_last = all(not rest.strip() for rest in lines[i + 1:])
            if is_last and not strict:
                return
            raise ValueError(f"{path}:{i + 1}: not a JSON object ({e.msg if hasattr(e, 'msg') else e})") from e
        if not isinstance(obj, dict):
            raise ValueError(f"{path}:{i + 1}: expected a JSON object, got {type(obj).__name__}")
        yield obj


class ResultStore:
    """Results of a batch keyed by item id; `done` tells which items a resumed run can skip."""

    def __init__(self, path: str | Path, key: str = "id") -> None:
        self.path = Path(path)
        self.key = key
        self.records: dict[str, dict] = {}
        if self.path.exists():
            self._repair_tail()
            for rec in read_jsonl(self.path):
                self.records[str(rec[key])] = rec
        else:
            self.path.parent.mkdir(parents=True, exist_ok=True)

    def _repair_tail(self) -> None:
        """Cut a torn last line left by a killed writer, so appends start on a fresh line."""
        data = self.path.read_bytes()
        if not data or data.endswith(b"\n"):
            return
        cut = data.rfind(b"\n") + 1
        tail = data[cut:]
        try:
            json.loads(tail)
            keep = data + b"\n"
        except (json.JSONDecodeError, UnicodeDecodeError):
            keep = data[:cut]
        with self.path.open("wb") as f:
            f.write(keep)
            f.flush()
            os.fsync(f.fileno())

    def __contains__(self, item_id: object) -> bool:
        return str(item_id) in self.records

    def __len__(self) -> int:
        return len(self.records)

    def add(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        with self.path.open("a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())
        self.records[str(record[self.key])] = record

    def values(self) -> list[dict]:
        return list(self.records.values())
