"""Step-wise search in eval (`eval --task prove --search best-first`): wiring, budget, records and resume.

Tactics need the full toolchain, so the wiring runs on the kernel backend with proof states from a table
(`ScriptedStates`: named as scripted, not Lean) and tactics from a scripted generator (given texts, not a
model). The proof a search finds is still verified whole by the real kernel, which has no tactics and says
so: those verdicts are Lean's. The end-to-end search through the REPL is the toolchain test at the end."""

import json
from contextlib import contextmanager
from pathlib import Path

import pytest

from lean_prelude import MINI_PRELUDE, needs_toolchain
from solve_in_lean.errors import InputError, UnavailableError
from solve_in_lean.eval.run import evaluate, select_items
from solve_in_lean.eval.tasks import TaskContext, TaskOptions, run_prove, task_metrics
from solve_in_lean.lean.repl import StepResult
from solve_in_lean.models.base import SamplingParams
from solve_in_lean.models.scripted import ScriptedGenerator
from solve_in_lean.options import SolveOptions

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "examples/data/tiny_eval.jsonl"


class ScriptedStates:
    """Proof states from a table, not Lean: state -> {tactic: next state}; "done" closes the proof."""

    def __init__(self, table):
        self.table, self.started, self.steps = table, [], []

    def start(self, theorem):
        self.started.append(theorem)
        return StepResult(0, ["⊢ goal 0"], "open")

    def step(self, state, tactic):
        self.steps.append((state, tactic))
        nxt = self.table.get(state, {}).get(tactic)
        if nxt is None:
            return StepResult(None, [], "error", f"unknown tactic {tactic}")
        if nxt == "done":
            return StepResult(None, [], "completed")
        return StepResult(nxt, [f"⊢ goal {nxt}"], "open")


class WithStates:
    """The real kernel checker, plus a tactic_session giving ScriptedStates."""

    def __init__(self, kernel, states):
        self._kernel, self.states, self.headers = kernel, states, []

    def __getattr__(self, name):
        return getattr(self._kernel, name)

    @contextmanager
    def tactic_session(self, header=None, timeout_s=None):
        self.headers.append(header)
        yield self.states


def tactics(answers):
    """A scripted proposer: the tactic prompt's goal decides the completions."""
    def script(prompt, index):
        goal = prompt[-1]["content"].split("Goals:\n")[1].split("\n")[0]
        options = answers.get(goal, ["sorry_tactic"])
        return options[index % len(options)]
    return ScriptedGenerator(script)


def context(checker, gen, **search):
    options = TaskOptions(SolveOptions(samples=1, rounds=0), (1,), "best-first",
                          **{"expansions": 5, "tactics_per_state": 2, **search})
    return TaskContext(gen, checker, SamplingParams(temperature=1.0, max_new_tokens=16), options, MINI_PRELUDE)


def test_a_search_records_its_tree_budget_and_lean_verdict(kernel):
    from solve_in_lean.problems import load_items

    item = next(it for it in load_items(DATA) if it["id"] == "one_add_one")
    states = ScriptedStates({0: {"step_a": 1, "step_b": 2}, 2: {"finish": "done"}})
    gen = tactics({"⊢ goal 0": ["step_b", "step_a"], "⊢ goal 2": ["finish"], "⊢ goal 1": ["nothing"]})
    checker = WithStates(kernel, states)
    rec = run_prove(item, context(checker, gen))
    assert states.started == ["theorem one_add_one : Eq (N.add N.one N.one) N.two"]
    assert checker.headers == [MINI_PRELUDE]
    search = rec["search"]
    assert search["stopped_by"] == "proof" and search["tactics"] == ["step_b", "finish"]
    assert search["depth"] == 2 and search["states"] == 3 and search["expansions"] == 2
    assert search["model_calls"] == 2 and search["lean_calls"] == 1 + len(states.steps) + 1  # start, steps, verify
    assert rec["found"] == "theorem one_add_one : Eq (N.add N.one N.one) N.two := by\n  step_b\n  finish\n"
    assert rec["verified"] is False and rec["proof"] is None and rec["scores"] == {"pass@1": False}
    assert rec["reasons"]  # the kernel's own words: it has no tactic framework


