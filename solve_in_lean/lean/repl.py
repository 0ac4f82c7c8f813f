"""The `repl` backend: lean-interact's Lean REPL servers, one per worker.

The header (`import Mathlib`, `open ...`) is elaborated once per server process, under its
own `header_timeout_s`, and its environment reused for every check, which is what makes
Mathlib checks fast. A server that times out or crashes is killed and restarted on its next
use, which elaborates the header again before that check's clock starts, so the other checks
never notice.

Checks never build or download anything: the REPL is the one `setup` built (see
`toolchain.repl_dir`), and lean-interact's log goes to stderr, so `--json` stdout stays clean.

After the code, one trusted command of ours (`audit_command`) runs in the code's environment and
lists every constant the environment holds beyond its imports, with the axioms Lean collects for
each; the header's own constants are subtracted, so `CheckResult.declarations` is Lean's own list
of what the code added and `declaration_axioms` its audit (docs/verification.md, *Backends*).
"""

from __future__ import annotations

import json
import logging
import queue
import secrets
import sys
import threading
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Iterator

from solve_in_lean.lean import goals as error_goals
from solve_in_lean.lean import lifecycle
from solve_in_lean.lean.base import DEFAULT_MEMORY_MB, CheckResult, LeanChecker, LeanUnavailable, Message
from solve_in_lean.lean.messages import axioms_from_messages, eval_outputs, message_from_json, uses_sorry
from solve_in_lean.lean.process_backend import mentions_memory
from solve_in_lean.lean.source import line_count, split_header
from solve_in_lean.lean.toolchain import (MATHLIB_MEMORY_MB, SETUP_HINT, cache_root, find_tool, lake_environment, project_dir,
                                          repl_dir, use_mathlib)

HEADER_TIMEOUT_S = 900.0
"""A first `import Mathlib` on a cold disk takes minutes; it is not charged to any check."""
MAX_SYSTEM_MEMORY = 0.95
"""lean-interact restarts the REPL when the whole machine's RAM use passes this share; its 0.8
default fires all the time beside a vLLM process, and the cap above already bounds Lean."""

log = logging.getLogger(__name__)

# --- the declaration audit -----------------------------------------------------------------

AUDIT_PREFIX = "lean-solve-audit "
_AUDIT_COMMAND = """\
set_option maxHeartbeats 0 in
set_option maxRecDepth 100000 in
#eval show _root_.Lean.Elab.Command.CommandElabM _root_.Unit from do
  let emit : _root_.Array _root_.Lean.Json → _root_.Lean.Elab.Command.CommandElabM _root_.Unit := fun parts =>
    _root_.Lean.logInfo (_root_.Lean.MessageData.ofFormat (_root_.Std.Format.text
      (_root_.String.append "{prefix}" (_root_.Lean.Json.compress (_root_.Lean.Json.arr parts)))))
  let str : _root_.String → _root_.Lean.Json := _root_.Lean.Json.str
  let names : _root_.List _root_.Lean.Name := _root_.Lean.SMap.foldStage2
    (fun acc name _ => _root_.List.cons name acc) _root_.List.nil
    (_root_.Lean.Environment.constants (← _root_.Lean.getEnv))
  _root_.List.forM names fun name => do
    let found ← _root_.Lean.collectAxioms name
    emit #[str "{nonce}", str "decl", str (_root_.Lean.Name.toString name),
      _root_.Lean.Json.arr (_root_.Array.map (fun a => str (_root_.Lean.Name.toString a)) found)]
  emit #[str "{nonce}", str "end", str (_root_.Nat.repr (_root_.List.length names))]
"""


def audit_command(nonce: str) -> str:
    """The trusted command sent after the code, in the code's environment.

    It reads Lean's own table of constants (`map₂`: everything added since the imports, private
    and auxiliary names included), asks `Lean.collectAxioms` for each, and logs one JSON line per
    constant, `["<nonce>", "decl", name, [axioms...]]`, then `["<nonce>", "end", "<count>"]`.
    Every name is written from `_root_`, so the code's namespaces and `open`s cannot redirect
    it, and beyond `CommandElabM`'s own plumbing (`do`, `getEnv`, `logInfo`) every step is a
    plain function (no `for`, `++`, `toString` or coercion an instance could reinterpret); the
    random nonce, in a command of its own, means nothing the code printed can pass for its lines
    (docs/verification.md, *The repl audit*, says what remains)."""
    if not nonce.isalnum():
        raise ValueError(f"the audit nonce must be alphanumeric, not {nonce!r}")
    return _AUDIT_COMMAND.replace("{prefix}", AUDIT_PREFIX).replace("{nonce}", nonce)


