"""`lean-solve solve`: English (or a formal statement) -> verified answer, one problem or a batch."""

from __future__ import annotations

from typing import Any, Optional

import typer

from solve_in_lean.cli import app
from solve_in_lean.cli.common import (ConfigOpt, EXIT_OK, EXIT_REJECTED, LeanBackendOpt, MaxNewTokensOpt,
                                      ModelBackendOpt, ModelOpt, ModelOptionOpt, TemperatureOpt, TimeoutOpt,
                                      check_header, fail, load_settings_or_fail, make_checker, make_generator,
                                      no_model_message, print_json, read_header, sampling_params)


def read_items(path: str) -> list[dict[str, Any]]:
    """Problems of a JSONL file in any format `lean-solve eval` reads (GSM8K, MATH, miniF2F, ours),
    keeping those with an English problem or a formal statement."""
    from solve_in_lean.eval.datasets import DatasetError, load_items, usable

    try:
        return usable("lean-solve", load_items(path), path)
    except DatasetError as e:
        fail(str(e))


@app.command()
def solve(
    text: Optional[str] = typer.Argument(None, help="The problem in English (or use --input)."),
    input: Optional[str] = typer.Option(None, "--input", "-i", help="JSONL of problems."),
    output: Optional[str] = typer.Option(None, "--output", "-o", help="JSONL of results; a rerun resumes it."),
    k: int = typer.Option(8, "-k", "--samples", help="Lean programs sampled per problem."),
    rounds: int = typer.Option(1, "--rounds", help="Repair rounds with Lean's errors."),
    formalize_k: int = typer.Option(4, "--formalize-k", help="Statements sampled per problem."),
    cot_k: int = typer.Option(4, "--cot-k", help="Chain-of-thought samples (the unverified fallback)."),
    header: Optional[str] = typer.Option(None, "--header", help="File with imports/opens (default: Mathlib)."),
    backend: LeanBackendOpt = None,
    timeout: TimeoutOpt = None,
    model: ModelOpt = None,
    model_backend: ModelBackendOpt = None,
    model_option: ModelOptionOpt = [],
    temperature: TemperatureOpt = None,
    max_new_tokens: MaxNewTokensOpt = None,
    retry_errors: bool = typer.Option(False, "--retry-errors", help="Batch: rerun problems that raised."),
    json_out: bool = typer.Option(False, "--json", help="Print JSON."),
    config: ConfigOpt = None,
) -> None:
    """Solve a problem through Lean: formalize, compute and prove, answer in English.

    Exit 0 when the answer is verified (batch: when the batch finished), 1 when it is not,
    2 when it could not run (no model, no Lean, bad input).
    """
    from solve_in_lean.models import GenerationError
    from solve_in_lean.pipeline import PipelineConfig
    from solve_in_lean.solve import SolveConfig
    from solve_in_lean.verify import Policy

    if (text is None) == (input is None):
        fail("give either a problem text or --input FILE")
    if input is not None and output is None:
        fail("--input needs --output FILE (the results file a rerun resumes)")
    if min(k, formalize_k) < 1 or min(rounds, cot_k) < 0:
        fail("-k and --formalize-k must be at least 1; --rounds and --cot-k at least 0")
    items = read_items(input) if input else [{"id": "problem", "question": text}]
    settings = load_settings_or_fail(config)
    header_text = read_header(header)
    checker = make_checker(settings, backend, timeout=timeout)
    check_header(checker, header_text)
    mcfg, generator = make_generator(settings, model_backend, model, model_option)
    params = sampling_params(mcfg, temperature=temperature, max_new_tokens=max_new_tokens, k=k)
    policy = Policy.with_extra(settings.lean.allow_axioms, settings.lean.allow_native)
    cfg = PipelineConfig(formalize_k=formalize_k, formalize_rounds=rounds, header=header_text,
                         solve=SolveConfig(k=k, rounds=rounds, cot_k=cot_k, timeout_s=timeout, policy=policy))
    try:
        with checker:
            if input is not None:
                _batch(items, output, generator, checker, params, cfg, retry_errors, json_out)
            else:
                _one(items[0], generator, checker, params, cfg, json_out)
    except GenerationError as e:
        fail(no_model_message(mcfg, e))


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


def _batch(items: list[dict], output: str, generator: Any, checker: Any, params: Any, cfg: Any,
           retry_errors: bool, json_out: bool) -> None:
    from solve_in_lean.batch import run_resumable
    from solve_in_lean.pipeline import run_problem
    from solve_in_lean.records import read_jsonl

    summary = run_resumable(items, output, lambda it: run_problem(it, generator, checker, params=params, cfg=cfg),
                            description="solving", retry_errors=retry_errors)
    ids = {it["id"] for it in items}
    records = [r for r in read_jsonl(output) if r["id"] in ids]
    counts = {s: sum(1 for r in records if r.get("status") == s) for s in ("verified", "unverified", "no answer")}
    counts["error"] = sum(1 for r in records if "error" in r)
    if json_out:
        print_json({"output": output, "problems": summary.total, "resumed": summary.resumed,
                    "done_now": summary.done_now, "status": counts})
    else:
        typer.echo(f"{output}: {len(records)} of {summary.total} problems done ({summary.resumed} from an "
                   f"earlier run); verified {counts['verified']}, unverified {counts['unverified']}, "
                   f"no answer {counts['no answer']}, errors {counts['error']}")
    raise typer.Exit(EXIT_OK)
