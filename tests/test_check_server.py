"""The check server (solve_in_lean/check_server) as users run it: real `lean-solve server` and
`lean-solve check` subprocesses, the real bundled Lean, a private runtime directory per test
module (XDG_RUNTIME_DIR), so no other test or user ever talks to these servers.

Every check said to go through the server is counted by the server's own `requests`, and every
fallback is shown not to have been counted: a test cannot pass by checking in process only.

The servers and their clients run a snapshot of the package (PYTHONPATH): a server answers only
while its code files are unchanged, and others edit this checkout while the tests run.
"""

import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from lean_prelude import GOOD_PROOF, MINI_PRELUDE, WRONG_PROOF, slow_proof
from solve_in_lean.check_server.client import Fallback, dir_problem, peer_problem
from solve_in_lean.lean.base import MAX_INPUT_BYTES

pytestmark = pytest.mark.usefixtures("kernel")
ROOT = Path(__file__).resolve().parents[1]


def snapshot(where: Path) -> str:
    """A copy of the packages to run from (see the module's docstring)."""
    for package in ("solve_in_lean", "autoformalize"):
        shutil.copytree(ROOT / package, where / package, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    return str(where)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    return snapshot(tmp_path_factory.mktemp("site"))


def environment(runtime: str, site: str, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("LEAN_SOLVE_CHECK_SERVER", "LEAN_SOLVE_PROGRESS")}
    return {**env, "XDG_RUNTIME_DIR": runtime, "PYTHONPATH": site, "NO_COLOR": "1", "COLUMNS": "100", **extra}


def lean_solve(*args: str, env: dict, cwd=None, stdin: bytes | None = None, timeout: float = 180):
    """`python -m` imports from its working directory first: by default, the snapshot's."""
    return subprocess.run([sys.executable, "-m", "solve_in_lean", *args], input=stdin, capture_output=True,
                          env=env, cwd=cwd or env["PYTHONPATH"], timeout=timeout)


def status(env: dict) -> dict | None:
    proc = lean_solve("server", "status", "--json", env=env)
    data = json.loads(proc.stdout)
    assert (proc.returncode == 0) == ("pid" in data), proc
    return data if "pid" in data else None


def requests(env: dict) -> int:
    return status(env)["requests"]


def children(pid: int) -> set[int]:
    """Processes whose parent is `pid` (the Leans a server started, its guard)."""
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_bytes().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != b"Z":
                found.add(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_bytes().rsplit(b")", 1)[1].split()[0] != b"Z"
    except OSError:
        return False


def wait_until(condition, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def start(env: dict, *args: str, cwd=None) -> dict:
    proc = lean_solve("server", "start", *args, env=env, cwd=cwd)
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stdout.decode().startswith("check server started (pid "), proc.stdout
    info = status(env)
    assert info is not None, list(Path(env["XDG_RUNTIME_DIR"], "lean-solve").glob("*.log"))[0].read_text()
    return info


def stop(env: dict) -> None:
    lean_solve("server", "stop", env=env)


@pytest.fixture(scope="module")
def runtime():
    path = tempfile.mkdtemp(prefix="ls-rt-", dir="/tmp")  # short: a socket path has at most 107 bytes
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def server(runtime, site, tmp_path_factory):
    """One server for the module, started from a directory other than the clients'."""
    env = environment(runtime, site)
    info = start(env, "--idle", "600", cwd=tmp_path_factory.mktemp("server-cwd"))
    yield env, info
    stop(env)


@pytest.fixture
def private():
    """private(site) -> the environment of a runtime directory of this test's own; any server
    left running there is stopped (and the directory removed) when the test ends."""
    made = []

    def make(site: str) -> dict:
        made.append(environment(tempfile.mkdtemp(prefix="ls-rt-", dir="/tmp"), site))
        return made[-1]

    yield make
    for env in made:
        if os.path.isdir(directory := os.path.join(env["XDG_RUNTIME_DIR"], "lean-solve")):
            os.chmod(directory, 0o700)
        stop(env)
        shutil.rmtree(env["XDG_RUNTIME_DIR"], ignore_errors=True)


@pytest.fixture
def cases(tmp_path):
    """Files for every kind of verdict and every way a check can fail to run."""
    (tmp_path / "good.lean").write_text(MINI_PRELUDE + GOOD_PROOF)
    (tmp_path / "bad.lean").write_text(MINI_PRELUDE + WRONG_PROOF)
    (tmp_path / "sorry.lean").write_text(MINI_PRELUDE + "theorem s : Eq N.two N.four := sorry\n")
    (tmp_path / "axiom.lean").write_text(MINI_PRELUDE + "axiom cheat : False\ntheorem c : Eq N.two N.four := "
                                         "False.elim cheat\n")
    (tmp_path / "escape.lean").write_text(MINI_PRELUDE + "def x : N := «\x1b]0;owned\x07\x1b[31m»\n")
    (tmp_path / "binary.lean").write_bytes(b"prelude\n\xff\xfe\x00theorem")
    (tmp_path / "huge.lean").write_text("-- " + "x" * MAX_INPUT_BYTES + "\n")
    (tmp_path / "header.lean").write_text(MINI_PRELUDE)
    (tmp_path / "body.lean").write_text(GOOD_PROOF)
    (tmp_path / "a dir").mkdir()
    return tmp_path


DIFFERENTIAL = [
    (["good.lean"], None),
    (["bad.lean"], None),
    (["sorry.lean"], None),
    (["axiom.lean"], None),
    (["axiom.lean", "--allow-axiom", "cheat"], None),
    (["escape.lean"], None),
    (["binary.lean"], None),
    (["huge.lean"], None),
    (["good.lean/x"], None),  # unreadable (not a directory): root reads any file, so not chmod
    (["a dir"], None),
    (["missing.lean"], None),
    (["-"], (MINI_PRELUDE + GOOD_PROOF).encode()),
    (["-", "--json"], b"\xff\xfe not text"),
    (["--header", "-", "body.lean"], MINI_PRELUDE.encode()),
    (["-"], b"-- " + b"y" * MAX_INPUT_BYTES),
    (["good.lean", "--json"], None),
    (["bad.lean", "--json"], None),
    (["body.lean", "--header", "header.lean"], None),
    (["good.lean", "--theorem", "two_add_two", "--statement", "Eq (N.add N.two N.two) N.four"], None),
    (["good.lean", "--theorem", "two_add_two", "--statement", "Eq N.two N.two"], None),
    (["good.lean", "bad.lean", "a dir", "missing.lean", "escape.lean", "good.lean", "-j", "2"], None),
    (["good.lean", "bad.lean", "axiom.lean", "--json"], None),
    (["good.lean", "--theorem", "x"], None),
    (["good.lean", "--workers", "0"], None),
    (["--header", "-", "-"], b""),
    (["--frobnicate", "good.lean"], None),
    (["--help"], None),
    (["good.lean", "--config", "nowhere.toml"], None),
    (["good.lean", "-b", "nonsense"], None),
]

_ELAPSED = (re.compile(rb"\d+\.\d\d s\)"), re.compile(rb'"elapsed_s": [0-9.e-]+'))


def normalized(out: bytes) -> bytes:
    """Output with the seconds a check took (the one thing that differs run to run) blanked."""
    return _ELAPSED[1].sub(b'"elapsed_s": T', _ELAPSED[0].sub(b"T s)", out))


def test_server_output_equals_in_process_output_byte_for_byte(server, cases):
    env, _ = server
    local = {**env, "LEAN_SOLVE_CHECK_SERVER": "off"}
    before = requests(env)
    codes = set()
    for argv, stdin in DIFFERENTIAL:
        via = lean_solve("check", *argv, env=env, cwd=cases, stdin=stdin)
        here = lean_solve("check", *argv, env=local, cwd=cases, stdin=stdin)
        assert (via.returncode, normalized(via.stdout), via.stderr) == \
            (here.returncode, normalized(here.stdout), here.stderr), argv
        assert b"Traceback" not in via.stderr + here.stderr
        codes.add(via.returncode)
    # every one of them went through the server (--help and bad arguments too)
    assert requests(env) == before + len(DIFFERENTIAL)
    assert codes == {0, 1, 2}  # verified, rejected and could-not-check all occur
    escaped = lean_solve("check", "escape.lean", env=env, cwd=cases)
    assert b"\x1b" not in escaped.stdout and b"\\x1b" in escaped.stdout and escaped.returncode == 1


def test_config_in_the_clients_directory_is_the_one_read(server, cases):
    env, _ = server
    (cases / "lean-solve.toml").write_text('[lean]\nbackend = "nonsense"\n')
    before = requests(env)
    via = lean_solve("check", "good.lean", env=env, cwd=cases)
    assert via.returncode == 2  # the client's lean-solve.toml, not one in the server's directory
    assert via.stderr.decode() == f"lean-solve: {cases}/lean-solve.toml: [lean] backend must be one of auto, " \
                                  "repl, lake, kernel, ray, not 'nonsense'\n"
    assert requests(env) == before + 1


def test_four_concurrent_clients_get_their_own_verdicts(server, tmp_path):
    env, _ = server
    names = []
    for i in range(4):
        path = tmp_path / f"c{i}.lean"
        path.write_text(MINI_PRELUDE + (GOOD_PROOF if i % 2 == 0 else WRONG_PROOF))
        names.append(path.name)
    before = requests(env)
    procs = [subprocess.Popen([sys.executable, "-m", "solve_in_lean", "check", name], cwd=tmp_path, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for name in names]
    outs = [(p.communicate(timeout=120), p.returncode) for p in procs]
    for i, ((out, err), code) in enumerate(outs):
        assert code == i % 2, (out, err)
        verdict = out.decode().splitlines()[-1]
        assert verdict.startswith(f"c{i}.lean: {'verified' if i % 2 == 0 else 'rejected'} (kernel")
    assert requests(env) == before + 4


def test_at_most_four_checkers_are_kept_the_least_recently_used_goes(server, cases):
    env, _ = server
    for timeout in ("31", "32", "33", "34", "35", "31"):
        checked = lean_solve("check", "good.lean", "--timeout", timeout, env=env, cwd=cases)
        assert checked.returncode == 0, checked.stdout
    timeouts = [h["options"].get("timeout_s") for h in status(env)["checkers"]]
    assert len(timeouts) == 4 and 32.0 not in timeouts and {31.0, 33.0, 34.0, 35.0} <= set(timeouts)


def test_status_json_describes_the_server(server):
    env, info = server
    assert info["idle_timeout_s"] == 600 and alive(info["pid"])
    assert info["socket"].startswith(env["XDG_RUNTIME_DIR"]) and os.path.exists(info["socket"])
    assert isinstance(info["requests"], int) and info["uptime_s"] >= 0
    [held] = [h for h in info["checkers"] if h["backend"] == "kernel" and h["options"].get("workers") is None]
    wait_until(lambda: any(h["leans_ready"] == 2 for h in status(env)["checkers"]), what="a full pool")
    assert stat.S_IMODE(os.stat(os.path.dirname(info["socket"])).st_mode) == 0o700


def test_start_when_one_runs_says_so(server):
    env, info = server
    again = lean_solve("server", "start", env=env)
    assert again.returncode == 0
    assert again.stdout.decode().startswith(f"a check server already runs for this installation (pid {info['pid']}")


def test_environment_mismatch_checks_in_process(server, cases):
    env, _ = server
    before = requests(env)
    other = lean_solve("check", "good.lean", env={**env, "LEAN_SOLVE_SOMETHING": "1"}, cwd=cases)
    assert other.returncode == 0 and b"good.lean: verified" in other.stdout and other.stderr == b""
    assert requests(env) == before  # answered "mismatch": the check ran in the client


def test_no_server_flag_and_switch_check_in_process(server, cases):
    env, _ = server
    before = requests(env)
    assert lean_solve("check", "good.lean", "--no-server", env=env, cwd=cases).returncode == 0
    assert lean_solve("check", "good.lean", "--no-se", env=env, cwd=cases).returncode == 0  # argparse's abbreviation
    assert lean_solve("check", "bad.lean", env={**env, "LEAN_SOLVE_CHECK_SERVER": "off"}, cwd=cases).returncode == 1
    assert requests(env) == before


def test_batch_with_a_progress_bar_checks_in_process(server, cases):
    env, _ = server
    before = requests(env)
    bar = lean_solve("check", "good.lean", "bad.lean", env={**env, "LEAN_SOLVE_PROGRESS": "1"}, cwd=cases)
    assert bar.returncode == 1 and b"checking" in bar.stderr  # rich drew it in the client
    assert requests(env) == before


def test_a_foreign_peer_is_refused():
    a, b = socket.socketpair(socket.AF_UNIX)
    with a, b:
        assert peer_problem(a) is None
        problem = peer_problem(a, uid=os.getuid() + 1)
        assert problem is not None and f"uid {os.getuid()}," in problem and f"not uid {os.getuid() + 1}" in problem


def test_directory_open_to_others_is_refused_by_client_and_server(private, site, tmp_path):
    env = private(site)
    start(env, "--idle", "120")
    directory = os.path.join(env["XDG_RUNTIME_DIR"], "lean-solve")
    os.chmod(directory, 0o755)
    assert "mode 755" in dir_problem(directory)
    (tmp_path / "good.lean").write_text(MINI_PRELUDE + GOOD_PROOF)
    checked = lean_solve("check", "good.lean", env=env, cwd=tmp_path)
    assert checked.returncode == 0 and b"verified" in checked.stdout  # in process
    assert checked.stderr.decode().startswith(f"lean-solve: not using the check server: {directory} can be "
                                              "entered by other users (mode 755)")
    refused = lean_solve("server", "start", "--foreground", env=env)
    assert refused.returncode == 2
    assert b"mode 755" in refused.stdout + refused.stderr and b"Traceback" not in refused.stderr


def test_stop_leaves_no_lean_behind(private, site):
    env = private(site)
    info = start(env, "--idle", "120")
    wait_until(lambda: status(env)["checkers"][0]["leans_ready"] == 2, what="a full pool")
    started = children(info["pid"])
    assert len(started) >= 3  # two Leans waiting and the guard
    stopped = lean_solve("server", "stop", env=env)
    assert stopped.stdout.decode() == f"check server stopped (pid {info['pid']})\n"
    assert not alive(info["pid"])
    wait_until(lambda: not any(alive(p) for p in started), 10, "the server's children to exit")
    assert not os.path.exists(info["socket"]) and status(env) is None
    assert lean_solve("server", "stop", env=env).stdout == b"no check server runs for this installation\n"


def test_sigterm_kills_every_lean_and_removes_the_socket(private, site):
    env = private(site)
    info = start(env, "--idle", "120")
    wait_until(lambda: status(env)["checkers"][0]["leans_ready"] == 2, what="a full pool")
    started = children(info["pid"])
    os.kill(info["pid"], signal.SIGTERM)
    wait_until(lambda: not alive(info["pid"]), 20, "the server to exit")
    wait_until(lambda: not any(alive(p) for p in started), 10, "the server's children to exit")
    assert not os.path.exists(info["socket"])


def test_idle_server_exits(private, site):
    env = private(site)
    info = start(env, "--idle", "1.5")
    leans = children(info["pid"])
    wait_until(lambda: not alive(info["pid"]), 20, "the idle server to exit")
    wait_until(lambda: not any(alive(p) for p in leans), 10, "its Leans to exit")
    assert not os.path.exists(info["socket"])
    log = Path(info["log"]).read_text()
    assert "idle for 1.5 s: exiting" in log


def test_stale_socket_of_a_killed_server_is_replaced(private, site, tmp_path):
    env = private(site)
    info = start(env, "--idle", "120")
    os.kill(info["pid"], signal.SIGKILL)
    wait_until(lambda: not alive(info["pid"]), what="the server to die")
    assert os.path.exists(info["socket"])  # left behind
    (tmp_path / "bad.lean").write_text(MINI_PRELUDE + WRONG_PROOF)
    checked = lean_solve("check", "bad.lean", env=env, cwd=tmp_path)
    assert checked.returncode == 1 and b"bad.lean: rejected" in checked.stdout and checked.stderr == b""
    again = start(env, "--idle", "120")
    assert again["pid"] != info["pid"] and requests(env) == 0
    assert lean_solve("check", "bad.lean", env=env, cwd=tmp_path).returncode == 1
    assert requests(env) == 1


def test_server_killed_mid_request_gives_the_verdict_in_process_with_the_same_stdin(private, site, tmp_path):
    """The client read the file from its stdin for the server; the server dies before replying;
    the check in process gets the same bytes and the same verdict (a timeout, here)."""
    env = private(site)
    info = start(env, "--idle", "120")
    code = (MINI_PRELUDE + slow_proof()).encode()
    client = subprocess.Popen([sys.executable, "-m", "solve_in_lean", "check", "-", "--timeout", "4"],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              env=env, cwd=tmp_path)
    result = {}
    talker = threading.Thread(target=lambda: result.update(out=client.communicate(code, timeout=120)))
    talker.start()
    wait_until(lambda: any(h["in_use"] for h in status(env)["checkers"]), what="the check in flight")
    leans = children(info["pid"])
    os.kill(info["pid"], signal.SIGKILL)
    talker.join()
    out, err = result["out"]
    assert client.returncode == 1, (out, err)
    assert re.fullmatch(r"<stdin>: rejected \(kernel, Lean 4\.35\.0, \d+\.\d\d s\)", out.decode().splitlines()[-1])
    assert b"did not finish within 4 s" in out and err == b""
    wait_until(lambda: not any(alive(p) for p in leans), 10, "the killed server's Leans to die")


def test_changed_code_makes_the_server_stale_and_the_client_checks_in_process(private, site, tmp_path):
    """A server answers "stale" once a file of its code changes, and exits; the client checks in
    process. (Its own snapshot: this one is changed.)"""
    copy = Path(snapshot(tmp_path / "site"))
    env = private(str(copy))
    info = start(env, "--idle", "120")
    (tmp_path / "good.lean").write_text(MINI_PRELUDE + GOOD_PROOF)
    assert lean_solve("check", "good.lean", env=env, cwd=tmp_path).returncode == 0
    assert requests(env) == 1  # served by the copy's server
    assert status(environment(env["XDG_RUNTIME_DIR"], site)) is None  # keyed by installation: another copy's has none
    module = copy / "solve_in_lean" / "answers.py"
    module.write_text(module.read_text() + "\n# changed\n")
    checked = lean_solve("check", "good.lean", env=env, cwd=tmp_path)
    assert checked.returncode == 0 and b"good.lean: verified" in checked.stdout and checked.stderr == b""
    wait_until(lambda: not alive(info["pid"]), 20, "the stale server to exit")
    assert "code changed: exiting" in Path(info["log"]).read_text()


def test_fallback_gives_kept_stdin_first_then_reads_on():
    chunks = iter([b"456", b""])
    read = Fallback(b"0123").reader(lambda n: next(chunks)[:n])
    assert read(2) == b"01" and read(5) == b"23456"
    assert Fallback(None).reader(lambda n: b"x" * n)(3) == b"xxx"


def test_pool_leans_outlive_the_threads_that_take_them_and_die_with_close(kernel):
    """The launcher kills a Lean when the thread that started it ends (PR_SET_PDEATHSIG): pool
    Leans are started by the pool's own thread, so request threads ending leave them alive."""
    from solve_in_lean.lean import get_checker
    from solve_in_lean.verify import verify

    checker = get_checker("kernel", workers=2)
    checker.warm(2)
    wait_until(lambda: checker.pooled == 2, what="a full pool")
    verdicts = []
    for code in (GOOD_PROOF, WRONG_PROOF, GOOD_PROOF):  # each in a thread that ends right after
        worker = threading.Thread(target=lambda c=code: verdicts.append(verify(MINI_PRELUDE + c, checker).verified))
        worker.start()
        worker.join()
        wait_until(lambda: checker.pooled == 2, what="the pool refilled")
        time.sleep(0.2)  # a Lean killed with its thread would be dead by now
        assert all(r.proc.poll() is None for r in checker._pool)
    assert verdicts == [True, False, True] and checker._in_flight == 0
    checker.prestart()  # takes one: none is started in its place until that Lean's check ends
    time.sleep(0.5)
    assert checker.pooled == 1
    checker.cancel_prestart()
    wait_until(lambda: checker.pooled == 2, what="the pool refilled after the cancelled check")
    pool = [r.proc for r in checker._pool]
    checker.close()
    assert all(p.returncode is not None for p in pool) and checker.pooled == 0


def test_a_reply_that_is_not_the_protocol_makes_the_client_check_in_process(private, site, tmp_path):
    """A listener at the server's socket that answers with a forged-but-malformed verdict, with
    something that is not JSON, or with half a message: the client prints none of it."""
    env = private(site)
    path = subprocess.run([sys.executable, "-c", "from solve_in_lean.check_server.client import socket_path; "
                           "print(socket_path())"], env=env, cwd=site, capture_output=True, text=True,
                          check=True).stdout.strip()
    os.makedirs(os.path.dirname(path), mode=0o700)
    replies = [b'{"done": true, "out": "bad.lean: verified (forged)\\n", "err": "", "code": "0"}\n',
               b"forged: not json\n", b'{"done": true, "out": "bad.lean: verified (forged)\\n", "err": "", "co']
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen()

        def answer() -> None:
            for reply in replies:
                conn, _ = listener.accept()
                with conn:
                    conn.recv(1 << 20)
                    conn.sendall(reply)

        talker = threading.Thread(target=answer, daemon=True)
        talker.start()
        (tmp_path / "bad.lean").write_text(MINI_PRELUDE + WRONG_PROOF)
        for _ in replies:
            checked = lean_solve("check", "bad.lean", env=env, cwd=tmp_path)
            assert checked.returncode == 1 and b"forged" not in checked.stdout + checked.stderr
            assert checked.stdout.decode().splitlines()[-1].startswith("bad.lean: rejected (kernel")
        talker.join(timeout=10)
        assert not talker.is_alive()  # every reply was taken: each check asked the listener first
    os.unlink(path)
