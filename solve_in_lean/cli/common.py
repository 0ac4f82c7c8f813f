"""What the model-running commands share: option declarations, settings from file and flags,
the checker, the generator, the header, output paths, JSON output.

Helpers raise `solve_in_lean.errors` exceptions; the CLI turns them into one sentence and an
exit code in one place (cli/__init__.py). Heavy imports happen inside the functions.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated, Any, Callable, Iterator, NoReturn, Optional

import typer

from solve_in_lean.errors import (EXIT_OK, EXIT_REJECTED, EXIT_UNAVAILABLE, InputError, LeanSolveError,
                                  UnavailableError)

__all__ = ["EXIT_OK", "EXIT_REJECTED", "EXIT_UNAVAILABLE"]

# Options the commands share, declared once so they read and behave the same everywhere.
LeanBackendOpt = Annotated[Optional[str], typer.Option("--backend", "-b", help="Lean backend: repl | lake | kernel | auto")]
TimeoutOpt = Annotated[Optional[float], typer.Option("--timeout", help="Seconds per Lean check (statements and "
                                                                       "solutions alike; default 60).")]
MathlibOpt = Annotated[Optional[bool], typer.Option("--mathlib/--no-mathlib",
                                                    help="Use Mathlib (default: when it is installed).")]
HeaderOpt = Annotated[Optional[str], typer.Option("--header", help="File with the imports/opens Lean code is checked "
                                                                   "under (default: Mathlib).")]
ModelOpt = Annotated[Optional[str], typer.Option("--model", help="Model name or local folder.")]
PresetOpt = Annotated[Optional[str], typer.Option("--preset", help="Model preset: a prover's published protocol "
                                                                   "(`lean-solve models` lists them).")]
ModelBackendOpt = Annotated[Optional[str], typer.Option("--model-backend", help="transformers | vllm | http")]
ModelOptionOpt = Annotated[list[str], typer.Option("--model-option", help="Backend option key=value (repeatable).")]
TemperatureOpt = Annotated[Optional[float], typer.Option(
    "--temperature", help="Sampling temperature (default: the config's; requests for several samples use 0.8 "
                          "when no temperature is set anywhere).")]
MaxNewTokensOpt = Annotated[Optional[int], typer.Option("--max-new-tokens", help="Tokens per completion.")]
CacheOpt = Annotated[Optional[str], typer.Option("--cache", help="Generation cache file (SQLite); `off` for none.")]
ConfigOpt = Annotated[Optional[str], typer.Option("--config", help="Config file (TOML, docs/config.md).")]
SamplesOpt = Annotated[Optional[int], typer.Option("--samples", "-n", help="Lean programs or proofs sampled per "
                                                                           "problem (default 8).")]
RoundsOpt = Annotated[Optional[int], typer.Option("--rounds", help="Repair rounds with Lean's errors (default 1).")]
FormalizeSamplesOpt = Annotated[Optional[int], typer.Option("--formalize-samples",
                                                            help="Statements sampled per problem (default 4).")]
CotSamplesOpt = Annotated[Optional[int], typer.Option("--cot-samples", help="Chains of thought voted for the "
                                                                            "unverified answer (default 4).")]
JudgeOpt = Annotated[Optional[bool], typer.Option("--judge/--no-judge", help="The model judges back-translations "
                                                                             "against the English (default on).")]
MaxCharsOpt = Annotated[Optional[int], typer.Option("--max-problem-chars",
                                                    help="Longest problem accepted (default 20000).")]
RayOpt = Annotated[Optional[str], typer.Option(
    "--ray", metavar="ADDRESS", help="Check Lean on a Ray cluster: local (a private one-machine cluster), auto "
                                     "(the `ray start` cluster here) or HOST:PORT (docs/scaling.md).")]
RetryErrorsOpt = Annotated[bool, typer.Option("--retry-errors", help="Batch: rerun items whose run raised.")]

FLAGS = {"backend": "--backend", "timeout_s": "--timeout", "mathlib": "--mathlib", "header": "--header",
         "model": "--model", "backend_model": "--model-backend", "temperature": "--temperature",
         "max_new_tokens": "--max-new-tokens", "cache": "--cache", "samples": "--samples", "rounds": "--rounds",
         "formalize_samples": "--formalize-samples", "cot_samples": "--cot-samples", "judge": "--judge",
         "max_problem_chars": "--max-problem-chars", "preset": "--preset", "address": "--ray"}


def print_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False, indent=None, default=str) + "\n")


def settings_from(config: str | None, *, backend: str | None = None, timeout: float | None = None,
                  mathlib: bool | None = None, header: str | None = None, model: str | None = None,
                  model_backend: str | None = None, model_option: list[str] | None = None,
                  temperature: float | None = None, max_new_tokens: int | None = None, cache: str | None = None,
                  seed: int | None = None, preset: str | None = None, ray: str | None = None,
                  **solve: Any) -> Any:
    """The config file's settings with the command's flags applied, all validated."""
    from solve_in_lean.models import parse_options
    from solve_in_lean.settings import load_settings

    try:
        options = parse_options(model_option or []) or None
    except ValueError as e:
        raise InputError(f"--model-option: {e}") from None
    cache_value: Any = None if cache is None else (False if cache.strip().lower() in ("off", "none", "") else cache)
    if timeout is not None:
        solve["timeout_s"] = timeout
    return load_settings(config).with_flags(
        lean={"backend": backend, "mathlib": mathlib, "header": header},
        model={"preset": preset, "backend": model_backend, "model": model, "options": options,
               "temperature": temperature,
               "max_new_tokens": max_new_tokens, "seed": seed, "cache": cache_value},
        solve=solve, ray={"address": ray}, flags=FLAGS)


def fail(message: str, code: int = EXIT_UNAVAILABLE) -> NoReturn:
    """Stop the command with one sentence and `code` (printed once, by cli/__init__.py)."""
    error = InputError(message) if code == EXIT_UNAVAILABLE else LeanSolveError(message)
    error.exit_code = code
    raise error


def make_generator(settings: Any, *, cache_by_default: bool = False) -> tuple[Any, Any]:
    """(ModelConfig, generator) from the settings: cached when the settings (or the command's
    default) say so, behind the sampling rule of options.py. Loading errors become one sentence."""
    from solve_in_lean.models import GenerationError, generator_from_config
    from solve_in_lean.options import SamplingRule

    cfg = settings.model_config(cache_by_default=cache_by_default)
    if cfg.cache is not None:
        check_writable_file(cfg.cache, "the generation cache", allow_existing=True)
    try:
        generator = generator_from_config(cfg)
    except GenerationError as e:
        raise UnavailableError(no_model_message(cfg, e)) from None
    return cfg, SamplingRule(generator, auto_temperature=settings.auto_temperature)


@contextlib.contextmanager
def model_errors(cfg: Any) -> Iterator[None]:
    """A model that cannot be reached (at load or mid-run) becomes one sentence saying how to get one."""
    from solve_in_lean.models import GenerationError

    try:
        yield
    except GenerationError as e:
        raise UnavailableError(no_model_message(cfg, e)) from None


def no_model_message(cfg: Any, error: Exception) -> str:
    """Which model is missing and how to get one, in two sentences."""
    what = f"no model available ({cfg.backend} backend, model {cfg.model!r}: {str(error).rstrip('.')})."
    if cfg.backend == "http":
        return (f"{what} Start an OpenAI-compatible server (`vllm serve MODEL`, or "
                "`python -m solve_in_lean.models.serve`) or set --model-option base_url=URL.")
    if cfg.model.startswith(("/", ".", "~")) or Path(cfg.model).expanduser().exists():
        return f"{what} Pass --model with a folder holding a model saved by `save_pretrained`."
    return (f"{what} Download it where there is internet (`huggingface-cli download {cfg.model}`) "
            "or pass --model PATH to a local model folder.")


def read_header(settings: Any) -> str:
    """The header file's text (settings or --header), or the default Mathlib header."""
    from autoformalize.formalize import DEFAULT_HEADER

    path = settings.lean.header
    if path is None:
        return DEFAULT_HEADER
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: the header file is not UTF-8 text") from None
    except OSError as e:
        raise InputError(f"{path}: the header file cannot be read ({e.strerror})") from None


