"""lean-interact's `AutoLeanServer`, with the REPL started directly in Lake's environment.

lean-interact starts `lake env <repl>`; Lake then forks the REPL, so killing the process it
tracks can leave Lean running. Here the environment is resolved once (`lake_environment`)
and the REPL binary is the process we start: its own session, under the memory cap,
tracked by `lifecycle` (killed when lean-solve is signalled or dies), and it also exits
when its stdin closes. No PDEATHSIG: servers start from short-lived pool threads. Everything else (the JSON protocol, the
timeouts, restarts, the session cache that replays the header) is lean-interact's own code.
Importing this module needs lean-interact.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any

from lean_interact import AutoLeanServer, LeanREPLConfig

from solve_in_lean.lean import lifecycle


def _address_space_cap(memory_mb: int | None) -> Any:
    if not memory_mb:
        return None
    limit = memory_mb * 1024 * 1024

    def cap() -> None:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return cap


class DirectServer(AutoLeanServer):
    """An AutoLeanServer whose REPL runs without a `lake env` parent.

    `starts` counts REPL processes started: a proof state from an earlier one is unknown to
    a later one. `last_exit` is the exit status of a process that ended on its own (None when
    we killed a live one), so a crash can be told from a memory kill.
    """

    def __init__(self, config: LeanREPLConfig, *, env: dict[str, str], **kw: Any) -> None:
        self._env = env
        self.starts = 0
        self.last_exit: int | None = None
        super().__init__(config, **kw)

    def start(self) -> None:
        if lifecycle.stopping():
            raise lifecycle.Interrupted("lean-solve is shutting down")
        repl = os.path.join(self.config.cache_repl_dir, ".lake", "build", "bin", "repl")
        self._proc = subprocess.Popen(
            [repl], cwd=self.config.working_dir, env=self._env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, encoding="utf-8", text=True, bufsize=1, start_new_session=True,
            preexec_fn=_address_space_cap(self.config.memory_hard_limit_mb))
        lifecycle.track(self._proc)
        self.starts += 1
        self.last_exit = None
        if not self.is_alive():
            stdout, stderr = self.get_stdout_stderr()
            raise ChildProcessError(f"the Lean REPL exited at start: {stderr.strip() or stdout.strip()}")

    def kill(self) -> None:
        proc = self._proc
        if proc is not None:
            try:  # a process whose output just ended may need a moment to become reapable
                self.last_exit = proc.wait(timeout=0.05)
            except subprocess.TimeoutExpired:
                self.last_exit = None
        super().kill()
        if proc is not None:
            lifecycle.untrack(proc)
