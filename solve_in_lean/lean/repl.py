"""The `repl` backend: lean-interact's Lean REPL servers, one per worker.

The header (`import Mathlib`, `open ...`) is elaborated once per server and its environment
reused for every check, which is what makes Mathlib checks fast. A server that times out or
crashes is killed; lean-interact restarts it and replays the cached header on its next use,
so the other checks never notice.
"""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, replace
from contextlib import contextmanager
from typing import Any, Iterator

from solve_in_lean.lean.base import CheckResult, LeanChecker, LeanUnavailable, Message
from solve_in_lean.lean.messages import axioms_from_messages, eval_outputs, message_from_json, uses_sorry
from solve_in_lean.lean.source import line_count, split_header
from solve_in_lean.lean.toolchain import SETUP_HINT, find_tool, project_dir


def _import_lean_interact() -> Any:
    try:
        import lean_interact
    except ImportError as e:
        raise LeanUnavailable("the repl backend needs lean-interact: `pip install 'lean-solve[lean]'`") from e
    return lean_interact


def repl_config(*, mathlib: bool = False, memory_mb: int | None = None, verbose: bool = False) -> Any:
    """A lean-interact config for the project's workspace (builds the REPL on first use)."""
    li = _import_lean_interact()
    lake = find_tool("lake")
    if lake is None:
        raise LeanUnavailable(f"no Lean toolchain (`lake` not found); {SETUP_HINT}")
    return li.LeanREPLConfig(project=li.LocalProject(directory=str(project_dir(mathlib))),
                             memory_hard_limit_mb=memory_mb, lake_path=lake, verbose=verbose)


class _Worker:
    def __init__(self, server: Any) -> None:
        self.server = server
        self.headers: dict[str, int] = {}


class ReplChecker(LeanChecker):
    name = "repl"
    evaluates = True

    def __init__(self, *, mathlib: bool = False, config: Any = None, **kw: Any) -> None:
        super().__init__(**kw)
        self._li = _import_lean_interact()
        self._config = config or repl_config(mathlib=mathlib, memory_mb=self.memory_mb)
        self._size = max(1, self.workers or 1)
        self._idle: queue.Queue[_Worker] = queue.Queue()
        self._started = 0
        self._lock = threading.Lock()

    @property
    def lean_version(self) -> str:
        return str(self._config.lean_version or "").lstrip("v")

    def _acquire(self) -> _Worker:
        with self._lock:
            if self._idle.empty() and self._started < self._size:
                self._started += 1
                return _Worker(self._li.AutoLeanServer(self._config))
        return self._idle.get()

    def _env_for(self, worker: _Worker, header: str, timeout_s: float) -> tuple[int | None, list[Message]]:
        if header in worker.headers:
            return worker.headers[header], []
        resp = worker.server.run(self._li.Command(cmd=header), timeout=timeout_s, add_to_session_cache=True)
        if isinstance(resp, self._li.LeanError):
            return None, [Message("error", 1, 0, resp.message, in_header=True)]
        msgs = [replace(message_from_json(m.model_dump(by_alias=True)), in_header=True) for m in resp.messages]
        if any(m.severity == "error" for m in msgs):
            return None, msgs
        worker.headers[header] = resp.env
        return resp.env, []

    def _check(self, code: str, header: str | None, timeout_s: float) -> CheckResult:
        shift = 0
        if header is None:
            own_header, body = split_header(code)
            if own_header.strip():
                header, code, shift = own_header, body, line_count(own_header)
        worker = self._acquire()
        start = time.monotonic()
        try:
            env = None
            if header:
                env, header_msgs = self._env_for(worker, header, timeout_s)
                if env is None:
                    return CheckResult(status="error", messages=header_msgs,
                                       detail="the header does not elaborate")
            remaining = max(0.1, timeout_s - (time.monotonic() - start))
            resp = worker.server.run(self._li.Command(cmd=code, env=env), timeout=remaining)
        except TimeoutError:
            worker.headers.clear()
            return CheckResult(status="timeout", detail=f"Lean did not finish within {timeout_s:g} s; "
                                                        "the REPL server was killed and will restart")
        except (ConnectionAbortedError, ChildProcessError, MemoryError) as e:
            worker.headers.clear()
            return CheckResult(status="crashed", detail=f"the Lean REPL died: {str(e).splitlines()[0]}")
        finally:
            self._idle.put(worker)
        if isinstance(resp, self._li.LeanError):
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
                             sorry=uses_sorry(msgs, axioms) or bool(resp.sorries),
                             lean_version=self.lean_version)
        return result

    @contextmanager
    def tactic_session(self, header: str | None = None, timeout_s: float | None = None) -> Iterator["TacticSession"]:
        """A TacticSession on one server, with `header` elaborated, for step-wise proof search."""
        timeout = timeout_s or self.timeout_s
        worker = self._acquire()
        try:
            env = None
            if header:
                env, msgs = self._env_for(worker, header, timeout)
                if env is None:
                    raise LeanUnavailable(f"the header does not elaborate: {msgs[0].text if msgs else ''}")
            yield TacticSession(self, worker, env, timeout)
        finally:
            self._idle.put(worker)

    def close(self) -> None:
        while not self._idle.empty():
            self._idle.get().server.kill()


@dataclass
class StepResult:
    state: int | None
    goals: list[str]
    status: str
    """`completed` (no goals left), `open` (goals remain) or `error` (the tactic failed)."""
    error: str = ""


class TacticSession:
    """Proof states of one REPL server: start a theorem, apply tactics, read goals.

    Proof states live inside one Lean process, so a session keeps its server for its whole life.
    """

    def __init__(self, checker: "ReplChecker", worker: _Worker, env: int | None, timeout_s: float) -> None:
        self._checker, self._worker, self._env, self.timeout_s = checker, worker, env, timeout_s
        self._li = checker._li

    def start(self, theorem: str) -> StepResult:
        """Elaborate `theorem ... := by sorry` and return the proof state at the `sorry`."""
        resp = self._worker.server.run(self._li.Command(cmd=f"{theorem} := by sorry", env=self._env),
                                       timeout=self.timeout_s)
        if isinstance(resp, self._li.LeanError):
            return StepResult(None, [], "error", resp.message)
        errors = [m.data for m in resp.messages if m.severity == "error"]
        if errors or not resp.sorries:
            return StepResult(None, [], "error", errors[0] if errors else "the statement opened no goal")
        sorry = resp.sorries[0]
        return StepResult(sorry.proof_state, [sorry.goal], "open")

    def step(self, state: int, tactic: str) -> StepResult:
        try:
            resp = self._worker.server.run(self._li.ProofStep(proof_state=state, tactic=tactic),
                                           timeout=self.timeout_s)
        except TimeoutError:
            self._worker.headers.clear()
            return StepResult(None, [], "error", f"the tactic did not finish within {self.timeout_s:g} s")
        if isinstance(resp, self._li.LeanError):
            return StepResult(None, [], "error", resp.message)
        errors = [m.data for m in resp.messages if m.severity == "error"]
        if errors or resp.proof_status.startswith("Error"):
            return StepResult(None, [], "error", errors[0] if errors else resp.proof_status)
        done = not resp.goals and resp.proof_status.startswith("Completed")
        return StepResult(resp.proof_state, list(resp.goals), "completed" if done else "open")

