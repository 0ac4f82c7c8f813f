"""No Lean process outlives lean-solve (lean/lifecycle.py), tested with real processes.

Each test starts lean-solve (the CLI or a small script using the package) on a proof that
keeps the real bundled Lean busy for minutes, signals it, and then looks in /proc for any
process carrying the test's marker environment variable: Lean and everything else we
started inherit it, so "nothing marked is left" means nothing outlived lean-solve.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from lean_prelude import MINI_PRELUDE, slow_proof

MARK = "LEAN_SOLVE_TEST_MARK"
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def lean_cmd(kernel) -> list[str]:  # noqa: ANN001  (the conftest fixture)
    """argv of the real bundled Lean reading a file from stdin."""
    return kernel.command(1)


@pytest.fixture
def marked(tmp_path):
    """A fresh marker, the environment carrying it, and teardown that kills whatever still has it."""
    mark = uuid.uuid4().hex
    env = {**os.environ, MARK: mark, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
    yield mark, env
    for pid in _marked(mark):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue  # ended by itself meanwhile


def _marked(mark: str) -> dict[int, list[str]]:
    """pid -> argv of every live (not zombie) process whose environment has the marker."""
    found: dict[int, list[str]] = {}
    needle = f"{MARK}={mark}".encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{entry}/stat", "rb") as f:
                if f.read().rsplit(b")", 1)[1].split()[0] == b"Z":
                    continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                found[int(entry)] = [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
        except OSError:
            continue  # it ended while we looked, or is not ours to read
    return found


def _lean_pids(mark: str) -> set[int]:
    """Lean processes only (not the forking launcher, whose argv names Lean too)."""
    return {pid for pid, argv in _marked(mark).items()
            if "--json" in argv and "--stdin" in argv and not any(a.endswith("lake-env") for a in argv)}


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat", "rb") as f:
        return int(f.read().rsplit(b")", 1)[1].split()[1])


def _wait_for(predicate, timeout_s: float):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.05)
    return predicate()


def _start(argv: list[str], env: dict[str, str], mark: str, lean_count: int = 1) -> tuple[subprocess.Popen, set[int]]:
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
    lean = _wait_for(lambda: pids if len(pids := _lean_pids(mark)) >= lean_count else None, 30)
    if not lean:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"Lean never started: {out.decode()[-500:]} {err.decode()[-1500:]}")
    return proc, lean


def _assert_all_gone(mark: str, within_s: float = 5.0) -> None:
    left = _wait_for(lambda: not _marked(mark), within_s)
    assert left, f"still running after lean-solve ended: {_marked(mark)}"


@pytest.fixture(scope="module")
def slow_file(tmp_path_factory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("slow")
    (folder / "prelude.lean").write_text(MINI_PRELUDE)
    (folder / "slow.lean").write_text(slow_proof(60))
    return folder / "slow.lean", folder / "prelude.lean"


def _cli(slow_file: tuple[Path, Path]) -> list[str]:
    code, header = slow_file
    return [sys.executable, "-m", "solve_in_lean", "check", str(code), "--header", str(header),
            "--backend", "kernel", "--timeout", "600"]


@pytest.mark.parametrize("signo, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_cli_signal_kills_lean_and_exits_128_plus_signal(slow_file, marked, signo, code):
    mark, env = marked
    proc, _ = _start(_cli(slow_file), env, mark)
    start = time.monotonic()
    proc.send_signal(signo)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == code, err.decode()[-1500:]
    assert time.monotonic() - start < 5
    assert b"Traceback" not in err
    _assert_all_gone(mark)


def test_cli_sigkill_leaves_no_lean(slow_file, marked):
    mark, env = marked
    proc, lean = _start(_cli(slow_file), env, mark)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    _assert_all_gone(mark)


def test_cli_ctrl_c_stops_lean_at_once(slow_file, marked):
    mark, env = marked
    proc, _ = _start(_cli(slow_file), env, mark)
    start = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err.decode()[-1500:]  # the CLI's KeyboardInterrupt exit, as before
    assert b"Traceback" not in err
    assert time.monotonic() - start < 5
    _assert_all_gone(mark)


def _script(body: str) -> list[str]:
    return [sys.executable, "-c", textwrap.dedent(body)]


POOL = """
    import sys
    from lean_prelude import MINI_PRELUDE, slow_proof
    from solve_in_lean.lean import get_checker, lifecycle
    from solve_in_lean.lean.base import CheckRequest

    lifecycle.install_signal_handlers()
    checker = get_checker("kernel", timeout_s=600)
    checker.check_many([CheckRequest(slow_proof(60), header=MINI_PRELUDE)] * 4, workers=2)
    print("finished", flush=True)
