"""The typer application behind every command but the fast path of `check` (cli/fastcheck.py),
with its error boundary. Kept out of `solve_in_lean.cli` so that `lean-solve check` never
imports typer, click or rich."""

from __future__ import annotations

import click
import typer
from typer.core import TyperGroup

from solve_in_lean.errors import LeanSolveError


class _Commands(TyperGroup):
    """Every command runs inside this: an expected failure (any LeanSolveError a helper raises)
    becomes one sentence on stderr and its exit code, here and nowhere else."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except LeanSolveError as e:
            typer.echo(f"lean-solve: {e}", err=True)
            raise typer.Exit(e.exit_code) from None  # typer 0.29 has its own click: its Exit, not click's


app = typer.Typer(cls=_Commands, add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Lean 4 as one platform for solving and proving math problems.")


@app.callback()
def _root() -> None:
    """Lean 4 as one platform for solving and proving math problems."""
