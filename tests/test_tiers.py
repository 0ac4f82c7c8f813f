"""Tiers of trust in Lean-solve records, on the real kernel for prelude-dialect problems: *verified*
(the proof is accepted), *computed* (Lean printed the answer definition's value, the proof failed or is
absent: InternLM-Math's "Solve this via Lean" figure) and *informal* (the chain of thought). The scripted
generator only says what "the model" wrote; Lean decides every tier but the informal one."""

from pathlib import Path

from lean_prelude import MINI_PRELUDE
from scripting import by_task
from solve_in_lean.eval.tasks import TaskContext, TaskOptions, run_lean_solve, task_metrics
from solve_in_lean.models.base import SamplingParams
from solve_in_lean.models.scripted import ScriptedGenerator
from solve_in_lean.options import SolveOptions
from solve_in_lean.problems import load_items

ITEMS = {it["id"]: it for it in load_items(Path(__file__).resolve().parents[1] / "examples/data/tiny_eval.jsonl")}
STATEMENT = "theorem cats (x : N) (h : Eq x (N.add N.one N.one)) : Eq x cats_answer :="


def solution(value: str, proof: str) -> str:
    return f"```lean\nnoncomputable abbrev cats_answer : N := {value}\n{STATEMENT} {proof}\n```"


def run(lean_solve, cot="The answer is N.two.", samples=1):
    ctx = TaskContext(ScriptedGenerator(by_task({"lean_solve": lean_solve, "cot": cot, "backtranslate": "Two."})),
                      None, SamplingParams(temperature=0.7, max_new_tokens=64),
                      TaskOptions(SolveOptions(samples=samples, rounds=0, cot_samples=1)), MINI_PRELUDE)
    return ctx


def test_a_failed_proof_still_counts_the_value_lean_computed(kernel):
    ctx = run(solution("N.two", "Eq.refl N.one"))
    ctx.checker = kernel
    rec = run_lean_solve(ITEMS["cats"], ctx)
    assert rec["status"] != "verified" and rec["tiers"]["verified"] is None
    assert rec["tiers"]["computed"] == "N.two" and rec["tiers"]["informal"] == "N.two"
    assert rec["scores"]["verified_accuracy"] is False and rec["scores"]["computed_accuracy"] is True
    assert rec["scores"]["informal_accuracy"] is True


def test_a_verified_answer_is_every_tier_and_a_wrong_value_is_not_computed_right(kernel):
    ctx = run(solution("N.two", "h"), cot="The answer is N.one.")
    ctx.checker = kernel
    rec = run_lean_solve(ITEMS["cats"], ctx)
    assert rec["tiers"] == {"verified": "N.two", "computed": "N.two", "informal": "N.one"}
    assert (rec["scores"]["verified_accuracy"], rec["scores"]["computed_accuracy"],
            rec["scores"]["informal_accuracy"]) == (True, True, False)
    wrong = run(solution("N.one", "Eq.refl N.one"))
    wrong.checker = kernel
    rec = run_lean_solve(ITEMS["cats"], wrong)
    assert rec["tiers"]["computed"] == "N.one" and rec["scores"]["computed_accuracy"] is False


def test_an_answer_lean_cannot_elaborate_is_no_computed_answer(kernel):
    ctx = run(solution("N.nine", "h"))
    ctx.checker = kernel
    rec = run_lean_solve(ITEMS["cats"], ctx)
    assert rec["tiers"]["computed"] is None and rec["scores"]["computed_accuracy"] is False


def test_the_run_reports_the_three_tiers_side_by_side(kernel):
    ctx = run(solution("N.two", "Eq.refl N.one"))
    ctx.checker = kernel
    records = [run_lean_solve(ITEMS["cats"], ctx), {"error": "boom"}]
    metrics = task_metrics("lean-solve", records, ctx.options)
    tiers = ("verified_accuracy", "computed_accuracy", "informal_accuracy")
    values = {n: metrics["metrics"][n]["value"] for n in tiers}
    assert values == {"verified_accuracy": 0.0, "computed_accuracy": 0.5, "informal_accuracy": 0.5}


def test_a_verified_answer_is_the_computed_one_even_when_unverified_programs_outvote_it(kernel):
    """Regression: the computed tier was the majority of every value Lean printed, so two failed programs
    printing N.one outvoted the verified N.two (a run reported computed 0 where verified was 0.25)."""
    ctx = run([solution("N.two", "h"), solution("N.one", "Eq.refl N.one"), solution("N.one", "Eq.refl N.one")],
              samples=3)
    ctx.checker = kernel
    rec = run_lean_solve(ITEMS["cats"], ctx)
    printed = [a["answer_raw"] for a in rec["pipeline"]["stages"]["solve"]["attempts"]]
    assert sorted(printed) == ["N.one", "N.one", "N.two"]  # Lean printed all three values
    assert rec["tiers"]["verified"] == rec["tiers"]["computed"] == "N.two"
    assert rec["scores"]["verified_accuracy"] is True and rec["scores"]["computed_accuracy"] is True


def test_a_confirmed_chain_of_thought_answer_is_computed_though_no_program_printed():
    """The verified-voting rule can verify a chain-of-thought answer Lean confirmed while no program
    printed a value: verified still implies computed."""
    from solve_in_lean.eval.tasks import answer_tiers

    record = {"answer": "N.two", "verified": True,
              "stages": {"solve": {"attempts": [{"answer_raw": None}], "cot_answer": "N.two"},
                         "vote": {"rule_step": "confirmed"}}}
    assert answer_tiers(record) == {"verified": "N.two", "computed": "N.two", "informal": "N.two"}
    assert answer_tiers({**record, "verified": False})["computed"] is None
