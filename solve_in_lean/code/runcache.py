"""Sandbox runs of training programs, kept in the user cache so a transfer run does not re-run
the same thousand GSM8K programs every time (about 45 s on two cores).

Only outcomes that the program alone decides are kept: it printed something (`ok`), raised
(`error`) or was refused by the confinement (`refused`). Timeouts, limits and crashes may come
from a loaded machine, so they are run again next time. The key covers the program, the
limits and the source of the sandbox itself, so a change to the confinement runs everything
again. One small JSON file per run, written atomically: concurrent runs never see half of one,
and a cache that cannot be written only costs the time it would have saved.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
import warnings
from dataclasses import asdict
from pathlib import Path

from solve_in_lean.code.sandbox import SandboxLimits, SandboxResult, run_python
from solve_in_lean.lean.toolchain import cache_root

KEPT = ("ok", "error", "refused")
"""Statuses the program decides; the others depend on the machine's load and are not stored."""


@functools.lru_cache(maxsize=1)
def _sandbox_digest() -> str:
    """The sandbox's own code (the parent side and the child that confines itself)."""
    here = Path(__file__).parent
    h = hashlib.sha256()
    for name in ("sandbox.py", "child.py"):
        h.update((here / name).read_bytes())
    return h.hexdigest()


def run_key(program: str, limits: SandboxLimits) -> str:
    material = json.dumps({"program": program, "limits": asdict(limits), "sandbox": _sandbox_digest()},
                          sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(material.encode()).hexdigest()


def cache_dir() -> Path:
    return cache_root() / "sandbox-runs"


def cached_run(program: str, limits: SandboxLimits) -> SandboxResult:
    """`run_python([program], limits)`, answered from the cache when this exact run is stored."""
    key = run_key(program, limits)
    path = cache_dir() / key[:2] / f"{key}.json"
    if (stored := _load(path)) is not None:
        return stored
    result = run_python([program], limits)
    if result.status in KEPT:
        _store(path, result)
    return result


def _load(path: Path) -> SandboxResult | None:
    """The stored run at `path`; None when there is none or it is damaged (it is then run again
    and rewritten)."""
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
        result = SandboxResult(**stored)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as e:
        warnings.warn(f"ignoring the cached sandbox run {path}: {e}", stacklevel=3)
        return None
    return result if result.status in KEPT else None


def _store(path: Path, result: SandboxResult) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".run-", suffix=".json")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(result.to_dict(), f, ensure_ascii=False)
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise
    except OSError as e:
        warnings.warn(f"could not cache a sandbox run in {path.parent}: {e}", stacklevel=3)
