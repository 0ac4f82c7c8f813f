"""Positive and negative controls of the verifier on the small world's curriculum (prelude-dialect
statements checked by the real kernel). The prover is scripted (given completions, not a model):
the world's own verified solution, and a uniqueness proof written from the statement's shape.

  * the right answer is confirmed (by the verified computation), an off-by-one answer is refuted
    (a different verified value under a statement certified determinate);
  * a vacuous twin of each statement (a `False` hypothesis) verifies a program for any value but
    never gets a uniqueness certificate, so it refutes nothing."""

import time

import pytest

from autoformalize.problem import FormalProblem
from lean_prelude import MINI_PRELUDE
from solve_in_lean.models.base import SamplingParams
from solve_in_lean.models.scripted import ScriptedGenerator
from solve_in_lean.options import SolveOptions
from solve_in_lean.verifier.answer import check_answer
from solve_in_lean.verifier.statements import predicate
from solve_in_lean.world.curriculum import generate, source

PARAMS = SamplingParams(temperature=0.7, max_new_tokens=64)
OPTS = SolveOptions(samples=1, rounds=0, cot_samples=0)
PROBLEMS = generate("test", 8, seed=3)  # two of each template


def scripted_prover(problem: FormalProblem, solution: str, term: str) -> ScriptedGenerator:
    """The world's solution for the solver's prompt; for the uniqueness claim, the proof that two
    answers both equal the story's computation; nothing for other claims."""
    p, thm = predicate(problem), problem.theorem_name
    unique = (f"theorem {thm}_unique : ∀ (ans₁ ans₂ : N), {p} ans₁ → {p} ans₂ → Eq ans₁ ans₂ :=\n"
              f"  fun a b ha hb => @Eq.rec N ({term}) (fun y _ => Eq y b) (hb ({term}) (Eq.refl _)) a "
              f"(ha ({term}) (Eq.refl _))")

    def script(prompt, i):
        text = prompt[-1]["content"]
        if "Claim:" not in text:
            return f"```lean\n{solution}```"
        return f"```lean\n{unique}\n```" if "at most one answer" in text else "no proof"
    return ScriptedGenerator(script)


@pytest.mark.parametrize("wp", PROBLEMS, ids=[p.id for p in PROBLEMS])
def test_right_answer_confirmed_off_by_one_refuted(kernel, wp):
    problem = FormalProblem(wp.id, wp.question, "compute", wp.statement, header=MINI_PRELUDE)
    gen = scripted_prover(problem, wp.proof, source(wp.term))
    start = time.perf_counter()
    right = check_answer(problem, str(wp.value), gen, kernel, params=PARAMS, options=OPTS)
    wrong = check_answer(problem, str(wp.value + 1), gen, kernel, params=PARAMS, options=OPTS)
    assert (right.verdict, right.how) == ("confirmed", "computation")
    assert (wrong.verdict, wrong.how) == ("refuted", "determinate-computation"), wrong.reasons
    assert wrong.determinacy["determinate"]
    assert time.perf_counter() - start < 60


@pytest.mark.parametrize("wp", PROBLEMS[:4], ids=[p.id for p in PROBLEMS[:4]])
def test_vacuous_twin_refutes_nothing(kernel, wp):
    head, tail = wp.statement.rsplit(") : Eq ", 1)
    vacuous = f"{head}) (hv : False) : Eq {tail}"
    problem = FormalProblem(wp.id, wp.question, "compute", vacuous, header=MINI_PRELUDE)
    thm, ans = problem.theorem_name, problem.answer_name
    binders = vacuous.split(f"theorem {thm} ", 1)[1].rsplit(" : Eq ", 1)[0]
    obj = binders[1:].split(" ", 1)[0]
    program = (f"noncomputable abbrev {ans} : N := N.zero\n"
               f"theorem {thm} {binders} : Eq {obj} {ans} :=\n  False.rec (motive := fun _ => Eq {obj} {ans}) hv\n")
    res = check_answer(problem, str(wp.value), scripted_prover(problem, program, source(wp.term)), kernel,
                       params=PARAMS, options=OPTS)
    assert res.computed == "N.zero"  # the vacuous statement "verified" a wrong program
    assert res.verdict == "unknown" and not res.determinacy["unique"]
