"""The client side of the check server, run by `lean-solve check` before anything heavy is
imported: standard library only (os, sys, zlib; socket, json, struct and binascii only once a
socket file exists, so a check without a server pays almost nothing; and progress.py, which
imports nothing more).

`check_via_server(argv)` returns the exit code when the server answered, after writing its
stdout and stderr verbatim, or a `Fallback` saying the caller must check in process: no server,
a socket that refuses or is not safe, a reply of "stale", "mismatch" or "in process", a broken
reply, or a server that died mid-request. Standard input read for the server is kept in the
Fallback, so the check in process sees the same bytes. Nothing is printed that the server did
not send, apart from one sentence when the socket's directory is not safe to use.

Protocol: one JSON object per line each way. The client sends
{"v", "op": "check", "argv", "cwd", "env", "color", "progress", "columns"}; the server may ask
{"stdin": N} (the client answers {"stdin": base64 of at most N bytes}), then ends with
{"done": true, "out", "err", "code"} or {"refused": reason, "why": sentence}.
"""

from __future__ import annotations

import os
import sys
import zlib
from typing import TYPE_CHECKING, Callable, NoReturn

if TYPE_CHECKING:
    import socket

PROTOCOL = 1
SWITCH = "LEAN_SOLVE_CHECK_SERVER"
"""`off` makes `lean-solve check` check in process even when a server runs."""
CONNECT_TIMEOUT_S = 2.0
MAX_REPLY_BYTES = 1 << 30
_ENV_NAMES = frozenset({"PATH", "HOME", "ELAN_HOME", "PYTHONPATH", "PYTHONHOME", "LD_LIBRARY_PATH",
                        "LD_PRELOAD", "TMPDIR", "CC"})


class Fallback:
    """Check in process. `stdin`: the bytes already read from standard input for the server (None:
    none read), for `reader` to give the in-process check first."""

    def __init__(self, stdin: bytes | None = None) -> None:
        self.stdin = stdin

    def reader(self, read: Callable[[int], bytes]) -> Callable[[int], bytes]:
        """A read_stdin(n) that gives the kept bytes first, then reads on with `read`."""
        kept = self.stdin or b""

        def read_stdin(n: int) -> bytes:
            nonlocal kept
            head, kept = kept[:n], kept[n:]
            return head + (read(n - len(head)) if len(head) < n else b"")

        return read_stdin


