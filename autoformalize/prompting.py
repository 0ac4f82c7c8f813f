"""Prompt templates as data: a task's instructions, few-shot examples and stop strings.

Templates live in TOML files, one per task, so a prompt can be changed (or a new task added)
without touching code, and a run can record exactly which text the model saw. Fields are
written `{name}` in the instruction; literal braces are doubled, as in `str.format`.
This module imports nothing from `solve_in_lean`: autoformalization stands on its own.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


@dataclass(frozen=True)
class PromptTemplate:
    """One task format. `render` gives chat messages (system, example turns, the question);
    `render_text` gives the same content as one string for base models without a chat template."""

    name: str
    instruction: str
    system: str = ""
    examples: tuple[tuple[dict, str], ...] = ()
    """Few-shot examples: (instruction fields, the answer the model should give)."""
    stop: tuple[str, ...] = ()
    description: str = ""
    fields: tuple[str, ...] = field(init=False)
    """The names the instruction needs, in order of first use."""

    def __post_init__(self) -> None:
        names = []
        for _, name, _, _ in string.Formatter().parse(self.instruction):
            if name is not None and name not in names:
                if not name.isidentifier():
                    raise ValueError(f"prompt {self.name!r}: field {{{name}}} is not a plain name "
                                     "(write literal braces as {{ and }})")
                names.append(name)
        object.__setattr__(self, "fields", tuple(names))
        object.__setattr__(self, "examples", tuple((dict(i), o) for i, o in self.examples))
        object.__setattr__(self, "stop", tuple(self.stop))
        for i, (inputs, _) in enumerate(self.examples):
            self._check(inputs, f"example {i + 1}")

    def _check(self, values: dict, where: str) -> None:
        missing = [f for f in self.fields if f not in values]
        if missing:
            raise KeyError(f"prompt {self.name!r} ({where}) needs fields {missing}; "
                           f"it takes {list(self.fields)}")

    def instruction_for(self, **values: object) -> str:
        self._check(values, "render")
        return self.instruction.format(**{f: values[f] for f in self.fields})

    def render(self, **values: object) -> list[dict]:
        """Chat messages: system, then each example as a user/assistant turn, then the question."""
        messages = [{"role": "system", "content": self.system}] if self.system else []
        for inputs, output in self.examples:
            messages += [{"role": "user", "content": self.instruction_for(**inputs)},
                         {"role": "assistant", "content": output}]
        messages.append({"role": "user", "content": self.instruction_for(**values)})
        return messages

    def render_text(self, **values: object) -> str:
        """One string ending where the answer should start; `stop` should end the answer."""
        parts = [self.system] if self.system else []
        parts += [f"{self.instruction_for(**inputs)}\n{output}" for inputs, output in self.examples]
        parts.append(f"{self.instruction_for(**values)}\n")
        return "\n\n".join(parts)

    @classmethod
    def from_dict(cls, data: dict, *, default_name: str = "") -> "PromptTemplate":
        allowed = {"name", "description", "system", "instruction", "stop", "examples"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValueError(f"prompt {data.get('name', default_name)!r}: unknown keys {unknown}")
        examples = []
        for i, ex in enumerate(data.get("examples", [])):
            if not isinstance(ex, dict) or not isinstance(ex.get("input"), dict) or "output" not in ex:
                raise ValueError(f"prompt {data.get('name', default_name)!r}: example {i + 1} needs "
                                 "an [examples.input] table and an output")
            examples.append((ex["input"], ex["output"]))
        return cls(name=data.get("name", default_name), instruction=data["instruction"],
                   system=data.get("system", ""), examples=tuple(examples),
                   stop=tuple(data.get("stop", ())), description=data.get("description", ""))

    @classmethod
    def from_toml(cls, path: str | Path) -> "PromptTemplate":
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
            return cls.from_dict(data, default_name=path.stem)
        except (tomllib.TOMLDecodeError, KeyError, ValueError) as e:
            raise ValueError(f"{path}: {e}") from e


PROMPTS_DIR = Path(__file__).parent / "prompts"
"""Templates of the autoformalization tasks (formalize, backtranslate, judge)."""


def load_templates(folder: str | Path) -> dict[str, PromptTemplate]:
    """Every `*.toml` template in `folder`, by name."""
    templates: dict[str, PromptTemplate] = {}
    for path in sorted(Path(folder).glob("*.toml")):
        template = PromptTemplate.from_toml(path)
        if template.name in templates:
            raise ValueError(f"{path}: prompt name {template.name!r} is defined twice in {folder}")
        templates[template.name] = template
    return templates
