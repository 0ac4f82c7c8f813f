"""`check` as a typer command, so it is listed by `lean-solve --help` and runs from `app` in
tests. Its options are parsed by the one argparse parser in cli/fastcheck.py, which
`lean-solve check` reaches without typer; this forwards the words after `check` to it."""

from __future__ import annotations

import typer

from solve_in_lean.cli import app
from solve_in_lean.cli.fastcheck import DESCRIPTION, main


@app.command(help=DESCRIPTION.split("\n\n", 1)[0], add_help_option=False,
             context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def check(ctx: typer.Context) -> None:
    raise typer.Exit(main(ctx.args))
