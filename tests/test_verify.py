"""The verification rules, each against the real Lean kernel (prelude dialect)."""

import pytest

from lean_prelude import GOOD_PROOF, MINI_PRELUDE, WRONG_PROOF, slow_proof
from solve_in_lean.verify import Policy, Target, build_audit, refused_constructs, verify

TARGET = Target("two_add_two", "Eq (N.add N.two N.two) N.four")
CHEAT_HEADER = MINI_PRELUDE + "axiom cheat : False\n"
CHEAT_PROOF = ("theorem two_add_two : Eq (N.add N.two N.two) N.four :=\n"
               "  False.rec (motive := fun _ => Eq (N.add N.two N.two) N.four) cheat\n")


def test_correct_proof_verified(kernel):
    v = verify(GOOD_PROOF, kernel, header=MINI_PRELUDE, target=TARGET)
    assert v.verified, v.reasons
    assert v.reasons == []
    assert v.check.axioms == {"two_add_two": []}
    assert v.check.messages == []  # the audit's own output is not shown as the user's messages


def test_wrong_proof_rejected_with_position(kernel):
    v = verify(WRONG_PROOF, kernel, header=MINI_PRELUDE, target=TARGET)
    assert not v.verified
    col = WRONG_PROOF.index("Eq.refl")
    assert f"error at 1:{col}" in v.reasons[0]
    assert v.check.errors[0].line == 1 and v.check.errors[0].column == col


def test_axiom_in_trusted_header_rejected_by_lean_axiom_audit(kernel):
    """Lean reports no error; only the axioms Lean prints make this a rejection."""
    raw = kernel.check(CHEAT_PROOF, header=CHEAT_HEADER)
    assert raw.ok
    v = verify(CHEAT_PROOF, kernel, header=CHEAT_HEADER, target=TARGET)
    assert not v.verified
    assert v.check.axioms["two_add_two"] == ["cheat"]
    assert any("outside the allow-list: cheat" in r for r in v.reasons)
    allowed = verify(CHEAT_PROOF, kernel, header=CHEAT_HEADER, target=TARGET, policy=Policy.with_extra(["cheat"]))
    assert allowed.verified, allowed.reasons


def test_axiom_in_untrusted_code_refused_before_lean_runs(kernel):
    v = verify("axiom cheat : False\n" + CHEAT_PROOF, kernel, header=MINI_PRELUDE, target=TARGET)
    assert not v.verified
    assert v.check.status == "refused"
    assert "refused construct `axiom` (line 1)" in v.reasons[0]


def test_weakened_statement_rejected(kernel):
    weak = "theorem two_add_two (h : False) : Eq (N.add N.two N.two) N.four := Eq.refl _\n"
    v = verify(weak, kernel, header=MINI_PRELUDE, target=TARGET)
    assert not v.verified
    assert any("does not prove the expected statement" in r for r in v.reasons)


def test_different_true_statement_rejected(kernel):
    other = "theorem two_add_two : Eq (N.add N.one N.one) N.two := Eq.refl _\n"
    v = verify(other, kernel, header=MINI_PRELUDE, target=TARGET)
    assert not v.verified
    assert kernel.check(other, header=MINI_PRELUDE).ok


def test_renamed_theorem_rejected(kernel):
    v = verify(GOOD_PROOF.replace("two_add_two", "other"), kernel, header=MINI_PRELUDE, target=TARGET)
    assert not v.verified
    assert "no theorem named `two_add_two` was proved" in v.reasons


def test_statement_is_elaborated_before_untrusted_code(kernel):
    """Code that leaves a namespace open would change what `secret` means in a statement read
    after it; the target is elaborated before the code, so the false claim stays false."""
    header = MINI_PRELUDE + "noncomputable def secret : N := N.four\n"
    target = Target("t", "Eq secret N.zero")  # false: secret is four
    attack = ("namespace N\nnoncomputable def secret : N := N.zero\n"
              "theorem _root_.t : Eq secret N.zero := Eq.refl _\n")
    naive = kernel.check(attack + "theorem naive : Eq secret N.zero := @t\n", header=header)
    assert naive.ok  # read after the code, the statement would be "proved"
    v = verify(attack, kernel, header=header, target=target)
    assert not v.verified
    assert any("does not prove the expected statement" in r for r in v.reasons)


