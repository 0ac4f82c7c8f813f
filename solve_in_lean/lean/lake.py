"""The `lake` backend: one `lean --json --stdin` per check in the Lake workspace's environment.

Slower than the REPL (every check elaborates its imports again) but stateless, so a crash or
timeout can never affect another check. Lake is asked once for its environment
(`toolchain.lake_environment`); each check then starts that toolchain's `lean` directly, as
`lake env lean` would, minus the Lake process in between that a kill could miss.
"""

from __future__ import annotations

import functools
import re
import subprocess
from pathlib import Path
from typing import Any

from solve_in_lean.lean.base import DEFAULT_MEMORY_MB, LeanUnavailable
from solve_in_lean.lean.process_backend import ProcessChecker
from solve_in_lean.lean.toolchain import MATHLIB_MEMORY_MB, lake_environment, lean_in, project_dir, require_lake, use_mathlib


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
        out = subprocess.run([self._lean, "--version"], cwd=self._dir, env=self._env, capture_output=True,
                             text=True, timeout=300, stdin=subprocess.DEVNULL)
        match = re.search(r"version (\S+?),", out.stdout)
        if out.returncode != 0 or not match:
            raise LeanUnavailable(f"`{self._lean} --version` failed in {self._dir}: {out.stderr.strip()[:300]}")
        return match.group(1)

    def command(self, threads: int) -> list[str]:
        return [self._lean, *self.lean_args(threads)]

    def cwd(self) -> str:
        return str(self._dir)

    def env(self) -> dict[str, str]:
        return self._env
