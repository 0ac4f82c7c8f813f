"""InternLM-Math's "Solve this via Lean" (presets/via_lean.py, `eval --task via-lean`), on the real bundled
kernel: the model's `#eval` is never run; its expression is ascribed an allow-listed type and evaluated
through the verifier. The kernel has no `Init`, so the prelude below declares `Bool` and `Nat` (an `abbrev`
of the mini prelude's `N`: an inductive `Nat` would need the compiler's own) and the kernel prints the
answer's body instead of running it. Hostile code is refused with a reason."""

import json

import pytest

from lean_prelude import MINI_PRELUDE
from solve_in_lean.eval.tasks import TaskContext, TaskOptions, run_via_lean, task_metrics
from solve_in_lean.models.base import SamplingParams
from solve_in_lean.models.scripted import ScriptedGenerator
from solve_in_lean.options import SolveOptions
from solve_in_lean.presets import get_preset
from solve_in_lean.presets.via_lean import Refused, evaluate, lean_type, prepare

PRELUDE = MINI_PRELUDE + """
inductive Bool where
  | false : Bool
  | true : Bool
abbrev Nat : Type := N
"""
FOUR = "noncomputable def four : Nat := N.add N.two N.two\n#eval four\n"


def run(code: str):
    from solve_in_lean.lean import get_checker

    return evaluate(code, get_checker("kernel", timeout_s=60), header=PRELUDE)


@pytest.fixture(autouse=True)
def _kernel(kernel):
    """Every test here checks with the real kernel (skips with the reason where it is missing)."""


def test_the_value_of_the_last_eval_is_what_lean_computed():
    value, printed, reasons = run(FOUR)
    assert reasons == [] and value == printed == "four"  # the kernel prints the body: `four`
    value, _, reasons = run("noncomputable def two : Nat := N.two\n#eval two\n#eval (N.add two two : Nat)\n")
    assert reasons == [] and value == "N.add two two"


def test_the_ascribed_type_is_checked_by_lean():
    value, _, reasons = run("def flag : Bool := Bool.true\n#eval (flag : Nat)\n")
    assert value is None and any("mismatch" in r.lower() for r in reasons), reasons
    assert any("Lean did not evaluate `(flag : Nat)` as Nat" in r for r in reasons)


def test_an_io_action_is_refused_before_lean_runs():
    value, printed, reasons = run('#eval IO.println "4"\n')
    assert value is None and printed is None and "performs input/output" in reasons[0]
    value, _, reasons = run('def main : IO Unit := pure ()\n#eval main\n')
    assert value is None and "`IO Unit` is not one Lean may evaluate" in reasons[0]


def test_a_type_outside_the_allow_list_is_refused():
    for code, shown in (("noncomputable def x : N := N.two\n#eval x\n", "`N`"),
                        ("noncomputable def f : Nat → Nat := fun n => n\n#eval f\n", "`Nat → Nat`"),
                        ("#eval (2.5 : Float)\n", "`Float`")):
        value, _, reasons = run(code)
        assert value is None and f"type {shown} is not one Lean may evaluate" in reasons[0], reasons


def test_a_def_using_a_refused_construct_is_refused():
    value, _, reasons = run("axiom cheat : Nat\nnoncomputable def x : Nat := cheat\n#eval x\n")
    assert value is None and "refused construct `axiom`" in reasons[0]
    value, _, reasons = run('instance : Repr Nat := ⟨fun _ _ => "42"⟩\n' + FOUR)
    assert value is None and "decides how values print" in reasons[0]


def test_the_expression_is_evaluated_where_the_eval_stood():
    value, _, reasons = run("namespace Shop\nnoncomputable def four : Nat := N.add N.two N.two\n#eval four\nend Shop\n")
    assert reasons == [] and value == "Shop.four"  # our definition sits inside the namespace, so `four` resolves


def test_an_eval_in_a_comment_or_string_is_no_eval():
    for code in ("noncomputable def four : Nat := N.four\n-- #eval four\n",
                 "noncomputable def four : Nat := N.four\n/- #eval four -/\n",
                 'def s := "#eval four"\n'):
        value, _, reasons = run(code)
        assert value is None and "has no `#eval` command" in reasons[0]


def test_a_definition_lean_rejects_gives_no_value():
    value, _, reasons = run("noncomputable def four : Nat := N.add N.two Bool.true\n#eval four\n")
    assert value is None and reasons and reasons[0].startswith("error at 1:")


def test_prepare_drops_every_hash_command_and_keeps_the_definitions():
    ev = prepare("def a : ℕ := 2\n#check a\n#eval a + 1\ntheorem t : a = 2 := rfl\n#eval (a : ℤ)\nend\n#print a")
    assert (ev.before, ev.after) == ("def a : ℕ := 2\ntheorem t : a = 2 := rfl\n", "end\n")
    assert (ev.expression, ev.type, ev.lean_type) == ("(a : ℤ)", "ℤ", "_root_.Int")
    assert prepare("def a : List (ℕ × ℚ) := []\n#eval a\n").lean_type == \
        "(_root_.List (_root_.Prod _root_.Nat _root_.Rat))"
    assert prepare("#eval 1 + 1").type == "ℕ"  # Lean's default for numerals
    with pytest.raises(Refused):
        prepare("#eval")


