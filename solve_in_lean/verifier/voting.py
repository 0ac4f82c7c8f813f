"""Verified voting: choose a compute problem's answer from verified programs, chains of thought
that Lean confirmed, and plain votes (FANS / DTV style). docs/evaluation.md states the rule.

Each distinct chain-of-thought answer gets Lean's verdict (answer.py): confirmed when it equals
a verified program's value or a proof of "the answer is a" verified; refuted when a proof of its
negation verified or a verified program computed another value under a determinate statement.

Rules, each reported so their accuracy can be compared:
    majority   the most frequent chain-of-thought answer (no Lean)
    lean       the majority of verified programs' values (None when none verified)
    verified   1. verified programs' majority, when any program verified;
               2. else the confirmed chain-of-thought answer with the most votes;
               3. else the most voted chain-of-thought answer that Lean did not refute (unverified);
               4. else none.
The `verified` rule's answer counts as verified in cases 1 and 2 only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from autoformalize.problem import FormalProblem
from solve_in_lean.lean.base import LeanChecker
from solve_in_lean.models.base import Generator, SamplingParams
from solve_in_lean.options import SolveOptions
from solve_in_lean.solve import SolveResult
from solve_in_lean.verifier.answer import check_model_answer
from solve_in_lean.verifier.determinacy import Determinacy, certify
from solve_in_lean.verifier.values import same_number
from solve_in_lean.verify import Policy

@dataclass
class Vote:
    answer: str | None
    verified: bool
    rule_step: str
    """Which step of the `verified` rule chose: program, confirmed, unrefuted, none."""
    proof: str | None = None
    rules: dict[str, str | None] = field(default_factory=dict)
    """Each rule's answer."""
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Lean's verdict on each distinct chain-of-thought answer."""
    determinacy: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def verified_vote(problem: FormalProblem, result: SolveResult, generator: Generator, checker: LeanChecker, *,
                  params: SamplingParams, options: SolveOptions, policy: Policy) -> Vote:
    """Check every distinct chain-of-thought answer with Lean and apply the rule above."""
    det: Determinacy | None = None
    if result.verified and result.proof and problem.kind == "compute" and problem.answer_name:
        det = certify(problem, generator, checker, params=params, options=options, policy=policy,
                      witness=result.answer, witness_proof=result.proof)
    checks: dict[str, dict[str, Any]] = {}
    for answer in result.cot_votes:
        if result.verified and same_number(answer, result.answer):
            checks[answer] = {"verdict": "confirmed", "how": "computation", "evidence": result.proof}
            continue
        checks[answer] = check_model_answer(problem, answer, generator, checker, params=params, options=options,
                                            policy=policy, solved=result, determinacy=det)
    vote = _choose(result, checks)
    vote.determinacy = det.to_dict() if det else None
    return vote


def _choose(result: SolveResult, checks: dict[str, dict[str, Any]]) -> Vote:
    cot = result.cot_votes  # ordered most votes first (solve.chain_of_thought)
    rules = {"majority": next(iter(cot), None), "lean": result.answer if result.verified else None}
    if result.verified:
        vote = Vote(result.answer, True, "program", result.proof)
    elif confirmed := [a for a in cot if checks[a]["verdict"] == "confirmed"]:
        vote = Vote(confirmed[0], True, "confirmed", checks[confirmed[0]].get("evidence"))
    elif unrefuted := [a for a in cot if checks[a]["verdict"] != "refuted"]:
        vote = Vote(unrefuted[0], False, "unrefuted")
    else:
        vote = Vote(None, False, "none")
    vote.rules = {**rules, "verified": vote.answer}
    vote.checks = checks
    return vote
