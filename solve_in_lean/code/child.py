"""The sandbox child: confines its own process, then runs the model's code cells.

The parent (`sandbox.py`) runs this file's text with `python -I -S -c` in an empty temporary
directory and a scrubbed environment, and sends one JSON object on stdin. Before any model code
runs, the child applies, in this order:

1. resource limits (CPU time, address space, file size, open files, no core dumps, no processes);
2. Landlock (kernel): reads only under the interpreter's library folders, reads and writes only
   in the temporary directory, no TCP, no signals or abstract sockets outside the sandbox;
3. seccomp (kernel, through libseccomp): no fork/clone/exec, no sockets, no signals, no
   ptrace, no raising limits, no mounts, namespaces, io_uring, bpf or kernel modules; then every
   capability is dropped (a root child keeps uid 0 but no privilege);
4. an audit hook (Python): refuses the same actions one level up, with a readable reason, plus
   imports outside the allowed modules, code-object forging and interpreter introspection.

Layers 2-3 hold even if model code breaks out of Python's object model; layer 4 is what turns
an attempt into a clear "refused" record. A refusal ends the process at once (exit 86) after
writing the reason on the status pipe; the parent reads it from there, not from stdout.
This file imports nothing from lean-solve: it runs in a bare interpreter.
"""

from __future__ import annotations

import json
import os
import sys

REFUSED_EXIT = 86
SETUP_EXIT = 87

# --- layer 1: resource limits -------------------------------------------------------------------


def set_limits(cfg: dict) -> None:
    """Soft CPU limit sends SIGXCPU, the hard one (a second later) SIGKILL."""
    import resource

    cpu = int(cfg["cpu_s"])
    limits = {resource.RLIMIT_CPU: (cpu, cpu + 1), resource.RLIMIT_AS: (cfg["memory_bytes"],) * 2,
              resource.RLIMIT_FSIZE: (cfg["file_bytes"],) * 2, resource.RLIMIT_NOFILE: (64, 64),
              resource.RLIMIT_CORE: (0, 0), resource.RLIMIT_NPROC: (0, 0)}
    for which, value in limits.items():
        resource.setrlimit(which, value)


# --- layer 2: Landlock --------------------------------------------------------------------------
_NR = {"x86_64": (444, 445, 446), "aarch64": (444, 445, 446)}  # create_ruleset, add_rule, restrict_self
_FS_BITS_BY_ABI = {1: 13, 2: 14, 3: 15, 4: 15, 5: 16}  # how many access-right bits each ABI knows
_READ = (1 << 2) | (1 << 3)  # READ_FILE | READ_DIR


def landlock(read_roots: list[str], rw_root: str) -> str | None:
    """Restrict the file system to `read_roots` (read) and `rw_root` (everything but execute);
    with ABI >= 4 also forbid TCP, with ABI >= 6 signals and abstract sockets leaving the sandbox.
    Returns None on success, else why it could not be applied."""
    import ctypes
    import platform

    nrs = _NR.get(platform.machine())
    if nrs is None:
        return f"Landlock syscall numbers unknown on {platform.machine()}"
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    abi = libc.syscall(nrs[0], None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    if abi < 1:
        return f"Landlock is not available ({os.strerror(ctypes.get_errno())})"
    fs_all = (1 << _FS_BITS_BY_ABI.get(abi, 16)) - 1
    attr = (ctypes.c_uint64 * 3)(fs_all, 3 if abi >= 4 else 0, 3 if abi >= 6 else 0)
    size = 24 if abi >= 6 else 16 if abi >= 4 else 8
    ruleset = libc.syscall(nrs[0], ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        return f"landlock_create_ruleset failed ({os.strerror(ctypes.get_errno())})"

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    rules = [(p, _READ) for p in read_roots] + [(rw_root, fs_all & ~1)]  # bit 0: EXECUTE
    for path, access in rules:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            continue  # a listed root that does not exist grants nothing
        is_dir = os.path.isdir(path)
        rule = PathBeneath(access if is_dir else access & (1 << 2), fd)
        ok = libc.syscall(nrs[1], ruleset, ctypes.c_int(1), ctypes.byref(rule), ctypes.c_uint32(0))
        os.close(fd)
        if ok < 0:
            return f"landlock_add_rule({path}) failed ({os.strerror(ctypes.get_errno())})"
    if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
        return "prctl(PR_SET_NO_NEW_PRIVS) failed"
    if libc.syscall(nrs[2], ruleset, ctypes.c_uint32(0)) < 0:
        return f"landlock_restrict_self failed ({os.strerror(ctypes.get_errno())})"
    os.close(ruleset)
    return None


def drop_capabilities() -> str | None:
    """Empty the effective, permitted and inheritable capability sets (a root child keeps its uid
    but loses every privilege over it: no DAC override, no raw I/O, no clock or scheduler changes)."""
    import ctypes

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32)]

    libc = ctypes.CDLL(None, use_errno=True)
    if libc.capset(ctypes.byref(Header(0x20080522, 0)), (Data * 2)()) != 0:  # _LINUX_CAPABILITY_VERSION_3
        return f"capset failed ({os.strerror(ctypes.get_errno())})"
    return None


