"""`lean-solve verify-answer`: Lean's verdict on an informal answer (confirmed / refuted / unknown)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from solve_in_lean.cli import app
from solve_in_lean.cli.common import (EXIT_OK, EXIT_REJECTED, CacheOpt, ConfigOpt, FormalizeSamplesOpt, HeaderOpt,
                                      JudgeOpt, LeanBackendOpt, MathlibOpt, MaxCharsOpt, MaxNewTokensOpt,
                                      ModelBackendOpt, ModelOpt, ModelOptionOpt, RoundsOpt, SamplesOpt,
                                      TemperatureOpt, TimeoutOpt, check_header, make_generator, model_errors,
                                      print_json, read_header, settings_from)
from solve_in_lean.errors import InputError


@app.command("verify-answer")
def verify_answer(
    text: str = typer.Argument(..., help="The problem in English."),
    answer: str = typer.Option(..., "--answer", "-a", help="The answer to check (a number, or a Lean term)."),
    solution: Optional[str] = typer.Option(None, "--solution", help="An informal solution; the prover is asked "
                                           "to follow its steps (DTV)."),
    statement: Optional[str] = typer.Option(None, "--statement", help="File with the Lean compute statement "
                                            "(abbrev NAME_answer : T := sorry, then the theorem); default: "
                                            "formalize the English with the model."),
    samples: SamplesOpt = None,
    rounds: RoundsOpt = None,
    formalize_samples: FormalizeSamplesOpt = None,
    judge: JudgeOpt = None,
    max_problem_chars: MaxCharsOpt = None,
    header: HeaderOpt = None,
    backend: LeanBackendOpt = None,
    timeout: TimeoutOpt = None,
    mathlib: MathlibOpt = None,
    model: ModelOpt = None,
    model_backend: ModelBackendOpt = None,
    model_option: ModelOptionOpt = [],
    temperature: TemperatureOpt = None,
    max_new_tokens: MaxNewTokensOpt = None,
    cache: CacheOpt = None,
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
    config: ConfigOpt = None,
) -> None:
    """Check an informal answer with Lean: confirmed (a proof verified), refuted (Lean proved the
    negation, or computed another value under a determinate statement) or unknown.

    Exit 0 when confirmed, 1 when refuted or unknown, 2 when it could not run (bad input, no
    model, no Lean).
    """
    from solve_in_lean.settings import make_checker
    from solve_in_lean.verifier.run import verify_answer as run

    settings = settings_from(config, backend=backend, timeout=timeout, mathlib=mathlib, header=header, model=model,
                             model_backend=model_backend, model_option=model_option, temperature=temperature,
                             max_new_tokens=max_new_tokens, cache=cache, samples=samples, rounds=rounds,
                             formalize_samples=formalize_samples, judge=judge, max_problem_chars=max_problem_chars)
    settings.solve.check_problem(text)
    statement_text = _read(statement) if statement is not None else None
    header_text = read_header(settings)
    checker = make_checker(settings)
    with checker:
        check_header(checker, header_text, settings.solve.timeout_s)
        if statement_text is not None:  # a bad statement or answer is refused before the model loads
            from solve_in_lean.verifier.run import given_statement
            from solve_in_lean.verifier.values import lean_term

            lean_term(answer, given_statement(text, statement_text, header_text, checker,
                                              settings.solve.timeout_s).answer_type)
        mcfg, generator = make_generator(settings)
        with generator, model_errors(mcfg):
            rec = run(text, answer, generator, checker, params=mcfg.sampling, options=settings.solve,
                      header=header_text, policy=settings.lean.policy(), statement=statement_text, solution=solution)
    if json_out:
        print_json(rec)
    else:
        colour = {"confirmed": "green", "refuted": "red"}.get(rec["verdict"], "yellow")
        typer.secho(f"{rec['verdict']}: the answer {answer} ({rec['how']})", fg=colour)
        if rec.get("evidence"):
            typer.echo("\nLean code the kernel accepted:\n" + rec["evidence"].rstrip())
        for reason in rec.get("reasons", []):
            typer.echo(f"- {reason}")
    raise typer.Exit(EXIT_OK if rec["verdict"] == "confirmed" else EXIT_REJECTED)


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: the statement file cannot be read ({getattr(e, 'strerror', None) or e})") from None
