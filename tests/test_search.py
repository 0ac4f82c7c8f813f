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


def test_a_lost_state_ends_the_search_with_the_reason():
    def apply(state, tactic):
        return Step(None, (), False, "the Lean REPL restarted", lost=True) if state == 4 else puzzle(100)(state, tactic)
    result = best_first(1, ("1",), propose=lambda g, t: [("*2", -0.1)], apply=apply, max_expansions=50)
    assert result.stopped_by == "restarted" and result.detail == "the Lean REPL restarted"
    assert result.expansions == 3  # 1 -> 2 -> 4, and 4's step found the states gone


def test_a_repl_restart_mid_search_is_detected_through_the_launcher(tmp_path, monkeypatch):
    """Tactics cannot run on the prelude-only Lean, but a restart can: the REPL process is killed
    during the search, and the next step reports that every proof state went with it."""
    import os
    import signal

    from launchers.toolchain import install_launchers
    from lean_prelude import MINI_PRELUDE
    from solve_in_lean.lean import get_checker
    from solve_in_lean.search import session_apply

    install_launchers(tmp_path, monkeypatch)
    with get_checker("repl", timeout_s=30) as checker, checker.tactic_session(header=MINI_PRELUDE) as session:
        server = checker._all[0].server
        proposals = []

        def propose(goals, tactics):
            proposals.append(goals)
            if len(proposals) == 2:  # the REPL dies between two expansions
                os.kill(server._proc.pid, signal.SIGKILL)
                server._proc.wait(timeout=10)
            return [("exact N.zero", -0.1)]

        def apply(state, tactic):  # the first expansion sees Lean's "Unknown proof state." as a failed tactic
            step = session_apply(session)(state, tactic)
            return Step(1, ("g",), False) if step.error == "Unknown proof state." and len(proposals) == 1 else step
        result = best_first(0, ("g0",), propose=propose, apply=apply, max_expansions=10)
    assert result.stopped_by == "restarted" and "proof states are gone" in result.detail
    assert result.expansions == 2
