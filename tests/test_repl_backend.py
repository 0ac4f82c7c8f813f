"""The repl backend end to end: lean-solve -> the real lean-interact classes and subprocess
plumbing -> the REPL-protocol launcher -> the real bundled Lean, which decides every verdict.
Only the launchers (tests/launchers/) stand in for the toolchain that cannot be downloaded here.

The declaration audit (a trusted command after the code) needs Lean's meta library, which the
bundled Lean lacks: here its command text, its parser (on REPL-shaped answers built from
lean-interact's own classes), the fallback without that library and the verdict rules run; the
audit itself runs in the `toolchain`/`mathlib` tests at the end."""

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import psutil
import pytest
from hypothesis import HealthCheck, given, settings

from launchers.toolchain import install_launchers
from lean_prelude import GOOD_PROOF, MINI_PRELUDE, WRONG_PROOF, needs_mathlib, needs_toolchain, slow_proof
from solve_in_lean.lean import LeanUnavailable, get_checker
from solve_in_lean.lean.repl import AUDIT_PREFIX, AuditError, audit_command, may_import_lean, parse_audit
from solve_in_lean.verify import Policy, Target, verify
from test_verify_adversarial import BLOCKS, scoped_code


@pytest.fixture
def launchers(tmp_path, monkeypatch):
    return install_launchers(tmp_path, monkeypatch)


@pytest.fixture
def repl(launchers):
    with get_checker("repl", timeout_s=60) as checker:
        yield checker


def commands(launchers):
    return [json.loads(r) for r in launchers.requests()]


def test_verdicts_come_from_lean_and_the_header_is_elaborated_once(repl, launchers):
    assert repl.check(GOOD_PROOF, header=MINI_PRELUDE).status == "ok"
    bad = repl.check(WRONG_PROOF, header=MINI_PRELUDE)
    assert bad.status == "error" and bad.errors[0].line == 1 and "mismatch" in bad.errors[0].text
    assert bad.lean_version == "4.35.0" and bad.backend == "repl"
    sent = commands(launchers)
    assert [c["cmd"] for c in sent] == [MINI_PRELUDE, GOOD_PROOF, WRONG_PROOF]
    assert "env" not in sent[0] and sent[1]["env"] == sent[2]["env"] == 0  # the header's environment, reused
    assert bad.declarations is None  # no import, so no Lean meta library: no audit command was sent


def test_own_header_is_split_and_positions_are_in_the_whole_file(repl, launchers):
    bad = repl.check(MINI_PRELUDE + WRONG_PROOF)
    assert bad.status == "error"
    assert bad.errors[0].line == MINI_PRELUDE.count("\n") + 1
    assert commands(launchers)[0]["cmd"] == "prelude\n"


def test_empty_body_and_header_only_file_never_send_an_empty_command(repl, launchers):
    assert repl.check("", header=MINI_PRELUDE).status == "ok"
    assert repl.check("prelude\n").status == "ok"
    assert repl.check("  \n").status == "ok"
    broken = repl.check("", header="prelude\ntheorem x : Nope := Nope\n")
    assert broken.status == "error" and broken.messages[0].in_header
    assert all(c["cmd"].strip() for c in commands(launchers))


def test_timeout_restarts_the_repl_and_the_next_check_replays_the_header(repl, launchers):
    slow = repl.check(slow_proof(), header=MINI_PRELUDE, timeout_s=2)
    assert slow.status == "timeout"
    assert not any("repl_forwarder" in " ".join(p.info["cmdline"] or []) and p.info["ppid"] == os.getpid()
                   for p in psutil.process_iter(["cmdline", "ppid"]))
    good = repl.check(GOOD_PROOF, header=MINI_PRELUDE, timeout_s=30)
    assert good.status == "ok", good.detail
    headers = [c for c in commands(launchers) if c["cmd"] == MINI_PRELUDE]
    assert len(headers) == 2  # elaborated once, and again in the restarted process before the check
    assert commands(launchers)[-1]["env"] == 0  # the new process's id for the replayed header


