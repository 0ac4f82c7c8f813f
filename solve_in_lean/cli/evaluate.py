"""`lean-solve eval`: one task on one data file into a resumable, reproducible run directory."""

from __future__ import annotations

from typing import Any, Optional

import typer

from solve_in_lean.cli import app
from solve_in_lean.cli.common import (EXIT_OK, CacheOpt, ConfigOpt, CotSamplesOpt, FormalizeSamplesOpt, HeaderOpt,
                                      JudgeOpt, LeanBackendOpt, MathlibOpt, MaxCharsOpt, MaxNewTokensOpt,
                                      ModelBackendOpt, ModelOpt, ModelOptionOpt, RayOpt, RetryErrorsOpt, RoundsOpt,
                                      SamplesOpt, TemperatureOpt, TimeoutOpt, check_header, check_writable_dir,
                                      make_generator, model_errors, PresetOpt, print_json, read_header,
                                      settings_from, writes_fail_cleanly)
from solve_in_lean.errors import InputError

TASK_HELP = "cot | code | lean-solve | via-lean | formalize | backtranslate | prove | rerank"


@app.command("eval")
def eval_command(
    task: str = typer.Option(..., "--task", "-t", help=TASK_HELP),
    data: str = typer.Option(..., "--data", "-d", help="JSONL: GSM8K, MATH, miniF2F, formalize records or "
                                                       "our own format (docs/evaluation.md)."),
    out: str = typer.Option(..., "--out", "-o", help="Run directory; running again resumes it."),
    data_format: str = typer.Option("auto", "--format", help="auto | gsm8k | math | minif2f | jsonl | formalized; "
                                    "benchmarks: proofnet | putnambench | mathbench | hungarian | math500"),
    split: Optional[str] = typer.Option(None, "--split", help="Only items of this split (miniF2F: test, valid)."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Evaluate N items drawn at random under --seed."),
    seed: int = typer.Option(0, "--seed", help="Seeds the item sample and the model's sampling."),
    k: list[int] = typer.Option([], "-k", help="prove: report pass@k for this k (repeatable; default 1)."),
    search: Optional[str] = typer.Option(None, "--search", help="prove: best-first search over REPL tactic states "
                                                                "instead of whole proofs (needs -b repl)."),
    expansions: int = typer.Option(64, "--expansions", help="--search: states expanded per problem (model calls)."),
    tactics_per_state: int = typer.Option(8, "--tactics-per-state", help="--search: tactics sampled per state."),
    samples: SamplesOpt = None,
    rounds: RoundsOpt = None,
    formalize_samples: FormalizeSamplesOpt = None,
    cot_samples: CotSamplesOpt = None,
    judge: JudgeOpt = None,
    max_problem_chars: MaxCharsOpt = None,
    header: HeaderOpt = None,
    backend: LeanBackendOpt = None,
    timeout: TimeoutOpt = None,
    mathlib: MathlibOpt = None,
    model: ModelOpt = None,
    preset: PresetOpt = None,
    model_backend: ModelBackendOpt = None,
    model_option: ModelOptionOpt = [],
    temperature: TemperatureOpt = None,
    max_new_tokens: MaxNewTokensOpt = None,
    cache: CacheOpt = None,
    ray: RayOpt = None,
    workers: int = typer.Option(1, "--workers", help="Items in flight at once, their model calls batched "
                                                     "together (for vLLM/http on a GPU)."),
    retry_errors: RetryErrorsOpt = False,
    json_out: bool = typer.Option(False, "--json", help="Print JSON (and no progress bar)."),
    config: ConfigOpt = None,
) -> None:
    """Evaluate a model on a task: per-item records, metrics with confidence intervals.

    Generations are cached by default (docs/config.md: where, `--cache off`). Exit 0 when every
    item is done, 2 when the run could not start or had to stop (bad data, another run in --out,
    no model, no Lean, a full disk).
    """
    from solve_in_lean.eval.run import evaluate, lean_headers, select_items
    from solve_in_lean.eval.tasks import NEEDS_LEAN, TASKS, TaskContext, TaskOptions

    if task not in TASKS:
        raise InputError(f"unknown task {task!r}; choose one of: {', '.join(TASKS)}")
    if k and task != "prove":
        raise InputError("-k sets the pass@k values of the prove task; use --samples for samples per problem")
    if workers < 1:
        raise InputError("--workers must be at least 1")
    if search is not None and task != "prove":
        raise InputError("--search is a way to prove: use it with --task prove")
    if search is not None and rounds:
        raise InputError("--rounds repairs whole proofs; a search has no repair rounds")
    from solve_in_lean.presets import get_preset
    from solve_in_lean.settings import make_checker

    settings = settings_from(config, ray=ray, backend=backend, timeout=timeout, mathlib=mathlib, header=header, model=model,
                             model_backend=model_backend, model_option=model_option, temperature=temperature,
                             max_new_tokens=max_new_tokens, cache=cache, seed=seed, samples=samples, rounds=rounds,
                             formalize_samples=formalize_samples, cot_samples=cot_samples, judge=judge,
                             max_problem_chars=max_problem_chars, preset=preset)
    chosen = get_preset(settings.preset) if settings.preset else None
    prove_rounds = 0  # prove repairs only when asked: by default its pass@k is over independent samples
    if task == "prove" and search is None:
        prove_rounds = rounds if rounds is not None else (chosen.rounds if chosen else 0)
    if task == "cot" and settings.solve.cot_samples < 1:
        raise InputError("the cot task needs --cot-samples of at least 1")
    options = TaskOptions(settings.solve, tuple(k) or (1,), search, expansions, tactics_per_state,
                          prove_rounds=prove_rounds)
    selection = select_items(task, data, fmt=data_format, split=split, limit=limit, seed=seed)
    check_writable_dir(out, "the run directory")
    writes_fail_cleanly()
    header_text = read_header(settings) if task in NEEDS_LEAN else ""
    checker = make_checker(settings) if task in NEEDS_LEAN else None
    if search is not None and not hasattr(checker, "tactic_session"):
        checker.close()
        raise InputError(f"--search needs Lean's tactic states, which the {checker.name} backend does not give; "
                         "use -b repl (installed by `lean-solve setup`)")
    try:
        for h in lean_headers(selection, header_text):
            check_header(checker, h, settings.solve.timeout_s)
        mcfg, generator = make_generator(settings, cache_by_default=True)
        ctx = TaskContext(generator, checker, mcfg.sampling, options, header_text, settings.lean.policy(),
                          auto_temperature=settings.auto_temperature, preset=chosen)
        with generator, model_errors(mcfg):
            run, summary, metrics = evaluate(out, selection, ctx, model={**mcfg.to_dict(), "preset": settings.preset},
                                             progress=False if json_out else None, retry_errors=retry_errors,
                                             workers=workers)
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
