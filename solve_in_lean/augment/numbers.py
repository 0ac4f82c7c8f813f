"""The `numbers` mode: the same problem with other quantities, and an answer Lean certifies.

A source problem brings its English, its compute statement and a program Lean verified for it
(our JSONL format's `proof`, or a `lean-solve solve` record's `lean_code`). The numbers of the
English that are plain integers and appear as Lean numerals (numerals.py) get new values, the
same map in all three texts, and the changed program is verified against the changed statement
by the full rules of verify.py. The answer of a kept variant is what Lean computed for it; a
variant whose program no longer verifies (an inequality or exact division that no longer holds,
an answer written out as a constant) is dropped with Lean's reasons.

New values keep the order of all the problem's quantities (the ones changed and the ones kept),
so "has 9, gives away 4" never becomes "has 3, gives away 8", and never collide with another
number of the problem, so each new number is still read back to exactly one old one.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from autoformalize.faithfulness import cheap_checks
from autoformalize.problem import FormalProblem
from solve_in_lean.answers import parse_lean_value
from solve_in_lean.augment.numerals import Span, align, english_numbers, follow, lean_numerals, substitute
from solve_in_lean.lean.base import LeanChecker
from solve_in_lean.solve import target_of
from solve_in_lean.verifier.values import prelude_value
from solve_in_lean.verify import Policy, VerifyRequest, verify_many

MODE = "numbers"
DRAWS_PER_VARIANT = 20
"""Random draws tried per variant asked for before settling for fewer distinct ones."""


@dataclass
class Source:
    """A problem that can be varied: English, a compute statement, and its verified program."""

    id: str
    question: str
    formal: FormalProblem
    program: str


def source_of(item: dict[str, Any]) -> Source | str:
    """The problem as a Source, or one sentence saying why it cannot be varied."""
    question = item.get("question") or ""
    formal = item.get("formal")
    meta = item.get("meta") or {}
    program = next((p for p in (item.get("proof"), meta.get("proof"), item.get("lean_code"), meta.get("lean_code"))
                    if isinstance(p, str) and p.strip()), None)
    if not question.strip():
        return "no English problem text"
    if not isinstance(formal, dict) or formal.get("kind") != "compute":
        return "no compute statement (`formal` with kind compute)"
    if program is None:
        return "no verified Lean program (`proof` or `lean_code`) to re-verify with new numbers"
    try:
        fp = FormalProblem.from_dict({"id": str(item["id"]), "source": question, **formal})
    except ValueError as e:
        return f"the statement cannot be read: {e}"
    if not fp.answer_name:
        return "the statement has no answer definition to certify"
    return Source(str(item["id"]), question, fp, program)


@dataclass
class Plan:
    """Which values may change, and where each text writes them."""

    values: list[int]
    pinned: set[int]
    """Numbers of the English that stay: new values keep their order with these and never equal them."""
    avoid: set[int]
    """Every number that stays (English or Lean): no new value equals one, so each still reads back to one."""
    spans: dict[str, list[Span]]
    """"question", "statement", "program" -> the spans replaced."""


def plan(src: Source) -> Plan | str:
    """Align the English numbers with Lean numerals; or say why nothing can change."""
    english, fixed = english_numbers(src.question)
    counts = Counter(s.value for s in english)
    candidates = {v for v in counts if v > 0 and v not in fixed}
    aligned = align(src.formal.statement, candidates, counts)
    if isinstance(aligned, str):
        return aligned
    in_statement, readings = aligned
    values = {s.value for s in in_statement}  # a value only ever inside a larger numeral cannot change alone
    if not values:
        return ("no number of the English appears as a Lean numeral of the statement as a plain integer "
                "(words like twice/half, percents and money stay as they are)")
    pinned = (set(counts) | fixed) - values
    lean = {s.value for s in lean_numerals(src.formal.statement) + lean_numerals(src.program)}
    return Plan(sorted(values), pinned, (pinned | lean) - values,
                {"question": [s for s in english if s.value in values], "statement": in_statement,
                 "program": follow(src.program, values, readings)})


def draw(p: Plan, rng: random.Random) -> dict[int, int] | None:
    """New values for the plan's: increasing with the old order (the English numbers that stay keep
    their neighbours), each in [2, max(v + 5, 2v)] (1 only for a 1), none equal to a number that stays."""
    points = sorted(set(p.values) | p.pinned)
    changes: dict[int, int] = {}
    prev = 0
    for i, v in enumerate(points):
        if v not in p.values:
            prev = v
            continue
        above = next((w for w in points[i + 1:] if w in p.pinned), None)
        hi = max(v + 5, 2 * v) if above is None else above - 1
        lo = max(prev + 1, 1 if v == 1 else 2)
        choices = [x for x in range(lo, hi + 1) if x not in p.avoid]
        if not choices:
            return None
        changes[v] = rng.choice(choices)
        prev = changes[v]
    return changes if any(changes[v] != v for v in changes) else None


def variants(src: Source, p: Plan, k: int, seed: int = 0) -> list[dict[int, int]]:
    """Up to `k` distinct value maps, the same for the same source, k and seed on every machine."""
    rng = random.Random(f"{seed}:{src.id}")
    found: list[dict[int, int]] = []
    for _ in range(DRAWS_PER_VARIANT * k):
        if len(found) == k:
            break
        changes = draw(p, rng)
        if changes is not None and changes not in found:
            found.append(changes)
    return found


def augment(item: dict[str, Any], checker: LeanChecker, *, k: int, header: str, seed: int = 0,
            policy: Policy | None = None, timeout_s: float | None = None) -> dict[str, Any]:
    """Up to `k` Lean-certified variants of one problem: {"problems": rows, "dropped": why, "skipped"}."""
    src = source_of(item)
    if isinstance(src, str):
        return {"mode": MODE, "source_id": str(item["id"]), "problems": [], "dropped": [], "skipped": src}
    p = plan(src)
    if isinstance(p, str):
        return {"mode": MODE, "source_id": src.id, "problems": [], "dropped": [], "skipped": p}
    maps = variants(src, p, k, seed)
    header = src.formal.header or header
    texts = [{part: substitute(text, p.spans[part], m) for part, text in
              (("question", src.question), ("statement", src.formal.statement), ("program", src.program))}
             for m in maps]
    problems = [FormalProblem(id=f"{src.id}.numbers.{i}", source=t["question"], kind="compute",
                              statement=t["statement"], header=src.formal.header) for i, t in enumerate(texts)]
    verdicts = verify_many([VerifyRequest(t["program"], header, target_of(fp), fp.answer_name)
                            for t, fp in zip(texts, problems)], checker, policy=policy, timeout_s=timeout_s)
    coverage = cheap_checks(src.formal).coverage
    kept, dropped = [], []
    for i, (m, t, fp, v) in enumerate(zip(maps, texts, problems, verdicts)):
        changes = {str(old): new for old, new in m.items() if new != old}
        why = list(v.reasons) if not v.verified else []
        if v.verified and v.answer is None:
            why = ["Lean verified the program but printed no answer to certify"]
        if v.verified and cheap_checks(fp).coverage < coverage:
            why = ["a changed number of the English is no longer found in the statement"]
        if v.verified and (inexact := _inexact(t["statement"] + "\n" + t["program"])) and not _inexact(
                src.formal.statement + "\n" + src.program):
            why = [f"a division of numerals is no longer exact ({inexact})"]
        if v.verified and src.formal.answer_type in ("ℕ", "ℤ") and _floored(t["statement"] + "\n" + t["program"]):
            why = ["the statement divides a variable in ℕ or ℤ, which Lean floors: with new numbers the "
                   "division may leave a remainder the English does not allow, and Lean cannot say so"]
        if v.verified and _whole(item.get("answer")) and v.answer and not _whole(v.answer):
            why = [f"the answer is no longer a whole number ({' '.join(v.answer.split())})"]
        if why:
            dropped.append({"variant": i, "changes": changes, "reason": "; ".join(why)})
            continue
        kept.append(_row(src, fp, t, changes, v))
    return {"mode": MODE, "source_id": src.id, "problems": kept, "dropped": dropped}


_DIVISION = re.compile(r"(?<![\w.])(\d+)\s*/\s*(\d+)(?![\w.])")


def _inexact(text: str) -> str | None:
    """The first division of two numerals that leaves a remainder (Lean's ℕ division would floor it)."""
    for m in _DIVISION.finditer(text):
        a, b = int(m.group(1)), int(m.group(2))
        if b and a % b:
            return m.group(0)
    return None


_COMMENT = re.compile(r"/-.*?-/|--[^\n]*", re.S)
_LEFT = re.compile(r"([\w.'₀-₉]+|\))\s*$")
_RIGHT = re.compile(r"\s*([\w.'₀-₉]+|\()")


def _floored(text: str) -> bool:
    """Some division in the text has an operand that is not a numeral (its exactness is unknown)."""
    text = _COMMENT.sub(" ", text)
    for m in re.finditer(r"(?<!/)/(?!/)", text):
        left, right = _LEFT.search(text[:m.start()]), _RIGHT.match(text, m.end())
        if left and right and not (left.group(1).isdigit() and right.group(1).isdigit()):
            return True
    return False


def _whole(answer: Any) -> bool:
    """The answer reads as a whole number (a decimal integer, or a prelude term)."""
    if not isinstance(answer, str):
        return False
    text = " ".join(answer.split())
    value = parse_lean_value(text) or text
    return bool(re.fullmatch(r"-?\d+", value)) or prelude_value(text) is not None


def _row(src: Source, fp: FormalProblem, texts: dict[str, str], changes: dict[str, int], verdict: Any) -> dict:
    raw = " ".join(verdict.answer.split())
    formal = {"kind": "compute", "statement": fp.statement}
    if src.formal.header:
        formal["header"] = src.formal.header
    row: dict[str, Any] = {"id": fp.id, "question": fp.source, "answer": parse_lean_value(raw) or raw,
                           "formal": formal, "proof": texts["program"]}
    if (value := prelude_value(raw)) is not None:
        row["value"] = value
    check = verdict.check
    row["provenance"] = {
        "source_id": src.id, "mode": MODE, "changes": changes,
        "certified": "Lean verified the changed program against the changed statement; the answer is what "
                     "Lean computed for it",
        "lean": {"verified": True, "answer": raw, "backend": check.backend, "lean_version": check.lean_version,
                 "axioms": check.axioms, "elapsed_s": round(check.elapsed_s, 3)}}
    return row
