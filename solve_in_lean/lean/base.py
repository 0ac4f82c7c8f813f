"""The one Lean checking interface: `check(code, header=..., timeout_s=...) -> CheckResult`.

Backends (repl, lake, kernel) differ in how they run Lean, never in what they report.
Positions follow Lean's own convention: lines from 1, columns from 0 (in code points).
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from typing import Iterable, Literal

from solve_in_lean.errors import InputError, UnavailableError
from solve_in_lean.parallel import default_workers, ordered_map

Severity = Literal["error", "warning", "information"]
Status = Literal["ok", "error", "timeout", "memory", "output_limit", "crashed", "invalid_input", "refused"]
"""`ok`/`error`: Lean ran to the end and reported no error / some error. The others mean the
check did not complete: a timeout, the memory cap, too much output, a crash of Lean itself,
input that cannot be Lean source (too large, not UTF-8, NUL bytes), or code the verification
rules refuse to run at all (see verify.refused_constructs)."""

DEFAULT_TIMEOUT_S = 60.0
DEFAULT_MEMORY_MB = 8192
"""Address-space cap. Lean reserves virtual memory for its threads up front: 1 GB makes it
abort at start on these machines, 4 GB runs, so the default leaves room."""
MAX_TIMEOUT_S = 7 * 24 * 3600.0
"""Longer than any check should run, and far below what `threading`/`select` accept as a
timeout (`inf` and 1e10 overflow them)."""
MAX_INPUT_BYTES = 1_000_000
MAX_OUTPUT_BYTES = 20_000_000


def validate_timeout(value: object, what: str = "timeout") -> float:
    """The timeout as a float in (0, MAX_TIMEOUT_S], or InputError naming `what`.

    The one check every entry point (CLI flag, config key, API argument) goes through."""
    try:
        seconds = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"{what} must be a number of seconds, not {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(seconds) or seconds <= 0 or seconds > MAX_TIMEOUT_S:
        raise InputError(f"{what} must be a positive, finite number of seconds up to {MAX_TIMEOUT_S:.0f} "
                         f"(7 days), not {value!r}")
    return seconds


class LeanUnavailable(UnavailableError):
    """The backend cannot run on this machine; the message says how to enable it."""


@dataclass(frozen=True)
class Message:
    severity: Severity
    line: int
    column: int
    text: str
    end_line: int | None = None
    end_column: int | None = None
    in_header: bool = False
    """The message points into the header (imports/opens), not into the checked code."""

    def to_dict(self) -> dict:
        return asdict(self)

    def format(self, path: str = "<input>") -> str:
        return f"{path}:{self.line}:{self.column}: {self.severity}: {self.text}"


@dataclass(frozen=True)
class EvalOutput:
    """What one `#eval` command printed, keyed by the line of the command."""

    line: int
    text: str


@dataclass
class CheckResult:
    status: Status
    messages: list[Message] = field(default_factory=list)
    axioms: dict[str, list[str]] = field(default_factory=dict)
    """Declaration name -> axioms it depends on, as printed by `#print axioms` in the code."""
    evals: list[EvalOutput] = field(default_factory=list)
    sorry: bool = False
    elapsed_s: float = 0.0
    backend: str = ""
    lean_version: str = ""
    detail: str = ""
    """For a check that did not complete: what happened, in one sentence."""
    declarations: dict[str, int] | None = None
    """Declarations the checked text added, as Lean itself recorded them (name -> line in the
    code, 0 when Lean gives no position), where the backend can tell (`lean -i` .ilean); None
    where it cannot. The verifier audits every one of them, not only those it read in the text."""
    declaration_axioms: dict[str, list[str]] | None = None
    """The axioms of each of `declarations`, collected by Lean itself where the backend can
    (repl: `Lean.collectAxioms` in the checked environment); None where it lists names only."""
    goals: dict[str, str] | None = None
    """The goal state at each error, from the REPL's info tree (lean/goals.py), where the backend was
    asked for it (repl with `goals=True`: repair rounds show it); None otherwise."""

    @property
    def ok(self) -> bool:
        """Lean elaborated everything without an error. Not the same as verified (see verify)."""
        return self.status == "ok"

    @property
    def completed(self) -> bool:
        return self.status in ("ok", "error")

    @property
    def errors(self) -> list[Message]:
        return [m for m in self.messages if m.severity == "error"]

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "status": self.status,
            "messages": [m.to_dict() for m in self.messages],
            "axioms": self.axioms,
            "evals": [asdict(e) for e in self.evals],
            "sorry": self.sorry,
            "elapsed_s": round(self.elapsed_s, 6),
            "backend": self.backend,
            "lean_version": self.lean_version,
            "detail": self.detail,
            "declarations": self.declarations,
        }

    @classmethod
    def from_dict(cls, d: dict) -> "CheckResult":
        return cls(
            status=d["status"],
            messages=[Message(**m) for m in d.get("messages", [])],
            axioms={k: list(v) for k, v in d.get("axioms", {}).items()},
            evals=[EvalOutput(**e) for e in d.get("evals", [])],
            sorry=d.get("sorry", False),
            elapsed_s=d.get("elapsed_s", 0.0),
            backend=d.get("backend", ""),
            lean_version=d.get("lean_version", ""),
            detail=d.get("detail", ""),
            declarations=d.get("declarations"),
        )


@dataclass(frozen=True)
class CheckRequest:
    code: str | bytes
    header: str | None = None
    timeout_s: float | None = None


class LeanChecker(ABC):
    """A way to run Lean on a piece of code. One instance may serve many checks in parallel."""

    name: str = "base"
    evaluates: bool = True
    """Whether `#eval` runs on this backend (the bundled kernel has no compiler: it prints instead)."""

    def __init__(self, *, timeout_s: float = DEFAULT_TIMEOUT_S, memory_mb: int = DEFAULT_MEMORY_MB,
                 max_input_bytes: int = MAX_INPUT_BYTES, max_output_bytes: int = MAX_OUTPUT_BYTES,
                 workers: int | None = None) -> None:
        self.timeout_s = validate_timeout(timeout_s)
        self.memory_mb = memory_mb
        self.max_input_bytes = max_input_bytes
        self.max_output_bytes = max_output_bytes
        self.workers = workers

    @property
    @abstractmethod
    def lean_version(self) -> str:
        """Version string of the Lean this backend runs; raises LeanUnavailable if none."""

    @abstractmethod
    def _check(self, code: str, header: str | None, timeout_s: float) -> CheckResult:
        """Run Lean on validated input. Positions in the result are relative to `code`."""

    def check(self, code: str | bytes, *, header: str | None = None,
              timeout_s: float | None = None) -> CheckResult:
        """Check one piece of Lean code; never raises for bad code, only for a missing backend."""
        from solve_in_lean.lean.source import validate_input

        start = time.perf_counter()
        timeout = self.timeout_s if timeout_s is None else validate_timeout(timeout_s)
        text, problem = validate_input(code, self.max_input_bytes)
        if problem is None and header is not None:
            header, problem = validate_input(header, self.max_input_bytes)
        if problem is not None:
            return CheckResult(status="invalid_input", detail=problem, backend=self.name,
                               elapsed_s=time.perf_counter() - start)
        result = self._check(text, header, timeout)
        result.backend = self.name
        result.elapsed_s = time.perf_counter() - start
        return result

    def prestart(self) -> None:
        """Start the Lean of this thread's next check now, where a backend starts one per check,
        so its start-up overlaps the caller's own work; it reads nothing before that check.
        Backends with a long-lived Lean do nothing."""

    def cancel_prestart(self) -> None:
        """Stop the Lean `prestart` started in this thread when no check will use it."""

    def check_many(self, requests: Iterable[CheckRequest | str], *, workers: int | None = None,
                   progress: bool = False) -> list[CheckResult]:
        """Check many pieces of code in parallel; results come back in input order.

        A request is a CheckRequest, a bare code string, or any object with `code`, `header`
        and `timeout_s` attributes (so callers such as `autoformalize` need not import ours).
        """
        reqs = [r if isinstance(r, CheckRequest) else CheckRequest(r) if isinstance(r, (str, bytes))
                else CheckRequest(r.code, r.header, r.timeout_s) for r in requests]
        return ordered_map(lambda r: self.check(r.code, header=r.header, timeout_s=r.timeout_s), reqs,
                           workers or self.workers or default_workers(), progress=progress, description="checking")

    def close(self) -> None:
        """Stop any long-lived Lean processes."""

    def __enter__(self) -> "LeanChecker":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
