"""The evaluation tasks' control flow: a scripted generator (given completions, not a model) says
what "the model" answers, the real Lean kernel checks every piece of Lean, and the per-item
scores must follow from Lean's verdicts."""

from pathlib import Path

import pytest

from lean_prelude import MINI_PRELUDE
from scripting import by_task
from solve_in_lean.eval.tasks import (TaskContext, TaskOptions, quantity_recall, run_backtranslate, run_cot,
                                      run_formalize, run_lean_solve, run_prove, task_metrics)
from solve_in_lean.models.base import SamplingParams
from solve_in_lean.models.scripted import ScriptedGenerator
from solve_in_lean.options import SolveOptions
from solve_in_lean.problems import load_items

ITEMS = {it["id"]: it for it in load_items(Path(__file__).resolve().parents[1] / "examples/data/tiny_eval.jsonl")}
PARAMS = SamplingParams(temperature=0.7, max_new_tokens=64)
PROOF = "```lean\ntheorem one_add_one : Eq (N.add N.one N.one) N.two := Eq.refl N.two\n```"
WRONG = "```lean\ntheorem one_add_one : Eq (N.add N.one N.one) N.two := Eq.refl N.one\n```"


def ctx(script, checker=None, ks=(1,), **options):
    """One sample of everything unless a test asks for more."""
    solve = SolveOptions(**{"samples": 1, "rounds": 0, "formalize_samples": 1, "cot_samples": 1, **options})
    return TaskContext(ScriptedGenerator(script), checker, PARAMS, TaskOptions(solve, ks), MINI_PRELUDE)


def test_prove_counts_verified_samples_into_pass_at_k(kernel):
    rec = run_prove(ITEMS["one_add_one"], ctx(by_task({"prove": [WRONG, PROOF, "no lean"]}), kernel,
                                              samples=3, ks=(1, 2, 3)))
    assert (rec["samples"], rec["correct"]) == (3, 1)
    assert rec["scores"] == {"pass@1": pytest.approx(1 / 3), "pass@2": pytest.approx(2 / 3), "pass@3": True}
    attempts = rec["solve"]["attempts"]
    assert [a["verified"] for a in attempts] == [False, True, False]
    assert attempts[0]["lean"]["status"] == "error" and "one_add_one" in rec["proof"]


def test_lean_solve_scores_the_verified_answer_against_the_reference(kernel):
    def fill(prompt, index):
        return ("```lean\nnoncomputable abbrev cats_answer : N := N.two\n"
                "theorem cats (x : N) (h : Eq x (N.add N.one N.one)) : Eq x cats_answer := h\n```")
    rec = run_lean_solve(ITEMS["cats"], ctx(by_task({"lean_solve": fill, "cot": "The answer is 2.",
                                                     "backtranslate": "One cat and one more."}), kernel))
    assert rec["status"] == "verified" and rec["prediction"] == "N.two"
    assert rec["scores"] == {"verified_accuracy": True, "computed_accuracy": True, "informal_accuracy": False,
                             "verified_rate": True, "accuracy": True,  # the cot said 2, the reference is N.two
                             # verified voting compares as numbers (2 is N.two); no uniqueness proof was offered
                             "rule:majority_accuracy": True, "rule:lean_accuracy": True,
                             "rule:verified_accuracy": True, "determinate_rate": False}
    assert "formalize" not in rec["pipeline"]["stages"]  # the item brought its statement


def test_formalize_scores_the_best_statement(kernel):
    statement = "```lean\n" + ITEMS["cats"]["formal"]["statement"] + "```"
    rec = run_formalize(ITEMS["cats"], ctx(by_task({"formalize": statement, "backtranslate": "Ann has 1 + 1 cats.",
                                                    "judge": "Same problem. Verdict: YES"}), kernel))
    assert rec["scores"]["elaboration_rate"] is True and rec["scores"]["faithful_rate"] is True
    assert rec["scores"]["reference_match"] is True
    assert rec["formalization"]["best"] == 0 and rec["formalization"]["candidates"][0]["elaborated"]
    bad = run_formalize(ITEMS["cats"], ctx(by_task({"formalize": "```lean\ntheorem c : Eq x := by sorry\n```"}),
                                           kernel))
    assert bad["scores"] == {"elaboration_rate": False, "faithful_rate": False, "cheap_pass_rate": False,
                             "reference_match": False}


def test_backtranslate_judge_and_quantity_recall():
    rec = run_backtranslate(ITEMS["cats"], ctx(by_task({"backtranslate": "Ann has 1 cat and gets 1 more.",
                                                        "judge": "They agree.\nVerdict: YES"})))
    assert rec["backtranslation"] == "Ann has 1 cat and gets 1 more." and rec["verdict"] is True
    assert rec["scores"]["faithful_rate"] is True
    assert quantity_recall("Tom has 12 eggs and buys 30% more.", "12 eggs, increased by 0.3 of them") == 1.0
    assert quantity_recall("Tom has 12 eggs and 30% of 40 pens.", "There are 12 eggs.") == pytest.approx(1 / 3)
    assert quantity_recall("Show that x is even.", "anything") is None


def test_cot_majority_vote_and_metrics_with_an_error_record():
    item = {"id": "g", "dataset": "gsm8k", "question": "2 + 3?", "answer": "5"}
    rec = run_cot(item, ctx(by_task({"cot": ["So 5. The answer is 5.", "The answer is 6.", "The answer is 5."]}),
                            cot_samples=3))
    assert rec["prediction"] == "5" and rec["votes"] == {"5": 2, "6": 1} and rec["scores"] == {"accuracy": True}
    metrics = task_metrics("cot", [rec, {"id": "h", "error": "ValueError: boom"}], TaskOptions())
    assert metrics["errors"] == 1 and metrics["metrics"]["accuracy"]["value"] == 0.5  # the error counts as wrong