def check_header(checker: Any, header: str, timeout_s: float) -> None:
    """Fail early when the header itself does not elaborate: nothing could, whatever the model."""
    res = checker.check("", header=header, timeout_s=timeout_s)
    if not res.ok:
        why = res.errors[0].text.split("\n")[0] if res.errors else (res.detail or res.status)
        raise UnavailableError(f"the header does not elaborate with the {res.backend or 'chosen'} Lean backend "
                               f"({why}); use a backend with Mathlib (`lean-solve setup --mathlib`) or pass "
                               "--header FILE")


def check_writable_file(path: str | Path, what: str, *, allow_existing: bool) -> Path:
    """`path` can be created or appended to, checked before any model loads; else InputError."""
    import os

    p = Path(path).expanduser()
    if p.is_dir():
        raise InputError(f"{path}: {what} must be a file, and this is a directory; give a file name")
    if p.exists():
        if not allow_existing:
            raise InputError(f"{path}: {what} already exists; choose another name")
        if not os.access(p, os.W_OK):
            raise InputError(f"{path}: {what} is not writable; choose another place or fix its permissions")
        return p
    _check_parent(p, path, what)
    return p


def check_writable_dir(path: str | Path, what: str) -> Path:
    """`path` is a directory we can write into, or can be made one; else InputError."""
    import os

    p = Path(path).expanduser()
    if p.exists():
        if not p.is_dir():
            raise InputError(f"{path}: {what} must be a directory, and this is a file; choose another --out")
        if not os.access(p, os.W_OK | os.X_OK):
            raise InputError(f"{path}: {what} is not writable; choose another place or fix its permissions")
        return p
    _check_parent(p, path, what)
    return p


