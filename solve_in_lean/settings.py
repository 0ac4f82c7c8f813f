"""One validated settings schema for every command and config file: TOML first, then CLI flags.

A config file is looked up in order: `--config FILE`, `$LEAN_SOLVE_CONFIG`, `./lean-solve.toml`,
`~/.config/lean-solve/config.toml`. Transfer experiments read their `[lean]`, `[model]` and
`[solve]` tables through the same functions. Every key is optional; docs/config.md lists them:

    [lean]
    backend = "auto"          # auto | repl | lake | kernel | ray (ray: the [ray] cluster, inner backend auto)
    mathlib = "auto"          # auto (use Mathlib when installed) | true | false
    timeout_s = 60            # every Lean check: statements and solutions alike
    memory_mb = 8192          # default: the backend's (more with Mathlib)
    workers = 2               # Lean checks in parallel (default: the cores)
    allow_axioms = []         # beyond propext, Classical.choice, Quot.sound
    allow_native = false      # accept native_decide (Lean.ofReduceBool)
    header = "prelude.lean"   # Lean header file, relative to the config file (default: Mathlib)

    [model]                   # solve_in_lean.models.ModelConfig
    preset = "goedel-prover-v2-8b"  # a model preset (`lean-solve models`): its model id, prompts, budget,
                              # sampling and extraction; the other keys of this table override it
    backend = "transformers"  # transformers | vllm | http
    model = "..."
    cache = "gen.sqlite"      # or false; default: off, except `eval` (settings.default_cache_path)
    temperature = 0.0         # the sampling keys: n, temperature, top_p, max_new_tokens, stop, seed
    [model.options]           # passed to the backend

    [ray]                     # check Lean on a Ray cluster (docs/scaling.md); off unless address is set
    address = "local"         # local (a private one-machine cluster) | auto (`ray start` here) | HOST:PORT
    actors = 8                # Lean actors (default: as many as the cluster's CPUs and memory fit)
    actor_memory_mb = 8704    # memory Ray reserves per actor (default: Lean's cap + 512)

    [reproduce]               # examples/reproduce/*.toml: the published figure, hardware, command
                              # (read by people and tests; commands ignore it)

    [solve]                   # solve_in_lean.options.SolveOptions (timeout_s is [lean]'s)
    samples = 8
    rounds = 1
    formalize_samples = 4
    cot_samples = 4
    judge = true
    max_problem_chars = 20000

Errors name the file, the table and the key (or the flag) and what would be accepted.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from solve_in_lean.errors import InputError

if TYPE_CHECKING:
    from solve_in_lean.models import ModelConfig
    from solve_in_lean.options import SolveOptions

LEAN_BACKENDS = ("auto", "repl", "lake", "kernel", "ray")


class ConfigError(InputError):
    """A config file or flag value cannot be used; the message names the key."""


@dataclass(frozen=True)
class LeanSettings:
    """Which Lean runs the checks and under which rules (the timeout is in SolveOptions)."""

    backend: str = "auto"
    mathlib: bool | None = None
    """None: use Mathlib when it is installed."""
    memory_mb: int | None = None
    """Address-space cap of Lean; None: the backend's default (larger with Mathlib)."""
    workers: int | None = None
    allow_axioms: tuple[str, ...] = ()
    allow_native: bool = False
    header: Path | None = None
    """A Lean header file; None: the Mathlib header."""

    def policy(self, extra_axioms: tuple[str, ...] = (), allow_native: bool = False) -> Any:
        """The verification policy these settings (and a command's own flags) ask for."""
        from solve_in_lean.verify import Policy

        return Policy.with_extra([*self.allow_axioms, *extra_axioms], self.allow_native or allow_native)


@dataclass(frozen=True)
class RaySettings:
    """Where Lean checks run when they run on Ray: the backend named in [lean] runs inside each actor."""

    address: str | None = None
    """None: no Ray; "local": a private one-machine cluster; "auto" or "HOST:PORT": join that cluster."""
    actors: int | None = None
    actor_memory_mb: int | None = None


