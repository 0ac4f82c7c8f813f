"""Step-wise proving: best-first search over tactic states, as InternLM-Math's step prover.

Each node is a proof state reached by a list of tactics; its priority is the summed
log-probability the model gave those tactics. The search expands the most likely node: the
model proposes tactics for its goals, the REPL applies them, and new states join the queue.
A budget in expansions and seconds bounds it. A found proof is then checked whole, under
the verification rules, like any other proof.
"""

from __future__ import annotations

import heapq
import itertools
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Generic, Hashable, Protocol, TypeVar

S = TypeVar("S")


@dataclass(frozen=True)
class Step(Generic[S]):
    """What applying one tactic gave: a new state, whether it closes the proof, or an error."""

    state: S | None
    goals: tuple[str, ...]
    done: bool
    error: str = ""
    lost: bool = False
    """Every state of the search is gone (the REPL process holding them restarted): stop."""


@dataclass
class SearchResult:
    tactics: list[str] | None
    """The tactics of a complete proof, in order; None when none was found."""
    expansions: int
    elapsed_s: float
    stopped_by: str
    """`proof`, `expansions`, `seconds`, `exhausted` (no state left to expand) or `restarted`
    (the REPL restarted and took every proof state with it; `detail` says why)."""
    tried: int = 0
    detail: str = ""
    states: int = 0
    """Distinct proof states reached (the tree's size), the start included."""
    depth: int = 0
    """Tactics on the longest path expanded (or of the proof found)."""


@dataclass(order=True)
class _Node(Generic[S]):
    priority: float
    order: int
    state: S = field(compare=False)
    goals: tuple[str, ...] = field(compare=False)
    tactics: tuple[str, ...] = field(compare=False)
    score: float = field(compare=False)


def best_first(start: S, goals: tuple[str, ...], *,
               propose: Callable[[tuple[str, ...], tuple[str, ...]], list[tuple[str, float]]],
               apply: Callable[[S, str], Step[S]], max_expansions: int = 64, max_seconds: float = 300.0,
               key: Callable[[tuple[str, ...]], Hashable] = lambda g: g) -> SearchResult:
    """Search from `start`. `propose(goals, tactics_so_far)` gives (tactic, logprob) candidates;
    `apply(state, tactic)` runs one. States with goals already seen are not expanded twice."""
    t0 = time.monotonic()
    counter = itertools.count()
    queue: list[_Node[S]] = [_Node(0.0, next(counter), start, goals, (), 0.0)]
    seen = {key(goals)}
    expansions = tried = depth = 0

    def stop(how: str, tactics: list[str] | None = None, detail: str = "") -> SearchResult:
        return SearchResult(tactics, expansions, time.monotonic() - t0, how, tried, detail, len(seen),
                            len(tactics) if tactics is not None else depth)
    while queue:
        if expansions >= max_expansions:
            return stop("expansions")
        if time.monotonic() - t0 >= max_seconds:
            return stop("seconds")
        node = heapq.heappop(queue)
        expansions += 1
        depth = max(depth, len(node.tactics))
        for tactic, logprob in propose(node.goals, node.tactics):
            tried += 1
            step = apply(node.state, tactic)
            if step.lost:
                return stop("restarted", detail=step.error)
            if step.error or step.state is None and not step.done:
                continue
            tactics = node.tactics + (tactic,)
            if step.done:
                return stop("proof", list(tactics))
            k = key(step.goals)
            if k in seen:
                continue
            seen.add(k)
            score = node.score + logprob
            heapq.heappush(queue, _Node(-score, next(counter), step.state, step.goals, tactics, score))
    return stop("exhausted")


class _Session(Protocol):
    def start(self, theorem: str): ...  # noqa: E704
    def step(self, state: int, tactic: str): ...  # noqa: E704


def model_proposer(generator, params, *, n: int = 8, template=None):  # type: ignore[no-untyped-def]
    """`propose` for best_first from a generator: n sampled tactics per goal list, deduplicated,
    each with its log-probability (0 when the backend gives none). `template`: a preset's tactic
    prompt (default: the project's)."""
    from solve_in_lean.prompts import get_prompt

    template = template or get_prompt("tactic")
    params = replace(params, stop=tuple(dict.fromkeys((*params.stop, *template.stop))))  # the prompt's stop strings

    def propose(goals: tuple[str, ...], tactics: tuple[str, ...]) -> list[tuple[str, float]]:
        prompt = template.render(goals="\n\n".join(goals), tactics="\n".join(tactics) or "(none yet)")
        completions = generator.generate([prompt], replace(params, n=n))[0]
        best: dict[str, float] = {}
        for c in completions:
            tactic = c.text.strip().split("\n")[0].strip().strip("`")
            if tactic and not c.error:
                lp = c.logprob if c.logprob is not None else 0.0
                best[tactic] = max(best.get(tactic, float("-inf")), lp)
        return sorted(best.items(), key=lambda kv: -kv[1])

    return propose


def session_apply(session: _Session) -> Callable[[int, str], Step[int]]:
    """`apply` for best_first from a tactic session; a restarted REPL ends the search."""
    def apply(state: int, tactic: str) -> Step[int]:
        r = session.step(state, tactic)
        return Step(r.state, tuple(r.goals), r.status == "completed", r.error, lost=r.status == "restarted")
    return apply


def prove_stepwise(theorem: str, session: _Session, propose, *, max_expansions: int = 64,  # type: ignore[no-untyped-def]
                   max_seconds: float = 300.0) -> tuple[str | None, SearchResult]:
    """Search a tactic proof of `theorem` (text up to `:=`) in a REPL tactic session.
    Returns the whole proof text (`theorem ... := by` + tactics) and the search record."""
    first = session.start(theorem)
    if first.status == "restarted":
        return None, SearchResult(None, 0, 0.0, "restarted", detail=first.error)
    if first.status == "error" or first.state is None:
        return None, SearchResult(None, 0, 0.0, f"start failed: {first.error}")
    result = best_first(first.state, tuple(first.goals), propose=propose, apply=session_apply(session),
                        max_expansions=max_expansions, max_seconds=max_seconds)
    if result.tactics is None:
        return None, result
    body = "\n".join(f"  {t}" for t in result.tactics)
    return f"{theorem} := by\n{body}\n", result


@dataclass
class Calls:
    """The search's budget as spent: model calls (one per expansion) and Lean calls (REPL commands)."""

    model: int = 0
    lean: int = 0


class _CountedSession:
    def __init__(self, session: _Session, calls: Calls) -> None:
        self._session, self._calls = session, calls

    def start(self, theorem: str):  # type: ignore[no-untyped-def]
        self._calls.lean += 1
        return self._session.start(theorem)

    def step(self, state: int, tactic: str):  # type: ignore[no-untyped-def]
        self._calls.lean += 1
        return self._session.step(state, tactic)


def counted_search(theorem: str, session: _Session, propose, *, max_expansions: int,  # type: ignore[no-untyped-def]
                   max_seconds: float) -> tuple[str | None, SearchResult, Calls]:
    """`prove_stepwise`, counting the model and Lean calls it makes (the budget an eval reports)."""
    calls = Calls()

    def counted_propose(goals: tuple[str, ...], tactics: tuple[str, ...]) -> list[tuple[str, float]]:
        calls.model += 1
        return propose(goals, tactics)
    proof, result = prove_stepwise(theorem, _CountedSession(session, calls), counted_propose,
                                   max_expansions=max_expansions, max_seconds=max_seconds)
    return proof, result, calls
