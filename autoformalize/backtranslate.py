"""Lean -> English: what a statement (or a computation and its result) says, in plain words.

The prompt asks for the mathematical content, not a reading of the syntax, so that the
judge can compare the back-translation with the original problem sentence by sentence.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from autoformalize.prompting import PromptTemplate
from autoformalize.protocols import GeneratorLike
from autoformalize.templates import generate_texts, render, template

MAX_CHARS = 2000
_FENCED = re.compile(r"^```[^\n]*\n(.*?)\n?```\s*$", re.S)


def clean(text: str) -> str:
    """The back-translation without a wrapping fence or surrounding space, capped in length."""
    text = text.strip()
    if m := _FENCED.match(text):
        text = m.group(1).strip()
    return text[:MAX_CHARS]


def _result_line(result: str | None) -> str:
    return f"Lean computed the answer: {result}" if result else ""


def backtranslate_many(lean_texts: Sequence[str], generator: GeneratorLike, *, params: Any,
                       prompts: Mapping[str, PromptTemplate] | None = None,
                       results: Sequence[str | None] | None = None, chat: bool = True) -> list[str]:
    """One English rendering per Lean text, in one batched generate call ("" when the model gave none)."""
    if not lean_texts:
        return []
    tmpl = template(prompts, "backtranslate")
    results = list(results) if results is not None else [None] * len(lean_texts)
    batch = [render(tmpl, chat=chat, lean=lean.strip(), result=_result_line(res))
             for lean, res in zip(lean_texts, results)]
    outs = generate_texts(generator, batch, params, 1, tmpl.stop)
    return [clean(out[0][0]) for out in outs]


def backtranslate(lean_text: str, generator: GeneratorLike, *, params: Any,
                  prompts: Mapping[str, PromptTemplate] | None = None, result: str | None = None,
                  chat: bool = True) -> str:
    """Clear English for one Lean statement; `result` is a value Lean computed for it, if any."""
    return backtranslate_many([lean_text], generator, params=params, prompts=prompts,
                              results=[result], chat=chat)[0]
