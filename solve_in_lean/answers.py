r"""Parse, normalize and compare final answers: model text, GSM8K numbers, MATH LaTeX, Lean output.

An answer normalizes to an `Answer`: an exact sympy number when it is numeric (`1/2`,
`sqrt(2)/2`, `pi/2`, `3 + 4*I`), else a canonical string (tuples, intervals, text). Comparing
answers compares those forms, so `0.5`, `\frac{1}{2}` and `1/2` agree, and so do `(3, 4)` and
`(3,4)`.

Conventions, chosen here and tested:
- `25%` is 25: a GSM8K answer is the number before `%`. `percent_as_fraction=True` gives 1/4.
- `1,000` is one thousand (a lone number with commas every three digits); `1.000` is one;
  `1,2` and `(100,200)` are tuples; `1 000` is not a number.
- Decimals are exact: `0.5` is 1/2. A leading `≈` (or `\approx`) marks a rounded value, as in
  Lean's Float output; rounded values compare exactly unless `equivalent(..., rel_tol=...)`.
- Units, currency and a leading `x =` are dropped; a mixed number `2\frac{1}{2}` or `2 1/2` is 5/2
  (only with a proper fraction: `2\frac{3}{2}` is a product).
- Text answers compare case-sensitively after whitespace is canonicalised.

Safety: sympy's `parse_expr` runs only on strings made of digits, operators, parentheses and the
names sqrt, pi, i, I. Inputs over `MAX_LEN` characters or `MAX_DEPTH` nested brackets are refused,
and the expression is built bottom-up from an unevaluated parse so that exponents over
`MAX_EXPONENT` or powers whose integers would exceed `MAX_BITS` are refused before being computed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from tokenize import TokenError

import sympy
from sympy.core.sympify import SympifyError
from sympy.parsing.sympy_parser import auto_number, auto_symbol, implicit_multiplication, parse_expr, rationalize

MAX_LEN = 1000  # characters in one answer
MAX_DEPTH = 20  # nested brackets in one answer
MAX_EXPONENT = 10_000  # numerator and denominator of any rational exponent
MAX_BITS = 12_000  # estimated bits of all powers together; keeps integers printable (4300 digits)
_SCAN = 2000  # characters scanned for the braces of one \boxed{...}

_PARSE_ERRORS = (SyntaxError, TokenError, SympifyError, TypeError, ValueError, ZeroDivisionError, OverflowError)


@dataclass(frozen=True)
class Answer:
    """A normalized answer. `value` is an exact sympy number, or None when the answer is not
    numeric and `text` alone identifies it; `text` is the canonical printed form (`to_text`);
    `exact` is False for rounded values (Lean Float output, answers written with `≈`)."""

    value: sympy.Expr | None
    text: str
    exact: bool = True


class _Refused(Exception):
    """An expression too large to evaluate safely."""


# --- cleaning -------------------------------------------------------------------------------
_REPLACE = {
    "\\dfrac": "\\frac", "\\tfrac": "\\frac", "\\$": "", "$": "", "\\%": "%", "{,}": ",", "−": "-",
    "√": "\\sqrt", "π": "\\pi ", "×": "\\times ", "·": "\\cdot ", "÷": "\\div ", "\\approx": "≈", "~": " ",
}
_SPACING = re.compile(r"\\(?:left|right|displaystyle|q?quad)(?![A-Za-z])|\\[!,;:>]")
_WIDE_SPACE = re.compile(r"\\ ")
_DEGREES = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|°|\\degree(?![A-Za-z])|\\circ(?![A-Za-z])")
_TEXT_CMD = re.compile(r"\\(?:text|textbf|textit|textrm|textup|mbox|mathrm|mathbf|mathit|operatorname)\s*\{")
_BOX_CMD = re.compile(r"\\(?:boxed|fbox)\s*")
_EQ_PREFIX = re.compile(r"^[A-Za-z](?:_\{?\w+\}?)?\s*=(?!=)\s*")


def _close(s: str, i: int, limit: int | None = None) -> int:
    """Index of the bracket matching the `{` or `(` at `i`, or -1 (also when not within `limit`)."""
    opening, closing = s[i], "}" if s[i] == "{" else ")"
    depth, end = 0, len(s) if limit is None else min(len(s), i + limit)
    for j in range(i, end):
        if s[j] == opening:
            depth += 1
        elif s[j] == closing:
            depth -= 1
            if depth == 0:
                return j
    return -1


def _unwrap_text(s: str) -> str:
    r"""`5\text{ cm}` -> `5  cm `: keep the words, drop the command (units are stripped later)."""
    while (m := _TEXT_CMD.search(s)) is not None:
        end = _close(s, m.end() - 1)
        if end < 0:  # unclosed: drop the command, keep what follows
            s = s[: m.start()] + " " + s[m.end():]
        else:
            s = s[: m.start()] + " " + s[m.end(): end] + " " + s[end + 1:]
    return s


def _strip_wrappers(s: str) -> str:
    r"""Remove `\(...\)`, `\[...\]`, a whole `\boxed{...}` and a final period (`$` is gone already)."""
    while True:
        before = s
        s = s.strip().rstrip(".\\").strip()  # a dangling backslash would join what follows
        if s[:2] in ("\\(", "\\[") and s[-2:] in ("\\)", "\\]"):
            s = s[2:-2]
        elif (m := _BOX_CMD.match(s)) and m.end() < len(s) and s[m.end()] == "{":
            if _close(s, m.end()) == len(s) - 1:
                s = s[m.end() + 1: -1]
        if s == before:
            return s


def _clean(s: str) -> str:
    """Drop LaTeX spacing, delimiters, text wrappers and degree signs; repeated until nothing
    changes, so that cleaning a canonical form leaves it alone (normalize is idempotent)."""
    for _ in range(8):
        before = s
        s = re.sub(r"\s", " ", s).replace("\\\\", " ")
        for old, new in _REPLACE.items():
            s = s.replace(old, new)
        s = _WIDE_SPACE.sub(" ", _SPACING.sub("", s))
        s = _strip_wrappers(_unwrap_text(_strip_wrappers(_DEGREES.sub("", s))))
        if s == before:
            break
    return s


def _depth(s: str) -> int:
    depth = deepest = 0
    for c in s:
        if c in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif c in ")]}":
            depth -= 1
    return deepest


# --- numbers --------------------------------------------------------------------------------
_CURRENCY_PREFIX = re.compile(r"^([+-]?)\s*(?:[$€£¥]|USD|EUR|GBP|Rs\.?)\s*")
_CURRENCY_SUFFIX = re.compile(r"\s*[$€£¥]$")
_PERCENT = re.compile(r"\s*(?:%|percent|per\s*cent)$")
_UNIT_WORD = r"[A-Za-z]+\.?(?:\s*\^\s*\{?[23]\}?|\^\([23]\)|[²³])?"
_UNIT_TAIL = re.compile(rf"(?<=[\d).}}])(\s*)({_UNIT_WORD}(?:(?:\s*/\s*|\s+){_UNIT_WORD})*)$")
_UNITS = frozenset(
    "m cm mm km in ft yd mi g kg mg lb lbs oz l ml h hr hrs min mins s sec secs mph kph kmh "
    "dollars dollar cents cent euros usd sq km/h m/s".split()
)
_NOT_UNITS = frozenset({"pi", "sqrt", "i", "I", "e"})
_THOUSANDS = re.compile(r"^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_MIXED_LATEX = re.compile(r"^([+-]?)(\d+)\s*\\frac\s*(?:\{(\d+)\}|(\d))\s*(?:\{(\d+)\}|(\d))$")
_MIXED_PLAIN = re.compile(r"^([+-]?)(\d+)\s+(\d+)\s*/\s*(\d+)$")
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)")
_SPACED_DIGITS = re.compile(r"\d\s+[\d.]")
_REFUSED_PY = re.compile(r"[eE][+-]?\d{4}|\(\s*\)")
_CMD = re.compile(r"\\[A-Za-z]+")
_CMD_MAP = {"pi": " pi ", "cdot": "*", "times": "*", "div": "/"}
_SAFE = re.compile(r"[0-9A-Za-z.+\-*/() ]*")
_TOKEN = re.compile(r"(\d+\.?\d*(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)|([A-Za-z_]\w*)|(.)")
_NAMES = {"sqrt": lambda x, evaluate=False: sympy.Pow(x, sympy.S.Half, evaluate=evaluate),
          "pi": sympy.pi, "I": sympy.I, "i": sympy.I}
_GLOBALS = {"Integer": sympy.Integer, "Rational": sympy.Rational, "Float": sympy.Float, "Symbol": sympy.Symbol,
            "Add": sympy.Add, "Mul": sympy.Mul, "Pow": sympy.Pow, "__builtins__": {}}
_TRANSFORMS = (auto_symbol, auto_number, rationalize, implicit_multiplication)
_NOT_FINITE = (sympy.nan, sympy.zoo, sympy.oo, -sympy.oo)


def _strip_units(s: str) -> str:
    """`12 km/h` -> `12`; `2x` and `2 pi` stay: a unit needs a space or must be a known unit."""
    m = _UNIT_TAIL.search(s)
    if m is None:
        return s
    words = re.findall(r"[A-Za-z]+", m.group(2))
    if any(w in _NOT_UNITS for w in words):
        return s
    known = all(w.lower() in _UNITS for w in words)
    if not known and (not m.group(1) or (len(words) == 1 and len(words[0]) == 1)):
        return s
    return s[: m.start()].rstrip()


def _arg(s: str, i: int) -> tuple[str | None, int]:
    r"""One LaTeX argument at `i`: `{...}`, `(...)`, a command like `\pi`, or one character."""
    while i < len(s) and s[i] == " ":
        i += 1
    if i >= len(s):
        return None, i
    if s[i] in "{(":
        j = _close(s, i)
        return (None, i) if j < 0 else (s[i + 1: j] if s[i] == "{" else s[i: j + 1], j + 1)
    if (m := _CMD.match(s, i)) is not None:
        return m.group(), m.end()
    return s[i], i + 1


def _to_python(s: str) -> str | None:
    r"""LaTeX arithmetic -> a Python expression string; None on anything not understood."""
    out, i = [], 0
    while i < len(s):
        if s[i] == "\\":
            m = _CMD.match(s, i)
            if m is None:
                return None
            name, i = m.group()[1:], m.end()
            if name == "frac":
                a, i = _arg(s, i)
                b, i = _arg(s, i)
                pa, pb = _to_python(a or ""), _to_python(b or "")
                if a is None or b is None or not pa or not pb:
                    return None
                out.append(f"(({pa})/({pb}))")
            elif name == "sqrt":
                index: str | None = "2"
                if s[i: i + 1] == "[" and (j := s.find("]", i)) > 0:
                    index, i = _to_python(s[i + 1: j]), j + 1
                a, i = _arg(s, i)
                pa = _to_python(a or "")
                if not pa or not index:
                    return None
                out.append(f" sqrt({pa})" if index == "2" else f"(({pa})**(1/({index})))")
            elif name in _CMD_MAP:
                out.append(_CMD_MAP[name])
            else:
                return None
        else:
            out.append({"{": "(", "}": ")", "^": "**", "[": "(", "]": ")"}.get(s[i], s[i]))
            i += 1
    return "".join(out)


def _balanced(py: str) -> bool:
    depth = 0
    for c in py:
        depth += {"(": 1, ")": -1}.get(c, 0)
        if depth < 0:
            return False
    return depth == 0


def _build(node: sympy.Basic, budget: list[int]) -> sympy.Expr:
    """Evaluate an unevaluated parse bottom-up, refusing powers too large to compute."""
    if not node.args:
        return node
    args = [_build(a, budget) for a in node.args]
    if isinstance(node, sympy.Pow) and args[1].is_Rational:
        base, exp = args
        if abs(exp.p) > MAX_EXPONENT or exp.q > MAX_EXPONENT:
            raise _Refused
        size = sum(max(r.p.bit_length(), r.q.bit_length()) for r in base.atoms(sympy.Rational)) + 1
        budget[0] -= size * abs(exp.p)
        if budget[0] < 0:
            raise _Refused
    return node.func(*args)


def _parse_number(s: str) -> sympy.Expr | None:
    """A finite sympy number from an already cleaned string, or None."""
    if _PLAIN_NUMBER.fullmatch(s):
        return sympy.Rational(s)  # the common GSM8K case, without the parser
    py = _to_python(s)
    if (not py or py.isspace() or not _SAFE.fullmatch(py) or _SPACED_DIGITS.search(py)
            or _REFUSED_PY.search(py) or not _balanced(py)):
        return None  # `2 3` is not 6; 1e9999 is too big; sympy's transformations crash on `()`
    for _number, name, other in _TOKEN.findall(py):
        if other == "." or name and name not in _NAMES:
            return None  # only whitelisted names, and no attribute access
    try:
        tree = parse_expr(py, local_dict=dict(_NAMES), global_dict=dict(_GLOBALS),
                          transformations=_TRANSFORMS, evaluate=False)
        value = _build(sympy.sympify(tree), [MAX_BITS])
    except (_Refused, *_PARSE_ERRORS):
        return None  # not arithmetic we can evaluate safely: the caller keeps it as text
    if not isinstance(value, sympy.Expr) or not value.is_number or value.has(*_NOT_FINITE):
        return None
    return value


def _numeric(s: str, percent_as_fraction: bool) -> sympy.Expr | None:
    s = _CURRENCY_PREFIX.sub(r"\1", s)
    percent = _PERCENT.search(s) is not None
    s = _strip_units(_PERCENT.sub("", s))
    s = _CURRENCY_SUFFIX.sub("", s).strip()
    if _THOUSANDS.match(s):
        s = s.replace(",", "")
    value = _parse_number(s)
    if m := (_MIXED_LATEX.match(s) or _MIXED_PLAIN.match(s)):
        sign, whole, *frac = m.groups()
        num, den = (int(x) for x in frac if x is not None)
        if num < den:  # a mixed number; with an improper fraction, 2\frac{3}{2} is a product
            value = (-1 if sign == "-" else 1) * (sympy.Integer(whole) + sympy.Rational(num, den))
    if value is not None and percent and percent_as_fraction:
        value = value / 100
    return value


# --- printing and tuples --------------------------------------------------------------------
def _decimal(r: sympy.Rational) -> str | None:
    """Exact decimal form of a rational with a denominator 2^a 5^b, else None."""
    q, twos, fives = int(r.q), 0, 0
    while q % 2 == 0:
        q, twos = q // 2, twos + 1
    while q % 5 == 0:
        q, fives = q // 5, fives + 1
    if q != 1:
        return None
    k = max(twos, fives)
    digits = str(abs(int(r.p)) * 10**k // int(r.q)).rjust(k + 1, "0")
    whole, frac = digits[: len(digits) - k], digits[len(digits) - k:].rstrip("0")
    return ("-" if r < 0 else "") + whole + ("." + frac if frac else "")


def _print(value: sympy.Expr, exact: bool) -> str:
    if value.is_Integer:
        text = str(int(value))
    elif value.is_Rational:
        text = f"{value.p}/{value.q}"
    else:
        text = sympy.sstr(value)
    if exact:
        return text
    return "≈" + ((_decimal(value) if value.is_Rational else None) or text)


def _split_top(s: str) -> list[str]:
    """Split at commas outside any brackets."""
    parts, depth, start = [], 0, 0
    for i, c in enumerate(s):
        depth += 1 if c in "([{" else -1 if c in ")]}" else 0
        if c == "," and depth == 0:
            parts.append(s[start:i])
            start = i + 1
    return parts + [s[start:]]


def _tuple_parts(s: str) -> tuple[str, list[str], str] | None:
    """`(3, 4)` -> ("(", ["3", " 4"], ")"); intervals keep their brackets; None if not a tuple."""
    if s[:1] in "([" and s[-1:] in ")]" and len(s) > 1:
        depth = 0
        for i, c in enumerate(s):
            depth += 1 if c in "([{" else -1 if c in ")]}" else 0
            if depth == 0:
                break
        if i == len(s) - 1 and len(parts := _split_top(s[1:-1])) > 1:
            return s[0], parts, s[-1]
    parts = _split_top(s)
    return ("", parts, "") if len(parts) > 1 else None


def _canonical_text(s: str) -> str:
    """Single spaces, and none around punctuation."""
    s = re.sub(r"\s+", " ", s).strip()
    return re.sub(r" ?([,()\[\]{}=+*/^<>|]) ?", r"\1", s)


# --- public API -----------------------------------------------------------------------------
@lru_cache(maxsize=100_000)
def _normalize(answer: str, percent_as_fraction: bool) -> Answer | None:
    s, exact = _clean(answer), True
    while (m := _EQ_PREFIX.match(s)) is not None or s.startswith("≈"):  # `x = `, `≈`: then clean again
        exact = exact and m is not None
        s = _clean(s[m.end():] if m is not None else s[1:])
    if not s or _depth(s) > MAX_DEPTH:
        return None
    value = _numeric(s, percent_as_fraction)
    if value is not None:
        return Answer(value, _print(value, exact), exact)
    if (parts := _tuple_parts(s)) is not None:
        opening, items, closing = parts
        texts = []
        for item in items:
            norm = _normalize(item, percent_as_fraction) if item.strip() else None
            texts.append(norm.text if norm is not None else _canonical_text(item))
        return Answer(None, opening + ",".join(texts) + closing)
    text = _canonical_text(s)
    return Answer(None, text) if text else None


def normalize(answer: str | int, *, percent_as_fraction: bool = False) -> Answer | None:
    """The canonical form of an answer, or None when it is empty or refused (too long, too deep).

    Numeric answers get an exact sympy value; anything else keeps a canonical string, so that
    a tuple or a text answer can still be compared. Ints are accepted since JSON answers often are.
    """
    if isinstance(answer, int) and not isinstance(answer, bool):
        answer = str(answer)
    if not isinstance(answer, str):
        raise TypeError(f"answer must be str or int, not {type(answer).__name__}")
    if len(answer) > MAX_LEN:
        return None
    ans = _normalize(answer, percent_as_fraction)
    # a value whose canonical text is too long to read back (400^400) is refused like a long input,
    # so that normalize(to_text(a)) == a holds for every answer normalize returns
    return ans if ans is None or len(ans.text) <= MAX_LEN else None


def to_text(ans: Answer) -> str:
    """Canonical printing: `7`, `7/2`, `sqrt(2)/2`, `≈5.25`, `(3,4)`; normalize() reads it back."""
    return ans.text


@lru_cache(maxsize=100_000)
def _same_value(x: sympy.Expr, y: sympy.Expr, rel_tol: float | None) -> bool:
    if x == y:
        return True
    if rel_tol is not None:
        fx, fy = sympy.N(x, 30), sympy.N(y, 30)
        return bool(abs(fx - fy) <= rel_tol * max(abs(fx), abs(fy)))
    if x.is_Rational and y.is_Rational:
        return False
    diff = sympy.N(x - y, 30)
    if diff.is_number and abs(diff) > sympy.Float("1e-20", 30) * (1 + abs(sympy.N(x, 30))):
        return False  # numerically different: skip simplify, which is the slow part
    return sympy.simplify(x - y) == 0


def equivalent(a: str | int | Answer | None, b: str | int | Answer | None, *,
               rel_tol: float | None = None, percent_as_fraction: bool = False) -> bool:
    """True iff both answers normalize and agree: numbers by value, other answers by text.

    None (or an answer that does not normalize) is equivalent to nothing, not even None: an
    unparsable prediction must never be scored correct against an unparsable reference.
    `rel_tol` applies only when a side is inexact (`exact=False`); two exact values compare exactly.
    """
    x, y = (v if isinstance(v, Answer) or v is None else _normalize_any(v, percent_as_fraction) for v in (a, b))
    if x is None or y is None:
        return False
    if x.value is None or y.value is None:
        return x.value is None and y.value is None and x.text == y.text
    return _same_value(x.value, y.value, None if x.exact and y.exact else rel_tol)


def _normalize_any(answer: str | int, percent_as_fraction: bool) -> Answer | None:
    """`normalize`, and for text that is no plain number, Lean's way of writing one
    (`(7 : ℚ)/2`, `Int.negSucc 4`, `↑5`): answers Lean computed meet answers people wrote."""
    ans = normalize(answer, percent_as_fraction=percent_as_fraction)
    if ans is not None and ans.value is None and isinstance(answer, str):
        lean = parse_lean_value(answer)
        if lean is not None and (value := normalize(lean)) is not None and value.value is not None:
            return value
    return ans


# --- extraction -----------------------------------------------------------------------------
_ANSWER_IS = re.compile(r"answer(?:\s+is|\s*:)", re.IGNORECASE)
_HASHES = re.compile(r"####")
_CALCULATOR = re.compile(r"<<[^<>\n]*>>")
_NUMBER = re.compile(r"(?:(?<![\w)\]])-)?(?:\d{1,3}(?:,\d{3})+(?![\d,])|\d+)(?:\.\d+)?(?:/\d+)?")


def _tidy(s: str) -> str | None:
    s = s.strip().strip("*").strip()
    s = re.split(r"\.(?:\s|$)", s, maxsplit=1)[0].strip().strip("$").strip()
    return s or None


def _last_boxed(text: str) -> str | None:
    for m in reversed(list(_BOX_CMD.finditer(text))[-20:]):
        if text[m.end(): m.end() + 1] == "{":
            end = _close(text, m.end(), _SCAN)
            if end > 0:
                return text[m.end() + 1: end].strip() or None
        elif (word := re.match(r"[^\s$]+", text[m.end(): m.end() + _SCAN])) and m.group()[-1].isspace():
            return word.group()
    return None


def extract_answer(text: str) -> str | None:
    r"""The raw final answer in model text, in order of how deliberate the marking is: the last
    `\boxed{...}`/`\fbox{...}`, else the last "(final) answer is X", else `#### X`, else the last
    number. None when there is none."""
    if not isinstance(text, str):
        return None
    if (boxed := _last_boxed(text)) is not None:
        return boxed
    for marker in (_ANSWER_IS, _HASHES):
        last = None
        for last in marker.finditer(text):
            pass
        if last is not None and (found := _tidy(text[last.end():].split("\n", 1)[0].lstrip(" :*"))):
            return found
    last = None
    for last in _NUMBER.finditer(_CALCULATOR.sub(" ", text)):
        pass
    return last.group() if last else None


# --- Lean output ----------------------------------------------------------------------------
_LEAN_TYPE = r"(?:ℕ|ℤ|ℚ|ℝ|Nat|Int|Rat|Real|Float)"
_DEF_BODY = re.compile(r"\b(?:def|abbrev)\s[^\n]*?:=\s*(.*)\Z", re.DOTALL)
_RAT_STRUCT = re.compile(r"\{\s*num\s*:=\s*(-?\d+)\s*,\s*den\s*:=\s*(\d+)[^{}]*\}")
_NEG_SUCC = re.compile(r"Int\.negSucc\s*\(?\s*(\d+)\s*\)?|-\[\s*(\d+)\s*\+\s*1\s*\]")
_CASTS = re.compile(r"\b(?:Int\.ofNat|Nat\.cast|Int\.cast|Rat\.ofInt|some)\s+|↑")
_ASCRIPTION = re.compile(rf"\(\s*((?:[^():]|\([^()]*\))+?)\s*:\s*{_LEAN_TYPE}\s*\)")


def _lean_term(s: str) -> str | None:
    s = s.strip().strip('"')
    inexact = bool(re.search(r"\d\.\d|:\s*Float\b", s))  # Lean prints ℚ as 7/2: a decimal is a Float
    s = _RAT_STRUCT.sub(r"(\1)/(\2)", s)
    s = _NEG_SUCC.sub(lambda m: f"({-(int(m.group(1) or m.group(2)) + 1)})", s)
    s = _ASCRIPTION.sub(r"(\1)", _CASTS.sub("", s))
    ans = normalize(("≈" if inexact else "") + s) if len(s) <= MAX_LEN else None
    if ans is None or (ans.value is None and not _all_numeric(ans.text)):
        return None
    return ans.text


def _all_numeric(text: str) -> bool:
    parts = _tuple_parts(text)
    return parts is not None and all((n := normalize(p)) is not None and n.value is not None for p in parts[1])


def parse_lean_value(text: str) -> str | None:
    """The value in Lean output (`#eval` lines, `#reduce` terms, a `#print`ed definition) as a
    normalized answer string (`to_text` form; Float results carry `≈`), or None when no line
    holds a number or a tuple of numbers. The last line that parses wins, as `#eval` prints last."""
    if not isinstance(text, str) or len(text) > 100 * MAX_LEN:
        return None
    if (m := _DEF_BODY.search(text)) is not None:
        return _lean_term(" ".join(m.group(1).split()))
    for line in reversed(text.splitlines()):
        if line.strip() and (value := _lean_term(line)) is not None:
            return value
    return None
