"""Lean 4's lexical grammar, read the way Lean's own parser reads it, failing closed.

Written from `Lean.Parser.Basic` (`whitespace`, `finishCommentBlock`, `strLitFnAux`,
`quotedCharCoreFn`, `charLitFnAux`, `rawStrLitFnAux`, `numberFnAux`, `identFnAux`,
`tokenFnAux`), `Lean.Parser.StrInterpolation` (`interpolatedStrFn`) and `Init.Meta`
(`isIdFirst`, `isIdRest`, `isLetterLike`, `isSubScriptAlnum`). Verification rules rest on
this reading (a refused word hidden in what we wrongly take for a comment would run), so
whatever the lexer cannot read with certainty raises `LexError` instead of guessing:
unterminated comments, strings, char literals and `«…»` escapes, invalid escapes and
numerals, tabs and stray carriage returns (Lean rejects them too), and strings that Lean
could read two ways (see `_Lexer.string`). The rules, and why, are in docs/verification.md.

It lives in `autoformalize` (the lowest layer) so both the statement reader here and the
verifier in `solve_in_lean` share one reading of Lean text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

TokenKind = Literal["ident", "symbol", "number", "string", "char", "name", "doc", "command"]

INTERPOLATORS = frozenset({"s!", "m!", "f!", "throwError", "println!", "dbg_trace"})
"""Tokens after which a string literal is always an interpolated string (core Lean)."""

HASH_COMMANDS = tuple(sorted(
    ("#eval", "#eval!", "#exit", "#print", "#check", "#check_failure", "#reduce", "#synth", "#help",
     "#guard_msgs", "#guard", "#where", "#version", "#lint", "#find", "#simp", "#norm_num", "#conv", "#time",
     "#adaptation_note", "#instances", "#count_heartbeats", "#explode", "#find_home", "#min_imports", "#v",
     "#whnf", "#widget", "#html", "#check_tactic", "#guard_expr", "#print_axioms", "#loogle", "#leansearch"),
    key=len, reverse=True))
"""`#`-commands, matched longest-prefix as Lean's token table does (`#evalIO` is `#eval IO`)."""

_QUOTE_SUFFIX_TOKENS = ("∑", "∏", "⁻¹")
"""Mathlib tokens that end in `'` (`∑'`, `∏'`, `⁻¹'`); `''` is Mathlib's image notation."""


class LexError(ValueError):
    """The text is not Lean source the lexer can read with certainty (one sentence, with position)."""

    def __init__(self, code: str, offset: int, what: str) -> None:
        line = code.count("\n", 0, offset) + 1
        column = offset - (code.rfind("\n", 0, offset) + 1)
        super().__init__(f"{what} (line {line}, column {column})")
        self.offset = offset
        self.line = line
        self.column = column
        self.what = what


@dataclass(frozen=True)
class Token:
    """One token Lean reads as code (comments are not tokens; strings and chars are, their text hidden)."""

    kind: TokenKind
    start: int
    end: int
    text: str
    parts: tuple[str, ...] = ()
    """Identifier / name-literal components with `«»` removed (`a.«b c»` -> ("a", "b c"))."""
    escaped: bool = False
    """Some component was written in `«»` (so `«axiom»` is a name, never the keyword)."""
    depth: int = 0
    """0 at top level; n inside the n-th nested `{…}` of an interpolated string."""


@dataclass
class Lexed:
    code: str
    tokens: list[Token] = field(default_factory=list)
    hidden: list[tuple[int, int]] = field(default_factory=list)
    """Spans Lean never reads as code: comments and the text of string and char literals."""
    braced_strings: int = 0
    """String literals with `{` in them: Lean may read them as interpolations (see `_Lexer.string`)."""

    def masked(self) -> str:
        """The code with every hidden span blanked (newlines kept, so offsets and lines hold)."""
        out = list(self.code)
        for a, b in self.hidden:
            for k in range(a, b):
                if out[k] != "\n":
                    out[k] = " "
        return "".join(out)


