"""Reading Lean theorem statements as text: name, binders, conclusion.

Enough of Lean's surface syntax to take `theorem NAME BINDERS : TYPE := PROOF` apart, so a
statement can be turned into a proposition (`∀ BINDERS, TYPE`) that Lean elaborates on its
own, before and independently of any proof. Lean itself decides whether that proposition
means anything; this module only cuts text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from autoformalize.lexer import lex_prefix

_OPEN = {"(": ")", "{": "}", "[": "]", "⦃": "⦄", "⟨": "⟩"}
_CLOSE = {v: k for k, v in _OPEN.items()}
_DECL = re.compile(r"(?m)^[ \t]*(?:@\[[^\]]*\][ \t]*)?(?:(?:private|protected|noncomputable)[ \t]+)*"
                   r"(theorem|lemma|example)\b[ \t]*")


class StatementError(ValueError):
    """The text does not contain a theorem statement we can take apart."""


@dataclass(frozen=True)
class TheoremParts:
    keyword: str     # theorem | lemma | example
    name: str        # "" for example
    binders: str     # "(x : ℕ) (h₀ : x = 2)", possibly empty
    conclusion: str  # "x + 1 = 3"
    start: int       # offset of the keyword in the source text
    end: int         # offset just after the conclusion (where `:=` starts, or end of text)
    name_end: int = -1
    """Offset just after the name (after the keyword for `example`): where the binders begin, so a
    reader can keep the statement's own layout from there to `end`."""

    def proposition(self) -> str:
        """The statement as one proposition: `∀ binders, conclusion`."""
        if not self.binders:
            return self.conclusion
        return f"∀ {self.binders}, {self.conclusion}"

    def header_text(self, name: str | None = None) -> str:
        """`theorem NAME BINDERS : CONCLUSION` without a proof, optionally renamed."""
        parts = [self.keyword, name if name is not None else self.name, self.binders, ":", self.conclusion]
        return " ".join(p for p in parts if p)


def _code_view(text: str) -> str:
    """`text` with comments and string/char literals blanked and the inside of `«…»` names
    replaced by `_`, offsets kept: what is left is what Lean reads as structure (brackets,
    colons, keywords). Read by the Lean-faithful lexer; from text it cannot read on, blank."""
    lexed, error = lex_prefix(text)
    view = list(lexed.masked())
    for tok in lexed.tokens:
        if tok.escaped:
            inside = False
            for k in range(tok.start, tok.end):
                if text[k] == "«":
                    inside = True
                elif text[k] == "»":
                    inside = False
                elif inside:
                    view[k] = "_"
    if error is not None:
        view[error.offset:] = [c if c == "\n" else " " for c in view[error.offset:]]
    return "".join(view)


def without_comments(text: str) -> str:
    """`text` with its comments blanked (strings kept), so a statement cut from it and joined
    onto one line cannot be cut short by a `--` comment."""
    lexed, _ = lex_prefix(text)
    out = list(text)
    for a, b in lexed.hidden:
        if text.startswith(("--", "/-"), a):
            out[a:b] = [c if c == "\n" else " " for c in text[a:b]]
    return "".join(out)


def _scan_top_level(view: str, start: int, stop_tokens: tuple[str, ...]) -> tuple[int, str | None]:
    """First offset >= start where one of `stop_tokens` occurs outside brackets, in a `_code_view`."""
    depth: list[str] = []
    for i in range(start, len(view)):
        c = view[i]
        if c in _OPEN:
            depth.append(c)
        elif c in _CLOSE:
            if depth and depth[-1] == _CLOSE[c]:
                depth.pop()
        elif not depth:
            for tok in stop_tokens:
                if view.startswith(tok, i):
                    return i, tok
    return len(view), None


def parse_theorem(text: str, name: str | None = None) -> TheoremParts:
    """Find the theorem called `name` (else the last theorem/lemma/example) and split it."""
    view = _code_view(text)
    matches = list(_DECL.finditer(view))
    if not matches:
        raise StatementError("no `theorem`, `lemma` or `example` in the text")
    chosen = None
    for m in matches:
        decl_name = "" if m.group(1) == "example" else \
            text[m.end():m.end() + len(re.match(r"[^\s:({\[⦃]*", view[m.end():]).group(0))]
        if name is None or decl_name == name:
            chosen = (m, decl_name)
    if chosen is None:
        raise StatementError(f"no theorem named `{name}` in the text")
    m, decl_name = chosen
    after_name = m.end() + len(decl_name)
    colon, tok = _scan_top_level(view, after_name, (":=", ":"))
    if tok != ":":
        raise StatementError(f"theorem `{decl_name}` has no `:` before its statement")
    plain = without_comments(text)
    binders = " ".join(plain[after_name:colon].split())
    end, _ = _scan_top_level(view, colon + 1, (":=", "\ntheorem", "\nlemma", "\nexample", "\ndef ",
                                               "\nabbrev ", "\n#"))
    conclusion = " ".join(plain[colon + 1:end].split())
    if not conclusion:
        raise StatementError(f"theorem `{decl_name}` has an empty statement")
    return TheoremParts(m.group(1), decl_name, binders, conclusion, m.start(), end, after_name)


_ABBREV = re.compile(r"(?m)^[ \t]*(?:noncomputable[ \t]+)?(?:abbrev|def)[ \t]+([^\s:(]+)[ \t]*:[ \t]*(.+?)[ \t]*:=")


def find_answer_def(text: str) -> tuple[str, str] | None:
    """The `abbrev NAME : TYPE := ...` of a compute statement, as (name, type)."""
    view = _code_view(text)
    for m in _ABBREV.finditer(view):
        if m.group(1).endswith("answer"):
            return text[m.start(1):m.end(1)], text[m.start(2):m.end(2)].strip()
    return None


def normalize_statement(prop: str) -> str:
    """A key equal for statements that differ only in whitespace and bound-variable names.

    Binder names introduced in `(x y : T)`-style groups, `∀ x,`, `∃ x,` and `fun x =>` are
    renamed to v0, v1, ... in order of appearance; other names are kept.
    """
    text = " ".join(prop.split())
    bound: list[str] = []
    for m in re.finditer(r"[(\{\[⦃]\s*([^():\{\}\[\]⦃⦄]+?)\s*:", text):
        bound += [b for b in m.group(1).split() if _is_ident(b)]
    for m in re.finditer(r"(?:∀|∃|∃!|fun|λ)\s+([^,:=]+?)\s*(?:,|:|=>)", text):
        bound += [b for b in m.group(1).replace("(", " ").replace(")", " ").split() if _is_ident(b)]
    mapping: dict[str, str] = {}
    for b in bound:
        mapping.setdefault(b, f"v{len(mapping)}")
    if not mapping:
        return text
    pattern = re.compile(r"(?<![\w.'₀-₉])(" + "|".join(sorted(map(re.escape, mapping), key=len, reverse=True))
                         + r")(?![\w'₀-₉])")
    return pattern.sub(lambda mm: mapping[mm.group(1)], text)


def _is_ident(s: str) -> bool:
    return bool(re.fullmatch(r"[^\W\d][\w'₀-₉!?]*", s)) and s not in {"_"}
