"""Self-iteration (`lean-solve iterate`) on the real bundled Lean kernel and the real tiny model.

The random tiny model verifies nothing, so the command-line run shows rounds completing with
training skipped. The rounds that do train use an *oracle* script (ScriptedGenerator answering
each Lean prompt with the dataset's known solution: given completions, not a model, it measures
nothing): Lean still checks every answer, and the tiny model is really fine-tuned on what was
verified. Resumability is tested by SIGKILLing real subprocesses at each stage and rerunning.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st
from PIL import Image
from typer.testing import CliRunner

from solve_in_lean.cli import _register, app

ROOT = Path(__file__).resolve().parents[1]
TINY = ROOT / "examples" / "iterate_tiny.toml"
TRAIN = ROOT / "examples" / "data" / "tiny_train.jsonl"
EVAL = ROOT / "examples" / "data" / "tiny_eval.jsonl"
pytestmark = pytest.mark.usefixtures("torch_one_thread")


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _tiny_text() -> str:
    """The tiny config with its relative paths made absolute, to be copied elsewhere."""
    return TINY.read_text(encoding="utf-8").replace('"data/', f'"{ROOT}/examples/data/').replace(
        '"prelude.lean"', f'"{ROOT}/examples/prelude.lean"')


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "solve_in_lean", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"})


# ---------------------------------------------------------------------------------------------
# Config
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("change, message", [
    (("rounds = 2", "rounds = 0"), "rounds must be a whole number"),
    (('init = "base"', 'init = "best"'), "init must be one of base, previous"),
    (('task = "prove"\ndata', 'task = "backtranslate"\ndata'), "yield nothing verifiable"),
    (("lean-solve = 1.0\n", "poetry = 1.0\n"), "are not training tasks"),
    (("seed = 0", "seed = 0\nmixtures = 1"), "unknown key(s) ['mixtures']"),
])
def test_a_bad_config_is_one_sentence_and_exit_2(tmp_path, change, message):
    config = tmp_path / "iterate.toml"
    config.write_text(_tiny_text().replace(*change, 1), encoding="utf-8")
    _register()
    result = CliRunner().invoke(app, ["iterate", "--config", str(config), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


# ---------------------------------------------------------------------------------------------
# The oracle script (given completions, not a model) and an iteration config that uses it
# ---------------------------------------------------------------------------------------------
ORACLE = '''
import json, sys
from pathlib import Path

def solutions(*files):
    """Each known statement (whitespace-normalized) -> its solution from the data files."""
    out = {}
    for f in files:
        for line in Path(f).read_text(encoding="utf-8").splitlines():
            row = json.loads(line)
            if row.get("formal") and row.get("proof"):
                out[" ".join(row["formal"]["statement"].split())] = row["proof"]
    return out

def oracle(known):
    """Answer a Lean prompt with the known solution of the statement it contains; else nothing."""
    def script(prompt, index):
        text = " ".join(prompt[-1]["content"].split()) if isinstance(prompt, list) else " ".join(prompt.split())
        for statement, proof in known.items():
            if statement in text:
                return "```lean\\n" + proof + "```"
        return ""
    return script
'''
DRIVER = ORACLE + '''
if __name__ == "__main__":
    import torch
    from solve_in_lean.eval.iterate import load_config, run_iteration
    from solve_in_lean.models.scripted import ScriptedGenerator

    torch.set_num_threads(1)
    config, out, *files = sys.argv[1:]
    script = oracle(solutions(*files))
    run_iteration(load_config(config, out=out), generator_for=lambda model, seed: ScriptedGenerator(script, model),
                  progress=False, log=lambda m: print(m, flush=True))
'''


def _oracle_module(tmp_path: Path):
    path = tmp_path / "oracle_driver.py"
    path.write_text(DRIVER, encoding="utf-8")
    namespace: dict = {}
    exec(compile(ORACLE, str(path), "exec"), namespace)
    return path, namespace


def _pool_with_evaluation_copies(tmp_path: Path) -> Path:
    """The training pool plus evaluation items in disguise: one under its own id, one under a new
    id with its question and statement re-spaced and re-cased, one prove statement re-spaced."""
    evals = {r["id"]: r for r in _rows(EVAL)}
    cats = dict(evals["cats"])
    birds = {**evals["birds"], "id": "birds-copy", "question": "  " + evals["birds"]["question"].upper() + " ",
             "formal": {**evals["birds"]["formal"], "statement": evals["birds"]["formal"]["statement"].replace(" ", "  ")}}
    one = {**evals["one_add_one"], "id": "pool-17",
           "formal": {**evals["one_add_one"]["formal"], "statement": "  " + evals["one_add_one"]["formal"]["statement"]}}
    pool = tmp_path / "pool.jsonl"
    pool.write_text("".join(json.dumps(r) + "\n" for r in [*_rows(TRAIN), cats, birds, one]), encoding="utf-8")
    return pool


ORACLE_CONFIG = f'''
seed = 0
rounds = 2
init = "previous"
examples = 0
tiny_model = true

[model]
backend = "transformers"
max_new_tokens = 16

[solve]
samples = 1
rounds = 0
cot_samples = 0
judge = false

[lean]
backend = "kernel"
header = "{ROOT}/examples/prelude.lean"
timeout_s = 60

[train]
method = "full"
max_steps = 3
batch_size = 4
lr = 1e-3
max_seq_len = 256

[[pool]]
task = "lean-solve"
data = "pool.jsonl"
limit = 3

[[pool]]
task = "prove"
data = "pool.jsonl"
limit = 3

[[eval]]
task = "lean-solve"
data = "{EVAL}"
metric = "verified_rate"

[[eval]]
task = "prove"
data = "{EVAL}"
'''


def _oracle_config(tmp_path: Path) -> Path:
    _pool_with_evaluation_copies(tmp_path)
    config = tmp_path / "iterate.toml"
    config.write_text(ORACLE_CONFIG, encoding="utf-8")
    return config


def _summary(out: Path) -> list[dict]:
    """What must not depend on interruptions: per round, the data, training set, losses and values."""
    rows = []
    for row in json.loads((out / "iterate.json").read_text())["rounds"]:
        t = row["training"]
        rows.append({"round": row["round"], "data": row["collected"]["data_sha256"], "skipped": t["skipped"],
                     "train": t.get("train_sha256"), "losses": t.get("result", {}).get("losses"),
                     "values": row["values"], "p": row["p_values"]})
    return rows


@pytest.fixture(scope="module")
def oracle_reference(tmp_path_factory):
    """An uninterrupted oracle iteration, in this process."""
    from solve_in_lean.eval.iterate import load_config, run_iteration
    from solve_in_lean.models.scripted import ScriptedGenerator

    tmp = tmp_path_factory.mktemp("oracle")
    config = _oracle_config(tmp)
    _, ns = _oracle_module(tmp)
    script = ns["oracle"](ns["solutions"](tmp / "pool.jsonl", EVAL))
    result = run_iteration(load_config(config, out=tmp / "out"), progress=False,
                           generator_for=lambda model, seed: ScriptedGenerator(script, model))
    return tmp / "out", result


# ---------------------------------------------------------------------------------------------
# Evaluation items never enter training
# ---------------------------------------------------------------------------------------------
def test_evaluation_items_never_enter_training(oracle_reference):
    from solve_in_lean.eval.iterate import text_key

    out, result = oracle_reference
    evals = _rows(EVAL)
    ids = {r["id"] for r in evals}
    texts = {text_key(t) for r in evals for t in (r["question"], r["formal"]["statement"])}
    pool_items, examples = [], []
    for r in (1, 2):
        for run in ("lean-solve", "prove"):
            pool_items += [rec["item"] for rec in _rows(out / f"round-{r}" / "pool" / run / "records.jsonl")]
        examples += _rows(out / f"round-{r}" / "data.jsonl")
    assert pool_items and examples  # the oracle verified pool problems and they were trained on
    assert result.rows[1]["training"]["skipped"] is None and (out / "round-1" / "model" / "config.json").is_file()
    for item in pool_items:  # never even shown to the model
        assert item["id"] not in ids and item["id"] not in ("birds-copy", "pool-17")
        assert not {text_key(item["question"] or ""), text_key(item["formal"]["statement"])} & texts
    for ex in examples:
        assert ex["source"]["id"] not in ids | {"birds-copy", "pool-17"}
        assert all(eval_text.strip() not in m["content"] for m in ex["messages"] for eval_text in
                   (r["formal"]["statement"] for r in evals))


def test_collection_drops_verified_evaluation_items_even_if_they_were_run(kernel, tmp_path):
    """The second line of defence: records of evaluation items (run directly, as a pool would if
    the first filter failed) are verified, yet no example comes out of them."""
    from solve_in_lean.eval.iterate import HeldOut, collect
    from solve_in_lean.eval.run import evaluate, select_items
    from solve_in_lean.eval.tasks import TaskContext, TaskOptions
    from solve_in_lean.models.base import SamplingParams
    from solve_in_lean.models.scripted import ScriptedGenerator
    from solve_in_lean.options import SolveOptions

    _, ns = _oracle_module(tmp_path)
    header = (ROOT / "examples" / "prelude.lean").read_text(encoding="utf-8")
    gen = ScriptedGenerator(ns["oracle"](ns["solutions"](EVAL)))
    options = TaskOptions(SolveOptions(samples=1, rounds=0, cot_samples=0, judge=False))
    runs = []
    for task in ("lean-solve", "prove"):
        selection = select_items(task, EVAL)
        run, _, metrics = evaluate(tmp_path / task, selection, TaskContext(gen, kernel, SamplingParams(), options,
                                                                           header), model={}, progress=False)
        assert metrics["metrics"][metrics["main"]]["value"] == 1.0  # every one verified by Lean
        runs.append((task, run))
    kept, stats = collect(runs, HeldOut.of([select_items("lean-solve", EVAL)]), set())
    assert kept == [] and stats["verified"] == 4 and stats["held_out"] == 4
    kept, stats = collect(runs, HeldOut(), set())  # the same records with nothing held out do yield examples
    assert len(kept) == 4 and stats["held_out"] == 0


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(_rows(EVAL)), st.lists(st.sampled_from([" ", "\n", "\t", "  "]), min_size=1, max_size=4),
       st.booleans())
def test_a_respaced_or_recased_evaluation_text_is_held_out(item, spaces, upper):
    from solve_in_lean.eval.iterate import HeldOut

    held = HeldOut.of([type("S", (), {"items": _rows(EVAL)})()])
    question = "".join(spaces).join(item["question"].split(" "))
    disguised = {"id": "other", "question": question.upper() if upper else question}
    assert held.excludes(disguised)
    assert not held.excludes({"id": "other", "question": item["question"] + " And one more."})


# ---------------------------------------------------------------------------------------------
# Resumable at every stage: SIGKILL a real subprocess there, rerun, get the same iteration
# ---------------------------------------------------------------------------------------------
def _run_until(cmd: list[str], line: str | None, timeout: float = 300) -> str:
    """Run `cmd`; when it prints `line`, SIGKILL it (and any Lean it started). Returns its output."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
                            start_new_session=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    seen = []
    try:
        for out_line in proc.stdout:
            seen.append(out_line)
            if line is not None and out_line.startswith(line):
                os.killpg(proc.pid, signal.SIGKILL)
                break
        proc.wait(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    text = "".join(seen)
    if line is None:
        assert proc.returncode == 0, text
    else:
        assert proc.returncode == -signal.SIGKILL, f"never reached {line!r}:\n{text}"
    return text


STAGES = ["round 0: evaluate", "round 1: generate", "round 1: collect", "round 1: train", "round 1: evaluate",
          "round 2: generate"]


def test_killed_at_every_stage_the_iteration_resumes_to_the_same_result(oracle_reference, tmp_path):
    ref_out, _ = oracle_reference
    config = _oracle_config(tmp_path)
    driver, _ = _oracle_module(tmp_path)
    cmd = [sys.executable, str(driver), str(config), str(tmp_path / "out"), str(tmp_path / "pool.jsonl"), str(EVAL)]
    for stage in STAGES:
        _run_until(cmd, stage)
    assert (tmp_path / "out" / "round-1" / "round.json").is_file()  # progress was kept across the kills
    final = _run_until(cmd, None)
    assert "round 0: done earlier" in final and "round 1: done earlier" in final
    _assert_same(tmp_path / "out", ref_out)


def _assert_same(out: Path, ref: Path) -> None:
    """Same data, training sets, values and paired tests per round; losses equal to float noise."""
    for g, w in zip(_summary(out), _summary(ref), strict=True):
        assert {k: v for k, v in g.items() if k != "losses"} == {k: v for k, v in w.items() if k != "losses"}
        assert (g["losses"] is None) == (w["losses"] is None)
        if g["losses"] is not None:
            assert g["losses"] == pytest.approx(w["losses"], rel=1e-4)


# ---------------------------------------------------------------------------------------------
# The command on the tiny random model: nothing verifies, rounds complete, report plots them
# ---------------------------------------------------------------------------------------------
def test_tiny_iteration_end_to_end_with_a_kill_then_report(tmp_path):
    out = tmp_path / "iter"
    cmd = [sys.executable, "-m", "solve_in_lean", "iterate", "--config", str(TINY), "--out", str(out)]
    _run_until(cmd, "round 1: evaluate")
    final = _run_until(cmd, None)
    assert "round 0: done earlier" in final and "round 2: training skipped: no new verified data" in final
    data = json.loads((out / "iterate.json").read_text())
    assert [r["round"] for r in data["rounds"]] == [0, 1, 2]
    for row in data["rounds"][1:]:
        assert row["training"]["skipped"].startswith("no new verified data")
        assert row["collected"]["examples"] == 0 and (out / f"round-{row['round']}" / "data.jsonl").read_text() == ""
        assert set(row["values"]) == {"lean-solve:verified_rate", "prove:pass@1"}
        assert set(row["p_values"]) == set(row["values"])
    rerun = cli("iterate", "--config", str(TINY), "--out", str(out), "--json")
    assert rerun.returncode == 0, rerun.stderr
    assert json.loads(rerun.stdout)["rounds"] == data["rounds"]  # nothing redone, nothing changed
    report = cli("report", str(out))
    assert report.returncode == 0, report.stderr
    assert "round" in report.stdout and "skipped" in report.stdout
    for name in ("rounds.png", "heatmaps.png"):
        with Image.open(out / "report" / name) as image:
            assert image.size[0] > 300
    (tmp_path / "other.toml").write_text(_tiny_text().replace("max_steps = 4", "max_steps = 5"), encoding="utf-8")
    refused = cli("iterate", "--config", str(tmp_path / "other.toml"), "--out", str(out))
    assert refused.returncode == 2 and "other settings" in refused.stderr and "Traceback" not in refused.stderr


def test_one_model_per_process_pauses_before_each_new_model_and_ends_the_same(oracle_reference, tmp_path):
    """--one-model (vLLM on a GPU): each call stops before a second model would generate."""
    from solve_in_lean.eval.iterate import load_config, run_iteration
    from solve_in_lean.models.scripted import ScriptedGenerator

    ref_out, _ = oracle_reference
    config = _oracle_config(tmp_path)
    _, ns = _oracle_module(tmp_path)
    script = ns["oracle"](ns["solutions"](tmp_path / "pool.jsonl", EVAL))
    used: list[list[str]] = []

    def generator_for(model, seed):
        used[-1].append(str(Path(model).relative_to(tmp_path / "out")))
        return ScriptedGenerator(script, model)

    paused = []
    for _ in range(5):
        used.append([])
        result = run_iteration(load_config(config, out=tmp_path / "out"), generator_for=generator_for,
                               progress=False, one_model=True)
        paused.append(result.paused)
        if result.paused is None:
            break
    assert [p is not None for p in paused] == [True, True, False]
    assert [sorted(set(u)) for u in used] == [["base-model"], ["round-1/model"], ["round-2/model"]]
    _assert_same(tmp_path / "out", ref_out)


def test_the_gpu_example_config_is_valid():
    from solve_in_lean.eval.iterate import load_config

    cfg = load_config(ROOT / "examples" / "iterate_7b.toml")
    assert cfg.rounds == 3 and cfg.train.method == "lora" and cfg.settings.model.backend == "vllm"
    assert {p.task for p in cfg.pools} == {"cot", "lean-solve", "formalize", "prove"}
