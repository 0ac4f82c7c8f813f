"""Shared code of the backends that run one `lean --json --stdin` process per check."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from abc import abstractmethod
from typing import Any, NamedTuple

from solve_in_lean.lean import lifecycle
from solve_in_lean.lean.base import CheckResult, LeanChecker, Message, default_workers
from solve_in_lean.lean.process import RunResult, discard, run_limited, spawn

_MEMORY_SIGNS = re.compile(r"out of memory|failed to create thread|std::bad_alloc|memory exhausted|"
                           r"cannot allocate memory", re.IGNORECASE)


def mentions_memory(text: str) -> bool:
    """Lean's own words for running out of memory (an address-space cap makes it abort with
    one of these rather than be killed)."""
    return bool(_MEMORY_SIGNS.search(text))


def join_header(header: str | None, code: str) -> tuple[str, int]:
    """The file Lean sees, and how many lines come before `code` in it."""
    if not header:
        return code, 0
    from solve_in_lean.lean.source import line_count

    sep = "" if header.endswith("\n") else "\n"
    return header + sep + code, line_count(header)


def interpret(run: RunResult, code: str, header_lines: int, timeout_s: float, memory_mb: int | None,
              max_output_bytes: int) -> CheckResult:
    """Decide the status of a finished Lean process and collect what it reported."""
    from solve_in_lean.lean.messages import axioms_from_messages, eval_outputs, parse_json_lines, uses_sorry

    messages, stray = parse_json_lines(run.stdout, header_lines=header_lines)
    axioms = axioms_from_messages(messages)
    result = CheckResult(status="ok", messages=messages, axioms=axioms,
                         evals=eval_outputs(code, messages), sorry=uses_sorry(messages, axioms))
    if run.timed_out:
        result.status = "timeout"
        result.detail = f"Lean did not finish within {timeout_s:g} s; the process was killed"
    elif run.output_capped:
        result.status = "output_limit"
        result.detail = f"Lean printed more than {max_output_bytes:,} bytes; the process was killed"
    elif _MEMORY_SIGNS.search(run.stderr) or (run.returncode not in (0, 1) and _MEMORY_SIGNS.search(run.stdout)):
        result.status = "memory"
        result.detail = f"Lean ran out of memory under the cap of {memory_mb} MB: {_first_line(run.stderr)}"
    elif run.returncode not in (0, 1):
        how = run.signal_name or f"exit status {run.returncode}"
        result.status = "crashed"
        result.detail = f"Lean crashed ({how}): {_first_line(run.stderr) or 'no error output'}"
    elif run.returncode == 1 and not result.errors:
        result.status = "crashed"
        result.detail = f"Lean failed without reporting an error: {_first_line(run.stderr or ' '.join(stray))}"
    elif result.errors:
        result.status = "error"
    if stray and result.completed:
        # e.g. output an `#eval` wrote straight to stdout: keep it visible, never drop it
        result.messages.append(Message("information", 1, 0, "\n".join(stray)))
    return result


def _first_line(text: str) -> str:
    lines = [ln.strip() for ln in text.strip().splitlines() if ln.strip()]
    return lines[0][:300] if lines else ""


class ProcessChecker(LeanChecker):
    """A backend that starts a fresh Lean process for every check.

    Lean's thread count follows how many checks run at once: the machine's cores divided
    among the Lean processes in flight (`lean_threads` fixes it instead). Measured on 2
    cores: one check alone is ~9% faster with 2 threads than with 1, while two checks side by
    side do 1.9x the work of one with 1 thread each but only 1.5x with Lean's default pool.
    """

    def __init__(self, *, lean_threads: int | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.lean_threads = lean_threads
        self._in_flight = 0
        self._flight_lock = threading.Lock()
        self._ready: dict[tuple[int, int], _Ready] = {}
        """Lean processes started ahead (`prestart`), by (process, thread) that started each: a
        process forked from this one never feeds or kills one of them."""
        self._pool: list[_Ready] = []
        """Leans started ahead by the refill thread (`warm`), for any thread's next check."""
        self._pool_size = 0
        self._pool_out = 0
        """Leans taken from the pool whose checks have not ended: they count against its size."""
        self._pool_wake = threading.Condition(self._flight_lock)
        self._refiller: threading.Thread | None = None
        self._closing = False

    @abstractmethod
    def command(self, threads: int) -> list[str]:
        """The argv that runs Lean on stdin with JSON messages (see `lean_args`)."""

    @staticmethod
    def lean_args(threads: int) -> list[str]:
        return [f"-j{threads}", "--json", "--stdin"]

    def _threads(self) -> int:
        if self.lean_threads:
            return self.lean_threads
        return max(1, default_workers() // max(1, self._in_flight))

    def cwd(self) -> str | None:
        return None

    def env(self) -> dict[str, str] | None:
        return None

    def prestart(self) -> None:
        """Start this thread's next Lean now, waiting on its stdin. It reads nothing until that
        check writes the text verify approved, and the launcher ties its life to this thread (the
        one that will feed it). Lean's start-up is most of a small check, so the caller's work
        meanwhile (reading, lexing and auditing the file) runs beside it on a free core. It
        counts as a check in flight from now on, so its thread count is the one its check would
        get. Where no process can start (no descriptors or processes left), none is: the check
        then meets the same failure and reports it as its result."""
        with self._flight_lock:
            if _here() in self._ready:  # only this thread adds its own entry
                return
        if (pooled := self._take_pooled()) is not None:  # warm: one started by the pool's thread
            with self._flight_lock:
                self._ready[_here()] = pooled
            return
        with self._flight_lock:
            self._in_flight += 1
            threads = self._threads()
        try:
            ready = self._start(threads)
        except BaseException as e:
            self._landed()
            if isinstance(e, OSError):
                return
            raise
        with self._flight_lock:
            self._ready[_here()] = ready

    def cancel_prestart(self) -> None:
        with self._flight_lock:
            ready = self._ready.pop(_here(), None)
        if ready is not None:
            ready.discard()
            self._landed(ready)

    def warm(self, size: int) -> None:
        """Keep `size` Leans started ahead in a pool that any thread's check takes from (the
        check server, solve_in_lean/check_server: its checks then skip Lean's start-up, most of a
        small check). One long-lived thread starts them, and the next once a taken one's check ends:
        the launcher ties a Lean's life to the thread that started it (PR_SET_PDEATHSIG), so a
        short-lived request thread must not, and a Lean taken from the pool outlives the thread
        that fed it. Each gets the thread count `size` checks side by side would. `close` stops
        the thread and kills the pool."""
        with self._flight_lock:
            if self._refiller is not None or self._closing:
                return
            self._pool_size = max(1, size)
            self._refiller = threading.Thread(target=self._refill, name="lean-pool", daemon=True)
        self._refiller.start()

    def _refill(self) -> None:
        threads = self.lean_threads or max(1, default_workers() // self._pool_size)
        while True:
            with self._pool_wake:
                while not self._closing and len(self._pool) + self._pool_out >= self._pool_size:
                    self._pool_wake.wait()
                if self._closing:
                    return
            try:
                ready = self._start(threads)._replace(pooled=True)
            except lifecycle.Interrupted:  # shutting down: start nothing more
                return
            except OSError:  # no scratch directory or process now: checks start their own meanwhile
                time.sleep(1.0)
                continue
            with self._pool_wake:
                if not self._closing:
                    self._pool.append(ready)
                    continue
            ready.discard()
            return

    def _take_pooled(self) -> _Ready | None:
        """A live Lean from the pool, counted in flight from now, or None (no pool, or empty)."""
        dead = []
        taken = None
        with self._pool_wake:
            while self._pool and taken is None:
                ready = self._pool.pop(0)
                if ready.proc is not None and ready.proc.poll() is None:
                    taken = ready
                    self._in_flight += 1
                    self._pool_out += 1
                else:
                    dead.append(ready)
                    self._pool_wake.notify()
        for ready in dead:
            ready.discard()
        return taken

    @property
    def pooled(self) -> int:
        """Leans waiting in the pool now (the check server's status and bench wait on it)."""
        with self._flight_lock:
            return len(self._pool)

    @property
    def pool_size(self) -> int:
        """How many Leans `warm` keeps started ahead (0: not warm)."""
        return self._pool_size

    def close(self) -> None:
        with self._pool_wake:
            self._closing = True
            self._pool_wake.notify_all()
            refiller = self._refiller
        if refiller is not None and refiller is not threading.current_thread():
            refiller.join(timeout=30)
        with self._flight_lock:
            ready = [r for key, r in self._ready.items() if key[0] == os.getpid()]  # counted in flight
            pool = self._pool
            self._ready, self._pool = {}, []
        for r in ready:
            r.discard()
            self._landed(r)
        for r in pool:
            r.discard()
        super().close()

    def _landed(self, ready: _Ready | None = None) -> None:
        """A check in flight ended (or its Lean was dropped unfed). One taken from the pool makes
        room for the next only now, so a refill's start-up never competes with the check it
        serves for the cores."""
        with self._pool_wake:
            self._in_flight -= 1
            if ready is not None and ready.pooled:
                self._pool_out -= 1
                self._pool_wake.notify()

    def _plan(self, threads: int) -> _Ready:
        """A Lean run not started yet, in a scratch directory of its own. `-i`: Lean writes its own
        list of the declarations it added (an .ilean), which the verifier audits beside the ones it
        read in the text."""
        scratch = tempfile.mkdtemp(prefix="lean-solve-", dir=_scratch_root())
        return _Ready(threads, [*self.command(threads), "-i", _ilean(scratch)], None, scratch)

    def _start(self, threads: int) -> _Ready:
        """A Lean run started now, waiting on its stdin (`prestart`, `warm`); its scratch directory
        is removed again when no process could start."""
        plan = self._plan(threads)
        try:
            proc = spawn(plan.cmd, memory_mb=self.memory_mb, cwd=self.cwd(), env=self.env())
        except BaseException:
            shutil.rmtree(plan.scratch, ignore_errors=True)
            raise
        return plan._replace(proc=proc)

    def _check(self, code: str, header: str | None, timeout_s: float) -> CheckResult:
        text, header_lines = join_header(header, code)
        with self._flight_lock:
            ready = self._ready.pop(_here(), None)  # already counted in flight
        if ready is None:
            ready = self._take_pooled()
        if ready is None:
            with self._flight_lock:
                self._in_flight += 1
                threads = self._threads()
            try:
                ready = self._plan(threads)
            except BaseException:
                self._landed()
                raise
        try:
            try:
                run = run_limited(ready.cmd, stdin_text=text, timeout_s=timeout_s, memory_mb=self.memory_mb,
                                  max_output_bytes=self.max_output_bytes, cwd=self.cwd(), env=self.env(),
                                  proc=ready.proc)
            finally:
                self._landed(ready)
            result = interpret(run, code, header_lines, timeout_s, self.memory_mb, self.max_output_bytes)
            ilean = _ilean(ready.scratch)
            if result.completed and os.path.isfile(ilean):
                from solve_in_lean.lean.messages import declarations_from_ilean

                with open(ilean, encoding="utf-8") as f:
                    result.declarations = declarations_from_ilean(f.read(), header_lines)
        finally:
            shutil.rmtree(ready.scratch, ignore_errors=True)
        result.lean_version = self.lean_version
        return result


@functools.lru_cache(maxsize=1)
def _scratch_root() -> str | None:
    """Where each check's scratch directory goes: $TMPDIR when the user set one, else /dev/shm
    when it is a writable memory file system, else the system's temporary directory. Making and
    removing a directory on a disk file system cost about 0.7 ms of a 50 ms check here, in
    memory 0.05 ms. mkdtemp makes it private (mode 700, unguessable name) in either place."""
    if "TMPDIR" not in os.environ and os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK | os.X_OK):
        return "/dev/shm"
    return None


def _here() -> tuple[int, int]:
    return os.getpid(), threading.get_ident()


def _ilean(scratch: str) -> str:
    return os.path.join(scratch, "check.ilean")


class _Ready(NamedTuple):
    """A Lean run: its thread count, argv, process (None until started: `prestart` starts it
    ahead of its check, else `run_limited` does) and the scratch directory its .ilean goes to."""

    threads: int
    cmd: list[str]
    proc: subprocess.Popen | None
    scratch: str
    pooled: bool = False
    """Started by the pool's thread (`warm`)."""

    def discard(self) -> None:
        """Kill it unfed and remove its directory (only started runs are kept aside)."""
        if self.proc is not None:
            discard(self.proc)
        shutil.rmtree(self.scratch, ignore_errors=True)
