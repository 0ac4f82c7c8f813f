"""lean-solve: Lean 4 as one platform for solving and proving math problems."""

__version__ = "0.1.0"
