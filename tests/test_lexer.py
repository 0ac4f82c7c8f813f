"""The Lean-faithful lexer (autoformalize.lexer): unit cases from `Lean.Parser.Basic`, totality on
any text, and a differential test against the real bundled Lean: a probe command is run by Lean
exactly when the lexer reads it as code."""

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from autoformalize.lexer import LexError, lex, lex_prefix, render_name, split_name


def pieces(alphabet: list[str], max_size: int) -> st.SearchStrategy[str]:
    """Text made of the given pieces (characters or short sequences such as `/-`)."""
    return st.lists(st.sampled_from(alphabet), max_size=max_size).map("".join)


def code_text(src: str) -> str:
    """What the lexer leaves visible, whitespace-collapsed."""
    return " ".join(lex(src).masked().split())


@pytest.mark.parametrize("src, visible", [
    ("a -- b\nc", "a c"),
    ("a /- b /- c -/ d -/ e", "a e"),                       # nested block comments
    ("a /- b --/ c -/ d", "a c -/ d"),                       # `--/` closes: `-`, then `-/`
    ("a /-/ b -/ c", "a c"),                                 # `/-/` opens and the `/` is body
    ("/-- doc -/ theorem t", "theorem t"),                   # doc comment
    ("/-! module doc /- nested -/ -/ x", "x"),
    ('a "b -- c" d', "a d"),
    ('a "b \\" c" d', "a d"),                                # escaped quote
    ('a "b\\\n   c" d', "a d"),                             # string gap
    ("a r\"b\" c", "a c"),
    ('a r#"b"c"# d', "a d"),                                 # raw string with embedded quote
    ('a r##"b"#c"## d', "a d"),
    ("a '\"' b", "a b"),                                     # char literal holding a quote
    ("a '\\'' b", "a b"),
    ("a '\\x41' '\\u03B1' b", "a b"),
    ("h' x'' 'c'", "h' x''"),                                # primes belong to identifiers
    ("inductive «a\"» : Prop", "inductive «a\"» : Prop"),    # guillemets: an identifier, all code
    ("inductive «--» : Prop", "inductive «--» : Prop"),
    ("«a /- b» c -/", "«a /- b» c -/"),                      # `/-` inside «» opens nothing
    ('s!"a{x}b" c', "s! x c"),                               # the interpolant is code
    ('s!"a{ {y} }b" c', "s! {y} c"),                         # nested braces in the interpolant
    ("f '' s", "f '' s"),                                    # Mathlib image notation
    ("∑' i, f i", "∑' i, f i"),
    ("x\r\ny", "x y"),                                       # CRLF is a newline
])
def test_masks_what_lean_skips(src, visible):
    assert code_text(src) == visible


@pytest.mark.parametrize("src, what", [
    ("a «b", "unterminated `«`"),
    ('a "b', "unterminated string"),
    ("a r#\"b\"", "unterminated raw string"),
    ("a /- b", "unterminated comment"),
    ("a /- b /- c -/", "unterminated comment"),
    ("/-- doc", "unterminated doc comment"),
    ("a 'bc'", "character literal"),
    ("a '", "unterminated character literal"),
    ('a "\\q"', "invalid escape"),
    ('a "\\x4"', "`\\x` escape"),
    ("a\tb", "tab"),
    ("a\rb", "carriage return"),
    ("0x", "missing digit"),
    ("1e+", "exponent digits"),
    ("#evil", "unknown command `#evil`"),
    ('s!"{x"', "unterminated string"),
    ('s!"{(x}"', "unbalanced"),
    ('"{"}"', "reads differently"),                           # plain vs interpolated reading
    ('s!"{"a"}"', "reads differently"),
    ('s!"a\\{x}b"', "reads differently"),                    # `\{` is no escape in a plain string
    ("f '' \"x\"", "character literal"),                      # `''` where Lean could read a char
    ('"a\\\n\n b"', "second newline"),
    ("«a\nb»", "spans lines"),
    ("y <-- c", "glued to the symbol `<`"),                   # Lean reads `<-` then `-`: no comment
    ("y //- c -/", "glued to the symbol `/`"),                # `//` is a token with Init
    ("y :=--c", "glued to the symbol `=`"),
])
def test_fails_closed(src, what):
    with pytest.raises(LexError) as e:
        lex(src)
    assert what in str(e.value)
    assert "line" in str(e.value)


def test_identifiers_and_names():
    toks = lex("Foo.«a b».c `x.«y» x.1.le h.2.eq #evalIO.println").tokens
    assert toks[0].parts == ("Foo", "a b", "c") and toks[0].escaped
    assert toks[1].kind == "name" and toks[1].parts == ("x", "y")
    assert [t.text for t in toks[2:]] == ["x", ".", "1", ".", "le", "h", ".", "2", ".", "eq", "#eval", "IO.println"]
    assert lex("α₁ ℕ x!? _a").tokens[0].parts == ("α₁",)
    assert [t.kind for t in lex("3 2.5 1e-3 0x1F 0b10 1_000").tokens] == ["number"] * 6


