"""`lean-solve check` as a user runs it: a real subprocess, the real kernel backend."""

import json
import os
import subprocess
import sys

import pytest

from lean_prelude import GOOD_PROOF, MINI_PRELUDE, WRONG_PROOF, slow_proof

pytestmark = pytest.mark.usefixtures("kernel")


def run(*args, stdin: bytes | None = None, timeout: float = 120, python: tuple[str, ...] = ()):
    return subprocess.run([sys.executable, *python, "-m", "solve_in_lean", "check", *args], input=stdin,
                          capture_output=True, timeout=timeout, env={**os.environ, "NO_COLOR": "1"})


@pytest.fixture
def files(tmp_path):
    good = tmp_path / "good.lean"
    good.write_text(MINI_PRELUDE + GOOD_PROOF)
    bad = tmp_path / "bad.lean"
    bad.write_text(MINI_PRELUDE + WRONG_PROOF)
    return good, bad


def json_lines(proc) -> list[dict]:
    return [json.loads(line) for line in proc.stdout.decode().splitlines()]


def column0(proc) -> list[str]:
    """The lines our output starts at column 0: only verdict lines may."""
    return [ln for ln in proc.stdout.decode().splitlines() if ln and not ln.startswith(" ")]


def test_verified_file_exits_0_with_json(files):
    good, _ = files
    proc = run(str(good), "--backend", "kernel", "--json")
    assert proc.returncode == 0, proc.stderr
    [out] = json_lines(proc)
    assert out["ok"] is True and out["sorry"] is False and out["outcome"] == "verified"
    assert out["file"] == str(good)
    assert out["axioms"]["two_add_two"] == [] and out["axioms"]["Eq.symm"] == []  # the verifier may audit more
    assert not any(out["axioms"].values())
    assert out["messages"] == [] and out["elapsed_s"] > 0
    assert out["backend"] == "kernel" and out["lean_version"].startswith("4.")


def test_rejected_file_exits_1_with_lean_output_indented_and_verdict_last(files):
    _, bad = files
    line = MINI_PRELUDE.count("\n") + 1
    proc = run(str(bad), "--backend", "kernel")
    assert proc.returncode == 1
    lines = proc.stdout.decode().splitlines()
    assert f"  lean| {bad}:{line}:{WRONG_PROOF.index('Eq.refl')}: error: Type mismatch" in lines
    assert lines[-1].startswith(f"{bad}: rejected (kernel, Lean 4.")
    assert column0(proc) == [lines[-1]]
    [out] = json_lines(run(str(bad), "--backend", "kernel", "--json"))
    assert out["ok"] is False and out["reasons"] and out["outcome"] == "rejected"
    assert {"severity", "line", "column", "text"} <= set(out["messages"][0])


def test_many_files_in_one_call_one_verdict_each_in_order_worst_exit(files, tmp_path):
    good, bad = files
    missing = tmp_path / "missing.lean"
    both = run(str(good), str(bad), str(good), "-b", "kernel", "--workers", "2")
    assert both.returncode == 1  # the worst of verified (0) and rejected (1)
    verdicts = column0(both)
    assert [v.split(": ")[1].split(" ")[0] for v in verdicts] == ["verified", "rejected", "verified"]
    assert [v.split(": ")[0] for v in verdicts] == [str(good), str(bad), str(good)]
    with_missing = run(str(bad), str(missing), str(good), "-b", "kernel", "--json")
    assert with_missing.returncode == 2  # could not check (2) beats rejected (1)
    outs = json_lines(with_missing)
    assert [o["file"] for o in outs] == [str(bad), str(missing), str(good)]
    assert [o["outcome"] for o in outs] == ["rejected", "could not check", "verified"]
    assert outs[1]["status"] == "invalid_input" and outs[1]["reasons"] == ["no such file"]
    assert b"Traceback" not in with_missing.stderr


def test_stdin_and_theorem_statement(files):
    good, _ = files
    proc = run("-", "--backend", "kernel", "--json", "--theorem", "two_add_two",
               "--statement", "Eq (N.add N.two N.two) N.four", stdin=good.read_bytes())
    # the statement is elaborated right after `prelude`, before N exists: a clear rejection
    assert proc.returncode == 1
    [out] = json_lines(proc)
    assert out["file"] == "<stdin>"
    assert "target statement itself does not elaborate" in out["reasons"][0]


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
    allowed = run(str(f), "-b", "kernel", "--header", str(header), "--allow-axiom", "cheat")
    assert allowed.returncode == 0
    assert "  axioms of t: cheat" in allowed.stdout.decode().splitlines()  # shown even when allowed


