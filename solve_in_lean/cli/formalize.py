"""`lean-solve formalize`: English -> Lean statements, one problem or a resumable JSONL batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import typer

from solve_in_lean.cli import app
from solve_in_lean.cli.common import (ConfigOpt, EXIT_OK, EXIT_REJECTED, LeanBackendOpt, MaxNewTokensOpt,
                                      ModelBackendOpt, ModelOpt, ModelOptionOpt, TemperatureOpt, TimeoutOpt,
                                      check_header, fail, load_settings_or_fail, make_checker, make_generator,
                                      no_model_message, print_json, read_header, sampling_params)


def read_problems(path: str | Path) -> list[dict[str, Any]]:
    """Problems of a JSONL file (any format `lean-solve eval` reads): id, English text, dataset, kind."""
    from solve_in_lean.eval.datasets import TEXT_FIELDS, load_items

    problems = []
    for n, item in enumerate(load_items(path), start=1):
        if not item["question"]:
            raise ValueError(f"{path}: problem {n} has none of the fields {', '.join(TEXT_FIELDS)}")
        kind = item["meta"].get("kind")
        if kind not in (None, "compute", "prove"):
            raise ValueError(f"{path}: problem {item['id']!r} has kind {kind!r}; expected compute or prove")
        problems.append({"id": item["id"], "text": item["question"], "dataset": item["dataset"], "kind": kind})
    return problems


def formalize_batch(problems: list[dict[str, Any]], output: str | Path, generator: Any, checker: Any, *,
                    params: Any, progress: bool | None = None, **options: Any) -> tuple[int, int]:
    """Formalize every problem not yet in `output`, appending one record per finished problem.

    A killed run loses at most the problem in flight; rerunning skips what is done.
    Returns (problems already done, problems done now). `options` go to `formalize`.
    """
    from autoformalize.formalize import formalize
    from solve_in_lean.progress import track
    from solve_in_lean.records import ResultStore

    store = ResultStore(output)
    before = sum(1 for p in problems if p["id"] in store)
    todo = [p for p in problems if p["id"] not in store]
    for p in track(todo, total=len(todo), description="formalizing", enabled=progress):
        result = formalize(p["text"], generator, checker, params=params, id=p["id"], kind=p.get("kind"), **options)
        store.add({**result.to_dict(), "dataset": p.get("dataset", "default")})
    return before, len(todo)


@app.command()
def formalize(
    text: Optional[str] = typer.Argument(None, help="The problem in English (or use --input)."),
    input: Optional[str] = typer.Option(
        None, "--input", "-i", help="JSONL of problems: id and question|problem|informal_statement."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="JSONL of results; a rerun resumes it."),
    k: int = typer.Option(8, "-k", "--samples", help="Samples from the model per problem."),
    rounds: int = typer.Option(2, "--rounds", help="Repair rounds with Lean's error messages."),
    kind: Optional[str] = typer.Option(None, "--kind", help="compute | prove (default: guessed from the text)."),
    judge: bool = typer.Option(True, "--judge/--no-judge", help="Ask the model whether the back-translation matches."),
    header: Optional[str] = typer.Option(None, "--header", help="File with the imports/opens (default: Mathlib)."),
    backend: LeanBackendOpt = None,
    timeout: TimeoutOpt = None,
    model: ModelOpt = None,
    model_backend: ModelBackendOpt = None,
    model_option: ModelOptionOpt = [],
    temperature: TemperatureOpt = None,
    max_new_tokens: MaxNewTokensOpt = None,
    json_out: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
    config: ConfigOpt = None,
) -> None:
    """Turn a problem in English into Lean 4 statements that elaborate; print the best one.

    Exit 0 when a statement elaborated (batch: when the batch finished), 1 when none did,
    2 when it could not run (no model, no Lean, bad input).
    """
    if (text is None) == (input is None):
        fail("give either a problem text or --input FILE")
    if input is not None and output is None:
        fail("--input needs --output FILE (the results file a rerun resumes)")
    if k < 1 or rounds < 0:
        fail("-k must be at least 1 and --rounds at least 0")
    if kind not in (None, "compute", "prove"):
        fail(f"--kind must be compute or prove, not {kind!r}")
    problems: list[dict[str, Any]] = []
    if input is not None:
        if not Path(input).is_file():
            fail(f"{input}: no such file")
        try:
            problems = read_problems(input)
        except ValueError as e:
            fail(str(e))
    settings = load_settings_or_fail(config)
    header_text = read_header(header)
    checker = make_checker(settings, backend, timeout=timeout)
    check_header(checker, header_text)
    cfg, generator = make_generator(settings, model_backend, model, model_option)
    params = sampling_params(cfg, temperature=temperature, max_new_tokens=max_new_tokens, k=k)
    options = dict(k=k, rounds=rounds, header=header_text, judge=judge, timeout_s=timeout)
    from solve_in_lean.models import GenerationError

    try:
        with checker:
            if input is not None:
                _run_batch(problems, output, generator, checker, params, options, json_out)
            else:
                _run_one(text, kind, generator, checker, params, options, json_out)
    except GenerationError as e:
        fail(no_model_message(cfg, e))


def _run_batch(problems: list[dict[str, Any]], output: str, generator: Any, checker: Any, params: Any,
               options: dict[str, Any], json_out: bool) -> None:
    from autoformalize.metrics import format_table, metrics_by_dataset
    from solve_in_lean.records import read_jsonl

    before, now = formalize_batch(problems, output, generator, checker, params=params, **options)
    ids = {p["id"] for p in problems}
    metrics = metrics_by_dataset(r for r in read_jsonl(output) if r["id"] in ids)
    if json_out:
        print_json({"output": output, "problems": len(problems), "resumed": before, "done_now": now,
                    "metrics": metrics})
    else:
        typer.echo(f"{output}: {before + now} of {len(problems)} problems formalized "
                   f"({before} from an earlier run, {now} now)")
        typer.echo(format_table(metrics))
    raise typer.Exit(EXIT_OK)


def _run_one(text: str, kind: str | None, generator: Any, checker: Any, params: Any, options: dict[str, Any],
             json_out: bool) -> None:
    from autoformalize.formalize import formalize as run

    result = run(text, generator, checker, params=params, kind=kind, **options)
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
