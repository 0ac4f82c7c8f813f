"""verify-answer's logic (confirmed / refuted / unknown) and determinacy certificates, with the
real bundled Lean kernel on prelude-dialect statements. The prover is a scripted generator
(given completions, not a model): it lets each test say which proof the "model" offers, and
Lean decides every verdict."""

import pytest

from autoformalize.problem import FormalProblem
from lean_prelude import MINI_PRELUDE
from solve_in_lean.errors import InputError
from solve_in_lean.models.base import SamplingParams
from solve_in_lean.models.scripted import ScriptedGenerator
from solve_in_lean.options import SolveOptions
from solve_in_lean.verifier.answer import check_answer
from solve_in_lean.verifier.determinacy import certify
from solve_in_lean.verifier.statements import predicate
from solve_in_lean.verify import Policy

FOUR = "N.add N.two N.two"
STATEMENT = ("abbrev sum_answer : N := sorry\n"
             f"theorem two_sum (x : N) (h : Eq x ({FOUR})) : Eq x sum_answer := by sorry\n")
VACUOUS = ("abbrev vac_answer : N := sorry\n"
           "theorem vac (x : N) (h : False) : Eq x vac_answer := by sorry\n")
PARAMS = SamplingParams(temperature=0.7, max_new_tokens=64)
OPTS = SolveOptions(samples=1, rounds=0, cot_samples=0)

P = f"(fun (sum_answer : N) => ∀ (x : N) (h : Eq x ({FOUR})), Eq x sum_answer)"
# "at least four": True at 4, False at 3; Eq.rec carries True.intro from 4 to 3
AT_LEAST_FOUR = ("(fun y _ => N.rec (motive := fun _ => Prop) False (fun a _ => N.rec (motive := fun _ => Prop) "
                 "False (fun b _ => N.rec (motive := fun _ => Prop) False (fun c _ => N.rec (motive := fun _ => "
                 "Prop) False (fun _ _ => True) c) b) a) y)")
CONFIRM = f"theorem two_sum_confirm : {P} (N.four) := fun x h => h"
REFUTE = (f"theorem two_sum_refute : ({P} (N.three)) → False :=\n"
          f"  fun hp => @Eq.rec N ({FOUR}) {AT_LEAST_FOUR} True.intro N.three (hp ({FOUR}) (Eq.refl _))")
UNIQUE = (f"theorem two_sum_unique : ∀ (ans₁ ans₂ : N), {P} ans₁ → {P} ans₂ → Eq ans₁ ans₂ :=\n"
          f"  fun a b ha hb => @Eq.rec N ({FOUR}) (fun y _ => Eq y b) (hb ({FOUR}) (Eq.refl _)) a "
          f"(ha ({FOUR}) (Eq.refl _))")
SOLUTION = f"noncomputable abbrev sum_answer : N := {FOUR}\ntheorem two_sum (x : N) (h : Eq x ({FOUR})) : Eq x sum_answer := h"


def lean(code: str) -> str:
    return f"```lean\n{code}\n```"


def prover(solve: str = "I cannot do this.", **by_claim: str):
    """A scripted prover: for a verifier goal, the completion whose key is in the prompt's claim;
    for the solver's prompt (no claim), `solve`."""
    def script(prompt, i):
        text = prompt[-1]["content"]
        if "Claim:" not in text:
            return solve
        claim = text.split("Claim:", 1)[1].split("\n", 1)[0]
        return next((c for key, c in by_claim.items() if key in claim), "I cannot do this.")
    return ScriptedGenerator(script)


@pytest.fixture
def problem():
    return FormalProblem("p1", "Two plus two: what is it?", "compute", STATEMENT, header=MINI_PRELUDE)


def test_predicate_abstracts_the_answer(problem):
    assert predicate(problem) == P


def test_a_kernel_checked_proof_confirms(kernel, problem):
    gen = prover(**{"answer is 4": lean(CONFIRM)})
    res = check_answer(problem, "4", gen, kernel, params=PARAMS, options=OPTS, compute=False)
    assert (res.verdict, res.how) == ("confirmed", "proof")
    assert "two_sum_confirm" in res.evidence and res.lean_value == "(N.four)"


def test_the_same_proof_does_not_confirm_another_value(kernel, problem):
    gen = prover(**{"answer is 3": lean(CONFIRM.replace("(N.four)", "(N.three)"))})
    res = check_answer(problem, "3", gen, kernel, params=PARAMS, options=OPTS, compute=False)
    assert res.verdict == "unknown" and "Type mismatch" in " ".join(res.attempts[0]["reasons"])


