"""`lean-solve check FILE...`: check Lean files with the verification rules, many in one process.

`main()` dispatches here before typer is imported (see `solve_in_lean.cli.main`): a check of
one small file should cost little more than Lean itself, so this module parses its options
with argparse and imports the verifier only once the arguments are known to be good.
`solve_in_lean.cli.check` registers the same command with typer for `lean-solve --help`.

What a user sees is hostile text (a file can make Lean print anything), so every line that
is not a verdict is indented, control characters are escaped, and each file's verdict line
comes last in its block, unindented.

Everything a check reads from or writes to its surroundings goes through a `CheckIO`: this
process's own streams, or, in the check server (solve_in_lean/check_server), a client's working
directory, standard input and terminal, with the output sent back to be written verbatim. One
code path gives both the same output, byte for byte.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from typing import Any, Callable, NamedTuple, NoReturn, Sequence, TextIO

from solve_in_lean.errors import EXIT_OK, EXIT_REJECTED, EXIT_UNAVAILABLE, InputError, LeanSolveError

DESCRIPTION = """Check Lean files with Lean and the verification rules, in parallel.

Prints one verdict line per file, after Lean's own messages, which are indented under
`lean|`; with --json, one JSON object per file and line, with `file` and `outcome`
(verified, rejected or could not check) beside the verifier's fields. Exit 0 when every
file is verified; 1 when some file is rejected (errors, sorry, axioms, wrong statement,
refused constructs, timeout or memory cap); 2 when some check could not run (missing file
or backend, bad arguments, input that is not UTF-8 text or too large, Lean crashed)."""

STDIN = "-"
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class CheckIO(NamedTuple):
    """Where one check reads and writes: `out`/`err` text streams, `cwd` that relative paths are
    read from (None: this process's own), `read_stdin(n)` giving at most n bytes of standard
    input, and what the terminal wants (`color`, a `progress` bar, `columns` for --help)."""

    out: TextIO
    err: TextIO
    cwd: str | None
    read_stdin: Callable[[int], bytes]
    color: bool
    progress: bool
    columns: int


def local_io() -> CheckIO:
    """This process's own streams and terminal. Lean's text may not fit a non-UTF-8 terminal:
    the streams escape what they cannot encode rather than crash."""
    from solve_in_lean.check_server.client import terminal_columns  # `lean-solve check` imported it already
    from solve_in_lean.progress import progress_enabled

    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    return CheckIO(sys.stdout, sys.stderr, None, lambda n: sys.stdin.buffer.read(n),
                   color=sys.stdout.isatty() and "NO_COLOR" not in os.environ,
                   progress=progress_enabled(), columns=terminal_columns())


class ParserExit(Exception):
    """The parser finished the call (--help, or bad arguments already explained on `err`)."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class _Parser(argparse.ArgumentParser):
    """argparse writing to a CheckIO's streams and raising ParserExit instead of exiting."""

    def __init__(self, io: CheckIO, **kw: Any) -> None:
        width = max(io.columns - 2, 1)
        super().__init__(**kw, formatter_class=lambda prog: argparse.RawDescriptionHelpFormatter(prog, width=width))
        self.io = io

    def error(self, message: str) -> NoReturn:
        """One sentence and exit 2, like every other bad input (argparse prints usage too)."""
        self.exit(EXIT_UNAVAILABLE, f"lean-solve check: {message} (see `lean-solve check --help`)\n")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        if message:
            self.io.err.write(message)
        raise ParserExit(status)

    def print_help(self, file: TextIO | None = None) -> None:
        (file or self.io.out).write(self.format_help())

    def print_usage(self, file: TextIO | None = None) -> None:
        (file or self.io.out).write(self.format_usage())


def build_parser(io: CheckIO | None = None) -> argparse.ArgumentParser:
    p = _Parser(io or local_io(), prog="lean-solve check", description=DESCRIPTION)
    p.add_argument("files", nargs="+", metavar="FILE", help="Lean file to check, or - for standard input.")
    p.add_argument("-b", "--backend", help="Lean backend: repl | lake | kernel | ray | auto")
    p.add_argument("--json", dest="json_out", action="store_true", help="Print one JSON object per file, one per line.")
    p.add_argument("--timeout", metavar="SECONDS", help="Seconds per Lean check before Lean is killed.")
    p.add_argument("--workers", "-j", type=int, metavar="N", help="Files checked at once (default: the cores).")
    p.add_argument("--allow-axiom", action="append", default=[], metavar="NAME",
                   help="Accept this axiom too (repeatable).")
    p.add_argument("--allow-native", action="store_true", help="Accept native_decide (Lean.ofReduceBool).")
    p.add_argument("--header", metavar="FILE", help="File with imports/opens to check the code under.")
    p.add_argument("--theorem", metavar="NAME", help="Name of the theorem that must be proved.")
    p.add_argument("--statement", metavar="PROP", help="The proposition it must state.")
    p.add_argument("--mathlib", action=argparse.BooleanOptionalAction, default=None,
                   help="Use the Mathlib workspace (default: when it is installed).")
    p.add_argument("--config", metavar="FILE", help="Config file (TOML).")
    p.add_argument("--no-server", action="store_true",
                   help="Check in this process even when a check server runs (`lean-solve server start`).")
    return p


Checkers = Callable[[str, dict], Any]
"""(backend, options) -> a context manager giving the checker: `get_checker` and close it after
(`_fresh_checker`), or, in the check server, one it keeps warm across calls."""


def main(argv: Sequence[str] | None = None, io: CheckIO | None = None, checkers: Checkers | None = None) -> int:
    """Run `lean-solve check` with `argv` (the words after `check`) on `io` (this process's
    streams by default); returns the exit code."""
    io = io or local_io()
    try:
        args = build_parser(io).parse_args(argv)
    except ParserExit as e:
        return e.code
    try:
        return _run(args, io, checkers or _fresh_checker)
    except LeanSolveError as e:
        io.err.write(f"lean-solve: {e}\n")
        return e.exit_code
    except KeyboardInterrupt:  # Ctrl-C: lifecycle has killed every Lean we started
        io.err.write("lean-solve: interrupted\n")
        return 130


def _fresh_checker(backend: str, options: dict) -> Any:
    from solve_in_lean.lean import get_checker

    return get_checker(backend, **options)  # a LeanChecker is its own context manager: closed after


def _run(args: argparse.Namespace, io: CheckIO, checkers: Checkers) -> int:
    from solve_in_lean.lean.base import MAX_INPUT_BYTES

    backend, options, lean = checker_spec(args, io.cwd)
    header = None if args.header is None else _read_header(args.header, MAX_INPUT_BYTES, io)
    with checkers(backend, options) as checker:
        if len(args.files) == 1:  # its Lean starts up while the verifier is imported and the file read
            checker.prestart()
        policy = lean.policy(tuple(args.allow_axiom), args.allow_native)
        verdicts = _verify_files(args.files, checker, header, args.theorem, args.statement, policy, io)
    codes = [exit_code(v) for v in verdicts]
    try:
        for path, verdict, code in zip(args.files, verdicts, codes):
            name = display_name(path)
            if args.json_out:
                _write_json({"file": name, "outcome": OUTCOMES[code], **verdict.to_dict()}, io.out)
            else:
                io.out.write(report(name, verdict, header_name=args.header, color=io.color))
        io.out.flush()
    except BrokenPipeError:  # `lean-solve check ... | head`: the reader left; the exit code still tells
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return max(codes, default=EXIT_OK)


def checker_spec(args: argparse.Namespace, cwd: str | None) -> tuple[str, dict, Any]:
    """What the checker for `args` is built from, (backend, get_checker options), and the [lean]
    settings that also give the policy; InputError for arguments that cannot work together."""
    from solve_in_lean.lean import BACKENDS
    from solve_in_lean.lean.base import validate_timeout
    from solve_in_lean.settings import LeanSettings, find_config, load_settings, resolve_backend

    if (args.theorem is None) != (args.statement is None):
        raise InputError("--theorem and --statement go together: the name and the proposition it must prove")
    if [*args.files, args.header].count(STDIN) > 1:
        raise InputError("standard input (-) can be read only once per call (a file or --header)")
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers must be at least 1, not {args.workers}")
    timeout = None if args.timeout is None else validate_timeout(args.timeout, "--timeout")
    # Without a config file only [lean]'s defaults matter: the full settings (model, solve) are
    # not built, and the checker's own default timeout is the settings' one (DEFAULT_TIMEOUT_S).
    settings = load_settings(args.config, cwd=cwd) if find_config(args.config, cwd=cwd) is not None else None
    lean = settings.lean if settings is not None else LeanSettings()
    if timeout is None and settings is not None:
        timeout = settings.solve.timeout_s
    backend = resolve_backend(args.backend or lean.backend)
    if backend not in BACKENDS:
        raise InputError(f"unknown Lean backend {backend!r}; choose one of: auto, {', '.join(BACKENDS)}")
    options: dict[str, Any] = {"workers": args.workers or lean.workers,
                               "mathlib": lean.mathlib if args.mathlib is None else args.mathlib}
    if timeout is not None:
        options["timeout_s"] = timeout
    if lean.memory_mb is not None:  # else the backend's own cap
        options["memory_mb"] = lean.memory_mb
    return backend, options, lean


def _verify_files(paths: list[str], checker: Any, header: str | None, theorem: str | None,
                  statement: str | None, policy: Any, io: CheckIO) -> list[Any]:
    """One verdict per path, in order, checked on the checker's workers (verify_many's map). Each
    file is read in its own worker, so only files in flight are in memory however many are named;
    a file that cannot be read gets an invalid-input verdict saying why."""
    from solve_in_lean.lean.base import CheckResult
    from solve_in_lean.parallel import default_workers, ordered_map
    from solve_in_lean.verify import Target, Verdict, verify

    target = Target(theorem, statement) if theorem is not None and statement is not None else None

    def one(path: str) -> Any:
        try:
            code = read_input(path, checker.max_input_bytes, io)
        except _InputProblem as e:
            return Verdict(False, [str(e)], CheckResult(status="invalid_input", detail=str(e), backend=checker.name))
        try:
            return verify(code, checker, header=header, target=target, policy=policy)
        except OSError as e:  # the machine, not the file: no file descriptors, processes or memory left
            why = f"Lean could not be run: {e.strerror or e}"
            return Verdict(False, [why], CheckResult(status="crashed", detail=why, backend=checker.name))

    return ordered_map(one, paths, checker.workers or default_workers(), description="checking",
                       progress=len(paths) > 1 and io.progress)  # a bar on a terminal's stderr only


class _InputProblem(Exception):
    """Why a named input cannot be read, in one sentence that follows its name."""


def read_input(path: str, limit: int, io: CheckIO) -> bytes:
    """The bytes of `path` (or standard input for -), reading at most `limit` + 1 bytes so a huge
    file or a device never fills memory; _InputProblem says, in one sentence, why not."""
    if path == STDIN:
        data = io.read_stdin(limit + 1)
        if len(data) > limit:
            raise _InputProblem(f"standard input is more than {limit:,} bytes, over the limit")
        return data
    if io.cwd is not None:
        path = os.path.join(io.cwd, path)
    try:
        if os.path.isdir(path):
            raise _InputProblem("is a directory, not a Lean file")
        size = os.stat(path).st_size
        if size > limit:
            raise _InputProblem(f"is {size:,} bytes, over the limit of {limit:,} bytes")
        with open(path, "rb") as f:
            data = f.read(limit + 1)
    except FileNotFoundError:
        raise _InputProblem("no such file") from None
    except OSError as e:
        raise _InputProblem(f"cannot be read ({e.strerror or e})") from None
    if len(data) > limit:  # not a regular file (a device, a pipe) and endless
        raise _InputProblem(f"is more than {limit:,} bytes, over the limit")
    return data


def _read_header(path: str, limit: int, io: CheckIO) -> str:
    """The --header file as text, or InputError blaming the header (never the checked file)."""
    from solve_in_lean.lean.source import validate_input

    try:
        data = read_input(path, limit, io)
    except _InputProblem as e:
        raise InputError(f"--header {display_name(path)}: {e}") from None
    text, problem = validate_input(data, limit)
    if problem is not None:
        raise InputError(f"--header {display_name(path)}: {problem.removeprefix('input ')}")
    return text


# --- output ----------------------------------------------------------------------------------

OUTCOMES = {EXIT_OK: "verified", EXIT_REJECTED: "rejected", EXIT_UNAVAILABLE: "could not check"}
_COLORS = {EXIT_OK: "\x1b[1;32m", EXIT_REJECTED: "\x1b[1;31m", EXIT_UNAVAILABLE: "\x1b[1;33m"}


def exit_code(verdict: Any) -> int:
    """0 verified, 1 rejected, 2 when the check itself could not run (bad input, Lean crashed)."""
    if verdict.check.status in ("invalid_input", "crashed"):
        return EXIT_UNAVAILABLE
    return EXIT_OK if verdict.verified else EXIT_REJECTED


def printable(text: str) -> str:
    """`text` on one line with control characters (newlines too) escaped, so it cannot move the
    cursor, recolour the terminal or start a line of its own; safe to encode in UTF-8 (lone
    surrogates escaped)."""
    text = _CONTROL.sub(lambda m: f"\\x{ord(m.group(0)):02x}" if ord(m.group(0)) < 0x100
                        else f"\\u{ord(m.group(0)):04x}", text)
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def display_name(path: str) -> str:
    return "<stdin>" if path == STDIN else printable(path)


def _indented(prefix: str, text: str) -> list[str]:
    return [prefix + printable(line) for line in text.split("\n")]


def report(name: str, verdict: Any, *, header_name: str | None = None, color: bool = False) -> str:
    """The text block for one file: Lean's messages under `lean|`, the reasons and axioms
    indented, and the verdict line last."""
    res = verdict.check
    lines: list[str] = []
    for m in res.messages:
        where = display_name(header_name) if m.in_header and header_name else name
        lines += _indented("  lean| ", m.format(where))
    code = exit_code(verdict)
    reasons = list(verdict.reasons)
    if code == EXIT_UNAVAILABLE:  # what happened, on the verdict line itself
        verdict_line = f"{name}: could not check: {printable(reasons.pop(0) if reasons else res.detail or res.status)}"
    else:
        where = res.backend + (f", Lean {res.lean_version}" if res.lean_version else "")
        verdict_line = f"{name}: {OUTCOMES[code]} ({printable(where)}, {res.elapsed_s:.2f} s)"
    for reason in reasons:
        lines += _indented("  - ", reason)
    for decl, axioms in res.axioms.items():
        if axioms:
            lines += _indented("  ", f"axioms of {decl}: {', '.join(axioms)}")
    if clean := [decl for decl, axioms in res.axioms.items() if not axioms]:
        lines += _indented("  ", f"no axioms: {', '.join(clean)}")
    if color:
        verdict_line = f"{_COLORS[code]}{verdict_line}\x1b[0m"
    return "\n".join([*lines, verdict_line]) + "\n"


def _write_json(obj: dict, out: TextIO) -> None:
    import json

    out.write(json.dumps(obj, ensure_ascii=False, default=str) + "\n")  # local_io() made stdout escape, not fail
