"""Lean source text handling that every backend shares: input validation, the header split,
a comment- and string-blind view of the code and the declarations it names, all read by the
Lean-faithful lexer in `autoformalize.lexer`."""

from __future__ import annotations

import re
from dataclasses import dataclass

from autoformalize import lexer
from autoformalize.lexer import Lexed, Token, lex_prefix


def validate_input(code: str | bytes, max_bytes: int) -> tuple[str, str | None]:
    """Return (text, problem). `problem` is one sentence when the input must not reach Lean.
    Text is encoded once (its size and its surrogates are read off that), bytes decoded once."""
    surrogate = None
    if isinstance(code, bytes):
        if len(code) > max_bytes:
            return "", f"input is {len(code):,} bytes, over the limit of {max_bytes:,} bytes"
        try:
            code = code.decode("utf-8")  # strict: valid UTF-8 holds no unpaired surrogate
        except UnicodeDecodeError as e:
            return "", f"input is not valid UTF-8 (byte {e.start}: {code[e.start:e.start + 1]!r})"
    else:
        try:
            size = len(code.encode("utf-8"))
        except UnicodeEncodeError as e:
            surrogate = e.start
            size = len(code.encode("utf-8", errors="surrogatepass"))
        if size > max_bytes:
            return "", f"input is {size:,} bytes, over the limit of {max_bytes:,} bytes"
    if "\x00" in code:
        return "", f"input contains a NUL byte at offset {code.index(chr(0))}; Lean source is text"
    if surrogate is not None:
        return "", f"input contains an unpaired surrogate at offset {surrogate}; it is not valid UTF-8"
    return code, None


_HEADER_LINE = re.compile(r"^\s*(prelude|import\s+\S.*)\s*$")


def split_header(code: str, lexed: Lexed | None = None) -> tuple[str, str]:
    """Split leading `prelude`/`import` lines (and blank/comment lines among them) from the body.

    Imports must come first in a Lean file, so anything we insert before the user's
    declarations goes right after this header. Comments are recognised as Lean's lexer
    reads them; text it cannot read ends the header there. Returns (header, body) with
    header + body == code. `lexed`: the caller's complete `lex(code)`, so the code is read once.
    """
    if lexed is None:
        lexed, error = lex_prefix(code)
        limit = len(code) if error is None else error.offset
    else:
        limit = len(code)
    offset = cut_offset = 0
    for line in lexed.masked().splitlines(keepends=True):
        offset += len(line)
        if offset > limit and line.strip():
            break
        if _HEADER_LINE.match(line):
            cut_offset = offset
        elif line.strip():
            break
    return code[:cut_offset], code[cut_offset:]


def reads_alone(lexed: Lexed, start: int) -> bool:
    """Whether lexing `lexed.code[start:]` by itself gives the tokens the whole lex has from
    `start` on (shifted), so the whole lex can stand for it: `start` begins a line and no token
    or comment runs across it. (The lexer carries one thing across a line break: whether an
    interpolator such as `s!` came before a string; a string read differently for it is refused
    either way, see `autoformalize.lexer._Lexer.string`.) False where unsure: the caller then
    lexes the part itself."""
    code = lexed.code
    if start <= 0:
        return True
    if code[start - 1] != "\n":
        return False
    for spans in (((t.start, t.end) for t in lexed.tokens), lexed.hidden):
        for a, b in spans:  # sorted; the header before `start` holds few of them
            if a >= start:
                break
            if b > start:
                return False
    return True


def mask_comments_and_strings(code: str) -> str:
    """Replace comments, string and char literals by spaces, keeping offsets and newlines.

    Lets text rules ignore what Lean ignores, read as Lean's lexer reads it (autoformalize.lexer).
    From a point the lexer cannot read (say, an unclosed comment) on, everything is blanked:
    callers that must fail closed call `lex` and refuse such code instead.
    """
    lexed, error = lex_prefix(code)
    masked = lexed.masked()
    if error is None:
        return masked
    return masked[:error.offset] + "".join("\n" if c == "\n" else " " for c in masked[error.offset:])


_PLAIN_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_'!?]*")
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_'!?]*(?:\.[A-Za-z_][A-Za-z0-9_'!?]*)*")
"""ASCII names as Lean's lexer reads them (`isIdFirst`, `isIdRest`): nearly every name a check
meets, and every one of them has a one-line answer below; the rest go to the lexer."""


def render_name(parts: tuple[str, ...]) -> str:
    """`autoformalize.lexer.render_name` (components that are not plain identifiers go in `«»`),
    without its character loop for plain ASCII components: a check renders every declaration."""
    if all(_PLAIN_PART.fullmatch(p) for p in parts):
        return ".".join(parts)
    return lexer.render_name(parts)


def split_name(name: str) -> tuple[str, ...] | None:
    """`autoformalize.lexer.split_name` (`Foo.«a b»` -> ("Foo", "a b")), without lexing a plain
    ASCII name: a check reads every name Lean printed."""
    if _PLAIN_NAME.fullmatch(name):
        return tuple(name.split("."))
    return lexer.split_name(name)


_DECL_KINDS = frozenset({"theorem", "lemma", "def", "abbrev", "instance", "opaque", "axiom", "inductive",
                         "structure", "class", "example"})
THEOREM_KINDS = ("theorem", "lemma")


