"""Sandbox runs of training programs are kept in the user cache: a second transfer run builds the
same `code` examples without running the sandbox, while outcomes that depend on the machine's
load (timeouts, limits) are run again, and a damaged or unwritable cache only costs time."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from solve_in_lean.code import runcache
from solve_in_lean.code.sandbox import SandboxLimits, run_python
from solve_in_lean.eval.trainingdata import _item_programs, code_examples
from solve_in_lean.problems import load_items

ROOT = Path(__file__).resolve().parents[1]
GSM8K = (ROOT / "../shared/data/gsm8k/train_sample.jsonl").resolve()
SANDBOX = run_python("print(1)", SandboxLimits()).status != "sandbox_error"
pytestmark = pytest.mark.skipif(not SANDBOX, reason="the sandbox needs Linux with Landlock and libseccomp2 "
                                                    "(docs/code_interpreter.md)")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("LEAN_SOLVE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "sandbox-runs"


@pytest.fixture
def runs(monkeypatch):
    """The programs the real sandbox was asked to run, in order."""
    seen: list[str] = []

    def counted(cells, limits=None):
        seen.extend(cells)
        return run_python(cells, limits)

    monkeypatch.setattr(runcache, "run_python", counted)
    return seen


def stored(cache: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(cache.rglob("*.json"))]


def test_a_second_build_of_code_examples_runs_nothing(cache, runs):
    candidates = list(_item_programs(load_items(GSM8K)[:6], "sha"))
    candidates.append(({"data_sha256": "sha", "id": "wrong"}, "Q?", "5", "print(4)"))
    candidates.append(({"data_sha256": "sha", "id": "raises"}, "Q?", "5", "print(1 / 0)"))
    first = code_examples(candidates, workers=2)
    assert len(runs) == len(candidates)
    assert {e["source"]["id"] for e in first}.isdisjoint({"wrong", "raises"}) and first
    assert {r["status"] for r in stored(cache)} == {"ok", "error"}
    runs.clear()
    assert code_examples(candidates, workers=2) == first
    assert runs == []  # every outcome came from the cache


def test_outcomes_of_the_machine_are_run_again(cache, runs):
    limits = SandboxLimits(wall_s=1.0, cpu_s=1)
    first = runcache.cached_run("while True:\n    pass", limits)
    assert first.status in ("timeout", "cpu_limit")
    assert stored(cache) == []
    runcache.cached_run("while True:\n    pass", limits)
    assert len(runs) == 2


def test_the_key_covers_program_and_limits(cache, runs):
    runcache.cached_run("print(2)", SandboxLimits())
    runcache.cached_run("print(2)", SandboxLimits(memory_mb=512))
    runcache.cached_run("print(2) ", SandboxLimits())
    assert len(runs) == 3 and len(stored(cache)) == 3
    assert runcache.cached_run("print(2)", SandboxLimits()).stdout == "2\n" and len(runs) == 3


def test_a_damaged_entry_is_run_again_and_rewritten(cache, runs):
    runcache.cached_run("print(3)", SandboxLimits())
    [entry] = list(cache.rglob("*.json"))
    entry.write_text('{"status": "ok", "stdout": ')  # cut short
    with pytest.warns(UserWarning, match="ignoring the cached sandbox run"):
        result = runcache.cached_run("print(3)", SandboxLimits())
    assert result.ok and result.stdout == "3\n" and len(runs) == 2
    assert json.loads(entry.read_text())["stdout"] == "3\n"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; run as a normal user")
def test_an_unwritable_cache_only_costs_time(cache, runs):
    cache.mkdir(parents=True)
    cache.chmod(0o500)
    try:
        with pytest.warns(UserWarning, match="could not cache a sandbox run"):
            result = runcache.cached_run("print(4)", SandboxLimits())
    finally:
        cache.chmod(0o700)
    assert result.ok and result.stdout == "4\n" and stored(cache) == []