# --- layer 3: seccomp ---------------------------------------------------------------------------
DENIED_SYSCALLS = (
    "fork", "vfork", "clone", "clone3", "execve", "execveat",
    "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4",
    "kill", "tkill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo",
    "pidfd_open", "pidfd_send_signal", "pidfd_getfd", "ptrace", "process_vm_readv", "process_vm_writev",
    "setrlimit", "prlimit64", "mount", "umount2", "unshare", "setns", "chroot", "pivot_root",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "bpf", "perf_event_open", "userfaultfd",
    "keyctl", "add_key", "request_key", "init_module", "finit_module", "delete_module",
    "kexec_load", "kexec_file_load", "reboot", "swapon", "swapoff", "open_by_handle_at",
    "name_to_handle_at", "personality", "syslog", "acct", "mknod", "mknodat", "symlink", "symlinkat",
    "link", "linkat", "chown", "fchown", "lchown", "fchownat", "setuid", "setgid", "setreuid",
    "setregid", "setresuid", "setresgid", "setgroups", "setsid", "setpgid", "memfd_create",
    "settimeofday", "clock_settime", "clock_adjtime", "adjtimex", "sethostname", "setdomainname",
    "iopl", "ioperm", "quotactl", "vhangup", "mlock", "mlock2", "mlockall", "sched_setscheduler",
    "sched_setparam", "sched_setattr", "setpriority", "ioprio_set", "migrate_pages", "move_pages",
    "open_tree", "move_mount", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr", "fanotify_init",
)


def seccomp() -> str | None:
    """Deny DENIED_SYSCALLS with EPERM for this process and anything it could still start."""
    import ctypes

    try:
        lib = ctypes.CDLL("libseccomp.so.2")
    except OSError:
        return "libseccomp.so.2 is not installed (Debian/Ubuntu: apt-get install libseccomp2)"
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_rule_add.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int, ctypes.c_uint]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    ctx = lib.seccomp_init(0x7FFF0000)  # SCMP_ACT_ALLOW
    if not ctx:
        return "seccomp_init failed"
    try:
        eperm = 0x00050000 | 1  # SCMP_ACT_ERRNO(EPERM)
        for name in DENIED_SYSCALLS:
            nr = lib.seccomp_syscall_resolve_name(name.encode())
            if nr < 0:
                continue  # not a syscall on this architecture (e.g. fork on aarch64)
            if lib.seccomp_rule_add(ctx, eperm, nr, 0) != 0:
                return f"seccomp_rule_add({name}) failed"
        if lib.seccomp_load(ctx) != 0:
            return "seccomp_load failed"
    finally:
        lib.seccomp_release(ctx)
    return None


# --- layer 4: the audit hook --------------------------------------------------------------------
_REFUSED_EVENTS = (
    (("os.system", "os.exec", "os.fork", "os.forkpty", "os.posix_spawn", "os.spawn", "subprocess.",
      "_posixsubprocess", "pty.", "os.startfile", "os.popen"), "start a process"),
    (("socket.",), "use the network"),
    (("ctypes.",), "call C code through ctypes"),
    (("os.kill", "signal.pthread_kill"), "send a signal"),
    (("resource.setrlimit", "resource.prlimit"), "change its resource limits"),
    (("gc.get_objects", "gc.get_referrers", "gc.get_referents", "sys.settrace", "sys.setprofile",
      "sys._current_frames", "sys.addaudithook"), "inspect or hook the interpreter"),
    (("code.__new__",), "forge code objects"),
    (("os.chdir", "os.chroot", "os.symlink", "os.link", "os.chown", "os.chflags", "os.lchflags",
      "os.setxattr", "os.removexattr", "os.mkfifo", "os.mknod", "mmap.", "fcntl."),
     "change the file system's layout or ownership"),
    (("webbrowser.", "urllib.", "http.", "ftplib.", "smtplib.", "poplib.", "imaplib.", "nntplib.",
      "telnetlib."), "use the network"),
)
_PATH_EVENTS_WRITE = ("os.remove", "os.rmdir", "os.rename", "os.mkdir", "os.truncate", "os.chmod",
                      "os.utime", "shutil.")