class AuditError(Exception):
    """The audit command's answer is not what it prints: the audit cannot be trusted."""


def parse_audit(messages: Iterable[Any], nonce: str) -> dict[str, list[str]]:
    """The audit command's answer (the REPL's messages for that command) -> constant -> axioms.

    Fails closed (AuditError) on anything but exactly its own output: an error, a line with this
    nonce that is not well formed, a constant listed twice, a missing final line or a count that
    differs. Lines without this nonce are not the audit's and are ignored."""
    listed: dict[str, list[str]] = {}
    count: int | None = None
    for m in messages:
        text = str(m.data).strip()
        if m.severity == "error":
            raise AuditError(f"Lean could not run it: {_first_line(text)}")
        if m.severity != "info" or not text.startswith(AUDIT_PREFIX):
            continue
        try:
            line = json.loads(text[len(AUDIT_PREFIX):])
        except json.JSONDecodeError:
            raise AuditError(f"a line is not JSON: {_first_line(text)}") from None
        if not isinstance(line, list) or not line or line[0] != nonce:
            continue
        if count is not None:
            raise AuditError("a line follows its last line")
        if (len(line) == 4 and line[1] == "decl" and isinstance(line[2], str) and line[2]
                and isinstance(line[3], list) and all(isinstance(a, str) and a for a in line[3])):
            if line[2] in listed:
                raise AuditError(f"it listed `{line[2]}` twice")
            listed[line[2]] = line[3]
        elif len(line) == 3 and line[1] == "end" and isinstance(line[2], str) and line[2].isdigit():
            count = int(line[2])
        else:
            raise AuditError(f"a line is not well formed: {_first_line(text)}")
    if count is None:
        raise AuditError("its last line is missing")
    if count != len(listed):
        raise AuditError(f"it counted {count} constants but listed {len(listed)}")
    return listed


def _first_line(text: str) -> str:
    return next((ln.strip() for ln in text.splitlines() if ln.strip()), "")[:300]


def may_import_lean(header: str | None) -> bool:
    """Whether the header imports anything: without an import only `Init` (or nothing, under
    `prelude`) is loaded, and neither has Lean's meta library, so the audit cannot run."""
    return bool(header) and any(line.strip().startswith("import")
                                for line in split_header(header)[0].splitlines())


def import_lean_interact() -> Any:
    try:
        import lean_interact
    except ImportError as e:
        raise LeanUnavailable("the repl backend needs lean-interact: `pip install 'lean-solve[lean]'`") from e
    _quiet(logging.getLogger("lean_interact"))
    return lean_interact


def _quiet(logger: logging.Logger) -> None:
    """lean-interact logs through Rich to stdout; send warnings and errors to stderr instead."""
    if not getattr(logger, "_lean_solve_quiet", False):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("lean-interact: %(message)s"))
        logger.handlers = [handler]
        logger.setLevel(logging.WARNING)
        logger.propagate = False
        logger._lean_solve_quiet = True  # type: ignore[attr-defined]


def unavailable(what: str, error: BaseException) -> LeanUnavailable:
    """lean-interact's RuntimeError/ValueError/CalledProcessError/git errors as one sentence."""
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip() and set(ln.strip()) != {"-"}]
    first = lines[0][:300] if lines else type(error).__name__
    return LeanUnavailable(f"{what} failed ({type(error).__name__}: {first}); {SETUP_HINT}")


def repl_config(project: Path, repl: Path, lake: str, *, memory_mb: int | None) -> Any:
    """A lean-interact config for a built REPL and project: no clone, no build, no network."""
    li = import_lean_interact()
    try:
        return li.LeanREPLConfig(project=li.LocalProject(directory=str(project), lake_path=lake, auto_build=False),
                                 local_repl_path=str(repl), build_repl=False, lake_path=lake,
                                 cache_dir=str(cache_root() / "lean-interact"), memory_hard_limit_mb=memory_mb)
    except Exception as e:  # noqa: BLE001 - lean-interact raises many types; each becomes one sentence
        raise unavailable("configuring the Lean REPL", e) from e


@dataclass
class _Header:
    env: int
    start: int
    """The `server.starts` it was elaborated in (a restarted server has lost it)."""
    constants: frozenset[str] | None
    """The constants the header itself added, as the audit lists them; None when the header
    has no Lean meta library, so the audit cannot run after code in it."""