def test_the_budget_stops_the_search(kernel):
    from solve_in_lean.problems import load_items

    item = next(it for it in load_items(DATA) if it["id"] == "one_add_one")
    loop = ScriptedStates({i: {"next": i + 1} for i in range(100)})
    gen = tactics({f"⊢ goal {i}": ["next"] for i in range(100)})
    rec = run_prove(item, context(WithStates(kernel, loop), gen, expansions=3))
    assert rec["search"]["stopped_by"] == "expansions" and rec["search"]["model_calls"] == 3
    assert rec["found"] is None and rec["reasons"] == [] and rec["scores"] == {"pass@1": False}


def test_eval_runs_and_resumes_a_search(kernel, tmp_path):
    states = ScriptedStates({0: {"finish": "done"}})
    ctx = context(WithStates(kernel, states), tactics({"⊢ goal 0": ["finish"]}))
    selection = select_items("prove", DATA)
    run, summary, metrics = evaluate(tmp_path / "run", selection, ctx, model={"model": "scripted"}, progress=False)
    assert summary.done_now == 2 and metrics["metrics"]["pass@1"]["value"] == 0.0  # the kernel refuses `by`
    config = json.loads((tmp_path / "run" / "config.json").read_text())["config"]
    assert config["options"]["search"] == "best-first" and config["options"]["expansions"] == 5
    records = [json.loads(line) for line in (tmp_path / "run" / "records.jsonl").read_text().splitlines()]
    assert all(r["search"]["stopped_by"] == "proof" and r["search"]["model_calls"] == 1 for r in records)
    _, again, _ = evaluate(tmp_path / "run", selection, ctx, model={"model": "scripted"}, progress=False)
    assert again.done_now == 0 and again.resumed == 2
    other = context(WithStates(kernel, states), tactics({}), expansions=9)
    with pytest.raises(InputError, match="other settings.*options.expansions"):
        evaluate(tmp_path / "run", selection, other, model={"model": "scripted"}, progress=False)
    assert task_metrics("prove", [json.loads(json.dumps(r)) for r in records], ctx.options)["main"] == "pass@1"


def test_a_backend_without_tactic_states_cannot_search(kernel):
    from solve_in_lean.problems import load_items

    item = next(it for it in load_items(DATA) if it["id"] == "one_add_one")
    with pytest.raises(UnavailableError, match="tactic states.*-b repl"):
        run_prove(item, context(kernel, tactics({})))
    with pytest.raises(InputError, match="pass@1 only"):
        TaskOptions(SolveOptions(samples=4), (1, 4), "best-first")
    with pytest.raises(InputError, match="unknown search"):
        TaskOptions(SolveOptions(), (1,), "depth-first")


def test_the_cli_refuses_a_search_it_cannot_run(tmp_path):
    from typer.testing import CliRunner

    from solve_in_lean.cli import _register, app

    _register()
    header = tmp_path / "prelude.lean"
    header.write_text(MINI_PRELUDE)
    result = CliRunner().invoke(app, ["eval", "--task", "prove", "--data", str(DATA), "--out", str(tmp_path / "r"),
                                      "--search", "best-first", "-b", "kernel", "--header", str(header)])
    assert result.exit_code == 2 and "--search needs Lean's tactic states" in result.output
    rounds = CliRunner().invoke(app, ["eval", "--task", "prove", "--data", str(DATA), "--out", str(tmp_path / "r"),
                                      "--search", "best-first", "--rounds", "2"])
    assert rounds.exit_code == 2 and "no repair rounds" in rounds.output


@needs_toolchain
@pytest.mark.toolchain
def test_search_through_the_repl_end_to_end(tmp_path):
    """The real REPL gives the states; a scripted generator proposes fixed tactics (not a model)."""
    from solve_in_lean.lean import get_checker

    path = tmp_path / "p.jsonl"
    statement = "theorem t : ∀ n : Nat, n + 0 = n := by sorry"
    path.write_text(json.dumps({"id": "t", "formal": {"kind": "prove", "header": "", "statement": statement}}) + "\n")
    gen = ScriptedGenerator(lambda prompt, i: ["intro n", "simp"][i % 2])
    with get_checker("repl", timeout_s=120) as checker:
        ctx = TaskContext(gen, checker, SamplingParams(temperature=1.0), TaskOptions(SolveOptions(samples=1), (1,),
                          "best-first", expansions=8, tactics_per_state=2), "")
        _, summary, metrics = evaluate(tmp_path / "run", select_items("prove", path), ctx, model={}, progress=False)
    assert metrics["metrics"]["pass@1"]["value"] == 1.0
