"""`lean-solve solve`: English (or a formal statement) -> verified answer, one problem or a batch."""

from __future__ import annotations

from typing import Any, Optional

import typer

from solve_in_lean.cli import app
from solve_in_lean.cli.common import (EXIT_OK, EXIT_REJECTED, CacheOpt, ConfigOpt, CotSamplesOpt,
                                      FormalizeSamplesOpt, HeaderOpt, JudgeOpt, LeanBackendOpt, MathlibOpt,
                                      MaxCharsOpt, MaxNewTokensOpt, ModelBackendOpt, ModelOpt, ModelOptionOpt, PresetOpt,
                                      RayOpt, RetryErrorsOpt, RoundsOpt, SamplesOpt, TemperatureOpt, TimeoutOpt, batch_io,
                                      check_header, make_generator, model_errors, print_json,
                                      read_header, settings_from)


@app.command()
def solve(
    text: Optional[str] = typer.Argument(None, help="The problem in English (or use --input)."),
    input: Optional[str] = typer.Option(None, "--input", "-i", help="JSONL of problems."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="JSONL of results; a rerun resumes it."),
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
    retry_errors: RetryErrorsOpt = False,
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
    config: ConfigOpt = None,
) -> None:
    """Solve a problem through Lean: formalize, compute and prove, answer in English.

    Exit 0 when the answer is verified (batch: when the batch finished), 1 when it is not,
    2 when it could not run (no model, no Lean, bad input).
    """
    from solve_in_lean.pipeline import PipelineConfig
    from solve_in_lean.presets import preset_of
    from solve_in_lean.problems import solvable

    from solve_in_lean.settings import make_checker

    settings = settings_from(config, ray=ray, backend=backend, timeout=timeout, mathlib=mathlib, header=header, model=model,
                             model_backend=model_backend, model_option=model_option, temperature=temperature,
                             max_new_tokens=max_new_tokens, cache=cache, samples=samples, rounds=rounds,
                             formalize_samples=formalize_samples, cot_samples=cot_samples, judge=judge,
                             max_problem_chars=max_problem_chars, preset=preset)
    with batch_io(text, input, output, solvable) as (items, unusable):
        if input is None:
            settings.solve.check_problem(text or "")
        header_text = read_header(settings)
        checker = make_checker(settings)
        with checker:
            check_header(checker, header_text, settings.solve.timeout_s)
            mcfg, generator = make_generator(settings)
            cfg = PipelineConfig(options=settings.solve, header=header_text, policy=settings.lean.policy(),
                                 preset=preset_of(settings))
            with generator, model_errors(mcfg):
                if input is not None:
                    _batch(items, unusable, output, generator, checker, mcfg.sampling, cfg, retry_errors, json_out)
                else:
                    _one(items[0], generator, checker, mcfg.sampling, cfg, json_out)


def _one(item: dict, generator: Any, checker: Any, params: Any, cfg: Any, json_out: bool) -> None:
    from solve_in_lean.pipeline import run_problem

    rec = run_problem(item, generator, checker, params=params, cfg=cfg)
    if json_out:
        print_json(rec)
    else:
        colour = {"verified": "green", "unverified": "yellow"}.get(rec["status"], "red")
        typer.secho(rec["informal"]["text"], fg=colour)
        if rec["lean_code"]:
            typer.echo("\nLean code that proves it:\n" + rec["lean_code"].rstrip())
        typer.echo("\n" + rec["informal"]["explanation"])
        t = rec["timings"]
        typer.echo(f"\nTime: formalize {t['formalize_s']:.1f} s, solve {t['solve_s']:.1f} s, "
                   f"explain {t['explain_s']:.1f} s (model {t['model_s']:.1f} s, Lean {t['lean_s']:.1f} s, "
                   f"total {t['total_s']:.1f} s)")
    raise typer.Exit(EXIT_OK if rec["verified"] else EXIT_REJECTED)


def _batch(items: list[dict], unusable: list[str], output: str, generator: Any, checker: Any, params: Any,
           cfg: Any, retry_errors: bool, json_out: bool) -> None:
    from solve_in_lean.batch import run_batch
    from solve_in_lean.pipeline import run_problem

    summary = run_batch(items, output, lambda it: run_problem(it, generator, checker, params=params, cfg=cfg),
                        description="solving", retry_errors=retry_errors)
    records = summary.records.values()
    counts = {s: sum(1 for r in records if r.get("status") == s) for s in ("verified", "unverified", "no answer")}
    counts["error"] = summary.errors
    if json_out:
        print_json({"output": output, "problems": summary.total, "finished": summary.finished,
                    "resumed": summary.resumed, "done_now": summary.done_now, "status": counts,
                    "unusable": unusable})
    else:
        typer.echo(f"{output}: {summary.finished} of {summary.total} problems done ({summary.resumed} from an "
                   f"earlier run); verified {counts['verified']}, unverified {counts['unverified']}, "
                   f"no answer {counts['no answer']}, errors {counts['error']}")
        if unusable:
            typer.echo(f"skipped {len(unusable)} rows with no problem text or statement: "
                       f"{', '.join(unusable[:10])}{', ...' if len(unusable) > 10 else ''}")
    raise typer.Exit(EXIT_OK)