"""


def test_sigterm_in_a_thread_pool_starts_no_queued_lean(marked):
    """Two checks run on pool threads, two wait: SIGTERM kills the running ones and the
    queued ones never start Lean, so the process exits at once instead of after them."""
    mark, env = marked
    proc, lean = _start(_script(POOL), env, mark, lean_count=2)
    start = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    elapsed = time.monotonic() - start
    assert proc.returncode == 143, err.decode()[-1500:]
    assert b"finished" not in out
    assert elapsed < 5, f"took {elapsed:.1f} s: queued checks started Lean (the grace timer ends it at 10 s)"
    _assert_all_gone(mark)


FORKING_LAKE = "#!/bin/sh\n# forks its command and waits, like `lake env CMD`\n\"$@\"\nexit $?\n"


@pytest.fixture
def forking_lake(tmp_path) -> Path:
    path = tmp_path / "lake-env"
    path.write_text(FORKING_LAKE)
    path.chmod(0o755)
    return path


def _run_limited_script(cmd: list[str], handlers: bool = False) -> list[str]:
    return _script(f"""
        from lean_prelude import MINI_PRELUDE, slow_proof
        from solve_in_lean.lean import lifecycle
        from solve_in_lean.lean.process import run_limited

        if {handlers!r}:
            lifecycle.install_signal_handlers()
        run_limited({cmd!r}, stdin_text=MINI_PRELUDE + slow_proof(60), timeout_s=600,
                    memory_mb=None, max_output_bytes=1 << 20)
    """)


def test_sigkill_reaches_lean_behind_a_forking_launcher(lean_cmd, forking_lake, marked):
    """`lake env lean` style: Lean is a grandchild, so PDEATHSIG of the launcher does not
    reach it; the guard kills the whole group when lean-solve dies."""
    mark, env = marked
    proc, lean = _start(_run_limited_script([str(forking_lake), *lean_cmd]), env, mark)
    (lean_pid,) = lean
    assert _ppid(lean_pid) != proc.pid  # really a grandchild
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    _assert_all_gone(mark)


@pytest.mark.parametrize("handlers, code", [(True, 143), (False, -signal.SIGTERM)])
def test_sigterm_reaches_lean_behind_a_forking_launcher(lean_cmd, forking_lake, marked, handlers, code):
    """With the handlers (the CLI installs them) the group is killed and lean-solve exits 143;
    without them Python dies of the signal and the guard still kills the group."""
    mark, env = marked
    proc, _ = _start(_run_limited_script([str(forking_lake), *lean_cmd], handlers), env, mark)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=30)
    assert proc.returncode == code
    _assert_all_gone(mark)


def _popen_script(cmd: list[str], *, preexec: bool, track: bool) -> list[str]:
    return _script(f"""
        import subprocess, sys, time
        from lean_prelude import MINI_PRELUDE, slow_proof
        from solve_in_lean.lean import lifecycle

        proc = subprocess.Popen({cmd!r}, stdin=subprocess.PIPE, start_new_session=True,
                                preexec_fn=lifecycle.child_preexec(register=False) if {preexec!r} else None)
        if {track!r}:
            lifecycle.track(proc)
        proc.stdin.write((MINI_PRELUDE + slow_proof(60)).encode())
        proc.stdin.flush()
        proc.wait()
    """)


def test_pdeathsig_alone_kills_a_direct_child(lean_cmd, marked):
    """Lean started directly (the lake backend resolves Lake's environment and runs lean
    itself): the kernel's death signal alone is enough, with no guard at all."""
    mark, env = marked
    proc, lean = _start(_popen_script(lean_cmd, preexec=True, track=False), env, mark)
    assert _ppid(next(iter(lean))) == proc.pid
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    _assert_all_gone(mark)


