"""Generation backends chosen by name from config; nothing outside this package knows which runs.

Importing this package imports neither torch nor vLLM: a backend's module is imported when
`load_generator` first asks for it, so the http backend and cached replays run without them.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field, fields
from pathlib import Path

from .base import Completion, GenerationError, Generator, Prompt, SamplingParams

__all__ = ["BACKENDS", "DEFAULT_MODEL", "Completion", "GenerationError", "Generator", "ModelConfig",
           "Prompt", "SamplingParams", "generator_from_config", "load_generator", "parse_options"]

BACKENDS = {
    "transformers": ("solve_in_lean.models.transformers_backend", "TransformersGenerator"),
    "vllm": ("solve_in_lean.models.vllm_backend", "VllmGenerator"),
    "http": ("solve_in_lean.models.http_backend", "HttpGenerator"),
    "ray": ("solve_in_lean.models.ray_backend", "RayGenerator"),  # replicas of vllm/transformers on Ray
}
DEFAULT_MODEL = "Goedel-LM/Goedel-Prover-V2-8B"
"""Writes Lean 4 + Mathlib, runs natively in transformers and vLLM; docs/models.md says why."""


def load_generator(backend: str, model: str, **options: object) -> Generator:
    """The generator for `backend` ("transformers", "vllm", "http") running `model`.

    `options` go to the backend's constructor (device, dtype, batch_size; vLLM engine args;
    base_url, concurrency, timeout_s, ...).
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown generation backend {backend!r}; known backends: {', '.join(BACKENDS)}")
    module, name = BACKENDS[backend]
    try:
        cls = getattr(importlib.import_module(module), name)
    except ImportError as e:
        extra = "vllm" if backend == "vllm" else "hf"
        raise GenerationError(f"the {backend} backend cannot be imported ({e}); "
                              f"install it with: pip install 'lean-solve[{extra}]'") from e
    return cls(model, **options)


SAMPLING_KEYS = tuple(f.name for f in fields(SamplingParams))


@dataclass
class ModelConfig:
    """Which model runs where, how it samples by default, and where its generations are cached.

    Read from the `[model]` table of a TOML file (or a dict) and then overridden by CLI
    flags; `to_dict` writes it back into run records so a run says what produced it. The
    sampling keys of the table (n, temperature, top_p, max_new_tokens, stop, seed) make up
    one `SamplingParams`, validated by it and by nothing else.
    """

    backend: str = "transformers"
    model: str = DEFAULT_MODEL
    options: dict = field(default_factory=dict)
    cache: str | None = None
    """SQLite file for the generation cache; None disables caching."""
    cache_chunk_size: int = 64
    cache_claim_wait_s: float = 600.0
    """How long to wait for another process generating the same requests (models/cache.py)."""
    sampling: SamplingParams = field(default_factory=SamplingParams)
    """Default sampling of every request; stages change `n` and add their prompt's stop strings."""

    def __post_init__(self) -> None:
        if self.backend not in BACKENDS:
            raise ValueError(f"unknown generation backend {self.backend!r}; known backends: {', '.join(BACKENDS)}")

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        """From a flat table: the ModelConfig keys plus the SamplingParams keys."""
        own = {f.name for f in fields(cls)} - {"sampling"}
        unknown = sorted(set(data) - own - set(SAMPLING_KEYS))
        if unknown:
            raise ValueError(f"unknown model config keys {unknown}; known keys: {sorted(own | set(SAMPLING_KEYS))}")
        sampling = SamplingParams(**{k: v for k, v in data.items() if k in SAMPLING_KEYS})
        return cls(**{k: v for k, v in data.items() if k in own}, sampling=sampling)

    @classmethod
    def from_file(cls, path: str | Path) -> "ModelConfig":
        """Read the `[model]` table of a TOML file (or the whole file if it has none)."""
        try:
            import tomllib
        except ModuleNotFoundError:  # Python 3.10
            import tomli as tomllib
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        return cls.from_dict(data.get("model", data))

    def to_dict(self) -> dict:
        """The flat table `from_dict` reads."""
        own = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "sampling"}
        return {**own, "options": dict(self.options), **self.sampling.to_dict()}

    def with_overrides(self, **changes: object) -> "ModelConfig":
        """A copy with the given keys (own or sampling) replaced; None means "not given" (unset
        CLI flags). `options` are merged into the existing ones rather than replacing them."""
        data = self.to_dict()
        for key, value in changes.items():
            if value is None:
                continue
            if key == "options":
                data["options"] = {**data["options"], **value}
            else:
                data[key] = value
        return ModelConfig.from_dict(data)


def generator_from_config(cfg: ModelConfig) -> Generator:
    """The configured backend, behind the on-disk cache when `cfg.cache` is set.

    With a cache the backend is built lazily: a run whose generations are all cached (a
    resume after everything finished, a replay) never loads the model.
    """
    if cfg.cache is None:
        return load_generator(cfg.backend, cfg.model, **cfg.options)
    from .cache import CachedGenerator

    return CachedGenerator(lambda: load_generator(cfg.backend, cfg.model, **cfg.options), cfg.cache,
                           backend=cfg.backend, model=cfg.model, chunk_size=cfg.cache_chunk_size,
                           claim_wait_s=cfg.cache_claim_wait_s)


def parse_options(pairs: list[str]) -> dict:
    """`["dtype=bfloat16", "batch_size=8"]` from repeated CLI flags into backend options;
    values are read as JSON when they parse (numbers, booleans) and as strings otherwise."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"expected key=value, got {pair!r}")
        try:
            options[key] = json.loads(value)
        except json.JSONDecodeError:
            options[key] = value
    return options