def test_a_repl_killed_between_checks_is_restarted(repl):
    assert repl.check(GOOD_PROOF, header=MINI_PRELUDE).ok
    server = repl._all[0].server
    first = server._proc.pid
    os.kill(first, signal.SIGTERM)
    server._proc.wait(timeout=10)
    assert repl.check(WRONG_PROOF, header=MINI_PRELUDE).status == "error"
    assert server._proc.pid != first and server.starts == 2


def test_a_repl_crashing_during_a_check_is_reported_and_replaced(repl):
    assert repl.check(GOOD_PROOF, header=MINI_PRELUDE).ok
    pid = repl._all[0].server._proc.pid
    killer = threading.Timer(1.0, os.kill, (pid, signal.SIGSEGV))
    killer.start()
    crashed = repl.check(slow_proof(), header=MINI_PRELUDE, timeout_s=60)
    killer.join()
    assert crashed.status == "crashed" and "exit status -11" in crashed.detail, crashed.detail
    assert repl.check(GOOD_PROOF, header=MINI_PRELUDE).ok


def test_a_repl_killed_while_lean_solve_shuts_down_gives_no_verdict(repl, monkeypatch):
    """Under SIGTERM lifecycle kills the REPL; that death must not become the item's `crashed`
    result (a batch would record it), so the check raises Interrupted instead."""
    from solve_in_lean.lean import lifecycle

    assert repl.check(GOOD_PROOF, header=MINI_PRELUDE).ok
    pid = repl._all[0].server._proc.pid

    def shut_down() -> None:
        monkeypatch.setattr(lifecycle, "stopping", lambda: True)
        os.kill(pid, signal.SIGKILL)

    killer = threading.Timer(1.0, shut_down)
    killer.start()
    with pytest.raises(lifecycle.Interrupted):
        repl.check(slow_proof(), header=MINI_PRELUDE, timeout_s=60)
    killer.join()


def test_lean_running_out_of_memory_is_reported_as_memory(launchers):
    with get_checker("repl", timeout_s=60, memory_mb=1024) as checker:  # Lean aborts at start under 1 GB
        result = checker.check(GOOD_PROOF, header=MINI_PRELUDE)
    assert result.status == "memory", result.detail
    assert "1024 MB" in result.detail


def test_the_repl_is_started_directly_not_under_lake(repl):
    repl.check(GOOD_PROOF, header=MINI_PRELUDE)
    proc = psutil.Process(repl._all[0].server._proc.pid)
    assert proc.ppid() == os.getpid()
    assert "repl_forwarder.py" in " ".join(proc.cmdline())  # the REPL itself, no `lake env` in between


def test_a_repl_answering_garbage_is_a_crash_not_a_traceback(launchers, tmp_path):
    garbage = tmp_path / "garbage-repl"
    script = garbage / ".lake" / "build" / "bin" / "repl"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\nwhile read -r line; do [ -z \"$line\" ] && printf '{\"env\": 0, \"mess\\n\\n'; done\n")
    script.chmod(0o755)
    with get_checker("repl", repl=garbage, timeout_s=30) as checker:
        result = checker.check(GOOD_PROOF, header=MINI_PRELUDE)
    assert result.status == "crashed" and "not JSON" in result.detail


def test_a_server_that_fails_to_start_does_not_use_up_the_only_slot(launchers):
    script = launchers.repl / ".lake" / "build" / "bin" / "repl"
    with get_checker("repl", timeout_s=30, workers=1) as checker:
        script.chmod(0o644)
        with pytest.raises(LeanUnavailable, match="starting the Lean REPL"):
            checker.check(GOOD_PROOF, header=MINI_PRELUDE)
        script.chmod(0o755)
        done = []
        worker = threading.Thread(target=lambda: done.append(checker.check(GOOD_PROOF, header=MINI_PRELUDE)))
        worker.start()
        worker.join(timeout=60)
        assert done and done[0].ok


