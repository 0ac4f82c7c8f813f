"""The check server: answers `lean-solve check` for clients of this installation (client.py has
the protocol) by running cli/fastcheck.py's own code on their arguments, working directory,
standard input and terminal, with checkers kept warm across requests.

Warm: a checker is kept for each set of options that builds it (backend, Mathlib, memory cap,
workers, timeout), up to MAX_HELD; a process backend's checker (kernel, lake) keeps `workers`
Leans started ahead (ProcessChecker.warm), so a check skips Lean's start-up. A REPL checker
kept here keeps its REPL and imported header (Mathlib) across calls.

Fail closed: only peers of this uid (SO_PEERCRED, every connection), only while the code files
are unchanged since start (else reply "stale" and exit), only for clients whose relevant
environment equals the server's ("mismatch"), requests capped in size. A check interrupted by
the server's own shutdown gets no reply, so its client checks in process.
"""

from __future__ import annotations

import binascii
import contextlib
import fcntl
import io
import logging
import os
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

from solve_in_lean.check_server.client import (PROTOCOL, Channel, ProtocolError, dir_problem, installation_key,
                                               package_dir, peer_problem, relevant_env, runtime_dir)
from solve_in_lean.cli import fastcheck
from solve_in_lean.errors import InputError, UnavailableError
from solve_in_lean.lean import lifecycle

log = logging.getLogger("lean-solve.server")

MAX_HELD = 4
"""Checkers kept at once; the least recently used idle one is closed to make room."""
MAX_REQUEST_BYTES = 4 << 20
"""The first message: arguments (Linux caps a command line at 2 MiB), environment, terminal."""
READ_TIMEOUT_S = 30.0
"""How long a client may take to send a message it owes."""