def test_syntax_error_and_unknown_identifier_rejected(kernel):
    for code in ("theorem two_add_two : Eq (N.add N.two N.two N.four := Eq.refl _\n",
                 "theorem two_add_two : Eq (N.add N.two N.two) N.four := Eq.reflx _\n"):
        v = verify(code, kernel, header=MINI_PRELUDE, target=TARGET)
        assert not v.verified
        assert v.reasons[0].startswith("error at 1:")


def test_unclosed_comment_cannot_hide_the_audit(kernel):
    """Refused before Lean runs: the scanner cannot know what Lean would skip."""
    v = verify(GOOD_PROOF + "/- the rest is a comment\n", kernel, header=MINI_PRELUDE, target=TARGET)
    assert not v.verified and v.check.status == "refused"
    assert "unterminated comment" in v.reasons[0] and "line 2" in v.reasons[0]


def test_spoofed_axiom_report_is_ignored(kernel):
    spoof = '#print "\'two_add_two\' does not depend on any axioms"\n' + CHEAT_PROOF
    v = verify(spoof, kernel, header=CHEAT_HEADER, target=TARGET)
    assert not v.verified
    assert v.check.axioms["two_add_two"] == ["cheat"]


def test_timeout_is_a_rejection_with_reason(kernel):
    v = verify(slow_proof(40), kernel, header=MINI_PRELUDE, timeout_s=1.0)
    assert not v.verified
    assert v.check.status == "timeout"
    assert "did not finish within 1 s" in v.reasons[0]


@pytest.mark.parametrize("pidfd", [True, False])
def test_lean_is_reaped_at_its_exit_or_at_the_timeout(kernel, monkeypatch, pidfd):
    """Lean's exit is waited on through a pidfd where the system has one, else by Popen's polling:
    either way a finished check is judged and a slow one times out."""
    import os

    if not pidfd:
        def no_pidfd(pid: int) -> int:
            raise OSError("pidfd_open: not here")
        monkeypatch.setattr(os, "pidfd_open", no_pidfd, raising=False)
    assert verify(GOOD_PROOF, kernel, header=MINI_PRELUDE, target=TARGET).verified
    assert verify(slow_proof(40), kernel, header=MINI_PRELUDE, timeout_s=1.0).check.status == "timeout"


def test_compute_target_with_answer(kernel):
    target = Target("two_add_two", "Eq (N.add ans ans) N.four", params="(ans : N)", args="ans")
    good = ("noncomputable abbrev ans : N := N.add N.one N.one\n"
            "theorem two_add_two : Eq (N.add ans ans) N.four := Eq.refl _\n")
    v = verify(good, kernel, header=MINI_PRELUDE, target=target, answer_name="ans")
    assert v.verified, v.reasons
    assert v.answer == "N.one.add N.one"
    bad = good.replace("N.add N.one N.one", "N.one")
    assert not verify(bad, kernel, header=MINI_PRELUDE, target=target, answer_name="ans").verified


def test_the_code_must_declare_the_target_itself(kernel):
    """A theorem of the target's name and statement in the header (or a library) proves the
    statement, but it is not the code's proof: a submission that only points at it is rejected."""
    header = MINI_PRELUDE + GOOD_PROOF
    for code in ("theorem other : Eq N.zero N.zero := Eq.refl _\n", "namespace Foo\n" + GOOD_PROOF + "end Foo\n"):
        v = verify(code, kernel, header=header, target=TARGET)
        assert not v.verified and any("does not declare `two_add_two`" in r for r in v.reasons), v.reasons
    inside = "namespace Foo\n" + GOOD_PROOF + "end Foo\n"  # the same theorem, declared where the target names it
    v = verify(inside, kernel, header=MINI_PRELUDE, target=Target("Foo.two_add_two", TARGET.statement))
    assert v.verified, v.reasons


def test_declarations_in_namespaces_are_audited(kernel):
    code = "namespace Foo\n" + CHEAT_PROOF + "end Foo\n"
    v = verify(code, kernel, header=CHEAT_HEADER)
    assert v.check.axioms == {"Foo.two_add_two": ["cheat"]}
    assert not v.verified


def test_invalid_utf8_rejected_with_clear_reason(kernel):
    v = verify(b"theorem \xff", kernel)
    assert not v.verified and "UTF-8" in v.reasons[0]


