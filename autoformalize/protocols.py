"""What autoformalize needs from a language model and from Lean, as structural types.

`autoformalize` imports nothing from `solve_in_lean`: any object with these methods works
(`solve_in_lean.models.Generator` and `solve_in_lean.lean.LeanChecker` do). Sampling params
are passed in by the caller and only ever changed with `dataclasses.replace(params, n=...)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, Sequence


class CompletionLike(Protocol):
    text: str


class GeneratorLike(Protocol):
    def generate(self, prompts: Sequence[Any], params: Any) -> Sequence[Sequence[CompletionLike]]:
        """For each prompt (a string or a list of chat messages), `params.n` completions."""
        ...


class MessageLike(Protocol):
    severity: str
    line: int
    column: int
    text: str


class CheckResultLike(Protocol):
    status: str
    messages: Sequence[MessageLike]

    @property
    def ok(self) -> bool: ...

    @property
    def errors(self) -> Sequence[MessageLike]: ...


class CheckerLike(Protocol):
    def check(self, code: str, *, header: str | None = None,
              timeout_s: float | None = None) -> CheckResultLike:
        ...

    def check_many(self, requests: Sequence[Any], *, workers: int | None = None) -> Sequence[CheckResultLike]:
        """Results in input order; requests are objects with `code`, `header`, `timeout_s`."""
        ...


@dataclass(frozen=True)
class LeanRequest:
    """One piece of Lean for `check_many` (same attributes as solve_in_lean's CheckRequest)."""

    code: str
    header: str | None = None
    timeout_s: float | None = None
