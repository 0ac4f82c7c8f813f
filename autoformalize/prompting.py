"""Prompt templates as data, all in one unified format: a task's role, guidance, instruction,
few-shot examples and stop strings, rendered through one shared system prompt.

The format (autoformalize/prompts/format.toml) is the InternLM-Math style: one system prompt
naming the role (solver, prover, formalizer, verifier, augmentor), a task-tagged guidance line,
and one answer convention per kind of answer (informal, python, lean, ...). Task files, one per
task, hold only what is theirs, so a model trained on a mixture of tasks sees one consistent
format, and a run can record exactly which text the model saw. Fields are written `{name}` in the
instruction; literal braces are doubled, as in `str.format`.
This module imports nothing from `solve_in_lean`: autoformalization stands on its own; it sits
below both packages, so the format is defined once for both.
"""

from __future__ import annotations

import string
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


def _fields(text: str, where: str) -> tuple[str, ...]:
    names: list[str] = []
    for _, name, _, _ in string.Formatter().parse(text):
        if name is not None and name not in names:
            if not name.isidentifier():
                raise ValueError(f"{where}: field {{{name}}} is not a plain name "
                                 "(write literal braces as {{ and }})")
            names.append(name)
    return tuple(names)


@dataclass(frozen=True)
class PromptTemplate:
    """One task format. `render` gives chat messages (system, example turns, the question);
    `render_text` gives the same content as one string for base models without a chat template.
    Templates of the registry come from `TaskFormat.template`; presets build their own on purpose."""

    name: str
    instruction: str
    system: str = ""
    examples: tuple[tuple[dict, str], ...] = ()
    """Few-shot examples: (instruction fields, the answer the model should give)."""
    stop: tuple[str, ...] = ()
    description: str = ""
    role: str = ""
    """The unified format's role (empty for a preset's own template)."""
    answer: str = ""
    """The unified format's answer convention (informal, python, lean, ...), or empty."""
    fields: tuple[str, ...] = field(init=False)
    """The names the instruction needs, in order of first use."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "fields", _fields(self.instruction, f"prompt {self.name!r}"))
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
        messages = self.render_zero_shot(**values)
        shots = []
        for inputs, output in self.examples:
            shots += [{"role": "user", "content": self.instruction_for(**inputs)},
                      {"role": "assistant", "content": output}]
        return messages[:-1] + shots + messages[-1:]

    def render_zero_shot(self, **values: object) -> list[dict]:
        """System and question without the few-shot turns: the shape of a training example."""
        messages = [{"role": "system", "content": self.system}] if self.system else []
        return messages + [{"role": "user", "content": self.instruction_for(**values)}]

    def render_text(self, **values: object) -> str:
        """One string ending where the answer should start; `stop` should end the answer."""
        parts = [self.system] if self.system else []
        parts += [f"{self.instruction_for(**inputs)}\n{output}" for inputs, output in self.examples]
        parts.append(f"{self.instruction_for(**values)}\n")
        return "\n\n".join(parts)

    @classmethod
    def from_dict(cls, data: dict, *, default_name: str = "") -> "PromptTemplate":
        """A template given whole (system prompt included): a preset's own published format."""
        name = data.get("name", default_name)
        _no_unknown(data, {"name", "description", "system", "instruction", "stop", "examples"}, name)
        return cls(name=name, instruction=data["instruction"], system=data.get("system", ""),
                   examples=_examples(data, name), stop=tuple(data.get("stop", ())),
                   description=data.get("description", ""))


