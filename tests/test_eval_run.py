"""`lean-solve eval` run directories with the real tiny model: a real subprocess killed with
SIGKILL mid-run resumes without losing or redoing an item; the same seed gives the same
records; a directory holding another run's config is refused."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lean_prelude import MINI_PRELUDE
from solve_in_lean.cli import _register, app

ROOT = Path(__file__).resolve().parents[1]
GSM8K = str(ROOT / "../shared/data/gsm8k/train_sample.jsonl")
TINY_EVAL = str(ROOT / "examples/data/tiny_eval.jsonl")
pytestmark = pytest.mark.usefixtures("torch_one_thread")


def eval_args(model, out, *extra):
    return ["eval", "--task", "cot", "--data", GSM8K, "--out", str(out), "--model", str(model),
            "--model-backend", "transformers", "--max-new-tokens", "12", *extra]


def invoke(args):
    _register()
    return CliRunner().invoke(app, args)


def records(run_dir):
    return [json.loads(line) for line in (Path(run_dir) / "records.jsonl").read_text().splitlines() if line.strip()]


def without_timings(obj):
    """Records minus wall-clock figures, the only thing a rerun may change."""
    if isinstance(obj, dict):
        return {k: without_timings(v) for k, v in obj.items()
                if k not in ("seconds", "timings") and not k.endswith("_s")}
    if isinstance(obj, list):
        return [without_timings(v) for v in obj]
    return obj


def test_killed_run_resumes_without_losing_or_redoing_an_item(tiny_model_dir, tmp_path):
    out = tmp_path / "run"
    args = eval_args(tiny_model_dir, out, "--limit", "8", "--cot-samples", "2")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LEAN_SOLVE_PROGRESS": "0", "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "solve_in_lean", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    path = out / "records.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and (not path.exists() or len(records(out)) < 2):
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = records(out)
    assert 2 <= len(first) < 8, "the run should have been killed part-way"
    result = invoke([*args, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert (summary["resumed"], summary["done_now"], summary["items"]) == (len(first), 8 - len(first), 8)
    final = records(out)
    config = json.loads((out / "config.json").read_text())["config"]
    assert len(final) == 8 and [r["id"] for r in final] == config["item_ids"]  # none lost, none twice
    assert final[: len(first)] == first  # finished records untouched
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["items"] == 8 and metrics["metrics"]["accuracy"]["n"] == 8


def test_same_seed_same_records_and_other_settings_are_refused(tiny_model_dir, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        result = invoke(eval_args(tiny_model_dir, out, "--limit", "2", "--cot-samples", "2", "--seed", "3",
                                  "--cache", "off"))  # each run generates: their equality is the point
        assert result.exit_code == 0, result.output
        assert "accuracy" in result.stdout and "[95% confidence intervals" in result.stdout
    ra, rb = records(a), records(b)
    assert len(ra) == 2 and without_timings(ra) == without_timings(rb)
    assert ra[0]["item"]["question"] and len(ra[0]["samples"]) == 2  # the artefacts are kept
    config = json.loads((a / "config.json").read_text())
    sampling = config["config"]["sampling"]
    assert config["config"]["seed"] == 3 and sampling["temperature"] == 0 and sampling["n"] == 1
    assert sampling["several_samples_temperature"] == 0.8  # the rule, recorded: 2 samples were asked
    assert len(config["config"]["data_sha256"]) == 64 and config["environment"]["python"]

    other_seed = invoke(eval_args(tiny_model_dir, a, "--limit", "2", "--cot-samples", "2", "--seed", "4",
                                  "--cache", "off"))
    assert other_seed.exit_code == 2 and "holds a run with other settings" in other_seed.output
    assert "seed" in other_seed.output and "item_ids" in other_seed.output
    other_tokens = invoke(eval_args(tiny_model_dir, a, "--limit", "2", "--cot-samples", "2", "--seed", "3",
                                    "--cache", "off", "--max-new-tokens", "13"))
    assert other_tokens.exit_code == 2 and "sampling.max_new_tokens" in other_tokens.output
    assert records(a) == ra  # nothing was appended by the refused runs


def test_a_non_run_directory_and_bad_arguments_are_refused(tiny_model_dir, tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    result = invoke(eval_args(tiny_model_dir, busy, "--limit", "1"))
    assert result.exit_code == 2 and "holds no config.json" in result.output
    bad_task = invoke(["eval", "--task", "guess", "--data", GSM8K, "--out", str(tmp_path / "x")])
    assert bad_task.exit_code == 2 and "unknown task 'guess'" in bad_task.output
    k_for_cot = invoke(eval_args(tiny_model_dir, tmp_path / "y", "-k", "4"))
    assert k_for_cot.exit_code == 2 and "use --samples" in k_for_cot.output
    no_prove = invoke(["eval", "--task", "prove", "--data", GSM8K, "--out", str(tmp_path / "z")])
    assert no_prove.exit_code == 2 and "statement to prove" in no_prove.output


def test_lean_tasks_run_on_the_kernel_with_the_tiny_model(kernel, tiny_model_dir, tmp_path):
    header = tmp_path / "prelude.lean"
    header.write_text(MINI_PRELUDE)
    out = tmp_path / "prove"
    result = invoke(["eval", "--task", "prove", "--data", TINY_EVAL, "--out", str(out), "-k", "1", "-k", "2", "-n", "2",
                     "--header", str(header), "-b", "kernel", "--model", str(tiny_model_dir),
                     "--max-new-tokens", "12", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["items"] == 2 and summary["unusable"] == 2 and set(summary["metrics"]) == {"pass@1", "pass@2"}
    rec = records(out)[0]
    assert rec["samples"] == 2 and len(rec["solve"]["attempts"]) == 2 and set(rec["scores"]) == {"pass@1", "pass@2"}
    mathlib = invoke(["eval", "--task", "prove", "--data", TINY_EVAL, "--out", str(tmp_path / "m"), "-b", "kernel",
                      "--model", str(tiny_model_dir)])
    assert mathlib.exit_code == 2 and "header does not elaborate" in mathlib.output


def test_items_in_flight_give_the_same_records(tiny_model_dir, tmp_path):
    runs = {}
    for workers in ("1", "3"):
        out = tmp_path / f"w{workers}"
        result = invoke(eval_args(tiny_model_dir, out, "--limit", "4", "--cot-samples", "2", "--workers", workers,
                                  "--cache", "off"))
        assert result.exit_code == 0, result.output
        from solve_in_lean.eval.run import load_run

        runs[workers] = load_run(out).records()
    assert [r["id"] for r in runs["3"]] == [r["id"] for r in runs["1"]]
    assert without_timings(runs["3"]) == without_timings(runs["1"])


def test_batching_generator_merges_concurrent_calls():
    import threading

    from solve_in_lean.eval.parallel import BatchingGenerator
    from solve_in_lean.models.base import SamplingParams
    from solve_in_lean.models.scripted import ScriptedGenerator

    class Recording(ScriptedGenerator):
        calls: list = []

        def generate(self, prompts, params):
            self.calls.append(len(prompts))
            return super().generate(prompts, params)

    inner = Recording(lambda prompt, i: f"{prompt}-{i}")
    results = {}
    with BatchingGenerator(inner, workers=4, window_s=5.0) as gen:
        def call(name):
            results[name] = [[c.text for c in row] for row in gen.generate([f"{name}a", f"{name}b"],
                                                                             SamplingParams(n=2))]
        threads = [threading.Thread(target=call, args=(str(i),)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert inner.calls == [8]  # four callers, one call of the model
    assert results["2"] == [["2a-0", "2a-1"], ["2b-0", "2b-1"]]
