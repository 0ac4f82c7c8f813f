"""Turn what Lean prints into `Message`s, axioms, `#eval` outputs and the sorry flag.

Both `lean --json` (one JSON object per line) and the REPL's message objects carry
`severity`, `pos`/`endPos` ({line, column}) and the text (`data` or `message`).
"""

from __future__ import annotations

import json
import re
from typing import Any, Iterable

from solve_in_lean.lean.base import EvalOutput, Message, Severity

_SEVERITIES: dict[str, Severity] = {"error": "error", "warning": "warning", "trace": "information",
                                    "information": "information", "info": "information"}

_AXIOMS = re.compile(r"^'(?P<name>.+)' depends on axioms: \[(?P<axioms>.*)\]\s*$", re.DOTALL)
_NO_AXIOMS = re.compile(r"^'(?P<name>.+)' does not depend on any axioms\s*$")
_SORRY_WARNING = re.compile(r"declaration uses ['`]sorry['`]")


def _pos(obj: Any) -> tuple[int | None, int | None]:
    if not isinstance(obj, dict):
        return None, None
    line, col = obj.get("line"), obj.get("column")
    return (line if isinstance(line, int) else None, col if isinstance(col, int) else None)


def message_from_json(obj: dict, *, header_lines: int = 0) -> Message:
    """One Lean message object -> Message, with lines shifted so the code starts at line 1.

    Messages that point into the `header_lines` lines put before the code keep their own
    line and are flagged `in_header`.
    """
    severity = _SEVERITIES.get(str(obj.get("severity", "error")).lower(), "error")
    text = obj.get("data", obj.get("message", ""))
    if not isinstance(text, str):
        text = json.dumps(text)
    line, col = _pos(obj.get("pos"))
    end_line, end_col = _pos(obj.get("endPos"))
    line = 1 if line is None else line
    col = 0 if col is None else col
    in_header = header_lines > 0 and line <= header_lines
    if not in_header:
        line -= header_lines
        end_line = None if end_line is None else end_line - header_lines
    return Message(severity=severity, line=line, column=col, text=text,
                   end_line=end_line, end_column=end_col, in_header=in_header)


def parse_json_lines(stdout: str, *, header_lines: int = 0) -> tuple[list[Message], list[str]]:
    """Parse `lean --json` output. Returns the messages and any lines that were not JSON."""
    messages: list[Message] = []
    other: list[str] = []
    for raw in stdout.splitlines():
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except json.JSONDecodeError:
            other.append(raw)
            continue
        if isinstance(obj, dict) and ("data" in obj or "message" in obj) and "severity" in obj:
            messages.append(message_from_json(obj, header_lines=header_lines))
        else:
            other.append(raw)
    return messages, other


def _split_axiom_list(text: str) -> list[str]:
    return [a.strip().strip("«»") for a in text.replace("\n", " ").split(",") if a.strip()]


def axioms_from_messages(messages: Iterable[Message]) -> dict[str, list[str]]:
    """What `#print axioms` reported: declaration -> axioms (empty list when none)."""
    found: dict[str, list[str]] = {}
    for m in messages:
        if m.severity != "information":
            continue
        text = m.text.strip()
        if match := _AXIOMS.match(text):
            found[match["name"]] = _split_axiom_list(match["axioms"])
        elif match := _NO_AXIOMS.match(text):
            found[match["name"]] = []
    return found


def uses_sorry(messages: Iterable[Message], axioms: dict[str, list[str]]) -> bool:
    return any(m.severity == "warning" and _SORRY_WARNING.search(m.text) for m in messages) or any(
        "sorryAx" in axs for axs in axioms.values())


_EVAL_LINE = re.compile(r"^[ \t]*#eval!?\b", re.MULTILINE)


def eval_outputs(code: str, messages: Iterable[Message]) -> list[EvalOutput]:
    """Information messages that sit on the line of an `#eval` command, in order."""
    if "#eval" not in code:  # no command at all: spare lexing the code (every check comes here)
        return []
    from solve_in_lean.lean.source import mask_comments_and_strings

    masked = mask_comments_and_strings(code)
    eval_lines = {masked.count("\n", 0, m.start()) + 1 for m in _EVAL_LINE.finditer(masked)}
    return [EvalOutput(line=m.line, text=m.text.rstrip("\n")) for m in messages
            if m.severity == "information" and not m.in_header and m.line in eval_lines]


_INTERNAL_EXCEPTION = re.compile(r"^internal exception #\d+\s*$")


def fold_internal_exceptions(messages: list[Message]) -> list[Message]:
    """Drop Lean's bare "internal exception #N" where it follows a real error of the same
    declaration (the prelude-only kernel dialect has no `sorry` to recover with, so a failed
    declaration also aborts with this); a lone one is explained instead of dropped."""
    errors = [m for m in messages if m.severity == "error" and not _INTERNAL_EXCEPTION.match(m.text.strip())]
    out: list[Message] = []
    for m in messages:
        if m.severity == "error" and _INTERNAL_EXCEPTION.match(m.text.strip()):
            end = m.end_line if m.end_line is not None else m.line
            if any(m.line <= e.line <= end or e.line == m.line for e in errors):
                continue
            m = Message(m.severity, m.line, m.column,
                        f"{m.text.strip()}: Lean aborted this declaration without saying why "
                        "(an earlier error in it, or a feature the checking Lean lacks)",
                        m.end_line, m.end_column, m.in_header)
        out.append(m)
    return out


def declarations_from_ilean(text: str, header_lines: int = 0) -> dict[str, int] | None:
    """Declarations a `lean -i FILE` run recorded for its own module: name -> line (from 1) in
    the code after `header_lines` header lines; those in the header are left out. Joins the
    `decls` table (Lean 4.2x+; declarations with source ranges) and the constants of this module
    with a definition site among `references` (which also lists `where` helpers such as
    `t.aux`). None when the text is not an .ilean (the caller then has no list from Lean)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("references", data.get("decls")), dict):
        return None
    found: dict[str, int] = {}
    for name, rng in (data.get("decls") or {}).items():
        if isinstance(rng, list) and rng and isinstance(rng[0], int):
            found[name] = rng[0] + 1
    module = data.get("module")
    for key, info in (data.get("references") or {}).items():
        try:
            ident = json.loads(key)["c"]
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # not a constant (a local variable, say)
        definition = info.get("definition") if isinstance(info, dict) else None
        if isinstance(ident, dict) and ident.get("m") == module and isinstance(definition, list) \
                and definition and isinstance(definition[0], int):
            found.setdefault(str(ident.get("n")), definition[0] + 1)
    return {name: line - header_lines for name, line in found.items() if line > header_lines}
