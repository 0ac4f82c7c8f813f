"""`lean-solve formalize`: argument handling, clear failures, the real tiny model through the
command, and resuming a batch whose process was SIGKILLed (scripted generator, real kernel)."""

from __future__ import annotations

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
from solve_in_lean.cli import app, _register
from solve_in_lean.problems import english_problems, load_items
from solve_in_lean.records import read_jsonl

TESTS = Path(__file__).resolve().parent
pytestmark = pytest.mark.usefixtures("kernel")


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "solve_in_lean", "formalize", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_argument_errors_exit_2_with_one_sentence(tmp_path):
    both = cli("What is 1 + 1?", "--input", "x.jsonl")
    assert both.returncode == 2 and "either a problem text or --input" in both.stderr
    inp = tmp_path / "in.jsonl"
    inp.write_text('{"id": "a", "question": "What is 1 + 1?"}\n')
    no_out = cli("--input", str(inp))
    assert no_out.returncode == 2 and "--input needs --output" in no_out.stderr
    assert "Traceback" not in both.stderr + no_out.stderr


def test_header_that_cannot_elaborate_is_reported_before_any_model_is_loaded():
    proc = cli("What is 1 + 1?", "--backend", "kernel", "--model", "/no/such/model")
    assert proc.returncode == 2
    assert "the header does not elaborate with the kernel Lean backend" in proc.stderr
    assert "--header FILE" in proc.stderr and "no model" not in proc.stderr


def test_missing_model_says_which_and_how_to_get_it(tmp_path):
    header = tmp_path / "prelude.lean"
    header.write_text(MINI_PRELUDE)
    proc = cli("What is 1 + 1?", "--backend", "kernel", "--header", str(header), "--model", str(tmp_path / "none"))
    assert proc.returncode == 2, proc.stderr
    assert "no model available (transformers backend" in proc.stderr and str(tmp_path / "none") in proc.stderr
    assert "--model" in proc.stderr.split(").", 1)[1] and "Traceback" not in proc.stderr


def test_read_problems_fields_and_errors(tmp_path):
    f = tmp_path / "mix.jsonl"
    f.write_text('{"id": 1, "question": "Q?"}\n{"id": "b", "problem": "P?", "dataset": "math"}\n'
                 '{"name": "c", "informal_statement": "Show S.", "kind": "prove"}\n{"id": "d", "answer": 3}\n')
    items, unusable = english_problems(load_items(f))
    assert [(it["id"], it["question"], it["dataset"], it["meta"].get("kind")) for it in items] == [
        ("1", "Q?", "mix", None), ("b", "P?", "math", None), ("c", "Show S.", "mix", "prove")]
    assert unusable == ["d"]  # reported by the command, not silently dropped
    f.write_text('{"id": "a", "question": "Q?"}\n{"id": "a", "question": "R?"}\n')
    with pytest.raises(ValueError, match="appears twice"):
        english_problems(load_items(f))
    f.write_text('{"id": "a", "answer": 3}\n')
    with pytest.raises(ValueError, match="no row of the file has a problem text"):
        english_problems(load_items(f))


@pytest.mark.slow
def test_tiny_model_through_the_command_reports_that_nothing_elaborated(tiny_model_dir, tmp_path):
    header = tmp_path / "prelude.lean"
    header.write_text(MINI_PRELUDE)
    _register()
    args = ["formalize", "Natalia sold 48 clips in April and half as many in May. How many in all?", "--formalize-samples", "2",
            "--rounds", "0", "--backend", "kernel", "--header", str(header), "--model", str(tiny_model_dir),
            "--max-new-tokens", "16"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert result.stdout.startswith("No candidate elaborated: 2 candidates over 0 repair rounds")


BATCH_SCRIPT = """
import json, sys, time
sys.path.insert(0, {tests!r})
from lean_prelude import MINI_PRELUDE
from solve_in_lean.cli.formalize import formalize_batch
from solve_in_lean.options import SolveOptions
from solve_in_lean.problems import english_problems, load_items
from solve_in_lean.lean import get_checker
from solve_in_lean.models.base import SamplingParams
from solve_in_lean.models.scripted import ScriptedGenerator

source, output, log, delay = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
GOOD = "```lean\\nabbrev a_answer : N := sorry\\ntheorem t (x : N) (h : Eq x N.two) : Eq x a_answer := by sorry\\n```"

def answer(prompt, i):
    content = prompt[-1]["content"]
    if content.startswith("Formalize this"):
        with open(log, "a") as f:
            f.write(json.dumps(content.split("Problem: ", 1)[1]) + "\\n")
        time.sleep(delay)
        return GOOD
    return "Verdict: YES" if content.startswith("Original problem:") else "Find x, where x is two."

formalize_batch(english_problems(load_items(source))[0], output, ScriptedGenerator(answer), get_checker("kernel"),
                params=SamplingParams(), progress=False, header=MINI_PRELUDE,
                options=SolveOptions(formalize_samples=1, rounds=0))
"""


def test_killed_batch_resumes_without_redoing_or_losing_problems(tmp_path):
    problems = tmp_path / "problems.jsonl"
    texts = {f"q{i}": f"Problem number {i}: what is two?" for i in range(8)}
    problems.write_text("".join(json.dumps({"id": k, "question": v}) + "\n" for k, v in texts.items()))
    script = tmp_path / "batch.py"
    script.write_text(BATCH_SCRIPT.format(tests=str(TESTS)))
    out, log1, log2 = tmp_path / "out.jsonl", tmp_path / "log1", tmp_path / "log2"
    first = subprocess.Popen([sys.executable, str(script), str(problems), str(out), str(log1), "0.4"])
    deadline = time.time() + 60
    while time.time() < deadline and (not out.exists() or out.read_text().count("\n") < 3):
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    done_first = {r["id"]: r for r in read_jsonl(out)}
    assert 3 <= len(done_first) < 8, "the first run should be killed part-way"
    second = subprocess.run([sys.executable, str(script), str(problems), str(out), str(log2), "0"],
                            capture_output=True, text=True, timeout=120)
    assert second.returncode == 0, second.stderr
    records = list(read_jsonl(out, strict=True))
    assert sorted(r["id"] for r in records) == sorted(texts)  # none lost, none twice
    asked_again = {json.loads(line) for line in log2.read_text().splitlines()}
    assert asked_again.isdisjoint(texts[i] for i in done_first)  # nothing finished was redone
    assert asked_again == {texts[i] for i in texts if i not in done_first}  # the one in flight included
    assert all(r["stats"]["elaborated"] == 1 and r["dataset"] == "problems" for r in records)
    for r in records:
        if r["id"] in done_first:
            assert r == done_first[r["id"]]
