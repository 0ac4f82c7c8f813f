"""The goal state at each Lean error, from the REPL's info tree (Kimina's and Goedel-Prover-V2's repair
prompts show it); `feedback.goal_at` reads it from the message text where no info tree is at hand.

The REPL answers a command sent with `infotree` set (lean-interact's `CommandOptions.infotree`) with the
elaboration info tree of every command; its tactic nodes carry the goals before each tactic and the
source range the tactic covers. The goal at an error is the `goals_before` of the innermost tactic whose
range holds the error's position: the state the failing tactic was applied to. lean-interact's
`all_tactics` list (each tactic with its range and the goals before it) is read the same way when a
response carries it instead.

Used by the repl backend (`ReplChecker(goals=True)`, which `settings.make_checker` sets when a run has
repair rounds): it sends `Command(..., **command_options())` and keeps `goals_at_errors(response, shift)`
as the check's `goals`; the verifier carries them over and `presets/feedback.lean_feedback` prefers
them to the text of the message.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

INFOTREE = "original"
"""Tactic nodes that stand for source text (lean-interact `InfoTreeOptions.original`): each has a range
in the submitted code; the synthetic ones a macro made are dropped by the REPL already."""


def command_options() -> dict[str, Any]:
    """The keyword arguments that make a lean-interact `Command` bring the info tree back."""
    return {"infotree": INFOTREE}


def position_key(line: int, column: int) -> str:
    """How a position keys the goals map (JSON objects take only string keys)."""
    return f"{line}:{column}"


def message_key(column: int, text: str) -> str:
    """A second key, by the error's column and text: the verifier moves an error's line back into the
    submitted code's numbering (it checks the code after a target statement of its own), so the line a
    backend saw may not be the line a repair prompt shows."""
    return f"{column}|{text}"


def _spans(response: Any) -> Iterable[tuple[tuple[int, int], tuple[int, int], list[str]]]:
    """(start, end, goals before) of every tactic the response describes, info tree and tactic list."""
    for tree in getattr(response, "infotree", None) or []:
        for sub in tree.dfs_walk():
            node = sub.node
            goals = getattr(node, "goals_before", None)
            if sub.kind == "TacticInfo" and goals and not node.stx.range.synthetic:
                r = node.stx.range
                yield (r.start.line, r.start.column), (r.finish.line, r.finish.column), list(goals)
    for tactic in getattr(response, "tactics", None) or []:
        if tactic.goals and tactic.goals.strip():
            yield ((tactic.start_pos.line, tactic.start_pos.column), (tactic.end_pos.line, tactic.end_pos.column),
                   [tactic.goals])


def goals_at_errors(response: Any, shift: int = 0) -> dict[str, str]:
    """For each error of a lean-interact `CommandResponse`: the goal state it happened in, keyed by the
    error's position (`position_key`, lines moved down by `shift` as the checker moves its messages).
    Errors outside every tactic (a term proof, a declaration header) get no entry."""
    spans = list(_spans(response))
    out: dict[str, str] = {}
    for m in getattr(response, "messages", None) or []:
        if m.severity != "error":
            continue
        at = (m.start_pos.line, m.start_pos.column)
        holding = [(start, end, goals) for start, end, goals in spans if start <= at <= end]
        if not holding:
            continue
        _, _, goals = max(holding, key=lambda s: (s[0], (-s[1][0], -s[1][1])))  # innermost: latest start, earliest end
        goal = "\n\n".join(g.strip() for g in goals)
        out[position_key(at[0] + shift, at[1])] = goal
        out.setdefault(message_key(at[1], m.data), goal)
    return out


def goal_for(goals: Mapping[str, str] | None, line: int, column: int, text: str = "") -> str | None:
    """The info tree's goal at an error (by its position, else by its column and text), if the check
    brought one."""
    goals = goals or {}
    return goals.get(position_key(line, column)) or goals.get(message_key(column, text))
