"""Run model-written Python in a confined child process and say plainly what happened.

Model output is hostile input. The child (`child.py`) confines itself before the first line of
model code: resource limits, Landlock, seccomp and an audit hook (docs/code_interpreter.md has
the threat model). This side adds what only the parent can enforce: a fresh empty temporary
directory as cwd (deleted afterwards), an empty environment, `python -I -S`, a wall clock,
an output cap, and SIGKILL to the child's whole process group when it ends or overruns.
Every run ends in a `SandboxResult` with a status and one sentence; nothing raises.
"""

from __future__ import annotations

import importlib.util
import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal, Sequence

from solve_in_lean.code.child import REFUSED_EXIT, SETUP_EXIT
from solve_in_lean.lean.lifecycle import launch, tracked

LAUNCH_FAILED_EXIT = 127
"""What lifecycle's compiled launcher (lean/launcher.c) exits with when it cannot set up or exec."""

CHILD_SOURCE = (Path(__file__).parent / "child.py").read_text(encoding="utf-8")

DEFAULT_MODULES = ("math", "cmath", "fractions", "decimal", "numbers", "itertools", "functools", "operator",
                   "collections", "heapq", "bisect", "statistics", "random", "re", "string", "datetime",
                   "calendar", "time", "sympy", "mpmath")

Status = Literal["ok", "error", "refused", "timeout", "cpu_limit", "memory", "output_limit", "crashed",
                 "sandbox_error"]


@dataclass(frozen=True)
class SandboxLimits:
    """What one run may use. Defaults fit a few seconds of arithmetic or sympy."""

    wall_s: float = 10.0
    cpu_s: int = 5
    memory_mb: int = 1024
    """Address space (RLIMIT_AS): importing sympy needs about 100 MB of it."""
    output_bytes: int = 64 * 1024
    """stdout + stderr together; past this the child is killed and the output cut."""
    file_mb: int = 16
    """Largest file the code may write (RLIMIT_FSIZE), in its temporary directory only."""
    max_files: int = 32
    """Files and folders the code may create: with `file_mb`, what bounds the disk one run fills."""
    modules: tuple[str, ...] = DEFAULT_MODULES
    require_kernel: bool = True
    """Refuse to run when Landlock, seccomp or the capability drop cannot be applied (old kernel,
    no libseccomp), rather than run with fewer layers. Turn off only for trusted code."""

    def __post_init__(self) -> None:
        if not (0 < self.wall_s <= 3600 and 0 < self.cpu_s <= 3600):
            raise ValueError("wall_s and cpu_s must be positive and at most an hour")
        if self.memory_mb < 64 or self.output_bytes < 1 or self.file_mb < 0 or self.max_files < 0:
            raise ValueError("memory_mb must be at least 64, output_bytes positive, file_mb and max_files "
                             "at least 0")
        object.__setattr__(self, "modules", tuple(self.modules))


@dataclass
class SandboxResult:
    status: Status
    message: str
    """One sentence saying what happened, fit for a log line or the model's next prompt."""
    stdout: str = ""
    stderr: str = ""
    exit_code: int | None = None
    wall_s: float = 0.0
    layers: list[str] = field(default_factory=list)
    """The confinement layers that were in force (rlimits, landlock, seccomp, no-capabilities,
    audit-hook)."""

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def to_dict(self) -> dict:
        return asdict(self)


