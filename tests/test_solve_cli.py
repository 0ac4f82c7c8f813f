"""`lean-solve solve` end to end with the real tiny transformers model and the real kernel:
the model's output is gibberish, so the run must end in a clear unverified/no-answer result."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from lean_prelude import MINI_PRELUDE

QUESTION = "Sam has two apples and gets two more. How many apples does Sam have?"
FAST = ["-n", "1", "--formalize-samples", "1", "--cot-samples", "1", "--rounds", "0", "--max-new-tokens", "8"]


@pytest.fixture
def header(tmp_path):
    path = tmp_path / "header.lean"
    path.write_text(MINI_PRELUDE)
    return path


def cli(*args, timeout=300, **kw):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LEAN_SOLVE_PROGRESS": "0"}
    return subprocess.run([sys.executable, "-m", "solve_in_lean", "solve", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, **kw)


def test_tiny_model_end_to_end_is_a_clear_unverified_result(kernel, tiny_model_dir, header):
    proc = cli(QUESTION, "-b", "kernel", "--header", str(header), "--model", str(tiny_model_dir),
               "--model-backend", "transformers", "--json", *FAST)
    assert proc.returncode == 1, proc.stderr  # not verified: exit 1, not a crash
    rec = json.loads(proc.stdout)
    assert rec["status"] in ("unverified", "no answer") and rec["verified"] is False
    assert rec["informal"]["text"].startswith(("The answer is", "No answer"))
    assert "unverified" in rec["informal"]["text"] or rec["answer"] is None
    assert "Traceback" not in proc.stderr
    assert set(rec["timings"]) >= {"formalize_s", "solve_s", "explain_s", "model_s", "lean_s", "total_s"}


def test_missing_model_says_how_to_get_one(kernel, header, tmp_path):
    proc = cli(QUESTION, "-b", "kernel", "--header", str(header), "--model", str(tmp_path / "nope"),
               "--model-backend", "transformers")
    assert proc.returncode == 2
    assert "no model available" in proc.stderr and "Traceback" not in proc.stderr


def test_header_that_needs_mathlib_is_refused_clearly(kernel):
    proc = cli(QUESTION, "-b", "kernel")
    assert proc.returncode == 2
    assert "header does not elaborate" in proc.stderr and "lean-solve setup --mathlib" in proc.stderr


def test_batch_resumes_after_kill_without_losing_or_redoing(kernel, tiny_model_dir, header, tmp_path):
    problems = tmp_path / "problems.jsonl"
    formal = {"kind": "compute", "header": MINI_PRELUDE, "source": QUESTION,
              "statement": "abbrev s_answer : N := sorry\ntheorem s (x : N) (h : Eq x N.four) : Eq x s_answer := by sorry\n"}
    rows = [{"id": f"p{i}", "question": QUESTION, "formal": {**formal, "id": f"p{i}"}} for i in range(6)]
    problems.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "results.jsonl"
    args = ["--input", str(problems), "--output", str(out), "-b", "kernel", "--header", str(header),
            "--model", str(tiny_model_dir), "--model-backend", "transformers", *FAST]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LEAN_SOLVE_PROGRESS": "0"}
    proc = subprocess.Popen([sys.executable, "-m", "solve_in_lean", "solve", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and (not out.exists() or out.read_text().count("\n") < 2):
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    first = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    assert 2 <= len(first) < 6, "the run should have been killed part-way"
    done = cli(*args, "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["resumed"] == len(first) and summary["done_now"] == 6 - len(first)
    final = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["id"] for r in final) == [f"p{i}" for i in range(6)]
    assert final[: len(first)] == first  # finished results untouched
    assert all(r["status"] in ("unverified", "no answer", "verified") for r in final)


@pytest.mark.parametrize("args, message", [
    ([], "either a problem text or --input"),
    (["x", "--input", "f.jsonl"], "either a problem text or --input"),
    (["--input", "f.jsonl"], "--input needs --output"),
    (["x", "-n", "0"], "--samples must be a whole number of at least 1"),
    (["x", "--timeout", "inf"], "--timeout must be a positive, finite number"),
])
def test_bad_arguments_exit_2(args, message):
    proc = cli(*args)
    assert proc.returncode == 2 and message in proc.stderr


def test_bad_batch_file(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "question": "q"}\nnot json\n{"id": "b"}\n')
    proc = cli("--input", str(bad), "--output", str(tmp_path / "o.jsonl"), "-b", "kernel")
    assert proc.returncode == 2 and "bad.jsonl:2" in proc.stderr
