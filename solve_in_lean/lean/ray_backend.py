"""The `ray` backend: Lean checks on a pool of Ray actors, on as many machines as the cluster has.

    checker = get_checker("ray", inner="repl", mathlib=True, actors=64, address="auto")

Each actor holds one warm inner checker (`kernel`, `lake`, `repl`, or the default `auto`: the
best its node has; `workers=1`, Lean's threads sized to the actor's CPUs) and reserves Ray
`memory` for its Lean process, so Ray never packs more Lean processes onto a node than its
memory holds. The driver keeps what it always keeps (order of results, verification, caches);
only `check` travels. `workers=N` (what the settings pass) means N actors.

Failures, and who handles them:
- Lean's own timeout and memory cap stay inside the actor: a slow proof is a `timeout` verdict.
- A dead actor (SIGKILL, OOM killer, lost node) is restarted by Ray (`max_restarts`) and the
  driver runs its check again, on whichever actor is free first: checks are pure, so a retry
  can only give the verdict the first try would have. Ray's own task retries stay off, because
  a retry must also follow a deadline kill, which Ray would not know to skip.
- An actor that does not answer within Lean's timeout plus `deadline_grace_s` is stuck (a
  frozen process, an unreachable node): the driver kills it, Ray restarts it, and the check
  is retried. After `retries` failed attempts the check fails closed (`timeout`/`crashed`).
- Lean started inside an actor dies with it: the process backends start Lean with
  PR_SET_PDEATHSIG (lean/lifecycle.py), and the guard kills Lean's process group when the
  actor's worker dies.

Dispatch prefers an idle actor that already elaborated the check's header (for `repl`, whose
servers keep the header's environment: the idea of Kimina's Lean server); otherwise the idle
actor that has been idle longest.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from typing import Any

from solve_in_lean.errors import LeanSolveError
from solve_in_lean.lean.base import DEFAULT_MEMORY_MB, CheckResult, LeanChecker, LeanUnavailable
from solve_in_lean.lean.source import split_header

INNER_BACKENDS = ("auto", "kernel", "lake", "repl")
"""`auto` is resolved by each actor on its own node (`lean.auto_backend`); the pool refuses to
start if its actors resolve it differently, since verdicts must not depend on placement."""
WORKER_OVERHEAD_MB = 512
"""Ray `memory` an actor reserves beyond its Lean cap: the Python worker holding the checker."""
WARM_HEADERS = 16
"""Headers remembered per actor for dispatch (a REPL server keeps every header it saw)."""


class LeanActor:
    """What runs inside one Ray actor: a warm inner checker, one check at a time."""

    def __init__(self, inner: str, options: dict[str, Any], lean_threads: int | None = None) -> None:
        from solve_in_lean.lean import auto_backend, get_checker

        self.unavailable = ""
        self.inner = auto_backend() if inner == "auto" else inner
        if lean_threads and self.inner != "repl":  # a REPL server sizes its own thread pool
            options = {**options, "lean_threads": lean_threads}
        if self.inner != "repl":  # goal states come from a REPL's info tree; other backends have none
            options = {k: v for k, v in options.items() if k != "goals"}
        try:
            self.checker = get_checker(self.inner, **options)
        except LeanUnavailable as e:  # told to the driver by ready(): its sentence, not a traceback
            self.unavailable = str(e)

    def ready(self) -> dict:
        """Facts the driver needs before its first check; also tells it the actor is up."""
        import ray

        facts = {"pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id(),
                 "inner": self.inner, "unavailable": self.unavailable}
        if not self.unavailable:
            facts.update(lean_version=self.checker.lean_version, evaluates=self.checker.evaluates)
        return facts

    def check(self, code: str, header: str | None, timeout_s: float) -> CheckResult:
        return self.checker.check(code, header=header, timeout_s=timeout_s)


class LeanCheckStage:
    """A Ray Data stage checking each row's `code` (and `header`, if any) with a warm checker:
    `ds.map(LeanCheckStage, fn_constructor_kwargs={"inner": "kernel", "options": {...}},
    concurrency=N, num_cpus=1, memory=...)`. Adds `check`, the CheckResult as a dict."""

    def __init__(self, inner: str, options: dict[str, Any], lean_threads: int = 1) -> None:
        self._actor = LeanActor(inner, {**options, "workers": 1}, lean_threads)
        if self._actor.unavailable:
            raise LeanUnavailable(self._actor.unavailable)

    def __call__(self, row: dict) -> dict:
        checker = self._actor.checker
        result = checker.check(row["code"], header=row.get("header"), timeout_s=row.get("timeout_s"))
        return {**row, "check": result.to_dict()}


class _Slot:
    """One actor as the driver sees it: its handle and the headers it has warm."""

    def __init__(self, actor: Any) -> None:
        self.actor = actor
        self.headers: OrderedDict[str, None] = OrderedDict()
        self.idle_since = time.monotonic()

    def remember(self, header: str) -> None:
        self.headers[header] = None
        self.headers.move_to_end(header)
        while len(self.headers) > WARM_HEADERS:
            self.headers.popitem(last=False)


class RayChecker(LeanChecker):
    """A pool of Ray actors, each holding a warm `inner` checker; same verdicts as `inner`."""

    name = "ray"

    def __init__(self, *, inner: str = "auto", actors: int | None = None, actor_cpus: int = 1,
                 address: str | None = None, retries: int = 3, deadline_grace_s: float = 60.0,
                 actor_memory_mb: int | None = None, max_restarts: int = -1,
                 restart_timeout_s: float = 300.0, runtime_env: dict | None = None, **kw: Any) -> None:
        if inner not in INNER_BACKENDS:
            raise ValueError(f"unknown inner backend {inner!r} for ray; choose one of: {', '.join(INNER_BACKENDS)}")
        base = {k: kw.pop(k) for k in ("timeout_s", "memory_mb", "max_input_bytes", "max_output_bytes") if k in kw}
        workers = kw.pop("workers", None)  # one check at a time per actor: N workers means N actors
        super().__init__(**base)
        from solve_in_lean import raycluster

        self._ray = raycluster.import_ray()
        self._owns_ray = raycluster.connect(address)
        self.inner = inner
        self.retries = retries
        self.deadline_grace_s = deadline_grace_s
        self.restart_timeout_s = restart_timeout_s
        self.actor_memory_mb = actor_memory_mb or (self.memory_mb or DEFAULT_MEMORY_MB) + WORKER_OVERHEAD_MB
        self.actors = actors or workers or max(1, actors_that_fit(self._ray, actor_cpus, self.actor_memory_mb))
        options = {**kw, **base, "workers": 1}
        remote = self._ray.remote(LeanActor).options(
            num_cpus=actor_cpus, memory=self.actor_memory_mb * 2**20,
            max_restarts=max_restarts, max_task_retries=0, runtime_env=runtime_env)
        self._cond = threading.Condition()
        self._slots = [_Slot(remote.remote(inner, options, actor_cpus)) for _ in range(self.actors)]
        self._idle: list[_Slot] = []
        self._recovering = 0
        self.failed_attempts = 0
        """Checks sent again after their actor died or stuck (what a lost node costs)."""
        facts = self._start(inner, actor_cpus)
        self.inner = facts["inner"]
        self._lean_version = facts["lean_version"]
        self.evaluates = facts["evaluates"]

    def _start(self, inner: str, actor_cpus: int) -> dict:
        """Wait for the actors to come up; keep those that did within `restart_timeout_s` (the
        others found no node with room) and fail with one sentence if none did."""
        pending = {s.actor.ready.remote(): s for s in self._slots}
        ready, late = self._ray.wait(list(pending), num_returns=len(pending), timeout=self.restart_timeout_s)
        facts: dict = {}
        resolved: set[str] = set()
        for ref in ready:
            try:
                facts = self._ray.get(ref)
                resolved.add(facts["inner"])
            except self._ray.exceptions.RayActorError as e:
                self.close()
                raise LeanUnavailable(f"the {inner} backend could not start on the Ray cluster: "
                                      f"{_cause(e)}") from None
            if facts["unavailable"]:
                self.close()
                raise LeanUnavailable(f"on the Ray cluster: {facts['unavailable']}")
            self._idle.append(pending[ref])
        for ref in late:
            self._ray.kill(pending[ref].actor, no_restart=True)
            self._slots.remove(pending[ref])
        if len(resolved) > 1:
            self.close()
            raise LeanUnavailable(f"inner='auto' means {' or '.join(sorted(resolved))} depending on the node; "
                                  "set up the same Lean on every node or name the inner backend")
        if not self._slots:
            self.close()
            raise LeanUnavailable(f"no Ray node could host a Lean actor ({actor_cpus} CPU, "
                                  f"{self.actor_memory_mb} MB memory) within {self.restart_timeout_s:g} s; "
                                  "lower actor_memory_mb/actor_cpus or add nodes (`ray status` shows what is free)")
        self.actors = self.workers = len(self._slots)
        return facts

    @property
    def lean_version(self) -> str:
        return self._lean_version

    def actor_pids(self) -> list[int]:
        """Process ids of the live actors' workers (what a SIGKILL test aims at)."""
        return [self._ray.get(s.actor.ready.remote())["pid"] for s in self._slots]

    def _check(self, code: str, header: str | None, timeout_s: float) -> CheckResult:
        warm = header if header is not None else split_header(code)[0]
        deadline_s = timeout_s + self.deadline_grace_s
        failures: list[str] = []
        stuck = False
        while len(failures) <= self.retries:
            slot = self._acquire(warm)
            ref = slot.actor.check.remote(code, header, timeout_s)
            try:
                result = self._ray.get(ref, timeout=deadline_s)
            except self._ray.exceptions.GetTimeoutError:
                stuck = True
                failures.append(f"no answer within {deadline_s:g} s, actor restarted")
                self._ray.kill(slot.actor, no_restart=False)
            except self._ray.exceptions.RayActorError as e:
                stuck = False
                failures.append(f"actor lost ({_cause(e)})")
            except self._ray.exceptions.RayTaskError as e:
                self._release(slot)
                if isinstance(e.cause, LeanSolveError):  # e.g. LeanUnavailable inside the actor
                    raise e.cause from None
                raise
            else:
                if warm.strip():
                    slot.remember(warm)
                self._release(slot)
                return result
            self._recover_later(slot)
        return CheckResult(status="timeout" if stuck else "crashed",
                           detail=f"the check failed on {len(failures)} Ray actors: {'; '.join(failures)}")

    def _acquire(self, header: str) -> _Slot:
        with self._cond:
            while not self._idle:
                if not self._recovering:
                    raise LeanUnavailable("every Ray actor of the ray backend is gone (restarts used up or "
                                          "no node can host one); check the cluster with `ray status`")
                self._cond.wait()
            warm = [s for s in self._idle if header in s.headers]
            slot = warm[-1] if warm else min(self._idle, key=lambda s: s.idle_since)
            self._idle.remove(slot)
            return slot

    def _release(self, slot: _Slot) -> None:
        with self._cond:
            slot.idle_since = time.monotonic()
            self._idle.append(slot)
            self._cond.notify()

    def _recover_later(self, slot: _Slot) -> None:
        """Give `slot` back once Ray has restarted its actor, in the background (the failed check
        moves on to another actor meanwhile); drop it if the actor cannot come back."""
        slot.headers.clear()
        with self._cond:
            self._recovering += 1
            self.failed_attempts += 1
        threading.Thread(target=self._recover, args=(slot,), daemon=True, name="ray-actor-recover").start()

    def _recover(self, slot: _Slot) -> None:
        errors = self._ray.exceptions
        give_up = time.monotonic() + self.restart_timeout_s
        alive = False
        while time.monotonic() < give_up and slot in self._slots:
            try:
                self._ray.get(slot.actor.ready.remote(), timeout=max(0.1, give_up - time.monotonic()))
                alive = True
                break
            except errors.ActorUnavailableError:
                time.sleep(0.2)  # restarting: ask again
            except (errors.ActorDiedError, errors.GetTimeoutError):
                break
        with self._cond:
            self._recovering -= 1
            if slot not in self._slots:
                return  # the checker was closed meanwhile; close() killed the actor
            if alive:
                slot.idle_since = time.monotonic()
                self._idle.append(slot)
            else:
                self._slots.remove(slot)
                self._ray.kill(slot.actor, no_restart=True)
            self._cond.notify_all()

    def close(self) -> None:
        """Kill the actors (their Lean dies with them) and leave Ray if this checker joined it."""
        for slot in list(self._slots):
            self._ray.kill(slot.actor, no_restart=True)
        self._slots, self._idle = [], []
        if self._owns_ray:
            self._ray.shutdown()
            self._owns_ray = False


def actors_that_fit(ray: Any, cpus: float, memory_mb: float) -> int:
    """How many actors of this size the cluster's live nodes hold, node by node."""
    total = 0
    for node in ray.nodes():
        if node.get("Alive"):
            have = node.get("Resources", {})
            total += int(min(have.get("CPU", 0) // cpus, have.get("memory", 0) // (memory_mb * 2**20)))
    return total


def _cause(error: BaseException) -> str:
    """One line for a Ray failure: the exception line of a remote traceback, else Ray's first line."""
    import re

    lines = [re.sub(r"\x1b\[[0-9;]*m", "", ln).strip() for ln in str(error).splitlines()]
    lines = [ln for ln in lines if ln]
    raised = [ln for ln in lines if re.match(r"^[A-Za-z_][\w.]*(Error|Exception|Interrupt)\b.*:", ln)]
    return (raised[-1] if raised else lines[0] if lines else type(error).__name__)[:300]
