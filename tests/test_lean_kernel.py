"""The kernel backend against the real Lean 4.35 front end and kernel (prelude files)."""

import os
import tempfile
import threading
import time
from pathlib import Path

import pytest

from lean_prelude import GOOD_PROOF, MINI_PRELUDE, WRONG_PROOF, slow_proof
from solve_in_lean.lean import CheckRequest, process_backend

pytestmark = pytest.mark.usefixtures("kernel")


def test_version_is_reported(kernel):
    assert kernel.lean_version.startswith("4.")
    result = kernel.check(GOOD_PROOF, header=MINI_PRELUDE)
    assert result.lean_version == kernel.lean_version and result.backend == "kernel"


def test_correct_proof_is_ok(kernel):
    result = kernel.check(GOOD_PROOF + "#print axioms two_add_two\n", header=MINI_PRELUDE)
    assert result.status == "ok" and result.ok
    assert result.errors == []
    assert result.axioms == {"two_add_two": []}
    assert result.elapsed_s > 0


def test_wrong_proof_has_error_at_proof_term(kernel):
    result = kernel.check(WRONG_PROOF, header=MINI_PRELUDE)
    assert result.status == "error" and not result.ok
    first = result.errors[0]
    # `Eq.refl N.three` starts at column 56 of line 1 of the code (not of header + code)
    assert (first.line, first.column) == (1, WRONG_PROOF.index("Eq.refl"))
    assert "Type mismatch" in first.text
    assert not first.in_header


def test_positions_without_header_count_from_file_start(kernel):
    result = kernel.check(MINI_PRELUDE + WRONG_PROOF)
    assert result.errors[0].line == MINI_PRELUDE.count("\n") + 1


def test_error_in_header_is_flagged(kernel):
    result = kernel.check(GOOD_PROOF, header=MINI_PRELUDE + "def broken : N := N.nope\n")
    assert result.status == "error"
    assert any(m.in_header for m in result.errors)


def test_new_axiom_shows_in_axioms_although_lean_reports_no_error(kernel):
    header = MINI_PRELUDE + "axiom cheat : False\n"
    code = ("theorem two_add_two : Eq (N.add N.two N.two) N.three :=\n"
            "  False.rec (motive := fun _ => Eq (N.add N.two N.two) N.three) cheat\n"
            "#print axioms two_add_two\n")
    result = kernel.check(code, header=header)
    assert result.ok
    assert result.axioms == {"two_add_two": ["cheat"]}


def test_syntax_error_and_unknown_identifier(kernel):
    syntax = kernel.check("theorem t : Eq N.zero N.zero := (Eq.refl N.zero\n", header=MINI_PRELUDE)
    assert syntax.status == "error"
    unknown = kernel.check("theorem t : Eq N.zero N.zero := Eq.refl N.zeroo\n", header=MINI_PRELUDE)
    assert unknown.status == "error"
    assert any("N.zeroo" in m.text for m in unknown.errors)
    assert unknown.errors[0].line == 1


def test_timeout_kills_lean_and_next_check_works(kernel):
    start = time.monotonic()
    result = kernel.check(slow_proof(40), header=MINI_PRELUDE, timeout_s=1.5)
    assert result.status == "timeout"
    assert "1.5 s" in result.detail
    assert time.monotonic() - start < 10
    after = kernel.check(GOOD_PROOF, header=MINI_PRELUDE)
    assert after.ok


def test_no_lean_process_survives_a_timeout(kernel, monkeypatch):
    mark = f"LEAN_SOLVE_TEST_MARK=timeout-{os.getpid()}-{time.monotonic_ns()}"
    monkeypatch.setenv(*mark.split("=", 1))  # Lean inherits it: other jobs' Lean never counts
    kernel.check(slow_proof(40), header=MINI_PRELUDE, timeout_s=1.0)
    time.sleep(0.2)
    assert not _lean_processes(mark.encode())


def _lean_processes(mark: bytes) -> set[int]:
    """Pids of running `... --json --stdin` Lean processes whose environment carries `mark`."""
    found = set()
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    argv = f.read().split(b"\0")
                with open(f"/proc/{pid}/environ", "rb") as f:
                    marked = mark in f.read().split(b"\0")
            except OSError:
                continue  # the process ended while we looked
            if marked and b"--stdin" in argv and b"--json" in argv:
                found.add(int(pid))
    return found


