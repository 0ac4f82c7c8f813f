"""`lean-solve report` on real runs of the tiny model: the table, the paired comparison of two
runs and the PNG plots (checked to be images); the paired test through the report on runs whose
per-item outcomes are known."""

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from lean_prelude import MINI_PRELUDE
from solve_in_lean.cli import _register, app
from solve_in_lean.eval.metrics import mcnemar_exact
from solve_in_lean.eval.run import RECORDS, open_run, run_config
from solve_in_lean.eval.tasks import TaskOptions
from solve_in_lean.records import ResultStore

ROOT = Path(__file__).resolve().parents[1]
GSM8K = str(ROOT / "../shared/data/gsm8k/train_sample.jsonl")
TINY_EVAL = str(ROOT / "examples/data/tiny_eval.jsonl")
pytestmark = pytest.mark.usefixtures("torch_one_thread")


def invoke(args):
    _register()
    return CliRunner().invoke(app, [str(a) for a in args])


def assert_png(path):
    path = Path(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG" and min(im.size) > 100


@pytest.fixture(scope="module")
def cot_runs(tiny_model_dir, tmp_path_factory):
    """Two real runs on the same three GSM8K items: greedy, and a vote of three samples."""
    base = tmp_path_factory.mktemp("runs")
    runs = []
    for name, extra in (("greedy", ["--cot-samples", "1"]), ("voted", ["--cot-samples", "3"])):
        out = base / name
        result = invoke(["eval", "--task", "cot", "--data", GSM8K, "--limit", "3", "--out", out, "--model",
                         tiny_model_dir, "--max-new-tokens", "12", *extra])
        assert result.exit_code == 0, result.output
        runs.append(out)
    return runs


def test_two_runs_table_comparison_and_plots(cot_runs, tmp_path):
    out = tmp_path / "report"
    result = invoke(["report", *cot_runs, "--out", out])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split()[:6] == ["run", "task", "data", "done", "model", "accuracy"]
    assert lines[1].startswith("greedy") and lines[2].startswith("voted") and "3/3" in lines[1]
    assert "difference" in result.stdout and "mcnemar-exact" in result.stdout
    report = json.loads((out / "report.json").read_text())
    comparison = report["comparison"]["accuracy"]
    assert comparison["n"] == 3 and report["same_data"] is True
    assert comparison["p_value"] == mcnemar_exact(comparison["a_better"], comparison["b_better"])
    assert sorted(Path(p).name for p in report["plots"]) == ["difference.png", "metrics.png"]
    for p in report["plots"]:
        assert_png(p)


def test_one_run_reports_into_its_directory(cot_runs):
    result = invoke(["report", cot_runs[0], "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["labels"] == ["greedy"] and "comparison" not in data
    assert data["metrics"]["greedy"]["metrics"]["accuracy"]["n"] == 3
    assert_png(cot_runs[0] / "report" / "metrics.png")


def test_prove_run_gets_a_pass_at_k_curve(kernel, tiny_model_dir, tmp_path):
    header = tmp_path / "prelude.lean"
    header.write_text(MINI_PRELUDE)
    run = tmp_path / "prove"
    result = invoke(["eval", "--task", "prove", "--data", TINY_EVAL, "--out", run, "-k", "1", "-k", "2", "-n", "2",
                     "--header",
                     header, "-b", "kernel", "--model", tiny_model_dir, "--max-new-tokens", "8"])
    assert result.exit_code == 0, result.output
    result = invoke(["report", run, "--out", tmp_path / "rep"])
    assert result.exit_code == 0, result.output
    assert "pass@1" in result.stdout and "pass@2" in result.stdout
    assert_png(tmp_path / "rep" / "pass_at_k.png")


def known_run(path, outcomes):
    """A run directory whose records have the given per-item outcomes (the report's input format)."""
    config = run_config(task="cot", data=GSM8K, data_sha256="0" * 64, data_format="gsm8k", split=None, limit=None,
                        seed=0, item_ids=list(outcomes), model={"model": "m"}, sampling={}, options=TaskOptions(),
                        header="", lean=None)
    run = open_run(path, config, {})
    store = ResultStore(run.dir / RECORDS)
    for item_id, ok in outcomes.items():
        store.add({"id": item_id, "task": "cot", "scores": {"accuracy": ok}})
    return path


def test_paired_test_on_known_outcomes_is_flagged_significant(tmp_path):
    a = known_run(tmp_path / "a", {f"q{i}": i < 2 for i in range(12)})   # right on q0, q1
    b = known_run(tmp_path / "b", {f"q{i}": i < 12 for i in range(12)})  # right on all
    result = invoke(["report", a, b, "--out", tmp_path / "rep", "--json"])
    assert result.exit_code == 0, result.output
    acc = json.loads(result.stdout)["comparison"]["accuracy"]
    assert (acc["a_better"], acc["b_better"], acc["n"]) == (0, 10, 12)
    assert acc["p_value"] == pytest.approx(2 / 1024) and acc["significant"] is True
    assert acc["difference"] == pytest.approx(10 / 12)
    text = invoke(["report", a, b, "--out", tmp_path / "rep"]).stdout
    assert "0.0020 *" in text and "+0.833" in text
    assert_png(tmp_path / "rep" / "difference.png")


def test_not_a_run_directory(tmp_path):
    result = invoke(["report", tmp_path])
    assert result.exit_code == 2 and "is not a run directory" in result.output
