"""What a repair prompt tells the model: Lean's errors marked in its code, with the goal at each.

Goedel-Prover-V2 wraps the failing span in `<error></error>` and quotes the message; Kimina's
error-fixing rounds also show the goal state where the error happened. Where the REPL's info tree
gave the goal at an error (lean/goals.py), that goal is shown; otherwise it is read from the message, where
Lean writes it for the errors that have one (`unsolved goals`, a failed tactic such as `linarith failed`,
a `type mismatch` with its expected type): the lines of the message from the first hypothesis or `⊢` on.
"""

from __future__ import annotations

from typing import Any, Mapping

from solve_in_lean.lean.goals import goal_for

MAX_ERRORS = 5
"""Errors quoted: the first ones matter, the rest are usually their consequences."""
MAX_MESSAGE_CHARS = 1500


def goal_at(message: str) -> str | None:
    """The goal state a Lean error message carries, or None (its first line is the error itself).
    A type mismatch's goal is the type the term was expected to have."""
    lines = message.split("\n")
    for i, line in enumerate(lines[:-1]):
        if line.strip().startswith("but is expected to have type"):
            return "⊢ " + lines[i + 1].strip()
    for i, line in enumerate(lines[1:], start=1):
        stripped = line.strip()
        if stripped.startswith("⊢") or (" : " in stripped and not stripped.endswith(":")
                                         and any(ln.strip().startswith("⊢") for ln in lines[i:])):
            return "\n".join(lines[i:]).strip()
    return None


def _marked_line(code_lines: list[str], line: int, column: int, end_line: int | None, end_column: int | None) -> str:
    """The code line of an error with its span wrapped in <error></error>."""
    if not 1 <= line <= len(code_lines):
        return ""
    text = code_lines[line - 1]
    start = min(max(column, 0), len(text))
    stop = end_column if end_line == line and end_column is not None and end_column > start else len(text)
    return f"{text[:start]}<error>{text[start:stop]}</error>{text[stop:]}"


def lean_feedback(code: str, verdict: Any, goals: Mapping[str, str] | None = None) -> str:
    """The feedback on one rejected proof: each error with its line marked and the goal at it, or
    the verifier's reasons when Lean reported no error (sorry, a forbidden axiom, wrong statement).
    `goals`: the info tree's goal at each error position of `code` (goals.goals_at_errors); the check's
    own `goals`, when its backend keeps them, serve otherwise; the message text last."""
    goals = goals if goals is not None else getattr(verdict.check, "goals", None)
    lines = code.split("\n")
    errors = [m for m in verdict.check.messages if m.severity == "error" and not m.in_header][:MAX_ERRORS]
    parts = []
    for m in errors:
        text = m.text if len(m.text) <= MAX_MESSAGE_CHARS else m.text[:MAX_MESSAGE_CHARS] + " …"
        block = [f"Error at line {m.line}, column {m.column}:"]
        if marked := _marked_line(lines, m.line, m.column, m.end_line, m.end_column):
            block.append(marked)
        block.append(text)
        if goal := goal_for(goals, m.line, m.column, m.text) or goal_at(text):
            block.append(f"Goal at the error:\n{goal}")
        parts.append("\n".join(block))
    if not parts:
        parts = [f"- {r}" for r in verdict.reasons[:MAX_ERRORS]] or ["- Lean did not accept the proof."]
    return "\n\n".join(parts)
