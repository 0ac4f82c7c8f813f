"""The `lake` backend: one `lean --json --stdin` per check in the Lake workspace's environment.

Slower than the REPL (every check elaborates its imports again) but stateless, so a crash or
timeout can never affect another check. Lake is asked once for its environment
(`toolchain.lake_environment`); each check then starts that toolchain's `lean` directly, as
`lake env lean` would, minus the Lake process in between that a kill could miss.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

from solve_in_lean.lean.base import DEFAULT_MEMORY_MB, LeanUnavailable
from solve_in_lean.lean.process import run_limited
from solve_in_lean.lean.process_backend import ProcessChecker
from solve_in_lean.lean.toolchain import MATHLIB_MEMORY_MB, lake_environment, lean_in, project_dir, require_lake, use_mathlib


VERSION_TIMEOUT_S = 300.0
"""`lean --version` of a cold toolchain (first start, slow disk) can take a while."""


class LakeChecker(ProcessChecker):
    name = "lake"
    evaluates = True

    def __init__(self, *, mathlib: bool | None = None, project: str | Path | None = None, lake: str | None = None,
                 memory_mb: int | None = None, **kw: Any) -> None:
        mathlib = use_mathlib(mathlib) if project is None else bool(mathlib)
        if memory_mb is None:
            memory_mb = MATHLIB_MEMORY_MB if mathlib else DEFAULT_MEMORY_MB
        super().__init__(memory_mb=memory_mb, **kw)
        self.mathlib = mathlib
        self._dir = Path(project) if project else project_dir(mathlib)
        self._env = lake_environment(lake or require_lake(), str(self._dir))
        self._lean = lean_in(self._env)

    @functools.cached_property
    def lean_version(self) -> str:
        """Asked through `run_limited` like every check, so this Lean too dies with lean-solve.
        Without the checks' memory cap: a cap too small for Lean is a check's "memory" verdict,
        not a backend that is unavailable."""
        out = run_limited([self._lean, "--version"], stdin_text="", timeout_s=VERSION_TIMEOUT_S,
                          memory_mb=None, max_output_bytes=self.max_output_bytes,
                          cwd=str(self._dir), env=self._env)
        match = re.search(r"version (\S+?),", out.stdout)
        if out.returncode != 0 or not match:
            why = f"it ran longer than {VERSION_TIMEOUT_S:g} s" if out.timed_out else out.stderr.strip()[:300]
            raise LeanUnavailable(f"`{self._lean} --version` failed in {self._dir}: {why}")
        return match.group(1)

    def command(self, threads: int) -> list[str]:
        return [self._lean, *self.lean_args(threads)]

    def cwd(self) -> str:
        return str(self._dir)

    def env(self) -> dict[str, str]:
        return self._env
