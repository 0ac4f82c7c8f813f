"""The `lean-solve` command. Each command lives in its own module and imports heavy
libraries (torch, lean-interact) only when it runs, so `lean-solve check` starts fast."""

from __future__ import annotations

import sys
from typing import Any, NoReturn


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
    from solve_in_lean.cli import server  # noqa: F401  (register)


def main() -> None:
    if sys.argv[1:2] == ["check"]:  # before typer is imported: a check starts about as fast as Lean
        _check(sys.argv[2:])
    from solve_in_lean.lean.lifecycle import install_signal_handlers
    install_signal_handlers()  # SIGTERM/SIGHUP/SIGINT kill every Lean we started (lean/lifecycle.py)
    _register()
    from solve_in_lean.cli.typer_app import app

    app()


def _check(argv: list[str]) -> NoReturn:
    """`lean-solve check`: by the check server when one runs for this installation (its client
    imports only the standard library), else here, with the standard input it already read."""
    from solve_in_lean.check_server.client import check_via_server, exit_now

    try:
        outcome = check_via_server(argv)
    except KeyboardInterrupt:  # Ctrl-C while the server checks: as in process, one line and 130
        sys.stderr.write("lean-solve: interrupted\n")
        exit_now(130)
    if isinstance(outcome, int):
        exit_now(outcome)
    from solve_in_lean.lean.lifecycle import install_signal_handlers
    install_signal_handlers()  # SIGTERM/SIGHUP/SIGINT kill every Lean we started (lean/lifecycle.py)
    from solve_in_lean.cli.fastcheck import local_io, main as check

    io = local_io()
    exit_now(check(argv, io._replace(read_stdin=outcome.reader(io.read_stdin))))
