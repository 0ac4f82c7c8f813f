"""Bad input to solve / formalize / eval / report / transfer, as a user meets it: a real
subprocess, exit 2 and one sentence on stderr, before any model loads; nothing lost in batches."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from lean_prelude import MINI_PRELUDE
from solve_in_lean.runlock import RunLock

QUESTION = "Sam has two apples and gets two more. How many apples does Sam have?"
NO_MODEL = ["--model", "/nonexistent/model", "--model-backend", "transformers"]
"""A model that cannot load: a test that gets past it would say "no model available"."""


ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "LEAN_SOLVE_PROGRESS": "0", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}
"""No progress bars (ours or the model loader's) on stderr: it must hold our one sentence only."""


def run(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    env = ENV
    return subprocess.run([sys.executable, "-m", "solve_in_lean", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def one_sentence(proc: subprocess.CompletedProcess, *fragments: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("lean-solve: "), proc.stderr
    assert "Traceback" not in proc.stderr and "no model available" not in proc.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


@pytest.fixture
def header(tmp_path):
    path = tmp_path / "prelude.lean"
    path.write_text(MINI_PRELUDE)
    return path


@pytest.fixture
def problems(tmp_path):
    path = tmp_path / "problems.jsonl"
    path.write_text(json.dumps({"id": "p", "question": QUESTION}) + "\n")
    return path


@pytest.mark.parametrize("command", ["solve", "formalize"])
@pytest.mark.parametrize("text", ["", "   \n\t"])
def test_an_empty_problem_is_refused_before_any_model_loads(command, text):
    one_sentence(run(command, text, *NO_MODEL), "the problem is empty")


@pytest.mark.parametrize("command", ["solve", "formalize"])
def test_a_problem_longer_than_the_cap_is_refused(command):
    one_sentence(run(command, "x" * 300, "--max-problem-chars", "100", *NO_MODEL),
                 "300 characters, more than max_problem_chars=100", "--max-problem-chars")


@pytest.mark.parametrize("command", ["solve", "formalize"])
def test_output_paths_are_checked_before_any_model_loads(command, tmp_path, problems):
    folder = tmp_path / "folder"
    folder.mkdir()
    one_sentence(run(command, "-i", str(problems), "-o", str(folder), *NO_MODEL), "this is a directory")
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    one_sentence(run(command, "-i", str(problems), "-o", str(a_file / "out.jsonl"), *NO_MODEL),
                 "is a file, not a directory")
    one_sentence(run(command, "-i", str(problems), "-o", str(problems), *NO_MODEL), "must not be the input file")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories; run the tests as a "
                                               "non-root user to check this")
def test_a_read_only_directory_is_refused(tmp_path, problems):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    one_sentence(run("solve", "-i", str(problems), "-o", str(ro / "out.jsonl"), *NO_MODEL), "not writable")


def test_a_damaged_results_file_names_the_line(tmp_path, problems):
    out = tmp_path / "results.jsonl"
    out.write_text('{"id": "x"}\n{"id": "y", "stat\n{"id": "z"}\n')
    one_sentence(run("solve", "-i", str(problems), "-o", str(out), *NO_MODEL), "results.jsonl:2",
                 "delete or repair that line")


def test_a_second_writer_is_refused_naming_the_holder(tmp_path, problems):
    out = tmp_path / "results.jsonl"
    with RunLock(out):
        proc = run("solve", "-i", str(problems), "-o", str(out), *NO_MODEL)
    one_sentence(proc, str(os.getpid()))
    assert not out.exists()


def test_eval_report_and_transfer_output_paths(tmp_path):
    taken = tmp_path / "taken"
    taken.write_text("mine")
    gsm8k = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "gsm8k", "train_sample.jsonl")
    one_sentence(run("eval", "--task", "cot", "--data", gsm8k, "--out", str(taken), *NO_MODEL),
                 "must be a directory, and this is a file")
    assert taken.read_text() == "mine"
    one_sentence(run("report", str(tmp_path / "nothing")), "not a run directory")
    config = os.path.join(os.path.dirname(__file__), "..", "examples", "transfer_tiny.toml")
    one_sentence(run("transfer", "--mixtures", config, "--out", str(taken)), "must be a directory")


def test_config_errors_name_the_key(tmp_path):
    config = tmp_path / "c.toml"
    for text, fragment in (('[lean]\ntimeout_s = "soon"\n', "[lean] timeout_s must be"),
                           ("[lean]\ntimeout_s = inf\n", "[lean] timeout_s must be a positive, finite number"),
                           ("[solve]\nsamples = 0\n", "[solve] samples must be a whole number of at least 1"),
                           ("[lean]\nmathlib = 3\n", '[lean] mathlib must be "auto", true or false'),
                           ("[model]\ntemprature = 1\n", "unknown model config keys ['temprature']"),
                           ("[modle]\n", "unknown section(s) ['modle']")):
        config.write_text(text)
        one_sentence(run("solve", QUESTION, "--config", str(config), *NO_MODEL), str(config), fragment)


def test_vllm_without_what_it_needs_is_one_sentence(kernel, header):
    proc = run("solve", QUESTION, "-b", "kernel", "--header", str(header), "--model-backend", "vllm",
               "--model", "some/model")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert len([ln for ln in proc.stderr.splitlines() if ln.strip()]) == 1 and "vllm" in proc.stderr


@pytest.mark.usefixtures("torch_one_thread")
def test_batch_reports_unusable_rows_and_records_an_overlong_problem(kernel, tiny_model_dir, header, tmp_path):
    formal = {"kind": "compute", "header": MINI_PRELUDE, "source": QUESTION,
              "statement": "abbrev s_answer : N := sorry\ntheorem s (x : N) (h : Eq x N.four) : Eq x s_answer := by sorry\n"}
    rows = [{"id": "ok", "question": QUESTION, "formal": {**formal, "id": "ok"}},
            {"id": "blank", "question": "   "},
            {"id": "long", "question": "y" * 500},
            {"id": "ok2", "question": QUESTION, "formal": {**formal, "id": "ok2"}}]
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out.jsonl"
    proc = run("solve", "-i", str(source), "-o", str(out), "-b", "kernel", "--header", str(header), "--model",
               str(tiny_model_dir), "-n", "1", "--formalize-samples", "1", "--cot-samples", "1", "--rounds", "0",
               "--max-new-tokens", "8", "--max-problem-chars", "200", "--json")
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["unusable"] == ["blank"] and summary["problems"] == 3 and summary["finished"] == 3
    assert summary["status"]["error"] == 1
    records = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert "max_problem_chars=200" in records["long"]["error"] and "error" not in records["ok2"]


def test_eval_holds_the_lock_on_its_run_directory(tmp_path):
    run_dir = tmp_path / "run"
    gsm8k = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "gsm8k", "train_sample.jsonl")
    with RunLock(run_dir):  # the cache (on by default for eval) loads the model only when it is needed
        proc = run("eval", "--task", "cot", "--data", gsm8k, "--limit", "1", "--out", str(run_dir),
                   "--cache", str(tmp_path / "c.sqlite"), *NO_MODEL)
    one_sentence(proc, str(os.getpid()))
    assert not (run_dir / "records.jsonl").exists()


@pytest.mark.usefixtures("torch_one_thread")
def test_a_full_disk_stops_the_batch_with_one_sentence_and_a_rerun_resumes(kernel, tiny_model_dir, header,
                                                                          tmp_path):
    """`ulimit -f` (a file-size limit, no root needed) makes every write past it fail as a full disk does."""
    question = QUESTION + " He counts them again and again." * 100  # records of ~10 KB: larger than Lean's files
    formal = {"kind": "compute", "header": MINI_PRELUDE, "source": question,
              "statement": "abbrev s_answer : N := sorry\ntheorem s (x : N) (h : Eq x N.four) : Eq x s_answer := by sorry\n"}
    source = tmp_path / "in.jsonl"
    source.write_text("".join(json.dumps({"id": f"p{i}", "question": question, "formal": {**formal, "id": f"p{i}"}})
                              + "\n" for i in range(3)))
    out = tmp_path / "out.jsonl"
    args = ["solve", "-i", str(source), "-o", str(out), "-b", "kernel", "--header", str(header), "--model",
            str(tiny_model_dir), "-n", "1", "--formalize-samples", "1", "--cot-samples", "1", "--rounds", "0",
            "--max-new-tokens", "8"]
    full = subprocess.run(["bash", "-c", 'ulimit -f 8 && exec "$@"', "bash", sys.executable, "-m", "solve_in_lean",
                           *args], capture_output=True, text=True, timeout=300, env=ENV)
    one_sentence(full, "the batch stopped: File too large", "run the same command again to resume")
    again = run(*args, "--json")
    assert again.returncode == 0, again.stderr
    summary = json.loads(again.stdout)
    assert summary["finished"] == 3 and summary["status"]["error"] == 0 and summary["done_now"] >= 1
    lines = out.read_text().splitlines()
    assert sorted(json.loads(ln)["id"] for ln in lines) == ["p0", "p1", "p2"]  # none lost, none twice, no torn line
