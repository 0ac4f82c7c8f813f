"""Every generation on disk, so an interrupted run resumes for free and a finished one replays.

SQLite in WAL mode with a busy timeout: several processes can share one cache file, and a
chunk of completions is committed in one transaction as soon as it is generated, so a killed
run keeps every chunk it finished. One row per (request key, sample index): a later request
for more samples of the same prompt reuses the ones already stored.

The key is the sha256 of the canonical JSON of backend, model, prompt and sampling params
including the seed, but without `n` (that is what the sample index is for). Backend options
such as dtype or device are not part of it. Completions with finish_reason "error" (a
malformed server reply, say) are returned but not stored, so a rerun tries them again.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable, Sequence

from ..progress import track
from .base import Completion, GenerationError, Generator, Prompt, SamplingParams, canonical_json, sample_seed

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (key TEXT PRIMARY KEY, request TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS completions (
    key TEXT NOT NULL, idx INTEGER NOT NULL, completion TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (key, idx)) WITHOUT ROWID;
"""
LOOKUP_BATCH = 500  # keys per SELECT ... IN (...), under SQLite's bound-parameter limit


def request_material(backend: str, model: str, prompt: Prompt, params: SamplingParams | dict) -> dict:
    """What identifies a generation request, minus the number of samples."""
    if isinstance(params, SamplingParams):
        params = {k: v for k, v in params.to_dict().items() if k != "n"}
    return {"backend": backend, "model": model, "prompt": prompt, "params": params}


def request_key(backend: str, model: str, prompt: Prompt, params: SamplingParams | dict) -> str:
    """`params` may be given as the dict `request_material` makes, to build it once per call."""
    material = request_material(backend, model, prompt, params)
    return hashlib.sha256(canonical_json(material).encode()).hexdigest()