def stdin_message_limit(n: int) -> int:
    """The largest stdin message for n bytes: base64 (4 per 3) plus the JSON around it."""
    return 4 * ((n + 2) // 3) + 64


def code_fingerprint() -> tuple:
    """What identifies the code a check runs: the stat of every source file of the packages
    (solve_in_lean, autoformalize: .py, and the .c built at run time), of the bundled Lean
    library and of the Python executable. Measured about a millisecond; taken on every request."""
    seen: list[tuple] = []
    roots = [package_dir(), os.path.join(os.path.dirname(package_dir()), "autoformalize")]
    stack = [r for r in roots if os.path.isdir(r)]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    if entry.name != "__pycache__":
                        stack.append(entry.path)
                elif entry.name.endswith((".py", ".c")):
                    st = entry.stat(follow_symlinks=False)
                    seen.append((entry.path, st.st_mtime_ns, st.st_size, st.st_ino))
    for path in (_lean_library(), sys.executable):
        try:
            st = os.stat(path) if path else None
        except OSError:
            st = None
        seen.append((path, st and (st.st_mtime_ns, st.st_size, st.st_ino)))
    return tuple(sorted(seen))


def _lean_library() -> str | None:
    from solve_in_lean.lean.base import LeanUnavailable
    from solve_in_lean.lean.kernel import find_library

    try:
        return str(find_library())
    except LeanUnavailable:
        return None


def ensure_runtime_dir() -> str:
    """The socket's directory, created 0700 if missing; UnavailableError when it is not safe."""
    path = runtime_dir()
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.makedirs(path, 0o700, exist_ok=True)  # one that exists keeps its mode: dir_problem judges it
    except OSError as e:
        raise UnavailableError(f"cannot create the check server's directory {path} ({e.strerror or e})") from None
    if (problem := dir_problem(path)) is not None:
        raise UnavailableError(f"refusing to use the check server's directory: {problem}")
    return path


@dataclass
class _Held:
    checker: Any
    users: int = 0
    last_used: float = field(default_factory=time.monotonic)


class CheckServer:
    """One server per installation: holds the lock file, listens on the socket, serves until
    stopped, idle for `idle_s`, or stale."""

    def __init__(self, idle_s: float, config: str | None = None) -> None:
        self.idle_s = idle_s
        self.config = config
        directory = ensure_runtime_dir()
        name = f"check-{installation_key()}"
        self.socket_path = os.path.join(directory, name + ".sock")
        self.log_path = os.path.join(directory, name + ".log")
        self._lock_file = open(os.path.join(directory, name + ".lock"), "a")  # noqa: SIM115  (held for life)
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise AlreadyRunning("a check server already runs for this installation") from None
        self.env = relevant_env(os.environ)
        self.fingerprint = code_fingerprint()
        self.started = time.time()
        self.requests = 0
        self._active = 0
        self._last_active = time.monotonic()
        self._held: dict[tuple, _Held] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._listener: socket.socket | None = None

    # --- checkers ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def checkers(self, backend: str, options: dict) -> Iterator[Any]:
        """fastcheck's checker provider: the kept checker for these options (built on first use),
        never closed by a request. A Lean this request's thread took ahead and never fed is
        killed when it ends (its thread may end before the checker does)."""
        key = (backend, tuple(sorted(options.items())))
        held = self._hold(key, backend, options)
        try:
            yield held.checker
        finally:
            held.checker.cancel_prestart()
            with self._lock:
                held.users -= 1
                held.last_used = time.monotonic()

    def _hold(self, key: tuple, backend: str, options: dict) -> _Held:
        with self._lock:
            held = self._held.get(key)
            if held is not None:
                held.users += 1
                return held
        from solve_in_lean.lean import get_checker
        from solve_in_lean.lean.process_backend import ProcessChecker
        from solve_in_lean.parallel import default_workers

        checker = get_checker(backend, **options)
        if isinstance(checker, ProcessChecker):
            checker.warm(checker.workers or default_workers())
        evicted = []
        with self._lock:
            if key in self._held:  # another request built it meanwhile: use that one
                evicted.append(checker)
                held = self._held[key]
            else:
                held = self._held[key] = _Held(checker)
                idle = sorted((k for k, h in self._held.items() if h.users == 0 and k != key),
                              key=lambda k: self._held[k].last_used)
                for k in idle[:max(0, len(self._held) - MAX_HELD)]:
                    evicted.append(self._held.pop(k).checker)
            held.users += 1
        for c in evicted:
            c.close()
        return held

    def warm_default(self) -> None:
        """Build (and warm) the checker a plain `lean-solve check FILE` run here would use."""
        argv = ["--config", self.config, "-"] if self.config else ["-"]
        args = fastcheck.build_parser(_quiet_io()).parse_args(argv)
        backend, options, _ = fastcheck.checker_spec(args, None)
        with self.checkers(backend, options):
            pass

    # --- serving ----------------------------------------------------------------------------

    def serve(self) -> None:
        """Listen until stopped, idle or stale; then kill every Lean held and remove the socket."""
        with contextlib.suppress(FileNotFoundError):  # left by a server that was killed: we hold the lock
            os.unlink(self.socket_path)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(self.socket_path)
        except OSError as e:
            listener.close()
            raise UnavailableError(f"cannot listen on {self.socket_path} ({e.strerror or e})") from None
        self._listener = listener
        listener.listen(64)
        listener.settimeout(min(1.0, max(0.05, self.idle_s / 4)))
        log.info("serving on %s (pid %d, idle timeout %g s)", self.socket_path, os.getpid(), self.idle_s)
        try:
            while not self._stop.is_set():
                try:
                    conn, _ = listener.accept()
                except socket.timeout:
                    with self._lock:
                        idle = self._active == 0 and time.monotonic() - self._last_active > self.idle_s
                    if idle:
                        log.info("idle for %g s: exiting", self.idle_s)
                        break
                    continue
                with self._lock:
                    self._active += 1
                threading.Thread(target=self._serve_one, args=(conn,), daemon=True).start()
        finally:
            self.close()

    def stop(self) -> None:
        """Stop serving: checks in flight lose their Lean and get no reply (their clients check
        in process); the accept loop ends within its poll interval."""
        lifecycle.kill_all()
        self._stop.set()

    def close(self) -> None:
        lifecycle.kill_all()
        if self._listener is not None:
            self._listener.close()
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.socket_path)
        with self._lock:
            held, self._held = list(self._held.values()), {}
        for h in held:
            h.checker.close()
        self._lock_file.close()  # releases the lock

    def status(self) -> dict:
        with self._lock:
            held = [{"backend": k[0], "options": dict(k[1]), "in_use": h.users,
                     "leans_ready": getattr(h.checker, "pooled", 0),
                     "pool_size": getattr(h.checker, "pool_size", 0)} for k, h in self._held.items()]
        return {"pid": os.getpid(), "uptime_s": round(time.time() - self.started, 3), "idle_timeout_s": self.idle_s,
                "requests": self.requests, "checkers": held, "socket": self.socket_path, "log": self.log_path}

    def _serve_one(self, conn: socket.socket) -> None:
        try:
            if (problem := peer_problem(conn)) is not None:
                log.warning("refused a connection: %s", problem)
                return
            conn.settimeout(READ_TIMEOUT_S)
            channel = Channel(conn)
            message = channel.receive(MAX_REQUEST_BYTES)
            op = message.get("op")
            if message.get("v") != PROTOCOL:
                channel.send({"refused": "protocol", "why": f"this server speaks protocol {PROTOCOL}"})
            elif op == "status":
                channel.send(self.status())
            elif op == "stop":
                channel.send({"stopping": os.getpid()})
                log.info("stop requested")
                self.stop()
            elif op == "check":
                self._check(channel, message)
            else:
                channel.send({"refused": "protocol", "why": f"unknown operation {op!r}"})
        except (OSError, ProtocolError) as e:
            log.warning("dropped a connection: %s", e)
        except KeyboardInterrupt:  # lifecycle.Interrupted: shutting down, no verdict from a killed Lean
            log.info("a check was interrupted by the shutdown")
        except Exception:  # a bug: no reply, so the client checks in process (and shows it there)
            log.exception("a request failed")
        finally:
            conn.close()
            with self._lock:
                self._active -= 1
                self._last_active = time.monotonic()

    def _check(self, channel: Channel, message: dict) -> None:
        if code_fingerprint() != self.fingerprint:
            channel.send({"refused": "stale", "why": "the code changed since this server started; it exits"})
            log.info("code changed: exiting")
            self.stop()
            return
        if message.get("env") != self.env:
            channel.send({"refused": "mismatch", "why": "the client's environment differs from the server's"})
            return
        argv, cwd = message.get("argv"), message.get("cwd")
        if not (isinstance(argv, list) and all(isinstance(a, str) for a in argv) and isinstance(cwd, str)
                and os.path.isabs(cwd) and isinstance(message.get("columns"), int)):
            raise ProtocolError("a check request without argv, an absolute cwd and columns")
        out, err = io.StringIO(), io.StringIO()
        check_io = fastcheck.CheckIO(out, err, cwd, lambda n: _ask_stdin(channel, n),
                                     color=message.get("color") is True, progress=False,
                                     columns=message["columns"])
        if (why := _in_process_only(argv, message.get("progress") is True)) is not None:
            channel.send({"refused": "in process", "why": why})
            return
        code = fastcheck.main(argv, check_io, self.checkers)
        if lifecycle.stopping():  # its Lean may have been killed by the shutdown: no verdict
            return
        with self._lock:
            self.requests += 1
        channel.send({"done": True, "out": out.getvalue(), "err": err.getvalue(), "code": code})


