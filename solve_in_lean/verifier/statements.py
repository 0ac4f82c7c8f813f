"""The Lean propositions the verifier asks for, built from a compute statement (answer abstracted).

With P the statement as a predicate of its answer, `(fun (x_answer : T) => ∀ …, … x_answer)`:
    fixed(v)     P v              "the answer is v" (a proof confirms v)
    negated(v)   P v → False      "the answer is not v" (a proof refutes v)
    uniqueness   ∀ a b, P a → P b → Eq a b
                 at most one answer (with a proved P w: exactly one, the statement is determinate)
`Eq`, `False` and `→` exist in the prelude dialect and in Mathlib alike. Each proposition is a
`Target`, so verify.py elaborates it before the model's code, and the same rules apply.
"""

from __future__ import annotations

from dataclasses import dataclass

from autoformalize.problem import FormalProblem
from solve_in_lean.errors import InputError
from solve_in_lean.verify import Target


@dataclass(frozen=True)
class Goal:
    """A proposition to prove, the theorem name the prover must use, and what a proof means."""

    role: str  # confirm | refute | unique
    target: Target

    def statement(self) -> str:
        """The theorem as shown to the prover, proof left as `sorry`."""
        return f"theorem {self.target.name} :\n    {self.target.statement} := by sorry\n"


def predicate(problem: FormalProblem) -> str:
    """The statement as a function of its answer; InputError for a statement with no answer hole."""
    if problem.kind != "compute" or not problem.answer_name or not problem.answer_type:
        raise InputError(f"problem {problem.id!r} has no answer to check: its statement is not a compute "
                         "statement with an `abbrev …_answer : T := sorry`")
    return f"(fun ({problem.answer_name} : {problem.answer_type}) => {problem.proposition()})"


def confirm_goal(problem: FormalProblem, value_term: str) -> Goal:
    return Goal("confirm", Target(f"{problem.theorem_name}_confirm", f"{predicate(problem)} {value_term}"))


def refute_goal(problem: FormalProblem, value_term: str) -> Goal:
    return Goal("refute", Target(f"{problem.theorem_name}_refute", f"({predicate(problem)} {value_term}) → False"))


def uniqueness_goal(problem: FormalProblem) -> Goal:
    p, t = predicate(problem), problem.answer_type
    return Goal("unique", Target(f"{problem.theorem_name}_unique",
                                 f"∀ (ans₁ ans₂ : {t}), {p} ans₁ → {p} ans₂ → Eq ans₁ ans₂"))