def test_unknown_proof_state_comes_back_as_a_lean_error(repl):
    with repl.tactic_session(header=MINI_PRELUDE) as session:
        step = session.step(7, "exact N.zero")
    assert step.status == "error" and step.error == "Unknown proof state."


def test_a_restart_during_a_tactic_session_is_detected(repl):
    with repl.tactic_session(header=MINI_PRELUDE) as session:
        assert session.step(0, "rfl").status == "error"  # served by the first process
        server = repl._all[0].server
        os.kill(server._proc.pid, signal.SIGTERM)
        server._proc.wait(timeout=10)
        step = session.step(0, "rfl")
    assert step.status == "restarted" and "proof states are gone" in step.error


def test_checks_leave_no_lock_file_and_build_nothing(repl, launchers):
    assert repl.check(GOOD_PROOF, header=MINI_PRELUDE).ok
    assert repl.check(slow_proof(), header=MINI_PRELUDE, timeout_s=1).status == "timeout"
    assert repl.check(WRONG_PROOF, header=MINI_PRELUDE).status == "error"  # on a restarted REPL
    calls = launchers.lake_calls()
    assert len(calls) == 1 and calls[0].startswith("env ")  # Lake's environment, asked once; no build, no cache get
    assert not launchers.project.with_name(launchers.project.name + ".lock").exists()
    assert str(repl._config.cache_dir).startswith(os.environ["LEAN_SOLVE_CACHE"])


def test_lake_is_found_in_elans_home_and_passed_on(launchers, monkeypatch, tmp_path):
    elan = tmp_path / "elan-home"
    (elan / "bin").mkdir(parents=True)
    (elan / "bin" / "lake").symlink_to(launchers.lake)
    monkeypatch.delenv("LEAN_SOLVE_LAKE")
    monkeypatch.setenv("ELAN_HOME", str(elan))
    monkeypatch.setenv("PATH", os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep)
                                               if not os.path.exists(os.path.join(p, "lake"))))
    with get_checker("repl", timeout_s=30) as checker:
        assert checker.check(GOOD_PROOF, header=MINI_PRELUDE).ok


