"""Prelude-dialect Lean for tests that run the real bundled kernel (no `Init` library there).

`MINI_PRELUDE` (examples/prelude.lean, which the notebooks use too) is a tiny core library:
naturals with addition and multiplication by recursors, equality, truth and falsehood.
Everything else is checked by the real Lean elaborator and kernel.
"""

from pathlib import Path

MINI_PRELUDE = (Path(__file__).resolve().parents[1] / "examples" / "prelude.lean").read_text()

GOOD_PROOF = """theorem two_add_two : Eq (N.add N.two N.two) N.four := Eq.refl N.four
"""

WRONG_PROOF = """theorem two_add_two : Eq (N.add N.two N.two) N.three := Eq.refl N.three
"""


def unary(k: int) -> str:
    """The numeral k as nested `N.succ`, for arithmetic that makes the kernel work hard."""
    term = "N.zero"
    for _ in range(k):
        term = f"(N.succ {term})"
    return term


def slow_proof(size: int = 60) -> str:
    """A true equation whose `rfl` proof needs minutes of unary multiplication in the kernel."""
    big = unary(size)
    return ("set_option maxHeartbeats 0\nset_option maxRecDepth 1000000\n"
            f"theorem slow : Eq (N.mul (N.mul {big} {big}) {big}) "
            f"(N.mul {big} (N.mul {big} {big})) := Eq.refl _\n")


import pytest  # noqa: E402

from solve_in_lean.lean.toolchain import MATHLIB_HINT, SETUP_HINT, find_tool, has_mathlib  # noqa: E402

needs_toolchain = pytest.mark.skipif(
    find_tool("lake") is None, reason=f"needs the full Lean toolchain: {SETUP_HINT}")
needs_mathlib = pytest.mark.skipif(
    find_tool("lake") is None or not has_mathlib(), reason=f"needs Mathlib: {MATHLIB_HINT}")