@pytest.mark.parametrize("text,expected", [
    ("ℕ", "_root_.Nat"), ("Int", "_root_.Int"), ("String", "_root_.String"),
    ("ℕ × ℤ × Bool", "(_root_.Prod _root_.Nat (_root_.Prod _root_.Int _root_.Bool))"),
    ("Prod ℕ ℕ", "(_root_.Prod _root_.Nat _root_.Nat)"), ("Float", None), ("IO ℕ", None), ("ℕ → ℕ", None),
    ("List", None), ("(ℕ", None), ("List (List (List (List (List ℕ))))", None)])
def test_the_allow_list(text, expected):
    assert lean_type(text) == expected


def test_the_eval_task_sends_internlms_query_and_scores_the_computed_tier(kernel):
    internlm = get_preset("internlm2-math-plus-7b")
    completions = ["```lean\n" + FOUR + "```", "```lean\n#eval IO.println \"four\"\n```",
                   "```lean\n" + FOUR + "```"]
    gen = ScriptedGenerator(lambda prompt, i: completions[i % len(completions)])
    ctx = TaskContext(gen, kernel, SamplingParams(temperature=0.7), TaskOptions(SolveOptions(samples=3)), PRELUDE,
                      preset=internlm)
    item = {"id": "q", "question": "What is two plus two?", "answer": "four"}
    rec = run_via_lean(item, ctx)
    assert gen.prompts[0] == [{"role": "user", "content": "What is two plus two?\nSolve this via Lean 4"}]
    assert rec["prediction"] == "four" and rec["via_lean"]["votes"] == {"four": 2}
    assert rec["scores"] == {"computed_accuracy": True, "computed_rate": True}
    refused = rec["via_lean"]["attempts"][1]
    assert refused["value"] is None and "performs input/output" in refused["reasons"][0]
    wrong = run_via_lean({**item, "answer": "five"}, ctx)
    metrics = task_metrics("via-lean", [rec, wrong], ctx.options)
    assert metrics["main"] == "computed_accuracy" and metrics["metrics"]["computed_accuracy"]["value"] == 0.5
    json.dumps(rec)  # the record is plain JSON


def test_without_a_via_lean_query_the_generic_one_is_sent(kernel):
    gen = ScriptedGenerator(lambda prompt, i: "I cannot write Lean.")
    ctx = TaskContext(gen, kernel, SamplingParams(), TaskOptions(SolveOptions(samples=1)), PRELUDE,
                      preset=get_preset("goedel-prover-v2-8b"))
    rec = run_via_lean({"id": "q", "question": "Q?", "answer": "4"}, ctx)
    assert gen.prompts[0][-1]["content"].startswith("Q?\nSolve this via Lean 4: write Lean 4 definitions")
    assert rec["scores"] == {"computed_accuracy": False, "computed_rate": False}
    assert rec["via_lean"]["attempts"][0]["reasons"] == ["no Lean code in the completion"]


def test_eval_runs_the_via_lean_task_from_the_command_line(kernel, monkeypatch, tmp_path):
    """`lean-solve eval --task via-lean --preset internlm2-math-plus-7b` with the model replaced by a scripted
    generator (given texts); the real kernel evaluates, the run directory holds records and metrics."""
    from typer.testing import CliRunner

    import solve_in_lean.cli.evaluate as module
    from solve_in_lean.cli import _register, app

    gen = ScriptedGenerator(lambda prompt, i: "```lean\n" + FOUR + "```")
    monkeypatch.setattr(module, "make_generator",
                        lambda settings, **kw: (settings.model_config(cache_by_default=False), gen))
    header = tmp_path / "prelude.lean"
    header.write_text(PRELUDE)
    data = tmp_path / "q.jsonl"
    data.write_text(json.dumps({"id": "q1", "question": "Two plus two?", "answer": "four"}) + "\n"
                    + json.dumps({"id": "q2", "question": "Two plus three?", "answer": "five"}) + "\n")
    _register()
    res = CliRunner().invoke(app, ["eval", "--task", "via-lean", "--data", str(data), "--out", str(tmp_path / "run"),
                                   "--preset", "internlm2-math-plus-7b", "-b", "kernel", "--header", str(header),
                                   "-n", "1", "--cache", "off", "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.output.strip().splitlines()[-1])
    assert out["main"] == "computed_accuracy" and out["metrics"]["computed_accuracy"]["value"] == 0.5
    assert gen.prompts[0] == [{"role": "user", "content": "Two plus two?\nSolve this via Lean 4"}]
