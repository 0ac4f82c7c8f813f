"""The solver's control flow with a scripted generator (given completions, not a model) and
the real Lean kernel on prelude-dialect problems."""

import pytest

from autoformalize.problem import FormalProblem
from lean_prelude import MINI_PRELUDE, needs_mathlib
from solve_in_lean.models.base import SamplingParams
from solve_in_lean.models.scripted import ScriptedGenerator
from solve_in_lean.options import SolveOptions
from solve_in_lean.solve import solve, solve_formal

STATEMENT = ("abbrev sum_answer : N := sorry\n"
             "theorem two_sum (x : N) (h : Eq x (N.add N.two N.two)) : Eq x sum_answer := by sorry\n")
THEOREM = "theorem two_sum (x : N) (h : Eq x (N.add N.two N.two)) : Eq x sum_answer := h\n"


def solution(answer: str, theorem: str = THEOREM) -> str:
    return f"Here is my solution.\n```lean\nnoncomputable abbrev sum_answer : N := {answer}\n{theorem}```\nDone."


@pytest.fixture
def problem():
    return FormalProblem("p1", "Two plus two: what is it?", "compute", STATEMENT, header=MINI_PRELUDE)


PARAMS = SamplingParams(temperature=0.7, max_new_tokens=64)


def test_verified_answer_wins_the_vote(kernel, problem):
    gen = ScriptedGenerator([solution("N.four"), solution("N.three"), solution("N.four"), "no lean here"])
    result = solve_formal(problem, gen, kernel, params=PARAMS, options=SolveOptions(samples=4, rounds=0))
    assert result.verified and result.status == "verified"
    assert result.answer == "N.four"
    assert result.votes == {"N.four": 2}
    assert [a.verified for a in result.attempts] == [True, False, True, False]
    assert result.attempts[3].reasons == ["no Lean code in the completion"]
    assert "noncomputable abbrev sum_answer : N := N.four" in result.proof
    assert result.timings["lean_s"] > 0 and result.timings["total_s"] >= result.timings["lean_s"]


def test_answer_of_a_rejected_theorem_is_not_counted(kernel, problem):
    # N.three computed, but the kernel rejects the theorem about it: no vote for N.three
    gen = ScriptedGenerator([solution("N.three")] * 3)
    result = solve_formal(problem, gen, kernel, params=PARAMS, options=SolveOptions(samples=3, rounds=0))
    assert not result.verified and result.votes == {} and result.answer is None
    assert result.status == "no answer"
    assert all(a.answer is None for a in result.attempts)
    assert any("Type mismatch" in r for r in result.attempts[0].reasons)


def test_changed_statement_is_rejected(kernel, problem):
    weakened = "theorem two_sum (x : N) (h : Eq x N.three) : Eq x sum_answer := h\n"
    gen = ScriptedGenerator([solution("N.three", weakened)])
    result = solve_formal(problem, gen, kernel, params=PARAMS, options=SolveOptions(samples=1, rounds=0))
    assert not result.verified
    assert any("does not prove the expected statement" in r for r in result.attempts[0].reasons)


def test_repair_round_gets_real_lean_errors(kernel, problem):
    gen = ScriptedGenerator([solution("N.three"), solution("N.four")])
    result = solve_formal(problem, gen, kernel, params=PARAMS, options=SolveOptions(samples=1, rounds=2))
    assert [a.round for a in result.attempts] == [0, 1]
    assert result.attempts[1].parent == 0
    assert result.verified and result.answer == "N.four"
    repair_prompt = gen.prompts[1][-1]["content"]
    # the message Lean itself produced for the first attempt is what the model is shown
    assert "Type mismatch" in repair_prompt and "sum_answer" in repair_prompt
    assert len(gen.prompts) == 2  # a verified answer after round 1: only failed ones are repaired


def test_unverified_falls_back_to_chain_of_thought(kernel, problem):
    def script(prompt, i):
        if "Two plus two" in prompt[-1]["content"] and "```lean" not in prompt[-1]["content"]:
            return ["2 + 2 = 4. The answer is 4.", "The answer is 4.", "The answer is 5."][i]
        return solution("N.three")
    gen = ScriptedGenerator(script)
    result = solve(problem, gen, kernel, params=PARAMS, options=SolveOptions(samples=2, rounds=0, cot_samples=3))
    assert not result.verified and result.status == "unverified"
    assert result.answer == "4" and result.cot_answer == "4"
    assert result.cot_votes == {"4": 2, "5": 1}


def test_both_figures_reported_when_verified(kernel, problem):
    def script(prompt, i):
        content = prompt[-1]["content"]
        return "The answer is 4." if "```lean" not in content else solution("N.four")
    result = solve(problem, ScriptedGenerator(script), kernel, params=PARAMS, options=SolveOptions(samples=1, cot_samples=1))
    assert result.verified and result.answer == "N.four" and result.cot_answer == "4"
    d = result.to_dict()
    assert d["status"] == "verified" and d["attempts"][0]["lean"]["backend"] == "kernel"


PROVE = FormalProblem("t1", "", "prove", "theorem four_eq : Eq (N.add N.two N.two) N.four := by sorry\n",
                      header=MINI_PRELUDE)


def test_prove_whole_proof_with_repair(kernel):
    gen = ScriptedGenerator(["```lean\ntheorem four_eq : Eq (N.add N.two N.two) N.four := Eq.refl N.three\n```",
                             "```lean\ntheorem four_eq : Eq (N.add N.two N.two) N.four := Eq.refl N.four\n```"])
    result = solve_formal(PROVE, gen, kernel, params=PARAMS, options=SolveOptions(samples=1, rounds=1))
    assert result.verified and result.status == "verified"
    assert "Eq.refl N.four" in result.proof
    assert len(result.attempts) == 2 and not result.attempts[0].verified


def test_garbage_completions_do_not_crash(kernel, problem):
    gen = ScriptedGenerator(["", "\x00\x01" * 100, "```lean\n" + "x" * 200_000 + "\n```", "🙂" * 1000])
    result = solve_formal(problem, gen, kernel, params=PARAMS, options=SolveOptions(samples=4, rounds=1))
    assert not result.verified
    assert len(result.attempts) >= 4


@needs_mathlib
@pytest.mark.mathlib
def test_gsm8k_problem_solved_with_norm_num():
    from solve_in_lean.lean import get_checker

    stmt = ("abbrev clips_answer : ℕ := sorry\n"
            "theorem clips (april may : ℕ) (h₀ : april = 48) (h₁ : may = april / 2) :\n"
            "    april + may = clips_answer := by sorry\n")
    problem = FormalProblem("clips", "Natalia sold clips to 48 of her friends in April, and then she sold half "
                            "as many clips in May. How many clips did Natalia sell altogether?", "compute", stmt,
                            header="import Mathlib\n")
    code = ("```lean\nabbrev clips_answer : ℕ := 48 + 48 / 2\n"
            "theorem clips (april may : ℕ) (h₀ : april = 48) (h₁ : may = april / 2) :\n"
            "    april + may = clips_answer := by\n  subst h₀ h₁; norm_num [clips_answer]\n```")
    with get_checker("repl", mathlib=True, timeout_s=300) as checker:
        result = solve_formal(problem, ScriptedGenerator([code]), checker, params=PARAMS,
                              options=SolveOptions(samples=1, rounds=0))
    assert result.verified and result.answer == "72"
