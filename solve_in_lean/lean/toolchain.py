"""Where the Lean toolchain and the project's Lake workspace are, and how to set them up.

The checked-in `lean4_workspace/` is core-only. Mathlib is opt-in: `lean-solve setup --mathlib`
generates a copy of the workspace with Mathlib required, in the user cache, so the
checked-in files never change and a core-only user never downloads Mathlib.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from solve_in_lean.lean.base import LeanUnavailable

LEAN_VERSION = "v4.24.0"
MATHLIB_REV = "v4.24.0"
MATHLIB_GIT = "https://github.com/leanprover-community/mathlib4"
SETUP_HINT = "run `lean-solve setup` (needs internet: installs elan, Lean and the REPL)"
MATHLIB_HINT = "run `lean-solve setup --mathlib` (needs internet and ~5 GB)"


def cache_root() -> Path:
    base = os.environ.get("LEAN_SOLVE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "lean-solve")
    return Path(base)


def workspace_dir() -> Path:
    """The core-only Lake project: $LEAN_SOLVE_WORKSPACE, else `lean4_workspace/` of this checkout."""
    if env := os.environ.get("LEAN_SOLVE_WORKSPACE"):
        return Path(env)
    here = Path(__file__).resolve().parents[2] / "lean4_workspace"
    if here.is_dir():
        return here
    raise LeanUnavailable("cannot find lean4_workspace/; set LEAN_SOLVE_WORKSPACE to its path")


def mathlib_workspace_dir() -> Path:
    return cache_root() / "workspace-mathlib"


def find_tool(name: str) -> str | None:
    """`lake`/`lean`/`elan` on PATH or in elan's default home."""
    found = shutil.which(name)
    if found:
        return found
    elan_home = Path(os.environ.get("ELAN_HOME", os.path.expanduser("~/.elan")))
    candidate = elan_home / "bin" / name
    return str(candidate) if candidate.is_file() else None


def require_lake() -> str:
    lake = find_tool("lake")
    if lake is None:
        raise LeanUnavailable(f"no Lean toolchain (`lake` not found); {SETUP_HINT}")
    return lake


def mathlib_lakefile(core_lakefile: str) -> str:
    """The core lakefile with Mathlib required at the pinned revision."""
    return (core_lakefile.rstrip("\n") + "\n\n[[require]]\n"
            f'name = "mathlib"\ngit = "{MATHLIB_GIT}"\nrev = "{MATHLIB_REV}"\n')


def write_mathlib_workspace() -> Path:
    """Create (or refresh) the Mathlib-enabled copy of the workspace; returns its path."""
    src = workspace_dir()
    dst = mathlib_workspace_dir()
    dst.mkdir(parents=True, exist_ok=True)
    for item in src.iterdir():
        if item.name in (".lake", "lakefile.toml", "lake-manifest.json"):
            continue
        target = dst / item.name
        if item.is_dir():
            shutil.copytree(item, target, dirs_exist_ok=True)
        else:
            shutil.copy2(item, target)
    (dst / "lakefile.toml").write_text(mathlib_lakefile((src / "lakefile.toml").read_text()))
    return dst


def has_mathlib() -> bool:
    """Mathlib has been built in the generated workspace (its oleans exist)."""
    packages = mathlib_workspace_dir() / ".lake" / "packages" / "mathlib" / ".lake" / "build"
    return packages.is_dir()


def project_dir(mathlib: bool) -> Path:
    if not mathlib:
        return workspace_dir()
    if not has_mathlib():
        raise LeanUnavailable(f"Mathlib is not set up; {MATHLIB_HINT}")
    return mathlib_workspace_dir()
