"""Adversarial files against the verifier, through the real bundled Lean kernel (issue 10, §1).

Every file hides a construct the verifier must refuse (`axiom`, `#eval` of `IO`, `set_option
debug.*`, `@[implemented_by]`, `unsafe`, `macro`, ...) after, or inside the code of, a lexical
construct a naive scanner misreads; all must be rejected. A positive family checks that honest
files using the same constructs still verify.
"""

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from lean_prelude import MINI_PRELUDE
from solve_in_lean.verify import Target, verify

FALSE_PRELUDE = "prelude\ninductive MyFalse : Prop\n"


def pieces(alphabet: list[str], max_size: int) -> st.SearchStrategy[str]:
    return st.lists(st.sampled_from(alphabet), max_size=max_size).map("".join)


# --- the three shapes from the issue -------------------------------------------------------

CHEAT = "axiom cheat : MyFalse\ntheorem t : MyFalse := cheat\n"


@pytest.mark.parametrize("cover", [
    'inductive «a"» : Prop\n',   # a quote inside a guillemet identifier
    "inductive «--» : Prop\n",   # a line-comment opener inside a guillemet identifier
    '#print r#"a"b"#\n',         # a raw string with an embedded quote
], ids=["guillemet-quote", "guillemet-dashes", "raw-string"])
def test_issue_shapes_are_rejected(kernel, cover):
    v = verify(FALSE_PRELUDE + cover + CHEAT, kernel)
    assert not v.verified
    assert v.check.status == "refused"
    assert any("refused construct `axiom` (line 4)" in r for r in v.reasons), v.reasons


# --- the adversarial family ----------------------------------------------------------------

PAYLOADS = {
    "axiom": "axiom cheat : False",
    "IO": '#eval IO.Process.run { cmd := "sh" }',
    "«IO».println": '#eval «IO».println "x"',
    "set_option debug.skipKernelTC": "set_option debug.skipKernelTC true",
    "set_option debug.skipKernelTC ": "set_option «debug».skipKernelTC true",
    "@[implemented_by]": "@[implemented_by N.zero] noncomputable def f : N := N.one",
    "@[extern]": '@[extern "c_f"] opaque g : N',
    "unsafe": "unsafe def u : N := N.zero",
    "macro": "macro \"two\" : term => `(N.zero)",
    "run_cmd": "run_cmd pure ()",
    "#exit": "#exit",
    "notation": 'notation "four" => N.zero',
}

IDENT_TEXT = pieces(list('ab "\'{}#r') + ["--", "/-", "-/", "«"], 8)
COVERS = st.one_of(
    IDENT_TEXT.map(lambda s: f"inductive «q{s}» : Prop\n"),                                  # guillemets
    st.tuples(st.integers(0, 3), pieces(list('ab"# ') + ["--", "/-"], 8)).filter(           # raw strings
        lambda t: '"' + "#" * t[0] not in t[1] + ('"' if t[0] == 0 else "")).map(
        lambda t: f'#print r{"#" * t[0]}"{t[1]}"{"#" * t[0]}\n'),
    pieces(list("ab'# «»") + ['\\"', "\\\\", "--", "/-", "-/"], 8).map(lambda s: f'#print "{s}"\n'),  # strings
    st.sampled_from(["'\"'", "'\\''", "'a'", "'«'", "'-'"]).map(lambda c: f"noncomputable def c := {c}\n"),
    pieces(list("ab \"'«") + ["/- x -/"], 8).map(lambda s: f"/- {s} -/\n"),                   # nested comments
    pieces(list("ab \"'«"), 8).map(lambda s: f"/-- {s} -/\ninductive D : Prop\n"),              # doc comments
    pieces(list("ab '«"), 6).map(lambda s: f'noncomputable def s := s!"{s}{{N.zero}}{s}"\n'),  # interpolation
    st.sampled_from(['«abc ', 'r#"abc ', '"abc ', "/- abc ", "/-- abc ", "'", 's!"{ ']),      # unclosed forms
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cover=COVERS, payload=st.sampled_from(sorted(PAYLOADS)), same_line=st.booleans())
def test_hidden_constructs_are_refused(kernel, cover, payload, same_line):
    """A refused construct after any lexical construct (or swallowed by an unclosed one) is
    refused before Lean runs, and never verified."""
    sep = " " if same_line else "\n"
    code = cover.rstrip("\n") + sep + PAYLOADS[payload] + "\ntheorem t : True := True.intro\n"
    v = verify(code, kernel, header=MINI_PRELUDE)
    assert not v.verified
    if cover.startswith("«") and "»" in PAYLOADS[payload]:
        # The payload's own `»` closes the unclosed guillemet: Lean and the lexer both read one
        # identifier up to it, so no command runs and Lean's parse error rejects the file (or the
        # lexer refuses an identifier spanning lines).
        assert (v.check.status == "error" and "unexpected identifier" in " ".join(v.reasons)
                or v.check.status == "refused"), (code, v.reasons)
        return
    assert v.check.status == "refused", (code, v.reasons)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(payload=st.sampled_from(sorted(PAYLOADS)), inner=st.sampled_from(["{x}", "{ {x} }", "{f x}"]))
