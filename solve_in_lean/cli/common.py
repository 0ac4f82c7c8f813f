"""What every command shares: exit codes, one-sentence errors, JSON output, settings."""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any, NoReturn, Optional

import typer

EXIT_OK, EXIT_REJECTED, EXIT_UNAVAILABLE = 0, 1, 2

# Options several commands share, declared once so they read and behave the same everywhere.
LeanBackendOpt = Annotated[Optional[str], typer.Option("--backend", "-b", help="Lean backend: repl | lake | kernel | auto")]
TimeoutOpt = Annotated[Optional[float], typer.Option("--timeout", help="Seconds per Lean check before Lean is killed.")]
ModelOpt = Annotated[Optional[str], typer.Option("--model", help="Model name or local folder.")]
ModelBackendOpt = Annotated[Optional[str], typer.Option("--model-backend", help="transformers | vllm | http")]
ModelOptionOpt = Annotated[list[str], typer.Option("--model-option", help="Backend option key=value (repeatable).")]
TemperatureOpt = Annotated[Optional[float], typer.Option(
    "--temperature", help="Sampling temperature (default: the config's; 0.8 if that is 0 and several samples are asked).")]
MaxNewTokensOpt = Annotated[Optional[int], typer.Option("--max-new-tokens", help="Tokens per completion.")]
ConfigOpt = Annotated[Optional[str], typer.Option("--config", help="Config file (TOML).")]


def fail(message: str, code: int = EXIT_UNAVAILABLE) -> NoReturn:
    """Print one readable sentence on stderr and exit; no traceback for expected failures."""
    typer.echo(f"lean-solve: {message}", err=True)
    raise typer.Exit(code)


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=None, default=str) + "\n")


def load_settings_or_fail(path: str | None) -> Any:
    from solve_in_lean.config import ConfigError, load_settings

    try:
        return load_settings(path)
    except ConfigError as e:
        fail(str(e))


def make_checker(settings: Any, backend: str | None = None, *, timeout: float | None = None,
                 mathlib: bool | None = None) -> Any:
    """The Lean backend named on the command line or in the config, or a clear exit 2."""
    from solve_in_lean.config import resolve_backend
    from solve_in_lean.lean import BACKENDS, LeanUnavailable, get_checker

    lean = settings.lean
    name = resolve_backend(backend or lean.backend)
    if name not in BACKENDS:
        fail(f"unknown Lean backend {name!r}; choose one of: auto, {', '.join(BACKENDS)}")
    options: dict[str, Any] = dict(timeout_s=timeout or lean.timeout_s, memory_mb=lean.memory_mb,
                                   workers=lean.workers)
    if name != "kernel":
        options["mathlib"] = lean.mathlib if mathlib is None else mathlib
    try:
        return get_checker(name, **options)
    except LeanUnavailable as e:
        fail(f"the {name} backend is not available: {e}")


def make_generator(settings: Any, model_backend: str | None, model: str | None,
                   options: list[str]) -> tuple[Any, Any]:
    """(ModelConfig, generator) from config and flags, or a clear exit 2 saying how to get a model."""
    from solve_in_lean.models import GenerationError, ModelConfig, generator_from_config, parse_options

    try:
        cfg = ModelConfig.from_dict(settings.model).with_overrides(
            backend=model_backend, model=model, options=parse_options(options) or None)
    except ValueError as e:
        fail(f"bad model settings: {e}")
    try:
        return cfg, generator_from_config(cfg)
    except GenerationError as e:
        fail(no_model_message(cfg, e))


def no_model_message(cfg: Any, error: Exception) -> str:
    """Which model is missing and how to get one, in two sentences."""
    from pathlib import Path

    what = f"no model available ({cfg.backend} backend, model {cfg.model!r}: {str(error).rstrip('.')})."
    if cfg.backend == "http":
        return (f"{what} Start an OpenAI-compatible server (`vllm serve MODEL`, or "
                "`python -m solve_in_lean.models.serve`) or set --model-option base_url=URL.")
    if cfg.model.startswith(("/", ".", "~")) or Path(cfg.model).expanduser().exists():
        return f"{what} Pass --model with a folder holding a model saved by `save_pretrained`."
    return (f"{what} Download it where there is internet (`huggingface-cli download {cfg.model}`) "
            "or pass --model PATH to a local model folder.")


def read_header(path: str | None) -> str:
    """The header file's text, or the default Mathlib header."""
    from pathlib import Path

    from autoformalize.formalize import DEFAULT_HEADER

    if path is None:
        return DEFAULT_HEADER
    p = Path(path)
    if not p.is_file():
        fail(f"{path}: no such header file")
    return p.read_text(encoding="utf-8")


def check_header(checker: Any, header: str) -> None:
    """Fail early when the header itself does not elaborate: nothing could, whatever the model."""
    res = checker.check("", header=header)
    if not res.ok:
        why = res.errors[0].text.split("\n")[0] if res.errors else (res.detail or res.status)
        fail(f"the header does not elaborate with the {res.backend or 'chosen'} Lean backend ({why}); "
             "use a backend with Mathlib (`lean-solve setup --mathlib`) or pass --header FILE")


def sampling_params(cfg: Any, *, temperature: float | None, max_new_tokens: int | None, k: int) -> Any:
    """The config's sampling params with the flags applied; sampled (not greedy) when k > 1,
    since k greedy samples are k copies of one."""
    if temperature is None and cfg.temperature == 0 and k > 1:
        temperature = DEFAULT_SAMPLING_TEMPERATURE
    changes = {key: v for key, v in (("temperature", temperature), ("max_new_tokens", max_new_tokens))
               if v is not None}
    return cfg.sampling(**changes)


DEFAULT_SAMPLING_TEMPERATURE = 0.8