def _check_parent(p: Path, shown: str | Path, what: str) -> None:
    import os

    parent = p.absolute().parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{shown}: cannot create {what} there: {parent} is a file, not a directory")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{shown}: cannot create {what} there: {parent} is not writable")


@contextlib.contextmanager
def run_lock(path: str | Path) -> Iterator[None]:
    """One writer per run directory or output file (solve_in_lean.runlock)."""
    from solve_in_lean.runlock import RunLock

    with RunLock(path):
        yield


@contextlib.contextmanager
def batch_io(text: str | None, input: str | None, output: str | None,
             select: Callable[[list[dict[str, Any]]], tuple[list[dict[str, Any]], list[str]]]
             ) -> Iterator[tuple[list[dict[str, Any]], list[str]]]:
    """The problems of a command run on one text or on `--input`, checked before any model loads:
    (items to run, ids of rows without a usable problem). For a batch the results file must be
    writable and readable (a damaged line is named), and the command holds its lock throughout."""
    from solve_in_lean.batch import open_store
    from solve_in_lean.problems import load_items

    if (text is None) == (input is None):
        raise InputError("give either a problem text or --input FILE")
    if input is None:
        if output is not None:
            raise InputError("--output goes with --input FILE (a batch); for one problem use --json")
        yield [{"id": "problem", "question": text}], []
        return
    if output is None:
        raise InputError("--input needs --output FILE (the results file a rerun resumes)")
    items, unusable = select(load_items(input))
    path = check_writable_file(output, "the results file", allow_existing=True)
    if path.exists() and path.resolve() == Path(input).resolve():
        raise InputError(f"{output}: the results file must not be the input file")
    path.parent.mkdir(parents=True, exist_ok=True)  # the lock file lives beside the results file
    writes_fail_cleanly()
    with run_lock(path):
        open_store(path)  # a damaged line is reported now, not after the model has loaded
        yield items, unusable


def writes_fail_cleanly() -> None:
    """A file-size limit (`ulimit -f`) kills the process with SIGXFSZ by default; ignored, the
    write fails with EFBIG instead and the batch stops with one sentence, as on a full disk."""
    import signal

    if hasattr(signal, "SIGXFSZ"):
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