@dataclass(frozen=True)
class Settings:
    lean: LeanSettings = field(default_factory=LeanSettings)
    ray: RaySettings = field(default_factory=RaySettings)
    model: ModelConfig = field(default_factory=lambda: _default("model"))
    solve: SolveOptions = field(default_factory=lambda: _default("solve"))
    auto_temperature: bool = True
    """No temperature was set (file or flag): the sampling rule of options.stage_params applies."""
    auto_budget: bool = True
    """No new-token budget was set (file, flag or preset): the model's own preset budget applies
    (`model_config`), since a prover that reasons first is cut off at the generic default."""
    cache: Path | bool | None = None
    """The generation cache: a file, False (off), or None (the command's default)."""
    path: Path | None = None
    """The config file read, if any."""
    preset: str | None = None
    """The model preset chosen (solve_in_lean/presets), if any."""

    def with_flags(self, *, lean: dict[str, Any] | None = None, model: dict[str, Any] | None = None,
                   solve: dict[str, Any] | None = None, ray: dict[str, Any] | None = None,
                   flags: dict[str, str] | None = None) -> "Settings":
        """These settings with CLI flags applied; None values are flags not given. `flags` maps a key
        to its flag's spelling so that an error names what the user typed."""
        names = flags or {}
        lean = {k: v for k, v in (lean or {}).items() if v is not None}
        model = {k: v for k, v in (model or {}).items() if v is not None}
        solve = {k: v for k, v in (solve or {}).items() if v is not None}
        ray = {k: v for k, v in (ray or {}).items() if v is not None}
        new = self
        if ray:
            new = dataclasses.replace(new, ray=_ray(ray, dataclasses.asdict(self.ray), names))
        if lean:
            new = dataclasses.replace(new, lean=_lean(lean, dataclasses.asdict(self.lean), names, Path.cwd()))
        if "cache" in model:
            new = dataclasses.replace(new, cache=_cache(model.pop("cache"), names.get("cache", "--cache"), Path.cwd()))
        if "preset" in model:  # the preset's values first, then the other flags over them
            preset = _preset(model.pop("preset"), names.get("preset", "--preset"))
            new = dataclasses.replace(new, preset=preset.name, auto_temperature=False, auto_budget=False,
                                      model=new.model.with_overrides(**preset.model_defaults()))
        if model:
            try:
                new = dataclasses.replace(new, model=new.model.with_overrides(**model),
                                          auto_temperature=new.auto_temperature and "temperature" not in model,
                                          auto_budget=new.auto_budget and "max_new_tokens" not in model)
            except ValueError as e:
                raise ConfigError(f"bad model settings: {e}") from None
        if solve:
            try:
                new = dataclasses.replace(new, solve=self.solve.replace(**solve))
            except InputError as e:
                raise ConfigError(_flagged(str(e), names)) from None
        return new

    def model_config(self, *, cache_by_default: bool) -> ModelConfig:
        """The model config with the cache resolved: the file set, or off, or the command's default."""
        if self.cache is None:
            path = default_cache_path() if cache_by_default else None
        else:
            path = None if self.cache is False else self.cache
        model = dataclasses.replace(self.model, cache=None if path is None else str(path))
        if self.auto_budget:
            from solve_in_lean.presets import budget_for_model

            if (budget := budget_for_model(model.model)) is not None:
                model = dataclasses.replace(model, sampling=dataclasses.replace(model.sampling, max_new_tokens=budget))
        return model


def _default(table: str) -> Any:
    """The default ModelConfig or SolveOptions, imported only when settings are built: a
    `lean-solve check` without a config file reads only [lean]'s defaults, before Lean starts."""
    from solve_in_lean.models import ModelConfig
    from solve_in_lean.options import SolveOptions

    return ModelConfig() if table == "model" else SolveOptions()


def _preset(name: Any, label: str) -> Any:
    """The preset called `name`; ConfigError naming the key (or flag) otherwise."""
    from solve_in_lean.presets import get_preset

    if not isinstance(name, str):
        raise ConfigError(f"{label} must be a preset name (`lean-solve models` lists them), not {name!r}")
    try:
        return get_preset(name)
    except InputError as e:
        raise ConfigError(f"{label}: {e}") from None


def default_cache_path() -> Path:
    """Where generations are cached unless told otherwise: the user cache ($LEAN_SOLVE_CACHE,
    else $XDG_CACHE_HOME/lean-solve, else ~/.cache/lean-solve)."""
    from solve_in_lean.lean.toolchain import cache_root

    return cache_root() / "generations.sqlite"


