"""The prompt registry: every task format in one place, looked up by name.

It sits above `models/` (the backends only generate; they never need to know the tasks).
Task files are TOML: solving, reward and augmentation tasks (cot, code, lean_solve, prove,
orm, prm, ...) in `solve_in_lean/prompts/`, autoformalization tasks (formalize,
backtranslate, judge) in `autoformalize/prompts/`; each renders through the one unified
format (`autoformalize/prompts/format.toml`, see `autoformalize.prompting`). A task name
defined in both folders is an error, not a silent override.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from autoformalize.prompting import PROMPTS_DIR as AUTOFORMALIZE_PROMPTS
from autoformalize.prompting import PromptTemplate, load_templates

SOLVE_PROMPTS = Path(__file__).parent / "prompts"
FOLDERS = (SOLVE_PROMPTS, AUTOFORMALIZE_PROMPTS)


@lru_cache(maxsize=1)
def _registry() -> dict[str, PromptTemplate]:
    registry: dict[str, PromptTemplate] = {}
    for folder in FOLDERS:
        for name, template in load_templates(folder).items():
            if name in registry:
                raise ValueError(f"prompt {name!r} is defined in more than one of {[str(f) for f in FOLDERS]}")
            registry[name] = template
    return registry


def get_prompt(task: str) -> PromptTemplate:
    """The template of `task` (e.g. "cot", "lean_solve", "prove", "formalize")."""
    registry = _registry()
    if task not in registry:
        raise KeyError(f"no prompt for task {task!r}; known tasks: {', '.join(sorted(registry))}")
    return registry[task]


def list_tasks() -> list[str]:
    return sorted(_registry())
