"""`lean-solve doctor` as a user runs it: one JSON document on stdout, a row per backend that
says `missing` with the fix (never a traceback) when Lake is broken or absent."""

import json
import os
import subprocess
import sys

import pytest

from launchers.toolchain import install_launchers


def doctor(env=None):
    proc = subprocess.run([sys.executable, "-m", "solve_in_lean", "doctor", "--json"], capture_output=True,
                          text=True, timeout=180, env=env or os.environ.copy())
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    return {row["item"]: row for row in json.loads(proc.stdout)}  # stdout is the JSON and nothing else


@pytest.fixture
def launchers(tmp_path, monkeypatch):
    return install_launchers(tmp_path, monkeypatch)


def test_doctor_reports_working_backends_through_the_launchers(launchers):
    rows = doctor()
    for backend in ("kernel", "lake", "repl"):
        assert rows[f"lean backend: {backend}"]["status"] == "ok", rows[f"lean backend: {backend}"]
        assert rows[f"lean backend: {backend}"]["detail"] == "Lean 4.35.0"
    assert rows["lean backend: auto"]["detail"] == "uses repl"
    assert rows["Mathlib"]["status"] == "missing" and "setup --mathlib" in rows["Mathlib"]["fix"]


def test_doctor_with_a_broken_lake_says_missing_in_one_sentence(launchers, tmp_path, monkeypatch):
    broken = tmp_path / "broken-lake"
    broken.write_text("#!/bin/sh\necho 'error: toolchain is corrupt' >&2\nexit 1\n")
    broken.chmod(0o755)
    monkeypatch.setenv("LEAN_SOLVE_LAKE", str(broken))
    rows = doctor()
    for backend in ("lake", "repl"):
        row = rows[f"lean backend: {backend}"]
        assert row["status"] == "missing"
        assert "toolchain is corrupt" in row["fix"] and "lean-solve setup" in row["fix"] and "\n" not in row["fix"]
    assert rows["lean backend: kernel"]["status"] == "ok"
    assert rows["lean backend: auto"]["detail"] == "uses repl"  # files say repl; the row above says why not


def test_doctor_without_lake(launchers, tmp_path, monkeypatch):
    monkeypatch.setenv("LEAN_SOLVE_LAKE", str(tmp_path / "no-lake-here"))
    rows = doctor()
    assert rows["lean backend: lake"]["status"] == rows["lean backend: repl"]["status"] == "missing"
    assert "lean-solve setup" in rows["lean backend: repl"]["fix"]
    assert rows["lean backend: auto"]["detail"] == "uses kernel"


def test_lean_interact_errors_become_one_sentence(launchers):
    from solve_in_lean.cli.setup import _backend_row

    (launchers.project / "lean-toolchain").write_text("not a toolchain\n")  # lean-interact: ValueError
    row = _backend_row("repl")
    assert row["status"] == "missing"
    assert row["fix"].startswith("configuring the Lean REPL failed (ValueError: ") and "\n" not in row["fix"]


def test_mathlib_row_says_it_will_be_used(tmp_path, monkeypatch):
    from solve_in_lean.cli.setup import _mathlib_row
    from solve_in_lean.lean.toolchain import mathlib_workspace_dir

    monkeypatch.setenv("LEAN_SOLVE_CACHE", str(tmp_path))
    (mathlib_workspace_dir() / ".lake" / "packages" / "mathlib" / ".lake" / "build").mkdir(parents=True)
    row = _mathlib_row()
    assert row["status"] == "ok" and "used by default" in row["detail"] and "--no-mathlib" in row["detail"]


def test_setup_installs_elan_with_lean_as_the_default_toolchain(monkeypatch):
    """lean-interact runs `lake --version` outside any project: elan needs a default toolchain."""
    import httpx

    from solve_in_lean.cli import setup as setup_mod
    from solve_in_lean.lean import toolchain

    ran = []
    monkeypatch.setattr(toolchain, "find_tool", lambda name: None)
    monkeypatch.setattr(httpx, "get", lambda *a, **k: httpx.Response(200, text="echo elan-init",
                                                                     request=httpx.Request("GET", a[0])))
    monkeypatch.setattr(setup_mod, "_run", lambda cmd, cwd=None: ran.append(cmd))
    setup_mod._install_elan()
    assert ran and ran[0][2:] == ["-y", "--default-toolchain", f"leanprover/lean4:{toolchain.LEAN_VERSION}"]
