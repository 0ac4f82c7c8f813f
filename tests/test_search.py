"""Best-first search (the step prover's algorithm) on a small puzzle with a known answer,
and the step prover through the real Lean REPL where the toolchain exists."""

import math
import time

import pytest

from lean_prelude import needs_toolchain
from solve_in_lean.search import Step, best_first


def puzzle(target: int):
    """States are integers; tactics `+1` and `*2`; the proof is reaching `target`."""
    def apply(state, tactic):
        new = state + 1 if tactic == "+1" else state * 2 if tactic == "*2" else None
        if new is None or new > target:
            return Step(None, (), False, "overshoot or unknown tactic")
        return Step(new, (f"{new}",), new == target)
    return apply


def test_finds_a_proof_and_follows_probabilities():
    calls = []

    def propose(goals, tactics):
        calls.append(tactics)
        return [("*2", math.log(0.9)), ("+1", math.log(0.1)), ("bad", 0.0)]
    result = best_first(1, ("1",), propose=propose, apply=puzzle(12), max_expansions=100)
    assert result.stopped_by == "proof"
    state = 1
    for t in result.tactics:
        state = state + 1 if t == "+1" else state * 2
    assert state == 12
    # the likelier tactic is expanded first: the second expansion continues the *2 branch
    assert calls[1] == ("*2",)


def test_expansion_budget_is_respected():
    result = best_first(1, ("1",), propose=lambda g, t: [("+1", -1.0)], apply=puzzle(10 ** 6), max_expansions=7)
    assert result.tactics is None and result.stopped_by == "expansions" and result.expansions == 7


def test_time_budget_is_respected():
    def slow_propose(goals, tactics):
        time.sleep(0.05)
        return [("+1", -1.0)]
    t0 = time.monotonic()
    result = best_first(1, ("1",), propose=slow_propose, apply=puzzle(10 ** 6), max_expansions=10 ** 6,
                        max_seconds=0.3)
    assert result.stopped_by == "seconds" and time.monotonic() - t0 < 1.0


def test_exhausted_and_repeated_states_not_reexpanded():
    result = best_first(1, ("1",), propose=lambda g, t: [("*2", -0.1), ("*2", -0.2)], apply=puzzle(3),
                        max_expansions=50)
    assert result.tactics is None and result.stopped_by == "exhausted"
    assert result.expansions == 2  # 1 -> 2, then 2 -> 4 overshoots; nothing else to expand


@needs_toolchain
@pytest.mark.toolchain
def test_step_prover_through_the_repl():
    from solve_in_lean.lean import get_checker
    from solve_in_lean.search import prove_stepwise
    from solve_in_lean.verify import verify

    tactics = {"intro n": -0.1, "simp": -0.2}

    def propose(goals, so_far):  # a fixed tactic list, not a model: this test is about the REPL path
        return [(t, lp) for t, lp in tactics.items() if t not in so_far]
    with get_checker("repl", timeout_s=120) as checker:
        with checker.tactic_session() as session:
            proof, result = prove_stepwise("theorem t : ∀ n : Nat, n + 0 = n", session, propose)
        assert result.stopped_by == "proof", result
        assert verify(proof, checker).verified
