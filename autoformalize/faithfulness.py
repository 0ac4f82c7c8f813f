"""Does a statement say what the English says? Cheap checks, the judge's verdict, one score.

Cheap checks catch the common ways a statement that elaborates is still wrong: a number of
the problem is missing (forgotten quantity, wrong percentage), the asked quantity is not
the one formalized (the answer hole is absent from the conclusion, or assumed in a
hypothesis), or the conclusion is trivially `True`. The judge is a model reading the
back-translation next to the original, as the Lean Workbook pipeline does.

Ranking score of a candidate (0 when it does not elaborate):

    score = 0.6 * judge + 0.25 * coverage + 0.15 * asked

judge: 1 faithful, 0 not, 0.5 when there is no verdict (not judged or unreadable);
coverage: fraction of the problem's quantities found in the statement (1 if it has none);
asked: 1 when the asked quantity is formalized and the conclusion is not trivial, else 0.
The judge weighs most because it reads meaning; the cheap checks separate candidates the
judge cannot tell apart, and stand in for it when it gives no verdict.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any

from autoformalize.problem import FormalProblem

WEIGHTS = {"judge": 0.6, "coverage": 0.25, "asked": 0.15}

_WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
          "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
          "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
          "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_MULTIPLES = {"twice": 2, "double": 2, "doubled": 2, "triple": 3, "tripled": 3, "thrice": 3}
_PARTS = {"half": 2, "halves": 2, "quarter": 4, "quarters": 4}
_SCALES = {"dozen": 12, "dozens": 12, "hundred": 100, "thousand": 1000, "million": 1_000_000}

_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+"
_WORD = "|".join(sorted(_WORDS, key=len, reverse=True))
_ENGLISH = re.compile(
    rf"(?P<money>\$\s?)?(?<![\w.])(?P<num>{_NUM}|(?:{_WORD})(?:-(?:{_WORD}))?)(?![\w])"
    rf"(?:\s*/\s*(?P<den>\d+))?"
    rf"(?:\s*(?P<pct>%|percent\b|per cent\b))?"
    rf"(?:\s+(?P<scale>{'|'.join(_SCALES)})\b)?"
    rf"|\b(?P<mult>{'|'.join(_MULTIPLES)})\b|\b(?P<part>{'|'.join(_PARTS)})\b",
    re.IGNORECASE)
_LEAN_NUM = re.compile(r"(?<![\w.'₀-₉])(\d+(?:\.\d+)?)(?![\w'])")
_LEAN_DIV = re.compile(r"(\d+(?:\.\d+)?)\s*(?::\s*[^()]*?)?\)?\s*/\s*\(?\s*(\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class Quantity:
    """A number in the English and the ways it may show up in Lean: any one alternative,
    all of whose values appear among the statement's numbers, counts as present."""

    text: str
    alternatives: tuple[tuple[Fraction, ...], ...]


def _number(token: str) -> Fraction:
    token = token.lower().replace(",", "")
    if token[0].isdigit() or token[0] == ".":
        return Fraction(token)
    return Fraction(sum(_WORDS[w] for w in token.split("-")))


def quantities(english: str) -> list[Quantity]:
    """The quantities of a problem: numbers, decimals, fractions, percents, money, small
    written numbers, and words like `twice` and `half`; each counted once."""
    seen: dict[tuple, Quantity] = {}
    for m in _ENGLISH.finditer(english):
        text = m.group(0).strip()
        if m.group("mult"):
            alts: tuple[tuple[Fraction, ...], ...] = ((Fraction(_MULTIPLES[m.group("mult").lower()]),),)
        elif m.group("part"):
            d = _PARTS[m.group("part").lower()]
            alts = ((Fraction(1, d),), (Fraction(d),))
        else:
            n = _number(m.group("num"))
            if m.group("den"):
                den = Fraction(m.group("den"))
                alts = ((n / den,), (n, den)) if den else ((n,),)
            elif m.group("pct"):
                alts = ((n,), (n / 100,))
            elif m.group("scale"):
                s = _SCALES[m.group("scale").lower()]
                alts = ((n * s,), (n, Fraction(s)))
            elif m.group("money"):
                alts = ((n,), (n * 100,))  # dollars, or cents
            else:
                alts = ((n,),)
        seen.setdefault(alts, Quantity(text, alts))
    return list(seen.values())


