"""Determinacy certificates: a compute statement that pins down exactly one answer.

A formalization can "verify" a wrong answer when it is vacuous (contradictory hypotheses: every
value satisfies it) or loose (several values satisfy it). Two Lean certificates rule both out:
  * uniqueness: a proof of `∀ a b, P a → P b → Eq a b` (at most one answer);
  * consistency: a proof of `P w` for a concrete w, i.e. a verified program (at least one answer;
    with uniqueness, a vacuous P is impossible unless the type has a single element).
Both are checked by verify.py's rules. "Not provably contradictory" is not a certificate and
is never reported as one.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from autoformalize.problem import FormalProblem
from solve_in_lean.lean.base import LeanChecker
from solve_in_lean.models.base import Generator, SamplingParams
from solve_in_lean.options import SolveOptions
from solve_in_lean.verifier.goals import first_proof, prove_goals
from solve_in_lean.verifier.statements import uniqueness_goal
from solve_in_lean.verify import Policy


@dataclass
class Determinacy:
    unique: bool
    consistent: bool
    witness: str | None = None
    """The verified answer whose proof is the consistency certificate."""
    uniqueness_proof: str | None = None
    consistency_proof: str | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def determinate(self) -> bool:
        return self.unique and self.consistent

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "determinate": self.determinate}


def certify(problem: FormalProblem, generator: Generator, checker: LeanChecker, *, params: SamplingParams,
            options: SolveOptions, policy: Policy, witness: str | None = None,
            witness_proof: str | None = None) -> Determinacy:
    """Ask the prover for uniqueness; consistency is the given witness (a verified program's
    answer and code, which the kernel already accepted as a proof of P witness)."""
    goal = uniqueness_goal(problem)
    attempts = prove_goals(problem, [(goal, "the statement has at most one answer")], generator, checker,
                           params=params, options=options, policy=policy)[0]
    proof = first_proof(attempts)
    consistent = witness is not None and witness_proof is not None
    return Determinacy(unique=proof is not None, consistent=consistent, witness=witness if consistent else None,
                       uniqueness_proof=proof.code if proof else None,
                       consistency_proof=witness_proof if consistent else None,
                       attempts=[a.to_dict() for a in attempts])