@dataclass(frozen=True)
class Declaration:
    kind: str
    parts: tuple[str, ...]
    """Full name components (namespaces included, `_root_` resolved); () when anonymous.
    `kind` is the keyword, or "constructor" for the `| c` of an inductive type."""
    line: int

    @property
    def name(self) -> str:
        return render_name(self.parts)


def declarations(lexed: Lexed, start: int = 0) -> list[Declaration]:
    """The top-level declarations of lexed code, by keyword, with `namespace`/`section`/`mutual`
    ... `end` tracked. Formatting does not matter (attributes, modifiers, docstrings, `open ... in`,
    one line or many): only tokens do. `«theorem»` is a name, not a keyword.

    `start`: read only the code from this offset (a line start, where `reads_alone` holds), lines
    counted from it, as if that part alone had been lexed.

    A text reading, used to decide what to ask Lean about (`#print axioms`); Lean's answers, and
    where the backend can give it Lean's own list of declarations, are what the verdict rests on.
    """
    code = lexed.code
    toks = [t for t in lexed.tokens if t.depth == 0 and t.start >= start]
    lines = _LineCounter(code, start)
    scopes: list[tuple[str, str]] = []  # (kind, component) of open namespaces/sections/mutual blocks
    found: list[Declaration] = []

    def keyword(t: Token) -> str | None:
        return t.text if t.kind == "ident" and not t.escaped and len(t.parts) == 1 else None

    def same_line(a: Token, b: Token) -> bool:
        return "\n" not in code[a.end:b.start]

    inductive: tuple[tuple[str, ...], Token] | None = None  # the inductive type whose constructors follow
    for k, tok in enumerate(toks):
        word = keyword(tok)
        if word not in _COMMAND_WORDS and tok.text != "|":
            continue  # every rule below starts at a command word or a constructor's `|`
        nxt = toks[k + 1] if k + 1 < len(toks) else None
        named = nxt is not None and nxt.kind == "ident" and (nxt.escaped or keyword(nxt) not in _COMMAND_WORDS)
        if tok.text == "|" and inductive is not None and named and (
                k == 0 or not same_line(toks[k - 1], tok) or keyword(toks[k - 1]) == "where"
                or same_line(inductive[1], tok)):
            found.append(Declaration("constructor", inductive[0] + nxt.parts, lines.at(tok.start)))
        if word in _COMMAND_WORDS and word not in ("where", "deriving"):
            inductive = None
        if word == "namespace" and named:
            scopes += [("namespace", p) for p in nxt.parts]
        elif word == "section":
            scopes += [("section", p) for p in nxt.parts] if named and same_line(tok, nxt) else [("section", "")]
        elif word == "mutual":
            scopes.append(("mutual", ""))
        elif word == "end":
            count = len(nxt.parts) if named and same_line(tok, nxt) else 1
            del scopes[max(0, len(scopes) - count):]
        elif word in _DECL_KINDS:
            prev = keyword(toks[k - 1]) if k else None
            if prev == "deriving" or (k and toks[k - 1].text in ("[", ",")) or \
                    (word == "class" and nxt is not None and keyword(nxt) == "inductive"):
                continue  # `deriving instance`, `[instance]`, `class inductive` (read at `inductive`)
            parts: tuple[str, ...] = ()
            j = k + 1
            if word == "instance" and j + 1 < len(toks) and toks[j].text == "(" and \
                    keyword(toks[j + 1]) == "priority":
                while j < len(toks) and toks[j].text != ")":
                    j += 1
                j += 1
            if word != "example" and j < len(toks) and toks[j].kind == "ident" and \
                    (toks[j].escaped or keyword(toks[j]) not in _COMMAND_WORDS):
                parts = toks[j].parts
                if parts[0] == "_root_":
                    parts = parts[1:]
                else:
                    parts = tuple(p for kind, p in scopes if kind == "namespace") + parts
            found.append(Declaration(word, parts, lines.at(tok.start)))
            if word == "inductive" and parts:
                inductive = (parts, tok)
    return found


class _LineCounter:
    """Line numbers (from 1, counted from `start`) of increasing offsets, the newlines counted once."""

    def __init__(self, code: str, start: int) -> None:
        self.code, self.offset, self.line = code, start, 1

    def at(self, offset: int) -> int:
        self.line += self.code.count("\n", self.offset, offset)
        self.offset = offset
        return self.line


_COMMAND_WORDS = _DECL_KINDS | {"namespace", "section", "end", "mutual", "open", "variable", "universe",
                                "set_option", "attribute", "noncomputable", "private", "protected",
                                "partial", "unsafe", "where", "deriving", "in", "instance", "export"}


def declared_names(code: str, kinds: tuple[str, ...] = THEOREM_KINDS) -> list[str]:
    """Full names of the top-level declarations of the given kinds, in order, without repeats.
    Code the lexer cannot read yields the declarations before that point."""
    lexed, _ = lex_prefix(code)
    names: list[str] = []
    for d in declarations(lexed):
        if d.kind in kinds and d.parts and d.name not in names:
            names.append(d.name)
    return names


def line_count(text: str) -> int:
    """Number of lines `text` occupies when another text is appended after a newline."""
    return text.count("\n") + (0 if text.endswith("\n") or not text else 1)