def is_letter_like(c: str) -> bool:
    v = ord(c)
    return ((0x3B1 <= v <= 0x3C9 and v != 0x3BB) or (0x391 <= v <= 0x3A9 and v not in (0x3A0, 0x3A3))
            or 0x3CA <= v <= 0x3FB or 0x1F00 <= v <= 0x1FFE or 0x2100 <= v <= 0x214F
            or 0x1D49C <= v <= 0x1D59F or (0xC0 <= v <= 0xFF and v not in (0xD7, 0xF7)) or 0x100 <= v <= 0x17F)


def is_subscript_alnum(c: str) -> bool:
    v = ord(c)
    return 0x2080 <= v <= 0x2089 or 0x2090 <= v <= 0x209C or 0x1D62 <= v <= 0x1D6A or v == 0x2C7C


def is_id_first(c: str) -> bool:
    return ("a" <= c <= "z") or ("A" <= c <= "Z") or c == "_" or is_letter_like(c)


def is_id_rest(c: str) -> bool:
    return is_id_first(c) or ("0" <= c <= "9") or c in "'!?" or is_subscript_alnum(c)


_ASCII_ID_REST = re.compile(r"[A-Za-z0-9_'!?]*")
_HEX = set("0123456789abcdefABCDEF")
_QUOTABLE = set("\\\"'rnt")
_BRACKETS = {"(": ")", "[": "]", "{": "}", "⟨": "⟩", "⦃": "⦄"}
_CLOSERS = {v: k for k, v in _BRACKETS.items()}
_GLUE_SAFE = frozenset(")]}⟩⦄,")
"""Symbols no Lean token continues with `-` or `/`, so a comment right after them is safe."""


def plain_identifier(component: str) -> bool:
    """`component` can be written without `«»`."""
    return bool(component) and is_id_first(component[0]) and all(is_id_rest(c) for c in component[1:])


def render_name(parts: tuple[str, ...]) -> str:
    """A name as Lean source: components that are not plain identifiers go in `«»`."""
    return ".".join(p if plain_identifier(p) else f"«{p}»" for p in parts)