def test_pdeathsig_alone_misses_a_grandchild(lean_cmd, forking_lake, marked):
    """Why the direct exec and the guard exist: behind a forking launcher, the death signal
    kills only the launcher and Lean runs on, re-parented (killed in teardown)."""
    mark, env = marked
    proc, lean = _start(_popen_script([str(forking_lake), *lean_cmd], preexec=True, track=False), env, mark)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    time.sleep(1.0)
    assert _lean_pids(mark) == lean, "Lean behind a forking launcher died without the guard"


def test_guard_alone_kills_a_grandchild(lean_cmd, forking_lake, marked):
    mark, env = marked
    proc, _ = _start(_popen_script([str(forking_lake), *lean_cmd], preexec=False, track=True), env, mark)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    _assert_all_gone(mark)


def test_handlers_idempotent_main_thread_only_and_nohup_respected():
    out = subprocess.run(_script("""
        import signal, threading
        from solve_in_lean.lean import lifecycle

        signal.signal(signal.SIGHUP, signal.SIG_IGN)  # as under nohup
        lifecycle.install_signal_handlers()
        lifecycle.install_signal_handlers()
        errors = []
        t = threading.Thread(target=lambda: errors.append(_try()))
        def _try():
            try:
                lifecycle.install_signal_handlers()
            except RuntimeError as e:
                return str(e)
        t.start(); t.join()
        print(signal.getsignal(signal.SIGHUP) is signal.SIG_IGN,
              signal.getsignal(signal.SIGTERM) is lifecycle._on_signal,
              signal.getsignal(signal.SIGINT) is lifecycle._on_signal)
        print(errors[0])
    """), capture_output=True, text=True, cwd=REPO, timeout=60)
    lines = out.stdout.splitlines()
    assert lines[0] == "True True True", out.stderr
    assert "main thread" in lines[1]


def test_no_lean_starts_once_shutting_down(lean_cmd):
    out = subprocess.run(_script(f"""
        from solve_in_lean.lean import lifecycle
        from solve_in_lean.lean.process import run_limited

        ok = run_limited({lean_cmd!r}, stdin_text="prelude\\n", timeout_s=60, memory_mb=None,
                         max_output_bytes=1 << 20)
        print("before", ok.returncode)
        lifecycle.kill_all()
        try:
            run_limited({lean_cmd!r}, stdin_text="prelude\\n", timeout_s=60, memory_mb=None,
                        max_output_bytes=1 << 20)
        except lifecycle.Interrupted as e:
            print("refused:", e)
    """), capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.stdout.splitlines() == ["before 0", "refused: lean-solve is shutting down"], out.stderr


def test_track_refuses_a_process_sharing_our_group():
    """Killing such a "group" would kill lean-solve itself."""
    from solve_in_lean.lean import lifecycle

    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with pytest.raises(ValueError, match="start_new_session"):
            lifecycle.track(proc)
    finally:
        proc.kill()
        proc.wait()


def test_guard_ignores_a_cut_off_line():
    """lean-solve may die in the middle of telling the guard a group: a number without its
    newline may be a prefix of the real one, so the guard must not kill it; nor a group it was
    told is gone, nor a line that is not a group."""
    from solve_in_lean.lean import lifecycle

    listed, removed, cut_off = (subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"],
                                                 start_new_session=True) for _ in range(3))
    try:
        told = f"+{listed.pid}\n+{removed.pid}\n-{removed.pid}\n+1x\n+-1\n+\n+{cut_off.pid}"
        guard = subprocess.run(["/bin/sh", "-c", lifecycle._GUARD_SCRIPT], timeout=30, input=told, text=True)
        assert guard.returncode == 0
        assert listed.wait(timeout=10) == -signal.SIGKILL
        assert removed.poll() is None and cut_off.poll() is None
    finally:
        for p in (listed, removed, cut_off):
            p.kill()
            p.wait()


REPL_CHECK = """
    from lean_prelude import MINI_PRELUDE, slow_proof
    from solve_in_lean.lean import get_checker, lifecycle

    lifecycle.install_signal_handlers()
    with get_checker("repl", timeout_s=600) as checker:
        checker.check(slow_proof(60), header=MINI_PRELUDE)
"""


