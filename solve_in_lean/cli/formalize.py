"""`lean-solve formalize`: English -> Lean statements, one problem or a resumable JSONL batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from solve_in_lean.cli import app
from solve_in_lean.cli.common import (EXIT_OK, EXIT_REJECTED, CacheOpt, ConfigOpt, FormalizeSamplesOpt, HeaderOpt,
                                      JudgeOpt, LeanBackendOpt, MathlibOpt, MaxCharsOpt, MaxNewTokensOpt,
                                      ModelBackendOpt, ModelOpt, ModelOptionOpt, PresetOpt, RayOpt, RetryErrorsOpt,
                                      RoundsOpt, TemperatureOpt, TimeoutOpt, batch_io, check_header,
                                      make_generator, model_errors, print_json, read_header, settings_from)
from solve_in_lean.errors import InputError


def formalize_one(item: dict[str, Any], generator: Any, checker: Any, *, params: Any, options: Any,
                  header: str, preset: Any = None) -> Any:
    """One problem's FormalizationResult: statements that elaborate, ranked (autoformalize.formalize),
    under the preset's formalize and backtranslate queries when it has them."""
    from autoformalize.formalize import formalize

    text = options.check_problem(item["question"])
    return formalize(text, generator, checker, params=params, k=options.formalize_samples, rounds=options.rounds,
                     header=header, id=item["id"], kind=item["meta"].get("kind"), judge=options.judge,
                     timeout_s=options.timeout_s,
                     prompts=preset.autoformalize_prompts() if preset is not None else None)


def formalize_batch(items: list[dict[str, Any]], output: str | Path, generator: Any, checker: Any, *, params: Any,
                    options: Any, header: str, progress: bool | None = None, retry_errors: bool = False,
                    preset: Any = None) -> Any:
    """Formalize every problem not yet in `output` (batch.run_batch: resumable, per-problem errors)."""
    from solve_in_lean.batch import run_batch

    def record(item: dict[str, Any]) -> dict[str, Any]:
        result = formalize_one(item, generator, checker, params=params, options=options, header=header,
                               preset=preset)
        return {**result.to_dict(), "dataset": item.get("dataset", "default")}

    return run_batch(items, output, record, description="formalizing", progress=progress, retry_errors=retry_errors)


@app.command()
def formalize(
    text: Optional[str] = typer.Argument(None, help="The problem in English (or use --input)."),
    input: Optional[str] = typer.Option(
        None, "--input", "-i", help="JSONL of problems: id and question|problem|informal_statement."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="JSONL of results; a rerun resumes it."),
    formalize_samples: FormalizeSamplesOpt = None,
    rounds: RoundsOpt = None,
    kind: Optional[str] = typer.Option(None, "--kind", help="compute | prove (default: guessed from the text)."),
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
    retry_errors: RetryErrorsOpt = False,
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
    config: ConfigOpt = None,
) -> None:
    """Turn a problem in English into Lean 4 statements that elaborate; print the best one.

    Exit 0 when a statement elaborated (batch: when the batch finished), 1 when none did,
    2 when it could not run (no model, no Lean, bad input).
    """
    from solve_in_lean.problems import english_problems

    if kind not in (None, "compute", "prove"):
        raise InputError(f"--kind must be compute or prove, not {kind!r}")
    from solve_in_lean.settings import make_checker

    settings = settings_from(config, ray=ray, backend=backend, timeout=timeout, mathlib=mathlib, header=header, model=model,
                             model_backend=model_backend, model_option=model_option, temperature=temperature,
                             max_new_tokens=max_new_tokens, cache=cache, formalize_samples=formalize_samples,
                             rounds=rounds, judge=judge, max_problem_chars=max_problem_chars, preset=preset)
    from solve_in_lean.presets import preset_of

    chosen = preset_of(settings)
    with batch_io(text, input, output, english_problems) as (items, unusable):
        if input is None:
            settings.solve.check_problem(text or "")
            items = [{**items[0], "meta": {"kind": kind}}]
        header_text = read_header(settings)
        checker = make_checker(settings)
        with checker:
            check_header(checker, header_text, settings.solve.timeout_s)
            mcfg, generator = make_generator(settings)
            with generator, model_errors(mcfg):
                if input is not None:
                    summary = formalize_batch(items, output, generator, checker, params=mcfg.sampling,
                                              options=settings.solve, header=header_text, retry_errors=retry_errors,
                                              preset=chosen)
                    _print_batch(summary, unusable, output, json_out)
                else:
                    _print_one(formalize_one(items[0], generator, checker, params=mcfg.sampling,
                                             options=settings.solve, header=header_text, preset=chosen), json_out)


def _print_batch(summary: Any, unusable: list[str], output: str, json_out: bool) -> None:
    from autoformalize.metrics import format_table, metrics_by_dataset

    metrics = metrics_by_dataset(r for r in summary.records.values() if "error" not in r)
    if json_out:
        print_json({"output": output, "problems": summary.total, "finished": summary.finished,
                    "resumed": summary.resumed, "done_now": summary.done_now, "errors": summary.errors,
                    "unusable": unusable, "metrics": metrics})
    else:
        typer.echo(f"{output}: {summary.finished} of {summary.total} problems formalized "
                   f"({summary.resumed} from an earlier run, {summary.done_now} now, {summary.errors} errors)")
        if unusable:
            typer.echo(f"skipped {len(unusable)} rows with no problem text: "
                       f"{', '.join(unusable[:10])}{', ...' if len(unusable) > 10 else ''}")
        typer.echo(format_table(metrics))
    raise typer.Exit(EXIT_OK)


def _print_one(result: Any, json_out: bool) -> None:
    best = result.best
    if json_out:
        print_json(result.to_dict())
    elif best is None:
        typer.secho(result.summary(), fg="red")
    else:
        typer.echo(best.problem.statement.rstrip())
        typer.echo(f"\nBack-translation: {best.backtranslation or '(none)'}")
        checks = best.checks or {}
        verdict = {True: "faithful", False: "not faithful", None: "no verdict"}[best.verdict]
        typer.echo(f"Score {best.score:.2f}: judge {verdict}; quantities {checks.get('coverage', 0):.0%} "
                   f"covered{' (missing ' + ', '.join(checks['missing']) + ')' if checks.get('missing') else ''}; "
                   f"asked quantity {'formalized' if checks.get('asked') else 'NOT formalized'}")
        typer.echo(result.summary())
    raise typer.Exit(EXIT_OK if best is not None else EXIT_REJECTED)
