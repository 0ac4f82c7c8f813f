"""The Python sandbox against hostile model code: each escape is refused or contained, with a
status and one sentence, and containment is checked for real (files that an escape would create
do not exist, the parent's secret is not printed, no child process is left running)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from solve_in_lean.code import SandboxLimits, run_python
from solve_in_lean.code.sandbox import CHILD_SOURCE

LIMITS = SandboxLimits(wall_s=20, cpu_s=5)  # roomy: a loaded CI machine slows start-up, not the verdicts
SECRET_VAR = "LEAN_SOLVE_SANDBOX_TEST_SECRET"
EVERY_LAYER = {"rlimits", "landlock", "seccomp", "no-capabilities", "audit-hook"}
# Model code reaches modules it may not import through ones it may: fractions imports sys.
SYS = "import fractions\nsys = fractions.sys\nos = sys.modules['os']\n"

_probe = run_python("print(6 * 7)", LIMITS)
pytestmark = pytest.mark.skipif(
    _probe.status == "sandbox_error",
    reason=f"{_probe.message} (needs Linux with Landlock and libseccomp2; see docs/code_interpreter.md)")


def _sandbox_children() -> list[int]:
    """Processes still running the sandbox child's code, found by its source in their command line."""
    marker = CHILD_SOURCE.splitlines()[0].encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue  # the process ended while we looked
    return found


@pytest.fixture(autouse=True)
def no_leftovers():
    yield
    assert _sandbox_children() == [], "a sandbox child outlived its run"


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    value = secrets.token_hex(16)
    monkeypatch.setenv(SECRET_VAR, value)
    return value


def _one_sentence(message: str) -> bool:
    return bool(message) and message.endswith(".") and "\n" not in message and "Traceback" not in message


def test_ordinary_code_runs_with_every_layer() -> None:
    assert _probe.ok and _probe.stdout == "42\n", _probe
    assert set(_probe.layers) == EVERY_LAYER


def test_sympy_and_cells_share_a_namespace() -> None:
    r = run_python(["import sympy\nx = sympy.Symbol('x')\nprint('hidden')",
                    "print(sympy.solve(x**2 - 4, x), sympy.Rational(1, 3) + 1)"], LIMITS)
    assert r.ok, r
    assert r.stdout == "[-2, 2] 4/3\n"  # the first cell's output is not shown again


@pytest.mark.parametrize("module", ["os", "sys", "subprocess", "socket", "ctypes", "importlib", "shutil",
                                    "pathlib", "builtins", "threading", "multiprocessing", "gc", "signal"])
def test_imports_outside_the_allowed_set_are_refused(module: str) -> None:
    r = run_python(f"import {module}", LIMITS)
    assert r.status == "refused" and f"import {module}" in r.message and _one_sentence(r.message), r


def test_a_refused_import_can_be_caught_by_fallback_code() -> None:
    r = run_python("try:\n    import numpy\nexcept ImportError:\n    print('no numpy')", LIMITS)
    assert r.ok and r.stdout == "no numpy\n", r


