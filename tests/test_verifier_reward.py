"""Reward tasks: labels from Lean's verdicts (real kernel), Math-Shepherd step labels, the
reward model read as generative yes/no, the rerank task's best-of-n rules and AUROC with its
interval. Model outputs come from a scripted generator (given completions, not a model), named
so; Lean decides every verdict."""

import math

import pytest

from autoformalize.problem import FormalProblem
from lean_prelude import MINI_PRELUDE
from solve_in_lean.eval.metrics import auroc, auroc_estimate
from solve_in_lean.eval.tasks import TaskContext, TaskOptions, run_rerank, task_metrics
from solve_in_lean.models.base import Completion, SamplingParams
from solve_in_lean.models.scripted import ScriptedGenerator
from solve_in_lean.options import SolveOptions
from solve_in_lean.verifier.reward import orm_label, prm_labels, split_steps, yes_probability
from test_verifier_answer import CONFIRM, REFUTE, STATEMENT, lean

PARAMS = SamplingParams(temperature=0.7, max_new_tokens=64)
COTS = ["2 + 2 = 4. The answer is 4.", "2 + 1 = 3. The answer is 3.", "Two and two make 4. The answer is 4."]


def test_orm_label_trusts_lean_before_the_reference():
    assert orm_label("3", lean_verdict="confirmed", reference="4") is True
    assert orm_label("4", lean_verdict="refuted", reference="4") is False
    assert orm_label("4", lean_verdict="unknown", reference="N.four") is True  # compared as numbers
    assert orm_label("4", lean_verdict="unknown") is None


def test_yes_probability_uses_the_logprob_when_there_is_one():
    assert yes_probability([Completion("yes", logprob=math.log(0.8))]) == pytest.approx(0.8)
    assert yes_probability([Completion(" No.", logprob=math.log(0.9))]) == pytest.approx(0.1)
    assert yes_probability([Completion("yes"), Completion("no"), Completion("maybe")]) == 0.5
    assert yes_probability([Completion("perhaps")]) is None


def test_prm_labels_by_rollouts():
    steps = split_steps("There are 2 + 2 = 4 apples. Then 4 - 1 = 3 are left. The answer is 3.")
    assert len(steps) == 3

    def script(prompt, i):  # rollouts after a wrong first step never reach 4
        return "The answer is 4." if prompt.rstrip().endswith("apples.") and i == 0 else "The answer is 3."
    labels = prm_labels(ScriptedGenerator(script), "Q?", steps, "4", params=PARAMS, rollouts=2)
    assert [lab["label"] for lab in labels] == [True, False, False]
    assert labels[0]["rollout_answers"] == ["4", "3"]


def test_auroc_and_its_bootstrap_interval():
    assert auroc([(0.9, True), (0.1, False)]) == 1.0 and auroc([(0.5, True), (0.5, False)]) == 0.5
    assert auroc([(0.2, True), (0.8, False)]) == 0.0 and auroc([(0.9, True)]) is None
    groups = [[(0.9, True), (0.2, False)], [(0.7, True), (0.8, False)], [(0.6, True), (0.1, False)]] * 5
    est = auroc_estimate(groups)
    assert est.value == pytest.approx(7 / 9) and est.low <= est.value <= est.high and est.n == 30
    assert auroc_estimate(groups) == est  # seeded: the same interval every time


def scripted_rerank_model(reward_yes: set[str], **by_claim: str) -> ScriptedGenerator:
    """Scripted: chains of thought, a reward model that says yes to solutions ending in `reward_yes`,
    and proofs by claim."""
    def script(prompt, i):
        text = prompt[-1]["content"] if isinstance(prompt, list) else prompt
        if "Claim:" in text:
            claim = text.split("Claim:", 1)[1].split("\n", 1)[0]
            return next((c for key, c in by_claim.items() if key in claim), "no proof")
        if text.rstrip().endswith("Is the new step correct?"):  # the process reward model dislikes 2 + 1 = 3
            return "no" if "New step: 2 + 1 = 3." in text else "yes"
        if text.rstrip().endswith("Is the final answer correct?"):
            solution = text.split("Solution:", 1)[1]
            return "yes" if any(f"answer is {a}." in solution for a in reward_yes) else "no"
        return COTS[i]
    return ScriptedGenerator(script)