def _flagged(message: str, names: dict[str, str]) -> str:
    """An options error, with the option's name replaced by the flag the user typed."""
    for key, flag in names.items():
        if message.startswith(f"{key} "):
            return f"{flag} {message[len(key) + 1:]}"
    return message


def _lean(table: dict[str, Any], base: dict[str, Any], names: dict[str, str], root: Path,
          where: str = "") -> LeanSettings:
    data = dict(base)
    for key, value in table.items():
        label = names.get(key) or f"{where}[lean] {key}"
        data[key] = _lean_value(key, value, label, root)
    return LeanSettings(**data)


def _lean_value(key: str, value: Any, label: str, root: Path) -> Any:
    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{label} must be {expected}, not {value!r}")

    if key == "backend":
        if value not in LEAN_BACKENDS:
            raise bad(f"one of {', '.join(LEAN_BACKENDS)}")
        return value
    if key == "mathlib":
        if value == "auto" or value is None:
            return None
        if not isinstance(value, bool):
            raise bad('"auto", true or false')
        return value
    if key in ("memory_mb", "workers"):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise bad("a whole number of at least 1")
        return value
    if key == "allow_axioms":
        if isinstance(value, str) or not all(isinstance(a, str) and a for a in value):
            raise bad("a list of axiom names")
        return tuple(value)
    if key == "allow_native":
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if key == "header":
        if not isinstance(value, (str, Path)):
            raise bad("a file name")
        path = (root / Path(value).expanduser()) if not Path(value).expanduser().is_absolute() else Path(value)
        if not path.is_file():
            raise ConfigError(f"{label}: {path} is not a file")
        return path
    known = sorted(f.name for f in dataclasses.fields(LeanSettings))
    raise ConfigError(f"{label}: unknown key; known keys of [lean]: {', '.join(known)} and timeout_s")


def _ray(table: dict[str, Any], base: dict[str, Any], names: dict[str, str], where: str = "") -> RaySettings:
    data = dict(base)
    for key, value in table.items():
        label = names.get(key) or f"{where}[ray] {key}"
        if key == "address":
            if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value):
                raise ConfigError(f"{label} must be local, auto or HOST:PORT, not {value!r}")
        elif key in ("actors", "actor_memory_mb"):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"{label} must be a whole number of at least 1, not {value!r}")
        else:
            known = ", ".join(f.name for f in dataclasses.fields(RaySettings))
            raise ConfigError(f"{label}: unknown key; known keys of [ray]: {known}")
        data[key] = value
    return RaySettings(**data)


def _cache(value: Any, label: str, root: Path) -> Path | bool:
    if value is False:
        return False
    if not isinstance(value, (str, Path)) or not str(value).strip():
        raise ConfigError(f"{label} must be a file name or false, not {value!r}")
    path = Path(value).expanduser()
    return path if path.is_absolute() else root / path


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file as a table, or ConfigError saying why not."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - exercised on 3.10 only
        import tomli as tomllib

    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot be read ({e.strerror})") from None


def settings_from_tables(data: dict[str, Any], *, path: Path | None, root: Path) -> Settings:
    """Settings from the `[lean]`, `[model]` and `[solve]` tables of `data` (other keys are the
    caller's to check); relative file names are relative to `root`."""
    from solve_in_lean.models import ModelConfig
    from solve_in_lean.options import SolveOptions

    where = f"{path}: " if path else ""

    def table(name: str) -> dict[str, Any]:
        value = data.get(name, {})
        if not isinstance(value, dict):
            raise ConfigError(f"{where}[{name}] must be a table")
        return dict(value)

    lean_table, model_table, solve_table = table("lean"), table("model"), table("solve")
    timeout = lean_table.pop("timeout_s", None)
    lean = _lean(lean_table, dataclasses.asdict(LeanSettings()), {}, root, where)
    ray = _ray(table("ray"), dataclasses.asdict(RaySettings()), {}, where)
    cache = _cache(model_table.pop("cache"), f"{where}[model] cache", root) if "cache" in model_table else None
    preset = _preset(model_table.pop("preset"), f"{where}[model] preset") if "preset" in model_table else None
    if preset is not None:  # the table's own keys override the preset's
        model_table = {**preset.model_defaults(), **model_table}
    try:
        model = ModelConfig.from_dict(model_table)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{where}[model]: {e}") from None
    if "timeout_s" in solve_table:
        raise ConfigError(f"{where}[solve] timeout_s: the Lean timeout is set once, as [lean] timeout_s")
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise ConfigError(f"{where}[lean] timeout_s must be a number of seconds, not {timeout!r}")
        solve_table["timeout_s"] = timeout
    try:
        solve = SolveOptions.from_dict(solve_table)
    except InputError as e:
        section = "[lean]" if "timeout_s" in str(e).split(" ")[0] else "[solve]"
        raise ConfigError(f"{where}{section} {e}") from None
    return Settings(lean=lean, ray=ray, model=model, solve=solve, auto_temperature="temperature" not in model_table,
                    auto_budget="max_new_tokens" not in model_table,
                    cache=cache, path=path, preset=preset.name if preset is not None else None)


