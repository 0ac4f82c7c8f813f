"""Natural language <-> Lean 4 statements. Takes a generator and a Lean checker as arguments;
imports nothing from `solve_in_lean`."""

from autoformalize.problem import FormalProblem, minif2f_problem
from autoformalize.statement import StatementError, TheoremParts, parse_theorem

__all__ = ["FormalProblem", "StatementError", "TheoremParts", "minif2f_problem", "parse_theorem"]