@lru_cache(maxsize=8)
def _module_paths(modules: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(folders to add to the child's sys.path, third-party top-level names) for the allowed
    modules that are not in the standard library and are installed here."""
    paths: list[str] = []
    names: list[str] = []
    for name in modules:
        if name in sys.stdlib_module_names:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            continue  # not installed: importing it in the sandbox fails with ImportError
        names.append(name)
        folder = str(Path(spec.origin).parent.parent if spec.submodule_search_locations else
                     Path(spec.origin).parent)
        if folder not in paths:
            paths.append(folder)
    return tuple(paths), tuple(names)


def _read_roots(module_paths: Sequence[str]) -> list[str]:
    """What the child may read: the standard library, the allowed packages, and the shared
    libraries that extension modules load. Not /etc, /proc, /home or the project."""
    python = {sysconfig.get_path(k) for k in ("stdlib", "platstdlib")}
    libdir = sysconfig.get_config_var("LIBDIR")  # where a conda or pyenv Python keeps libz, libffi...
    if libdir:
        python.add(libdir)
    dynload = {str(Path(p)) for p in sys.path if p.endswith("lib-dynload")}
    system_libs = ["/lib", "/lib64", "/usr/lib", "/usr/lib64", "/etc/ld.so.cache"]
    return sorted({*python, *dynload, *module_paths}) + system_libs


def run_python(cells: str | Sequence[str], limits: SandboxLimits | None = None) -> SandboxResult:
    """Run `cells` (one string, or several run in one namespace with only the last one's output
    shown) in a fresh sandbox and report how it ended."""
    limits = limits or SandboxLimits()
    cells = [cells] if isinstance(cells, str) else list(cells)
    tmp = tempfile.mkdtemp(prefix="lean-solve-code-")
    try:
        return _run(cells, limits, os.path.realpath(tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run(cells: list[str], limits: SandboxLimits, tmp: str) -> SandboxResult:
    module_paths, third_party = _module_paths(limits.modules)
    status_r, status_w = os.pipe()
    config = {"cells": cells, "tmp": tmp, "status_fd": status_w, "cpu_s": limits.cpu_s,
              "memory_bytes": limits.memory_mb << 20, "file_bytes": limits.file_mb << 20,
              "max_files": limits.max_files,
              "module_paths": list(module_paths), "third_party": list(third_party),
              "read_roots": _read_roots(module_paths),
              "allowed_modules": list(limits.modules), "require_kernel": limits.require_kernel}
    start = time.monotonic()
    try:
        # Started like Lean (lifecycle.launch: the death signal and the guard, set by a small
        # compiled launcher, so no preexec_fn forces a full fork of a parent holding a model);
        # every limit is set by the child itself (child.py), after exec.
        how = launch(None)
        proc = subprocess.Popen(how.prefix + [sys.executable, "-I", "-S", "-c", CHILD_SOURCE],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp,
                                env={}, pass_fds=(status_w, *how.pass_fds), start_new_session=True,
                                preexec_fn=how.preexec_fn)
    except OSError as e:
        os.close(status_r)
        os.close(status_w)
        return SandboxResult("sandbox_error", f"The Python sandbox could not start: {e}.")
    os.close(status_w)
    with tracked(proc):
        try:
            out, err, status, overflow, timed_out = _communicate(proc, json.dumps(config).encode(), status_r,
                                                                 limits)
        finally:
            _kill_group(proc)
            proc.wait()
            os.close(status_r)
    return _verdict(proc.returncode, out, err, status, overflow=overflow, timed_out=timed_out,
                    limits=limits, wall_s=time.monotonic() - start)


def _communicate(proc: subprocess.Popen, config: bytes, status_fd: int,
                 limits: SandboxLimits) -> tuple[bytes, bytes, bytes, bool, bool]:
    """Feed the config, collect stdout, stderr and the status pipe until all close, the output
    cap is passed (overflow) or the wall clock runs out (timed_out); kill the group in both cases."""
    assert proc.stdin and proc.stdout and proc.stderr
    try:
        proc.stdin.write(config)
        proc.stdin.close()
    except BrokenPipeError:
        pass  # the child died before reading; its exit status tells why
    chunks: dict[int, bytearray] = {proc.stdout.fileno(): bytearray(), proc.stderr.fileno(): bytearray(),
                                    status_fd: bytearray()}
    deadline = time.monotonic() + limits.wall_s
    overflow = timed_out = False
    with selectors.DefaultSelector() as sel:
        for fd in chunks:
            sel.register(fd, selectors.EVENT_READ)
        while sel.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            for key, _ in sel.select(remaining):
                data = os.read(key.fd, 65536)
                if not data:
                    sel.unregister(key.fd)
                    continue
                chunks[key.fd] += data
            if sum(len(c) for c in chunks.values()) > limits.output_bytes + 4096:
                overflow = True
                break
    if overflow or timed_out:
        _kill_group(proc)
    return (bytes(chunks[proc.stdout.fileno()]), bytes(chunks[proc.stderr.fileno()]), bytes(chunks[status_fd]),
            overflow, timed_out)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        return  # already gone, with everything in its group


def _status_lines(raw: bytes) -> tuple[list[str], str | None, str | None, dict | None]:
    """(layers, refusal, setup error, exception) from the status pipe; the child's own lines come
    first, anything model code wrote there later is ignored unless it is well formed."""
    layers: list[str] = []
    refused = setup = None
    exception = None
    for line in raw.decode("utf-8", "replace").splitlines():
        if line.startswith("refused\t") and refused is None:
            refused = line.partition("\t")[2][:500]
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(obj, dict):
            continue
        if "layers" in obj and not layers and isinstance(obj["layers"], list):
            layers = [str(x) for x in obj["layers"]]
        elif "setup_error" in obj and setup is None:
            setup = str(obj["setup_error"])[:500]
        elif "exception" in obj and exception is None:
            exception = obj
    return layers, refused, setup, exception


def _verdict(rc: int | None, out: bytes, err: bytes, status: bytes, *, overflow: bool, timed_out: bool,
             limits: SandboxLimits, wall_s: float) -> SandboxResult:
    layers, refused, setup, exception = _status_lines(status)
    cap = limits.output_bytes
    # The child reports its layers before any code runs; exit 127 without them is the launcher's.
    launch_error = None
    if rc == LAUNCH_FAILED_EXIT and not layers and setup is None:
        launch_error = (err.decode("utf-8", "replace").strip().splitlines() or ["no reason given"])[-1][:300]
    kind, message = _outcome(rc, refused, setup, exception, overflow=overflow, timed_out=timed_out,
                             limits=limits, wall_s=wall_s, launch_error=launch_error)
    return SandboxResult(kind, " ".join(message.split()), out[:cap].decode("utf-8", "replace"),
                         err[:cap].decode("utf-8", "replace"), rc, round(wall_s, 3), layers)


def _outcome(rc: int | None, refused: str | None, setup: str | None, exception: dict | None, *, overflow: bool,
             timed_out: bool, limits: SandboxLimits, wall_s: float,
             launch_error: str | None = None) -> tuple[Status, str]:
    """The status and its sentence; the parent's own observations (clock, output cap) come first,
    since a child killed for them cannot report anything."""
    if timed_out:
        return "timeout", f"The code ran longer than the wall-clock limit of {limits.wall_s:g} s and was killed."
    if overflow:
        return "output_limit", (f"The code printed more than {limits.output_bytes} bytes and was killed; "
                                "the output is cut.")
    if launch_error is not None:
        return "sandbox_error", f"The Python sandbox could not start: {launch_error}."
    if rc == REFUSED_EXIT and refused:
        return "refused", refused
    if rc == SETUP_EXIT and setup:
        return "sandbox_error", f"The sandbox could not confine the code, so it did not run it: {setup}."
    if rc is not None and rc < 0:
        if -rc == signal.SIGXCPU or (-rc == signal.SIGKILL and wall_s >= limits.cpu_s):
            return "cpu_limit", f"The code used more than {limits.cpu_s} s of CPU time and was killed."
        try:
            name = signal.Signals(-rc).name
        except ValueError:
            name = str(-rc)
        return "crashed", f"The Python process died from signal {name} (deep recursion or a memory fault does this)."
    if exception is not None and rc == 1:
        name = str(exception.get("exception", "Exception"))[:100]
        if name == "MemoryError":
            return "memory", f"The code ran out of its {limits.memory_mb} MB memory limit (MemoryError)."
        detail = str(exception.get("message", ""))[:300].rstrip(". ")
        where = f"The code raised {name} in cell {exception.get('cell', '?')}"
        return "error", f"{where}: {detail}." if detail else f"{where}."
    if rc == 0:
        return "ok", "The code ran to the end."
    return "error", f"The code exited with status {rc}."
