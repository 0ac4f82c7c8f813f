"""The `lean-solve` command. Each command lives in its own module and imports heavy
libraries (torch, lean-interact) only when it runs, so `lean-solve check` starts fast."""

from __future__ import annotations

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Lean 4 as one platform for solving and proving math problems.")


@app.callback()
def _root() -> None:
    """Lean 4 as one platform for solving and proving math problems."""


def _register() -> None:
    from solve_in_lean.cli import check, evaluate, formalize, report, setup, solve, transfer  # noqa: F401  (register)


def main() -> None:
    from solve_in_lean.lean.lifecycle import install_signal_handlers
    install_signal_handlers()  # SIGTERM/SIGHUP/SIGINT kill every Lean we started (lean/lifecycle.py)
    _register()
    app()
