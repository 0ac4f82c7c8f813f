"""Augmented data must not repeat its source set or leak an evaluation item into training.

Texts are compared by a hash of their normalized form (Unicode NFKC, case folded, whitespace
collapsed), the English question and the Lean statement each: a new problem whose question or
statement is already in the source set or an evaluation split is dropped, naming which.
"""

from __future__ import annotations

import hashlib
import unicodedata
from typing import Any, Iterable


def text_key(text: str) -> str:
    """The hash two copies of a text share however they are spaced or cased."""
    return hashlib.sha256(" ".join(unicodedata.normalize("NFKC", text).casefold().split()).encode()).hexdigest()


def _texts(item: dict[str, Any]) -> Iterable[tuple[str, str]]:
    if isinstance(item.get("question"), str) and item["question"].strip():
        yield "question", item["question"]
    formal = item.get("formal")
    if isinstance(formal, dict) and isinstance(formal.get("statement"), str) and formal["statement"].strip():
        yield "statement", formal["statement"]


class Seen:
    """Normalized-text hashes of the questions and statements of named item sets."""

    def __init__(self) -> None:
        self.keys: dict[str, str] = {}
        """hash -> the set it came from."""

    def add(self, items: Iterable[dict[str, Any]], origin: str) -> None:
        for item in items:
            for _, text in _texts(item):
                self.keys.setdefault(text_key(text), origin)

    def clash(self, row: dict[str, Any]) -> str | None:
        """Why `row` repeats something already seen (its question or statement, and where), else None."""
        for part, text in _texts(row):
            origin = self.keys.get(text_key(text))
            if origin is not None:
                return f"its {part} is already in {origin}"
        return None
