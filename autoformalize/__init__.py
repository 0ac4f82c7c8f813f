"""Natural language <-> Lean 4 statements. Takes a generator and a Lean checker as arguments;
imports nothing from `solve_in_lean`."""

from autoformalize.backtranslate import backtranslate
from autoformalize.extract import extract, extract_lean
from autoformalize.formalize import Candidate, FormalizationResult, formalize, guess_kind
from autoformalize.problem import FormalProblem, minif2f_problem
from autoformalize.statement import StatementError, TheoremParts, parse_theorem

__all__ = ["Candidate", "FormalProblem", "FormalizationResult", "StatementError", "TheoremParts", "backtranslate",
           "extract", "extract_lean", "formalize", "guess_kind", "minif2f_problem", "parse_theorem"]
