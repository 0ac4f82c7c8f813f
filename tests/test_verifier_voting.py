"""Verified voting (verifier/voting.py) with the real kernel and a scripted generator (given
completions, not a model): each step of the documented rule, and the pipeline's use of it."""

from autoformalize.problem import FormalProblem
from lean_prelude import MINI_PRELUDE
from solve_in_lean.models.base import SamplingParams
from solve_in_lean.models.scripted import ScriptedGenerator
from solve_in_lean.options import SolveOptions
from solve_in_lean.pipeline import PipelineConfig, run_problem
from solve_in_lean.solve import solve
from solve_in_lean.verifier.voting import verified_vote
from solve_in_lean.verify import Policy
from test_verifier_answer import CONFIRM, REFUTE, SOLUTION, STATEMENT, UNIQUE, lean

PARAMS = SamplingParams(temperature=0.7, max_new_tokens=64)
OPTS = SolveOptions(samples=1, rounds=0, cot_samples=3)
COTS = ["2 + 1 = 3. The answer is 3.", "The answer is 3.", "2 + 2 = 4. The answer is 4."]


def model(program: str = "no Lean", **by_claim: str) -> ScriptedGenerator:
    """Scripted: chains of thought for the cot prompt, `program` for the solver, proofs by claim."""
    def script(prompt, i):
        text = prompt[-1]["content"]
        if "Claim:" in text:
            claim = text.split("Claim:", 1)[1].split("\n", 1)[0]
            return next((c for key, c in by_claim.items() if key in claim), "no proof")
        if "```lean" in text or "Statement" in text:
            return program
        return COTS[i]
    return ScriptedGenerator(script)


def problem() -> FormalProblem:
    return FormalProblem("p1", "Two plus two: what is it?", "compute", STATEMENT, header=MINI_PRELUDE)


def vote(kernel, gen):
    p = problem()
    result = solve(p, gen, kernel, params=PARAMS, options=OPTS)
    return result, verified_vote(p, result, gen, kernel, params=PARAMS, options=OPTS, policy=Policy())


def test_a_confirmed_minority_answer_beats_the_plain_majority(kernel):
    result, v = vote(kernel, model(**{"answer is 4": lean(CONFIRM)}))
    assert not result.verified and result.cot_votes == {"3": 2, "4": 1}
    assert (v.answer, v.verified, v.rule_step) == ("4", True, "confirmed")
    assert v.rules == {"majority": "3", "lean": None, "verified": "4"}
    assert v.checks["4"]["how"] == "proof" and v.checks["3"]["verdict"] == "unknown"
    assert "two_sum_confirm" in v.proof


def test_a_refuted_majority_gives_way_to_an_unrefuted_answer_unverified(kernel):
    _, v = vote(kernel, model(**{"answer is not 3": lean(REFUTE)}))
    assert v.checks["3"]["verdict"] == "refuted"
    assert (v.answer, v.verified, v.rule_step) == ("4", False, "unrefuted")


def test_verified_program_wins_and_certifies_the_statement(kernel):
    _, v = vote(kernel, model(lean(SOLUTION), **{"at most one answer": lean(UNIQUE)}))
    assert (v.answer, v.verified, v.rule_step) == ("N.two.add N.two", True, "program")
    assert v.determinacy["determinate"]
    assert v.checks["4"]["how"] == "computation"
    assert (v.checks["3"]["verdict"], v.checks["3"]["how"]) == ("refuted", "determinate-computation")
    assert v.rules["majority"] == "3" and v.rules["lean"] == "N.two.add N.two"


def test_nothing_decided_falls_back_to_the_plain_majority(kernel):
    _, v = vote(kernel, model())
    assert (v.answer, v.verified, v.rule_step) == ("3", False, "unrefuted")


def test_the_pipeline_answers_by_the_verified_rule(kernel):
    item = {"id": "p1", "question": "Two plus two: what is it?", "answer": "4",
            "formal": problem().to_dict()}
    rec = run_problem(item, model(**{"answer is 4": lean(CONFIRM)}), kernel, params=PARAMS,
                      cfg=PipelineConfig(options=OPTS, header=MINI_PRELUDE, explain_with_model=False))
    assert rec["answer"] == "4" and rec["verified"] and rec["status"] == "verified"
    assert rec["stages"]["vote"]["rules"] == {"majority": "3", "lean": None, "verified": "4"}
    assert rec["stages"]["solve"]["cot_answer"] == "3"


def test_lean_solve_task_reports_each_rule_and_the_determinate_rate(kernel):
    from solve_in_lean.eval.tasks import TaskContext, TaskOptions, run_lean_solve, task_metrics

    ctx = TaskContext(model(lean(SOLUTION), **{"at most one answer": lean(UNIQUE)}), kernel, PARAMS,
                      TaskOptions(solve=OPTS), header=MINI_PRELUDE)
    item = {"id": "p1", "question": "Two plus two: what is it?", "answer": "4", "formal": {"id": "p1", "kind": "compute",
                                                                                       "statement": STATEMENT}}
    rec = run_lean_solve(item, ctx)
    assert rec["scores"]["rule:majority_accuracy"] is False  # the chains of thought say 3
    assert rec["scores"]["rule:lean_accuracy"] is True and rec["scores"]["rule:verified_accuracy"] is True
    assert rec["scores"]["determinate_rate"] is True
    metrics = task_metrics("lean-solve", [rec], TaskOptions(solve=OPTS))
    m = metrics["metrics"]
    assert m["rule:verified_accuracy"]["value"] == 1.0 and m["rule:majority_accuracy"]["value"] == 0.0