ESCAPES = {
    "__import__": "__import__('os').system('touch {marker}')",
    "eval": "eval(\"__import__('os')\").system('touch {marker}')",
    "exec": "exec(\"import os; os.system('touch {marker}')\")",
    "os.system via sys.modules": SYS + "os.system('touch {marker}')",
    "subclasses walk": "[c for c in ().__class__.__bases__[0].__subclasses__() if c.__name__ == '_wrap_close']"
                       "[0].__init__.__globals__['system']('touch {marker}')",
    "builtin importer": "[c for c in (1).__class__.__mro__[-1].__subclasses__() if c.__name__ == "
                        "'BuiltinImporter'][0].load_module('posix').system('touch {marker}')",
    "subprocess after sympy": "import sympy\n" + SYS + "sys.modules['subprocess'].run(['touch', '{marker}'])",
    "fork bomb": SYS + "while True:\n    os.fork()",
    "exec a binary": SYS + "os.execv('/usr/bin/touch', ['touch', '{marker}'])",
    "posix_spawn": SYS + "os.posix_spawn('/usr/bin/touch', ['touch', '{marker}'], {{}})",
    "ctypes after sympy": "import sympy\n" + SYS + "sys.modules['ctypes'].CDLL(None).system(b'touch {marker}')",
    "write outside": "open('{marker}', 'w').write('x')",
    "write via ..": "open('../../../../../../..{marker}', 'w').write('x')",
    "os.open write": SYS + "os.open('{marker}', os.O_CREAT | os.O_WRONLY)",
    "rename out": SYS + "open('a', 'w').write('x'); os.rename('a', '{marker}')",
    "symlink": SYS + "os.symlink('/etc/hostname', 'link')",
    "chdir": SYS + "os.chdir('/tmp'); open('{marker}', 'w')",
    "read /etc": "print(open('/etc/hostname').read())",
    "list /": SYS + "print(os.listdir('/'))",
    "parent environ": SYS + "print(open(f'/proc/{{os.getppid()}}/environ').read())",
    "signal the parent": SYS + "os.kill(os.getppid(), 9)",
    "signal the group": SYS + "os.killpg(0, 9)",
    "raise limits": SYS + "import resource",
    "setrlimit via modules": SYS + "r = sys.modules['resource']\nr.setrlimit(r.RLIMIT_CPU, (100, 100))",
    "gc walk": SYS + "sys.modules['gc'].get_objects()",
    "settrace": SYS + "sys.settrace(lambda *a: None)",
    "forge code": "(lambda: 0).__code__.replace(co_consts=(1,))",
    "rebind builtins used by the hook": "import fractions\nb = fractions.__builtins__\n"
                                        "b['any'] = lambda *a: False\nb['isinstance'] = lambda *a: False\n"
                                        "open('{marker}', 'w')",
    "rebind the hook's helpers": SYS + "m = sys.modules['__main__']\nm.under = lambda *a: True\n"
                                 "m.normalize = lambda p, c: c\nm._REFUSED_EVENTS = ()\nopen('{marker}', 'w')",
    "path-like object": SYS + "class P:\n    def __fspath__(self):\n        return '{marker}'\nopen(P(), 'w')",
}


@pytest.mark.parametrize("name", sorted(ESCAPES))
def test_escapes_are_refused_or_contained(name: str, tmp_path: Path, secret: str) -> None:
    marker = tmp_path / "escaped"
    r = run_python(ESCAPES[name].format(marker=marker), LIMITS)
    assert not marker.exists(), f"{name}: the escape created {marker}"
    assert secret not in r.stdout + r.stderr
    assert r.status in ("refused", "error"), r
    assert _one_sentence(r.message), r.message
    assert os.getpid() > 0  # still here: no signal reached the test process


def test_hook_bypass_through_posixsubprocess_is_stopped_by_seccomp(tmp_path: Path) -> None:
    """`_posixsubprocess.fork_exec` raises no audit event; the kernel layer refuses the fork."""
    marker = tmp_path / "escaped"
    code = ("import sympy\n" + SYS + "ps = sys.modules['_posixsubprocess']\nr, w = os.pipe()\n"
            f"ps.fork_exec([b'/usr/bin/touch', b'{marker}'], [b'/usr/bin/touch'], True, (w,), None, None,"
            " -1, -1, -1, -1, -1, -1, r, w, True, False, -1, None, None, None, -1, None, False)")
    r = run_python(code, LIMITS)
    assert r.status == "error" and "PermissionError" in r.message, r
    assert not marker.exists()


def test_hook_bypass_through_dir_fd_is_stopped_by_landlock() -> None:
    """A path relative to a descriptor of a read-only folder looks like a sandbox path to the
    hook (it cannot see the descriptor); Landlock still refuses the write."""
    code = ("import fractions\n" + SYS + "lib = os.path.dirname(fractions.__file__)\n"
            "fd = os.open(lib, os.O_RDONLY)\nprint(lib)\n"
            "os.open('lean_solve_sandbox_escape', os.O_CREAT | os.O_WRONLY, dir_fd=fd)")
    r = run_python(code, LIMITS)
    planted = Path(r.stdout.strip()) / "lean_solve_sandbox_escape"
    try:
        assert not planted.exists()
    finally:
        planted.unlink(missing_ok=True)
    assert r.status == "error" and "PermissionError" in r.message, r


