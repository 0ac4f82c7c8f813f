"""Model-family presets: each prover's published protocol, so its authors' numbers can be reproduced.

A preset is data (one TOML file per family in this folder): the model id, chat or completion
format, the exact query strings of the tasks it was trained on (prove, repair, cot, ...), stop
strings, output budget, sampling defaults, how its Lean is extracted, how many repair rounds its
protocol allows, and the citation of where all that is documented. A family file sets the shared
values at top level; each `[[models]]` entry names one model and may override any of them.

Tasks a preset has no prompt for use this project's own templates (solve_in_lean/prompts).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from autoformalize.extract import extract_lean
from autoformalize.prompting import PromptTemplate
from solve_in_lean.errors import InputError
from solve_in_lean.models.base import Prompt, SamplingParams

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

PRESETS_DIR = Path(__file__).parent
Format = Literal["chat", "completion"]
ExtractRule = Literal["all-blocks", "last-block", "continue"]
EXTRACT_RULES = ("all-blocks", "last-block", "continue")
_SHARED = ("format", "extract", "max_completion_chars", "max_new_tokens", "temperature", "top_p", "rounds", "stop")
_IMPORT_LINE = re.compile(r"^[ \t]*import[ \t]+\S.*$\n?", re.M)


@dataclass(frozen=True)
class Preset:
    """One model's published protocol (see the module docstring)."""

    name: str
    family: str
    model: str
    citation: str
    format: Format = "chat"
    extract: ExtractRule = "all-blocks"
    max_completion_chars: int = 20_000
    """Longest completion read; 0: no limit (long-reasoning provers write tens of thousands)."""
    max_new_tokens: int = 2048
    temperature: float = 0.0
    top_p: float = 1.0
    rounds: int = 0
    """Repair rounds with Lean's feedback its protocol allows (eval --task prove --rounds)."""
    stop: tuple[str, ...] = ()
    published: str = ""
    prompts: dict[str, PromptTemplate] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.format not in ("chat", "completion"):
            raise ValueError(f"preset {self.name}: format must be chat or completion, not {self.format!r}")
        if self.extract not in EXTRACT_RULES:
            raise ValueError(f"preset {self.name}: extract must be one of {EXTRACT_RULES}, not {self.extract!r}")
        if self.format == "completion" and self.extract != "continue" and "prove" in self.prompts:
            raise ValueError(f"preset {self.name}: a completion prompt is continued, so extract must be 'continue'")

    def model_defaults(self) -> dict[str, Any]:
        """The `[model]` keys this preset sets (a config file or flag may still override each)."""
        out: dict[str, Any] = {"max_new_tokens": self.max_new_tokens, "temperature": self.temperature,
                               "top_p": self.top_p, "stop": list(self.stop)}
        if self.model:
            out["model"] = self.model
        return out

    def sampling(self, params: SamplingParams) -> SamplingParams:
        """`params` with this preset's stop strings added (the caller's budget and temperature kept)."""
        return replace(params, stop=tuple(dict.fromkeys((*params.stop, *self.stop))))

    def has(self, task: str) -> bool:
        return task in self.prompts

    def template(self, task: str) -> PromptTemplate:
        """This preset's template for `task`, else the project's own."""
        if task in self.prompts:
            return self.prompts[task]
        from solve_in_lean.prompts import get_prompt

        return get_prompt(task)

    def render(self, task: str, **fields: object) -> Prompt:
        """The prompt of `task`: chat messages, or one string for a completion-format model."""
        tmpl = self.template(task)
        if self.format == "completion" and task in self.prompts:
            return tmpl.instruction_for(**fields)
        return tmpl.render(**fields)

    def autoformalize_prompts(self) -> dict[str, PromptTemplate] | None:
        """autoformalize's templates with this preset's formalize/backtranslate queries in their place;
        None when it has neither (autoformalize then uses its own)."""
        own = {t: self.prompts[t] for t in ("formalize", "backtranslate") if t in self.prompts}
        if not own:
            return None
        from autoformalize.templates import default_prompts

        return {**default_prompts(), **own}

    def extract_lean(self, text: str, *, prefix: str = "") -> str | None:
        """The Lean of a completion under this preset's rule. `prefix` is the code the prompt
        already holds (header and statement) for a completion model that continues it. Import
        lines are dropped: the run's header brings them, and Lean allows them only first."""
        limit = self.max_completion_chars or None
        if self.extract == "continue":
            if limit is not None and len(text) > limit:
                return None
            code = extract_lean("```lean4\n" + prefix + text.split("```", 1)[0] + "\n```", max_chars=None)
        else:
            code = extract_lean(text, rule=self.extract, max_chars=limit)
        if code is None:
            return None
        code = _IMPORT_LINE.sub("", code).lstrip("\n")
        return code if code.strip() else None


def _preset(family: dict[str, Any], entry: dict[str, Any], path: Path) -> Preset:
    shared = {k: family[k] for k in _SHARED if k in family}
    own = {k: entry[k] for k in _SHARED if k in entry}
    unknown = sorted(set(entry) - set(_SHARED) - {"name", "model", "published", "prompts"})
    if unknown:
        raise ValueError(f"{path}: model {entry.get('name')!r}: unknown keys {unknown}")
    prompts = {task: PromptTemplate.from_dict(t, default_name=task)
               for task, t in {**family.get("prompts", {}), **entry.get("prompts", {})}.items()}
    values = {**shared, **own}
    values["stop"] = tuple(values.get("stop", ()))
    return Preset(name=entry["name"], family=family["family"], model=entry.get("model", ""),
                  citation=family["citation"], published=entry.get("published", ""), prompts=prompts, **values)


@lru_cache(maxsize=1)
def registry() -> dict[str, Preset]:
    """Every preset of every family file, by name."""
    found: dict[str, Preset] = {}
    for path in sorted(PRESETS_DIR.glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        for entry in data.get("models", []):
            preset = _preset(data, entry, path)
            if preset.name in found:
                raise ValueError(f"{path}: preset {preset.name!r} is defined twice")
            found[preset.name] = preset
    return found


def get_preset(name: str) -> Preset:
    """The preset called `name`, or an InputError listing the known ones."""
    presets = registry()
    if name not in presets:
        raise InputError(f"unknown preset {name!r}; `lean-solve models` lists them: {', '.join(sorted(presets))}")
    return presets[name]


def preset_of(settings: Any) -> Preset | None:
    """The preset a command's settings chose (`--preset` or `[model] preset`), or None. The one place a
    preset is resolved: settings.py has already put its model id and sampling into the model config;
    what it returns here brings the rest, its prompts, extraction rule and repair rounds, to the
    command (pipeline.PipelineConfig, eval's TaskContext)."""
    name = getattr(settings, "preset", None)
    return get_preset(name) if name else None


def budget_for_model(model: str) -> int | None:
    """The new-token budget of the preset for `model` (a hub id or a local folder of that name),
    or None when no preset names it: what a model gets when nobody chose a budget."""
    name = model.rstrip("/").rsplit("/", 1)[-1].lower()
    budgets = {p.max_new_tokens for p in registry().values() if p.model and p.model.rsplit("/", 1)[-1].lower() == name}
    return budgets.pop() if len(budgets) == 1 else None


def list_presets() -> list[Preset]:
    return [registry()[n] for n in sorted(registry())]
