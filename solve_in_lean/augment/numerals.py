"""Where the numbers are: plain integers in English, numerals in Lean (decimal literals, and the
prelude dialect's constructor numerals `N.zero`..`N.four`, `N.add N.four (…)`).

The alignment is by value, as the faithfulness coverage check aligns them
(autoformalize.faithfulness.quantities): an English number may be changed only when every
mention of its value is a plain integer (no `twice`, `half`, percent, money, dozen or fraction
reads as that value) and Lean writes that value as a numeral somewhere. A prelude numeral
above four is also a sum (`N.add N.four N.three` is 7, and 4 + 3): `align` reads each such
numeral both ways and takes the reading that matches how often the English mentions each
number, refusing the problem when two readings fit.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

from autoformalize.faithfulness import quantities
from solve_in_lean.world.curriculum import numeral

_PLAIN = re.compile(r"(?<![\w.$/])(?<!\d,)(\d+)(?!\.\d|,\d{3}|[\w%/])")
"""An integer written plainly: not part of a decimal, a grouped number, a word, money or a fraction."""
_DECIMAL = re.compile(r"(?<![\w.'₀-₉])(\d+)(?![\w'.₀-₉])")
_SMALL = {"N.zero": 0, "N.one": 1, "N.two": 2, "N.three": 3, "N.four": 4}
_SMALL_AT = re.compile(r"N\.(zero|one|two|three|four)(?![\w.'])")
_ADD_FOUR = "N.add N.four "


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    value: int
    dialect: str
    """"decimal" (`12`) or "prelude" (`N.add N.four (N.add N.four N.four)`)."""


def english_numbers(text: str) -> tuple[list[Span], set[int]]:
    """(plain integer mentions, values that must stay as they are because some quantity that is not a
    plain integer reads as them: `twice` 2, `half` 1/2 and 2, `3 dozen` 3 and 12 and 36, `$5`...)."""
    spans = [Span(m.start(1), m.end(1), int(m.group(1)), "english") for m in _PLAIN.finditer(text)]
    plain_texts = {str(s.value) for s in spans}
    fixed: set[int] = set()
    for q in quantities(text):
        if q.text in plain_texts and len(q.alternatives) == 1:
            continue
        fixed |= {int(v) for alt in q.alternatives for v in alt if v == int(v)}
        fixed |= {v.denominator for alt in q.alternatives for v in alt if v.denominator > 1}
    return spans, fixed


def lean_numerals(code: str) -> list[Span]:
    """Every numeral in Lean text, nested ones included (a prelude numeral above four holds smaller ones)."""
    found = [Span(m.start(1), m.end(1), int(m.group(1)), "decimal") for m in _DECIMAL.finditer(code)]
    for m in _SMALL_AT.finditer(code):
        found.append(Span(m.start(), m.end(), _SMALL[m.group(0)], "prelude"))
    for m in re.finditer(re.escape(_ADD_FOUR), code):
        parsed = _prelude_at(code, m.start())
        if parsed is not None:
            found.append(Span(m.start(), parsed[1], parsed[0], "prelude"))
    return sorted(set(found), key=lambda s: (s.start, -s.end))


def _prelude_at(code: str, i: int) -> tuple[int, int] | None:
    """(value, end) of the canonical prelude numeral starting at i, else None."""
    m = _SMALL_AT.match(code, i)
    if m:
        return _SMALL[m.group(0)], m.end()
    if code.startswith(_ADD_FOUR, i):
        j = i + len(_ADD_FOUR)
        if code.startswith("(", j):
            inner = _prelude_at(code, j + 1)
            if inner is not None and code.startswith(")", inner[1]):
                return 4 + inner[0], inner[1] + 1
            return None
        inner = _prelude_at(code, j)
        if inner is not None and inner[0] <= 4:  # unbracketed, only a small numeral can follow
            return 4 + inner[0], inner[1]
    return None


MAX_READINGS = 4096
"""Readings of a statement's numerals tried before the alignment is called ambiguous."""


