"""Pull a Lean statement out of what a model wrote, or say why there is none.

Models wrap Lean in ```lean / ```lean4 / ``` fences (or none), write several blocks, add
prose before and after, forget the `theorem` keyword, write `lemma` or `example`, and end
with a proof, `:= by`, or nothing. Whatever they wrote, the result is one normal form:

    abbrev NAME_answer : T := sorry          -- compute problems only
    theorem NAME BINDERS :
        CONCLUSION := by sorry

with NAME derived from the problem id. Only the answer hole and the theorem are kept:
imports and opens come from the caller's header, other `def`s are dropped (the prompt asks
for everything as hypotheses), so what Lean elaborates is exactly the statement.
Whether the result means anything is for Lean to decide, not this module.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from autoformalize.problem import FormalProblem, Kind
from autoformalize.statement import StatementError, parse_theorem

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
    used = f"{binders} {conclusion}"
    found = []
    for m in _HOLE_DEF.finditer(code):
        name = m.group(1)
        value = code[m.end():].split("\n")[0].strip()
        if (name.endswith("answer") or _mentions_sorry(value)) and \
                re.search(rf"(?<![\w.']){re.escape(name)}(?![\w'])", used):
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
    name = lean_name(problem_id)
    hole = _answer_hole(code, parts.conclusion, parts.binders)
    if kind == "prove" and hole:
        return Extraction(None, f"a `prove` problem needs a plain theorem, but the statement uses an answer "
                                f"hole `{hole[0]}`", tuple(notes))
    if kind == "compute" and not hole:
        return Extraction(None, "a `compute` problem needs `abbrev NAME_answer : TYPE := sorry` used in the "
                                "theorem; none found", tuple(notes))
    binders, conclusion = parts.binders, parts.conclusion
    lines = []
    answer_name = answer_type = None
    if hole:
        old, answer_type, value = hole
        if _mentions_sorry(answer_type):
            return Extraction(None, "the answer type contains `sorry`", tuple(notes))
        answer_name = f"{name}_answer"
        rename = re.compile(rf"(?<![\w.']){re.escape(old)}(?![\w'])")
        binders, conclusion = rename.sub(answer_name, binders), rename.sub(answer_name, conclusion)
        if value not in ("sorry", "by sorry", ""):
            notes.append("answer value replaced by `sorry`")
        lines.append(f"abbrev {answer_name} : {answer_type} := sorry")
    lines.append(f"theorem {name}{' ' + binders if binders else ''} :\n    {conclusion} := by sorry")
    statement = "\n".join(lines) + "\n"
    try:
        problem = FormalProblem(id=problem_id, source=source, kind="compute" if hole else "prove",
                                statement=statement, header=header, theorem_name=name,
                                answer_name=answer_name, answer_type=answer_type,
                                provenance=dict(provenance or {}))
    except StatementError as e:
        return Extraction(None, f"could not read the rebuilt statement: {e}", tuple(notes))
    return Extraction(problem, None, tuple(notes))



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
