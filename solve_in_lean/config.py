"""Settings from a TOML file, overridable by CLI flags: which Lean backend, which model.

Looked up in order: `--config FILE`, `$LEAN_SOLVE_CONFIG`, `./lean-solve.toml`,
`~/.config/lean-solve/config.toml`. Every key is optional; see docs/config.md.

    [lean]
    backend = "auto"          # auto | repl | lake | kernel
    mathlib = false
    timeout_s = 60
    memory_mb = 8192
    workers = 2
    allow_axioms = []         # beyond propext, Classical.choice, Quot.sound
    allow_native = false      # accept native_decide (Lean.ofReduceBool)

    [model]
    backend = "transformers"  # transformers | vllm | http
    model = "..."
    cache = "~/.cache/lean-solve/generations.sqlite"
    [model.options]           # passed to the backend
    [model.sampling]          # default SamplingParams
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

from solve_in_lean.lean.base import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S


class ConfigError(ValueError):
    """The config file is missing, unreadable or has a wrong key or value."""


@dataclass
class LeanConfig:
    backend: str = "auto"
    mathlib: bool = False
    timeout_s: float = DEFAULT_TIMEOUT_S
    memory_mb: int = DEFAULT_MEMORY_MB
    workers: int | None = None
    allow_axioms: list[str] = field(default_factory=list)
    allow_native: bool = False


@dataclass
class Settings:
    lean: LeanConfig = field(default_factory=LeanConfig)
    model: dict[str, Any] = field(default_factory=dict)
    """Raw [model] table; `solve_in_lean.models.ModelConfig.from_dict` gives it meaning."""
    path: Path | None = None


def _candidates(explicit: str | Path | None) -> list[Path]:
    if explicit:
        return [Path(explicit).expanduser()]
    paths = []
    if env := os.environ.get("LEAN_SOLVE_CONFIG"):
        paths.append(Path(env).expanduser())
    paths += [Path("lean-solve.toml"), Path("~/.config/lean-solve/config.toml").expanduser()]
    return paths


def load_settings(path: str | Path | None = None) -> Settings:
    """Read the first config file found; an explicitly named file must exist."""
    for candidate in _candidates(path):
        if candidate.is_file():
            break
    else:
        if path:
            raise ConfigError(f"config file {path} does not exist")
        return Settings()
    try:
        data = tomllib.loads(candidate.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{candidate}: not valid TOML: {e}") from e
    unknown = set(data) - {"lean", "model"}
    if unknown:
        raise ConfigError(f"{candidate}: unknown section(s) {sorted(unknown)}; expected [lean] and [model]")
    lean_table = data.get("lean", {})
    known = {f.name for f in fields(LeanConfig)}
    if bad := set(lean_table) - known:
        raise ConfigError(f"{candidate}: unknown key(s) in [lean]: {sorted(bad)}; known: {sorted(known)}")
    return Settings(lean=LeanConfig(**lean_table), model=dict(data.get("model", {})), path=candidate)


def resolve_backend(name: str) -> str:
    """`auto` means the best backend this machine can run (see `lean.auto_backend`)."""
    if name != "auto":
        return name
    from solve_in_lean.lean import auto_backend

    return auto_backend()