def lean_numbers(statement: str) -> set[Fraction]:
    """Every numeral in a Lean statement, plus the value of each `a / b` of numerals, plus each
    numeral of the prelude dialect's naturals (examples/prelude.lean: `N.two`, and above four
    `N.add N.four (…)`), read whole: `N.add N.four N.two` is the problem's 6, not a 4 and a 2."""
    values = {Fraction(x) for x in _LEAN_NUM.findall(statement)}
    for a, b in _LEAN_DIV.findall(statement):
        if Fraction(b):
            values.add(Fraction(a) / Fraction(b))
    tokens, i = _PRELUDE_TOKEN.findall(statement), 0
    while i < len(tokens):
        found = _prelude_numeral(tokens, i)
        values |= {Fraction(found[0])} if found else set()
        i = found[1] if found else i + 1
    return values


_PRELUDE_SMALL = {"N.zero": 0, "N.one": 1, "N.two": 2, "N.three": 3, "N.four": 4}
_PRELUDE_TOKEN = re.compile(r"[()]|[^\s()]+")


def _prelude_numeral(tokens: list[str], i: int) -> tuple[int, int] | None:
    """(value, next index) of the prelude numeral starting at tokens[i], or None."""
    if i >= len(tokens):
        return None
    if tokens[i] == "(":
        inner = _prelude_numeral(tokens, i + 1)
        return (inner[0], inner[1] + 1) if inner and inner[1] < len(tokens) and tokens[inner[1]] == ")" else None
    if tokens[i] in _PRELUDE_SMALL:
        return _PRELUDE_SMALL[tokens[i]], i + 1
    if tokens[i:i + 2] == ["N.add", "N.four"] and (rest := _prelude_numeral(tokens, i + 2)):
        return 4 + rest[0], rest[1]
    return None


@dataclass
class CheapChecks:
    coverage: float
    """Fraction of the problem's quantities present in the statement (1.0 when none)."""
    missing: list[str] = field(default_factory=list)
    answer_in_conclusion: bool | None = None
    """compute: the answer hole is in the conclusion; None for prove problems."""
    answer_assumed: bool = False
    """compute: a hypothesis mentions the answer hole, so the statement assumes what it asks."""
    trivial_conclusion: bool = False

    @property
    def asked(self) -> bool:
        """The asked quantity is the one formalized, and there is something to show."""
        return self.answer_in_conclusion is not False and not self.answer_assumed and not self.trivial_conclusion

    @property
    def passed(self) -> bool:
        return self.coverage == 1.0 and self.asked

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "asked": self.asked, "passed": self.passed}


def cheap_checks(problem: FormalProblem) -> CheapChecks:
    """Check the statement (binders and conclusion, not the header) against its English source."""
    parts = problem.theorem()
    body = f"{parts.binders} : {parts.conclusion}"
    present = lean_numbers(body)
    qs = quantities(problem.source)
    missing = [q.text for q in qs if not any(all(v in present for v in alt) for alt in q.alternatives)]
    coverage = 1.0 if not qs else (len(qs) - len(missing)) / len(qs)
    in_concl = assumed = None
    if problem.kind == "compute" and problem.answer_name:
        ident = re.compile(rf"(?<![\w.']){re.escape(problem.answer_name)}(?![\w'])")
        in_concl = bool(ident.search(parts.conclusion))
        assumed = bool(ident.search(parts.binders))
    trivial = parts.conclusion.strip().strip("()").strip() == "True"
    return CheapChecks(round(coverage, 4), missing, in_concl, bool(assumed), trivial)


_VERDICT = re.compile(r"verdict\s*[:=\-]?\s*[*_`\"']*\s*(yes|no|faithful|unfaithful|not faithful)\b", re.I)
_LAST_WORD = re.compile(r"^[*_`\"'\s]*(yes|no)[.!*_`\"'\s]*$", re.I)


def parse_verdict(text: str) -> bool | None:
    """The judge's answer: the last `Verdict: YES/NO` (or a last line that is just yes/no)."""
    found = _VERDICT.findall(text or "")
    if found:
        return found[-1].lower() in ("yes", "faithful")
    lines = [ln for ln in (text or "").strip().splitlines() if ln.strip()]
    if lines and (m := _LAST_WORD.match(lines[-1])):
        return m.group(1).lower() == "yes"
    return None


def score(elaborated: bool, verdict: bool | None, checks: CheapChecks | None) -> float:
    """The ranking score documented at the top of this module."""
    if not elaborated or checks is None:
        return 0.0
    judge = 0.5 if verdict is None else float(verdict)
    total = (WEIGHTS["judge"] * judge + WEIGHTS["coverage"] * checks.coverage
             + WEIGHTS["asked"] * float(checks.asked))
    return round(total, 4)
