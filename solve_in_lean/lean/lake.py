"""The `lake` backend: one `lake env lean --json --stdin` per check inside the Lake workspace.

Slower than the REPL (every check elaborates its imports again) but stateless, so a crash or
timeout can never affect another check.
"""

from __future__ import annotations

import functools
import re
import subprocess
from pathlib import Path
from typing import Any

from solve_in_lean.lean.base import LeanUnavailable
from solve_in_lean.lean.process_backend import ProcessChecker
from solve_in_lean.lean.toolchain import project_dir, require_lake


@functools.lru_cache(maxsize=None)
def _version(lake: str, cwd: str) -> str:
    out = subprocess.run([lake, "env", "lean", "--version"], cwd=cwd, capture_output=True, text=True,
                         timeout=300)
    match = re.search(r"version (\S+?),", out.stdout)
    if out.returncode != 0 or not match:
        raise LeanUnavailable(f"`lake env lean --version` failed in {cwd}: {out.stderr.strip()[:300]}")
    return match.group(1)


class LakeChecker(ProcessChecker):
    name = "lake"
    evaluates = True

    def __init__(self, *, mathlib: bool = False, project: str | Path | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self._lake = require_lake()
        self._dir = Path(project) if project else project_dir(mathlib)

    @property
    def lean_version(self) -> str:
        return _version(self._lake, str(self._dir))

    def command(self, threads: int) -> list[str]:
        return [self._lake, "env", "lean", *self.lean_args(threads)]

    def cwd(self) -> str:
        return str(self._dir)
