"""`lean-solve check` as a user runs it: a real subprocess, the real kernel backend."""

import json
import subprocess
import sys

import pytest

from lean_prelude import GOOD_PROOF, MINI_PRELUDE, WRONG_PROOF, slow_proof

pytestmark = pytest.mark.usefixtures("kernel")


def run(*args, stdin: bytes | None = None, timeout: float = 120):
    return subprocess.run([sys.executable, "-m", "solve_in_lean", "check", *args], input=stdin,
                          capture_output=True, timeout=timeout)


@pytest.fixture
def files(tmp_path):
    good = tmp_path / "good.lean"
    good.write_text(MINI_PRELUDE + GOOD_PROOF)
    bad = tmp_path / "bad.lean"
    bad.write_text(MINI_PRELUDE + WRONG_PROOF)
    return good, bad


def test_verified_file_exits_0_with_json(files):
    good, _ = files
    proc = run(str(good), "--backend", "kernel", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["ok"] is True and out["sorry"] is False
    assert out["axioms"] == {"Eq.symm": [], "two_add_two": []}
    assert out["messages"] == [] and out["elapsed_s"] > 0
    assert out["backend"] == "kernel" and out["lean_version"].startswith("4.")


def test_rejected_file_exits_1_with_positions(files):
    _, bad = files
    line = MINI_PRELUDE.count("\n") + 1
    proc = run(str(bad), "--backend", "kernel")
    assert proc.returncode == 1
    text = proc.stdout.decode()
    assert f"{bad}:{line}:{WRONG_PROOF.index('Eq.refl')}: error: Type mismatch" in text
    assert "rejected" in text
    out = json.loads(run(str(bad), "--backend", "kernel", "--json").stdout)
    assert out["ok"] is False and out["reasons"]
    assert {"severity", "line", "column", "text"} <= set(out["messages"][0])


def test_stdin_and_theorem_statement(files):
    good, _ = files
    proc = run("-", "--backend", "kernel", "--json", "--theorem", "two_add_two",
               "--statement", "Eq (N.add N.two N.two) N.four", stdin=good.read_bytes())
    # the statement is elaborated right after `prelude`, before N exists: a clear rejection
    assert proc.returncode == 1
    assert "target statement itself does not elaborate" in json.loads(proc.stdout)["reasons"][0]


def test_header_file_and_target(tmp_path):
    header = tmp_path / "header.lean"
    header.write_text(MINI_PRELUDE)
    code = tmp_path / "proof.lean"
    code.write_text(GOOD_PROOF)
    ok = run(str(code), "-b", "kernel", "--header", str(header), "--theorem", "two_add_two",
             "--statement", "Eq (N.add N.two N.two) N.four")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    wrong = run(str(code), "-b", "kernel", "--header", str(header), "--theorem", "two_add_two",
                "--statement", "Eq (N.add N.two N.two) N.three")
    assert wrong.returncode == 1


def test_allow_axiom(tmp_path):
    f = tmp_path / "cheat.lean"
    f.write_text("theorem t : False := cheat\n")
    header = tmp_path / "h.lean"
    header.write_text(MINI_PRELUDE + "axiom cheat : False\n")
    assert run(str(f), "-b", "kernel", "--header", str(header)).returncode == 1
    assert run(str(f), "-b", "kernel", "--header", str(header), "--allow-axiom", "cheat").returncode == 0


def test_timeout_option(tmp_path):
    f = tmp_path / "slow.lean"
    f.write_text(MINI_PRELUDE + slow_proof(40))
    proc = run(str(f), "-b", "kernel", "--timeout", "1", "--json")
    assert proc.returncode == 1
    out = json.loads(proc.stdout)
    assert out["status"] == "timeout" and "1 s" in out["reasons"][0]


@pytest.mark.parametrize("args, stdin, message", [
    (["/nonexistent.lean"], None, "no such file"),
    (["-", "-b", "nope"], b"prelude\n", "unknown Lean backend"),
    (["-", "--theorem", "x"], b"prelude\n", "go together"),
    (["-", "-b", "kernel"], b"\xff\xfe binary", "not valid UTF-8"),
    (["-", "-b", "kernel"], b"-- " + b"x" * 1_100_000, "over the limit"),
    (["-", "-b", "kernel", "--timeout", "0"], b"prelude\n", "positive"),
])
def test_could_not_run_exits_2_with_one_sentence(args, stdin, message):
    proc = run(*args, stdin=stdin)
    assert proc.returncode == 2
    err = (proc.stderr + proc.stdout).decode()
    assert message in err
    assert "Traceback" not in err


def test_missing_toolchain_backend_exits_2(files, monkeypatch):
    from solve_in_lean.lean.toolchain import find_tool

    if find_tool("lake"):
        pytest.skip("a Lean toolchain is installed here, so the repl backend is available")
    good, _ = files
    proc = run(str(good), "--backend", "repl")
    assert proc.returncode == 2
    assert "lean-solve setup" in proc.stderr.decode()
