"""How many CPU threads a model may use, so that runs sharing the cores do not oversubscribe them.

torch starts as many threads as it sees cores in every process; four concurrent `solve` runs on
two cores then fight with 6 threads each (measured, issue 19: 362 s for what takes 40 s with one
thread per run). The default divides the cores among the lean-solve runs on this machine; an
explicit request above that share is kept but warned about.
"""

from __future__ import annotations

import os
from pathlib import Path


def cores() -> int:
    """The cores this process may run on (its affinity, not the machine's count)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _is_run(argv: list[str]) -> bool:
    """A lean-solve command: the console script, or `python -m solve_in_lean`."""
    if len(argv) >= 2 and Path(argv[1]).name == "lean-solve":
        return True
    return any(a == "-m" and b == "solve_in_lean" for a, b in zip(argv, argv[1:]))


def concurrent_runs() -> int:
    """lean-solve runs on this machine, this one included (read from /proc; 1 where there is none)."""
    proc = Path("/proc")
    if not proc.is_dir():
        return 1
    others = 0
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            argv = [a.decode("utf-8", "replace") for a in (entry / "cmdline").read_bytes().split(b"\0") if a]
        except OSError:
            continue  # ended while we looked, or not ours to read
        others += _is_run(argv)
    return 1 + others


def model_threads(requested: int | None = None) -> tuple[int, str | None]:
    """(threads, warning): the request (else `$OMP_NUM_THREADS`, the usual way to ask), or this
    run's share of the cores; a warning sentence when the request is above that share, so the runs on
    this machine together ask for more threads than there are cores."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    if requested is None and env.isdigit() and int(env) >= 1:
        requested = int(env)
    if requested is not None and (isinstance(requested, bool) or not isinstance(requested, int) or requested < 1):
        raise ValueError(f"threads must be a whole number of at least 1, not {requested!r}")
    n, runs = cores(), concurrent_runs()
    share = max(1, n // runs)
    if requested is None:
        return share, None
    if requested > share:
        return requested, (f"{runs} lean-solve run(s) share {n} core(s) and this one asks for {requested} model "
                           f"threads: the CPU is oversubscribed and every run slows down; use at most "
                           f"{share} (--model-option threads=N)")
    return requested, None