def test_payload_in_an_interpolant_or_braced_string_is_refused(kernel, payload, inner):
    """Text inside `{…}` is code to Lean (or becomes code after a parse error): no cover."""
    hidden = inner.replace("x", "IO.println")
    for code in (f'#eval s!"a{hidden}"\n', f'#print "{{ {PAYLOADS[payload]} }}"\n#print "{hidden}"\n',
                 f'-- {PAYLOADS[payload]}\n#print "{inner}"\n'):
        v = verify(code + "theorem t : True := True.intro\n", kernel, header=MINI_PRELUDE)
        assert not v.verified and v.check.status == "refused", (code, v.reasons)


def test_parse_error_inside_an_interpolation_cannot_smuggle_a_command(kernel):
    """Lean re-reads the rest of an interpolated string as code after a parse error in it (the
    `#print` below runs); the verifier refuses such strings."""
    code = 'noncomputable def x : N := ) s!"{"abc #print N "}"\ntheorem t : True := True.intro\n'
    raw = kernel.check(code, header=MINI_PRELUDE)
    assert any(m.text.startswith("inductive N") for m in raw.messages)  # Lean did run it
    v = verify(code, kernel, header=MINI_PRELUDE)
    assert not v.verified and v.check.status == "refused"
    assert "reads differently as a plain and as an interpolated string" in v.reasons[0]


def test_comment_glued_to_a_symbol_cannot_hide_a_command(kernel):
    """`<-` is a token even in a prelude file: `y <-- #print N` is `<-`, `-`, then a command Lean
    runs after the parse error. A comment opener glued to a symbol is refused."""
    code = "noncomputable def x : N := y <-- #print N\ntheorem t : True := True.intro\n"
    raw = kernel.check(code, header=MINI_PRELUDE)
    assert any(m.text.startswith("inductive N") for m in raw.messages)  # Lean did run it
    v = verify(code.replace("#print N", '#eval IO.Process.run { cmd := "sh" }'), kernel, header=MINI_PRELUDE)
    assert not v.verified and v.check.status == "refused"
    assert "glued to the symbol `<`" in v.reasons[0]


# --- declarations the text could hide ------------------------------------------------------

CHEAT_HEADER = MINI_PRELUDE + "axiom cheat : False\n"


@pytest.mark.parametrize("shape", [
    "theorem {n} : False := cheat",
    "@[reducible]\n@[simp] theorem {n} : False := cheat",
    "/-- doc -/ private theorem {n} : False := cheat",
    "open N in theorem {n} : False := cheat",
    "set_option maxRecDepth 100 in\ntheorem {n} : False := cheat",
    "namespace «A b»\ntheorem {n} : False := cheat\nend «A b»",
    "namespace A.B\ntheorem {n} : False := cheat\nend A.B",
    "mutual\ntheorem {n} : False := cheat\nend",
    "theorem «{n} x» : False := cheat",
    "noncomputable def {n} : False := cheat",
    "theorem {n} : True := True.intro\nwhere aux : False := cheat",     # found only by Lean's own list
    "namespace A\ntheorem {n} : False := cheat",                       # namespace left open
    "theorem {n} : False :=\n  cheat",
    "example : False := cheat",
])
def test_every_declaration_is_audited(kernel, shape):
    """However a declaration is written, a header axiom behind it is found by Lean's audit."""
    code = "theorem fine : True := True.intro\n" + shape.replace("{n}", "bad") + "\n"
    v = verify(code, kernel, header=CHEAT_HEADER)
    assert not v.verified, (code, v.check.axioms)
    assert any("cheat" in r or "cannot be audited" in r for r in v.reasons), v.reasons


