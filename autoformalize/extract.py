"""Pull a Lean statement out of what a model wrote, or say why there is none.

Models wrap Lean in ```lean / ```lean4 / ``` fences (or none), write several blocks, add
prose before and after, forget the `theorem` keyword, write `lemma` or `example`, and end
with a proof, `:= by`, or nothing. Whatever they wrote, the result is one normal form:

    abbrev ANSWER : T := sorry               -- compute problems only
    theorem NAME BINDERS : CONCLUSION := by sorry

with the model's own names and its own layout from the binders to the conclusion (line breaks
kept, comments dropped): the model then solves the statement it wrote, with the names it will
copy into its solution. Names are changed only where keeping them is unsafe or impossible
(`_names` says which, and why); a statement whose answer name cannot be made safe is refused.
Only the answer hole and the theorem are kept:
imports and opens come from the caller's header, other `def`s are dropped (the prompt asks
for everything as hypotheses), so what Lean elaborates is exactly the statement.
Whether the result means anything is for Lean to decide, not this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from autoformalize.problem import FormalProblem, Kind
from autoformalize.lexer import lex_prefix, render_name, split_name
from autoformalize.statement import StatementError, parse_theorem, without_comments

MAX_COMPLETION_CHARS = 20_000
"""Longer completions are rejected unread: a statement is a few hundred characters."""

_FENCE = re.compile(r"```[ \t]*([^\n`]*)\n(.*?)(?:```|\Z)", re.S)
_FENCE_LINE = re.compile(r"(?m)^[ \t]*```.*$")
_LEAN_TAGS = {"", "lean", "lean4", "lean 4"}
_DECL = re.compile(r"(?m)^[ \t]*(?:@\[[^\]]*\][ \t]*)?(?:(?:private|protected|noncomputable)[ \t]+)*"
                   r"(theorem|lemma|example)\b")
_HOLE_DEF = re.compile(r"(?m)^[ \t]*(?:noncomputable[ \t]+)?(?:abbrev|def)[ \t]+([^\s:(]+)[ \t]*:[ \t]*(.+?)[ \t]*:=")
_PROSE = re.compile(r"^[A-Z][a-z']* [a-z']+,? [a-z']+(?=[\s,.;:!?]|$)")
"""A line of English: a capitalised word and two lowercase ones (`The statement says ...`)."""
_RELATION = re.compile(r"[=≤≥<>≠↔→∀∃∣∧∨¬]")
_BARE_START = re.compile(r"(?m)^[ \t]*[(\[{⦃]")
_COLON_START = re.compile(r"(?m)^[ \t]*:(?!=)")
_LEAN_KEYWORDS = {"theorem", "lemma", "def", "abbrev", "example", "fun", "by", "have", "show", "let", "if",
                  "then", "else", "match", "with", "do", "at", "from", "in", "end", "open", "import"}


@dataclass(frozen=True)
class Extraction:
    """A candidate statement, or the reason there is none (never both)."""

    problem: FormalProblem | None
    error: str | None = None
    notes: tuple[str, ...] = ()
    """What was repaired on the way: missing keyword, proof replaced by sorry, dropped lines."""

    @property
    def ok(self) -> bool:
        return self.problem is not None


def lean_name(problem_id: str) -> str:
    """A Lean identifier for a problem id: `gsm8k-train-5` -> `gsm8k_train_5`."""
    name = re.sub(r"\W+", "_", problem_id).strip("_").lower() or "problem"
    if name[0].isdigit() or name in _LEAN_KEYWORDS:
        name = "p_" + name
    return name


def garbage_reason(text: object, max_chars: int | None = MAX_COMPLETION_CHARS) -> str | None:
    """Why a completion cannot be Lean at all (empty, huge, binary), or None. `max_chars` None:
    no length limit (long-reasoning provers think for tens of thousands of characters)."""
    if not isinstance(text, str):
        return f"the completion is not text but {type(text).__name__}"
    if not text.strip():
        return "the model returned an empty completion"
    if max_chars is not None and len(text) > max_chars:
        return f"the completion is too long ({len(text)} characters, limit {max_chars})"
    bad = sum(1 for c in text if (ord(c) < 32 and c not in "\n\t\r") or c == "\ufffd"
              or 0xD800 <= ord(c) <= 0xDFFF or ord(c) == 127)
    if bad:
        return f"the completion contains {bad} control or undecodable character(s); it is not text"
    return None


_CLOSED_FENCE = re.compile(r"```[ \t]*([^\n`]*)\n(.*?)```", re.S)


def last_closed_block(text: str) -> str | None:
    """The last complete (closed) Lean or untagged fenced block: where a prover that reasons in
    many blocks writes its final proof. A block cut off by the output budget does not count."""
    blocks = [(tag.strip().lower(), body) for tag, body in _CLOSED_FENCE.findall(text)]
    lean = [body for tag, body in blocks if tag in _LEAN_TAGS and body.strip()]
    return lean[-1] if lean else None


def code_blocks(text: str) -> list[str]:
    """Contents of the Lean (or untagged) fenced blocks, in order; an unclosed last block counts."""
    blocks = [(tag.strip().lower(), body) for tag, body in _FENCE.findall(text)]
    lean = [body for tag, body in blocks if tag in _LEAN_TAGS]
    return lean or [body for _, body in blocks]


def _choose_code(text: str) -> tuple[str, list[str]]:
    """The Lean text holding the statement, plus notes: the first block with a theorem,
    with an answer hole from another block prepended when that block has none."""
    blocks = code_blocks(text)
    if not blocks:
        return text, []
    with_decl = [i for i, b in enumerate(blocks) if _DECL.search(b)]
    notes = [f"{len(blocks)} code blocks"] if len(blocks) > 1 else []
    if not with_decl:
        if _DECL.search(text):  # fences that do not pair up: read the text without them
            return _FENCE_LINE.sub("", text), notes + ["unpaired code fences"]
        return "\n\n".join(blocks), notes
    main = blocks[with_decl[0]]
    if not _HOLE_DEF.search(main):
        holes = [b for b in blocks if b is not main and _HOLE_DEF.search(b)]
        if holes:
            notes.append("answer hole taken from another block")
            return holes[0] + "\n" + main, notes
    return main, notes


def _cut_trailing_prose(segment: str) -> str:
    """Without `:=`, a statement ends at a blank line or a line of English."""
    out: list[str] = []
    for line in segment.split("\n"):
        if out and (not line.strip() or _PROSE.match(line.strip())):
            break
        out.append(line)
    return "\n".join(out)


def _with_keyword(code: str, notes: list[str]) -> str:
    """Add `theorem X` in front of a statement written without it."""
    if _DECL.search(code):
        return code
    lines = [ln for ln in code.split("\n") if not _HOLE_DEF.match(ln)]
    body = "\n".join(lines)
    stripped = body.strip()
    for m in (_COLON_START.search(body), _BARE_START.search(body)):
        if m and _parses("theorem _missing " + body[m.start():].strip()):
            notes.append("added the `theorem` keyword")
            return code + "\ntheorem _missing " + body[m.start():].strip()
    paragraph = stripped.split("\n\n")[0].strip() if stripped else ""
    if paragraph and _RELATION.search(paragraph) and not _PROSE.match(paragraph.split("\n")[0]):
        notes.append("read a bare proposition as the statement")
        return code + "\ntheorem _missing : " + paragraph
    return code


def _parses(text: str) -> bool:
    try:
        parse_theorem(text)
    except StatementError:
        return False
    return True


def _answer_hole(code: str, conclusion: str, binders: str) -> tuple[str, str, str] | None:
    """(name, type, value) of the answer hole: an `abbrev/def NAME : T := ...` the theorem uses,
    named `..answer` or with body `sorry` (other definitions are auxiliary, and dropped)."""
    used = _idents(f"{binders} {conclusion}")
    found = []
    for m in _HOLE_DEF.finditer(code):
        name = m.group(1)
        value = code[m.end():].split("\n")[0].strip()
        if (name.endswith("answer") or _mentions_sorry(value)) and \
                any(_refers(t, _name_parts(name)) for t in used):
            found.append((name, m.group(2).strip(), value))
    found.sort(key=lambda h: not h[0].endswith("answer"))
    return found[0] if found else None


def _mentions_sorry(text: str) -> bool:
    return bool(re.search(r"(?<![\w.'])(sorry|admit)(?![\w'])", text))


def extract(text: str, *, problem_id: str, source: str, kind: Kind | None = None, header: str = "",
            provenance: dict[str, Any] | None = None) -> Extraction:
    """Read one model completion as a FormalProblem; never raises on bad model output.

    `kind` None accepts either shape (an answer hole makes it `compute`); a given kind must
    match what the model wrote.
    """
    reason = garbage_reason(text)
    if reason:
        return Extraction(None, reason)
    code, notes = _choose_code(text)
    code = _with_keyword(code, notes)
    decl = _DECL.search(code)
    if decl is None:
        return Extraction(None, "no Lean statement found: no `theorem`, `lemma` or `example`, and no "
                                "`(binders) : proposition` shape", tuple(notes))
    following = _DECL.search(code, decl.end())
    segment = code[decl.start():following.start() if following else len(code)]
    if ":=" not in segment:
        segment = _cut_trailing_prose(segment)
    try:
        parts = parse_theorem(segment)
    except StatementError as e:
        return Extraction(None, f"could not read the statement: {e}", tuple(notes))
    if parts.keyword != "theorem":
        notes.append(f"`{parts.keyword}` made a `theorem`")
    if _mentions_sorry(parts.binders + " " + parts.conclusion):
        return Extraction(None, "the statement itself contains `sorry`/`admit`, so it says nothing",
                          tuple(notes))
    hole = _answer_hole(code, parts.conclusion, parts.binders)
    if kind == "prove" and hole:
        return Extraction(None, f"a `prove` problem needs a plain theorem, but the statement uses an answer "
                                f"hole `{hole[0]}`", tuple(notes))
    if kind == "compute" and not hole:
        return Extraction(None, "a `compute` problem needs `abbrev NAME_answer : TYPE := sorry` used in the "
                                "theorem; none found", tuple(notes))
    if hole and _mentions_sorry(hole[1]):
        return Extraction(None, "the answer type contains `sorry`", tuple(notes))
    body = _own_layout(without_comments(segment)[parts.name_end:parts.end])
    taken = header_names(header)
    try:
        name, answer_name, body = _names(parts.name, hole[0] if hole else None, body, problem_id, taken, notes)
    except _Refused as e:
        return Extraction(None, str(e), tuple(notes))
    lines = []
    answer_type = None
    if hole:
        answer_type = hole[1]
        if hole[2] not in ("sorry", "by sorry", ""):
            notes.append("answer value replaced by `sorry`")
        lines.append(f"abbrev {answer_name} : {answer_type} := sorry")
    lines.append(f"theorem {name} {body} := by sorry")
    statement = "\n".join(lines) + "\n"
    try:
        problem = FormalProblem(id=problem_id, source=source, kind="compute" if hole else "prove",
                                statement=statement, header=header, theorem_name=name,
                                answer_name=answer_name, answer_type=answer_type,
                                provenance=dict(provenance or {}))
        rebuilt = problem.theorem()
    except StatementError as e:
        return Extraction(None, f"could not read the rebuilt statement: {e}", tuple(notes))
    expected = [_rename_text(t, hole[0], answer_name) if hole else t for t in (parts.binders, parts.conclusion)]
    if [rebuilt.binders, rebuilt.conclusion] != expected:  # the rebuilt text must say what was read, or nothing
        return Extraction(None, "the statement does not read back the same once rebuilt; refused", tuple(notes))
    return Extraction(problem, None, tuple(notes))


class _Refused(ValueError):
    """A statement whose names cannot be made safe by renaming (one sentence why)."""


_PLAIN_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_']*")
"""Names kept as the model wrote them: one ASCII component. Dotted names (namespaces, `_root_`), `«»`
escapes, non-ASCII look-alikes and names starting with `_` (ours, Lean's internal ones) are not."""
_RESERVED = _LEAN_KEYWORDS | {"sorry", "admit", "Type", "Prop", "Sort", "where", "instance", "axiom", "namespace",
                              "section", "variable", "universe", "private", "protected", "noncomputable",
                              "partial", "unsafe", "mutual", "local", "notation", "macro", "syntax", "calc",
                              "suffices", "obtain", "forall", "exists", "this"}
_HEADER_DECL = re.compile(r"(?m)^[ \t]*(?:@\[[^\]]*\][ \t]*)?(?:(?:private|protected|noncomputable|partial|unsafe)"
                          r"[ \t]+)*(?:def|theorem|lemma|abbrev|inductive|structure|class|instance|axiom|opaque)"
                          r"[ \t]+([^\s:({\[⦃]+)")
_BINDER_HEADS = {"∀", "∃", "!", "λ", "Σ", "Π", "∑", "∏", "⋃", "⋂", "⨆", "⨅", "fun", "let", "have", "obtain",
                 "forall", "exists"}
_OPENERS = {"(", "{", "[", "⦃", "⟨"}


def header_names(header: str) -> set[str]:
    """The names the header declares, and the first component of each (`N.add` gives `N.add`
    and `N`): a statement name equal to one is refused by Lean as written, or, for a theorem the
    solution does not declare, would let the header's own theorem stand in for a proof."""
    lexed, _ = lex_prefix(header)
    names: set[str] = set()
    for m in _HEADER_DECL.finditer(lexed.masked()):
        parts = split_name(m.group(1))
        if parts:
            names |= {render_name(parts), render_name(parts[:1])}
    return names


def _idents(text: str) -> list[Any]:
    lexed, _ = lex_prefix(text)
    return [t for t in lexed.tokens if t.kind == "ident"]


def _name_parts(name: str) -> tuple[str, ...]:
    """A declared name as Lean reads it, `_root_.` dropped (it only says where the name lives)."""
    parts = split_name(name) or (name,)
    return parts[1:] if parts[:1] == ("_root_",) and len(parts) > 1 else parts


def _refers(tok: Any, parts: tuple[str, ...]) -> bool:
    """The identifier token names `parts` (in any spelling, `«»` or `_root_.`), perhaps with fields after it."""
    own = tok.parts[1:] if tok.parts[:1] == ("_root_",) else tok.parts
    return own[:len(parts)] == parts


def _rename_text(text: str, old: str, new: str) -> str:
    """`text` with every identifier that names `old` written `new` (fields after it kept); the
    lexer decides what is an identifier, so comments, strings and longer names are left alone."""
    parts = _name_parts(old)
    if parts == (new,):
        return text
    out, last = [], 0
    for tok in _idents(text):
        if _refers(tok, parts):
            own = tok.parts[1:] if tok.parts[:1] == ("_root_",) else tok.parts
            out += [text[last:tok.start], render_name((new, *own[len(parts):]))]
            last = tok.end
    return "".join(out) + text[last:]


def _bound(text: str, name: str) -> bool:
    """`name` is (or may be) bound inside `text`: a binder group `(… name … :`, `{name |`, or right
    after `∀ ∃ fun let …`. Read conservatively: such a statement is refused, never guessed at."""
    lexed, _ = lex_prefix(text)
    toks, parts = lexed.tokens, _name_parts(name)
    for i, tok in enumerate(toks):
        if tok.kind != "ident" or not _refers(tok, parts):
            continue
        a = i
        while a > 0 and toks[a - 1].kind == "ident" and toks[a - 1].text not in _BINDER_HEADS:
            a -= 1
        b = i
        while b + 1 < len(toks) and toks[b + 1].kind == "ident":
            b += 1
        before = toks[a - 1].text if a > 0 else ""
        after = toks[b + 1].text if b + 1 < len(toks) else ""
        if before in _BINDER_HEADS or (before in _OPENERS and after in (":", "|", "∈")):
            return True
    return False


def _fresh(base: str, avoid: set[str]) -> str:
    name, i = base, 1
    while name in avoid or name in _RESERVED:
        name, i = f"{base}_{i}", i + 1
    return name


def _keep_reason(name: str, taken: set[str]) -> str | None:
    """Why a name the model gave cannot be kept as written, or None when it can."""
    if not name:
        return "it has none"
    if not _PLAIN_NAME.fullmatch(name):
        return "it is not one plain ASCII identifier"
    if name in _RESERVED:
        return "it is a reserved word"
    if name in taken:
        return "the header already declares it"
    return None


def _names(theorem: str, answer: str | None, body: str, problem_id: str, taken: set[str],
           notes: list[str]) -> tuple[str, str | None, str]:
    """(theorem name, answer name, binders-to-conclusion text) with the model's own names wherever
    they are fresh, valid and distinct: a model copies the names it wrote into its solution, so
    renaming them makes the solution miss the statement it is checked against.

    Renamed, with a note: a theorem name that is missing (`example`), not one plain identifier, a
    reserved word, declared by the header or equal to the answer's (nothing in the statement
    refers to it, so the meaning is kept); an answer name that is not one plain identifier.
    Refused: an answer the header already declares (Lean would read the header's constant, not
    the hole) or one the statement binds itself (the theorem would not be about the answer)."""
    mine = _name_parts(answer) if answer is not None else ()
    used = {t.parts[0] for t in _idents(body) if t.parts and not (mine and _refers(t, mine))} | taken
    new_answer = None
    if answer is not None:
        parts = _name_parts(answer)
        if render_name(parts) in taken or render_name(parts[:1]) in taken:
            raise _Refused(f"the answer `{answer}` is a name the header already declares, so the statement "
                           "cannot be about its own answer; refused")
        if _bound(body, answer):
            raise _Refused(f"the statement binds the answer's name `{answer}` itself, so it would not be about "
                           "the answer; refused")
        why = _keep_reason(answer, taken)
        new_answer = answer
        if why is not None:
            stem = theorem if _keep_reason(theorem, taken) is None and theorem != answer else lean_name(problem_id)
            new_answer = _fresh(f"{stem}_answer", used)
            notes.append(f"answer `{answer}` renamed `{new_answer}`: {why}")
            body = _rename_text(body, answer, new_answer)
    why = _keep_reason(theorem, taken) or ("it is the answer's name too" if theorem == new_answer else None)
    name = theorem
    if why is not None:
        name = _fresh(lean_name(problem_id), used | {new_answer or ""})
        if theorem:
            notes.append(f"theorem `{theorem}` renamed `{name}`: {why}")
    return name, new_answer, body


def _own_layout(text: str) -> str:
    """Binders to conclusion as the model laid them out: its line breaks and indentation, blank
    lines and trailing spaces (where comments were) dropped."""
    lines = [ln.rstrip() for ln in text.split("\n")]
    return "\n".join(ln for ln in lines if ln.strip()).strip()



_LEAN_START = re.compile(r"(?m)^[ \t]*(?:import|open|set_option|theorem|lemma|example|def|abbrev|noncomputable|"
                         r"namespace|variable|#eval|#check)\b")


def extract_lean(text: str, *, rule: str = "all-blocks", max_chars: int | None = MAX_COMPLETION_CHARS) -> str | None:
    """All the Lean code of a completion (for solutions: definitions and proofs), or None.

    rule "all-blocks": fenced blocks are joined in order; without fences, the text from the
    first line that starts like Lean. rule "last-block": only the last closed block (a model
    presets/ marks as reasoning before its final proof). Garbage (empty, binary, longer than
    `max_chars`) gives None.
    """
    if garbage_reason(text, max_chars):
        return None
    if rule == "last-block":
        block = last_closed_block(text)
        return block.strip() + "\n" if block is not None else None
    if rule != "all-blocks":
        raise ValueError(f"unknown extraction rule {rule!r}; known: all-blocks, last-block")
    blocks = [b.strip() for b in code_blocks(text) if b.strip()]
    if blocks:
        return "\n\n".join(blocks) + "\n"
    m = _LEAN_START.search(text)
    return text[m.start():].strip() + "\n" if m else None