def test_parallel_checks_match_serial(kernel):
    codes = [GOOD_PROOF, WRONG_PROOF, "theorem x : Eq N.one N.one := Eq.refl N.two\n",
             "theorem y : Eq N.four (N.add N.one N.three) := Eq.refl _\n"] * 4
    requests = [CheckRequest(c, header=MINI_PRELUDE) for c in codes]
    serial = kernel.check_many(requests, workers=1)
    parallel = kernel.check_many(requests, workers=4)
    assert [r.status for r in serial] == [r.status for r in parallel]
    assert [[(m.line, m.column, m.text) for m in r.messages] for r in serial] == \
        [[(m.line, m.column, m.text) for m in r.messages] for r in parallel]
    assert [r.status for r in serial[:4]] == ["ok", "error", "error", "ok"]


def test_timeout_in_batch_does_not_disturb_other_checks(kernel):
    requests = [CheckRequest(GOOD_PROOF, header=MINI_PRELUDE),
                CheckRequest(slow_proof(40), header=MINI_PRELUDE, timeout_s=1.0),
                CheckRequest(WRONG_PROOF, header=MINI_PRELUDE)]
    results = kernel.check_many(requests, workers=3)
    assert [r.status for r in results] == ["ok", "timeout", "error"]


@pytest.mark.parametrize("bad, why", [
    (b"\xff\xfe\x00garbage", "UTF-8"),
    ("theorem t : x := y\x00", "NUL"),
    ("-- " + "x" * 2_000_000, "over the limit"),
])
def test_bad_input_never_reaches_lean(kernel, bad, why):
    result = kernel.check(bad)
    assert result.status == "invalid_input"
    assert why in result.detail


def test_output_cap_kills_a_chatty_check(kernel):
    from solve_in_lean.lean import get_checker

    small = get_checker("kernel", max_output_bytes=2_000)
    chatty = "".join(f'#print "{"spam " * 40}{i}"\n' for i in range(200))
    result = small.check(chatty, header="prelude")
    assert result.status == "output_limit"


def test_memory_cap_too_small_is_reported_not_hung(kernel):
    from solve_in_lean.lean import get_checker

    tiny = get_checker("kernel", memory_mb=300)
    result = tiny.check(GOOD_PROOF, header=MINI_PRELUDE)
    assert result.status in ("memory", "crashed")
    assert result.detail


def test_no_temp_files_left(kernel, monkeypatch):
    """Each check's scratch directory (its .ilean) is made where _scratch_root says and removed,
    whether Lean finished or was killed."""
    made = []

    def mkdtemp(**kw):
        made.append(Path(real_mkdtemp(**kw)))
        return str(made[-1])

    real_mkdtemp = process_backend.tempfile.mkdtemp
    monkeypatch.setattr(process_backend.tempfile, "mkdtemp", mkdtemp)
    assert kernel.check(GOOD_PROOF, header=MINI_PRELUDE).status == "ok"
    assert kernel.check(slow_proof(40), header=MINI_PRELUDE, timeout_s=0.5).status == "timeout"
    root = Path(process_backend._scratch_root() or tempfile.gettempdir())
    assert len(made) == 2 and all(d.parent == root and not d.exists() for d in made), made


def test_scratch_goes_to_memory_unless_tmpdir_is_set(monkeypatch):
    process_backend._scratch_root.cache_clear()
    monkeypatch.setenv("TMPDIR", "/somewhere")
    try:
        assert process_backend._scratch_root() is None  # tempfile's own rule, which honours TMPDIR
        process_backend._scratch_root.cache_clear()
        monkeypatch.delenv("TMPDIR")
        shm = os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK | os.X_OK)
        assert process_backend._scratch_root() == ("/dev/shm" if shm else None)
    finally:
        process_backend._scratch_root.cache_clear()


def test_threads_do_not_leak(kernel):
    before = threading.active_count()
    for _ in range(5):
        kernel.check(GOOD_PROOF, header=MINI_PRELUDE)
    assert threading.active_count() <= before + 1


def _fresh_kernel():
    from solve_in_lean.lean import get_checker

    return get_checker("kernel", timeout_s=60)


def _prestarted(checker):
    checker.prestart()
    return checker._ready[(os.getpid(), threading.get_ident())]