@dataclass
class _Worker:
    server: Any
    headers: dict[str, _Header]


class ReplChecker(LeanChecker):
    name = "repl"
    evaluates = True

    def __init__(self, *, mathlib: bool | None = None, project: str | Path | None = None,
                 repl: str | Path | None = None, lake: str | None = None, memory_mb: int | None = None,
                 header_timeout_s: float = HEADER_TIMEOUT_S, goals: bool = False, **kw: Any) -> None:
        mathlib = use_mathlib(mathlib) if project is None else bool(mathlib)
        if memory_mb is None:
            memory_mb = MATHLIB_MEMORY_MB if mathlib else DEFAULT_MEMORY_MB
        super().__init__(memory_mb=memory_mb, **kw)
        self._li = import_lean_interact()
        from solve_in_lean.lean.repl_server import DirectServer

        self._server_class = DirectServer
        self.mathlib = mathlib
        self.header_timeout_s = header_timeout_s
        # ask for the info tree and keep the goal at each error (repair prompts show it); it makes
        # every answer larger, so only runs with repair rounds turn it on (settings.make_checker)
        self.goals = goals
        lake = lake or find_tool("lake")
        if lake is None:
            raise LeanUnavailable(f"no Lean toolchain (`lake` not found); {SETUP_HINT}")
        self.project = Path(project) if project else project_dir(mathlib)
        self._env = lake_environment(lake, str(self.project))
        self._config = repl_config(self.project, Path(repl) if repl else repl_dir(self.project), lake,
                                   memory_mb=self.memory_mb)
        self._size = max(1, self.workers or 1)
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._all: list[_Worker] = []
        self._lock = threading.Lock()

    @property
    def lean_version(self) -> str:
        return str(self._config.lean_version or "").lstrip("v")

    def _acquire(self) -> _Worker:
        """An idle server, or a new one while fewer than `workers` exist. A slot is counted only
        once its server is built, so a failed start never leaves the pool a worker short."""
        with self._lock:
            grow = self._idle.empty() and len(self._all) < self._size
            if grow:
                self._all.append(placeholder := _Worker(None, {}))
        if not grow:
            return self._idle.get()
        try:
            placeholder.server = self._server_class(self._config, env=self._env, max_total_memory=MAX_SYSTEM_MEMORY)
        except BaseException as e:
            with self._lock:
                self._all.remove(placeholder)
            if isinstance(e, Exception):
                raise unavailable("starting the Lean REPL", e) from e
            raise
        return placeholder

    def _env_for(self, worker: _Worker, header: str) -> tuple[_Header | None, list[Message]]:
        """The header's environment in the server's current process. After a restart it is
        elaborated again here, under `header_timeout_s` and before the check's clock starts
        (lean-interact would replay it lazily inside the check, with no timeout at all)."""
        server = worker.server
        if header in worker.headers:
            known = worker.headers[header]
            if known.start == server.starts and server.is_alive():
                return known, []
            del worker.headers[header]
            server.remove_from_session_cache(known.env)
        resp = server.run(self._li.Command(cmd=header), timeout=self.header_timeout_s, add_to_session_cache=True)
        if isinstance(resp, self._li.interface.LeanError):
            return None, [Message("error", 1, 0, resp.message, in_header=True)]
        msgs = [replace(message_from_json(m.model_dump(by_alias=True)), in_header=True) for m in resp.messages]
        if any(m.severity == "error" for m in msgs):
            worker.server.remove_from_session_cache(resp.env)
            return None, msgs
        known = _Header(resp.env, server.starts, self._header_constants(worker, header, resp.env))
        worker.headers[header] = known
        return known, []

    def _header_constants(self, worker: _Worker, header: str, env: int) -> frozenset[str] | None:
        """The audit run on the header alone: the constants the header added (subtracted from
        every later list), or None when it cannot run there (no Lean meta library imported)."""
        if not may_import_lean(header):
            return None
        nonce = secrets.token_hex(8)
        resp = worker.server.run(self._li.Command(cmd=audit_command(nonce), env=env), timeout=self.header_timeout_s)
        try:
            if isinstance(resp, self._li.interface.LeanError):
                raise AuditError(f"the REPL refused it: {resp.message}")
            return frozenset(parse_audit(resp.messages, nonce))
        except AuditError as e:
            log.warning("lean-solve: the repl backend audits declarations from the text only under this header "
                        "(Lean's list of declarations needs `import Lean` or Mathlib): %s", e)
            return None

    def _check(self, code: str, header: str | None, timeout_s: float) -> CheckResult:
        shift = 0
        if header is None:
            own_header, body = split_header(code)
            if own_header.strip():
                header, code, shift = own_header, body, line_count(own_header)
        if not code.strip() and not (header and header.strip()):
            return CheckResult(status="ok", lean_version=self.lean_version)  # nothing for Lean to do
        worker = self._acquire()
        what, limit = "the header", self.header_timeout_s
        try:
            known = None
            if header and header.strip():
                known, header_msgs = self._env_for(worker, header)
                if known is None:
                    return CheckResult(status="error", messages=header_msgs, lean_version=self.lean_version,
                                       detail="the header does not elaborate")
            if not code.strip():
                # the REPL refuses an empty command; an empty body is simply fine
                return CheckResult(status="ok", lean_version=self.lean_version)
            what, limit = "the code", timeout_s
            options = error_goals.command_options() if self.goals else {}
            resp = worker.server.run(self._li.Command(cmd=code, env=known.env if known else None, **options),
                                     timeout=timeout_s)
            audit: dict[str, list[str]] | str | None = None
            if (known is not None and known.constants is not None
                    and not isinstance(resp, self._li.interface.LeanError) and not resp.has_errors()):
                what = "the declaration audit"
                audit = self._audit(worker, resp.env, known.constants, timeout_s)
        except TimeoutError:
            return CheckResult(status="timeout", detail=f"Lean did not finish {what} within {limit:g} s; "
                                                        "the REPL server was killed and will restart")
        except Exception as e:  # noqa: BLE001 - every way the REPL can fail becomes a status, never a traceback
            return self._failed(worker, e)
        finally:
            self._idle.put(worker)
        if isinstance(resp, self._li.interface.LeanError):
            return CheckResult(status="crashed", detail=f"the Lean REPL refused the command: {resp.message}")
        msgs = []
        for m in resp.messages:
            msg = message_from_json(m.model_dump(by_alias=True))
            if shift:
                msg = replace(msg, line=msg.line + shift,
                              end_line=None if msg.end_line is None else msg.end_line + shift)
            msgs.append(msg)
        axioms = axioms_from_messages(msgs)
        full_code = code if not shift else "\n" * shift + code
        result = CheckResult(status="error" if any(m.severity == "error" for m in msgs) else "ok",
                             messages=msgs, axioms=axioms, evals=eval_outputs(full_code, msgs),
                             sorry=uses_sorry(msgs, axioms) or bool(resp.sorries), lean_version=self.lean_version,
                             goals=error_goals.goals_at_errors(resp, shift) if self.goals else None)
        if isinstance(audit, str):  # the header can run the audit, so a failed one rejects (fail closed)
            result.status, result.detail = "error", audit
        elif audit is not None:
            result.declarations = {name: 0 for name in audit}
            result.declaration_axioms = audit
        return result

    def _audit(self, worker: _Worker, env: int, header_constants: frozenset[str],
               timeout_s: float) -> dict[str, list[str]] | str:
        """The constants the code added (Lean's list, minus the header's) -> their axioms, or
        why the audit failed, in one sentence."""
        nonce = secrets.token_hex(8)
        resp = worker.server.run(self._li.Command(cmd=audit_command(nonce), env=env), timeout=timeout_s)
        try:
            if isinstance(resp, self._li.interface.LeanError):
                raise AuditError(f"the REPL refused it: {resp.message}")
            listed = parse_audit(resp.messages, nonce)
        except AuditError as e:
            return f"Lean's list of the declarations the code added could not be read, so they were not audited: {e}"
        return {name: axioms for name, axioms in listed.items() if name not in header_constants}

    def _failed(self, worker: _Worker, error: Exception) -> CheckResult:
        """Status of a check whose REPL died or answered garbage; the server restarts on next use.
        A REPL that died because lean-solve is shutting down gives no verdict at all (Interrupted),
        so a batch never records it as that item's result."""
        if lifecycle.stopping():
            raise lifecycle.Interrupted("lean-solve is shutting down") from error
        server = worker.server
        if server.is_alive() and not isinstance(error, MemoryError):
            server.kill()  # its output stream can no longer be trusted
        text = str(error)
        first = next((ln.strip() for ln in text.splitlines() if ln.strip()), type(error).__name__)[:300]
        if isinstance(error, MemoryError) or mentions_memory(text):
            return CheckResult(status="memory", detail=f"the Lean REPL ran out of memory under the cap of "
                                                       f"{self.memory_mb} MB: {first}")
        if server.last_exit == -9:
            return CheckResult(status="memory", detail="the Lean REPL was killed by SIGKILL, which is what the "
                                                       "kernel's out-of-memory killer sends")
        if isinstance(error, json.JSONDecodeError):
            return CheckResult(status="crashed", detail=f"the Lean REPL printed output that is not JSON: {first}")
        how = f" (exit status {server.last_exit})" if server.last_exit is not None else ""
        return CheckResult(status="crashed", detail=f"the Lean REPL failed{how}: {type(error).__name__}: {first}")

    @contextmanager
    def tactic_session(self, header: str | None = None, timeout_s: float | None = None) -> Iterator["TacticSession"]:
        """A TacticSession on one server, with `header` elaborated, for step-wise proof search."""
        timeout = timeout_s or self.timeout_s
        worker = self._acquire()
        try:
            env = None
            if header:
                known, msgs = self._env_for(worker, header)
                if known is None:
                    raise LeanUnavailable(f"the header does not elaborate: {msgs[0].text if msgs else ''}")
                env = known.env
            yield TacticSession(self, worker, env, timeout)
        finally:
            self._idle.put(worker)

    def close(self) -> None:
        with self._lock:
            workers, self._all = self._all, []
        for worker in workers:
            if worker.server is not None:
                worker.server.kill()


