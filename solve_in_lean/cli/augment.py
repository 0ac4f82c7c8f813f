"""`lean-solve augment`: new problems from verified ones, each kept only with a Lean certificate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from solve_in_lean.cli import app
from solve_in_lean.cli.common import (EXIT_OK, CacheOpt, ConfigOpt, CotSamplesOpt, FormalizeSamplesOpt, HeaderOpt,
                                      JudgeOpt, LeanBackendOpt, MathlibOpt, MaxNewTokensOpt, ModelBackendOpt,
                                      ModelOpt, ModelOptionOpt, PresetOpt, RayOpt, RetryErrorsOpt, RoundsOpt,
                                      SamplesOpt, TemperatureOpt, TimeoutOpt, batch_io, check_header,
                                      check_writable_file, make_generator, model_errors, print_json, read_header,
                                      settings_from)
from solve_in_lean.errors import InputError


@app.command()
def augment(
    input: str = typer.Option(..., "--input", "-i", help="JSONL of source problems (English, compute statement "
                              "and a verified program for `numbers`)."),
    mode: str = typer.Option(..., "--mode", "-m", help="numbers | rephrase | harder | from-lean"),
    k: int = typer.Option(2, "-k", help="New problems tried per source problem."),
    output: str = typer.Option(..., "--output", "-o", help="JSONL of new problems; its log NEW.log.jsonl "
                               "beside it lets a rerun resume."),
    exclude: list[str] = typer.Option([], "--exclude", help="An evaluation split (problem file) new problems "
                                      "must not repeat (repeatable)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the new numbers."),
    header: HeaderOpt = None,
    backend: LeanBackendOpt = None,
    timeout: TimeoutOpt = None,
    mathlib: MathlibOpt = None,
    samples: SamplesOpt = None,
    rounds: RoundsOpt = None,
    formalize_samples: FormalizeSamplesOpt = None,
    cot_samples: CotSamplesOpt = None,
    judge: JudgeOpt = None,
    model: ModelOpt = None,
    preset: PresetOpt = None,
    model_backend: ModelBackendOpt = None,
    model_option: ModelOptionOpt = [],
    temperature: TemperatureOpt = None,
    max_new_tokens: MaxNewTokensOpt = None,
    cache: CacheOpt = None,
    ray: RayOpt = None,
    retry_errors: RetryErrorsOpt = False,
    json_out: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    config: ConfigOpt = None,
) -> None:
    """Augment problems with Lean certificates: every new problem carries its source id, its
    mode and Lean's evidence; variants Lean does not certify are dropped with the reason.

    numbers: new quantities in the English, the statement and the verified program, re-verified
    (no model). rephrase / harder / from-lean: the model writes the problem, kept only when
    formalize -> solve -> verify gives a Lean-verified answer (for rephrase, the source's).

    Exit 0 when the run finished, 2 when it could not run (bad input, no Lean).
    """
    from solve_in_lean.augment.dedup import Seen
    from solve_in_lean.augment.run import MODES, log_path, run
    from solve_in_lean.problems import load_items
    from solve_in_lean.settings import make_checker

    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}; choose one of: {', '.join(MODES)}")
    if k < 1:
        raise InputError(f"-k must be at least 1, not {k}")
    out = check_writable_file(output, "the new problems file", allow_existing=True)
    for path in (input, *exclude):
        if Path(path).exists() and out.exists() and out.resolve() == Path(path).resolve():
            raise InputError(f"{output}: the new problems file must not be {path}, which the run reads")
    seen = Seen()
    for path in exclude:
        seen.add(load_items(path), f"the evaluation split {path}")
    settings = settings_from(config, ray=ray, backend=backend, timeout=timeout, mathlib=mathlib, header=header, model=model,
                             model_backend=model_backend, model_option=model_option, temperature=temperature,
                             max_new_tokens=max_new_tokens, cache=cache, samples=samples, rounds=rounds,
                             formalize_samples=formalize_samples, cot_samples=cot_samples, judge=judge,
                             preset=preset)
    with batch_io(None, input, str(log_path(output)), lambda items: (items, [])) as (items, _):
        seen.add(items, f"the source set {input}")
        header_text = read_header(settings)
        checker = make_checker(settings)
        with checker:
            check_header(checker, header_text, settings.solve.timeout_s)
            if mode == "numbers":
                summary = run(items, output, _numbers(checker, header_text, k, seed, settings),
                              config={"mode": mode, "k": k, "seed": seed}, seen=seen, retry_errors=retry_errors)
            else:
                summary = _with_model(mode, items, output, checker, header_text, k, settings, seen, retry_errors)
    if json_out:
        print_json({"output": output, "log": str(log_path(output)), **summary.to_dict()})
    else:
        typer.echo(f"{output}: {summary.kept} new problems from {summary.sources} sources ({summary.resumed} "
                   f"from an earlier run); dropped {sum(summary.dropped.values())}, skipped "
                   f"{sum(summary.skipped.values())}, errors {summary.errors}")
        for what, counts in (("dropped", summary.dropped), ("skipped", summary.skipped)):
            for reason, n in sorted(counts.items(), key=lambda kv: -kv[1])[:5]:
                typer.echo(f"  {what} {n}: {reason}")
    raise typer.Exit(EXIT_OK)


def _numbers(checker: Any, header: str, k: int, seed: int, settings: Any) -> Any:
    from solve_in_lean.augment.numbers import augment as numbers

    policy, timeout_s = settings.lean.policy(), settings.solve.timeout_s
    return lambda item: numbers(item, checker, k=k, header=header, seed=seed, policy=policy, timeout_s=timeout_s)


def _with_model(mode: str, items: list[dict], output: str, checker: Any, header: str, k: int, settings: Any,
                seen: Any, retry_errors: bool) -> Any:
    from solve_in_lean.augment.generative import augment as generative
    from solve_in_lean.augment.run import run
    from solve_in_lean.pipeline import PipelineConfig
    from solve_in_lean.presets import preset_of

    mcfg, generator = make_generator(settings)
    cfg = PipelineConfig(options=settings.solve, header=header, policy=settings.lean.policy(),
                         preset=preset_of(settings))
    config = {"mode": mode, "k": k, "model": mcfg.model}
    if settings.preset:  # recorded only when chosen: logs made before presets resume unchanged
        config["preset"] = settings.preset
    with generator, model_errors(mcfg):
        return run(items, output, lambda item: generative(item, mode, generator, checker, k=k, params=mcfg.sampling,
                                                          cfg=cfg),
                   config=config,
                   seen=seen, retry_errors=retry_errors)