def test_a_proved_negation_refutes(kernel, problem):
    gen = prover(**{"answer is not 3": lean(REFUTE)})
    res = check_answer(problem, "3", gen, kernel, params=PARAMS, options=OPTS, compute=False)
    assert (res.verdict, res.how) == ("refuted", "disproof")


def test_a_negation_resting_on_an_axiom_or_sorry_refutes_nothing(kernel, problem):
    cheat = f"axiom magic : False\ntheorem two_sum_refute : ({P} (N.three)) → False := fun _ => magic"
    for code in (cheat, f"theorem two_sum_refute : ({P} (N.three)) → False := sorry"):
        res = check_answer(problem, "3", prover(**{"answer is not 3": lean(code)}), kernel, params=PARAMS,
                           options=OPTS, compute=False)
        assert res.verdict == "unknown", code


def test_a_different_computed_value_refutes_only_a_determinate_statement(kernel, problem):
    gen = prover(lean(SOLUTION), **{"at most one answer": lean(UNIQUE)})
    res = check_answer(problem, "3", gen, kernel, params=PARAMS, options=OPTS)
    assert (res.verdict, res.how) == ("refuted", "determinate-computation")
    assert res.determinacy["determinate"] and res.computed == "N.two.add N.two"
    # without the uniqueness proof the same computation decides nothing
    gen = prover(lean(SOLUTION))
    res = check_answer(problem, "3", gen, kernel, params=PARAMS, options=OPTS)
    assert res.verdict == "unknown" and not res.determinacy["unique"]
    assert "no uniqueness certificate" in res.reasons[-1]


def test_an_equal_computed_value_confirms(kernel, problem):
    res = check_answer(problem, "4", prover(lean(SOLUTION)), kernel, params=PARAMS,
                       options=OPTS)
    assert (res.verdict, res.how) == ("confirmed", "computation")


def test_vacuous_statement_verifies_anything_but_is_not_determinate(kernel):
    vac = FormalProblem("v", "A vacuous one.", "compute", VACUOUS, header=MINI_PRELUDE)
    program = ("noncomputable abbrev vac_answer : N := N.three\n"
               "theorem vac (x : N) (h : False) : Eq x vac_answer := False.rec (motive := fun _ => Eq x vac_answer) h")
    pv = predicate(vac)
    bogus_unique = (f"theorem vac_unique : ∀ (ans₁ ans₂ : N), {pv} ans₁ → {pv} ans₂ → Eq ans₁ ans₂ :=\n"
                    "  fun a b ha hb => ha a (Eq.refl a)")
    gen = prover(lean(program), **{"at most one answer": lean(bogus_unique)})
    res = check_answer(vac, "4", gen, kernel, params=PARAMS, options=OPTS)
    assert res.computed == "N.three" and res.verdict == "unknown"
    assert res.determinacy["consistent"] and not res.determinacy["determinate"]


def test_certify_reports_both_certificates(kernel, problem):
    det = certify(problem, prover(**{"at most one answer": lean(UNIQUE)}), kernel, params=PARAMS, options=OPTS,
                  policy=Policy(), witness="N.four",
                  witness_proof=SOLUTION)
    assert det.determinate and "two_sum_unique" in det.uniqueness_proof
    det = certify(problem, prover(**{"at most one answer": lean(UNIQUE)}), kernel, params=PARAMS, options=OPTS,
                  policy=Policy())
    assert det.unique and not det.consistent and not det.determinate


@pytest.mark.parametrize("bad", ["", "N.four)) → False ∧ ((True", "x\ntheorem t : False := sorry", "IO.getStdin",
                                 "7/2"])
def test_an_answer_that_is_not_one_term_is_refused_before_lean(problem, bad):
    with pytest.raises(InputError):
        check_answer(problem, bad, ScriptedGenerator([]), None, params=PARAMS, options=OPTS)


def test_the_informal_solution_reaches_the_prover(kernel, problem):
    gen = prover(**{"answer is 4": lean(CONFIRM)})
    check_answer(problem, "4", gen, kernel, params=PARAMS, options=OPTS, compute=False,
                 solution="Two and two make four. The answer is 4.")
    asked = [p[-1]["content"] for p in gen.prompts]
    assert len(asked) == 2 and all("Informal solution: Two and two make four." in a for a in asked)
    assert "Claim: the answer is 4" in asked[0] and "Claim: the answer is not 4" in asked[1]