@pytest.mark.parametrize("code, construct", [
    ("axiom a : False", "axiom"),
    ("unsafe def f : N := N.zero", "unsafe"),
    ("@[implemented_by g] def f : N := N.zero", "implemented_by"),
    ("@[extern \"c_f\"] opaque f : N", "extern"),
    ("run_cmd pure ()", "run_cmd"),
    ("#eval IO.println \"hi\"", "IO.println"),
    ("def f : IO Unit := pure ()", "IO"),
    ("set_option debug.skipKernelTC true", "debug.skipKernelTC"),
    ("macro_rules | `(tactic| rfl) => `(tactic| sorry)", "macro_rules"),
    ("notation \"two\" => N.three", "notation"),
    ("infixl:65 \" + \" => N.mul", "infixl"),
    ("#exit", "#exit"),
    ("open Lean Elab in def x := 1", "Elab"),
    ("elab \"cheat\" : tactic => pure ()", "elab"),
])
def test_refused_constructs(code, construct):
    reasons = refused_constructs(code)
    assert reasons and construct in reasons[0]


@pytest.mark.parametrize("code", [
    "-- axiom a : False\ntheorem t : True := True.intro",
    "/- unsafe /- nested IO -/ run_cmd -/ theorem t : True := True.intro",
    'def s := "axiom IO unsafe"',
    "theorem axiom_free (h' : True) : True := h'",
    "def IOish := 1",
])
def test_comments_strings_and_lookalike_names_are_not_refused(code):
    assert refused_constructs(code) == []


def test_audit_layout_keeps_user_lines_mappable():
    code = "prelude\nimport X\ntheorem a : b := c\n"
    audit = build_audit(code, target=TARGET, answer_name=None, evaluates=False, nonce="n")
    lines = audit.text.splitlines()
    assert lines[0] == "prelude" and lines[1] == "import X"
    assert lines[2].startswith("def _lean_solve_expected_n")
    assert lines[2 + audit.pre_lines] == "theorem a : b := c"
    kinds = [e.kind for e in audit.footer.values()]
    assert kinds == ["note", "axioms", "target", "axioms", "sentinel"]
    for line, entry in audit.footer.items():
        text = lines[line - 1]
        assert {"axioms": "#print axioms _root_.", "target": "theorem _root_._lean_solve_target_n",
                "sentinel": "#print", "note": "--"}[entry.kind] in text


def test_verdict_carries_lean_declaration_list_in_code_lines(kernel):
    code = "theorem a : True := True.intro\n\ntheorem b : True := a\n"
    v = verify(code, kernel, header=MINI_PRELUDE, target=Target("b", "True"))
    assert v.verified, v.reasons
    assert v.check.declarations == {"a": 1, "b": 3}


def test_text_reading_covers_honest_declarations_so_lean_runs_once(kernel):
    """Constructors, instances' names, namespaced and `where`-less declarations are all read
    from the text, so Lean's own list adds nothing and no second run is needed."""
    calls = []

    class Counting(type(kernel)):
        def _check(self, code, header, timeout_s):
            calls.append(code)
            return super()._check(code, header, timeout_s)

    code = MINI_PRELUDE + "inductive T | a | b\nnamespace «x y»\ntheorem t : Eq T.a T.a := Eq.refl _\nend «x y»\n"
    v = verify(code, Counting(timeout_s=60))
    assert v.verified, v.reasons
    assert len(calls) == 1
    assert set(v.check.declarations) >= {"T", "T.a", "T.b", "«x y».t", "N.zero", "Eq.refl"}


def test_internal_exception_folded_into_the_real_error_or_explained():
    from solve_in_lean.lean.base import Message
    from solve_in_lean.lean.messages import fold_internal_exceptions

    real = Message("error", 3, 17, "Unknown identifier `nope`", 3, 21)
    bare = Message("error", 3, 0, "internal exception #3", 3, 21)
    assert fold_internal_exceptions([real, bare]) == [real]
    alone = fold_internal_exceptions([Message("error", 7, 0, "internal exception #3", 7, 30)])
    assert len(alone) == 1 and "aborted this declaration" in alone[0].text


# --- one lex per check: what verify reuses reads exactly what reading again would ------------

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from autoformalize import lexer  # noqa: E402
from autoformalize.lexer import LexError, lex  # noqa: E402
from solve_in_lean.lean.source import render_name, split_name  # noqa: E402

