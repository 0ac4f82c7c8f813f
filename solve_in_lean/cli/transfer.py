"""`lean-solve transfer`: for each training mixture, fine-tune, evaluate on every task, and compare
with the base model in a transfer matrix (table, transfer.json, heatmap PNG)."""

from __future__ import annotations

from typing import Optional

import typer

from solve_in_lean.cli import app
from solve_in_lean.cli.common import EXIT_OK, fail, no_model_message, print_json


@app.command("transfer")
def transfer_command(
    mixtures: str = typer.Option(..., "--mixtures", "-m", help="Experiment config (TOML): base model, training "
                                                                "data, mixtures, eval tasks (docs/evaluation.md)."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Output folder (default: the config's `out`)."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON (and no progress bars)."),
) -> None:
    """Train on each task mixture, evaluate every task, print the transfer matrix, plot a heatmap.

    Resumable: trained models and finished evaluation items are kept, so a rerun continues.
    Exit 0 when done, 2 when it could not run (bad config, no model, no Lean).
    """
    from solve_in_lean.eval.datasets import DatasetError
    from solve_in_lean.eval.run import RunError
    from solve_in_lean.eval.transfer import ConfigError, load_config, run_transfer
    from solve_in_lean.lean import LeanUnavailable
    from solve_in_lean.models import GenerationError, ModelConfig

    try:
        cfg = load_config(mixtures, out=out)
    except ConfigError as e:
        fail(str(e))
    try:
        result = run_transfer(cfg, progress=False if json_out else None, log=None if json_out else typer.echo)
    except (ConfigError, DatasetError, RunError) as e:
        fail(str(e))
    except LeanUnavailable as e:
        fail(f"the {cfg.lean['backend']} Lean backend is not available: {e}")
    except GenerationError as e:
        fail(no_model_message(ModelConfig.from_dict(cfg.model), e))
    if json_out:
        print_json(result.to_dict())
    else:
        typer.echo("\n" + result.table())
        typer.echo(f"\nWrote {result.json_path} and {result.heatmap_path}")
    raise typer.Exit(EXIT_OK)
