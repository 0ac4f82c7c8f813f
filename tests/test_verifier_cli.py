"""`lean-solve verify-answer` end to end: the real tiny transformers model (its output is
gibberish, so Lean can confirm nothing: a clear `unknown`, exit 1) and the real kernel; bad
input is one sentence and exit 2 before any model loads."""

import json
import os
import subprocess
import sys

import pytest

from lean_prelude import MINI_PRELUDE

STATEMENT = ("abbrev sum_answer : N := sorry\n"
             "theorem two_sum (x : N) (h : Eq x (N.add N.two N.two)) : Eq x sum_answer := by sorry\n")
FAST = ["-n", "1", "--rounds", "0", "--max-new-tokens", "8", "--formalize-samples", "1", "--no-judge"]


@pytest.fixture
def files(tmp_path):
    (tmp_path / "header.lean").write_text(MINI_PRELUDE)
    (tmp_path / "stmt.lean").write_text(STATEMENT)
    return tmp_path


def cli(*args, timeout=300):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "LEAN_SOLVE_PROGRESS": "0"}
    return subprocess.run([sys.executable, "-m", "solve_in_lean", "verify-answer", *args], capture_output=True,
                          text=True, timeout=timeout, env=env)


def test_tiny_model_gives_a_clear_unknown(kernel, tiny_model_dir, files):
    proc = cli("Two plus two?", "--answer", "4", "--statement", str(files / "stmt.lean"), "-b", "kernel",
               "--header", str(files / "header.lean"), "--model", str(tiny_model_dir), "--model-backend",
               "transformers", "--json", *FAST)
    assert proc.returncode == 1, proc.stderr
    rec = json.loads(proc.stdout)
    assert rec["verdict"] == "unknown" and rec["evidence"] is None and rec["lean_value"] == "(N.four)"
    assert rec["statement_from"] == "given" and rec["reasons"]
    assert {a["role"] for a in rec["attempts"]} == {"confirm", "refute"}
    assert "Traceback" not in proc.stderr


def test_formalizing_with_the_tiny_model_ends_in_unknown(kernel, tiny_model_dir, files):
    proc = cli("Two plus two?", "--answer", "4", "-b", "kernel", "--header", str(files / "header.lean"),
               "--model", str(tiny_model_dir), "--model-backend", "transformers", *FAST)
    assert proc.returncode == 1, proc.stderr
    assert proc.stdout.startswith("unknown: the answer 4") and "Traceback" not in proc.stderr


@pytest.mark.parametrize("answer, statement, message", [
    ("N.four)) → False ∧ ((True", STATEMENT, "unbalanced brackets"),
    ("3.5", STATEMENT, "no numeral in the prelude's N"),
    ("4", "theorem t : Eq N.zero N.zero := by sorry\n", "has no answer to check"),
    ("4", "abbrev a_answer : N := sorry\ntheorem t : Eq N.zero a_answr := by sorry\n", "does not elaborate"),
    ("4", "just words", "not a Lean theorem"),
])
def test_bad_input_is_one_sentence_before_the_model(kernel, files, answer, statement, message):
    (files / "bad.lean").write_text(statement)
    proc = cli("Two plus two?", "--answer", answer, "--statement", str(files / "bad.lean"), "-b", "kernel",
               "--header", str(files / "header.lean"), "--model", str(files / "no-model"),
               "--model-backend", "transformers")
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and "no model available" not in proc.stderr
