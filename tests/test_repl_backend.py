"""The repl backend end to end: lean-solve -> the real lean-interact classes and subprocess
plumbing -> the REPL-protocol launcher -> the real bundled Lean, which decides every verdict.
Only the launchers (tests/launchers/) stand in for the toolchain that cannot be downloaded here."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest

from launchers.toolchain import install_launchers
from lean_prelude import GOOD_PROOF, MINI_PRELUDE, WRONG_PROOF, slow_proof
from solve_in_lean.lean import LeanUnavailable, get_checker


@pytest.fixture
def launchers(tmp_path, monkeypatch):
    return install_launchers(tmp_path, monkeypatch)


@pytest.fixture
def repl(launchers):
    with get_checker("repl", timeout_s=60) as checker:
        yield checker


def commands(launchers):
    return [json.loads(r) for r in launchers.requests()]


def test_verdicts_come_from_lean_and_the_header_is_elaborated_once(repl, launchers):
    assert repl.check(GOOD_PROOF, header=MINI_PRELUDE).status == "ok"
    bad = repl.check(WRONG_PROOF, header=MINI_PRELUDE)
    assert bad.status == "error" and bad.errors[0].line == 1 and "mismatch" in bad.errors[0].text
    assert bad.lean_version == "4.35.0" and bad.backend == "repl"
    sent = commands(launchers)
    assert [c["cmd"] for c in sent] == [MINI_PRELUDE, GOOD_PROOF, WRONG_PROOF]
    assert "env" not in sent[0] and sent[1]["env"] == sent[2]["env"] == 0  # the header's environment, reused


def test_own_header_is_split_and_positions_are_in_the_whole_file(repl, launchers):
    bad = repl.check(MINI_PRELUDE + WRONG_PROOF)
    assert bad.status == "error"
    assert bad.errors[0].line == MINI_PRELUDE.count("\n") + 1
    assert commands(launchers)[0]["cmd"] == "prelude\n"


def test_empty_body_and_header_only_file_never_send_an_empty_command(repl, launchers):
    assert repl.check("", header=MINI_PRELUDE).status == "ok"
    assert repl.check("prelude\n").status == "ok"
    assert repl.check("  \n").status == "ok"
    broken = repl.check("", header="prelude\ntheorem x : Nope := Nope\n")
    assert broken.status == "error" and broken.messages[0].in_header
    assert all(c["cmd"].strip() for c in commands(launchers))


def test_timeout_restarts_the_repl_and_the_next_check_replays_the_header(repl, launchers):
    slow = repl.check(slow_proof(), header=MINI_PRELUDE, timeout_s=2)
    assert slow.status == "timeout"
    assert not any("repl_forwarder" in " ".join(p.info["cmdline"] or []) and p.info["ppid"] == os.getpid()
                   for p in psutil.process_iter(["cmdline", "ppid"]))
    good = repl.check(GOOD_PROOF, header=MINI_PRELUDE, timeout_s=30)
    assert good.status == "ok", good.detail
    headers = [c for c in commands(launchers) if c["cmd"] == MINI_PRELUDE]
    assert len(headers) == 2  # elaborated once, and again in the restarted process before the check
    assert commands(launchers)[-1]["env"] == 0  # the new process's id for the replayed header


def test_a_repl_killed_between_checks_is_restarted(repl):
    assert repl.check(GOOD_PROOF, header=MINI_PRELUDE).ok
    server = repl._all[0].server
    first = server._proc.pid
    os.kill(first, signal.SIGTERM)
    server._proc.wait(timeout=10)
    assert repl.check(WRONG_PROOF, header=MINI_PRELUDE).status == "error"
    assert server._proc.pid != first and server.starts == 2


def test_a_repl_crashing_during_a_check_is_reported_and_replaced(repl):
    assert repl.check(GOOD_PROOF, header=MINI_PRELUDE).ok
    pid = repl._all[0].server._proc.pid
    killer = threading.Timer(1.0, os.kill, (pid, signal.SIGSEGV))
    killer.start()
    crashed = repl.check(slow_proof(), header=MINI_PRELUDE, timeout_s=60)
    killer.join()
    assert crashed.status == "crashed" and "exit status -11" in crashed.detail, crashed.detail
    assert repl.check(GOOD_PROOF, header=MINI_PRELUDE).ok


def test_a_repl_killed_while_lean_solve_shuts_down_gives_no_verdict(repl, monkeypatch):
    """Under SIGTERM lifecycle kills the REPL; that death must not become the item's `crashed`
    result (a batch would record it), so the check raises Interrupted instead."""
    from solve_in_lean.lean import lifecycle

    assert repl.check(GOOD_PROOF, header=MINI_PRELUDE).ok
    pid = repl._all[0].server._proc.pid

    def shut_down() -> None:
        monkeypatch.setattr(lifecycle, "stopping", lambda: True)
        os.kill(pid, signal.SIGKILL)

    killer = threading.Timer(1.0, shut_down)
    killer.start()
    with pytest.raises(lifecycle.Interrupted):
        repl.check(slow_proof(), header=MINI_PRELUDE, timeout_s=60)
    killer.join()


def test_lean_running_out_of_memory_is_reported_as_memory(launchers):
    with get_checker("repl", timeout_s=60, memory_mb=1024) as checker:  # Lean aborts at start under 1 GB
        result = checker.check(GOOD_PROOF, header=MINI_PRELUDE)
    assert result.status == "memory", result.detail
    assert "1024 MB" in result.detail


def test_the_repl_is_started_directly_not_under_lake(repl):
    repl.check(GOOD_PROOF, header=MINI_PRELUDE)
    proc = psutil.Process(repl._all[0].server._proc.pid)
    assert proc.ppid() == os.getpid()
    assert "repl_forwarder.py" in " ".join(proc.cmdline())  # the REPL itself, no `lake env` in between


def test_a_repl_answering_garbage_is_a_crash_not_a_traceback(launchers, tmp_path):
    garbage = tmp_path / "garbage-repl"
    script = garbage / ".lake" / "build" / "bin" / "repl"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\nwhile read -r line; do [ -z \"$line\" ] && printf '{\"env\": 0, \"mess\\n\\n'; done\n")
    script.chmod(0o755)
    with get_checker("repl", repl=garbage, timeout_s=30) as checker:
        result = checker.check(GOOD_PROOF, header=MINI_PRELUDE)
    assert result.status == "crashed" and "not JSON" in result.detail


def test_a_server_that_fails_to_start_does_not_use_up_the_only_slot(launchers):
    script = launchers.repl / ".lake" / "build" / "bin" / "repl"
    with get_checker("repl", timeout_s=30, workers=1) as checker:
        script.chmod(0o644)
        with pytest.raises(LeanUnavailable, match="starting the Lean REPL"):
            checker.check(GOOD_PROOF, header=MINI_PRELUDE)
        script.chmod(0o755)
        done = []
        worker = threading.Thread(target=lambda: done.append(checker.check(GOOD_PROOF, header=MINI_PRELUDE)))
        worker.start()
        worker.join(timeout=60)
        assert done and done[0].ok


def test_unknown_proof_state_comes_back_as_a_lean_error(repl):
    with repl.tactic_session(header=MINI_PRELUDE) as session:
        step = session.step(7, "exact N.zero")
    assert step.status == "error" and step.error == "Unknown proof state."


def test_a_restart_during_a_tactic_session_is_detected(repl):
    with repl.tactic_session(header=MINI_PRELUDE) as session:
        assert session.step(0, "rfl").status == "error"  # served by the first process
        server = repl._all[0].server
        os.kill(server._proc.pid, signal.SIGTERM)
        server._proc.wait(timeout=10)
        step = session.step(0, "rfl")
    assert step.status == "restarted" and "proof states are gone" in step.error


def test_checks_leave_no_lock_file_and_build_nothing(repl, launchers):
    assert repl.check(GOOD_PROOF, header=MINI_PRELUDE).ok
    assert repl.check(slow_proof(), header=MINI_PRELUDE, timeout_s=1).status == "timeout"
    assert repl.check(WRONG_PROOF, header=MINI_PRELUDE).status == "error"  # on a restarted REPL
    calls = launchers.lake_calls()
    assert len(calls) == 1 and calls[0].startswith("env ")  # Lake's environment, asked once; no build, no cache get
    assert not launchers.project.with_name(launchers.project.name + ".lock").exists()
    assert str(repl._config.cache_dir).startswith(os.environ["LEAN_SOLVE_CACHE"])


def test_lake_is_found_in_elans_home_and_passed_on(launchers, monkeypatch, tmp_path):
    elan = tmp_path / "elan-home"
    (elan / "bin").mkdir(parents=True)
    (elan / "bin" / "lake").symlink_to(launchers.lake)
    monkeypatch.delenv("LEAN_SOLVE_LAKE")
    monkeypatch.setenv("ELAN_HOME", str(elan))
    monkeypatch.setenv("PATH", os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                                               if not os.path.exists(os.path.join(p, "lake"))))
    with get_checker("repl", timeout_s=30) as checker:
        assert checker.check(GOOD_PROOF, header=MINI_PRELUDE).ok


def test_check_json_stdout_is_only_the_json(launchers, tmp_path):
    good = tmp_path / "good.lean"
    good.write_text(MINI_PRELUDE + GOOD_PROOF)
    proc = subprocess.run([sys.executable, "-m", "solve_in_lean", "check", str(good), "--backend", "repl",
                           "--json"], capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["backend"] == "repl" and out["ok"] is True


def test_without_a_built_repl_the_backend_says_how_to_get_one(launchers, monkeypatch, tmp_path):
    monkeypatch.delenv("LEAN_SOLVE_REPL")
    with pytest.raises(LeanUnavailable, match="lean-solve setup"):
        get_checker("repl")
    t0 = time.monotonic()
    monkeypatch.setenv("LEAN_SOLVE_REPL", str(tmp_path / "nowhere"))
    with pytest.raises(LeanUnavailable, match="no built REPL"):
        get_checker("repl")
    assert time.monotonic() - t0 < 5


def test_lean_interact_warnings_go_to_stderr_not_into_the_json(launchers, tmp_path):
    (launchers.repl / "lean-toolchain").write_text("leanprover/lean4:v4.24.0\n")  # lean-interact warns
    good = tmp_path / "good.lean"
    good.write_text(MINI_PRELUDE + GOOD_PROOF)
    proc = subprocess.run([sys.executable, "-m", "solve_in_lean", "check", str(good), "--backend", "repl",
                           "--json"], capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["ok"] is True
    assert "lean-interact: Requested Lean version 'v4.35.0' does not match" in proc.stderr


def test_a_header_that_runs_too_long_is_a_timeout_of_the_header(launchers):
    with get_checker("repl", timeout_s=60, header_timeout_s=2) as checker:
        result = checker.check(GOOD_PROOF, header=MINI_PRELUDE + slow_proof())
        assert result.status == "timeout" and "the header within 2 s" in result.detail
        assert checker.check(GOOD_PROOF, header=MINI_PRELUDE).ok


def test_repl_processes_are_tracked_until_killed(launchers):
    """lifecycle kills tracked groups when lean-solve is signalled or dies (see lean/lifecycle.py)."""
    from solve_in_lean.lean import lifecycle

    with get_checker("repl", timeout_s=30) as checker:
        assert checker.check(GOOD_PROOF, header=MINI_PRELUDE).ok
        pid = checker._all[0].server._proc.pid
        assert pid in lifecycle._groups
    assert pid not in lifecycle._groups and not psutil.pid_exists(pid)
