"""The `code` solver: the model computes with Python, the sandbox runs it, Python's output decides.

PAL / RICO style: the model reasons and writes a ```python block; the sandbox runs it (with the
sample's earlier successful blocks replayed first, so variables carry over) and its output goes
back as the next turn, until the model states "The answer is N." or the turns run out, in which
case the last line the code printed is the answer. `samples` conversations run side by side (their
programs in parallel, one sandbox each) and their answers are majority-voted.

An answer counts as *computed by Python* only when a successful run printed that value; it is a
tier below Lean-verified (nothing proves the program models the problem) and above a bare chain
of thought. An answer the model merely asserted stays unverified.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from autoformalize.prompting import unified_format
from solve_in_lean.answers import equivalent, extract_answer, normalize, to_text
from solve_in_lean.code.sandbox import SandboxLimits, SandboxResult, run_python
from solve_in_lean.errors import UnavailableError
from solve_in_lean.models.base import ChatMessage, Generator, SamplingParams
from solve_in_lean.parallel import default_workers, ordered_map
from solve_in_lean.prompts import get_prompt

COMPUTED_BY_PYTHON = "computed by Python"
UNVERIFIED = "unverified"

_BLOCK = re.compile(r"```(?:python|py|python3)[ \t]*\n(.*?)(?:```|\Z)", re.DOTALL | re.IGNORECASE)
_LETTER = re.compile(r"[^\W\d_]")
MAX_FEEDBACK_CHARS = 2000
"""How much of a run's output goes back to the model (the sandbox caps what it collects)."""


def python_blocks(text: str) -> str | None:
    """The ```python blocks of one model turn joined into one cell; None if there is none. An
    unterminated last block counts (the turn may have been cut at a stop string)."""
    blocks = [b.strip("\n") for b in _BLOCK.findall(text or "") if b.strip()]
    return "\n\n".join(blocks) if blocks else None


def printed_answer(stdout: str) -> str | None:
    """The answer a program printed: its last non-empty line, whole when it is a value
    (`sqrt(2)/2`, `7/2`, `(3, 4)`), else read like a model's final sentence ("x = 5", "Total: 12")."""
    lines = [line.strip() for line in stdout.splitlines() if line.strip()]
    if not lines:
        return None
    value = normalize(lines[-1])
    if value is not None and (value.value is not None or not _LETTER.search(lines[-1])):
        return lines[-1]
    return extract_answer(lines[-1])


def _printed_values(stdout: str, last: int = 50) -> list[str]:
    """The values on the last `last` lines (an answer is printed at the end; reading every line
    of 64 KiB of output through sympy would cost more than the run)."""
    return [v for line in stdout.splitlines()[-last:] if (v := printed_answer(line)) is not None]


@dataclass
class Turn:
    text: str
    code: str | None
    run: dict[str, Any] | None
    """The sandbox's record (status, message, output, layers) when the turn had code."""


@dataclass
class Sample:
    turns: list[Turn] = field(default_factory=list)
    answer: str | None = None
    """The normalized answer (canonical text), or None."""
    source: str | None = None
    """COMPUTED_BY_PYTHON when a successful run printed the answer, UNVERIFIED when the model only
    asserted it, None without an answer."""
    cells: list[str] = field(default_factory=list)
    """Blocks that ran successfully, replayed before the next one."""
    outputs: list[str] = field(default_factory=list)
    messages: list[ChatMessage] = field(default_factory=list)
    done: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"turns": [asdict(t) for t in self.turns], "answer": self.answer, "source": self.source}


@dataclass
class CodeResult:
    answer: str | None
    label: str | None
    """COMPUTED_BY_PYTHON when a python-backed sample voted for the answer, else UNVERIFIED."""
    votes: dict[str, int]
    samples: list[Sample]

    @property
    def computed_by_python(self) -> bool:
        return self.label == COMPUTED_BY_PYTHON

    def to_dict(self) -> dict[str, Any]:
        return {"answer": self.answer, "label": self.label, "votes": self.votes,
                "samples": [s.to_dict() for s in self.samples]}


