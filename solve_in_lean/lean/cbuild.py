"""Build a small C program once into the user cache (the kernel's `lean` driver, the launcher).

Keyed by the source, the compiler and whatever else the caller names (a library it links), so
a change to any of them builds a fresh copy; parallel first uses never see a half-written file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from solve_in_lean.lean.toolchain import cache_root

try:  # what `random` itself uses: `lean-solve check` looks its launcher up on every run, and
    from _sha512 import sha512  # hashlib would load OpenSSL for it first (~2 ms)
except ImportError:  # pragma: no cover - a Python without the builtin module
    from hashlib import sha512


class BuildFailed(RuntimeError):
    """The C compiler rejected the program; the message carries its first error lines."""


def compiler() -> str | None:
    """$CC, else `cc`, else `gcc`; None when the machine has no C compiler."""
    return shutil.which(os.environ.get("CC", "cc")) or shutil.which("gcc")


def build(source: Path, name: str, cc: str, args: tuple[str, ...] = (), key: str = "") -> Path:
    """The executable built from `source` with `cc` and extra `args`, compiled on first use."""
    digest = sha512(b"\0".join([source.read_bytes(), cc.encode(), " ".join(args).encode(),
                                 key.encode()])).hexdigest()[:16]
    exe = cache_root() / "bin" / digest / name
    if exe.is_file():
        return exe
    exe.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=exe.parent, prefix=f".{name}-build-")
    os.close(fd)
    try:
        done = subprocess.run([cc, "-O1", "-o", tmp, str(source), *args], capture_output=True, text=True)
        if done.returncode != 0:
            raise BuildFailed(f"{cc} could not build {source.name}: {done.stderr.strip()[:500]}")
        os.chmod(tmp, 0o755)
        os.replace(tmp, exe)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return exe
