"""Answers as Lean terms and Lean terms as numbers, so informal and formal answers compare.

An answer given in English ("14", "7/2") becomes a Lean term of the statement's answer type;
a value Lean printed becomes a number when it is a numeral, a Mathlib number or a term of the
prelude dialect's naturals (`N.add N.four N.two`, printed `N.four.add N.two`). Anything that is
not one clean term is refused: a value is spliced into Lean text elaborated as trusted.
"""

from __future__ import annotations

import re

from solve_in_lean.answers import normalize, parse_lean_value
from solve_in_lean.errors import InputError
from solve_in_lean.verify import screen

NUMBER_TYPES = ("ℕ", "ℤ", "ℚ", "ℝ", "Nat", "Int", "Rat", "Real")
PRELUDE_NAT = "N"
"""The naturals of the prelude dialect (examples/prelude.lean): N.zero..N.four, N.succ, N.add, N.mul."""
_SMALL = {"N.zero": 0, "N.one": 1, "N.two": 2, "N.three": 3, "N.four": 4}
_OPS = {"add": lambda a, b: a + b, "mul": lambda a, b: a * b}
MAX_PRELUDE_VALUE = 10_000
"""Prelude numerals are unary-ish terms: beyond this they are too big to check anyway."""


def prelude_numeral(n: int) -> str:
    """The canonical prelude numeral of n >= 0: N.zero..N.four, then `N.add N.four (…)`."""
    if n <= 4:
        return ("N.zero", "N.one", "N.two", "N.three", "N.four")[n]
    return f"N.add N.four ({prelude_numeral(n - 4)})"


def lean_term(answer: str, answer_type: str | None) -> str:
    """`answer` as one parenthesised Lean term of `answer_type`.

    Numbers are written from their normalized value (`(7/2 : ℚ)`, prelude numerals for `N`);
    anything else must already be one balanced Lean term with no refused construct.
    InputError (one sentence) otherwise."""
    text = answer.strip() if isinstance(answer, str) else ""
    if not text:
        raise InputError("the answer is empty; give a value, e.g. --answer 42")
    norm = normalize(text)
    if norm is not None and norm.value is not None and norm.exact:
        value = norm.value
        if answer_type == PRELUDE_NAT:
            if not (value.is_integer and 0 <= int(value) <= MAX_PRELUDE_VALUE):
                raise InputError(f"the answer {text!r} is not a natural number up to {MAX_PRELUDE_VALUE}, "
                                 "so it has no numeral in the prelude's N")
            return f"({prelude_numeral(int(value))})"
        if answer_type in NUMBER_TYPES:
            return f"({norm.text} : {answer_type})"
    return f"({_one_term(text)})"


def _one_term(text: str) -> str:
    """The text when it is a single bracket-balanced term; InputError otherwise."""
    if "\n" in text or ":=" in text:
        raise InputError(f"the answer {text!r} is not a single Lean term")
    lexed, refused = screen(text)  # unreadable text is refused too
    if refused or lexed is None:
        raise InputError(f"the answer {text!r} is refused: {refused[0]}")
    depth = 0
    for tok in lexed.tokens:
        if tok.kind == "command":
            raise InputError(f"the answer {text!r} holds the command {tok.text!r}, not a term")
        if tok.kind == "symbol":
            depth += {"(": 1, "[": 1, "{": 1, "⟨": 1, ")": -1, "]": -1, "}": -1, "⟩": -1}.get(tok.text, 0)
            if depth < 0:
                break
    if depth != 0:
        raise InputError(f"the answer {text!r} has unbalanced brackets")
    return text


_TOKEN = re.compile(r"\(|\)|[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)*|\.[A-Za-z_]\w*|\S")


def prelude_value(text: str) -> int | None:
    """The number a prelude-N term denotes, in source (`N.add N.four N.two`) or printed
    (`N.four.add N.two`) form; None when it is anything else."""
    tokens = _TOKEN.findall(text.strip())
    if not tokens or len(tokens) > 2000:
        return None
    pos = 0

    def atom() -> int | None:
        nonlocal pos
        if pos >= len(tokens):
            return None
        tok = tokens[pos]
        pos += 1
        if tok == "(":
            v = atom()
            if v is None or pos >= len(tokens) or tokens[pos] != ")":
                return None
            pos += 1
            return suffixes(v)
        for name, v in _SMALL.items():
            if tok == name or tok.startswith(name + "."):
                return suffixes(v, tok[len(name):])
        if tok in ("N.add", "N.mul", "N.succ"):
            args = [atom() for _ in range(1 if tok == "N.succ" else 2)]
            if any(a is None for a in args):
                return None
            return args[0] + 1 if tok == "N.succ" else _OPS[tok[2:]](args[0], args[1])
        return None

    def suffixes(v: int, rest: str = "") -> int | None:
        nonlocal pos
        fields = [f for f in rest.split(".") if f]
        while pos < len(tokens) and tokens[pos].startswith(".") and len(tokens[pos]) > 1:
            fields.append(tokens[pos][1:])
            pos += 1
        for f in fields:  # applied left to right, after the arguments of each
            if f == "succ":
                v += 1
            elif f in _OPS:
                arg = atom()
                if arg is None:
                    return None
                v = _OPS[f](v, arg)
            else:
                return None
            if v > MAX_PRELUDE_VALUE:
                return None
        return v

    value = atom()
    return value if value is not None and pos == len(tokens) else None


def number_of(text: str | None) -> str | None:
    """A value as a normalized number string (answers.to_text form), from English or from Lean's
    printing (Mathlib numbers or prelude N terms); None when it is not a number we can read."""
    if not text:
        return None
    if (v := prelude_value(text)) is not None:
        return str(v)
    if (lean := parse_lean_value(text)) is not None:
        return lean
    norm = normalize(text)
    return norm.text if norm is not None and norm.value is not None else None


def same_number(a: str | None, b: str | None) -> bool | None:
    """True/False when both read as numbers, None when either does not (then nothing is decided)."""
    x, y = number_of(a), number_of(b)
    if x is None or y is None:
        return None
    return x == y
