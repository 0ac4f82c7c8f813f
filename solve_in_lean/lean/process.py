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
    deadline = start + timeout_s
    try:
        pumped = _pump(proc, stdin_text.encode("utf-8"), deadline, max_output_bytes)
        timed_out = not _wait(proc, max(0.0, deadline - time.perf_counter()))
    finally:
        if proc.poll() is None:
            _kill_group(proc)
            proc.wait()
        lifecycle.untrack(proc)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None and not stream.closed:
                stream.close()
    if proc.returncode is not None and proc.returncode < 0 and lifecycle.stopping():
        raise lifecycle.Interrupted("lean-solve is shutting down; Lean was stopped")
    return RunResult(
        returncode=proc.returncode,
        stdout=b"".join(pumped.out).decode("utf-8", errors="replace"),
        stderr=b"".join(pumped.err).decode("utf-8", errors="replace"),
        elapsed_s=time.perf_counter() - start,
        timed_out=timed_out,
        output_capped=pumped.capped,
    )


@dataclass
class _Pumped:
    out: list[bytes]
    err: list[bytes]
    capped: bool = False


def _pump(proc: subprocess.Popen, data: bytes, deadline: float, cap: int) -> _Pumped:
    """Write `data` to the process's stdin and read its stdout and stderr until both close, in this
    thread (one poll loop, as Popen.communicate does, but with an output cap: past `cap` bytes on
    either stream the group is killed). Returns at the deadline with what came so far. Threads here
    cost about 0.6 ms of CPU per check, a tenth of the Python work of a small one."""
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    got = _Pumped([], [])
    sinks = {proc.stdout.fileno(): got.out, proc.stderr.fileno(): got.err}
    totals = dict.fromkeys(sinks, 0)
    poller = select.poll()
    for fd in sinks:
        poller.register(fd, select.POLLIN)
    stdin_fd, view, written = proc.stdin.fileno(), memoryview(data), 0
    if data:
        os.set_blocking(stdin_fd, False)  # write what the pipe takes now; poll says when it takes more
        poller.register(stdin_fd, select.POLLOUT)
    else:
        proc.stdin.close()
    open_fds = set(sinks) | ({stdin_fd} if data else set())
    while sinks.keys() & open_fds:
        remaining = deadline - time.perf_counter()
        if remaining <= 0:
            return got
        for fd, _event in poller.poll(math.ceil(remaining * 1000)):
            if fd == stdin_fd:
                try:
                    written += os.write(fd, view[written:written + 65536])
                except BlockingIOError:
                    continue  # the pipe filled meanwhile: poll again
                except BrokenPipeError:
                    written = len(view)  # Lean exited (or was killed) before reading it all; its status says why
                if written >= len(view):
                    poller.unregister(fd)
                    open_fds.discard(fd)
                    proc.stdin.close()
                continue
            block = os.read(fd, 65536)
            if not block:
                poller.unregister(fd)
                open_fds.discard(fd)
                continue
            totals[fd] += len(block)
            if totals[fd] > cap:
                got.capped = True
                _kill_group(proc)
                return got
            sinks[fd].append(block)
    return got