class CachedGenerator(Generator):
    """Wraps any generator; generates only what the cache file does not hold yet.

    `inner` may be a zero-argument factory (with `backend` and `model` given), so a run whose
    completions are all cached never loads the model. `replay=True` refuses to generate at all:
    a miss raises, which proves a rerun is an exact replay. `chunk_size` prompts are generated
    and committed at a time: smaller loses less to a kill, larger batches better.
    """

    def __init__(self, inner: Generator | Callable[[], Generator], path: str | Path, *,
                 backend: str | None = None, model: str | None = None, chunk_size: int = 64,
                 replay: bool = False, busy_timeout_s: float = 60.0) -> None:
        if isinstance(inner, Generator):
            self._inner: Generator | None = inner
            self._factory = None
            backend, model = backend or inner.backend, model or inner.model
        else:
            if not (backend and model):
                raise ValueError("a generator factory needs backend= and model= for the cache key")
            self._inner, self._factory = None, inner
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.backend, self.model = backend, model
        self.path = Path(path)
        self.chunk_size = chunk_size
        self.replay = replay
        self.hits = 0
        """Completions served from the file so far."""
        self.generated = 0
        """Completions produced by the inner generator so far."""
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=busy_timeout_s, isolation_level=None,
                                   check_same_thread=False)
        self._setup(busy_timeout_s)

    def _setup(self, busy_timeout_s: float) -> None:
        """Switch to WAL and create the tables, retrying while another process does the same.

        Until a new file is in WAL mode, two processes opening it at once can deadlock in
        rollback-journal locking; SQLite then answers "database is locked" at once instead of
        waiting (the busy timeout does not apply), so the setup is retried here.
        """
        deadline = time.monotonic() + busy_timeout_s
        delay = 0.005
        while True:
            try:
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._db.executescript(SCHEMA)
                return
            except sqlite3.OperationalError as e:
                if "locked" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.2)

    @property
    def inner(self) -> Generator:
        """The wrapped generator, built on first use when a factory was given."""
        if self._inner is None:
            self._inner = self._factory()
            if (self._inner.backend, self._inner.model) != (self.backend, self.model):
                raise GenerationError(
                    f"the cache was opened for {self.backend}:{self.model} but the factory built "
                    f"{self._inner.backend}:{self._inner.model}")
        return self._inner

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        sampling = request_material(self.backend, self.model, "", params)["params"]
        keys = [request_key(self.backend, self.model, p, sampling) for p in prompts]
        stored = self._lookup(set(keys))
        results: list[list[Completion | None]] = []
        todo: dict[tuple[int, int | None], dict[str, list[int]]] = {}
        """(samples wanted, seed) -> request key -> positions in `prompts` waiting for it."""
        for i, key in enumerate(keys):
            have = stored.get(key, {})
            row = [have.get(j) for j in range(params.n)]
            results.append(row)
            missing = [j for j, c in enumerate(row) if c is None]
            self.hits += params.n - len(missing)
            if missing:
                # More samples of a prompt already sampled continue from a derived seed.
                seed = params.seed if missing[0] == 0 or params.seed is None else \
                    sample_seed(params.seed, prompts[i], missing[0])
                todo.setdefault((len(missing), seed), {}).setdefault(key, []).append(i)
        if todo and self.replay:
            count = sum(len(v) for group in todo.values() for v in group.values())
            raise GenerationError(f"{count} of {len(prompts)} prompts are not in the cache {self.path}, "
                                  "and replay mode generates nothing")
        chunks = []
        for (n, seed), group in todo.items():
            items = list(group.items())
            chunks += [(n, seed, items[i:i + self.chunk_size]) for i in range(0, len(items), self.chunk_size)]
        for n, seed, chunk in track(chunks, total=len(chunks), description=f"generating ({self.model})",
                                    enabled=None if len(chunks) > 1 else False):
            self._fill(prompts, sampling, replace(params, n=n, seed=seed), chunk, results)
        return results  # type: ignore[return-value]

    def _fill(self, prompts: Sequence[Prompt], sampling: dict, asked: SamplingParams,
              chunk: list[tuple[str, list[int]]], results: list) -> None:
        """Generate one chunk, commit it, and put the new completions where they belong."""
        outputs = self.inner.generate([prompts[positions[0]] for _, positions in chunk], asked)
        if len(outputs) != len(chunk):
            raise GenerationError(f"{self.backend} returned {len(outputs)} results for {len(chunk)} prompts")
        rows, requests = [], []
        for (key, positions), new in zip(chunk, outputs):
            first = positions[0]
            slots = [j for j, c in enumerate(results[first]) if c is None]
            if len(new) != len(slots):
                raise GenerationError(f"{self.backend} returned {len(new)} samples, {len(slots)} were asked for")
            for j, completion in zip(slots, new):
                for pos in positions:
                    results[pos][j] = completion
                if completion.finish_reason != "error":
                    rows.append((key, j, json.dumps(completion.to_dict(), ensure_ascii=False), time.time()))
            material = request_material(self.backend, self.model, prompts[first], sampling)
            requests.append((key, canonical_json(material)))
            self.generated += len(new)
        self._write(requests, rows)

    def _lookup(self, keys: set[str]) -> dict[str, dict[int, Completion]]:
        found: dict[str, dict[int, Completion]] = {}
        ordered = sorted(keys)
        with self._lock:
            for i in range(0, len(ordered), LOOKUP_BATCH):
                part = ordered[i:i + LOOKUP_BATCH]
                marks = ",".join("?" * len(part))
                for key, idx, blob in self._db.execute(
                        f"SELECT key, idx, completion FROM completions WHERE key IN ({marks})", part):
                    completion = Completion.from_dict(json.loads(blob))
                    completion.cached = True
                    found.setdefault(key, {})[idx] = completion
        return found

    def _write(self, requests: list[tuple[str, str]], rows: list[tuple]) -> None:
        """One transaction per chunk; the first writer of a (key, index) wins."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR IGNORE INTO requests VALUES (?, ?)", requests)
                self._db.executemany("INSERT OR IGNORE INTO completions VALUES (?, ?, ?, ?)", rows)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def __len__(self) -> int:
        """Number of stored completions."""
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM completions").fetchone()[0]

    def close(self) -> None:
        if self._inner is not None:
            self._inner.close()
        with self._lock:
            self._db.close()


def cache_stats(path: str | Path) -> dict:
    """What a cache file holds: its size, requests and completions per backend:model, and the
    oldest and newest completion (Unix times)."""
    path = Path(path)
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        models: dict[str, dict[str, int]] = {}
        for request, count in db.execute("SELECT r.request, COUNT(c.idx) FROM requests r "
                                         "LEFT JOIN completions c ON c.key = r.key GROUP BY r.key"):
            material = json.loads(request)
            name = f"{material.get('backend')}:{material.get('model')}"
            entry = models.setdefault(name, {"requests": 0, "completions": 0})
            entry["requests"] += 1
            entry["completions"] += count
        oldest, newest = db.execute("SELECT MIN(created), MAX(created) FROM completions").fetchone()
    finally:
        db.close()
    return {"path": str(path), "bytes": path.stat().st_size, "models": models,
            "requests": sum(m["requests"] for m in models.values()),
            "completions": sum(m["completions"] for m in models.values()), "oldest": oldest, "newest": newest}


def prune_cache(path: str | Path, *, older_than_s: float | None = None, model: str | None = None) -> int:
    """Delete completions created more than `older_than_s` ago and/or of `model` ("backend:model"
    or just the model), then requests left without completions; compacts the file. Returns the
    number of completions deleted."""
    db = sqlite3.connect(path, timeout=60.0, isolation_level=None)
    try:
        db.execute("BEGIN IMMEDIATE")
        keys = None
        if model is not None:
            keys = [key for key, request in db.execute("SELECT key, request FROM requests")
                    if model in (f"{(m := json.loads(request)).get('backend')}:{m.get('model')}", m.get("model"))]
        where, args = [], []
        if older_than_s is not None:
            where.append("created < ?")
            args.append(time.time() - older_than_s)
        deleted = 0
        if keys is not None:
            for i in range(0, len(keys), LOOKUP_BATCH):
                part = keys[i:i + LOOKUP_BATCH]
                cond = " AND ".join([f"key IN ({','.join('?' * len(part))})", *where])
                deleted += db.execute(f"DELETE FROM completions WHERE {cond}", [*part, *args]).rowcount
        else:
            deleted = db.execute(f"DELETE FROM completions{' WHERE ' + ' AND '.join(where) if where else ''}",
                                 args).rowcount
        db.execute("DELETE FROM requests WHERE key NOT IN (SELECT DISTINCT key FROM completions)")
        db.execute("COMMIT")
        db.execute("VACUUM")
    finally:
        db.close()
    return deleted
