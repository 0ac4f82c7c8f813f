"""One writer per run (solve_in_lean/runlock.py), with real processes and real files."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from solve_in_lean.errors import UnavailableError
from solve_in_lean.runlock import RunLock, RunLocked, lock_path_for

REPO = Path(__file__).resolve().parents[1]

HOLDER = """
    import sys, time
    from solve_in_lean.runlock import RunLock
    lock = RunLock(sys.argv[1], heartbeat_s=float(sys.argv[2])).acquire()
    print("held", flush=True)
    sys.stdin.read()  # hold until told (stdin closed) or killed
    lock.release()
    print("released", flush=True)
"""

CONTENDER = """
    import sys
    from solve_in_lean.runlock import RunLock, RunLocked
    try:
        with RunLock(sys.argv[1]) as lock:
            print("acquired", lock.previous and lock.previous["pid"], flush=True)
    except RunLocked as e:
        print(e, file=sys.stderr)
        sys.exit(e.exit_code)
"""


def _python(code: str, *args: str, **kw) -> list[str]:  # noqa: ANN003
    return [sys.executable, "-c", textwrap.dedent(code), *args]


@pytest.fixture
def holder(tmp_path):
    """Start a process that holds the lock on tmp_path/run; killed in teardown."""
    started: list[subprocess.Popen] = []

    def start(target: Path, heartbeat_s: float = 30.0) -> subprocess.Popen:
        proc = subprocess.Popen(_python(HOLDER, str(target), str(heartbeat_s)), stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True, cwd=REPO)
        started.append(proc)
        assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def _contend(target: Path) -> subprocess.CompletedProcess:
    return subprocess.run(_python(CONTENDER, str(target)), capture_output=True, text=True, cwd=REPO, timeout=60)


def test_second_writer_exits_2_naming_the_holder(tmp_path, holder):
    run = tmp_path / "runs" / "x"
    run.parent.mkdir()
    first = holder(run)
    second = _contend(run)
    assert second.returncode == 2
    message = second.stderr.strip()
    assert "\n" not in message and message.endswith(".")
    assert f"pid {first.pid} on host {socket.gethostname()}" in message
    assert str(run) in message and "write to another path" in message
    # the holder is undisturbed and releases cleanly, leaving nothing behind
    first.stdin.close()
    assert first.stdout.readline().strip() == "released"
    assert first.wait(timeout=30) == 0
    assert not lock_path_for(run).exists()
    assert _contend(run).stdout.split() == ["acquired", "None"]


def test_lock_left_by_a_killed_writer_is_taken_over(tmp_path, holder):
    out = tmp_path / "results.jsonl"
    first = holder(out)
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    left = json.loads(lock_path_for(out).read_text())
    assert left["pid"] == first.pid  # the dead holder's record is still there
    taken = _contend(out)
    assert taken.returncode == 0, taken.stderr
    assert taken.stdout.split() == ["acquired", str(first.pid)]  # it knew whom it replaced


def test_lock_survives_a_child_that_outlives_the_writer(tmp_path):
    """The lock file descriptor is not inherited: a child process left running by a killed
    writer (a Lean, a shell) does not keep the run locked."""
    out = tmp_path / "out.jsonl"
    code = """
        import subprocess, sys, time
        from solve_in_lean.runlock import RunLock
        RunLock(sys.argv[1]).acquire()
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], close_fds=False)
        print(child.pid, flush=True)
        time.sleep(60)
    """
    writer = subprocess.Popen(_python(code, str(out)), stdout=subprocess.PIPE, text=True, cwd=REPO)
    child_pid = int(writer.stdout.readline())
    try:
        writer.kill()
        writer.wait(timeout=30)
        os.kill(child_pid, 0)  # the child still runs
        assert _contend(out).returncode == 0
    finally:
        os.kill(child_pid, signal.SIGKILL)


def test_same_process_cannot_hold_it_twice(tmp_path):
    target = tmp_path / "x"
    with RunLock(target) as first:
        with pytest.raises(RunLocked, match=f"pid {os.getpid()}"):
            RunLock(target).acquire()
        with pytest.raises(RuntimeError):
            first.acquire()
    with RunLock(target):
        pass


def _plant_record(target: Path, host: str, age_s: float) -> None:
    lock = lock_path_for(target)
    lock.write_text(json.dumps({"pid": 4242, "host": host, "started": "2026-01-01 00:00:00 UTC"}) + "\n")
    then = time.time() - age_s
    os.utime(lock, (then, then))


def test_fresh_record_from_another_host_counts_as_held(tmp_path):
    """Storage whose locks stay local to each host (NFS with local_lock): only the record and
    its heartbeat show the other host's writer."""
    target = tmp_path / "x"
    _plant_record(target, "other-host", age_s=5)
    with pytest.raises(RunLocked, match="pid 4242 on host other-host") as err:
        RunLock(target, heartbeat_s=30).acquire()
    assert "cannot see its lock" in str(err.value)
    _plant_record(target, "other-host", age_s=120)  # no heartbeat for 4 periods: gone
    with RunLock(target, heartbeat_s=30) as lock:
        assert lock.previous is not None and lock.previous["host"] == "other-host"


def test_heartbeat_touches_the_lock_file(tmp_path, holder):
    target = tmp_path / "x"
    holder(target, heartbeat_s=0.1)
    lock = lock_path_for(target)
    first = lock.stat().st_mtime
    time.sleep(0.5)
    assert lock.stat().st_mtime > first


def test_unusable_place_is_one_sentence(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UnavailableError, match="cannot create the lock file") as err:
        RunLock(blocker / "run").acquire()
    assert err.value.exit_code == 2 and "\n" not in str(err.value)


def test_garbage_in_the_lock_file_is_taken_over(tmp_path):
    target = tmp_path / "x"
    lock_path_for(target).write_bytes(b"\x00\xffnot json")
    with RunLock(target) as lock:
        assert lock.previous is None
        assert json.loads(lock_path_for(target).read_text())["pid"] == os.getpid()
