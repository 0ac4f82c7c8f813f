"""`lean-solve iterate`: rounds of solve -> verified data -> fine-tune -> re-evaluate, with the
transfer matrix tracked round by round (eval/iterate.py)."""

from __future__ import annotations

from typing import Optional

import typer

from solve_in_lean.cli import app
from solve_in_lean.cli.common import EXIT_OK, RayOpt, check_writable_dir, model_errors, print_json


@app.command("iterate")
def iterate_command(
    config: str = typer.Option(..., "--config", "-c", help="Iteration config (TOML): base model, training pools, "
                                                            "mixture, fine-tuning, evaluation sets, rounds "
                                                            "(docs/evaluation.md)."),
    out: Optional[str] = typer.Option(None, "--out", "-o", help="Run directory (default: the config's `out`); "
                                                                "running again resumes it."),
    one_model: bool = typer.Option(False, "--one-model", help="Stop before a second model would generate in this "
                                                              "process (vLLM does not reliably free GPU memory); "
                                                              "rerun until it says done."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON (and no progress bars)."),
    ray: RayOpt = None,
) -> None:
    """Self-iteration: each round solves the training pools with the current model, keeps only
    verified output (evaluation items never enter), fine-tunes, and evaluates every task.

    Resumable at every stage: kill it anywhere and rerun; finished work is kept. A round with no
    verified data completes with training skipped (unless the config sets stop_when_empty).
    Exit 0 when done, 2 when it could not run (bad config, no model, no Lean, another run in --out).
    """
    from solve_in_lean.eval.iterate import load_config, run_iteration

    cfg = load_config(config, out=out)
    if ray is not None:
        cfg.settings = cfg.settings.with_flags(ray={"address": ray}, flags={"address": "--ray"})
    check_writable_dir(cfg.out, "the output folder")
    progress, log = (False, None) if json_out else (None, typer.echo)
    with model_errors(cfg.settings.model):
        result = run_iteration(cfg, progress=progress, log=log, one_model=one_model)
    if json_out:
        print_json(result.to_dict())
    else:
        typer.echo("\n" + result.table())
        typer.echo(f"\nWrote {cfg.out / 'iterate.json'}, {cfg.out / 'rounds.png'} and {cfg.out / 'heatmaps.png'}")
    raise typer.Exit(EXIT_OK)
