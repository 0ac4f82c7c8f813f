"""The lake backend end to end: Lake's environment asked once through the `lake` launcher, then
the real bundled Lean started directly for every check (tests/launchers/)."""

import json
import os
import subprocess
import sys
import time

import psutil
import pytest

from launchers.toolchain import install_launchers
from lean_prelude import GOOD_PROOF, MINI_PRELUDE, WRONG_PROOF, slow_proof
from solve_in_lean.lean import LeanUnavailable, get_checker
from solve_in_lean.lean.toolchain import lake_environment


@pytest.fixture
def launchers(tmp_path, monkeypatch):
    lake_environment.cache_clear()
    yield install_launchers(tmp_path, monkeypatch)
    lake_environment.cache_clear()


def test_verdicts_and_positions(launchers):
    with get_checker("lake", timeout_s=60) as checker:
        assert checker.check(GOOD_PROOF, header=MINI_PRELUDE).status == "ok"
        bad = checker.check(MINI_PRELUDE + WRONG_PROOF)
        assert bad.status == "error" and bad.errors[0].line == MINI_PRELUDE.count("\n") + 1
        assert bad.lean_version == "4.35.0" and bad.backend == "lake"


def test_lean_runs_directly_in_lakes_environment(launchers):
    with get_checker("lake") as checker:
        argv = checker.command(1)
        assert argv[0] == str(launchers.lean_dir / "lean")  # found on the PATH `lake env` gives
        assert checker.env()["LAKE"] == str(launchers.lake)
        assert checker.cwd() == str(launchers.project)
        checker.check(GOOD_PROOF, header=MINI_PRELUDE)
        checker.check(WRONG_PROOF, header=MINI_PRELUDE)
    assert [c.split()[0] for c in launchers.lake_calls()] == ["env"]  # asked once, then Lean directly


def test_timeout_kills_lean_and_leaves_nothing_running(launchers):
    with get_checker("lake", timeout_s=60) as checker:
        result = checker.check(slow_proof(), header=MINI_PRELUDE, timeout_s=2)
    assert result.status == "timeout"
    lean = str(launchers.lean_dir / "lean")
    assert not [p for p in psutil.process_iter(["cmdline"]) if lean in (p.info["cmdline"] or [])]


def test_memory_cap_is_reported_as_memory(launchers):
    with get_checker("lake", timeout_s=60, memory_mb=1024) as checker:
        result = checker.check(GOOD_PROOF, header=MINI_PRELUDE)
    assert result.status == "memory", result.detail


def test_a_failing_lake_env_is_one_sentence(launchers, monkeypatch):
    monkeypatch.delenv("LEAN_SOLVE_TEST_LEAN_DIR")
    with pytest.raises(LeanUnavailable) as err:
        get_checker("lake")
    message = str(err.value)
    assert "env` failed" in message and "lean-solve setup" in message and "\n" not in message


def test_missing_lake_says_how_to_install_it(launchers, monkeypatch, tmp_path):
    monkeypatch.setenv("LEAN_SOLVE_LAKE", str(tmp_path / "no-such-lake"))
    with pytest.raises(LeanUnavailable, match="lean-solve setup"):
        get_checker("lake")


def test_check_json_stdout_is_only_the_json(launchers, tmp_path):
    bad = tmp_path / "bad.lean"
    bad.write_text(MINI_PRELUDE + WRONG_PROOF)
    proc = subprocess.run([sys.executable, "-m", "solve_in_lean", "check", str(bad), "--backend", "lake", "--json"],
                          capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert proc.returncode == 1, proc.stderr
    assert json.loads(proc.stdout)["status"] == "error"


def test_lean_version_is_asked_through_lifecycle_so_it_dies_with_lean_solve(launchers, tmp_path):
    """A `lean --version` that hangs must not outlive a killed lean-solve (it used to be a bare
    subprocess.run, orphaned by kill -9)."""
    marker = tmp_path / "version-started"
    real_lean = (launchers.lean_dir / "lean").read_text().splitlines()[1]  # "exec <bundled Lean> "$@""
    hang = f"import pathlib, time; pathlib.Path({str(marker)!r}).touch(); time.sleep(3600)"
    (launchers.lean_dir / "lean").write_text(
        f'#!/bin/sh\nif [ "$1" = --version ]; then exec {sys.executable} -c "{hang}" {marker}; fi\n{real_lean}\n')
    asker = subprocess.Popen([sys.executable, "-c", "from solve_in_lean.lean import get_checker\n"
                              "print(get_checker('lake').lean_version)"], env=os.environ.copy())

    def hanging() -> list[psutil.Process]:
        return [p for p in psutil.process_iter(["cmdline"]) if str(marker) in (p.info["cmdline"] or [])]
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert time.monotonic() < deadline and asker.poll() is None, "`lean --version` never started"
            time.sleep(0.02)
        asker.kill()
        asker.wait()
        deadline = time.monotonic() + 10
        while hanging() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not hanging(), "`lean --version` outlived the lean-solve that started it"
    finally:
        for p in hanging():
            p.kill()
