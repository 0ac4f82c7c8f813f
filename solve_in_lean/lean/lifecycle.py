"""No Lean process outlives lean-solve, however lean-solve ends.

Lean runs in its own session (so a timeout can kill its whole process group), which also means
nothing kills it when lean-solve dies. Three layers close that gap:

1. `install_signal_handlers()`: SIGTERM/SIGHUP (what schedulers and closed terminals send) kill
   every tracked group and exit 143/129; SIGINT kills them and raises KeyboardInterrupt as before.
   After any of these no new Lean starts (`Interrupted`), so a thread pool winding down does
   not launch the checks still queued.
2. `launch()` (the compiled launcher.c, or `child_preexec()` without a C compiler): the child
   asks the kernel (`PR_SET_PDEATHSIG`) for SIGKILL when its parent dies, which also covers
   `kill -9` of lean-solve. It does not reach grandchildren.
3. The guard: one small helper process per lean-solve (started with the first Lean) that is
   told every tracked group and kills the ones still listed when its pipe from lean-solve
   closes, which the kernel does however lean-solve died. This reaches grandchildren such as
   the `lean` that `lake env lean` forks, as long as they stay in the group. The child tells
   the guard its group itself, before it execs, so no grandchild can exist unannounced.

Limits: Python runs signal handlers in the main thread between bytecodes, so a main thread
stuck in one long C call (a model forward pass) delays layer 1 until it returns. PDEATHSIG
fires when the *thread* that started the child exits, so a long-lived server (the REPL)
started from a short-lived pool thread must not get `launch`/`child_preexec` (track it instead). A
process forked without exec from lean-solve (multiprocessing's fork start method) gets its
old signal handlers and an empty registry, but inherits the guard's pipe, so the guard acts
only once that process is gone too. A group that leaves its session (`setsid` inside Lean)
escapes the guard. Groups are untracked right after they are reaped; dying in that instant
leaves the guard a number the system could reuse.

Callers: `process.spawn` (used by `run_limited`) does all of this for one-shot Lean runs, also
for a Lean started ahead of its check (`prestart`, fed by the thread that started it). A
long-lived process (the REPL server) is `track`ed; it may use `launch()` only when the thread
starting it outlives it (PDEATHSIG, above). A check whose Lean died while `stopping()` must raise `Interrupted`,
never report a verdict (a batch would record it as the item's result).
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import subprocess
import sys
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

EXIT_GRACE_S = 10.0
"""After SIGTERM/SIGHUP the main thread unwinds (closing files, finishing `finally` blocks);
if that takes longer than this, the process exits anyway."""

_PR_SET_PDEATHSIG = 1
_HANDLED = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)

_lock = threading.RLock()  # re-entrant: a signal handler may run while the main thread holds it
_groups: set[int] = set()
_stopping = threading.Event()
_guard: subprocess.Popen | None = None
_old_guards: list[subprocess.Popen] = []
_installed = False
_previous: dict[int, Any] = {}

# The guard is a POSIX shell script (a shell starts in about a millisecond, Python in ten, and
# the guard starts with every `lean-solve check`). It reads "+PGID" / "-PGID" lines until end of
# file; a line cut off by lean-solve's death (no newline: `read` fails) or not a number is never
# acted on.
_GUARD_SCRIPT = r"""
trap '' INT HUP
live=' '
while IFS= read -r line; do
    pgid=${line#?}
    case $pgid in ''|*[!0-9]*) continue ;; esac
    case $line in
        +*) live="$live$pgid " ;;
        -*) case $live in *" $pgid "*) live="${live%% $pgid *} ${live#* $pgid }" ;; esac ;;
    esac