def test_name_rendering_round_trips():
    for parts in [("a",), ("Foo", "a b"), ("x", "«"), ("theorem",), ("α", "β₁")]:
        assert split_name(render_name(parts)) == parts
    assert split_name("not a name") is None


@settings(max_examples=300, deadline=None)
@given(pieces(list("ab r#\"'«»{}-/\\\n!s(x)`.0e_") + ["/-", "-/", "--", "s!\""], 40))
def test_total_and_offset_preserving(src):
    """Any text either lexes or raises LexError (never another exception); the masked view keeps
    every offset and newline; hidden spans and tokens never overlap."""
    lexed, error = lex_prefix(src)
    masked = lexed.masked()
    assert len(masked) == len(src)
    assert [i for i, c in enumerate(masked) if c == "\n"] == [i for i, c in enumerate(src) if c == "\n"]
    for tok in lexed.tokens:
        if tok.kind not in ("string", "char", "doc"):
            assert not any(a < tok.end and tok.start < b for a, b in lexed.hidden), (tok, lexed.hidden)
    if error is None:
        assert lex(src).tokens == lexed.tokens


# --- differential: Lean runs a probe exactly where the lexer sees code ----------------------

PROBE = "#print P"  # wherever Lean reads this as a command it answers about P
GUILLEMET = pieces(list("ab\"'-/ {}#r") + ["--", "/-", "-/", f" {PROBE} "], 8).map(
    lambda s: f"inductive «q{s}» : Prop\n")
RAW = st.tuples(st.integers(0, 3), pieces(list("ab\"#' -/{}") + ["--", "/-", f"\n{PROBE}\n"], 10)).filter(
    lambda t: ('"' + "#" * t[0]) not in t[1] + '"' or t[0] == 0 and '"' not in t[1]).map(
    lambda t: f'#print r{"#" * t[0]}"{t[1]}"{"#" * t[0]}\n')
STRING = pieces(list("ab'#-/ «»") + ["\\\"", "\\\\", "--", "/-", "-/", f"\n{PROBE}\n"], 10).map(
    lambda s: f'#print "{s}"\n')
LINE_COMMENT = pieces(list("ab\"'«-/{}") + [f" {PROBE}"], 10).map(lambda s: f"-- {s}\n")
BLOCK_COMMENT = pieces(list("ab\"'«{} ") + ["--", "/- x -/", "-", "/-", "-/", f"\n{PROBE}\n"], 10).map(
    lambda s: f"/- {s} -/\n")
DOC = pieces(list("ab\"'«{} ") + ["/- y -/", f"\n{PROBE}\n"], 10).map(
    lambda s: f"/-- {s} -/\ninductive D{abs(hash(s)) % 1000} : Prop\n")
CHAR = st.sampled_from(["'\"'", "'\\''", "'a'", "'«'", "'\\\\'", "'-'", "'/'", "'\"' #print P '\"'"]).map(
    lambda c: f"noncomputable def c := {c}\n")
CONSTRUCTS = st.one_of(GUILLEMET, RAW, STRING, LINE_COMMENT, BLOCK_COMMENT, DOC, CHAR)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(CONSTRUCTS, min_size=1, max_size=4))
def test_lexer_agrees_with_lean_on_what_is_code(kernel, parts):
    """Probes `#print P` between and inside the constructs (comments, strings, raw strings,
    guillemets, doc comments, char literals, possibly unclosed): Lean runs exactly the probes the
    lexer reads as commands. Files the lexer refuses are skipped (rejected before Lean runs)."""
    src = "prelude\ninductive P : Prop\n" + "".join(f"{p}{PROBE}\n" for p in parts)
    try:
        lexed = lex(src)
    except LexError:
        return
    ours = sum(1 for t in lexed.tokens if t.kind == "command" and src.startswith(PROBE, t.start)
               and src[t.end:t.end + 2] == " P")
    result = kernel.check(src)
    # A construct that ends early (`/- -/a -/`) glues text onto `inductive P`, which then fails; the
    # probes still run and answer "Unknown constant `P`" instead, so both answers count as a probe.
    theirs = sum(1 for m in result.messages
                 if m.severity == "information" and m.text.startswith("inductive P")
                 or m.severity == "error" and m.text == "Unknown constant `P`")
    assert ours == theirs, (src, result.messages)


# --- the statement reader (autoformalize.statement) reads Lean text through the lexer ---------

def test_statement_reader_skips_what_lean_skips():
    from autoformalize.statement import find_answer_def, parse_theorem

    text = ('-- theorem decoy : False := x\n/- theorem decoy2 : False -/\n'
            'theorem t («a:b» : ℕ) (h : «x)» = \'(\') : «a:b» = 1 -- note: (\n  ∧ True := by simp\n')
    parts = parse_theorem(text)
    assert parts.name == "t"
    assert parts.binders == "(«a:b» : ℕ) (h : «x)» = '(')"
    assert parts.conclusion == "«a:b» = 1 ∧ True"
    assert find_answer_def('/- abbrev x_answer : ℕ := 1 -/\nabbrev y_answer : ℚ := 2\n') == ("y_answer", "ℚ")