@pytest.mark.parametrize("signo, code", [(signal.SIGTERM, 143), (signal.SIGKILL, -signal.SIGKILL)])
def test_repl_server_dies_with_lean_solve(tmp_path, monkeypatch, marked, signo, code):
    """The repl backend's server is long-lived and busy in Lean, so it would not notice its
    stdin closing: it is tracked, so the handlers and the guard kill its group. Runs through
    lean-interact and the REPL-protocol launcher (tests/launchers) to the bundled Lean."""
    from launchers.toolchain import install_launchers

    install_launchers(tmp_path, monkeypatch)
    mark, env = marked
    env = {**env, **{k: v for k, v in os.environ.items() if k.startswith("LEAN_SOLVE_")}}
    proc, _ = _start(_script(REPL_CHECK), env, mark)
    time.sleep(1.0)  # past the header's short Lean run: the Lean running now is the slow proof's
    assert _lean_pids(mark), "the slow proof's Lean is not running"
    proc.send_signal(signo)
    proc.wait(timeout=30)
    assert proc.returncode == code
    _assert_all_gone(mark)


def test_child_registers_its_group_before_it_runs(lean_cmd, forking_lake, marked):
    """The launcher forks Lean at once, and lean-solve dies before its thread gets to `track`
    (a loaded machine can delay it that long): the child told the guard its group itself."""
    mark, env = marked
    script = _script(f"""
        import subprocess, time
        from lean_prelude import MINI_PRELUDE, slow_proof
        from solve_in_lean.lean import lifecycle

        proc = subprocess.Popen({[str(forking_lake), *lean_cmd]!r}, stdin=subprocess.PIPE,
                                start_new_session=True, preexec_fn=lifecycle.child_preexec())
        proc.stdin.write((MINI_PRELUDE + slow_proof(60)).encode())
        proc.stdin.close()
        time.sleep(60)  # never calls track
    """)
    proc, _ = _start(script, env, mark)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    _assert_all_gone(mark)


@pytest.fixture(scope="module")
def launcher() -> str:
    from solve_in_lean.lean import lifecycle

    exe = lifecycle._launcher()
    if exe is None:
        pytest.skip("no C compiler: the launcher is not built (child_preexec is used instead)")
    return exe


