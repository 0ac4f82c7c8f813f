"""Run one Lean process with a hard timeout, a memory cap and an output cap.

The process gets its own process group, so a timeout kills Lean and anything it started
(`lake env lean` forks), and is registered with `lifecycle`, so it dies with lean-solve too.
Input goes through stdin: no temporary files to leave behind. Lean reads all of its input
before it does anything, so a process can be started (`spawn`) before its text is approved and
fed later (`run_limited(..., proc=)`): nothing reaches it until then.
"""

from __future__ import annotations

import math
import os
import select
import signal
import subprocess
import threading
import time
from dataclasses import dataclass

from solve_in_lean.lean import lifecycle


@dataclass
class RunResult:
    returncode: int | None
    stdout: str
    stderr: str
    elapsed_s: float
    timed_out: bool = False
    output_capped: bool = False

    @property
    def signal_name(self) -> str | None:
        if self.returncode is not None and self.returncode < 0:
            try:
                return signal.Signals(-self.returncode).name
            except ValueError:
                return f"signal {-self.returncode}"
        return None


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        return  # already gone: nothing left to kill


def spawn(cmd: list[str], *, memory_mb: int | None, cwd: str | None = None,
          env: dict[str, str] | None = None) -> subprocess.Popen:
    """Start `cmd` in its own process group, tracked by `lifecycle`, with pipes for stdin,
    stdout and stderr; `run_limited(..., proc=)` feeds and reaps it. Started ahead of time, Lean
    (which reads all of stdin before it does anything) spends its start-up while the caller still
    prepares the text; the caller writes nothing it has not approved, or kills it (`discard`).

    Raises lifecycle.Interrupted instead of starting it once lean-solve is shutting down.
    """
    if lifecycle.stopping():
        raise lifecycle.Interrupted("lean-solve is shutting down")
    how = lifecycle.launch(memory_mb)
    proc = subprocess.Popen(how.prefix + cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, cwd=cwd, env=env, start_new_session=True,
                            pass_fds=how.pass_fds, preexec_fn=how.preexec_fn)
    try:
        lifecycle.track(proc)
    except BaseException:
        discard(proc)
        raise
    return proc


def discard(proc: subprocess.Popen) -> None:
    """Kill a process from `spawn` that will not be used, reap it and close its pipes."""
    _kill_group(proc)
    proc.wait()
    lifecycle.untrack(proc)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def _wait(proc: subprocess.Popen, timeout_s: float) -> bool:
    """Reap `proc` if it exits within `timeout_s`; True if it did. `Popen.wait(timeout)` polls in
    sleeps that double from 1 ms, so it returns 1-3 ms after Lean's exit, each check; a pidfd
    (Linux) wakes at the exit itself."""
    if proc.poll() is not None:
        return True
    try:
        fd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # no pidfd here: Popen's own polling wait
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return False
        return True
    try:
        poller = select.poll()  # not select.select: a pidfd may be numbered above FD_SETSIZE
        poller.register(fd, select.POLLIN)
        if not poller.poll(math.ceil(timeout_s * 1000)):
            return False
    finally:
        os.close(fd)
    proc.wait()  # it has exited: this only reaps it
    return True


def run_limited(cmd: list[str], *, stdin_text: str, timeout_s: float, memory_mb: int | None,
                max_output_bytes: int, cwd: str | None = None,
                env: dict[str, str] | None = None, proc: subprocess.Popen | None = None) -> RunResult:
    """Run `cmd`, feeding `stdin_text`; kill the whole process group on timeout or output cap.
    `proc`: the process `spawn` already started for `cmd` (the timeout counts from now).

    Raises lifecycle.Interrupted instead of starting Lean, or instead of returning the result
    of a Lean it killed, once lean-solve is shutting down on a signal.
    """
    if proc is None:
        proc = spawn(cmd, memory_mb=memory_mb, cwd=cwd, env=env)
    start = time.perf_counter()
    out_chunks: list[bytes] = []
    err_chunks: list[bytes] = []
    capped = threading.Event()

    def feed() -> None:
        assert proc.stdin is not None
        try:
            proc.stdin.write(stdin_text.encode("utf-8"))
            proc.stdin.close()
        except BrokenPipeError:
            return  # Lean exited (or was killed) before reading everything; its status says why

    def drain(stream, chunks: list[bytes], cap: int) -> None:
        total = 0
        while block := stream.read(65536):
            total += len(block)
            if total > cap:
                capped.set()
                _kill_group(proc)
                break
            chunks.append(block)
        stream.close()

    threads = [threading.Thread(target=feed, daemon=True),
               threading.Thread(target=drain, args=(proc.stdout, out_chunks, max_output_bytes), daemon=True),
               threading.Thread(target=drain, args=(proc.stderr, err_chunks, max_output_bytes), daemon=True)]
    # Waiting on the reader threads (not Popen.wait with a timeout, which polls in up to 50 ms
    # steps) returns as soon as Lean closes its output.
    deadline = start + timeout_s
    timed_out = False
    for t in threads:
        t.start()
    try:
        for t in threads[1:]:
            t.join(timeout=max(0.0, deadline - time.perf_counter()))
        timed_out = not _wait(proc, max(0.0, deadline - time.perf_counter()))
    finally:
        if proc.poll() is None:
            _kill_group(proc)
            proc.wait()
        lifecycle.untrack(proc)
    for t in threads:
        t.join(timeout=5)
    if proc.returncode is not None and proc.returncode < 0 and lifecycle.stopping():
        raise lifecycle.Interrupted("lean-solve is shutting down; Lean was stopped")
    return RunResult(
        returncode=proc.returncode,
        stdout=b"".join(out_chunks).decode("utf-8", errors="replace"),
        stderr=b"".join(err_chunks).decode("utf-8", errors="replace"),
        elapsed_s=time.perf_counter() - start,
        timed_out=timed_out,
        output_capped=capped.is_set(),
    )