def _no_unknown(data: dict, allowed: set[str], name: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValueError(f"prompt {name!r}: unknown keys {unknown}")


def _examples(data: dict, name: str) -> tuple[tuple[dict, str], ...]:
    examples = []
    for i, ex in enumerate(data.get("examples", [])):
        if not isinstance(ex, dict) or not isinstance(ex.get("input"), dict) or "output" not in ex:
            raise ValueError(f"prompt {name!r}: example {i + 1} needs an [examples.input] table and an output")
        examples.append((ex["input"], ex["output"]))
    return tuple(examples)


SYSTEM_FIELDS = ("role", "task", "guidance", "convention")
TASK_KEYS = {"name", "description", "role", "answer", "guidance", "instruction", "stop", "examples"}


@dataclass(frozen=True)
class TaskFormat:
    """The unified format: the shared system prompt, the roles, the answer conventions and the
    code interpreter's feedback turn. Every registered task is built by `template`."""

    system: str
    roles: tuple[str, ...]
    conventions: dict[str, str]
    interpreter: dict[str, str]

    def __post_init__(self) -> None:
        if set(_fields(self.system, "format system")) != set(SYSTEM_FIELDS):
            raise ValueError(f"the format's system prompt must use exactly the fields {list(SYSTEM_FIELDS)}")
        missing = {"output", "ok", "failed", "empty"} - set(self.interpreter)
        if missing:
            raise ValueError(f"the format's [interpreter] table lacks {sorted(missing)}")

    def system_for(self, task: str, role: str, answer: str, guidance: str) -> str:
        """The one system prompt, for `task` in `role` with the `answer` convention."""
        if role not in self.roles:
            raise ValueError(f"prompt {task!r}: role {role!r} is not one of {list(self.roles)}")
        if answer not in self.conventions:
            raise ValueError(f"prompt {task!r}: answer {answer!r} is not one of {sorted(self.conventions)}")
        if not guidance.strip():
            raise ValueError(f"prompt {task!r}: the guidance is empty")
        return self.system.format(role=role, task=task, guidance=guidance.strip(),
                                  convention=self.conventions[answer])

    def template(self, data: dict[str, Any], *, default_name: str = "") -> PromptTemplate:
        """A task file's table as a template in this format (a task file has no system prompt of its own)."""
        name = data.get("name", default_name)
        _no_unknown(data, TASK_KEYS, name)
        missing = sorted({"role", "answer", "guidance", "instruction"} - set(data))
        if missing:
            raise ValueError(f"prompt {name!r}: missing keys {missing}")
        return PromptTemplate(name=name, instruction=data["instruction"],
                              system=self.system_for(name, data["role"], data["answer"], data["guidance"]),
                              examples=_examples(data, name), stop=tuple(data.get("stop", ())),
                              description=data.get("description", ""), role=data["role"], answer=data["answer"])

    def interpreter_turn(self, output: str, *, error: str | None = None) -> str:
        """The user turn after a ```python block: what it printed, then what to do next
        (`error` says why the run failed, None when it succeeded)."""
        status = self.interpreter["ok"] if error is None else self.interpreter["failed"].format(message=error)
        return self.interpreter["output"].format(output=output or self.interpreter["empty"], status=status)


PROMPTS_DIR = Path(__file__).parent / "prompts"
"""Templates of the autoformalization tasks (formalize, backtranslate, judge), and the format."""
FORMAT_FILE = PROMPTS_DIR / "format.toml"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: {e}") from e


@lru_cache(maxsize=1)
def unified_format() -> TaskFormat:
    """The format every registered task renders through (format.toml)."""
    data = _read_toml(FORMAT_FILE)
    try:
        return TaskFormat(system=data["system"].strip(), roles=tuple(data["roles"]),
                          conventions=dict(data["conventions"]), interpreter=dict(data["interpreter"]))
    except (KeyError, ValueError) as e:
        raise ValueError(f"{FORMAT_FILE}: {e}") from e


def load_templates(folder: str | Path) -> dict[str, PromptTemplate]:
    """Every task file (`*.toml` but the format itself) in `folder`, rendered through the format, by name."""
    fmt = unified_format()
    templates: dict[str, PromptTemplate] = {}
    for path in sorted(Path(folder).glob("*.toml")):
        if path.resolve() == FORMAT_FILE.resolve():
            continue
        data = _read_toml(path)
        try:
            template = fmt.template(data, default_name=path.stem)
        except (KeyError, ValueError) as e:
            raise ValueError(f"{path}: {e}") from e
        if template.name in templates:
            raise ValueError(f"{path}: prompt name {template.name!r} is defined twice in {folder}")
        templates[template.name] = template
    return templates
