"""`lean-solve eval`: one task on one data file into a resumable, reproducible run directory."""

from __future__ import annotations

from typing import Any, Optional

import typer

from solve_in_lean.cli import app
from solve_in_lean.cli.common import (ConfigOpt, EXIT_OK, LeanBackendOpt, MaxNewTokensOpt, ModelBackendOpt,
                                      ModelOpt, ModelOptionOpt, TemperatureOpt, TimeoutOpt, check_header,
                                      fail, load_settings_or_fail, make_checker, make_generator,
                                      no_model_message, print_json, read_header, sampling_params)

TASK_HELP = "cot | lean-solve | formalize | backtranslate | prove"


@app.command("eval")
def eval_command(
    task: str = typer.Option(..., "--task", "-t", help=TASK_HELP),
    data: str = typer.Option(..., "--data", "-d", help="JSONL: GSM8K, MATH, miniF2F, formalize records or "
                                                       "our own format (docs/evaluation.md)."),
    out: str = typer.Option(..., "--out", "-o", help="Run directory; running again resumes it."),
    data_format: str = typer.Option("auto", "--format", help="auto | gsm8k | math | minif2f | jsonl | formalized"),
    split: Optional[str] = typer.Option(None, "--split", help="Only items of this split (miniF2F: test, valid)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Evaluate N items drawn at random under --seed."),
    seed: int = typer.Option(0, "--seed", help="Seeds the item sample and the model's sampling."),
    k: list[int] = typer.Option([], "-k", help="prove: report pass@k for this k (repeatable; default 1)."),
    samples: Optional[int] = typer.Option(None, "--samples", "-n",
                                          help="Samples per problem (prove: default the largest k; else 1)."),
    rounds: int = typer.Option(0, "--rounds", help="Repair rounds with Lean's errors (lean-solve, formalize)."),
    formalize_k: int = typer.Option(1, "--formalize-k", help="Statements sampled per problem."),
    cot_k: int = typer.Option(1, "--cot-k", help="lean-solve: chain-of-thought samples for the fallback."),
    judge: bool = typer.Option(True, "--judge/--no-judge", help="Judge back-translations with the model."),
    header: Optional[str] = typer.Option(None, "--header", help="Lean header for items without one (default: Mathlib)."),
    backend: LeanBackendOpt = None,
    timeout: TimeoutOpt = None,
    model: ModelOpt = None,
    model_backend: ModelBackendOpt = None,
    model_option: ModelOptionOpt = [],
    temperature: TemperatureOpt = None,
    max_new_tokens: MaxNewTokensOpt = None,
    workers: int = typer.Option(1, "--workers", help="Items in flight at once, their model calls batched "
                                                     "together (for vLLM/http on a GPU)."),
    retry_errors: bool = typer.Option(False, "--retry-errors", help="Rerun items whose run raised."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON (and no progress bar)."),
    config: ConfigOpt = None,
) -> None:
    """Evaluate a model on a task: per-item records, metrics with confidence intervals.

    Exit 0 when every item is done, 2 when the run could not start or had to stop
    (bad data, another run in --out, no model, no Lean).
    """
    from dataclasses import replace

    from solve_in_lean.eval.datasets import DatasetError
    from solve_in_lean.eval.run import RunError, evaluate, lean_headers, select_items
    from solve_in_lean.eval.tasks import NEEDS_LEAN, TASKS, TaskContext, TaskOptions
    from solve_in_lean.models import GenerationError
    from solve_in_lean.verify import Policy

    if task not in TASKS:
        fail(f"unknown task {task!r}; choose one of: {', '.join(TASKS)}")
    if k and task != "prove":
        fail("-k sets the pass@k values of the prove task; use --samples for samples per problem")
    if workers < 1:
        fail("--workers must be at least 1")
    ks = tuple(k) or (1,)
    n = samples if samples is not None else (max(ks) if task == "prove" else 1)
    try:
        options = TaskOptions(samples=n, ks=ks if task == "prove" else (1,), rounds=rounds,
                              formalize_k=formalize_k, cot_k=cot_k, judge=judge, timeout_s=timeout)
        selection = select_items(task, data, fmt=data_format, split=split, limit=limit, seed=seed)
    except (ValueError, DatasetError) as e:
        fail(str(e))
    settings = load_settings_or_fail(config)
    header_text = read_header(header) if task in NEEDS_LEAN else ""
    checker = make_checker(settings, backend, timeout=timeout) if task in NEEDS_LEAN else None
    for h in lean_headers(selection, header_text):
        check_header(checker, h)
    mcfg, generator = make_generator(settings, model_backend, model, model_option)
    mcfg = mcfg.with_overrides(seed=seed)
    params = replace(sampling_params(mcfg, temperature=temperature, max_new_tokens=max_new_tokens, k=n), seed=seed)
    policy = Policy.with_extra(settings.lean.allow_axioms, settings.lean.allow_native)
    ctx = TaskContext(generator, checker, params, options, header_text, policy)
    try:
        run, summary, metrics = evaluate(out, selection, ctx, model=mcfg.to_dict(),
                                         progress=False if json_out else None, retry_errors=retry_errors,
                                         workers=workers)
    except RunError as e:
        fail(str(e))
    except GenerationError as e:
        fail(no_model_message(mcfg, e))
    finally:
        if checker is not None:
            checker.close()
    _print(run, summary, metrics, selection.unusable, json_out)
    raise typer.Exit(EXIT_OK)


def _print(run: Any, summary: Any, metrics: dict[str, Any], unusable: int, json_out: bool) -> None:
    from solve_in_lean.eval.report import metrics_lines

    if json_out:
        print_json({"run_dir": str(run.dir), "task": run.task, "items": summary.total, "resumed": summary.resumed,
                    "done_now": summary.done_now, "errors": metrics["errors"], "unusable": unusable,
                    "main": metrics["main"],
                    "metrics": metrics["metrics"]})
        return
    typer.echo(f"{run.dir}: {run.task} on {len(run.config['item_ids'])} items of {run.config['data']}; "
               f"{summary.resumed} from an earlier run, {summary.done_now} now, {metrics['errors']} errors")
    if unusable:
        typer.echo(f"({unusable} items of the file are not {run.task} problems and were left out)")
    typer.echo("\n".join(metrics_lines(metrics)))