def test_prestarted_lean_gives_the_fresh_verdicts():
    """A Lean started ahead (`prestart`: `lean-solve check` of one file, and verify while it
    audits) is the one the next check of its thread feeds, and reports what a fresh one does:
    messages, axioms, the .ilean declarations."""
    from solve_in_lean.lean.base import LeanChecker
    from solve_in_lean.verify import verify

    for code, verified in ((MINI_PRELUDE + GOOD_PROOF, True), (MINI_PRELUDE + WRONG_PROOF, False)):
        with _fresh_kernel() as plain:
            plain.prestart = lambda: LeanChecker.prestart(plain)  # this one starts Lean in check
            fresh = verify(code, plain)
        assert fresh.verified == verified
        with _fresh_kernel() as checker:
            ready = _prestarted(checker)
            early = verify(code, checker)
            assert not checker._ready and ready.proc.returncode in (0, 1)  # it ran the check
        assert (early.verified, early.reasons) == (fresh.verified, fresh.reasons)
        assert early.check.messages == fresh.check.messages and early.check.axioms == fresh.check.axioms
        assert early.check.declarations == fresh.check.declarations
        assert early.check.declarations or not verified  # Lean writes no .ilean after an error
        assert not os.path.exists(ready.scratch)


def test_prestarted_lean_never_reads_refused_code():
    """Fail closed: verify refuses `#exit` before Lean runs; the Lean it started ahead got no
    byte (on end of input it would have exited by itself) and is killed as verify returns."""
    import signal

    from solve_in_lean.verify import verify

    with _fresh_kernel() as checker:
        ready = _prestarted(checker)
        alive_at_cancel = []
        cancel = checker.cancel_prestart

        def late_cancel():
            time.sleep(0.5)
            alive_at_cancel.append(ready.proc.poll() is None)  # still waiting for its input
            cancel()

        checker.cancel_prestart = late_cancel
        verdict = verify(MINI_PRELUDE + "#exit\n" + GOOD_PROOF, checker)
        assert verdict.check.status == "refused" and not verdict.verified
        assert alive_at_cancel == [True] and ready.proc.returncode == -signal.SIGKILL
        assert not checker._ready and not os.path.exists(ready.scratch) and checker._in_flight == 0


def test_prestarted_lean_counts_as_a_check_in_flight():
    """A Lean started ahead shares the cores like a running check: a second thread's gets half,
    and each check runs on the Lean its thread started; all counted out at the end."""
    from solve_in_lean.parallel import default_workers

    with _fresh_kernel() as checker:
        first = _prestarted(checker)
        seen = {}

        def second():
            seen["ready"] = _prestarted(checker)
            seen["ok"] = checker.check(GOOD_PROOF, header=MINI_PRELUDE).ok

        other = threading.Thread(target=second)
        other.start()
        other.join()
        assert first.threads == default_workers() and seen["ready"].threads == max(1, default_workers() // 2)
        assert seen["ok"] and seen["ready"].proc.returncode in (0, 1)
        assert checker.check(GOOD_PROOF, header=MINI_PRELUDE).ok and first.proc.returncode in (0, 1)
        assert checker._in_flight == 0 and not checker._ready


def test_prestarted_lean_of_one_thread_is_not_taken_by_another():
    """Each thread feeds only the Lean it started (the launcher ties that Lean's life to it)."""
    with _fresh_kernel() as checker:
        ready = _prestarted(checker)
        other = threading.Thread(target=lambda: checker.check(GOOD_PROOF, header=MINI_PRELUDE))
        other.start()
        other.join()
        assert checker._ready == {(os.getpid(), threading.get_ident()): ready} and ready.proc.poll() is None
    assert ready.proc.returncode is not None and not os.path.exists(ready.scratch)  # close killed it


def test_prestarted_lean_is_neither_fed_nor_killed_by_a_forked_process():
    """A process forked while a Lean waits (a worker forked by a library) runs its own checks:
    the parent's early Lean, its pipes shared by the fork, is left to the parent."""
    with _fresh_kernel() as checker:
        ready = _prestarted(checker)
        pid = os.fork()
        if pid == 0:  # the child: report through the exit status only
            code = 2
            try:
                ok = checker.check(GOOD_PROOF, header=MINI_PRELUDE).ok
                code = 0 if ok and ready in checker._ready.values() else 1
                checker.close()
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert ready.proc.poll() is None  # the child's close left it alone
        assert checker.check(GOOD_PROOF, header=MINI_PRELUDE).ok and not checker._ready
        assert ready.proc.returncode in (0, 1)  # the parent fed it
