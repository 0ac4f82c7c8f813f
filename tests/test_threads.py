"""Model threads on a shared CPU: the default divides the cores among the lean-solve runs on the
machine (real processes that look like runs), an oversubscribing request is warned about, and the
transformers backend really runs torch with the planned count."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from solve_in_lean.threads import concurrent_runs, cores, model_threads


@pytest.fixture(autouse=True)
def no_thread_request(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)


@pytest.fixture
def three_other_runs(tmp_path: Path):
    """Three sleeping processes started the way a user starts lean-solve (its console script); yields
    the runs on the machine then (tests re-count with `steady`: other jobs' runs come and go)."""
    script = tmp_path / "lean-solve"
    script.write_text("import time\ntime.sleep(120)\n")
    before = concurrent_runs()  # runs that other jobs on this machine may have going
    procs = [subprocess.Popen([sys.executable, str(script), "solve", "x"]) for _ in range(3)]
    # Popen may return (vfork) before the kernel has set a child's new command line: wait for it
    deadline = time.monotonic() + 10
    while not all(str(script).encode() in Path(f"/proc/{p.pid}/cmdline").read_bytes() for p in procs):
        assert time.monotonic() < deadline, "the started runs never showed their command line"
        time.sleep(0.01)
    yield before + 3
    for p in procs:
        p.kill()
        p.wait()


def steady(measure):
    """`measure()` with the number of runs it saw: other jobs' runs on a shared machine may start or
    end meanwhile, so measure again until the count is the same before and after (at most 5 tries)."""
    for _ in range(5):
        before = concurrent_runs()
        result = measure()
        if concurrent_runs() == before:
            return before, result
    pytest.skip("other lean-solve runs on this machine kept starting and ending")


def test_concurrent_runs_share_the_cores_and_oversubscription_is_warned(three_other_runs):
    assert concurrent_runs() >= 4  # this process and the three started ones, at least
    runs, (threads, warning) = steady(model_threads)
    assert threads == max(1, cores() // runs) and warning is None
    runs, (threads, warning) = steady(lambda: model_threads(cores()))
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
        runs, gen = steady(lambda: load_generator("transformers", str(tiny_model_dir)))
        assert gen.threads == torch.get_num_threads() == max(1, cores() // runs)
        load_generator("transformers", str(tiny_model_dir), threads=cores())
        assert torch.get_num_threads() == cores()
        assert "lean-solve: warning:" in capsys.readouterr().err
    finally:
        torch.set_num_threads(before)
