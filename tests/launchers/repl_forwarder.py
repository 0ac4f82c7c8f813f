"""TEST LAUNCHER, not a Lean REPL: speaks the Lean REPL's JSON protocol and forwards every
command to a real `lean --json --stdin` (the bundled kernel Lean in the tests), so the repl
backend's client code (lean-interact) runs end to end where the REPL cannot be built.

It never decides a verdict: each `{"cmd", "env"}` becomes one Lean run on the text of the
environment's earlier commands followed by `cmd`; the messages Lean reports on `cmd`'s lines
are returned with positions relative to `cmd`, as the REPL does. A new environment id is
given for every command. Proof states are not served (the prelude dialect has no tactics):
every proof-state id is unknown, which is the REPL's own answer for an id it does not hold.
When Lean dies (a crash, the memory cap) this process dies the same way, as the REPL would.

Protocol (lean-interact 0.11): requests are JSON objects separated by a blank line; each
answer is one JSON object followed by a blank line; `{"message": ...}` is an error.
Set LEAN_SOLVE_TEST_REPL_LOG to a file to have every request appended to it.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys

PERFORMANCE_ONLY = {"incrementality", "setOptions"}
"""Request fields that change how fast the REPL works, never what it reports."""


def _die_with_parent() -> None:
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG: Lean dies with us


def run_lean(text: str) -> subprocess.CompletedProcess:
    return subprocess.run(["lean", "--json", "--stdin"], input=text, capture_output=True, text=True,
                          preexec_fn=_die_with_parent)


def relay_death(proc: subprocess.CompletedProcess) -> None:
    """Lean crashed: say what it said on stderr and end this process the same way."""
    sys.stderr.write(proc.stderr)
    sys.stderr.flush()
    if proc.returncode < 0:
        signal.signal(-proc.returncode, signal.SIG_DFL)
        os.kill(os.getpid(), -proc.returncode)
    sys.exit(proc.returncode)


def answer_command(request: dict, envs: list[str]) -> dict:
    cmd = request["cmd"]
    prefix = ""
    if request.get("env") is not None:
        env = request["env"]
        if not isinstance(env, int) or not 0 <= env < len(envs):
            return {"message": "Unknown environment."}
        prefix = envs[env] if envs[env].endswith("\n") else envs[env] + "\n"
    offset = prefix.count("\n")
    proc = run_lean(prefix + cmd)
    if proc.returncode not in (0, 1):
        relay_death(proc)
    messages = []
    for line in proc.stdout.splitlines():
        obj = json.loads(line)
        pos, end = obj["pos"], obj.get("endPos")
        if pos["line"] <= offset:
            continue  # about the environment's earlier text, reported when that text was sent
        messages.append({
            "severity": {"information": "info"}.get(obj["severity"], obj["severity"]),
            "pos": {"line": pos["line"] - offset, "column": pos["column"]},
            "endPos": None if end is None else {"line": end["line"] - offset, "column": end["column"]},
            "data": obj["data"],
        })
    envs.append(prefix + cmd)
    response: dict = {"env": len(envs) - 1}
    if messages:
        response["messages"] = messages
    return response


def answer(request: dict, envs: list[str]) -> dict:
    if "proofState" in request:
        return {"message": "Unknown proof state."}
    if "cmd" not in request:
        return {"message": f"this test launcher serves only commands, not {sorted(request)}"}
    unsupported = set(request) - {"cmd", "env"} - PERFORMANCE_ONLY
    if unsupported:
        return {"message": f"this test launcher does not serve {sorted(unsupported)}"}
    return answer_command(request, envs)


def main() -> None:
    envs: list[str] = []
    log = os.environ.get("LEAN_SOLVE_TEST_REPL_LOG")
    block: list[str] = []
    for line in sys.stdin:
        if line.strip():
            block.append(line)
            continue
        if not block:
            continue
        text, block = "".join(block), []
        if log:
            with open(log, "a", encoding="utf-8") as f:
                f.write(text.strip() + "\n")
        try:
            request = json.loads(text)
        except json.JSONDecodeError as e:
            response: dict = {"message": f"Could not parse JSON:\n{e}"}
        else:
            response = answer(request, envs) if isinstance(request, dict) else {"message": "expected an object"}
        sys.stdout.write(json.dumps(response, ensure_ascii=False) + "\n\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
