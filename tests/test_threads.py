"""Model threads on a shared CPU: the default divides the cores among the lean-solve runs on the
machine (real processes that look like runs), an oversubscribing request is warned about, and the
transformers backend really runs torch with the planned count."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from solve_in_lean.threads import concurrent_runs, cores, model_threads


@pytest.fixture(autouse=True)
def no_thread_request(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)


@pytest.fixture
def three_other_runs(tmp_path: Path):
    """Three sleeping processes started the way a user starts lean-solve (its console script)."""
    script = tmp_path / "lean-solve"
    script.write_text("import time\ntime.sleep(120)\n")
    before = concurrent_runs()  # runs that other jobs on this machine may have going
    procs = [subprocess.Popen([sys.executable, str(script), "solve", "x"]) for _ in range(3)]
    yield before + 3
    for p in procs:
        p.kill()
        p.wait()


def test_concurrent_runs_share_the_cores_and_oversubscription_is_warned(three_other_runs):
    runs = three_other_runs
    assert concurrent_runs() == runs >= 4
    threads, warning = model_threads()
    assert threads == max(1, cores() // runs) and warning is None
    threads, warning = model_threads(cores())
    assert threads == cores() and "oversubscribed" in warning and f"{runs} lean-solve run(s)" in warning


def test_omp_num_threads_is_a_request(monkeypatch, three_other_runs):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert model_threads() == (1, None)


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "2"])
def test_a_bad_request_is_refused(bad):
    with pytest.raises(ValueError, match="threads must be a whole number"):
        model_threads(bad)


def test_the_transformers_backend_runs_torch_with_the_planned_threads(tiny_model_dir, three_other_runs, capsys):
    import torch

    from solve_in_lean.models import load_generator

    before = torch.get_num_threads()
    try:
        gen = load_generator("transformers", str(tiny_model_dir))
        assert gen.threads == torch.get_num_threads() == max(1, cores() // three_other_runs)
        load_generator("transformers", str(tiny_model_dir), threads=cores())
        assert torch.get_num_threads() == cores()
        assert "lean-solve: warning:" in capsys.readouterr().err
    finally:
        torch.set_num_threads(before)