def runtime_dir() -> str:
    """Where the socket lives: $XDG_RUNTIME_DIR/lean-solve, else `run/` in the user cache (the
    rule of lean/toolchain.cache_root, restated: this module imports nothing of ours)."""
    base = os.environ.get("XDG_RUNTIME_DIR", "")
    if os.path.isabs(base):
        return os.path.join(base, "lean-solve")
    cache = os.environ.get("LEAN_SOLVE_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "lean-solve")
    return os.path.join(cache, "run")


def package_dir() -> str:
    return os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def installation_key() -> str:
    """Names this installation: its environment (sys.prefix, the venv), the interpreter it runs
    (resolved: `python` and `python3` in a venv are one) and the package's path. Each gets its
    own server."""
    text = f"{sys.prefix}\0{os.path.realpath(sys.executable)}\0{package_dir()}".encode("utf-8", "surrogateescape")
    return f"{zlib.crc32(text):08x}{zlib.adler32(text):08x}"


def socket_path() -> str:
    return os.path.join(runtime_dir(), f"check-{installation_key()}.sock")


def relevant_env(environ: "dict[str, str] | os._Environ") -> dict[str, str]:
    """The variables that change what a check does or which code and Lean run: the server answers
    only clients whose values equal its own. XDG_* are the base directories (not session ids,
    which differ between terminals); the switch itself only steers the client."""
    return {k: v for k, v in environ.items()
            if k != SWITCH and (k in _ENV_NAMES or k.startswith("LEAN_")
                                or (k.startswith("XDG_") and k.endswith(("_HOME", "_DIR", "_DIRS"))))}


def dir_problem(path: str) -> str | None:
    """Why `path` must not hold the socket (one sentence), None when it is safe: a directory of
    this user that no one else may enter. A missing directory is a problem too."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return f"{path} does not exist"
    except OSError as e:
        return f"{path} cannot be read ({e.strerror or e})"
    if (st.st_mode & 0o170000) != 0o040000:
        return f"{path} is not a directory"
    if st.st_uid != os.getuid():
        return f"{path} belongs to uid {st.st_uid}, not to this user (uid {os.getuid()})"
    if st.st_mode & 0o077:
        return f"{path} can be entered by other users (mode {st.st_mode & 0o777:o}); it must be mode 700"
    return None


def peer_problem(conn: socket.socket, uid: int | None = None) -> str | None:
    """Why the process at the other end of `conn` must not be talked to (SO_PEERCRED: another
    user than `uid`, by default ours), or None."""
    import socket
    import struct

    uid = os.getuid() if uid is None else uid
    try:
        pid, peer_uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                                 struct.calcsize("3i")))
    except OSError as e:
        return f"the peer's credentials cannot be read ({e.strerror or e})"
    if peer_uid != uid:
        return f"the peer (pid {pid}) runs as uid {peer_uid}, not uid {uid}"
    return None


class ProtocolError(Exception):
    """The other end sent something that is not a message of this protocol, or nothing at all."""


class Channel:
    """One JSON object per line over a connected socket, each read capped in size."""

    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn
        self._buffer = b""

    def send(self, message: dict) -> None:
        import json

        self.conn.sendall(json.dumps(message).encode("ascii") + b"\n")  # ascii: lone surrogates escaped

    def receive(self, limit: int) -> dict:
        import json

        while b"\n" not in self._buffer:
            if len(self._buffer) > limit:
                raise ProtocolError(f"a message of more than {limit:,} bytes")
            block = self.conn.recv(1 << 16)
            if not block:
                raise ProtocolError("the connection closed before a whole message")
            self._buffer += block
        line, self._buffer = self._buffer.split(b"\n", 1)
        if len(line) > limit:
            raise ProtocolError(f"a message of more than {limit:,} bytes")
        try:
            message = json.loads(line)
        except ValueError:
            raise ProtocolError("a message that is not JSON") from None
        if not isinstance(message, dict):
            raise ProtocolError("a message that is not a JSON object")
        return message


def connect(path: str | None = None) -> socket.socket | str | None:
    """A connection to this installation's server; None when none listens; the reason, in one
    sentence, when its directory or process is not safe to talk to."""
    path = path or socket_path()
    if not os.path.lexists(path):
        return None
    if (problem := dir_problem(os.path.dirname(path))) is not None:
        return problem
    import socket

    conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    conn.settimeout(CONNECT_TIMEOUT_S)
    try:
        conn.connect(path)
    except OSError:  # absent, refused (a stale socket file), path too long
        conn.close()
        return None
    if (problem := peer_problem(conn)) is not None:
        conn.close()
        return problem
    return conn


def terminal_columns() -> int:
    """The width argparse would wrap `check --help` to here (shutil.get_terminal_size's rule,
    without importing shutil); cli/fastcheck.py uses it too."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns  # type: ignore[union-attr]
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


def check_via_server(argv: list[str]) -> int | Fallback:
    """Run `lean-solve check argv` on this installation's server; the exit code once its output
    is written here, else a Fallback (see the module's docstring)."""
    if os.environ.get(SWITCH) == "off" or "--no-server" in argv:
        return Fallback()
    try:
        cwd = os.getcwd()
    except OSError:  # the working directory is gone: the check in process says what that means
        return Fallback()
    conn = connect()
    if conn is None:
        return Fallback()
    if isinstance(conn, str):
        sys.stderr.write(f"lean-solve: not using the check server: {conn}\n")
        return Fallback()
    import binascii

    from solve_in_lean.progress import progress_enabled

    kept = None
    try:
        conn.settimeout(None)  # a check takes as long as Lean does; a dead server closes the socket
        channel = Channel(conn)
        channel.send({"v": PROTOCOL, "op": "check", "argv": argv, "cwd": cwd, "env": relevant_env(os.environ),
                      "color": sys.stdout.isatty() and "NO_COLOR" not in os.environ,
                      "progress": progress_enabled(), "columns": terminal_columns()})
        while True:
            reply = channel.receive(MAX_REPLY_BYTES)
            if "stdin" in reply and kept is None and isinstance(reply["stdin"], int) and reply["stdin"] >= 0:
                kept = sys.stdin.buffer.read(reply["stdin"]) if sys.stdin is not None else b""
                channel.send({"stdin": binascii.b2a_base64(kept, newline=False).decode("ascii")})
            elif reply.get("done") is True and _well_formed(reply):
                return _write(reply["out"], reply["err"], reply["code"])
            else:  # refused, or not a message of this protocol
                return Fallback(kept)
    except (OSError, ProtocolError):
        return Fallback(kept)
    finally:
        conn.close()


def _well_formed(reply: dict) -> bool:
    return (isinstance(reply.get("out"), str) and isinstance(reply.get("err"), str)
            and type(reply.get("code")) is int and 0 <= reply["code"] <= 255)


def _write(out: str, err: str, code: int) -> int:
    """Write the server's output as the check in process would (fastcheck.local_io's streams)."""
    for stream, text in ((sys.stdout, out), (sys.stderr, err)):
        if not text:
            continue
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
        try:
            stream.write(text)
            stream.flush()
        except BrokenPipeError:  # `| head`: the reader left; the exit code still tells
            os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
    return code


def request(op: str, path: str | None = None) -> dict | str | None:
    """Ask the server for `op` ("status" or "stop"): its reply; None when no server answers;
    the reason when its socket is not safe to use."""
    conn = connect(path)
    if conn is None or isinstance(conn, str):
        return conn
    try:
        channel = Channel(conn)
        channel.send({"v": PROTOCOL, "op": op})
        return channel.receive(1 << 20)
    except (OSError, ProtocolError):
        return None
    finally:
        conn.close()


def exit_now(code: int) -> NoReturn:
    """End the `lean-solve check` process with `code` once its output is written, skipping the
    interpreter's teardown of every imported module (measured: several ms, a tenth of a small
    check). By then every Lean it started has been reaped and every scratch directory removed."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:  # the reader left (`| head`): what it did not read goes nowhere
            os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
    os._exit(code)
