"""Where the Lean toolchain and the project's Lake workspace are, and how to set them up.

The checked-in `lean4_workspace/` is core-only. Mathlib is opt-in: `lean-solve setup --mathlib`
generates a copy of the workspace with Mathlib required, in the user cache, so the
checked-in files never change and a core-only user never downloads Mathlib. An installed
(non-editable) lean-solve carries the workspace as package data and copies it to the cache.

Checks never build and never run through a forking `lake env`: `lake_environment` asks Lake
once for the environment it would give Lean, and the backends start `lean` or the REPL
directly in it, so killing the process we started kills Lean.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from solve_in_lean.lean.base import LeanUnavailable

LEAN_VERSION = "v4.24.0"
MATHLIB_REV = "v4.24.0"
MATHLIB_GIT = "https://github.com/leanprover-community/mathlib4"
SETUP_HINT = "run `lean-solve setup` (needs internet: installs elan, Lean and the REPL)"
MATHLIB_HINT = "run `lean-solve setup --mathlib` (needs internet and ~5 GB)"
MATHLIB_MEMORY_MB = 16384
"""Address-space cap of a Lean that imports Mathlib (repl and lake backends): `import Mathlib`
on recent Lean needs 6.5-8+ GB resident and maps more, so the generic 8 GB cap would kill it."""
_PACKAGED_WORKSPACE = Path(__file__).resolve().parents[1] / "lean4_workspace"
"""Where a wheel puts the workspace (package data, see pyproject.toml)."""
_DUMP_ENV = "import json, os, sys; sys.stdout.write(json.dumps(dict(os.environ)))"


def cache_root() -> Path:
    base = os.environ.get("LEAN_SOLVE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "lean-solve")
    return Path(base)


def workspace_dir() -> Path:
    """The core-only Lake project: $LEAN_SOLVE_WORKSPACE, else `lean4_workspace/` of this checkout,
    else a copy of the packaged workspace in the user cache (Lake writes `.lake/` beside it, and
    site-packages may be read-only)."""
    if env := os.environ.get("LEAN_SOLVE_WORKSPACE"):
        return Path(env)
    here = Path(__file__).resolve().parents[2] / "lean4_workspace"
    if (here / "lakefile.toml").is_file():
        return here
    if (_PACKAGED_WORKSPACE / "lakefile.toml").is_file():
        return _copy_workspace(_PACKAGED_WORKSPACE, cache_root() / "workspace")
    raise LeanUnavailable("cannot find lean4_workspace/; set LEAN_SOLVE_WORKSPACE to its path")


def _copy_workspace(src: Path, dst: Path) -> Path:
    """Refresh the project files of `dst` from `src`, keeping `dst/.lake` (the build)."""
    dst.mkdir(parents=True, exist_ok=True)
    for item in src.iterdir():
        if item.name in (".lake", "__pycache__"):
            continue
        if item.is_dir():
            shutil.copytree(item, dst / item.name, dirs_exist_ok=True)
        else:
            shutil.copy2(item, dst / item.name)
    return dst


def mathlib_workspace_dir() -> Path:
    return cache_root() / "workspace-mathlib"


def find_tool(name: str) -> str | None:
    """`lake`/`lean`/`elan`: $LEAN_SOLVE_LAKE for lake, else PATH, else elan's home (elan adds
    `~/.elan/bin` to shell profiles only, so a fresh install is often not on PATH). Callers
    pass the path found on to every tool they start, never a bare `lake`."""
    if name == "lake" and (env := os.environ.get("LEAN_SOLVE_LAKE")):
        return env if os.access(env, os.X_OK) else None
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


def mathlib_installed() -> bool:
    """Mathlib has been built in the generated workspace (its oleans exist). No subprocess:
    cheap enough for every command to call when `[lean] mathlib` is auto."""
    packages = mathlib_workspace_dir() / ".lake" / "packages" / "mathlib" / ".lake" / "build"
    return packages.is_dir()


has_mathlib = mathlib_installed  # the name the tests' skip markers use


def use_mathlib(mathlib: bool | None) -> bool:
    """`None` (auto) means: use Mathlib when it is installed."""
    return mathlib_installed() if mathlib is None else mathlib


def project_dir(mathlib: bool | None) -> Path:
    if not use_mathlib(mathlib):
        return workspace_dir()
    if not mathlib_installed():
        raise LeanUnavailable(f"Mathlib is not set up; {MATHLIB_HINT}")
    return mathlib_workspace_dir()


@functools.lru_cache(maxsize=None)
def lake_environment(lake: str, project: str) -> dict[str, str]:
    """The environment `lake env` gives a process in `project` (LEAN_PATH, the toolchain's
    PATH, LD_LIBRARY_PATH, ...), asked once. Raises LeanUnavailable in one sentence."""
    try:
        out = subprocess.run([lake, "env", sys.executable, "-c", _DUMP_ENV], cwd=project, capture_output=True,
                             text=True, timeout=300, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as e:
        raise LeanUnavailable(f"cannot run `{lake} env` in {project} ({type(e).__name__}: {e}); "
                              f"{SETUP_HINT}") from e
    try:
        env = json.loads(out.stdout) if out.returncode == 0 else None
    except json.JSONDecodeError:
        env = None
    if not isinstance(env, dict):
        why = (out.stderr.strip() or out.stdout.strip() or f"exit status {out.returncode}").splitlines()[-1][:300]
        raise LeanUnavailable(f"`{lake} env` failed in {project}: {why}; {SETUP_HINT}")
    return {str(k): str(v) for k, v in env.items()}


def lean_in(env: dict[str, str]) -> str:
    """The project toolchain's `lean`: under Lake's LEAN_SYSROOT, else first on its PATH."""
    sysroot = Path(env.get("LEAN_SYSROOT", "")) / "bin" / "lean"
    lean = str(sysroot) if env.get("LEAN_SYSROOT") and os.access(sysroot, os.X_OK) else \
        shutil.which("lean", path=env.get("PATH", ""))
    if lean is None:
        raise LeanUnavailable(f"`lake env` gives no `lean` on its PATH; {SETUP_HINT}")
    return lean


def repl_record() -> Path:
    """Where `setup` writes which REPL it built for which project."""
    return cache_root() / "repl.json"


def repl_dir(project: Path) -> Path:
    """The REPL built by `setup` for `project`: $LEAN_SOLVE_REPL, else the one `setup` recorded.
    Checks never clone or build it (that needs the network and writes to stdout)."""
    if env := os.environ.get("LEAN_SOLVE_REPL"):
        path = Path(env)
    else:
        try:
            recorded = json.loads(repl_record().read_text())
        except (OSError, json.JSONDecodeError):
            recorded = {}
        found = recorded.get(str(project.resolve())) if isinstance(recorded, dict) else None
        if not isinstance(found, str):
            raise LeanUnavailable(f"the Lean REPL is not built for {project}; {SETUP_HINT}")
        path = Path(found)
    if not (path / ".lake" / "build" / "bin" / "repl").is_file():
        raise LeanUnavailable(f"no built REPL at {path}/.lake/build/bin/repl; {SETUP_HINT}")
    return path


def record_repl(project: Path, repl: Path) -> None:
    """Remember (atomically) that `repl` serves `project`."""
    path = repl_record()
    try:
        recorded = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        recorded = {}
    recorded = recorded if isinstance(recorded, dict) else {}
    recorded[str(project.resolve())] = str(repl)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".repl-{os.getpid()}.json")
    tmp.write_text(json.dumps(recorded, indent=1))
    os.replace(tmp, path)