def test_lean_lists_what_the_scanner_missed(kernel):
    """A `where` helper is a declaration no keyword introduces; the kernel backend's `lean -i`
    list names it, and the second run audits it."""
    code = "theorem fine : True := True.intro\nwhere aux : False := cheat\n"
    raw = kernel.check(code, header=CHEAT_HEADER)
    assert raw.declarations == {"fine": 1, "fine.aux": 2}
    v = verify(code, kernel, header=CHEAT_HEADER)
    assert not v.verified
    assert "`fine.aux` depends on axioms outside the allow-list: cheat" in v.reasons


def test_open_namespace_cannot_redirect_the_audit(kernel):
    """`#print axioms t` inside a namespace the code left open would print `A.t`; the audit names
    `_root_.t` and checks the name Lean printed."""
    code = "theorem t : False := cheat\nnamespace A\ntheorem t : True := True.intro\n"
    v = verify(code, kernel, header=CHEAT_HEADER)
    assert not v.verified
    assert v.check.axioms["t"] == ["cheat"] and v.check.axioms["A.t"] == []


def test_target_in_an_open_namespace_is_not_the_target(kernel):
    target = Target("two_add_two", "Eq (N.add N.two N.two) N.four")
    code = "namespace A\ntheorem two_add_two : Eq (N.add N.two N.two) N.four := Eq.refl N.four\n"
    v = verify(code, kernel, header=MINI_PRELUDE, target=target)
    assert not v.verified and "no theorem named `two_add_two` was proved" in v.reasons


# --- honest code still verifies ------------------------------------------------------------

HONEST_COVERS = st.one_of(  # `{k}` makes names unique per file
    pieces(list("ab \"'{}#") + ["--", "/-", "-/", "axiom", "IO"], 8).map(lambda s: f"inductive «q{{k}}{s}» : Prop\n"),
    pieces(list("ab \"'«") + ["axiom", "#eval IO.run", "/- unsafe -/"], 8).map(lambda s: f"/- {s} -/\n"),
    pieces(list("ab \"'«") + ["axiom", "set_option debug.x"], 8).map(lambda s: f"-- {s}\n"),
    pieces(list("ab \"'«") + ["axiom", "@[implemented_by f]"], 8).map(
        lambda s: f"/-- {s} -/\ntheorem d{{k}} : True := True.intro\n"),
    pieces(list("ab '«-/") + ["axiom", "macro", "\\\""], 8).map(lambda s: f'#print "{s}"\n'),
    st.tuples(st.integers(1, 3), pieces(list('ab "') + ["axiom", "unsafe"], 8)).map(
        lambda t: f'#print r{"#" * t[0]}"{t[1]}"{"#" * t[0]}\n'),
    st.just("open N in\ntheorem o{k} : Eq N.one N.one := Eq.refl _\n"),
    st.just("set_option maxRecDepth 200 in\ntheorem m{k} : Eq N.two N.two := Eq.refl _\n"),
    st.just("namespace «x y»\ntheorem n{k}' : True := True.intro\nend «x y»\n"),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(HONEST_COVERS, min_size=1, max_size=3))
def test_honest_files_with_the_same_constructs_verify(kernel, covers):
    body = "".join(c.replace("{k}", str(k)) for k, c in enumerate(covers))
    code = body + "theorem two_add_two : Eq (N.add N.two N.two) N.four := Eq.refl N.four\n"
    v = verify(code, kernel, header=MINI_PRELUDE)
    assert v.verified, (code, v.reasons)
    assert v.check.axioms["two_add_two"] == []


# --- verify-side messages ------------------------------------------------------------------

def test_empty_code_is_invalid_input_with_the_true_reason(kernel):
    for code in ("", "  \n", "-- just a comment\n/- and a block -/\n"):
        v = verify(code, kernel, header=MINI_PRELUDE)
        assert not v.verified and v.check.status == "invalid_input"
        assert "nothing to verify" in v.reasons[0] and "#exit" not in v.reasons[0]


def test_code_without_declarations_is_not_verified(kernel):
    v = verify('#print "hello"\n', kernel, header=MINI_PRELUDE)
    assert not v.verified and "nothing was verified" in v.reasons[-1]


