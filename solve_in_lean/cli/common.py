"""What every command shares: exit codes, one-sentence errors, JSON output, settings."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import typer

EXIT_OK, EXIT_REJECTED, EXIT_UNAVAILABLE = 0, 1, 2


def fail(message: str, code: int = EXIT_UNAVAILABLE) -> NoReturn:
    """Print one readable sentence on stderr and exit; no traceback for expected failures."""
    typer.echo(f"lean-solve: {message}", err=True)
    raise typer.Exit(code)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=None, default=str) + "\n")


def load_settings_or_fail(path: str | None) -> Any:
    from solve_in_lean.config import ConfigError, load_settings

    try:
        return load_settings(path)
    except ConfigError as e:
        fail(str(e))


def make_checker(settings: Any, backend: str | None = None, *, timeout: float | None = None,
                 mathlib: bool | None = None) -> Any:
    """The Lean backend named on the command line or in the config, or a clear exit 2."""
    from solve_in_lean.config import resolve_backend
    from solve_in_lean.lean import BACKENDS, LeanUnavailable, get_checker

    lean = settings.lean
    name = resolve_backend(backend or lean.backend)
    if name not in BACKENDS:
        fail(f"unknown Lean backend {name!r}; choose one of: auto, {', '.join(BACKENDS)}")
    options: dict[str, Any] = dict(timeout_s=timeout or lean.timeout_s, memory_mb=lean.memory_mb,
                                   workers=lean.workers)
    if name != "kernel":
        options["mathlib"] = lean.mathlib if mathlib is None else mathlib
    try:
        return get_checker(name, **options)
    except LeanUnavailable as e:
        fail(f"the {name} backend is not available: {e}")
