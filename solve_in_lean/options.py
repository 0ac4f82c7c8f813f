"""How hard a run tries, with one name and one default per concept, and the sampling rule.

`SolveOptions` travels unchanged from the CLI (or a config file's `[solve]` table, or a
transfer experiment's `[[eval]]` entry) to `PipelineConfig`, `solve`, `formalize` and the
evaluation tasks, so a value set in one place acts everywhere and is validated once.

Names (the README lists the renames from earlier versions):
    samples            Lean programs (compute) or proofs (prove) sampled per problem   --samples / -n
    rounds             repair rounds with Lean's errors                                 --rounds
    formalize_samples  statements sampled per English problem                           --formalize-samples
    cot_samples        chains of thought voted for the informal (unverified) answer     --cot-samples
    judge              the model judges back-translations against the English           --judge/--no-judge
    timeout_s          seconds per Lean check, statements and solutions alike           --timeout
    max_problem_chars  longest problem text accepted                                    --max-problem-chars
`k` means only the k of pass@k (`lean-solve eval -k`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Sequence

from solve_in_lean.errors import InputError
from solve_in_lean.lean.base import DEFAULT_TIMEOUT_S, validate_timeout
from solve_in_lean.models.base import Completion, Generator, Prompt, SamplingParams

SAMPLED_TEMPERATURE = 0.8
"""The temperature of a request for several samples when the user chose none: n greedy samples
are n copies of one."""
MAX_PROBLEM_CHARS = 20_000
"""Longer than any competition problem (GSM8K's longest is under 1,000 characters, miniF2F's
statements under 3,000); a 100 KB "problem" is a mistake and would only fill the model's context."""


@dataclass(frozen=True)
class SolveOptions:
    """What a solve (or evaluation) asks of the model and Lean per problem."""

    samples: int = 8
    rounds: int = 1
    formalize_samples: int = 4
    cot_samples: int = 4
    judge: bool = True
    timeout_s: float = DEFAULT_TIMEOUT_S
    max_problem_chars: int = MAX_PROBLEM_CHARS

    def __post_init__(self) -> None:
        for name in ("samples", "formalize_samples", "max_problem_chars"):
            _check_int(name, getattr(self, name), minimum=1)
        for name in ("rounds", "cot_samples"):
            _check_int(name, getattr(self, name), minimum=0)
        if not isinstance(self.judge, bool):
            raise InputError(f"judge must be true or false, not {self.judge!r}")
        object.__setattr__(self, "timeout_s", validate_timeout(self.timeout_s, "timeout_s"))

    def replace(self, **changes: Any) -> "SolveOptions":
        """A copy with the given fields changed; None means "not given" (an unset CLI flag)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SolveOptions":
        """Options from a table (config file, run record); unknown keys are an InputError naming them."""
        known = {f.name for f in dataclasses.fields(cls)}
        if bad := sorted(set(data) - known):
            raise InputError(f"unknown option(s) {bad}; known: {sorted(known)}")
        return cls(**data)

    def check_problem(self, text: str) -> str:
        """The problem text, or InputError when it is empty or longer than `max_problem_chars`."""
        if not isinstance(text, str) or not text.strip():
            raise InputError("the problem is empty; give the problem's text")
        if len(text) > self.max_problem_chars:
            raise InputError(f"the problem has {len(text):,} characters, more than max_problem_chars="
                             f"{self.max_problem_chars:,}; shorten it or raise the limit (--max-problem-chars)")
        return text


def _check_int(name: str, value: object, *, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{name} must be a whole number of at least {minimum}, not {value!r}")


def stage_params(params: SamplingParams, n: int, *, auto_temperature: bool) -> SamplingParams:
    """The params of a request for `n` samples: the sampling rule in its one place.

    With `auto_temperature` (the user set no temperature) a request for several samples is
    sampled at SAMPLED_TEMPERATURE when the defaults are greedy; a temperature the user chose,
    even 0, is kept (greedy n > 1 then gives n copies of one completion, on every backend)."""
    params = dataclasses.replace(params, n=n)
    if auto_temperature and n > 1 and params.greedy:
        params = dataclasses.replace(params, temperature=SAMPLED_TEMPERATURE)
    return params


class SamplingRule(Generator):
    """Applies `stage_params` to every request, whichever stage makes it (formalizations, Lean
    programs, chains of thought, repairs, judges), so no stage can forget the rule."""

    def __init__(self, inner: Generator, *, auto_temperature: bool) -> None:
        self.inner, self.auto_temperature = inner, auto_temperature
        self.backend, self.model = inner.backend, inner.model

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams) -> list[list[Completion]]:
        return self.inner.generate(prompts, stage_params(params, params.n, auto_temperature=self.auto_temperature))

    def close(self) -> None:
        self.inner.close()