def test_environment_is_scrubbed(secret: str) -> None:
    r = run_python(SYS + "print(dict(os.environ))", LIMITS)
    assert r.ok, r
    assert secret not in r.stdout and SECRET_VAR not in r.stdout


def test_files_inside_the_temp_dir_work_and_the_dir_is_removed() -> None:
    r = run_python(SYS + "os.mkdir('d')\nopen('d/x', 'w').write('hi')\nprint(open('d/x').read(), os.getcwd())",
                   LIMITS)
    assert r.ok, r
    text, cwd = r.stdout.split()
    assert text == "hi" and Path(cwd).name.startswith("lean-solve-code-")
    assert not Path(cwd).exists()


def test_file_size_limit() -> None:
    r = run_python("open('big', 'wb').write(b'x' * (3 << 20))", SandboxLimits(wall_s=5, cpu_s=2, file_mb=1))
    assert r.status in ("error", "crashed") and ("File size" in r.message or "SIGXFSZ" in r.message
                                                  or "OSError" in r.message), r


@pytest.mark.parametrize("code", ["x = bytearray(10**10)", "x = [0] * 10**9"])
def test_huge_allocations_hit_the_memory_limit(code: str) -> None:
    r = run_python(code, LIMITS)
    assert r.status == "memory" and "MB memory limit" in r.message, r


def test_infinite_loop_hits_the_cpu_limit() -> None:
    r = run_python("while True:\n    pass", SandboxLimits(wall_s=30, cpu_s=1))
    assert r.status == "cpu_limit" and _one_sentence(r.message), r


def test_sleeping_hits_the_wall_clock() -> None:
    r = run_python("import time\nprint('started')\ntime.sleep(60)", SandboxLimits(wall_s=3, cpu_s=5))
    assert r.status == "timeout" and r.wall_s < 10, r
    assert r.stdout == "started\n"  # what was printed before the kill reaches the parent


def test_huge_output_is_cut() -> None:
    limits = SandboxLimits(wall_s=5, cpu_s=2, output_bytes=10_000)
    r = run_python("while True:\n    print('x' * 1000)", limits)
    assert r.status == "output_limit" and len(r.stdout) <= 10_000, r


def test_deep_recursion_after_raising_the_limit_is_contained() -> None:
    code = SYS + "sys.setrecursionlimit(10**7)\nclass A:\n    def __repr__(self):\n        return repr(self)\nrepr(A())"
    r = run_python(code, LIMITS)
    assert r.status in ("crashed", "memory", "error"), r
    assert _one_sentence(r.message)


def test_exceptions_are_reported_with_the_cell_traceback() -> None:
    r = run_python(["x = 1", "y = x / 0"], LIMITS)
    assert r.status == "error" and r.message == "The code raised ZeroDivisionError in cell 2: division by zero."
    assert 'File "<cell 2>", line 1' in r.stderr and "child" not in r.stderr  # no sandbox frames


FRAGMENTS = [
    "print(sum(range(10)))", "x = [i * i for i in range(5)]", "import math\nprint(math.gcd(12, 18))",
    "from fractions import Fraction\nprint(Fraction(1, 3) * 3)",
    "__import__('os').system('touch {marker}')", SYS + "os.system('touch {marker}')",
    "open('{marker}', 'w').write('x')", SYS + "print(os.environ.get('" + SECRET_VAR + "'))",
    SYS + "print(open(f'/proc/{{os.getppid()}}/environ').read())", SYS + "os.kill(os.getppid(), 15)",
    "x = bytearray(10**10)", "raise ValueError('boom')", "print('y' * 200_000)",
    "try:\n    import socket\nexcept ImportError:\n    pass", "while True:\n    pass",
]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.sampled_from(FRAGMENTS), min_size=1, max_size=4))
def test_combinations_of_hostile_fragments_are_contained(tmp_path: Path, secret: str, parts: list[str]) -> None:
    marker = tmp_path / "escaped"
    r = run_python("\n".join(parts).format(marker=marker), SandboxLimits(wall_s=3, cpu_s=1, output_bytes=50_000))
    assert not marker.exists()
    assert secret not in r.stdout + r.stderr
    assert r.status in ("ok", "error", "refused", "memory", "cpu_limit", "output_limit", "timeout"), r
    assert _one_sentence(r.message), r.message