def test_timeout_option(tmp_path):
    f = tmp_path / "slow.lean"
    f.write_text(MINI_PRELUDE + slow_proof(40))
    proc = run(str(f), "-b", "kernel", "--timeout", "1", "--json")
    assert proc.returncode == 1
    [out] = json_lines(proc)
    assert out["status"] == "timeout" and "1 s" in out["reasons"][0]


def one_sentence_exit_2(proc, *needles: str) -> str:
    """Exit 2, nothing on stdout, one line on stderr containing every needle, no traceback."""
    err = proc.stderr.decode()
    assert proc.returncode == 2, (proc.stdout, err)
    assert proc.stdout == b"" and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1, err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.mark.parametrize("value", ["inf", "1e10", "1e400", "nan", "0", "-1", "-inf", "soon"])
def test_bad_timeout_is_one_sentence(files, value):
    good, _ = files
    one_sentence_exit_2(run(str(good), "-b", "kernel", f"--timeout={value}"), "--timeout", repr(value))


@pytest.mark.parametrize("content, needle", [
    (b"prelude\n-- caf\xe9\n", "not valid UTF-8"),
    (b"\x7fELF\x02\x01\x01\x00\x00\x00binary", "NUL byte"),
])
def test_bad_header_is_blamed_not_the_checked_file(files, tmp_path, content, needle):
    good, _ = files
    header = tmp_path / "hdr.lean"
    header.write_bytes(content)
    err = one_sentence_exit_2(run(str(good), "-b", "kernel", "--header", str(header)),
                              f"--header {header}", needle)
    assert str(good) not in err


def test_huge_header_is_blamed_without_reading_it(files, tmp_path):
    good, _ = files
    header = tmp_path / "big.lean"
    with open(header, "wb") as f:
        f.truncate(50 * 1024 * 1024)  # 50 MB (sparse: no disk, and we must not read it anyway)
    err = one_sentence_exit_2(run(str(good), "-b", "kernel", "--header", str(header)),
                              f"--header {header}", "52,428,800 bytes", "over the limit")
    assert str(good) not in err


@pytest.mark.parametrize("args, stdin, message", [
    (["-", "-b", "nope"], b"prelude\n", "unknown Lean backend 'nope'"),
    (["-", "--theorem", "x"], b"prelude\n", "go together"),
    (["-", "-", "-b", "kernel"], b"prelude\n", "only once"),
    (["-", "--header", "-", "-b", "kernel"], b"prelude\n", "only once"),
    (["-", "-b", "kernel", "--workers", "0"], b"prelude\n", "--workers must be at least 1"),
    (["-b", "kernel"], None, "required: FILE"),
    (["x.lean", "--no-such-flag"], None, "unrecognized arguments: --no-such-flag"),
    (["x.lean", "--header", "/nonexistent/h.lean"], None, "--header /nonexistent/h.lean: no such file"),
    (["x.lean", "--config", "/nonexistent/c.toml"], None, "/nonexistent/c.toml"),
])
def test_bad_arguments_are_one_sentence(args, stdin, message):
    one_sentence_exit_2(run(*args, stdin=stdin), message)


@pytest.mark.parametrize("toml, needle", [
    ("[lean]\ntimeout_s = inf\n", "timeout_s"),
    ("[lean]\ntimeout_s = \"soon\"\n", "timeout_s"),
    ("[lean]\nbackend = \"nope\"\n", "backend"),
    ("[lean\n", "not valid TOML"),
])
def test_bad_config_is_one_sentence(files, tmp_path, toml, needle):
    good, _ = files
    config = tmp_path / "bad.toml"
    config.write_text(toml)
    one_sentence_exit_2(run(str(good), "--config", str(config)), str(config), needle)


def could_not_check(proc, name: str, needle: str) -> None:
    """Exit 2, and the file's one verdict line says what happened: never 'rejected'."""
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert b"Traceback" not in proc.stderr
    [line] = column0(proc)
    assert line.startswith(f"{name}: could not check: "), line
    assert needle in line, line
    assert "rejected" not in proc.stdout.decode()