@pytest.fixture
def item():
    return {"id": "p1", "question": "Two plus two: what is it?", "answer": "4",
            "formal": {"id": "p1", "kind": "compute", "statement": STATEMENT}}


def ctx(gen, kernel, cot_samples=0):
    return TaskContext(gen, kernel, PARAMS, TaskOptions(solve=SolveOptions(samples=3, rounds=0, cot_samples=cot_samples)),
                       header=MINI_PRELUDE)


def test_rerank_best_of_n_by_each_rule_with_lean_labels(kernel, item):
    gen = scripted_rerank_model({"3"}, **{"answer is 4": lean(CONFIRM), "answer is not 3": lean(REFUTE)})
    rec = run_rerank(item, ctx(gen, kernel))
    assert [c["answer"] for c in rec["candidates"]] == ["4", "3", "4"]
    assert [c["lean_verdict"] for c in rec["candidates"]] == ["confirmed", "refuted", "confirmed"]
    assert [c["orm_label"] for c in rec["candidates"]] == [True, False, True]
    assert [c["lrm"] for c in rec["candidates"]] == [1.0, 0.0, 1.0]
    assert rec["picks"] == {"reward": "3", "prm": "4", "majority": "4", "lean": "4"}  # the orm likes the wrong one
    assert [c["prm_reward"] for c in rec["candidates"]] == [1.0, 0.0, 1.0]
    assert rec["scores"] == {"best_of_n:reward": False, "best_of_n:prm": True, "best_of_n:majority": True,
                             "best_of_n:lean": True, "pass@n": True}
    metrics = task_metrics("rerank", [rec], ctx(gen, kernel).options)
    assert metrics["auroc"]["reward"]["value"] == 0.0 and metrics["auroc"]["lrm"]["value"] == 1.0
    assert metrics["auroc"]["prm_reward"]["value"] == 1.0
    assert metrics["metrics"]["best_of_n:lean"]["value"] == 1.0


def test_rerank_without_a_lean_verdict_has_no_lean_pick(kernel, item):
    rec = run_rerank(item, ctx(scripted_rerank_model({"4"}), kernel))
    assert rec["picks"]["lean"] is None and rec["scores"]["best_of_n:lean"] is False
    assert rec["scores"]["best_of_n:reward"] is True
    assert [c["orm_label"] for c in rec["candidates"]] == [True, False, True]  # the reference decides


def test_rerank_records_step_labels_toward_the_confirmed_answer(kernel, item):
    gen = scripted_rerank_model(set(), **{"answer is 4": lean(CONFIRM)})
    rec = run_rerank(item, ctx(gen, kernel, cot_samples=1))
    wrong = rec["candidates"][1]["prm"]
    assert [s["step"] for s in wrong] == ["2 + 1 = 3.", "The answer is 3."]
    assert wrong[-1]["label"] is False and rec["candidates"][0]["prm"][-1]["label"] is True


def test_orm_and_prm_training_examples_from_rerank_records(kernel, item):
    from solve_in_lean.eval.trainingdata import TRAIN_TASKS, item_examples, record_examples

    gen = scripted_rerank_model(set(), **{"answer is 4": lean(CONFIRM), "answer is not 3": lean(REFUTE)})
    rec = {"id": "p1", **run_rerank(item, ctx(gen, kernel, cot_samples=1))}
    assert {"orm", "prm"} <= set(TRAIN_TASKS)
    orm = record_examples("orm", [rec], "sha")
    assert [e["messages"][-1]["content"] for e in orm] == ["yes", "no", "yes"]
    assert "2 + 1 = 3" in orm[1]["messages"][-2]["content"] and orm[0]["task"] == "orm"
    prm = record_examples("prm", [rec], "sha")
    assert [e["messages"][-1]["content"] for e in prm] == ["yes", "yes", "yes", "no", "yes", "yes"]  # rollouts (COTS[0]) reach 4
    assert "New step: The answer is 3." in prm[3]["messages"][-2]["content"]
    own = item_examples("orm", [{"id": "q", "dataset": "ours", "question": "Q?", "solution": "The answer is 4."}], "s")
    assert own[0]["messages"][-1]["content"] == "yes"