_PATH_EVENTS_READ = ("os.listdir", "os.scandir", "glob.glob", "os.getxattr", "os.listxattr")
_NEVER_IMPORT = frozenset({"socket", "_socket", "ssl", "_ssl", "multiprocessing", "_multiprocessing",
                           "pty", "mmap", "webbrowser", "asyncio", "_asyncio"})


def normalize(path: str, cwd: str) -> str:
    """An absolute path without `.`, `..` or doubled slashes, by text alone (str methods only,
    which model code cannot replace). Symlinks cannot be made inside the sandbox (refused), so
    text normalization is enough to tell whether a path leaves the allowed roots."""
    if not path.startswith("/"):
        path = cwd + "/" + path
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts:
                parts.pop()
            continue
        parts.append(part)
    return "/" + "/".join(parts)


def under(path: str, roots: tuple[str, ...]) -> bool:
    """Whether `path` is one of `roots` or inside one (no builtins used: model code can replace them)."""
    for root in roots:
        if path == root or path.startswith(root.rstrip("/") + "/"):
            return True
    return False


def make_hook(tmp: str, read_roots: tuple[str, ...], third_party: frozenset, status_fd: int, max_files: int):
    """The audit hook. Everything it uses is bound now, as closure values: immutable data and
    functions that look up no globals or builtins (model code can rebind module attributes and
    even `builtins.any`, but not these). It also counts files and folders created: with the
    per-file size limit this bounds the disk a run can fill."""
    import posix

    write, exit_now = posix.write, posix._exit
    refused_events, never_import = _REFUSED_EVENTS, _NEVER_IMPORT
    write_events, read_events = _PATH_EVENTS_WRITE, _PATH_EVENTS_READ
    normalize_, under_, refused_exit = normalize, under, REFUSED_EXIT
    stdlib = frozenset(sys.stdlib_module_names)
    rw = (tmp,)
    readable = read_roots + rw
    str_, bytes_, int_, type_, tuple_, len_ = str, bytes, int, type, tuple, len
    not_found = ModuleNotFoundError
    created = [0]

    def refuse(what: str, event: str) -> None:
        reason = f"The code tried to {what} ({event}), which the sandbox does not allow."
        write(status_fd, ("refused\t" + reason.replace("\n", " ") + "\n").encode("utf-8", "replace"))
        exit_now(refused_exit)

    def path_of(value, event: str) -> str | None:
        kind = type_(value)
        if kind is int_:
            return None  # an already-open descriptor: it was checked when it was opened
        if kind is bytes_:
            value = value.decode("utf-8", "surrogateescape")
        elif kind is not str_:
            refuse("pass a path-like object that is not a plain string", event)
        return normalize_(value, tmp)

    def hook(event: str, args: tuple) -> None:
        for prefixes, what in refused_events:
            if event.startswith(prefixes):
                refuse(what, event)
        if event == "import":
            top = args[0].partition(".")[0]
            if top in never_import or (top not in stdlib and top not in third_party):
                # Raised, not refused: libraries probe optional modules (mpmath tries gmpy2).
                raise not_found(f"import of {args[0]!r} is not allowed in the sandbox")
        elif event == "open":
            path = path_of(args[0], event)
            mode, flags = args[1], (args[2] if len_(args) > 2 and type_(args[2]) is int_ else 0)
            writes = (flags & 0o3103) != 0  # O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND
            if type_(mode) is str_:
                for c in "wax+":
                    if c in mode:
                        writes = True
            if path is not None and not under_(path, rw if writes else readable):
                refuse(f"{'write' if writes else 'read'} {path}", event)
            if flags & 0o100:  # O_CREAT
                created[0] += 1
                if created[0] > max_files:
                    refuse(f"create more than {max_files} files", event)
        elif event.startswith(write_events) or event.startswith(read_events):
            writes = event.startswith(write_events)
            if event == "os.mkdir":
                created[0] += 1
                if created[0] > max_files:
                    refuse(f"create more than {max_files} files", event)
            for value in args:
                kind = type_(value)
                if kind is str_ or kind is bytes_:
                    path = path_of(value, event)
                    if not under_(path, rw if writes else readable):
                        refuse(f"{'change' if writes else 'read'} {path}", event)
                elif value is not None and kind is not int_ and kind is not tuple_:
                    refuse("pass an argument that is not a plain path, number or None", event)

    return hook