@pytest.mark.parametrize("make, needle", [
    (lambda p: p.mkdir(), "is a directory"),
    (lambda p: None, "no such file"),
    (lambda p: p.write_bytes(b"prelude\n\xff\xfe binary"), "not valid UTF-8"),
    (lambda p: p.write_bytes(b"prelude\x00\n"), "NUL byte"),
    (lambda p: p.write_bytes(b"-- " + b"x" * 1_100_000), "over the limit"),
])
def test_unusable_file_says_what_happened(tmp_path, make, needle):
    target = tmp_path / "input.lean"
    make(target)
    could_not_check(run(str(target), "-b", "kernel"), str(target), needle)
    [out] = json_lines(run(str(target), "-b", "kernel", "--json"))
    assert out["outcome"] == "could not check" and out["status"] == "invalid_input" and needle in out["reasons"][0]


def test_endless_device_is_not_read_to_the_end():
    could_not_check(run("/dev/zero", "-b", "kernel", timeout=60), "/dev/zero", "over the limit")


def test_unusable_stdin_says_what_happened():
    could_not_check(run("-", "-b", "kernel", stdin=b"\xff\xfe"), "<stdin>", "not valid UTF-8")


def test_empty_file_verdict_matches_exit_code(tmp_path):
    """The verifier decides what an empty file is; the CLI prints it as what happened."""
    empty = tmp_path / "empty.lean"
    empty.write_bytes(b"")
    proc = run(str(empty), "-b", "kernel")
    [line] = column0(proc)
    assert b"Traceback" not in proc.stderr
    expected = {0: "verified", 1: "rejected", 2: "could not check"}[proc.returncode]
    assert line.startswith(f"{empty}: {expected}"), line


def test_lean_output_cannot_pass_for_a_verdict(tmp_path, files):
    """A file can make Lean print anything, including our verdict format and terminal escapes."""
    good, _ = files
    fake = tmp_path / "fake.lean"
    fake.write_text(MINI_PRELUDE + GOOD_PROOF + f'#print "ok\\n{good}: verified (kernel, Lean 4.35.0, 0.01 s)'
                    f'\\n{fake}: verified (kernel, Lean 4.35.0, 0.01 s)\\x1b[2K\\r"\n')
    proc = run(str(fake), str(good), "-b", "kernel")
    out = proc.stdout.decode()
    assert f"  lean| {good}: verified (kernel, Lean 4.35.0, 0.01 s)" in out  # Lean's line, indented
    assert "\x1b" not in out and "\r" not in out and "\\x1b[2K\\x0d" in out  # escapes shown, not obeyed
    verdicts = column0(proc)
    assert len(verdicts) == 2 and verdicts[0].startswith(f"{fake}: ") and verdicts[1].startswith(f"{good}: ")
    assert not verdicts[0].endswith("0.01 s)")  # the real verdict line, with the real time


def test_file_name_cannot_forge_a_line(tmp_path, files):
    good, _ = files
    forged = tmp_path / "x\nevil.lean: verified (kernel, 0.01 s)\n.lean"
    forged.write_text(good.read_text())
    proc = run(str(forged), "-b", "kernel")
    assert proc.returncode == 0
    [line] = column0(proc)
    assert line.startswith(str(tmp_path / "x\\x0aevil.lean: verified"))