def test_check_json_stdout_is_only_the_json(launchers, tmp_path):
    good = tmp_path / "good.lean"
    good.write_text(MINI_PRELUDE + GOOD_PROOF)
    proc = subprocess.run([sys.executable, "-m", "solve_in_lean", "check", str(good), "--backend", "repl",
                           "--json"], capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["backend"] == "repl" and out["ok"] is True


def test_without_a_built_repl_the_backend_says_how_to_get_one(launchers, monkeypatch, tmp_path):
    monkeypatch.delenv("LEAN_SOLVE_REPL")
    with pytest.raises(LeanUnavailable, match="lean-solve setup"):
        get_checker("repl")
    t0 = time.monotonic()
    monkeypatch.setenv("LEAN_SOLVE_REPL", str(tmp_path / "nowhere"))
    with pytest.raises(LeanUnavailable, match="no built REPL"):
        get_checker("repl")
    assert time.monotonic() - t0 < 5


def test_lean_interact_warnings_go_to_stderr_not_into_the_json(launchers, tmp_path):
    (launchers.repl / "lean-toolchain").write_text("leanprover/lean4:v4.24.0\n")  # lean-interact warns
    good = tmp_path / "good.lean"
    good.write_text(MINI_PRELUDE + GOOD_PROOF)
    proc = subprocess.run([sys.executable, "-m", "solve_in_lean", "check", str(good), "--backend", "repl",
                           "--json"], capture_output=True, text=True, timeout=120, env=os.environ.copy())
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["ok"] is True
    assert "lean-interact: Requested Lean version 'v4.35.0' does not match" in proc.stderr


def test_a_header_that_runs_too_long_is_a_timeout_of_the_header(launchers):
    with get_checker("repl", timeout_s=60, header_timeout_s=2) as checker:
        result = checker.check(GOOD_PROOF, header=MINI_PRELUDE + slow_proof())
        assert result.status == "timeout" and "the header within 2 s" in result.detail
        assert checker.check(GOOD_PROOF, header=MINI_PRELUDE).ok


def test_repl_processes_are_tracked_until_killed(launchers):
    """lifecycle kills tracked groups when lean-solve is signalled or dies (see lean/lifecycle.py)."""
    from solve_in_lean.lean import lifecycle

    with get_checker("repl", timeout_s=30) as checker:
        assert checker.check(GOOD_PROOF, header=MINI_PRELUDE).ok
        pid = checker._all[0].server._proc.pid
        assert pid in lifecycle._groups
    assert pid not in lifecycle._groups and not psutil.pid_exists(pid)


# --- the declaration audit -----------------------------------------------------------------

AUDIT_TEXT = """\
set_option maxHeartbeats 0 in
set_option maxRecDepth 100000 in
#eval show _root_.Lean.Elab.Command.CommandElabM _root_.Unit from do
  let emit : _root_.Array _root_.Lean.Json → _root_.Lean.Elab.Command.CommandElabM _root_.Unit := fun parts =>
    _root_.Lean.logInfo (_root_.Lean.MessageData.ofFormat (_root_.Std.Format.text
      (_root_.String.append "lean-solve-audit " (_root_.Lean.Json.compress (_root_.Lean.Json.arr parts)))))
  let str : _root_.String → _root_.Lean.Json := _root_.Lean.Json.str
  let names : _root_.List _root_.Lean.Name := _root_.Lean.SMap.foldStage2
    (fun acc name _ => _root_.List.cons name acc) _root_.List.nil
    (_root_.Lean.Environment.constants (← _root_.Lean.getEnv))
  _root_.List.forM names fun name => do
    let found ← _root_.Lean.collectAxioms name
    emit #[str "c0ffee42", str "decl", str (_root_.Lean.Name.toString name),
      _root_.Lean.Json.arr (_root_.Array.map (fun a => str (_root_.Lean.Name.toString a)) found)]
  emit #[str "c0ffee42", str "end", str (_root_.Nat.repr (_root_.List.length names))]
"""


def test_the_audit_command_is_exactly_the_trusted_text():
    """Every constant the environment added since its imports (`map₂`), `Lean.collectAxioms` for
    each, one JSON line per constant and a count; every global name from `_root_`, and no
    notation or class the code could have re-declared (`for`, `++`, `toString`, `s!`, `m!`)."""
    text = audit_command("c0ffee42")
    assert text == AUDIT_TEXT
    qualified = re.findall(r"[\w.]*[A-Za-z_]\w*\.[A-Za-z_][\w.]*", text)
    assert qualified and all(q.startswith("_root_.") for q in qualified), qualified
    for construct in (r"\bfor\b", r"\+\+", r"(?<![\w.])toString\b", r"\b[sm]!", r"\btoJson\b", r"\bopen\b"):
        assert not re.search(construct, text), construct
    for bad in ("", "c0ffee42\"", "a b", "x\n"):
        with pytest.raises(ValueError, match="alphanumeric"):
            audit_command(bad)


def answer(*messages):
    """A REPL answer as lean-interact parses it (`{"env", "messages"}`, info as `info`)."""
    from lean_interact.interface import CommandResponse

    return CommandResponse.model_validate({"env": 7, "messages": [
        {"severity": severity, "pos": {"line": 2, "column": 0}, "endPos": {"line": 2, "column": 5}, "data": data}
        for severity, data in messages]}).messages


def line(*fields):
    return "info", AUDIT_PREFIX + json.dumps(list(fields))


def test_the_audit_answer_is_read_line_by_line():
    msgs = answer(line("n1", "decl", "fine", []), ("info", "an #eval's own output"),
                  line("n1", "decl", "_private.0.aux", ["propext", "Lean.ofReduceBool"]),
                  line("n1", "decl", "«a b».c", ["sorryAx"]), ("warning", "declaration uses 'sorry'"),
                  line("n1", "end", "3"))
    assert parse_audit(msgs, "n1") == {"fine": [], "_private.0.aux": ["propext", "Lean.ofReduceBool"],
                                       "«a b».c": ["sorryAx"]}


def test_lines_without_this_checks_nonce_are_not_the_audits():
    """What imitates an audit line without the nonce (another check's, the code's own print) is
    ignored, so it can neither add a constant nor complete the count."""
    msgs = answer(line("n1", "decl", "fine", []), line("other", "decl", "hidden", []),
                  ("info", AUDIT_PREFIX + '["n2", "end", "2"]'), line("n1", "end", "1"))
    assert parse_audit(msgs, "n1") == {"fine": []}
    with pytest.raises(AuditError, match="last line is missing"):
        parse_audit(answer(line("n1", "decl", "fine", []), line("other", "end", "1")), "n1")


@pytest.mark.parametrize("msgs, why", [
    ([], "last line is missing"),
    ([line("n1", "decl", "fine", [])], "last line is missing"),
    ([line("n1", "decl", "a", []), line("n1", "end", "2")], "counted 2 constants but listed 1"),
    ([line("n1", "decl", "a", []), line("n1", "decl", "b", []), line("n1", "end", "1")], "counted 1"),
    ([line("n1", "end", "0"), line("n1", "decl", "late", [])], "follows its last line"),
    ([line("n1", "decl", "a", []), line("n1", "decl", "a", ["propext"]), line("n1", "end", "2")], "twice"),
    ([("error", "Unknown identifier `_root_.Lean.collectAxioms`"), line("n1", "end", "0")], "could not run it"),
    ([("info", AUDIT_PREFIX + '["n1", "decl", "a", [] '), line("n1", "end", "1")], "not JSON"),
    ([line("n1", "decl", "a", "propext"), line("n1", "end", "1")], "not well formed"),
    ([line("n1", "decl", "a", [7]), line("n1", "end", "1")], "not well formed"),
    ([line("n1", "decl", "", []), line("n1", "end", "1")], "not well formed"),
    ([line("n1", "decl", "a"), line("n1", "end", "1")], "not well formed"),
    ([line("n1", "end", 0)], "not well formed"),
    ([line("n1", "end", "-1")], "not well formed"),
    ([line("n1", "axioms", "a", [])], "not well formed"),
])
def test_an_audit_answer_that_is_not_exactly_its_output_fails_closed(msgs, why):
    with pytest.raises(AuditError, match=why):
        parse_audit(answer(*msgs), "n1")


class AuditAnswers:
    """REPL answers of a fixed shape for the audit command alone (no Lean verdict is decided
    here: what is tested is which command goes where and what is kept of its answer)."""

    def __init__(self, names, end=None):
        self.names, self.end, self.sent = names, end, []

    def run(self, request, timeout):
        from lean_interact.interface import CommandResponse

        self.sent.append(request)
        nonce = re.search(r'str "([0-9a-f]+)"', request.cmd)[1]
        lines = [line(nonce, "decl", n, axs) for n, axs in self.names.items()]
        lines.append(line(nonce, "end", str(len(self.names) if self.end is None else self.end)))
        return CommandResponse(env=request.env + 1, messages=answer(*lines))


def test_the_audit_runs_in_the_codes_environment_and_drops_the_headers_constants():
    from solve_in_lean.lean.repl import ReplChecker, _Worker, import_lean_interact

    checker = object.__new__(ReplChecker)  # only `_li` is used: no REPL is started
    checker._li = import_lean_interact()
    server = AuditAnswers({"header_def": ["cheat"], "fine": [], "fine.aux": ["Lean.ofReduceBool"]})
    listed = checker._audit(_Worker(server, {}), 5, frozenset({"header_def"}), 30.0)
    assert listed == {"fine": [], "fine.aux": ["Lean.ofReduceBool"]}
    (request,) = server.sent
    nonce = re.search(r'str "([0-9a-f]{16})"', request.cmd)[1]
    assert request.env == 5 and request.cmd == audit_command(nonce)
    broken = checker._audit(_Worker(AuditAnswers({"fine": []}, end=3), {}), 5, frozenset(), 30.0)
    assert broken == ("Lean's list of the declarations the code added could not be read, so they were not "
                      "audited: it counted 3 constants but listed 1")
    again = AuditAnswers({})
    assert checker._audit(_Worker(again, {}), 5, frozenset(), 30.0) == {}
    assert nonce not in again.sent[0].cmd  # a new nonce for every check


def test_only_a_header_with_imports_can_have_the_audit():
    assert may_import_lean("import Mathlib\nopen Real\n")
    assert may_import_lean("-- the problem's header\nimport Lean\n")
    assert not may_import_lean(None) and not may_import_lean("")
    assert not may_import_lean(MINI_PRELUDE)  # `prelude`: nothing at all is imported
    assert not may_import_lean("open Nat\ndef k := 3\n")  # only `Init`, which has no `Lean.Elab`


def test_a_header_with_imports_but_no_meta_library_keeps_the_text_audit(launchers, monkeypatch, tmp_path, caplog):
    """The header imports a module (compiled here by the real Lean) but not Lean's meta library:
    the audit is tried once on the header, Lean rejects it, and checks keep the text-only audit
    (`declarations` is None) with a warning saying so."""
    from solve_in_lean.lean.kernel import driver_command, find_library

    lib = tmp_path / "lib"
    lib.mkdir()
    (lib / "MiniPrelude.lean").write_text(MINI_PRELUDE)
    build = subprocess.run([*driver_command(find_library()), "-o", "MiniPrelude.olean", "MiniPrelude.lean"],
                           cwd=lib, capture_output=True, text=True, timeout=120)
    assert build.returncode == 0, build.stdout + build.stderr
    monkeypatch.setenv("LEAN_PATH", str(lib))
    header = "prelude\nimport MiniPrelude\n"
    with get_checker("repl", timeout_s=60) as checker:
        good = checker.check(GOOD_PROOF, header=header)
        bad = checker.check(WRONG_PROOF, header=header)
        v = verify(GOOD_PROOF, checker, header=header, target=Target("two_add_two", "Eq (N.add N.two N.two) N.four"))
    assert good.ok and good.declarations is None and good.declaration_axioms is None, good.messages
    assert bad.status == "error" and "mismatch" in bad.errors[0].text
    assert v.verified, v.reasons
    sent = commands(launchers)
    probes = [c for c in sent if AUDIT_PREFIX in c["cmd"]]
    assert len(probes) == 1 and probes[0]["env"] == 0  # once, on the header's own environment
    nonce = re.search(r'str "([0-9a-f]{16})"', probes[0]["cmd"])[1]
    assert probes[0]["cmd"] == audit_command(nonce)
    assert "audits declarations from the text only" in caplog.text and "Unknown identifier" in caplog.text


def lean_lists_axioms(drop=(), broken=None):
    """The kernel backend answering as the repl backend does when its audit runs: Lean's list of
    the constants the code added (the `.ilean` list here) with the axioms of each, which the
    real Lean prints in a second run of its own. verify must judge them itself, in one run.
    `drop` leaves names off the list; `broken` makes the audit fail with that sentence."""
    from solve_in_lean.lean.kernel import KernelChecker
    from solve_in_lean.verify import _printed_parts, render_name

    class ListsAxioms(KernelChecker):
        runs = 0

        def _check(self, code, header, timeout_s):
            type(self).runs += 1
            result = super()._check(code, header, timeout_s)
            if broken is not None:
                result.status, result.detail = "error", broken
                return result
            names = [n for n in result.declarations or {} if n not in drop]
            printed = super()._check(code + "".join(f"#print axioms _root_.{render_name(_printed_parts(n))}\n"
                                                    for n in names), header, timeout_s)
            assert printed.ok, printed.messages
            result.declaration_axioms = {n: printed.axioms[n] for n in names}
            result.declarations = {n: 0 for n in names}
            return result
    return ListsAxioms(timeout_s=60)


CHEAT_HEADER = MINI_PRELUDE + "axiom cheat : False\n"
HIDDEN = "theorem fine : True := True.intro\nwhere aux : False := cheat\n"


def test_verify_judges_the_axioms_lean_collected_for_every_declaration():
    checker = lean_lists_axioms()
    v = verify(HIDDEN, checker, header=CHEAT_HEADER)
    assert not v.verified and checker.runs == 1  # judged from the list, no second run
    assert "`fine.aux` depends on axioms outside the allow-list: cheat" in v.reasons
    assert verify(HIDDEN, lean_lists_axioms(), header=CHEAT_HEADER, policy=Policy.with_extra(["cheat"])).verified
    honest = verify(HIDDEN.replace("False := cheat", "True := True.intro"), checker, header=CHEAT_HEADER)
    assert honest.verified, honest.reasons
    assert set(honest.check.declarations) == {"fine", "fine.aux"}


def test_a_list_missing_what_the_text_declares_is_not_trusted():
    v = verify(HIDDEN.replace("False := cheat", "True := True.intro"), lean_lists_axioms(drop=("fine",)),
               header=CHEAT_HEADER)
    assert not v.verified
    lacks = "Lean's own list of the declarations the code added lacks `fine`, so that list cannot be trusted"
    assert lacks in v.reasons


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(BLOCKS)
def test_honest_declarations_are_all_on_leans_list(blocks):
    """Declarations written every way the text reading knows (private, protected, `_root_`,
    namespaces, sections, inductives, `mutual`) are all on Lean's own list, so the cross-check
    of the two never rejects honest code."""
    code = scoped_code(blocks)
    checker = lean_lists_axioms()
    v = verify(code, checker, header=MINI_PRELUDE)
    assert v.verified and checker.runs == 1, (code, v.reasons)
    assert v.check.declarations


def test_a_failed_audit_rejects_the_code():
    why = "Lean's list of the declarations the code added could not be read, so they were not audited: x"
    v = verify(GOOD_PROOF, lean_lists_axioms(broken=why), header=MINI_PRELUDE)
    assert not v.verified and why in v.reasons


# --- the audit on the real REPL (full toolchain, Mathlib) ----------------------------------

NATIVE_HIDDEN = [
    "theorem fine : True := trivial\nwhere aux : 2 + 2 = 4 := by native_decide\n",
    "instance : Inhabited { n : Nat // n + 2 = 4 } := ⟨⟨2, by native_decide⟩⟩\ntheorem fine : True := trivial\n",
    "namespace A\ndef f : Nat → Nat\n  | 0 => 0\n  | n + 1 => f n\nwhere g : 3 * 3 = 9 := by native_decide\nend A\n"
    "theorem fine : True := trivial\n",
]


@needs_toolchain
@pytest.mark.toolchain
@pytest.mark.parametrize("code", NATIVE_HIDDEN)
def test_repl_audits_declarations_the_text_reading_cannot_see(code):
    """A `where` helper, an instance without a name: the text reading names neither, Lean's own
    list does, and the compiler-trusting axiom behind each is found without a target."""
    with get_checker("repl", timeout_s=300) as checker:
        v = verify(code, checker, header="import Lean\n")
        assert not v.verified
        assert any("Lean.ofReduceBool" in r and "fine`" not in r for r in v.reasons), v.reasons
        assert v.check.declarations and "fine" in v.check.declarations
        assert verify(code, checker, header="import Lean\n", policy=Policy(allow_native=True)).verified


MATHLIB_HONEST = """\
private lemma helper (n : ℕ) : n + 0 = n := by simp
def fib : ℕ → ℕ
  | 0 => 0
  | 1 => 1
  | n + 2 => fib n + fib (n + 1)
structure Point where
  x : ℤ
  y : ℤ
deriving DecidableEq
instance : Add Point := ⟨fun p q => ⟨p.x + q.x, p.y + q.y⟩⟩
theorem add_x (p q : Point) : (p + q).x = p.x + q.x := rfl
theorem fib_five : fib 5 = 5 := by decide
theorem main_thm (n : ℕ) : n + 0 = n := helper n
"""


@needs_mathlib
@pytest.mark.mathlib
def test_repl_audit_accepts_honest_mathlib_code():
    """Private lemmas, `match` auxiliaries, structures, derived and anonymous instances: all on
    Lean's list, none rejected."""
    with get_checker("repl", mathlib=True, timeout_s=300) as checker:
        v = verify(MATHLIB_HONEST, checker, header="import Mathlib\nopen Real\n")
        assert v.verified, v.reasons
        decls = v.check.declarations
        assert decls is not None and {"fib", "Point", "Point.mk", "Point.x", "add_x", "main_thm"} <= set(decls)
        assert any(n.endswith("helper") for n in decls) and len(decls) > 10  # auxiliaries too
        target = verify(MATHLIB_HONEST, checker, header="import Mathlib\nopen Real\n",
                        target=Target("main_thm", "∀ n : ℕ, n + 0 = n"))
        assert target.verified, target.reasons


def test_goals_option_asks_the_repl_for_the_info_tree(launchers):
    """With `goals=True` (runs with repair rounds) every code command asks for the info tree that
    lean/goals.py reads; without it, none does. The test launcher serves no info trees and says so, so
    the check reports the REPL's refusal instead of inventing goals."""
    code = "theorem t : N := by\n  exact N.zero\n"
    with get_checker("repl", timeout_s=60, goals=True) as checker:
        result = checker.check(code, header=MINI_PRELUDE)
    asked = [r for r in commands(launchers) if r.get("cmd") == code]
    assert asked and all(r.get("infotree") == "original" for r in asked)
    assert result.status == "crashed" and "infotree" in result.detail
    before = len(commands(launchers))
    with get_checker("repl", timeout_s=60) as checker:
        checker.check(code, header=MINI_PRELUDE)
    assert all("infotree" not in r for r in commands(launchers)[before:])


def test_runs_with_repair_rounds_turn_goals_on(launchers, tmp_path):
    from solve_in_lean.settings import make_checker, settings_from_tables

    for rounds, wanted in ((0, False), (2, True)):
        settings = settings_from_tables({"lean": {"backend": "repl"}, "solve": {"rounds": rounds}},
                                        path=None, root=tmp_path)
        with make_checker(settings) as checker:
            assert checker.goals is wanted


def test_on_ray_goals_reach_a_repl_actor_and_other_actors_drop_them(launchers, tmp_path, monkeypatch):
    """Repair rounds on Ray: the driver asks for goals when its actors may run a REPL (inner repl or
    auto); an actor whose inner backend is a REPL turns them on, any other ignores them."""
    from solve_in_lean.lean import ray_backend
    from solve_in_lean.settings import make_checker, settings_from_tables

    asked = []
    monkeypatch.setattr(ray_backend, "RayChecker", lambda **options: asked.append(options))
    for inner in ("repl", "auto", "kernel"):
        settings = settings_from_tables({"lean": {"backend": inner}, "ray": {"address": "local"},
                                         "solve": {"rounds": 2}}, path=None, root=tmp_path)
        make_checker(settings)
    assert [o.get("goals") for o in asked] == [True, True, None]
    for inner, wanted in (("repl", True), ("kernel", None)):  # the actor class, run in this process
        actor = ray_backend.LeanActor(inner, {"goals": True, "timeout_s": 60, "workers": 1})
        try:
            assert actor.unavailable == "" and getattr(actor.checker, "goals", None) is wanted
        finally:
            actor.checker.close()