@dataclass
class StepResult:
    state: int | None
    goals: list[str]
    status: str
    """`completed` (no goals left), `open` (goals remain), `error` (the tactic failed) or
    `restarted` (the REPL restarted, so every earlier proof state is gone: stop searching)."""
    error: str = ""


class TacticSession:
    """Proof states of one REPL server: start a theorem, apply tactics, read goals.

    Proof states live inside one Lean process, so a session keeps its server for its whole
    life and notices when that process was replaced (timeout, crash, memory restart).
    """

    def __init__(self, checker: ReplChecker, worker: _Worker, env: int | None, timeout_s: float) -> None:
        self._checker, self._worker, self._env, self.timeout_s = checker, worker, env, timeout_s
        self._li = checker._li
        self._process: int | None = None
        """`server.starts` when the states of this session were made."""

    def _restarted(self) -> StepResult | None:
        server = self._worker.server
        if self._process is not None and (server.starts != self._process or not server.is_alive()):
            return StepResult(None, [], "restarted", "the Lean REPL restarted, so its earlier proof states are gone")
        return None

    def _run(self, request: Any) -> Any:
        """The response, or a StepResult saying why there is none."""
        try:
            return self._worker.server.run(request, timeout=self.timeout_s)
        except TimeoutError:
            return StepResult(None, [], "restarted", f"the tactic did not finish within {self.timeout_s:g} s; "
                                                     "the REPL was restarted and its proof states are gone")
        except Exception as e:  # noqa: BLE001 - a dead or garbled REPL ends the search with a reason
            failed = self._checker._failed(self._worker, e)
            return StepResult(None, [], "restarted", f"the Lean REPL failed ({failed.status}): {failed.detail}")

    def start(self, theorem: str) -> StepResult:
        """Elaborate `theorem ... := by sorry` and return the proof state at the `sorry`."""
        resp = self._run(self._li.Command(cmd=f"{theorem} := by sorry", env=self._env))
        if isinstance(resp, StepResult):
            return resp
        self._process = self._worker.server.starts
        if isinstance(resp, self._li.interface.LeanError):
            return StepResult(None, [], "error", resp.message)
        errors = [m.data for m in resp.messages if m.severity == "error"]
        if errors or not resp.sorries:
            return StepResult(None, [], "error", errors[0] if errors else "the statement opened no goal")
        sorry = resp.sorries[0]
        return StepResult(sorry.proof_state, [sorry.goal], "open")

    def step(self, state: int, tactic: str) -> StepResult:
        if self._process is None:
            self._process = self._worker.server.starts
        if stale := self._restarted():
            return stale
        resp = self._run(self._li.ProofStep(proof_state=state, tactic=tactic))
        if isinstance(resp, StepResult):
            return resp
        if stale := self._restarted():
            return stale
        if isinstance(resp, self._li.interface.LeanError):
            return StepResult(None, [], "error", resp.message)
        errors = [m.data for m in resp.messages if m.severity == "error"]
        if errors or resp.proof_status.startswith("Error"):
            return StepResult(None, [], "error", errors[0] if errors else resp.proof_status)
        done = not resp.goals and resp.proof_status.startswith("Completed")
        return StepResult(resp.proof_state, list(resp.goals), "completed" if done else "open")