def test_audit_lines_never_appear_as_user_positions(kernel):
    """An unfinished last command makes Lean read on into the appended audit; the error is
    reported at the end of the user's code, in the user's words."""
    code = "theorem fine : True := True.intro\ntheorem t : True :=\n"
    v = verify(code, kernel, header=MINI_PRELUDE)
    assert not v.verified
    assert v.check.errors, v.reasons
    for m in v.check.messages:
        assert m.line <= 2 and (m.end_line is None or m.end_line <= 2), m
        assert "#print" not in m.text and "_lean_solve" not in m.text
    assert any("unexpected end of the code" in m.text for m in v.check.errors)


def test_failed_theorem_gets_no_axiom_line_and_no_internal_exception(kernel):
    code = "theorem t : True := nope\ntheorem u : True := True.intro\n"
    v = verify(code, kernel, header=MINI_PRELUDE)
    assert not v.verified
    assert "t" not in v.check.axioms and v.check.axioms["u"] == []
    assert not any("internal exception" in m.text for m in v.check.messages)
    assert any("nope" in m.text for m in v.check.errors)


def test_declarations_lean_lists_without_positions_are_audited(kernel):
    """A backend that knows which declarations were added but not where (the REPL's
    environment diff) reports line 0; those are audited too. The real kernel runs; only the
    positions of its list are dropped."""
    class NoPositions(type(kernel)):
        def _check(self, code, header, timeout_s):
            result = super()._check(code, header, timeout_s)
            if result.declarations is not None:
                result.declarations = {name: 0 for name in result.declarations}
            return result

    v = verify("theorem fine : True := True.intro\nwhere aux : False := cheat\n", NoPositions(timeout_s=60),
               header=CHEAT_HEADER, target=Target("fine", "True"))
    assert not v.verified
    assert "`fine.aux` depends on axioms outside the allow-list: cheat" in v.reasons


# --- the text reading of declarations against Lean's own list -------------------------------

NAME = st.sampled_from(["a{k}", "b{k}'", "c{k}₁", "«d e{k}»", "«f.g{k}»", "α{k}β", "h{k}!", "«theorem{k}»"])
DECL = st.one_of(
    NAME.map(lambda n: f"theorem {n} : True := True.intro\n"),
    NAME.map(lambda n: f"/-- doc -/\n@[reducible] noncomputable def {n} : N := N.zero\n"),
    NAME.map(lambda n: f"private theorem {n} : True := True.intro\n"),
    NAME.map(lambda n: f"protected theorem P.{n} : True := True.intro\n"),
    NAME.map(lambda n: f"theorem _root_.{n} : True := True.intro\n"),
    NAME.map(lambda n: f"open N in theorem {n} : True := True.intro\n"),
    NAME.map(lambda n: f"set_option maxRecDepth 100 in\ntheorem {n} : True := True.intro\n"),
    NAME.map(lambda n: f"inductive {n} where\n  | one\n  | two : {n}\n"),
    NAME.map(lambda n: f"inductive {n} : Prop | p | q\n"),
    NAME.map(lambda n: f"mutual\ntheorem {n} : True := True.intro\nend\n"),
)
SCOPE = st.sampled_from([("", ""), ("namespace A\n", "end A\n"), ("namespace «B c».D\n", "end «B c».D\n"),
                         ("section\n", "end\n"), ("section S\n", "end S\n"),
                         ("noncomputable section\n", "end\n"), ("namespace A\nnamespace E\n", "end E\nend A\n")])
BLOCKS = st.lists(st.tuples(SCOPE, st.lists(DECL, min_size=1, max_size=3)), min_size=1, max_size=3)


def scoped_code(blocks: list[tuple[tuple[str, str], list[str]]]) -> str:
    """A file of the drawn declarations in their scopes, each `{k}` numbered apart."""
    code, k = "", 0
    for (opening, closing), decls in blocks:
        code += opening
        for d in decls:
            code += d.replace("{k}", str(k))
            k += 1
        code += closing
    return code


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(BLOCKS)
def test_text_reading_finds_what_lean_declares(kernel, blocks):
    """Lean's own list (`lean -i`) of what a file declares is contained in what the lexer-based
    reading found, for declarations written every way above: no second run, nothing unaudited."""
    from solve_in_lean.verify import _unaudited, build_audit

    code = scoped_code(blocks)
    audit = build_audit(code, target=None, answer_name=None, evaluates=False)
    raw = kernel.check(audit.text, header=MINI_PRELUDE)
    assert raw.ok, (code, raw.messages)
    assert raw.declarations, code
    assert _unaudited(audit, raw) == [], code
    v = verify(code, kernel, header=MINI_PRELUDE)
    assert v.verified, (code, v.reasons)
