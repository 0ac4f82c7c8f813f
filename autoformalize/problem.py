"""The record of a formalized problem, and the Lean shapes it uses (docs/formal_problems.md).

`compute` problems (find a value: GSM8K, most of MATH) use the PutnamBench shape: the answer
is a named hole, and the theorem states what the answer must satisfy:

    abbrev clips_answer : ℕ := sorry
    theorem clips (april may : ℕ) (h₀ : april = 48) (h₁ : may = april / 2) :
        april + may = clips_answer := by sorry

A solution fills the first `sorry` with a computation Lean can `#eval` and the second with a
proof; the kernel then vouches for the value. `prove` problems (miniF2F) are plain theorems.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from autoformalize.statement import TheoremParts, find_answer_def, normalize_statement, parse_theorem

Kind = Literal["compute", "prove"]
ANSWER_TYPES = ("ℕ", "ℤ", "ℚ", "ℝ")


@dataclass
class FormalProblem:
    id: str
    source: str
    """The problem in English."""
    kind: Kind
    statement: str
    """Lean text with `sorry` holes: for compute, the answer `abbrev` and the theorem."""
    header: str = ""
    """Imports and opens the statement is elaborated under."""
    theorem_name: str = ""
    answer_name: str | None = None
    answer_type: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    """Where it came from: model, prompt task, sample index, repair round."""
    scores: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        parts = self.theorem()
        if not self.theorem_name:
            self.theorem_name = parts.name
        if self.kind == "compute" and self.answer_name is None:
            found = find_answer_def(self.statement)
            if found:
                self.answer_name, self.answer_type = found

    def theorem(self) -> TheoremParts:
        return parse_theorem(self.statement, self.theorem_name or None)

    def proposition(self) -> str:
        """What must be proved, as one Lean proposition (the answer, if any, left free)."""
        return self.theorem().proposition()

    def answer_params(self) -> tuple[str, str]:
        """(params, args) that abstract the proposition over the answer: `(x_answer : ℕ)`, `x_answer`."""
        if self.kind != "compute" or not self.answer_name:
            return "", ""
        return f"({self.answer_name} : {self.answer_type})", self.answer_name

    def elaboration_check(self, name: str = "_lean_solve_statement") -> str:
        """Lean code that elaborates exactly the statement and nothing else.

        The proposition becomes the body of a `def ... : Prop`, abstracted over the answer,
        so no `sorry` is needed: it checks the same thing as the statement with its proof
        replaced by `sorry`, and also works where `sorry` is unavailable.
        """
        params, _ = self.answer_params()
        return f"def {name}{' ' + params if params else ''} : Prop :=\n  ({self.proposition()})\n"

    def key(self) -> str:
        """Equal for statements that differ only in whitespace and bound-variable names."""
        params, _ = self.answer_params()
        prop = self.proposition()
        if self.answer_name:
            prop = prop.replace(self.answer_name, "ANSWER")
            params = params.replace(self.answer_name, "ANSWER")
        return normalize_statement(f"{params} {prop}".strip())

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FormalProblem":
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


def minif2f_problem(row: dict[str, Any]) -> FormalProblem:
    """A miniF2F row (../shared/data format: name, split, header, formal_statement)."""
    return FormalProblem(id=row["name"], source=row.get("informal_statement", ""), kind="prove",
                         statement=row["formal_statement"], header=row.get("header", ""),
                         theorem_name=row["name"], provenance={"dataset": "minif2f", "split": row.get("split")})
