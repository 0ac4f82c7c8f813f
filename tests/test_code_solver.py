"""The `code` solver: control flow on a scripted generator (named as such: it returns given
completions; every block it writes runs in the real sandbox), and end to end on the tiny
transformers model, directly and as the `code` eval task."""

from __future__ import annotations

import json

import pytest

from solve_in_lean.code.sandbox import SandboxLimits, run_python
from solve_in_lean.code.solver import COMPUTED_BY_PYTHON, UNVERIFIED, printed_answer, python_blocks, solve_with_code
from solve_in_lean.eval.code_task import run_code
from solve_in_lean.eval.tasks import TaskContext, TaskOptions, metric_names
from solve_in_lean.models.base import SamplingParams
from solve_in_lean.models.scripted import ScriptedGenerator
from solve_in_lean.options import SolveOptions

PARAMS = SamplingParams(max_new_tokens=64)
LIMITS = SandboxLimits(wall_s=20, cpu_s=5)  # roomy: a loaded CI machine slows start-up, not the verdicts

pytestmark = pytest.mark.skipif(run_python("print(1)", LIMITS).status == "sandbox_error",
                                reason="the sandbox needs Linux with Landlock and libseccomp2 "
                                       "(see docs/code_interpreter.md)")


def block(code: str, before: str = "Let me compute.") -> str:
    return f"{before}\n```python\n{code}\n```"


def test_python_blocks_and_printed_answer() -> None:
    assert python_blocks("no code here") is None
    assert python_blocks("```py\nx = 1\n```\ntext\n```python\nprint(x)\n```") == "x = 1\n\nprint(x)"
    assert python_blocks("cut at a stop string\n```python\nprint(2)\n") == "print(2)"
    assert python_blocks("```lean\ndef x := 1\n```") is None
    assert printed_answer("working...\n7/2\n\n") == "7/2"
    assert printed_answer("") is None


def test_single_turn_program_prints_the_answer() -> None:
    gen = ScriptedGenerator([block("print(3 * 12 - 29)")])
    r = solve_with_code("How many muffins are left?", gen, params=PARAMS, turns=1, limits=LIMITS)
    assert (r.answer, r.label, r.votes) == ("7", COMPUTED_BY_PYTHON, {"7": 1})
    assert r.samples[0].turns[0].run["status"] == "ok"


def test_output_is_fed_back_and_state_carries_over_between_turns() -> None:
    gen = ScriptedGenerator([block("x = 6 * 7\nprint(x)"), block("print(x + 1)", "Add one."), "The answer is 43."])
    r = solve_with_code("What is 6 * 7 + 1?", gen, params=PARAMS, turns=3, limits=LIMITS)
    assert r.answer == "43" and r.computed_by_python
    second = gen.prompts[1]
    assert second[-2] == {"role": "assistant", "content": block("x = 6 * 7\nprint(x)")}
    assert second[-1]["role"] == "user" and "```output\n42\n```" in second[-1]["content"]
    third = gen.prompts[2][-1]["content"]
    assert "```output\n43\n```" in third  # only the new cell's output, not 42 again


def test_a_refused_block_is_reported_to_the_model_which_can_recover() -> None:
    gen = ScriptedGenerator([block("import os\nprint(os.listdir('/'))"), block("print(2 ** 10)"),
                             "The answer is 1024."])
    r = solve_with_code("What is 2 to the 10th?", gen, params=PARAMS, turns=3, limits=LIMITS)
    turns = r.samples[0].turns
    assert turns[0].run["status"] == "refused"
    assert "The code tried to import os, which the sandbox does not allow." in gen.prompts[1][-1]["content"]
    assert r.answer == "1024" and r.label == COMPUTED_BY_PYTHON


def test_an_answer_no_program_printed_is_unverified() -> None:
    gen = ScriptedGenerator([block("print(6 * 7)"), "The answer is 50."])
    r = solve_with_code("What is 6 * 7?", gen, params=PARAMS, turns=2, limits=LIMITS)
    assert r.answer == "50" and r.label == UNVERIFIED
    plain = solve_with_code("What is 6 * 7?", ScriptedGenerator(["I think the answer is 42."]), params=PARAMS,
                            turns=2, limits=LIMITS)
    assert plain.answer == "42" and plain.label == UNVERIFIED


def test_hostile_last_turn_gives_no_answer() -> None:
    gen = ScriptedGenerator([block("while True:\n    pass")])
    r = solve_with_code("Loop?", gen, params=PARAMS, turns=1, limits=SandboxLimits(wall_s=30, cpu_s=1))
    assert r.answer is None and r.label is None
    assert r.samples[0].turns[0].run["status"] == "cpu_limit"


