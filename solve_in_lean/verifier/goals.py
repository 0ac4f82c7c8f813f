"""Ask the prover for proofs of verifier goals and check every one with the strict rules.

One batch: `samples` completions per goal, each goal's prompt carrying the problem, the claim
in words and (DTV-style) the informal solution; every extracted program goes through
`verify_many` with the goal as its `Target`, so the goal is elaborated before untrusted code,
`sorry` is refused and axioms are audited exactly as for solutions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

from autoformalize.extract import extract_lean
from autoformalize.problem import FormalProblem
from solve_in_lean.lean.base import LeanChecker
from solve_in_lean.models.base import Generator, SamplingParams
from solve_in_lean.options import SolveOptions
from solve_in_lean.prompts import get_prompt
from solve_in_lean.verifier.statements import Goal
from solve_in_lean.verify import Policy, VerifyRequest, verify_many


@dataclass
class GoalAttempt:
    role: str
    sample: int
    completion: str
    code: str | None
    verified: bool
    reasons: list[str]
    lean: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def prove_goals(problem: FormalProblem, goals: list[tuple[Goal, str]], generator: Generator,
                checker: LeanChecker, *, params: SamplingParams, options: SolveOptions, policy: Policy,
                solution: str | None = None) -> list[list[GoalAttempt]]:
    """For each (goal, claim in words): `options.samples` attempts, checked. Input order kept."""
    if not goals:
        return []
    template = get_prompt("lean_goal")
    prompts = [template.render(problem=problem.source or "(given only as a Lean statement)", claim=claim,
                               solution=(solution or "").strip() or "(none)", statement=goal.statement())
               for goal, claim in goals]
    stop = tuple(dict.fromkeys((*params.stop, *template.stop)))
    rows = generator.generate(prompts, replace(params, n=options.samples, stop=stop))
    texts = [[c.text for c in row] for row in rows]
    codes = [[extract_lean(t) for t in row] for row in texts]
    requests, where = [], []
    for g, row in enumerate(codes):
        for s, code in enumerate(row):
            if code:
                requests.append(VerifyRequest(code, problem.header or None, goals[g][0].target))
                where.append((g, s))
    verdicts = dict(zip(where, verify_many(requests, checker, policy=policy, timeout_s=options.timeout_s)))
    out: list[list[GoalAttempt]] = []
    for g, row in enumerate(texts):
        attempts = []
        for s, text in enumerate(row):
            v = verdicts.get((g, s))
            if v is None:
                attempts.append(GoalAttempt(goals[g][0].role, s, text, None, False, ["no Lean code in the completion"]))
            else:
                attempts.append(GoalAttempt(goals[g][0].role, s, text, codes[g][s], v.verified, v.reasons,
                                            v.check.to_dict()))
        out.append(attempts)
    return out


def first_proof(attempts: list[GoalAttempt]) -> GoalAttempt | None:
    return next((a for a in attempts if a.verified), None)
