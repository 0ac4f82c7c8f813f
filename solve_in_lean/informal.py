"""The verified result back in English: the value in the problem's own terms, a short
explanation from the Lean program, and a plain statement of what was and was not verified."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

_MONEY = re.compile(r"\$|\bdollars?\b|\bcents?\b|€|£|\beuros?\b")
_UNIT_AFTER_HOW_MANY = re.compile(r"\bhow many ([a-z]+(?: [a-z]+)?)", re.IGNORECASE)
_UNIT_AFTER_HOW_MUCH = re.compile(r"\bhow (?:much|long|far|fast|old)\b", re.IGNORECASE)
_STOP = {"more", "less", "of", "in", "does", "do", "did", "will", "can", "are", "is", "were", "was",
         "would", "total", "times", "the", "he", "she", "they", "we", "you"}


@dataclass
class InformalAnswer:
    text: str
    """One sentence a person reads: the value with its unit and whether Lean verified it."""
    value: str | None
    verified: bool
    explanation: str

    def to_dict(self) -> dict:
        return asdict(self)


def unit_of(question: str) -> str:
    """The unit the question asks in: "$" for money, the noun after "how many", else ""."""
    tail = question.strip().split("?")[0].split(".")[-1] if "?" in question else question
    if _MONEY.search(tail) or (_UNIT_AFTER_HOW_MUCH.search(tail) and _MONEY.search(question)):
        return "$"
    m = _UNIT_AFTER_HOW_MANY.search(tail)
    if m:
        words = [w for w in m.group(1).lower().split() if w not in _STOP]
        if len(words) == 2 and words[0] in ("square", "cubic"):
            return " ".join(words)
        return words[0] if words else ""
    return ""


def format_value(value: str, unit: str) -> str:
    if not unit:
        return value
    if unit == "$":
        return f"-${value[1:]}" if value.startswith("-") else f"${value}"
    return f"{value} {unit}"


def template_explanation(*, theorem: str, statement: str, answer_name: str | None, value: str | None,
                         proof_checked: bool) -> str:
    """The explanation used when no model is given: what Lean computed and what it proved."""
    parts = []
    if answer_name and value is not None:
        parts.append(f"Lean evaluated `{answer_name}` to {value}.")
    if proof_checked:
        parts.append(f"The kernel accepted the theorem `{theorem}`: {statement}.")
    return " ".join(parts) or "Lean did not verify anything for this problem."


def informal_answer(question: str, value: str | None, *, verified: bool, explanation: str) -> InformalAnswer:
    if value is None:
        return InformalAnswer("No answer: neither Lean nor the chain of thought produced a value.",
                              None, False, explanation)
    shown = format_value(value, unit_of(question))
    if verified:
        text = f"The answer is {shown} (verified in Lean)."
    else:
        text = f"The answer is {shown} (unverified: from chain of thought, not checked by Lean)."
    return InformalAnswer(text, value, verified, explanation)