def _units(code: str) -> list[tuple[str, list[list[Span]]]]:
    """The outermost numerals of `code`, each as (its text, its readings). A prelude numeral above four,
    `N.add N.four X`, reads as itself or as a 4 and the readings of X, because the same text is the
    number 7 and the sum 4 + 3; every other numeral has one reading."""
    spans = lean_numerals(code)
    top = [s for s in spans if not any(o != s and o.start <= s.start and s.end <= o.end for o in spans)]
    longest: dict[int, Span] = {}
    for s in spans:
        if s.start not in longest or s.end - s.start > longest[s.start].end - longest[s.start].start:
            longest[s.start] = s
    units = []
    for t in top:
        alts, fours, cur = [[t]], [], t
        while cur.dialect == "prelude" and code.startswith(_ADD_FOUR, cur.start):
            four_at = cur.start + len("N.add ")
            fours = fours + [Span(four_at, four_at + len("N.four"), 4, "prelude")]
            j = cur.start + len(_ADD_FOUR)
            inner = longest.get(j + 1 if code.startswith("(", j) else j)
            if inner is None:
                break
            alts.append(fours + [inner])
            cur = inner
        units.append((code[t.start:t.end], alts))
    return units


def follow(code: str, values: set[int], readings: dict[str, int]) -> list[Span]:
    """The numerals of `values` in `code` (the program of a statement), each numeral text read as
    `align` read it in the statement; numerals the statement does not have, as themselves."""
    atoms = [s for text, alts in _units(code) for s in alts[min(readings.get(text, 0), len(alts) - 1)]]
    return [s for s in atoms if s.value in values]


def align(code: str, values: set[int], counts: dict[int, int]) -> tuple[list[Span], dict[str, int]] | str:
    """The numerals of `values` to replace in a statement, and the reading chosen for each numeral
    text: the reading whose counts of the English numbers come closest to `counts` (how often the
    English mentions each). It must be the only closest one and read every copy of a text alike,
    else the alignment is ambiguous and the reason is returned."""
    units = _units(code)
    choices = [range(len(alts)) if any(s.value in counts for a in alts[1:] for s in a) else range(1)
               for _, alts in units]
    total = 1
    for c in choices:
        total *= len(c)
    if total > MAX_READINGS:
        return f"the numerals can be read in {total} ways; too many to align"
    best: list[tuple[int, ...]] = []
    best_cost = None
    for combo in itertools.product(*choices):
        found: dict[int, int] = {}
        for (_, alts), d in zip(units, combo):
            for s in alts[d]:
                found[s.value] = found.get(s.value, 0) + 1
        cost = sum(abs(found.get(v, 0) - n) for v, n in counts.items())
        if best_cost is None or cost < best_cost:
            best, best_cost = [combo], cost
        elif cost == best_cost:
            best.append(combo)
    chosen: dict[str, set[int]] = {}
    for combo in best:
        for (text, _), d in zip(units, combo):
            chosen.setdefault(text, set()).add(d)
    if any(len(ds) > 1 for ds in chosen.values()):
        return "a Lean numeral can be read as one English number or as a sum of others; ambiguous"
    combo = best[0]
    atoms = [s for (_, alts), d in zip(units, combo) for s in alts[d]]
    return [s for s in atoms if s.value in values], {text: next(iter(ds)) for text, ds in chosen.items()}


def write(value: int, dialect: str) -> str:
    """A value as a numeral of the dialect it replaces (prelude numerals above four in brackets)."""
    if dialect == "prelude":
        text = numeral(value)
        return text if value <= 4 else f"({text})"
    return str(value)


def substitute(text: str, spans: list[Span], changes: dict[int, int]) -> str:
    """`text` with every span's value replaced by its new value, written in the span's dialect."""
    out, last = [], 0
    for s in spans:
        out.append(text[last:s.start])
        new = write(changes[s.value], s.dialect)
        if new.startswith("(") and text[:s.start].endswith("(") and text[s.end:].startswith(")"):
            new = new[1:-1]  # already in brackets
        out.append(new)
        last = s.end
    out.append(text[last:])
    return "".join(out)
