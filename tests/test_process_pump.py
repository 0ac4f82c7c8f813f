"""run_limited's one poll loop (lean/process.py): stdin written while stdout and stderr are read,
in the calling thread, so no size of input or output can deadlock it, the output cap and the
timeout still kill, and a process that never reads its input does not hang the check. These run
ordinary programs (cat, sh), not Lean: they test the plumbing every backend's Lean goes through."""

from __future__ import annotations

import sys
import threading
import time

import pytest
from hypothesis import given, settings, strategies as st

from solve_in_lean.lean.process import run_limited

ECHO_BOTH = [sys.executable, "-c", "import sys\nd = sys.stdin.buffer.read()\nsys.stdout.buffer.write(d)\n"
                                   "sys.stderr.buffer.write(d)"]


def run(cmd, text="", timeout_s=30.0, cap=64 << 20):
    return run_limited(cmd, stdin_text=text, timeout_s=timeout_s, memory_mb=None, max_output_bytes=cap)


@settings(max_examples=12, deadline=None)
@given(st.sampled_from([0, 1, 4095, 4096, 65537, 3_000_001]), st.characters(min_codepoint=32, max_codepoint=0x2FFF))
def test_any_size_goes_through_both_ways_without_deadlock(size, ch):
    text = ch * size  # more than a pipe holds, both ways at once: only a loop that reads while it writes ends
    result = run(ECHO_BOTH, text)
    assert result.returncode == 0 and not result.timed_out and not result.output_capped
    assert result.stdout == text and result.stderr == text


def test_the_output_cap_kills_a_chatty_process_at_once():
    start = time.perf_counter()
    result = run(["sh", "-c", "yes lean"], cap=100_000)
    assert result.output_capped and result.returncode is not None and result.returncode < 0
    assert len(result.stdout) <= 100_000 and time.perf_counter() - start < 10


def test_a_process_that_never_reads_its_input_does_not_hang():
    result = run(["sh", "-c", "echo done"], "x" * 5_000_000)
    assert result.returncode == 0 and result.stdout == "done\n" and not result.timed_out


def test_the_timeout_kills_and_says_so():
    start = time.perf_counter()
    result = run(["sh", "-c", "cat; sleep 30"], "waiting", timeout_s=0.5)
    assert result.timed_out and result.stdout == "waiting" and time.perf_counter() - start < 10


@pytest.mark.parametrize("size", [10, 2_000_000])
def test_no_thread_is_started(size, monkeypatch):
    started = []
    monkeypatch.setattr(threading.Thread, "start", lambda self: started.append(self))
    assert run(ECHO_BOTH, "y" * size).stdout == "y" * size and started == []
