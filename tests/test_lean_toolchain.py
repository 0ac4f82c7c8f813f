"""Backends that need the full toolchain (repl, lake) and Mathlib; they skip here with the fix."""

import pytest
from typer.testing import CliRunner

from lean_prelude import needs_mathlib, needs_toolchain
from solve_in_lean.lean import get_checker
from solve_in_lean.lean.toolchain import MATHLIB_REV, mathlib_lakefile, workspace_dir
from solve_in_lean.verify import Target, verify

CORE_GOOD = "theorem t (n : Nat) : n + 0 = n := by simp\n#eval 6 * 7\n"
CORE_BAD = "theorem t (n : Nat) : n + 1 = n := by simp\n"


def test_workspace_is_pinned():
    ws = workspace_dir()
    assert (ws / "lean-toolchain").read_text().strip() == "leanprover/lean4:v4.24.0"
    lakefile = (ws / "lakefile.toml").read_text()
    assert "mathlib" not in lakefile.split("#")[-1]  # core-only unless opted in
    generated = mathlib_lakefile(lakefile)
    assert 'name = "mathlib"' in generated and f'rev = "{MATHLIB_REV}"' in generated


def test_setup_offline_fails_fast_with_one_sentence(monkeypatch):
    from solve_in_lean.cli import app, main  # noqa: F401
    from solve_in_lean.cli import setup as setup_mod

    monkeypatch.setattr(setup_mod, "NETWORK_PROBE", "http://127.0.0.1:9")
    result = CliRunner().invoke(app, ["setup"])
    assert result.exit_code == 2
    out = result.output.strip()
    assert out.startswith("lean-solve: setup downloads") and "cannot reach" in out
    assert len(out.splitlines()) == 1


@needs_toolchain
@pytest.mark.toolchain
@pytest.mark.parametrize("backend", ["lake", "repl"])
def test_core_lean_backends(backend):
    with get_checker(backend, timeout_s=120) as checker:
        good = checker.check(CORE_GOOD)
        assert good.ok, good.messages
        assert [e.text for e in good.evals] == ["42"]
        bad = checker.check(CORE_BAD)
        assert bad.status == "error" and bad.errors[0].line == 1


@needs_toolchain
@pytest.mark.toolchain
def test_repl_recovers_after_timeout():
    with get_checker("repl", timeout_s=120) as checker:
        slow = "set_option maxHeartbeats 0 in\ntheorem s : (List.range 100000).length = 100000 := by decide\n"
        assert checker.check(slow, timeout_s=1).status == "timeout"
        assert checker.check(CORE_GOOD).ok


@needs_toolchain
@pytest.mark.toolchain
def test_native_decide_needs_permission():
    from solve_in_lean.verify import Policy

    code = "theorem t : 2 + 2 = 4 := by native_decide\n"
    with get_checker("repl") as checker:
        assert not verify(code, checker).verified
        assert verify(code, checker, policy=Policy(allow_native=True)).verified


@needs_mathlib
@pytest.mark.mathlib
def test_mathlib_header_reused_and_gsm8k_style_proof():
    header = "import Mathlib\nopen Real\n"
    code = ("abbrev clips_answer : ℕ := 48 + 48 / 2\n"
            "theorem clips (april may : ℕ) (h₀ : april = 48) (h₁ : may = april / 2) :\n"
            "    april + may = clips_answer := by subst h₀ h₁; norm_num [clips_answer]\n")
    target = Target("clips", "∀ (april may : ℕ), april = 48 → may = april / 2 → april + may = clips_answer",
                    params="(clips_answer : ℕ)", args="clips_answer")
    with get_checker("repl", mathlib=True, timeout_s=300) as checker:
        v = verify(code, checker, header=header, target=target, answer_name="clips_answer")
        assert v.verified, v.reasons
        assert v.answer == "72"


@needs_toolchain
@pytest.mark.toolchain
def test_workspace_answer_helper_prints_a_parseable_line():
    import subprocess

    from solve_in_lean.answers import parse_lean_value
    from solve_in_lean.lean.toolchain import require_lake

    subprocess.run([require_lake(), "build"], cwd=workspace_dir(), check=True, capture_output=True)
    with get_checker("lake", timeout_s=300) as checker:
        result = checker.check("import LeanSolve\n#answer ((7 : Int) - 10)\n")
    assert result.ok, result.messages
    line = next(m.text for m in result.messages if "lean-solve answer:" in m.text)
    assert parse_lean_value(line.split("lean-solve answer:")[1]) == "-3"


# --- auto choice and Mathlib detection, through the launcher toolchain (tests/launchers/) ---

def test_auto_picks_what_this_machine_can_run(tmp_path, monkeypatch):
    import sys

    from launchers.toolchain import install_launchers
    from solve_in_lean.lean import auto_backend

    install_launchers(tmp_path, monkeypatch)
    assert auto_backend() == "repl"
    monkeypatch.setitem(sys.modules, "lean_interact", None)  # lean-interact not installed
    assert auto_backend() == "lake"
    monkeypatch.delitem(sys.modules, "lean_interact")
    monkeypatch.setenv("LEAN_SOLVE_REPL", str(tmp_path / "no-repl-built"))
    assert auto_backend() == "lake"
    monkeypatch.setenv("LEAN_SOLVE_LAKE", str(tmp_path / "no-lake"))
    assert auto_backend() == "kernel"


def test_mathlib_is_used_when_installed(tmp_path, monkeypatch):
    from solve_in_lean.lean.toolchain import mathlib_workspace_dir, project_dir, use_mathlib

    monkeypatch.setenv("LEAN_SOLVE_CACHE", str(tmp_path))
    assert use_mathlib(None) is False and project_dir(None) == workspace_dir()
    (mathlib_workspace_dir() / ".lake" / "packages" / "mathlib" / ".lake" / "build").mkdir(parents=True)
    assert use_mathlib(None) is True and project_dir(None) == mathlib_workspace_dir()
    assert use_mathlib(False) is False and project_dir(False) == workspace_dir()


@pytest.mark.slow
def test_an_installed_wheel_finds_the_workspace(tmp_path):
    """A non-editable install has no repository around it: the workspace ships as package data
    and is copied to the user cache, where Lake may write `.lake/`."""
    import os
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    src = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", ".lake", "*.egg-info")
    for part in ("solve_in_lean", "autoformalize", "lean4_workspace"):
        shutil.copytree(repo / part, src / part, symlinks=True, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(repo / name, src / name)
    pip = [sys.executable, "-m", "pip", "-q"]
    subprocess.run([*pip, "wheel", str(src), "--no-deps", "--no-build-isolation", "-w", str(tmp_path / "dist")],
                   check=True, capture_output=True, timeout=600)
    wheel = next((tmp_path / "dist").glob("*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--target", str(tmp_path / "site"), str(wheel)], check=True,
                   capture_output=True, timeout=600)
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "site"), "LEAN_SOLVE_CACHE": str(tmp_path / "cache")}
    env.pop("LEAN_SOLVE_WORKSPACE", None)
    out = subprocess.run([sys.executable, "-c", "import solve_in_lean; from solve_in_lean.lean.toolchain import "
                          "workspace_dir; print(solve_in_lean.__file__); print(workspace_dir())"],
                         cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=True)
    package, workspace = out.stdout.split()
    assert package.startswith(str(tmp_path / "site"))
    assert Path(workspace) == tmp_path / "cache" / "workspace"
    assert (Path(workspace) / "lean-toolchain").read_text() == (repo / "lean4_workspace" / "lean-toolchain").read_text()
    assert (Path(workspace) / "LeanSolve" / "Answer.lean").is_file()
