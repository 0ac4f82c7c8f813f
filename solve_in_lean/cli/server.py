"""`lean-solve server start|stop|status`: the opt-in check server (solve_in_lean/check_server)
that answers `lean-solve check` with warm Leans, and how to see and end it."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from typing import Optional

import typer

from solve_in_lean.check_server.client import request, socket_path
from solve_in_lean.cli import app
from solve_in_lean.cli.common import EXIT_OK, print_json
from solve_in_lean.errors import InputError, UnavailableError

server_app = typer.Typer(no_args_is_help=True, help="A warm check server for `lean-solve check` (opt-in).")
app.add_typer(server_app, name="server")

START_WAIT_S = 60.0
"""How long `start` waits for the new server to answer (it builds its checker first)."""


@server_app.command("start")
def start(idle: float = typer.Option(600.0, "--idle", metavar="SECONDS", help="Exit after this long without a request."),
          foreground: bool = typer.Option(False, "--foreground", help="Serve in this process, logging to stderr."),
          config: Optional[str] = typer.Option(None, "--config", metavar="FILE",
                                               help="Config file (TOML) of the checker to keep warm from the start.")) -> None:
    """Start this installation's check server: `lean-solve check` then uses it while it runs."""
    if not math.isfinite(idle) or idle <= 0:
        raise InputError(f"--idle must be a positive number of seconds, not {idle}")
    if config is not None:
        config = os.path.abspath(config)
    if isinstance(running := _status(), dict):
        typer.echo(f"a check server already runs for this installation (pid {running['pid']}, {running['socket']})")
        raise typer.Exit(EXIT_OK)
    if foreground:
        from solve_in_lean.check_server.server import run

        raise typer.Exit(run(idle, config))
    from solve_in_lean.check_server.server import ensure_runtime_dir

    log_path = os.path.join(ensure_runtime_dir(), os.path.basename(socket_path())[:-len(".sock")] + ".log")
    cmd = [sys.executable, "-m", "solve_in_lean.check_server", "--idle", repr(idle)]
    with open(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a") as log:
        child = subprocess.Popen([*cmd, *(["--config", config] if config else [])], stdin=subprocess.DEVNULL,
                                 stdout=log, stderr=log, start_new_session=True, close_fds=True)
    deadline = time.monotonic() + START_WAIT_S
    while time.monotonic() < deadline:
        if isinstance(status := _status(), dict):
            how = "started" if status["pid"] == child.pid else "already running"
            typer.echo(f"check server {how} (pid {status['pid']}, idle timeout {status['idle_timeout_s']:g} s, "
                       f"{status['socket']})")
            raise typer.Exit(EXIT_OK)
        if child.poll() is not None:
            raise UnavailableError(f"the check server exited at start: {_last_line(log_path)} (log: {log_path})")
        time.sleep(0.02)
    raise UnavailableError(f"the check server did not answer within {START_WAIT_S:g} s (log: {log_path})")


@server_app.command("stop")
def stop() -> None:
    """Stop this installation's check server; every Lean it holds is killed."""
    reply = request("stop")
    if not isinstance(reply, dict) or not isinstance(reply.get("stopping"), int):
        typer.echo("no check server runs for this installation")
        raise typer.Exit(EXIT_OK)
    pid = reply["stopping"]
    deadline = time.monotonic() + 30
    while _alive(pid):
        if time.monotonic() > deadline:
            raise UnavailableError(f"the check server (pid {pid}) did not exit within 30 s")
        time.sleep(0.02)
    typer.echo(f"check server stopped (pid {pid})")
    raise typer.Exit(EXIT_OK)


@server_app.command("status")
def status(json_out: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """Whether a check server runs for this installation: pid, uptime, idle timeout, requests
    served, checkers held, socket. Exit 0 when one runs, 1 when none does."""
    reply = _status()
    running = isinstance(reply, dict)
    if json_out:
        print_json(reply if running else {"running": False, "socket": socket_path(),
                                          **({"problem": reply} if isinstance(reply, str) else {})})
    elif running:
        typer.echo(f"check server pid {reply['pid']}: up {reply['uptime_s']:.0f} s, idle timeout "
                   f"{reply['idle_timeout_s']:g} s, {reply['requests']} requests served")
        for held in reply["checkers"]:
            options = ", ".join(f"{k}={v}" for k, v in held["options"].items())
            typer.echo(f"  checker {held['backend']} ({options}): {held['leans_ready']} Leans ready")
        typer.echo(f"  socket {reply['socket']}")
    else:
        typer.echo(f"no check server runs for this installation ({reply or socket_path()})")
    raise typer.Exit(EXIT_OK if running else 1)


def _status() -> dict | str | None:
    reply = request("status")
    return reply if not isinstance(reply, dict) or isinstance(reply.get("pid"), int) else None


def _alive(pid: int) -> bool:
    """The process runs (a zombie waiting for its parent to reap it counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the kernel
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


def _last_line(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            lines = [ln.strip() for ln in f if ln.strip()]
    except OSError:
        return "no log"
    return lines[-1] if lines else "no message"