done
for pgid in $live; do kill -s KILL -- "-$pgid" 2>/dev/null; done
"""


class Interrupted(KeyboardInterrupt):
    """lean-solve is shutting down on a signal: no new Lean starts and no verdict comes from a
    Lean it killed. A KeyboardInterrupt, so no `except Exception` turns it into an item result."""


class _HasPid(Protocol):
    pid: int


@functools.lru_cache(maxsize=1)
def _load_prctl() -> Callable[..., int] | None:
    """libc's prctl, resolved in the parent (on first use: `lean-solve check` starts Lean through
    the compiled launcher and never needs ctypes) so the forked child only calls it."""
    if not sys.platform.startswith("linux"):
        return None  # PR_SET_PDEATHSIG is Linux-only; elsewhere the handlers and the guard remain
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    prctl = libc.prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl



def child_preexec(extra: Callable[[], None] | None = None, *, register: bool = True) -> Callable[[], None]:
    """A `preexec_fn` that makes the child receive SIGKILL when this thread dies, then runs `extra`.

    The death signal survives `exec` (including through `prlimit`), so Lean itself carries it.
    If lean-solve already died between fork and prctl, the child exits at once instead of
    running orphaned. With `register`, a child that leads its own group
    (`start_new_session=True`) also tells the guard its group before it runs anything, so a
    launcher that forks Lean (`lake env`) cannot get a grandchild past the guard. Call this
    right before `Popen` (it starts the guard if none runs).
    """
    parent = os.getpid()
    prctl = _load_prctl()
    guard_fd = None
    if register:
        with _lock:
            guard_fd = _guard_fd()

    def preexec() -> None:
        if prctl is not None:
            if prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
                raise OSError("prctl(PR_SET_PDEATHSIG) failed")
            if os.getppid() != parent:
                os._exit(1)
        if guard_fd is not None and os.getpgid(0) == os.getpid():
            _register_from_child(guard_fd)
        if extra is not None:
            extra()

    return preexec


def _register_from_child(guard_fd: int) -> None:
    # SIGPIPE is back to its default here (subprocess restores it): a dead guard must cost an
    # error, not the child's life. A dead guard's successor learns the group from `track`.
    previous = signal.signal(signal.SIGPIPE, signal.SIG_IGN)
    try:
        with contextlib.suppress(BrokenPipeError):
            os.write(guard_fd, b"+%d\n" % os.getpid())
    finally:
        signal.signal(signal.SIGPIPE, previous)


@dataclass(frozen=True)
class Launch:
    """How to start a child that dies with lean-solve:
    `Popen(launch.prefix + cmd, pass_fds=launch.pass_fds, preexec_fn=launch.preexec_fn,
    start_new_session=True)`, then `track` it."""

    prefix: list[str]
    pass_fds: tuple[int, ...]
    preexec_fn: Callable[[], None] | None


@functools.lru_cache(maxsize=1)
def _launcher() -> str | None:
    """The compiled launcher (launcher.c), built on first use; None without a C compiler."""
    from solve_in_lean.lean.cbuild import BuildFailed, build, compiler

    cc = compiler()
    if cc is None or not sys.platform.startswith("linux"):  # PR_SET_PDEATHSIG: Linux only
        return None
    try:
        return str(build(Path(__file__).with_name("launcher.c"), "launch", cc))
    except (BuildFailed, OSError) as e:  # no compiler that works, or a cache we cannot write
        warnings.warn(f"the Lean launcher could not be built ({e}); Lean starts through a Python "
                      "preexec_fn instead, which is slower when lean-solve holds a large model", stacklevel=2)
        return None


def launch(memory_mb: int | None) -> Launch:
    """Everything `child_preexec` does (and the address-space cap `memory_mb`), done by the
    small compiled launcher that execs the command, so Python can start the child with vfork:
    a preexec_fn forces a full fork, measured at ~0.5 s per start with 3 GB resident (a loaded
    model). Without a C compiler, `child_preexec` does it."""
    limit = memory_mb * 1024 * 1024 if memory_mb else 0
    exe = _launcher()
    if exe is None:
        return Launch([], (), child_preexec(_address_space_cap(limit) if limit else None))
    with _lock:
        fd = _guard_fd()
    return Launch([exe, str(os.getpid()), str(fd), str(limit)], (fd,), None)


def _address_space_cap(limit: int) -> Callable[[], None]:
    def cap() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return cap


def stopping() -> bool:
    """True once a handled signal arrived: the process is on its way out."""
    return _stopping.is_set()


def _guard_fd() -> int:
    """The write end of the running guard's pipe, starting one (told every live group) if none
    runs. Caller holds `_lock`."""
    global _guard
    while _guard is None or _guard.poll() is not None:
        if _guard is not None:
            # its pipe stays open: a child forked from a `child_preexec` made before may still
            # write to that number, which must never come to mean another file
            _old_guards.append(_guard)
        _guard = subprocess.Popen(["/bin/sh", "-c", _GUARD_SCRIPT], stdin=subprocess.PIPE,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/",
                                  start_new_session=True, bufsize=0)
        assert _guard.stdin is not None
        try:
            for pgid in _groups:
                os.write(_guard.stdin.fileno(), b"+%d\n" % pgid)
        except BrokenPipeError:
            _guard.wait()  # died at once: try another
    assert _guard.stdin is not None
    return _guard.stdin.fileno()


def _guard_send(line: str) -> None:
    """Tell the guard one line (caller holds `_lock`); each line is one atomic pipe write."""
    for _ in range(3):
        fd = _guard_fd()
        try:
            os.write(fd, line.encode())
            return
        except BrokenPipeError:
            assert _guard is not None
            _guard.wait()  # it died since it was started: the next round starts another
    raise OSError("the process guard keeps dying; Lean processes would not be cleaned up")


def track(proc: _HasPid) -> None:
    """Kill `proc`'s process group when lean-solve is signalled or dies.

    `proc` must lead its own group (`start_new_session=True`), else killing the group would
    hit lean-solve itself. Raises Interrupted (after killing it) if shutdown already began.
    """
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:
        return  # it already ended and was reaped: nothing to track
    if pgid != proc.pid:
        raise ValueError(f"process {proc.pid} does not lead its own process group; "
                         "start it with start_new_session=True")
    with _lock:
        if _stopping.is_set():
            _kill(pgid)
            raise Interrupted("lean-solve is shutting down")
        _groups.add(pgid)
        _guard_send(f"+{pgid}\n")


def untrack(proc: _HasPid) -> None:
    """Forget `proc`'s group (call after it was reaped). The guard is told even for a process
    never tracked: `child_preexec` may have registered it."""
    with _lock:
        _groups.discard(proc.pid)
        if _guard is not None and _guard.poll() is None:
            _guard_send(f"-{proc.pid}\n")


@contextlib.contextmanager
def tracked(proc: _HasPid) -> Iterator[None]:
    """`track(proc)` for the duration of the block."""
    track(proc)
    try:
        yield
    finally:
        untrack(proc)


def _kill(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return  # the group already ended


def kill_all() -> None:
    """Stop starting Lean and kill every tracked group now."""
    _stopping.set()
    with _lock:
        for pgid in list(_groups):
            _kill(pgid)


def _exit_later(code: int) -> None:
    timer = threading.Timer(EXIT_GRACE_S, os._exit, args=(code,))
    timer.daemon = True
    timer.start()


def _on_signal(signo: int, frame: Any) -> None:
    if signo != signal.SIGINT and _stopping.is_set():
        os._exit(128 + signo)  # a second signal while unwinding: leave now
    kill_all()
    if signo == signal.SIGINT:
        previous = _previous.get(signo)
        if callable(previous):
            previous(signo, frame)
        raise KeyboardInterrupt
    _exit_later(128 + signo)
    raise SystemExit(128 + signo)


def _after_fork_in_child() -> None:
    """A process forked from lean-solve without exec (a multiprocessing or vLLM worker) owns none
    of the tracked groups: it must not kill them on its own SIGTERM, nor inherit a lock another
    thread held at the fork. It gets the handlers it had before and an empty registry."""
    global _lock, _stopping, _groups, _installed
    _lock, _stopping, _groups = threading.RLock(), threading.Event(), set()
    if _installed:
        for signo, previous in _previous.items():
            signal.signal(signo, previous)
        _previous.clear()
        _installed = False


os.register_at_fork(after_in_child=_after_fork_in_child)


def install_signal_handlers() -> None:
    """Handle SIGTERM, SIGHUP and SIGINT as described above; call once from the main thread.

    Idempotent. A signal that is ignored when this runs (`nohup` ignores SIGHUP) stays ignored.
    """
    global _installed
    if threading.current_thread() is not threading.main_thread():
        raise RuntimeError("install_signal_handlers() must be called from the main thread")
    if _installed:
        return
    for signo in _HANDLED:
        previous = signal.getsignal(signo)
        if previous == signal.SIG_IGN:
            continue
        _previous[signo] = previous
        signal.signal(signo, _on_signal)
    _installed = True
