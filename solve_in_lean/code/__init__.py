"""Python-assisted solving: a sandboxed interpreter for model-written code, and the `code` solver."""

from solve_in_lean.code.sandbox import SandboxLimits, SandboxResult, run_python
from solve_in_lean.code.solver import COMPUTED_BY_PYTHON, CodeResult, solve_with_code

__all__ = ["COMPUTED_BY_PYTHON", "CodeResult", "SandboxLimits", "SandboxResult", "run_python", "solve_with_code"]