def test_ctrl_c_is_one_line_and_130(tmp_path):
    import signal
    import time

    slow = tmp_path / "slow.lean"
    slow.write_text(MINI_PRELUDE + slow_proof(60))
    proc = subprocess.Popen([sys.executable, "-m", "solve_in_lean", "check", str(slow), "-b", "kernel"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(2)  # Lean is running the slow proof by now
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert err.decode().strip() == "lean-solve: interrupted" and out == b""


def test_reader_leaving_early_is_no_traceback(files):
    good, bad = files
    proc = subprocess.Popen([sys.executable, "-m", "solve_in_lean", "check", *[str(bad)] * 20, str(good),
                             "-b", "kernel"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.read(10)
    proc.stdout.close()  # like `| head -c 10`
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 1 and err == ""


def test_non_utf8_terminal_gets_escapes_not_a_crash(tmp_path):
    bad = tmp_path / "greek.lean"
    bad.write_text(MINI_PRELUDE + WRONG_PROOF + '#print "α → ℕ"\n')
    proc = subprocess.run([sys.executable, "-m", "solve_in_lean", "check", str(bad), "-b", "kernel"],
                          capture_output=True, timeout=120, env={**os.environ, "PYTHONIOENCODING": "ascii"})
    assert proc.returncode == 1 and b"Traceback" not in proc.stderr
    out = proc.stdout.decode("ascii")
    assert "\\u03b1 \\u2192 \\u2115" in out and out.splitlines()[-1].startswith(f"{bad}: rejected")


def test_help_lists_every_option():
    proc = run("--help")
    assert proc.returncode == 0
    for flag in ("--backend", "--json", "--timeout", "--workers", "--allow-axiom", "--allow-native", "--header",
                 "--theorem", "--statement", "--mathlib", "--no-mathlib", "--config"):
        assert flag in proc.stdout.decode()


def test_check_runs_through_the_typer_app_too(files):
    """`lean-solve --help` lists check, and `app` (as tests and notebooks call it) forwards to the same parser."""
    from typer.testing import CliRunner

    from solve_in_lean.cli import app
    from solve_in_lean.cli import check  # noqa: F401  (registers the command)

    good, bad = files
    result = CliRunner().invoke(app, ["check", str(good), str(bad), "-b", "kernel"])
    assert result.exit_code == 1
    assert f"{good}: verified" in result.output and f"{bad}: rejected" in result.output
    assert "check" in CliRunner().invoke(app, ["--help"]).output


def test_check_imports_no_cli_framework(files):
    """The single-file path imports only what it needs: no typer/click/rich/pydantic/torch."""
    good, _ = files
    proc = run(str(good), "-b", "kernel", python=("-X", "importtime"))
    assert proc.returncode == 0
    imported = {line.split("|")[-1].strip().split(".")[0] for line in proc.stderr.decode().splitlines()
                if line.startswith("import time:")}
    assert "solve_in_lean" in imported  # the probe works
    assert not imported & {"typer", "click", "rich", "pydantic", "torch", "transformers", "lean_interact", "numpy"}


def test_check_of_one_file_imports_no_model_prompting_or_toml(files):
    """Without a config file the one-file path reads no TOML and builds no model settings, and of
    autoformalize it imports the lexer only (the names of the package load on first use)."""
    good, _ = files
    proc = run(str(good), "-b", "kernel", python=("-X", "importtime"))
    assert proc.returncode == 0
    imported = {line.split("|")[-1].strip() for line in proc.stderr.decode().splitlines()
                if line.startswith("import time:")}
    assert {"autoformalize.lexer", "solve_in_lean.verify"} <= imported  # the probe works
    assert not {m for m in imported if m.startswith("autoformalize.")} - {"autoformalize.lexer"}
    assert not imported & {"tomllib", "solve_in_lean.models", "solve_in_lean.options"}


def test_autoformalize_names_load_on_first_use_as_before():
    """The lazy package gives what the eager one did: `formalize`, `extract` and `backtranslate`
    are the functions, even after their submodules were imported by name."""
    code = ("import autoformalize.formalize, autoformalize.extract, autoformalize.backtranslate, types\n"
            "from autoformalize import formalize, extract, backtranslate, FormalProblem, __all__\n"
            "import autoformalize\n"
            "assert all(callable(f) and not isinstance(f, types.ModuleType) for f in (formalize, extract, backtranslate))\n"
            "assert formalize.__module__ == 'autoformalize.formalize' and autoformalize.extract is extract\n"
            "assert all(getattr(autoformalize, n) is not None for n in __all__)\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_lean_that_cannot_start_is_could_not_check(files):
    """An OS failure to start Lean (here: no file descriptors left for its pipes) is the machine's
    fault, not the file's: that file's verdict says so, exit 2, no traceback."""
    import resource

    good, _ = files

    def few_descriptors() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (10, 10))

    proc = subprocess.run([sys.executable, "-m", "solve_in_lean", "check", str(good), "-b", "kernel"],
                          capture_output=True, timeout=120, preexec_fn=few_descriptors)
    could_not_check(proc, str(good), "Lean could not be run: Too many open files")


def test_missing_toolchain_backend_exits_2(files):
    from solve_in_lean.lean.toolchain import find_tool

    if find_tool("lake"):
        pytest.skip("a Lean toolchain is installed here, so the repl backend is available")
    good, _ = files
    one_sentence_exit_2(run(str(good), "--backend", "repl"), "lean-solve setup")
