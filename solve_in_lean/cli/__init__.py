"""The `lean-solve` command. Each command lives in its own module and imports heavy
libraries (torch, lean-interact) only when it runs, so `lean-solve check` starts fast."""

from __future__ import annotations

import sys
from typing import Any


def __getattr__(name: str) -> Any:
    """`app` (cli/typer_app.py) is imported on first use, by a command module or `main`, never by `check`."""
    if name == "app":
        from solve_in_lean.cli.typer_app import app

        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _register() -> None:
    from solve_in_lean.cli import cache, check, evaluate, formalize, report, setup, solve, transfer, world  # noqa: F401  (register)
    from solve_in_lean.cli import models  # noqa: F401  (register)
    from solve_in_lean.cli import verify_answer  # noqa: F401  (register)
    from solve_in_lean.cli import iterate  # noqa: F401  (register)
    from solve_in_lean.cli import augment  # noqa: F401  (register)


def main() -> None:
    from solve_in_lean.lean.lifecycle import install_signal_handlers
    install_signal_handlers()  # SIGTERM/SIGHUP/SIGINT kill every Lean we started (lean/lifecycle.py)
    if sys.argv[1:2] == ["check"]:  # before typer is imported: a check starts about as fast as Lean
        from solve_in_lean.cli.fastcheck import exit_now, main as check

        exit_now(check(sys.argv[2:]))
    _register()
    from solve_in_lean.cli.typer_app import app

    app()
