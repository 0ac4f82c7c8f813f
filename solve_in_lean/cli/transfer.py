"""`lean-solve transfer`: for each training mixture, fine-tune, evaluate on every task, and compare
with the base model in a transfer matrix (table, transfer.json, heatmap PNG)."""

from __future__ import annotations

from typing import Optional

import typer

from solve_in_lean.cli import app
from solve_in_lean.cli.common import EXIT_OK, check_writable_dir, model_errors, print_json


@app.command("transfer")
def transfer_command(
    mixtures: str = typer.Option(..., "--mixtures", "-m", help="Experiment config (TOML): base model, training "
                                                                "data, mixtures, eval tasks (docs/evaluation.md)."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Output folder (default: the config's `out`)."),
    only: list[str] = typer.Option([], "--only", help="Train and evaluate just this row (base or a mixture; "
                                                      "repeatable), e.g. one process per row on a GPU."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON (and no progress bars)."),
) -> None:
    """Train on each task mixture, evaluate every task, print the transfer matrix, plot a heatmap.

    Resumable: trained models and finished evaluation items are kept, so a rerun continues.
    Exit 0 when done, 2 when it could not run (bad config, no model, no Lean).
    """
    from solve_in_lean.eval.transfer import load_config, run_rows, run_transfer

    cfg = load_config(mixtures, out=out)
    check_writable_dir(cfg.out, "the output folder")
    progress, log = (False, None) if json_out else (None, typer.echo)
    with model_errors(cfg.settings.model):
        if only:
            _print_rows(run_rows(cfg, only, progress=progress, log=log), json_out)
        result = run_transfer(cfg, progress=progress, log=log)
    if json_out:
        print_json(result.to_dict())
    else:
        typer.echo("\n" + result.table())
        typer.echo(f"\nWrote {result.json_path} and {result.heatmap_path}")
    raise typer.Exit(EXIT_OK)


def _print_rows(rows: dict, json_out: bool) -> None:
    """The rows done by `--only`; the matrix needs every row, so a run without it assembles that."""
    if json_out:
        print_json({"rows": rows})
    else:
        for row, data in rows.items():
            typer.echo(f"{row}: " + ", ".join(f"{c} {v}" for c, v in data["values"].items()))
        typer.echo("Run again without --only to assemble the transfer matrix (finished work is reused).")
    raise typer.Exit(EXIT_OK)
