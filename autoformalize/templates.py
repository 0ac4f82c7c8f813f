"""Prompts in, texts out: the small glue every model call of autoformalize shares."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from functools import lru_cache
from typing import Any, Mapping, Sequence

from autoformalize.prompting import PROMPTS_DIR, PromptTemplate, load_templates

_SURROGATE = re.compile("[\ud800-\udfff]")
TASKS = ("formalize", "formalize_repair", "backtranslate", "judge")
"""The templates autoformalize needs; `prompts=` mappings must hold all of them."""


@lru_cache(maxsize=1)
def default_prompts() -> Mapping[str, PromptTemplate]:
    """The templates shipped in autoformalize/prompts/."""
    return load_templates(PROMPTS_DIR)


def template(prompts: Mapping[str, PromptTemplate] | None, task: str) -> PromptTemplate:
    table = default_prompts() if prompts is None else prompts
    if task not in table:
        raise KeyError(f"no prompt template {task!r}; autoformalize needs {', '.join(TASKS)}")
    return table[task]


def render(tmpl: PromptTemplate, *, chat: bool, **fields: object) -> str | list[dict]:
    """Chat messages for chat models, one string for base models."""
    return tmpl.render(**fields) if chat else tmpl.render_text(**fields)


def prompt_hash(prompt: str | list[dict]) -> str:
    """Short content hash, so a record names exactly the prompt its text came from."""
    return hashlib.sha256(json.dumps(prompt, ensure_ascii=False, sort_keys=True).encode()).hexdigest()[:12]


def generate_texts(generator: Any, prompts: Sequence[Any], params: Any, n: int,
                   stop: Sequence[str] = ()) -> list[list[tuple[str, str | None]]]:
    """Per prompt, `n` (text, error) pairs from one batched call, ended by the template's `stop`
    strings as well as the caller's; a short or malformed reply from the generator gives
    ("", reason) entries rather than an exception."""
    if not prompts:
        return []
    params = dataclasses.replace(params, n=n, stop=tuple(dict.fromkeys((*params.stop, *stop))))
    outs = list(generator.generate(list(prompts), params))
    outs += [[]] * (len(prompts) - len(outs))
    return [completion_texts(out if isinstance(out, Sequence) else [], n) for out in outs[:len(prompts)]]


def completion_texts(outputs: Sequence[Any], n: int) -> list[tuple[str, str | None]]:
    """(text, error) for each of `n` completions; missing or non-text ones become ("", reason)."""
    result: list[tuple[str, str | None]] = []
    for j in range(n):
        c = outputs[j] if j < len(outputs) else None
        text = getattr(c, "text", None)
        error = getattr(c, "error", None)
        if c is None:
            result.append(("", "the generator returned fewer completions than asked"))
        elif not isinstance(text, str):
            result.append(("", f"the completion has no text (got {type(text).__name__})"))
        else:
            text = _SURROGATE.sub("\ufffd", text)  # lone surrogates cannot be written as UTF-8
            result.append((text, error if not text.strip() else None))
    return result