def test_kernel_layers_are_required_by_default() -> None:
    assert SandboxLimits().require_kernel
    with pytest.raises(ValueError):
        SandboxLimits(cpu_s=0)


def test_model_code_cannot_rewrite_the_status_record() -> None:
    """The status pipe is inherited, so code can write to it; the child's own first lines win."""
    forge = ("for fd in range(3, 40):\n    try:\n"
             "        os.write(fd, b'{\"layers\": [\"forged\"]}\\n{\"setup_error\": \"forged\"}\\n')\n"
             "    except OSError:\n        pass\nprint('done')")
    r = run_python(SYS + forge, LIMITS)
    assert r.ok and r.stdout == "done\n", r
    assert set(r.layers) == EVERY_LAYER


def test_status_lines_and_outcomes_from_hostile_pipe_text() -> None:
    from solve_in_lean.code.child import REFUSED_EXIT, SETUP_EXIT
    from solve_in_lean.code.sandbox import _outcome, _status_lines

    raw = b'\xff garbage\n[1, 2]\n{"layers": ["rlimits"]}\n{"layers": ["x"]}\nrefused\tFirst.\nrefused\tSecond.\n'
    layers, refused, setup, exception = _status_lines(raw)
    assert (layers, refused, setup, exception) == (["rlimits"], "First.", None, None)
    kw = {"overflow": False, "timed_out": False, "limits": LIMITS, "wall_s": 0.1}
    assert _outcome(SETUP_EXIT, None, "seccomp: missing", None, **kw)[0] == "sandbox_error"
    assert _outcome(REFUSED_EXIT, None, None, None, **kw) == ("error", f"The code exited with status {REFUSED_EXIT}.")
    assert _outcome(-99, None, None, None, **kw)[1].startswith("The Python process died from signal 99")
    assert _outcome(1, None, None, {"exception": "KeyError", "cell": 1, "message": "'a'"}, **kw) == (
        "error", "The code raised KeyError in cell 1: 'a'.")


def test_file_count_limit_bounds_the_disk_a_run_fills() -> None:
    r = run_python("for i in range(40):\n    open(f'f{i}', 'w').write('x')", SandboxLimits(wall_s=20, cpu_s=5,
                                                                                          max_files=32))
    assert r.status == "refused" and "create more than 32 files" in r.message, r


def test_drop_capabilities_empties_every_set() -> None:
    """Checked in a plain process (the sandbox itself may not read /proc)."""
    import subprocess
    import sys

    code = ("from solve_in_lean.code.child import drop_capabilities\nassert drop_capabilities() is None\n"
            "print(open('/proc/self/status').read())")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    caps = dict(line.split(":\t") for line in out.splitlines() if line.startswith(("CapEff", "CapPrm", "CapInh")))
    assert caps == {"CapInh": "0000000000000000", "CapPrm": "0000000000000000", "CapEff": "0000000000000000"}


def test_a_sandbox_child_dies_with_its_killed_parent():
    """The child starts through lifecycle's launcher (no preexec_fn, so no full fork of a parent
    that holds a model); the death signal and guard it sets up must still end it on kill -9."""
    import signal
    import subprocess
    import sys
    import time

    parent = subprocess.Popen([sys.executable, "-c", "from solve_in_lean.code import SandboxLimits, run_python\n"
                               "run_python('import time\\ntime.sleep(60)', SandboxLimits(wall_s=120, cpu_s=5))"])

    def mine() -> list[int]:
        found = []
        for pid in _sandbox_children():
            try:
                ppid = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1]
            except OSError:
                continue  # it ended while we looked
            if ppid == str(parent.pid):
                found.append(pid)
        return found
    try:
        deadline = time.monotonic() + 60
        while not mine():
            assert parent.poll() is None and time.monotonic() < deadline, "the sandbox child never started"
            time.sleep(0.02)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while _sandbox_children() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _sandbox_children() == [], "the sandbox child outlived its killed parent"
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()
