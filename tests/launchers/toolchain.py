"""Lay out a launcher toolchain for a test: the bundled kernel Lean as `lean`, the `lake`
launcher, a Lake project and a REPL directory whose `repl` is the REPL-protocol forwarder.

Only launchers are replaced: lean-solve and lean-interact find them through their ordinary
configuration (LEAN_SOLVE_LAKE, LEAN_SOLVE_REPL, LEAN_SOLVE_WORKSPACE), and every verdict
comes from the real Lean behind them.
"""

from __future__ import annotations

import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
LAKE = HERE / "lake"
FORWARDER = HERE / "repl_forwarder.py"


@dataclass
class Launchers:
    lake: Path
    lean_dir: Path
    project: Path
    repl: Path
    log: Path
    """Every request the forwarder received, one JSON object per line."""
    lake_log: Path
    """The arguments of every `lake` call, one line each."""

    def requests(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def lake_calls(self) -> list[str]:
        return self.lake_log.read_text().splitlines() if self.lake_log.exists() else []


def _script(path: Path, argv: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\nexec " + " ".join(shlex.quote(a) for a in argv) + ' "$@"\n')
    path.chmod(0o755)


def install_launchers(root: Path, monkeypatch: pytest.MonkeyPatch) -> Launchers:
    """Create the launcher toolchain under `root` and point lean-solve at it (env vars)."""
    from solve_in_lean.lean import LeanUnavailable
    from solve_in_lean.lean.kernel import driver_command, find_library

    try:
        lean_cmd = list(driver_command(find_library()))
    except LeanUnavailable as e:
        pytest.skip(f"the launchers need the bundled Lean: {e}")
    version = "leanprover/lean4:v4.35.0\n"
    lean_dir = root / "lean-bin"
    _script(lean_dir / "lean", lean_cmd)
    project = root / "project"
    project.mkdir(parents=True)
    (project / "lean-toolchain").write_text(version)
    (project / "lakefile.toml").write_text('name = "launcher_test"\n')
    repl = root / "repl"
    _script(repl / ".lake" / "build" / "bin" / "repl", [sys.executable, str(FORWARDER)])
    (repl / "lean-toolchain").write_text(version)
    log = root / "repl-requests.jsonl"
    monkeypatch.setenv("LEAN_SOLVE_TEST_LEAN_DIR", str(lean_dir))
    monkeypatch.setenv("LEAN_SOLVE_TEST_REPL_LOG", str(log))
    monkeypatch.setenv("LEAN_SOLVE_TEST_LAKE_LOG", str(root / "lake-calls.txt"))
    monkeypatch.setenv("LEAN_SOLVE_LAKE", str(LAKE))
    monkeypatch.setenv("LEAN_SOLVE_REPL", str(repl))
    monkeypatch.setenv("LEAN_SOLVE_WORKSPACE", str(project))
    monkeypatch.setenv("LEAN_SOLVE_CACHE", str(root / "cache"))
    return Launchers(LAKE, lean_dir, project, repl, log, root / "lake-calls.txt")
