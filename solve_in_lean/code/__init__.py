"""Python-assisted solving: a sandboxed interpreter for model-written code, and the `code` solver."""

from solve_in_lean.code.sandbox import SandboxLimits, SandboxResult, run_python

__all__ = ["SandboxLimits", "SandboxResult", "run_python"]