def test_samples_are_majority_voted() -> None:
    answers = {0: "print(10)", 1: "print(12)", 2: "print(5 + 5)"}
    gen = ScriptedGenerator(lambda prompt, i: block(answers[i]))
    r = solve_with_code("Ten?", gen, params=PARAMS, samples=3, turns=1, limits=LIMITS)
    assert r.answer == "10" and r.votes == {"10": 2, "12": 1} and r.computed_by_python


def test_code_task_scores_like_cot() -> None:
    item = {"id": "a", "question": "What is 6 * 7?", "answer": "42"}
    gen = ScriptedGenerator([block("print(6 * 7)")])
    one = TaskOptions(SolveOptions(samples=1, rounds=0))
    rec = run_code(item, TaskContext(generator=gen, checker=None, params=PARAMS, options=one))
    assert rec["prediction"] == "42" and rec["scores"] == {"accuracy": True, "python_rate": True}
    wrong = run_code(item, TaskContext(generator=ScriptedGenerator(["The answer is 41."]), checker=None,
                                       params=PARAMS, options=TaskOptions(SolveOptions(samples=3, rounds=1))))
    assert wrong["scores"] == {"accuracy": False, "python_rate": False} and wrong["votes"] == {"41": 3}
    assert metric_names("code", one) == ["accuracy", "python_rate"]


@pytest.mark.usefixtures("torch_one_thread")
def test_tiny_model_end_to_end(tiny_model_dir) -> None:
    """The real generation path: the tiny random model's text goes through block extraction,
    the sandbox (if it wrote a block) and answer extraction without an error."""
    from solve_in_lean.models.transformers_backend import TransformersGenerator

    gen = TransformersGenerator(str(tiny_model_dir))
    params = SamplingParams(max_new_tokens=12, temperature=1.0, seed=1)
    r = solve_with_code("What is 6 * 7?", gen, params=params, samples=2, turns=2, limits=LIMITS)
    assert len(r.samples) == 2 and all(s.turns for s in r.samples)
    assert r.label in (None, COMPUTED_BY_PYTHON, UNVERIFIED)
    assert sum(r.votes.values()) == sum(s.answer is not None for s in r.samples)
    rec = run_code({"id": "q", "question": "What is 6 * 7?", "answer": "42"},
                   TaskContext(generator=gen, checker=None, params=params,
                               options=TaskOptions(SolveOptions(samples=2, rounds=1))))
    assert set(rec["scores"]) == {"accuracy", "python_rate"} and len(rec["samples"]) == 2


@pytest.mark.usefixtures("torch_one_thread")
def test_eval_task_code_runs_from_the_cli(tiny_model_dir, tmp_path) -> None:
    from typer.testing import CliRunner

    from solve_in_lean.cli import _register, app

    data = tmp_path / "problems.jsonl"
    data.write_text('{"id": "a", "question": "What is 6 * 7?", "answer": "42"}\n'
                    '{"id": "b", "question": "What is 2 + 2?", "answer": "4"}\n')
    _register()
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["eval", "--task", "code", "--data", str(data), "--out", str(out),
                                      "--model", str(tiny_model_dir), "--model-backend", "transformers",
                                      "--max-new-tokens", "12", "--samples", "2", "--rounds", "1", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output[result.output.index('{"run_dir"'):].splitlines()[0])  # after progress bars
    assert summary["task"] == "code" and summary["items"] == 2 and summary["errors"] == 0
    assert summary["main"] == "accuracy" and set(summary["metrics"]) == {"accuracy", "python_rate"}
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines() if line.strip()]
    assert {r["id"] for r in records} == {"a", "b"} and all(len(r["samples"]) == 2 for r in records)


def test_printed_values_are_read_whole_or_like_a_final_sentence() -> None:
    assert printed_answer("sqrt(2)/2\n") == "sqrt(2)/2"
    assert printed_answer("[-2, 2]") == "[-2, 2]"
    assert printed_answer("Total: 12 apples") == "12"
    assert printed_answer("True") is None
    gen = ScriptedGenerator([block("import sympy\nprint(sympy.sqrt(8) / 4)"),
                             "The answer is \\boxed{\\frac{\\sqrt{2}}{2}}."])
    r = solve_with_code("What is sqrt(8)/4?", gen, params=PARAMS, turns=2, limits=LIMITS)
    assert r.label == COMPUTED_BY_PYTHON and r.answer is not None and "sqrt(2)" in r.answer


def test_a_sandbox_that_cannot_start_stops_the_solve(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not scored as a wrong answer: every later run would fail the same way."""
    import sys

    from solve_in_lean.errors import UnavailableError

    monkeypatch.setattr(sys, "executable", "/nonexistent/python")
    with pytest.raises(UnavailableError, match="could not start"):
        solve_with_code("Two?", ScriptedGenerator([block("print(2)")]), params=PARAMS, turns=1, limits=LIMITS)