def _in_process_only(argv: list[str], progress: bool) -> str | None:
    """Why these arguments are checked in the client's process, or None: --no-server (however
    abbreviated), or a batch whose progress bar the client's terminal shows as it goes."""
    try:
        args = fastcheck.build_parser(_quiet_io()).parse_args(argv)
    except fastcheck.ParserExit:
        return None  # fastcheck.main says what is wrong with them, as in process
    if args.no_server:
        return "--no-server"
    if progress and len(args.files) > 1:
        return "a progress bar on the client's terminal"
    return None


def _quiet_io() -> fastcheck.CheckIO:
    def no_stdin(n: int) -> bytes:
        raise InputError("standard input is not read here")

    return fastcheck.CheckIO(io.StringIO(), io.StringIO(), None, no_stdin, False, False, 80)


def _ask_stdin(channel: Channel, n: int) -> bytes:
    """At most n bytes of the client's standard input (the client reads them and keeps them)."""
    channel.send({"stdin": n})
    reply = channel.receive(stdin_message_limit(n))
    try:
        data = binascii.a2b_base64(reply["stdin"])
    except (KeyError, TypeError, binascii.Error):
        raise ProtocolError("a stdin message without base64 bytes") from None
    if len(data) > n:
        raise ProtocolError(f"{len(data)} bytes of stdin sent where at most {n} were asked for")
    return data


class AlreadyRunning(UnavailableError):
    """Another server holds this installation's lock."""

    exit_code = 0


def run(idle_s: float, config: str | None = None, *, log_stream: Any = None) -> int:
    """Serve in this process until stopped, idle or stale; the exit code. `start` runs this
    detached (python -m solve_in_lean.check_server), `start --foreground` in the caller."""
    logging.basicConfig(stream=log_stream or sys.stderr, level=logging.INFO,
                        format="%(asctime)s lean-solve server[%(process)d] %(message)s")
    lifecycle.install_signal_handlers()  # SIGTERM: kill every Lean held, then unwind through close()
    server = CheckServer(idle_s, config)
    try:
        server.warm_default()
    except BaseException:
        server.close()
        raise
    server.serve()
    return 0