def test_launcher_caps_memory_and_execs(launcher):
    shown = subprocess.run([launcher, str(os.getpid()), "-1", str(1 << 32), sys.executable, "-c",
                            "import resource; print(resource.getrlimit(resource.RLIMIT_AS))"],
                           capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and shown.stdout.strip() == f"({1 << 32}, {1 << 32})"


def test_launcher_refuses_an_orphan_and_reports_a_missing_command(launcher):
    orphan = subprocess.run([launcher, "1", "-1", "0", "/bin/echo", "ran"], capture_output=True, text=True)
    assert (orphan.returncode, orphan.stdout) == (127, "")  # its parent is not the one it was meant for
    missing = subprocess.run([launcher, str(os.getpid()), "-1", "0", "/no/such/lean"], capture_output=True,
                             text=True)
    assert missing.returncode == 127 and "/no/such/lean" in missing.stderr


def test_without_a_c_compiler_python_preexec_does_the_same(lean_cmd, forking_lake, marked, tmp_path):
    """No `cc` on PATH: the kernel runs through its ctypes driver and Lean starts with
    child_preexec; a SIGKILL of lean-solve still leaves nothing, grandchildren included."""
    mark, env = marked
    env = {**env, "PATH": str(Path(sys.executable).parent), "CC": "no-such-cc",
           "LEAN_SOLVE_CACHE": str(tmp_path / "cache")}
    script = _script("""
        from lean_prelude import MINI_PRELUDE, slow_proof
        from solve_in_lean.lean import lifecycle
        from solve_in_lean.lean.kernel import driver_command, find_library
        from solve_in_lean.lean.process import run_limited

        assert lifecycle.launch(None).preexec_fn is not None  # the fallback is what runs
        run_limited([sys.argv[1], *driver_command(find_library()), "--json", "--stdin"],
                    stdin_text=MINI_PRELUDE + slow_proof(60), timeout_s=600, memory_mb=8192,
                    max_output_bytes=1 << 20)
    """)
    script[2] = "import sys\n" + script[2]
    proc, lean = _start([*script, str(forking_lake)], env, mark)
    assert any(argv[0] == sys.executable for pid, argv in _marked(mark).items() if pid in lean)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    _assert_all_gone(mark)


def test_a_forked_worker_does_not_kill_lean_solves_lean(lean_cmd, marked):
    """A worker forked without exec (multiprocessing, vLLM) that gets SIGTERM dies as it would
    have without lean-solve's handlers, and leaves lean-solve's running Lean alone."""
    mark, env = marked
    script = _script(f"""
        import os, signal, threading, time
        from lean_prelude import MINI_PRELUDE, slow_proof
        from solve_in_lean.lean import lifecycle
        from solve_in_lean.lean.process import run_limited

        lifecycle.install_signal_handlers()
        threading.Thread(target=run_limited, args=({lean_cmd!r},), daemon=True,
                         kwargs=dict(stdin_text=MINI_PRELUDE + slow_proof(60), timeout_s=600, memory_mb=None,
                                     max_output_bytes=1 << 20)).start()
        while not lifecycle._groups:
            time.sleep(0.01)
        child = os.fork()
        if child == 0:
            time.sleep(60)
            os._exit(0)
        time.sleep(0.2)
        os.kill(child, signal.SIGTERM)
        _, status = os.waitpid(child, 0)
        print(os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGTERM, flush=True)
        time.sleep(60)
    """)
    proc, lean = _start(script, env, mark)
    verdict = proc.stdout.readline().strip()
    assert verdict == b"True"  # the worker died of SIGTERM, not via lean-solve's handler (exit 143)
    assert _lean_pids(mark) == lean  # lean-solve's Lean still runs
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 143
    _assert_all_gone(mark)


def test_unwritable_cache_falls_back_with_a_warning(tmp_path, kernel):
    """The launcher and the kernel driver are built into the user cache; where that cannot be
    written, Lean still runs (child_preexec, the ctypes driver) and the user is told why it
    may be slower."""
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    out = subprocess.run(_script("""
        import warnings
        from lean_prelude import GOOD_PROOF, MINI_PRELUDE
        from solve_in_lean.lean import get_checker
        from solve_in_lean.lean.process import run_limited

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            run = run_limited(["/bin/echo", "ran"], stdin_text="", timeout_s=30, memory_mb=4096,
                              max_output_bytes=100)
            check = get_checker("kernel").check(GOOD_PROOF, header=MINI_PRELUDE)
        print(run.returncode, run.stdout.strip(), check.status)
        print(" ".join(str(w.message) for w in caught))
    """), capture_output=True, text=True, cwd=REPO, timeout=60,
        env={**os.environ, "LEAN_SOLVE_CACHE": str(blocker / "cache"),
             "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])})
    lines = out.stdout.splitlines()
    assert lines[0] == "0 ran ok", out.stderr
    assert "launcher could not be built" in lines[1] and "kernel driver could not be saved" in lines[1]


def test_solve_batch_sigterm_exits_143_and_resumes_cleanly(kernel, tiny_model_dir, tmp_path, marked):
    """`lean-solve solve -i` (the typer path, a model and the kernel) under SIGTERM: exit 143,
    nothing of it left running, every record written is whole, and a resume finishes the batch
    without redoing or duplicating anything."""
    mark, env = marked
    header = tmp_path / "header.lean"
    header.write_text(MINI_PRELUDE)
    question = "Sam has two apples and gets two more. How many apples does Sam have?"
    problems = tmp_path / "problems.jsonl"
    problems.write_text("".join(json.dumps({"id": f"p{i}", "question": question}) + "\n" for i in range(6)))
    out = tmp_path / "results.jsonl"
    argv = [sys.executable, "-m", "solve_in_lean", "solve", "--input", str(problems), "--output", str(out),
            "-b", "kernel", "--header", str(header), "--model", str(tiny_model_dir), "--model-backend",
            "transformers", "-n", "1", "--formalize-samples", "1", "--cot-samples", "1", "--rounds", "0",
            "--max-new-tokens", "8"]
    env = {**env, "HF_HUB_OFFLINE": "1", "LEAN_SOLVE_PROGRESS": "0"}
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
    assert _wait_for(lambda: out.exists() and out.read_text().count("\n") >= 2, 240), "no records"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err.decode()[-1500:]
    assert b"Traceback" not in err
    _assert_all_gone(mark)
    first = [json.loads(line) for line in out.read_text().splitlines()]
    assert 2 <= len(first) < 6 and not any("error" in r for r in first)
    again = subprocess.run(argv, env=env, capture_output=True, text=True, cwd=REPO, timeout=600)
    assert again.returncode in (0, 1), again.stderr[-1500:]
    final = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(r["id"] for r in final) == [f"p{i}" for i in range(6)]
    assert final[: len(first)] == first
