"""One writer per run: an exclusive lock on a run directory or an output file.

    with RunLock("runs/x"):          # lock file runs/x.lock, next to what it guards
        ...write runs/x...

The lock is `flock` on `<path>.lock`, whose content records the holder (pid, host, start
time) so a second process can say who holds it. The kernel releases `flock` when its holder
dies, however it dies, so a lock left by a killed run is simply taken over (`previous` keeps
the dead holder's record). A clean release deletes the file; a file that is still there with
its lock free therefore means its holder was killed. The lock file is never inherited by a
program the holder runs (close-on-exec), so a Lean left running cannot keep a run locked; a
process merely forked from the holder (multiprocessing's fork) does share it until it exits.

Shared storage (NFS), as well as it can: Linux NFS clients map `flock` onto NFS byte-range
locks, which other hosts see when the server supports locking (NFSv4, or v3 with lockd). On a
mount with `nolock`/`local_lock=all` they are local only; then the record is the defence: the
holder touches the file every `heartbeat_s`, and a record from another host touched within
`3 * heartbeat_s` is treated as held. Limits: two hosts that start in the same instant on such
a mount can both win; the heartbeat compares the server's mtime with this host's clock, so
large clock skew shifts the staleness window; a holder on another host that was killed is
waited out for up to `3 * heartbeat_s`.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from solve_in_lean.errors import UnavailableError

DEFAULT_HEARTBEAT_S = 30.0


class RunLocked(UnavailableError):
    """Another process writes this run; the message names it (pid, host) and what to do."""

    def __init__(self, message: str, holder: dict[str, Any] | None) -> None:
        super().__init__(message)
        self.holder = holder


def lock_path_for(path: str | os.PathLike[str]) -> Path:
    """Where the lock of `path` lives: `<path>.lock`, beside it, whether `path` exists or not."""
    p = Path(path)
    return p.with_name(p.name + ".lock")


class RunLock:
    """An exclusive, non-blocking lock on `path` for one writing process."""

    def __init__(self, path: str | os.PathLike[str], *, heartbeat_s: float = DEFAULT_HEARTBEAT_S) -> None:
        self.path = Path(path)
        self.lock_path = lock_path_for(path)
        self.heartbeat_s = heartbeat_s
        self.previous: dict[str, Any] | None = None
        """The record of a holder that died holding the lock, when this lock took it over."""
        self._fd: int | None = None
        self._stop = threading.Event()
        self._beat: threading.Thread | None = None

    def acquire(self) -> "RunLock":
        """Take the lock or raise RunLocked; UnavailableError when no lock file can be made."""
        if self._fd is not None:
            raise RuntimeError(f"{self.lock_path} is already held by this RunLock")
        while True:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _read_record(fd, wait_s=0.5)
                os.close(fd)
                raise RunLocked(self._held_message(holder), holder) from None
            if self._same_file(fd):
                break
            os.close(fd)  # the holder deleted the file as we opened it: lock the new one
        try:
            old = _read_record(fd, wait_s=0.0)
            if old and old.get("host") != socket.gethostname() and self._recent(fd):
                # our flock may not reach that host: a fresh record from there means it runs
                raise RunLocked(self._remote_message(old, os.fstat(fd).st_mtime), old)
            _write_record(fd)
        except OSError as e:
            os.close(fd)
            raise UnavailableError(f"cannot write the lock file {self.lock_path}: {e.strerror or e}; "
                                   "free some space or choose another place for the output") from None
        except BaseException:
            os.close(fd)
            raise
        self.previous = old
        self._fd = fd
        if self.heartbeat_s > 0:
            self._stop.clear()
            self._beat = threading.Thread(target=self._heartbeat, args=(fd,), daemon=True,
                                          name=f"runlock-heartbeat {self.lock_path}")
            self._beat.start()
        return self

    def release(self) -> None:
        """Delete the lock file and let go; a no-op when not held."""
        if self._fd is None:
            return
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
            self._beat = None
        if self._same_file(self._fd):
            self.lock_path.unlink()  # while still locked, so no one locks a file about to vanish
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _open(self) -> int:
        try:
            return os.open(self.lock_path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise UnavailableError(f"cannot create the lock file {self.lock_path} for {self.path}: "
                                   f"{e.strerror or e}; choose a writable place for the output") from None

    def _same_file(self, fd: int) -> bool:
        try:
            on_disk = os.stat(self.lock_path)
        except FileNotFoundError:
            return False
        held = os.fstat(fd)
        return (on_disk.st_dev, on_disk.st_ino) == (held.st_dev, held.st_ino)

    def _recent(self, fd: int) -> bool:
        return time.time() - os.fstat(fd).st_mtime < 3 * self.heartbeat_s

    def _heartbeat(self, fd: int) -> None:
        while not self._stop.wait(self.heartbeat_s):
            os.utime(fd)

    def _held_message(self, holder: dict[str, Any] | None) -> str:
        who = _describe(holder) if holder else "another process that has not written its record yet"
        return (f"{self.path} is being written by {who}; wait for that run to finish or stop it, "
                f"or write to another path (lock file {self.lock_path}).")

    def _remote_message(self, holder: dict[str, Any], mtime: float) -> str:
        return (f"{self.path} is being written by {_describe(holder)}, which touched the lock file "
                f"{self.lock_path} {max(0.0, time.time() - mtime):.0f} s ago (this host cannot see its "
                f"lock); wait for that run, or if it is gone, retry once the file is "
                f"{3 * self.heartbeat_s:.0f} s old or delete it.")


def _describe(holder: dict[str, Any]) -> str:
    return (f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')} "
            f"since {holder.get('started', 'an unknown time')}")


def _write_record(fd: int) -> None:
    record = {"pid": os.getpid(), "host": socket.gethostname(),
              "started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")}
    data = (json.dumps(record) + "\n").encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, data, 0)
    os.fsync(fd)


def _read_record(fd: int, wait_s: float) -> dict[str, Any] | None:
    """The holder's record; a holder that just locked may not have written it yet, so wait
    up to `wait_s` for it. None when there is none (or it is not a record)."""
    deadline = time.monotonic() + wait_s
    while True:
        raw = os.pread(fd, 4096, 0)
        try:
            record = json.loads(raw) if raw.strip() else None
        except ValueError:
            record = None  # a record cut off by a crash mid-write: no holder to name
        if isinstance(record, dict) or time.monotonic() >= deadline:
            return record if isinstance(record, dict) else None
        time.sleep(0.02)