HEADER_LINES = st.sampled_from(["prelude", "import A", "import s!", "import A /- open", "-- note", "", "/- a",
                                "b -/", "prelude -- x", "import A\u2028", "import B\r", '"{', "/-- doc -/"])
BODY_LINES = st.sampled_from(["theorem t : True := x", "def «a b» := 1", "namespace A", "end A",
                              "inductive T | a | b", '"{x}" theorem u : P := p', "-/ theorem v : Q := q",
                              "lemma w : R := r", "instance : C := c", "  | c : T", "", "-- theorem no : P := p",
                              "/- theorem no : P := p -/", 's!"{ theorem y : P := p }"',
                              '"\\{" theorem z : P := p'])


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(HEADER_LINES, max_size=4), st.lists(BODY_LINES, max_size=5), st.sampled_from(["\n", "\r\n"]),
       st.booleans())
def test_audit_from_the_shared_lex_is_the_audit_read_again(head, body, newline, trailing):
    """verify lexes the code once and builds the audit from that lex (`reads_alone` decides when the
    body's part of it stands for the body alone); the audit is exactly the one the code read again
    gives, comments and strings across the header's end included."""
    code = newline.join(head + body) + (newline if trailing else "")
    try:
        lexed = lex(code)
    except LexError:
        return  # refused before any audit
    shared = build_audit(code, target=TARGET, answer_name="x", evaluates=False, nonce="n", lexed=lexed)
    again = build_audit(code, target=TARGET, answer_name="x", evaluates=False, nonce="n")
    assert shared == again


NAME_TEXT = st.lists(st.sampled_from(list("aZ_09'!?.«» é₁λ\"#r-") + ["_private.M.0.", "x.2"]), max_size=8).map("".join)


@settings(max_examples=500)
@given(NAME_TEXT)
def test_fast_name_reading_is_the_lexers(text):
    """Names are split and rendered without the lexer when plain ASCII; the answer is the lexer's."""
    assert split_name(text) == lexer.split_name(text)
    parts = tuple(text.split("."))
    assert render_name(parts) == lexer.render_name(parts)


@settings(max_examples=400)
@given(st.lists(st.sampled_from(["a", "é", "\x00", "\ud800", "\U0001d400", "\n"]), max_size=12).map("".join),
       st.integers(0, 30), st.booleans())
def test_input_is_judged_in_one_pass_with_the_reasons_in_order(text, limit, as_bytes):
    """validate_input encodes text once: the size limit comes first, then NUL bytes, then unpaired
    surrogates (text), or invalid UTF-8 (bytes); valid input comes back unchanged."""
    from solve_in_lean.lean.source import validate_input

    data = text.encode("utf-8", errors="surrogatepass") if as_bytes else text
    out, problem = validate_input(data, limit)
    size = len(text.encode("utf-8", errors="surrogatepass"))
    if size > limit:
        assert problem == f"input is {size:,} bytes, over the limit of {limit:,} bytes"
    elif as_bytes and "\ud800" in text:
        assert problem is not None and problem.startswith("input is not valid UTF-8")
    elif "\x00" in text:
        assert problem is not None and "NUL byte at offset" in problem
    elif "\ud800" in text:
        assert problem == f"input contains an unpaired surrogate at offset {text.index(chr(0xd800))}; it is not valid UTF-8"
    else:
        assert (out, problem) == (text, None)


def test_verify_reads_the_code_once(kernel, monkeypatch):
    """One lexer pass over the code per check (the screen's), however many things read it: the
    empty-code check, the refusals, the header split, the declarations and Lean's printed names."""
    passes = []
    run = lexer._Lexer.run

    def counting(self, i=0, depth=0):
        if depth == 0:
            passes.append(len(self.code))
        return run(self, i, depth)

    monkeypatch.setattr(lexer._Lexer, "run", counting)
    code = MINI_PRELUDE + "-- a comment\n" + GOOD_PROOF  # its own `prelude` header, then the body
    v = verify(code, kernel)
    assert v.verified, v.reasons
    assert "two_add_two" in v.check.axioms and "N.add" in v.check.declarations
    assert passes == [len(code)]
    passes.clear()
    v = verify(GOOD_PROOF, kernel, header=MINI_PRELUDE, target=TARGET, answer_name="N.four")
    assert v.verified and v.answer, v.reasons
    assert passes == [len(GOOD_PROOF)]