def _candidates(explicit: str | Path | None) -> list[Path]:
    if explicit:
        return [Path(explicit).expanduser()]
    paths = []
    if env := os.environ.get("LEAN_SOLVE_CONFIG"):
        paths.append(Path(env).expanduser())
    return paths + [Path("lean-solve.toml"), Path("~/.config/lean-solve/config.toml").expanduser()]


def find_config(path: str | Path | None = None, *, cwd: str | None = None) -> Path | None:
    """The config file `load_settings(path)` reads, None when there is none (the defaults). A
    file named explicitly (flag or $LEAN_SOLVE_CONFIG) must exist. Relative names are looked up
    from `cwd` (the check server's client's directory), by default this process's."""
    base = Path(cwd) if cwd is not None else Path()
    candidates = _candidates(path)
    found = next((base / c for c in candidates if (base / c).is_file()), None)
    if found is None and (path or os.environ.get("LEAN_SOLVE_CONFIG")):
        raise ConfigError(f"config file {candidates[0]} does not exist")
    return found


def load_settings(path: str | Path | None = None, *, cwd: str | None = None) -> Settings:
    """The first config file found (`find_config`), validated; defaults when there is none."""
    found = find_config(path, cwd=cwd)
    if found is None:
        return Settings()
    found = found.resolve()  # relative file names in it stay right whatever the working directory
    data = read_toml(found)
    if unknown := sorted(set(data) - {"lean", "model", "solve", "ray", "reproduce"}):  # [reproduce]: a recipe's notes
        raise ConfigError(f"{found}: unknown section(s) {unknown}; expected [lean], [model], [solve] and [ray]")
    return settings_from_tables(data, path=found, root=found.parent)


def resolve_backend(name: str) -> str:
    """`auto` means the best backend this machine can run (see `lean.auto_backend`)."""
    if name != "auto":
        return name
    from solve_in_lean.lean import auto_backend

    return auto_backend()


def make_checker(settings: Settings) -> Any:
    """The Lean backend the settings name, with their timeout, memory cap, workers and Mathlib
    choice (auto: Mathlib when it is installed)."""
    from solve_in_lean.lean import BACKENDS, get_checker
    from solve_in_lean.errors import UnavailableError

    lean, ray = settings.lean, settings.ray
    on_ray = lean.backend == "ray" or ray.address is not None
    # On Ray, `auto` is resolved by each actor on its own node, not here.
    name = "ray" if on_ray else resolve_backend(lean.backend)
    if name not in BACKENDS:
        raise ConfigError(f"unknown Lean backend {name!r}; choose one of: auto, {', '.join(BACKENDS)}")
    options: dict[str, Any] = dict(timeout_s=settings.solve.timeout_s, workers=lean.workers)
    if lean.memory_mb is not None:
        options["memory_mb"] = lean.memory_mb
    if on_ray:
        options.update(inner="auto" if lean.backend == "ray" else lean.backend,
                       address=None if ray.address in (None, "local") else ray.address,
                       actors=ray.actors, actor_memory_mb=ray.actor_memory_mb)
    if name != "kernel":  # the kernel dialect has no Mathlib (an actor's kernel checker drops it too)
        options["mathlib"] = lean.mathlib
    if settings.solve.rounds > 0 and (name == "repl" or options.get("inner") in ("repl", "auto")):
        options["goals"] = True  # repair prompts show the goal at each error (a REPL's info tree;
        #                          a Ray actor whose inner backend resolves to another drops it)
    try:
        return get_checker(name, **options)
    except UnavailableError as e:
        raise type(e)(f"the {name} backend is not available: {e}") from None