class _Lexer:
    def __init__(self, code: str) -> None:
        self.code = code
        self.n = len(code)
        self.out = Lexed(code)

    def fail(self, offset: int, what: str) -> LexError:
        return LexError(self.code, offset, what)

    # -- whitespace and comments (`whitespace`, `finishCommentBlock`) -------------------------

    def skip_ws(self, i: int, after_symbol: bool = False) -> int:
        """Skip whitespace and comments. `after_symbol`: a symbol token ends right at `i`; then a
        comment opener there is refused, for Lean may read the symbol and the `-` or `/` as one
        token (`y <-- #eval …` is `<-`, `-`, a command: seen running)."""
        code, n = self.code, self.n
        if after_symbol and code.startswith(("--", "/-"), i):
            raise self.fail(i, f"a comment opener glued to the symbol `{code[i - 1]}` before it; Lean may "
                               "read them as one token (put a space between)")
        while i < n:
            c = code[i]
            if c == " " or c == "\n":
                i += 1
            elif c == "\r":
                if i + 1 < n and code[i + 1] == "\n":
                    i += 2  # Lean reads CRLF as LF
                else:
                    raise self.fail(i, "a carriage return without a line feed; Lean does not allow it")
            elif c == "\t":
                raise self.fail(i, "a tab character; Lean does not allow tabs outside comments and strings")
            elif code.startswith("--", i):
                j = code.find("\n", i)
                j = n if j < 0 else j
                self.out.hidden.append((i, j))
                i = j
            elif code.startswith("/-", i) and not (i + 2 < n and code[i + 2] in "-!"):
                j = self.comment_body(i, i + 2, "comment")
                self.out.hidden.append((i, j))
                i = j
            else:
                break
        return i

    def comment_body(self, start: int, i: int, what: str) -> int:
        """End of a block comment whose body starts at `i` (nested `/- -/` count)."""
        code, n, depth = self.code, self.n, 1
        while i < n:
            if code.startswith("-/", i):
                depth -= 1
                i += 2
                if depth == 0:
                    return i
            elif code.startswith("/-", i):
                depth += 1
                i += 2
            else:
                i += 1
        raise self.fail(start, f"an unterminated {what}: `/-` is never closed by `-/`")

    # -- literals ----------------------------------------------------------------------------

    def escape(self, start: int, i: int, in_string: bool, brace: bool) -> int:
        """`i` is just after a backslash (`quotedCharCoreFn`); returns the end of the escape."""
        code, n = self.code, self.n
        if i >= n:
            raise self.fail(start, "an unterminated literal (ends in a backslash)")
        c = code[i]
        if c in _QUOTABLE or (brace and c == "{"):
            return i + 1
        if c in "xu":
            k = 2 if c == "x" else 4
            digits = code[i + 1:i + 1 + k]
            if len(digits) != k or not set(digits) <= _HEX:
                raise self.fail(i - 1, f"an invalid `\\{c}` escape (needs {k} hexadecimal digits)")
            return i + 1 + k
        if in_string and c == "\n":  # a string gap: backslash, newline, indentation (`stringGapFn`)
            j = i + 1
            while j < n and code[j] in " \t\r\n":
                if code[j] == "\n":
                    raise self.fail(j, "a second newline in a string gap")
                j += 1
            return j
        raise self.fail(i - 1, f"an invalid escape sequence `\\{c}`")

    def plain_string_end(self, start: int) -> int:
        """End of the string literal opening at `start` (`strLitFnAux`)."""
        code, n, i = self.code, self.n, start + 1
        while i < n:
            c = code[i]
            if c == '"':
                return i + 1
            i = self.escape(start, i + 1, True, False) if c == "\\" else i + 1
        raise self.fail(start, "an unterminated string literal")

    def interpolated_string(self, start: int, depth: int) -> tuple[int, list[Token], list[tuple[int, int]]]:
        """The string at `start` read as `interpolatedStrFn` reads it: `{…}` parts are Lean terms.
        Returns its end, the tokens of the terms and the literal (hidden) chunks."""
        code, n, i = self.code, self.n, start + 1
        tokens: list[Token] = []
        chunks: list[tuple[int, int]] = []
        chunk = start
        while i < n:
            c = code[i]
            if c == '"':
                chunks.append((chunk, i + 1))
                return i + 1, tokens, chunks
            if c == "\\":
                i = self.escape(start, i + 1, True, True)
            elif c == "{":
                chunks.append((chunk, i + 1))
                sub = _Lexer(code)
                i = sub.run(i + 1, depth + 1)  # index of the closing `}`
                tokens += sub.out.tokens
                chunks += sub.out.hidden
                self.out.braced_strings += sub.out.braced_strings
                chunk = i
                i += 1
            else:
                i += 1
        raise self.fail(start, "an unterminated interpolated string")

    def string(self, start: int, after_interpolator: bool, depth: int) -> int:
        """A `"` string. A string with `{` is read both as plain and as interpolated: Lean
        reads it one way or the other depending on the syntax around it, and after a parse
        error inside it Lean resumes reading tokens mid-string. Unless both readings end at
        the same quote, the rest of the file would be read differently: refuse it. When they
        agree, the `{…}` parts are kept as code (the reading that sees more code wins)."""
        try:
            plain_end: int | None = self.plain_string_end(start)
        except LexError:
            if not after_interpolator:
                raise
            plain_end = None
        if plain_end is not None and "{" not in self.code[start:plain_end]:
            self.out.hidden.append((start, plain_end))
            return plain_end
        try:
            end: int | None
            end, tokens, chunks = self.interpolated_string(start, depth)
        except LexError:
            if after_interpolator:
                raise
            end = None
        if plain_end != end:
            raise self.fail(start, "a string literal that Lean reads differently as a plain and as an "
                                   "interpolated string (a quote or escape inside `{…}`); bind the inner "
                                   "value to a name first")
        self.out.braced_strings += 1
        self.out.tokens += tokens
        self.out.hidden += chunks
        return end

    def raw_string(self, start: int) -> int:
        """`r"…"`, `r#"…"#` with any number of `#` (`rawStrLitFnAux`)."""
        code, i = self.code, start + 1
        hashes = 0
        while code[i] == "#":
            hashes += 1
            i += 1
        closing = '"' + "#" * hashes
        j = code.find(closing, i + 1)
        if j < 0:
            raise self.fail(start, "an unterminated raw string literal")
        return j + len(closing)

    def char(self, start: int) -> int:
        """`'c'` or `'\\n'`-style escapes (`charLitFnAux`)."""
        code, n = self.code, self.n
        i = start + 1
        if i >= n:
            raise self.fail(start, "an unterminated character literal")
        i = self.escape(start, i + 1, False, False) if code[i] == "\\" else i + 1
        if i >= n or code[i] != "'":
            raise self.fail(start, "a `'` that does not start a character literal Lean can read")
        return i + 1

    def number(self, start: int) -> int:
        """Numerals (`numberFnAux`): decimal with `_` separators, `0b`/`0o`/`0x`, scientific."""
        code, n = self.code, self.n

        def digits(i: int, ok: set[str] | None, need: bool) -> int:
            while i < n:
                c = code[i]
                if c == "_":
                    need = True
                elif (c.isascii() and c.isdigit()) if ok is None else c in ok:
                    need = False
                else:
                    break
                i += 1
            if need:
                raise self.fail(start, "a numeral with a missing digit")
            return i

        if code[start] == "0" and start + 1 < n and code[start + 1] in "bBoOxX":
            base = code[start + 1].lower()
            ok = {"b": set("01"), "o": set("01234567"), "x": _HEX}[base]
            return digits(start + 2, ok, True)
        i = digits(start, None, False)
        if i < n and code[i] == ".":
            i += 1
            if i < n and code[i].isascii() and code[i].isdigit():
                i = digits(i, None, False)
        if i < n and code[i] in "eE":
            j = i + 1
            if j < n and code[j] in "+-":
                j += 1
            if not (j < n and code[j].isascii() and code[j].isdigit()):
                raise self.fail(start, "a scientific numeral without exponent digits")
            i = digits(j, None, False)
        return i

    def ident(self, start: int) -> tuple[int, tuple[str, ...], bool]:
        """An identifier, dotted, with `«…»` parts (`identFnAux`)."""
        code, n, i = self.code, self.n, start
        parts: list[str] = []
        escaped = False
        while True:
            if code[i] == "«":
                j = code.find("»", i + 1)
                if j < 0:
                    raise self.fail(i, "an unterminated `«` identifier escape")
                if "\n" in code[i:j]:
                    raise self.fail(i, "a `«…»` identifier that spans lines")
                parts.append(code[i + 1:j])
                escaped = True
                i = j + 1
            else:
                j = _ASCII_ID_REST.match(code, i + 1).end()  # fast path; then the Unicode rules
                while j < n and is_id_rest(code[j]):
                    j = _ASCII_ID_REST.match(code, j + 1).end()
                parts.append(code[i:j])
                i = j
            if i + 1 < n and code[i] == "." and (is_id_first(code[i + 1]) or code[i + 1] == "«"):
                i += 1
                continue
            return i, tuple(parts), escaped

    # -- the token loop (`tokenFnAux`) ---------------------------------------------------------

    def run(self, i: int = 0, depth: int = 0) -> int:
        """Lex from `i`. At depth 0 until the end; inside `{…}` of an interpolated string until
        its closing `}` (returned), with brackets required to nest."""
        code, n = self.code, self.n
        toks = self.out.tokens
        stack: list[tuple[str, int]] = []
        opened = i - 1
        while True:
            last = toks[-1] if toks else None
            glued = last is not None and last.end == i and last.kind == "symbol" and last.text not in _GLUE_SAFE
            i = self.skip_ws(i, glued)
            if i >= n:
                if depth:
                    raise self.fail(opened, "an interpolated string whose `{` is never closed")
                return i
            c = code[i]
            start = i
            prev = toks[-1] if toks and toks[-1].depth == depth else None
            if c == '"':
                after = prev is not None and prev.kind == "ident" and not prev.escaped and prev.text in INTERPOLATORS
                i = self.string(start, after, depth)
                toks.append(Token("string", start, i, code[start:i], depth=depth))
            elif c == "'" and i + 1 < n and code[i + 1] == "'":
                i = self.quote_suffixed(start, start + 2)
                toks.append(Token("symbol", start, i, code[start:i], depth=depth))
            elif c == "'":
                i = self.char(start)
                self.out.hidden.append((start, i))
                toks.append(Token("char", start, i, code[start:i], depth=depth))
            elif c.isascii() and c.isdigit():
                if start > 0 and code[start - 1] == ".":  # a field index `x.2` (`fieldIdx`)
                    i = start
                    while i < n and code[i].isascii() and code[i].isdigit():
                        i += 1
                else:
                    i = self.number(start)
                toks.append(Token("number", start, i, code[start:i], depth=depth))
            elif c == "`" and i + 1 < n and (is_id_first(code[i + 1]) or code[i + 1] == "«"):
                i, parts, escaped = self.ident(start + 1)
                toks.append(Token("name", start, i, code[start:i], parts, escaped, depth))
            elif c == "r" and self._raw_start(i + 1):
                i = self.raw_string(start)
                self.out.hidden.append((start, i))
                toks.append(Token("string", start, i, code[start:i], depth=depth))
            elif c == "«" or is_id_first(c):
                i, parts, escaped = self.ident(start)
                toks.append(Token("ident", start, i, code[start:i], parts, escaped, depth))
            elif c == "#" and i + 1 < n and is_id_first(code[i + 1]):
                word = next((h for h in HASH_COMMANDS if code.startswith(h, i)), None)
                if word is None:
                    j = i + 1
                    while j < n and is_id_rest(code[j]):
                        j += 1
                    raise self.fail(start, f"an unknown command `{code[start:j]}`")
                i += len(word)
                toks.append(Token("command", start, i, word, depth=depth))
            elif code.startswith("/--", i) or code.startswith("/-!", i):
                i = self.comment_body(start, i + 3, "doc comment")
                self.out.hidden.append((start, i))
                toks.append(Token("doc", start, i, code[start:i], depth=depth))
            else:
                if depth:
                    if c in _BRACKETS:
                        stack.append((c, i))
                    elif c in _CLOSERS:
                        if not stack and c == "}":
                            return i
                        if not stack or stack[-1][0] != _CLOSERS[c]:
                            raise self.fail(i, f"an unbalanced `{c}` inside `{{…}}` of an interpolated string")
                        stack.pop()
                i += 1
                for tok in _QUOTE_SUFFIX_TOKENS:
                    if code.startswith(tok, start) and code.startswith("'", start + len(tok)):
                        i = self.quote_suffixed(start, start + len(tok) + 1)
                        break
                toks.append(Token("symbol", start, i, code[start:i], depth=depth))

    def quote_suffixed(self, start: int, after: int) -> int:
        """Mathlib's `''`, `∑'`, `∏'`, `⁻¹'`. Where those tokens do not exist, Lean reads the `'`
        as a character literal and resumes after it on error; accept them only where both
        readings meet again: a space, then a character that starts nothing special."""
        code = self.code
        nxt = code[after + 1] if after + 1 < self.n else ""
        if code[after:after + 1] == " " and nxt and nxt not in "\"'«`-/\\ \n\r\t" and \
                not (nxt == "r" and self._raw_start(after + 2)):
            return after
        raise self.fail(start, f"`{code[start:after]}` not followed by a space and a plain token; "
                               "the scanner cannot tell it from a character literal")

    def _raw_start(self, i: int) -> bool:
        code, n = self.code, self.n
        while i < n and code[i] == "#":
            i += 1
        return i < n and code[i] == '"'


def lex(code: str) -> Lexed:
    """Tokens and hidden spans of `code`; raises LexError where Lean's reading is uncertain."""
    lexed, error = lex_prefix(code)
    if error is not None:
        raise error
    return lexed


def lex_prefix(code: str) -> tuple[Lexed, LexError | None]:
    """Like `lex`, but returns what was read before an error, and the error (None if none)."""
    lexer = _Lexer(code)
    error = None
    try:
        lexer.run(0, 0)
    except LexError as e:
        error = e
    lexer.out.hidden.sort()
    lexer.out.tokens.sort(key=lambda t: t.start)
    return lexer.out, error


def split_name(text: str) -> tuple[str, ...] | None:
    """Components of a name as Lean prints or parses it (`Foo.«a b»` -> ("Foo", "a b"))."""
    text = text.strip()
    if not text:
        return None
    try:
        lexed = lex(text)
    except LexError:
        return None
    toks = lexed.tokens
    if len(toks) != 1 or toks[0].kind != "ident" or toks[0].end != len(text):
        return None
    return toks[0].parts