class SandboxImportError(ImportError):
    """Model code imported a module outside the allowed set. Catchable (code may fall back), but
    if it ends the run, the run is recorded as refused."""


def guarded_builtins(allowed: frozenset) -> dict:
    """The builtins model code sees: the real ones, with `__import__` limited to `allowed`
    top-level modules (relative imports refused: there is no package to be relative to)."""
    import builtins

    real_import = builtins.__import__

    def __import__(name, globals=None, locals=None, fromlist=(), level=0):  # noqa: A002 - builtin's signature
        if level != 0 or name.partition(".")[0] not in allowed:
            raise SandboxImportError(f"import of {name!r} is not allowed in the sandbox (allowed modules: "
                                     f"{', '.join(sorted(allowed))})", name=name)
        return real_import(name, globals, locals, fromlist, level)

    table = dict(builtins.__dict__)
    table["__import__"] = __import__
    for name in ("breakpoint", "help", "exit", "quit", "copyright", "credits", "license"):
        table.pop(name, None)
    return table


# --- running the cells --------------------------------------------------------------------------


def run_cells(cells: list[str], allowed: frozenset, status_fd: int) -> int:
    """Run every cell in one namespace; only the last cell's output is shown (earlier ones were
    already seen by the model). A cell that raises stops the run: its traceback goes to stderr,
    the exception's type to the status pipe."""
    import io
    import traceback

    namespace = {"__name__": "__main__", "__builtins__": guarded_builtins(allowed)}
    real_stdout = sys.stdout
    for i, cell in enumerate(cells):
        last = i == len(cells) - 1
        sys.stdout = real_stdout if last else io.StringIO()
        try:
            exec(compile(cell, f"<cell {i + 1}>", "exec"), namespace)  # noqa: S102 - the sandbox's purpose
        except SystemExit as e:
            sys.stdout = real_stdout
            return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except BaseException as e:  # noqa: BLE001 - every failure of model code is reported, not raised
            sys.stdout = real_stdout
            if type(e) is SandboxImportError:
                reason = f"The code tried to import {e.name}, which the sandbox does not allow."
                os.write(status_fd, f"refused\t{reason}\n".encode())
                return REFUSED_EXIT
            frames = traceback.extract_tb(e.__traceback__)
            frames = [f for f in frames if f.filename.startswith("<cell")]
            text = "".join(traceback.format_list(frames[-5:]) + traceback.format_exception_only(type(e), e))
            sys.stderr.write(f"Traceback (most recent call last):\n{text}")
            sys.stderr.flush()
            os.write(status_fd, (json.dumps({"exception": type(e).__name__, "cell": i + 1,
                                             "message": str(e)[:300]}) + "\n").encode())
            return 1
    return 0


def main() -> None:
    cfg = json.loads(sys.stdin.buffer.read())
    status_fd = cfg["status_fd"]
    # Unbuffered text streams: whatever was printed before a refusal or a kill reaches the parent.
    import io

    sys.stdout, sys.stderr = (io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), encoding="utf-8",
                                               errors="backslashreplace", write_through=True) for fd in (1, 2))
    sys.path[:0] = cfg["module_paths"]
    layers, missing = ["rlimits"], []
    set_limits(cfg)
    for name, apply in (("landlock", lambda: landlock(cfg["read_roots"], cfg["tmp"])), ("seccomp", seccomp),
                        ("no-capabilities", drop_capabilities)):
        problem = apply()
        if problem is None:
            layers.append(name)
        else:
            missing.append(f"{name}: {problem}")
    if missing and cfg["require_kernel"]:
        os.write(status_fd, (json.dumps({"setup_error": "; ".join(missing)}) + "\n").encode())
        os._exit(SETUP_EXIT)
    allowed = frozenset(cfg["allowed_modules"])
    sys.addaudithook(make_hook(cfg["tmp"], tuple(cfg["read_roots"]), frozenset(cfg["third_party"]), status_fd,
                               cfg["max_files"]))
    layers.append("audit-hook")
    os.write(status_fd, (json.dumps({"layers": layers, "missing": missing}) + "\n").encode())
    cells = cfg.pop("cells")
    del cfg
    code = run_cells(cells, allowed, status_fd)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) and 0 <= code < 256 else 1)


if __name__ == "__main__":
    main()
