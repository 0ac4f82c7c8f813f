"""Every generation on disk, so an interrupted run resumes for free and a finished one replays.

SQLite in WAL mode with a busy timeout: several processes can share one cache file, and a
chunk of completions is committed in one transaction as soon as it is generated, so a killed
run keeps every chunk it finished. One row per (request key, sample index): a later request
for more samples of the same prompt reuses the ones already stored.

The key is the sha256 of the canonical JSON of backend, model, prompt and sampling params
including the seed, but without `n` (that is what the sample index is for). Backend options
such as dtype or device are not part of it. Completions with finish_reason "error" (a
malformed server reply, say) are returned but not stored, so a rerun tries them again.

In-flight claims: concurrent runs that share a cache would otherwise all generate the same
misses. Before generating, a process claims each missing request key (a `claims` row naming
pid, host, process start time and a random token per call), in the same transaction that
found it missing. A key claimed by a live owner is waited for; the owner writes the chunk's
completions and drops its claims in one transaction, and the waiter then reads them (hits).
Nobody waits while holding a claim (claim what is free, generate it, then wait for the rest),
so overlapping lists in any order cannot deadlock. A claim is taken over when its owner is
dead: on this host its pid is gone or a zombie or now another process (start time); from
another host, its lease is `claim_lease_s` old (the owner renews it every quarter of that).
A failed generation drops its claims, so a waiter generates itself; a waiter that sees no
awaited claim finish for `claim_wait_s` stops waiting and generates the rest itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import sqlite3
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Callable, Iterator, NamedTuple, Sequence

from ..progress import track
from .base import Completion, GenerationError, Generator, Prompt, SamplingParams, canonical_json, sample_seed

SCHEMA = """
CREATE TABLE IF NOT EXISTS requests (key TEXT PRIMARY KEY, request TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS completions (
    key TEXT NOT NULL, idx INTEGER NOT NULL, completion TEXT NOT NULL, created REAL NOT NULL,
    PRIMARY KEY (key, idx)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS claims (
    key TEXT PRIMARY KEY, token TEXT NOT NULL, pid INTEGER NOT NULL, host TEXT NOT NULL,
    started INTEGER, lease REAL NOT NULL) WITHOUT ROWID;
"""
LOOKUP_BATCH = 500  # keys per SELECT ... IN (...), under SQLite's bound-parameter limit
CLAIM_LEASE_S = 120.0
"""A claim from another host whose lease was not renewed for this long is dead."""
CLAIM_WAIT_S = 600.0
"""How long a waiter waits without any awaited claim finishing before it generates itself."""
POLL_S = (0.01, 0.25)
"""First and longest pause between looks at the claims waited for (growing by half each time): a
look is one small read, and a run waits once per stage, so a short pause adds little to each."""


class Claim(NamedTuple):
    """Who generates a request key right now."""

    token: str
    pid: int
    host: str
    started: int | None
    lease: float


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks since boot) of a process from /proc; None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = raw[raw.rindex(b")") + 2:].split()  # the name in (...) may hold spaces
    return fields[0].decode(), int(fields[19])


def _has_proc() -> bool:
    return Path("/proc/self/stat").exists()


def _alive(pid: int, started: int | None) -> bool:
    """Whether the process that wrote a claim on this host still runs: not gone, not a zombie
    (killed but not reaped yet), and not a later process that got the same pid."""
    if _has_proc():
        stat = _proc_stat(pid)
        return stat is not None and stat[0] not in ("Z", "X") and (started is None or stat[1] == started)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process, but it exists
    return True


def _claim_dead(claim: Claim, lease_s: float = CLAIM_LEASE_S) -> bool:
    """Whether a claim's owner is gone: its pid on this host, its lease from another host."""
    if claim.host == socket.gethostname():
        return not _alive(claim.pid, claim.started)
    return time.time() - claim.lease > lease_s


def _claims(db: sqlite3.Connection) -> list[tuple[str, Claim]]:
    """Every claim in the file (none in a file written before claims existed)."""
    if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'claims'").fetchone() is None:
        return []
    return [(key, Claim(*row)) for key, *row in
            db.execute("SELECT key, token, pid, host, started, lease FROM claims")]


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
                 replay: bool = False, busy_timeout_s: float = 60.0, claims: bool = True,
                 claim_wait_s: float = CLAIM_WAIT_S, claim_lease_s: float = CLAIM_LEASE_S) -> None:
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
        if claim_wait_s < 0 or claim_lease_s <= 0:
            raise ValueError(f"claim_wait_s must be >= 0 and claim_lease_s > 0, got {claim_wait_s} and {claim_lease_s}")
        self.backend, self.model = backend, model
        self.path = Path(path)
        self.chunk_size = chunk_size
        self.replay = replay
        self.claims = claims
        """Claim misses before generating them and wait for other processes' claims (module doc)."""
        self.claim_wait_s, self.claim_lease_s = claim_wait_s, claim_lease_s
        self.busy_timeout_s = busy_timeout_s
        self.hits = 0
        """Completions served from the file so far (including ones another process generated while
        this one waited for them)."""
        self.generated = 0
        """Completions produced by the inner generator so far."""
        self.waited_s = 0.0
        """Time spent waiting for other processes' claims."""
        self._announced = False
        """Waiting is said once per cache, not once per call (a run makes many calls)."""
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
        where: dict[str, list[int]] = {}
        """request key -> positions in `prompts` asking for it (duplicates are generated once)."""
        for i, key in enumerate(keys):
            where.setdefault(key, []).append(i)
        results: list[list[Completion | None]] = [[None] * params.n for _ in prompts]
        claim = self.claims and not self.replay
        token = secrets.token_hex(8)
        open_keys = list(where)
        while open_keys:
            stored, mine, theirs = self._take(open_keys, params.n, token if claim else None)
            self._place(stored, where, results)
            if mine and self.replay:
                count = sum(len(where[k]) for k in mine)
                raise GenerationError(f"{count} of {len(prompts)} prompts are not in the cache {self.path}, "
                                      "and replay mode generates nothing")
            if mine:
                self._generate_claimed(prompts, sampling, params, mine, where, results, token if claim else None)
            if not theirs:
                break
            if not self._announced:
                owners = sorted({f"pid {c.pid} on {c.host}" for c in theirs.values()})
                sys.stderr.write(f"lean-solve: waiting for {len(theirs)} requests that {', '.join(owners)} "
                                 f"{'is' if len(owners) == 1 else 'are'} generating into the cache {self.path} "
                                 f"(at most {self.claim_wait_s:g} s without progress), instead of generating "
                                 "them twice; said once, later waits are silent\n")
                self._announced = True
            if not self._wait(theirs):
                sys.stderr.write(f"lean-solve: no request waited for finished in {self.claim_wait_s:g} s; "
                                 f"generating the {len(theirs)} left here\n")
                claim = False
            open_keys = list(theirs)
        return results  # type: ignore[return-value]

    def _place(self, stored: dict[str, dict[int, Completion]], where: dict[str, list[int]],
               results: list[list[Completion | None]]) -> None:
        """Put stored completions into every empty slot asking for them; each one is a hit."""
        for key, have in stored.items():
            for pos in where[key]:
                row = results[pos]
                for j, completion in have.items():
                    if j < len(row) and row[j] is None:
                        row[j] = completion
                        self.hits += 1

    def _generate_claimed(self, prompts: Sequence[Prompt], sampling: dict, params: SamplingParams,
                          mine: list[str], where: dict[str, list[int]], results: list,
                          token: str | None) -> None:
        """Generate the keys this call claimed (or, with `token` None, just found missing), chunk
        by chunk; every chunk's write drops its claims, and a failure drops the rest."""
        todo: dict[tuple[int, int | None], list[tuple[str, list[int]]]] = {}
        """(samples wanted, seed) -> (request key, positions) to generate."""
        for key in mine:
            first = where[key][0]
            missing = [j for j, c in enumerate(results[first]) if c is None]
            # More samples of a prompt already sampled continue from a derived seed.
            seed = params.seed if missing[0] == 0 or params.seed is None else \
                sample_seed(params.seed, prompts[first], missing[0])
            todo.setdefault((len(missing), seed), []).append((key, where[key]))
        chunks = []
        for (n, seed), items in todo.items():
            chunks += [(n, seed, items[i:i + self.chunk_size]) for i in range(0, len(items), self.chunk_size)]
        with self._heartbeat(token):
            try:
                for n, seed, chunk in track(chunks, total=len(chunks), description=f"generating ({self.model})",
                                            enabled=None if len(chunks) > 1 else False):
                    self._fill(prompts, sampling, replace(params, n=n, seed=seed), chunk, results, token)
            except BaseException:
                if token is not None:
                    try:
                        self._release(token)
                    except sqlite3.Error as release_error:  # the first error is the one to report
                        sys.stderr.write(f"lean-solve: the claims in {self.path} could not be dropped "
                                         f"({release_error}); they lapse when this process ends\n")
                raise

    def _fill(self, prompts: Sequence[Prompt], sampling: dict, asked: SamplingParams,
              chunk: list[tuple[str, list[int]]], results: list, token: str | None) -> None:
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
        self._write(requests, rows, [key for key, _ in chunk], token)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction on the shared connection (BEGIN IMMEDIATE: no upgrade deadlock)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _take(self, keys: list[str], n: int, token: str | None
              ) -> tuple[dict[str, dict[int, Completion]], list[str], dict[str, Claim]]:
        """(stored completions, keys to generate here, keys another live owner generates).

        With a token, the lookup and the claims happen in one transaction, so a key finished
        between a lookup and a claim cannot be generated twice; without one, nothing is claimed.
        """
        def incomplete(key: str) -> bool:
            return len(stored.get(key, {}).keys() & range(n)) < n

        with self._lock:  # a read first: a call served from the file takes no write lock
            stored = self._select(keys)
        missing = [k for k in keys if incomplete(k)]
        if token is None or not missing:
            return stored, missing, {}
        with self._transaction() as db:
            for key, have in self._select(missing).items():  # what landed since the read
                stored.setdefault(key, {}).update(have)
            missing = [k for k in missing if incomplete(k)]
            held = self._claims_of(missing)
            theirs = {k: c for k, c in held.items() if not self._dead(c)}
            mine = [k for k in missing if k not in theirs]
            now = time.time()
            pid, host, started = os.getpid(), socket.gethostname(), self._start_time()
            db.executemany("INSERT OR REPLACE INTO claims VALUES (?, ?, ?, ?, ?, ?)",
                           [(k, token, pid, host, started, now) for k in mine])
        return stored, mine, theirs

    def _wait(self, theirs: dict[str, Claim]) -> bool:
        """Sleep (backing off) until a claim waited for is dropped, changes hands or its owner
        died; False when none did within `claim_wait_s`."""
        start = time.monotonic()
        delay = POLL_S[0]
        try:
            while time.monotonic() - start < self.claim_wait_s:
                time.sleep(min(delay, max(0.0, self.claim_wait_s - (time.monotonic() - start))))
                delay = min(delay * 1.5, POLL_S[1])
                with self._lock:
                    now_held = self._claims_of(list(theirs))
                if any(k not in now_held or now_held[k].token != c.token or self._dead(now_held[k])
                       for k, c in theirs.items()):
                    return True
            return False
        finally:
            self.waited_s += time.monotonic() - start

    def _dead(self, claim: Claim) -> bool:
        return _claim_dead(claim, self.claim_lease_s)

    @staticmethod
    def _start_time() -> int | None:
        stat = _proc_stat(os.getpid()) if _has_proc() else None
        return stat[1] if stat else None

    def _claims_of(self, keys: list[str]) -> dict[str, Claim]:
        """The claims on `keys` (caller holds `_lock`)."""
        held: dict[str, Claim] = {}
        for i in range(0, len(keys), LOOKUP_BATCH):
            part = keys[i:i + LOOKUP_BATCH]
            for key, *row in self._db.execute(
                    "SELECT key, token, pid, host, started, lease FROM claims "
                    f"WHERE key IN ({','.join('?' * len(part))})", part):
                held[key] = Claim(*row)
        return held

    def _release(self, token: str) -> None:
        with self._transaction() as db:
            db.execute("DELETE FROM claims WHERE token = ?", (token,))

    @contextmanager
    def _heartbeat(self, token: str | None) -> Iterator[None]:
        """Renew this call's claims every quarter lease while the block runs, on a connection of
        its own, so waiters on other hosts see the owner is alive however long a chunk takes."""
        if token is None:
            yield
            return
        stop = threading.Event()

        def beat() -> None:
            db = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
            try:
                while not stop.wait(self.claim_lease_s / 4):
                    try:
                        db.execute("UPDATE claims SET lease = ? WHERE token = ?", (time.time(), token))
                    except sqlite3.OperationalError as e:
                        # a busy or full file: the next beat retries; a lease spans four beats
                        sys.stderr.write(f"lean-solve: could not renew claims in {self.path}: {e}\n")
            finally:
                db.close()

        thread = threading.Thread(target=beat, daemon=True, name=f"cache-claims {token}")
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()

    def _select(self, keys: list[str]) -> dict[str, dict[int, Completion]]:
        """Stored completions of `keys` (caller holds `_lock`)."""
        found: dict[str, dict[int, Completion]] = {}
        ordered = sorted(keys)
        for i in range(0, len(ordered), LOOKUP_BATCH):
            part = ordered[i:i + LOOKUP_BATCH]
            marks = ",".join("?" * len(part))
            for key, idx, blob in self._db.execute(
                    f"SELECT key, idx, completion FROM completions WHERE key IN ({marks})", part):
                completion = Completion.from_dict(json.loads(blob))
                completion.cached = True
                found.setdefault(key, {})[idx] = completion
        return found

    def _write(self, requests: list[tuple[str, str]], rows: list[tuple], done: list[str],
               token: str | None) -> None:
        """One transaction per chunk: its rows land and its claims go together, so a waiter that
        sees a claim gone finds the rows. The first writer of a (key, index) wins."""
        with self._transaction() as db:
            db.executemany("INSERT OR IGNORE INTO requests VALUES (?, ?)", requests)
            db.executemany("INSERT OR IGNORE INTO completions VALUES (?, ?, ?, ?)", rows)
            if token is not None:
                db.executemany("DELETE FROM claims WHERE key = ? AND token = ?", [(k, token) for k in done])

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
    """What a cache file holds: its size, requests and completions per backend:model, the
    oldest and newest completion (Unix times), and the claims: requests some run is generating
    now (`in_flight`) and claims whose owner died (`dead`: taken over when next asked for)."""
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
        claims = _claims(db)
        dead = sum(_claim_dead(claim) for _, claim in claims)
    finally:
        db.close()
    return {"path": str(path), "bytes": path.stat().st_size, "models": models,
            "requests": sum(m["requests"] for m in models.values()),
            "completions": sum(m["completions"] for m in models.values()), "oldest": oldest, "newest": newest,
            "claims": {"in_flight": len(claims) - dead, "dead": dead}}


def prune_cache(path: str | Path, *, older_than_s: float | None = None, model: str | None = None) -> int:
    """Delete completions created more than `older_than_s` ago and/or of `model` ("backend:model"
    or just the model), then requests left without completions and claims whose owner died;
    compacts the file. Returns the number of completions deleted."""
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
        db.executemany("DELETE FROM claims WHERE key = ? AND token = ?",  # a live claim stays
                       [(key, claim.token) for key, claim in _claims(db) if _claim_dead(claim)])
        db.execute("COMMIT")
        db.execute("VACUUM")
    finally:
        db.close()
    return deleted