def interpreter_turn(result: SandboxResult) -> str:
    """The interpreter's turn in the unified format: what the run printed and what to do next."""
    shown = result.stdout if result.ok else (result.stdout + result.stderr)
    if len(shown) > MAX_FEEDBACK_CHARS:
        shown = shown[:MAX_FEEDBACK_CHARS] + "\n... (output cut)"
    return unified_format().interpreter_turn(shown.rstrip("\n"), error=None if result.ok else result.message)


def _settle(sample: Sample, raw: str | None, from_output: bool) -> None:
    value = normalize(raw) if raw else None
    sample.done = True
    if value is None:
        return
    sample.answer = to_text(value)
    backed = from_output or any(equivalent(sample.answer, v) for out in sample.outputs for v in _printed_values(out))
    sample.source = COMPUTED_BY_PYTHON if backed else UNVERIFIED


def _run(cells: list[str], limits: SandboxLimits) -> SandboxResult:
    """One sandbox run; a sandbox that cannot confine code stops the solve (UnavailableError):
    every later run would fail the same way, and scoring them as wrong answers would hide it."""
    result = run_python(cells, limits)
    if result.status == "sandbox_error":
        raise UnavailableError(f"{result.message} The code solver needs Linux with Landlock and libseccomp2 "
                               "(docs/code_interpreter.md).")
    return result


def _step(sample: Sample, text: str, code: str | None, result: SandboxResult | None, last: bool) -> None:
    """Advance one conversation by the model's turn `text` and, when it had code, its run."""
    if code is None or result is None:
        sample.turns.append(Turn(text, None, None))
        _settle(sample, extract_answer(text), from_output=False)
        return
    sample.turns.append(Turn(text, code, result.to_dict()))
    if result.ok:
        sample.cells.append(code)
        sample.outputs.append(result.stdout)
    if last:
        _settle(sample, printed_answer(result.stdout) if result.ok else None, from_output=True)
        return
    # A new list, not +=: the previous one was handed to the generator, which may keep it.
    sample.messages = sample.messages + [{"role": "assistant", "content": text},
                                         {"role": "user", "content": interpreter_turn(result)}]


def solve_with_code(problem: str, generator: Generator, *, params: SamplingParams, samples: int = 1,
                    turns: int = 2, limits: SandboxLimits | None = None) -> CodeResult:
    """Up to `turns` model turns per sample (the last turn's code, if any, is run and its
    printed value taken), `samples` samples majority-voted."""
    if samples < 1 or turns < 1:
        raise ValueError("samples and turns must be at least 1")
    limits = limits or SandboxLimits()
    template = get_prompt("code")
    first = template.render(problem=problem)
    stop = tuple(dict.fromkeys((*params.stop, *template.stop)))
    opening = generator.generate([first], replace(params, n=samples, stop=stop))[0]
    convs = [Sample(messages=list(first)) for _ in range(samples)]
    texts = [c.text for c in opening]
    for turn in range(turns):
        active = [s for s in convs if not s.done]
        codes = [python_blocks(text) for text in texts]
        jobs = [s.cells + [c] for s, c in zip(active, codes) if c is not None]
        runs = iter(ordered_map(lambda cells: _run(cells, limits), jobs, default_workers()))
        for sample, text, code in zip(active, texts, codes):
            _step(sample, text, code, next(runs) if code is not None else None, turn == turns - 1)
        active = [s for s in convs if not s.done]
        if not active or turn == turns - 1:
            break
        rows = generator.generate([s.messages for s in active], replace(params, n=1, stop=stop))
        texts = [row[0].text for row in rows]
    votes = Counter(s.answer for s in convs if s.answer is not None)
    answer = votes.most_common(1)[0][0] if votes else None
    label = None
    if answer is not None:
        backed = any(s.answer == answer and s.source == COMPUTED_BY_PYTHON for s in convs)
        label = COMPUTED_BY_PYTHON if backed else UNVERIFIED
    return CodeResult(answer, label, dict(votes.most_common()), convs)
