"""Answer extraction, normalization and comparison: tables of hard cases, all GSM8K sample
solutions, Lean output forms, hypothesis properties, and hostile input."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from solve_in_lean.answers import Answer, equivalent, extract_answer, normalize, parse_lean_value, to_text

ROOT = Path(__file__).resolve().parents[1]
CASES = [json.loads(line) for line in (Path(__file__).parent / "data" / "answer_cases.jsonl").read_text().splitlines()]
GSM8K = ROOT.parent / "shared" / "data" / "gsm8k" / "train_sample.jsonl"


# --- tables ---------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=[f"{c['a']}|{c['b']}" for c in CASES])
def test_answer_case_table(case: dict) -> None:
    assert equivalent(case["a"], case["b"]) is case["equivalent"], case["note"]
    assert equivalent(case["b"], case["a"]) is case["equivalent"], case["note"]


@pytest.mark.parametrize(
    "raw, text",
    [
        ("1,000", "1000"),
        ("18.00", "18"),
        ("0.5", "1/2"),
        ("-\\frac{3}{4}", "-3/4"),
        ("\\frac{\\sqrt{3}}{2}", "sqrt(3)/2"),
        ("\\sqrt{8}", "2*sqrt(2)"),
        ("\\pi/2", "pi/2"),
        ("$\\frac{1}{2}$.", "1/2"),
        ("\\(3\\)", "3"),
        ("(3, 4)", "(3,4)"),
        ("\\left[ -1, \\infty \\right)", "[-1,\\infty)"),
        ("\\text{(B)}", "(B)"),
        ("1,2", "1,2"),
        ("3+4i", "3 + 4*I"),
        ("≈0.3330", "≈0.333"),
        ("\\approx 2", "≈2"),
    ],
)
def test_normalize_canonical_text(raw: str, text: str) -> None:
    ans = normalize(raw)
    assert ans is not None and to_text(ans) == text
    assert normalize(text) == ans


def test_normalize_values_and_flags() -> None:
    assert normalize("1/2") == Answer(sympy.Rational(1, 2), "1/2", True)
    assert normalize("25%", percent_as_fraction=True).value == sympy.Rational(1, 4)
    assert normalize("12.5\\%", percent_as_fraction=True).value == sympy.Rational(1, 8)
    assert normalize("≈5.25").exact is False and normalize("5.25").exact is True
    assert normalize("(3, 4)").value is None
    assert normalize(42) == normalize("42")
    assert normalize("") is None and normalize("  $ $ ") is None
    with pytest.raises(TypeError):
        normalize(4.2)  # type: ignore[arg-type]
    # not arithmetic: kept as text rather than guessed
    assert normalize("2x").value is None
    assert normalize("12 34").value is None
    assert normalize("2\\frac{3}{2}").value == 3  # improper: a product, not a mixed number
    assert normalize("-2\\frac{3}{2}").value == -3
    assert normalize("x = y = 7").value == 7
    assert normalize("A=") is None


def test_equivalent_none_and_options() -> None:
    assert not equivalent(None, None)
    assert not equivalent(None, "5") and not equivalent("5", None)
    assert not equivalent("", "")
    assert not equivalent("5", "(5, 6)")
    assert equivalent("25%", "1/4", percent_as_fraction=True)
    rounded = parse_lean_value("0.333333")
    assert not equivalent(rounded, "1/3")
    assert equivalent(rounded, "1/3", rel_tol=1e-5)
    assert not equivalent(rounded, "1/3", rel_tol=1e-9)
    assert not equivalent("0.333", "1/3", rel_tol=0.01)  # both exact: rel_tol does not apply
    assert equivalent(normalize("7/2"), parse_lean_value("(7 : ℚ)/2"))


# --- extraction -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [
        ("First try: \\boxed{3}. On reflection the result is \\boxed{\\frac{1}{2}}.", "\\frac{1}{2}"),
        ("So $x = \\boxed{\\frac{\\sqrt{3}}{2}}$", "\\frac{\\sqrt{3}}{2}"),
        ("\\fbox{9} is it", "9"),
        ("Truncated: \\boxed{5} then \\boxed{\\frac{1}{2}", "5"),
        ("We get 40 + 2 = 42.\nThe answer is 42.", "42"),
        ("The answer is 41. Wait, no: the final answer is $\\frac{3}{4}$.", "\\frac{3}{4}"),
        ("**Final Answer:** 7 apples", "7 apples"),
        ("Answer: 3.5.", "3.5"),
        ("She buys 3*4 = <<3*4=12>>12 pens.\nShe pays 12*2 = $<<12*2=24>>24.\n#### 24", "24"),
        ("He earns 1,250 + 250 = <<1250+250=1500>>1,500 dollars.\n#### 1,500", "1,500"),
        ("She has 5 apples and eats 2, so 3 remain.", "3"),
        ("The temperature falls to -4 degrees.", "-4"),
        ("x-3 = 0 so x is 3", "3"),
        ("In total 1,234,567 people.", "1,234,567"),
        ("It is 3/4 of the cake.", "3/4"),
        ("No numbers here.", None),
        ("", None),
    ],
)
def test_extract_answer(text: str, expected: str | None) -> None:
    assert extract_answer(text) == expected


def test_extract_then_compare_on_model_text() -> None:
    out = "Let's compute. 15% of 80 is 12.\nThe answer is $12$ dollars."
    assert equivalent(extract_answer(out), "12")
    assert not equivalent(extract_answer("Answer: 1,2"), "12")


def test_extract_all_gsm8k_solutions() -> None:
    rows = [json.loads(line) for line in GSM8K.read_text().splitlines() if line.strip()]
    assert len(rows) == 1000
    failures = [r["id"] for r in rows if not equivalent(extract_answer(r["solution"]), r["answer"])]
    assert not failures, f"{len(failures)} GSM8K rows fail: {failures[:20]}"
    # the last-number fallback alone, on solutions with the #### line cut, must also find them
    cut = [r["id"] for r in rows if not equivalent(extract_answer(r["solution"].split("####")[0] + r["answer"]),
                                                   r["answer"])]
    assert not cut, cut[:20]


# --- Lean output ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [
        ("72", "72"),
        ("-3", "-3"),
        ("7/2", "7/2"),
        ("(7 : ℚ)/2", "7/2"),
        ("(7 : Rat)/2", "7/2"),
        ("Int.negSucc 2", "-3"),
        ("-[2+1]", "-3"),
        ("(Int.negSucc 4 : ℤ)", "-5"),
        ("Int.ofNat 5", "5"),
        ("{ num := 7, den := 2, den_nz := _, reduced := _ }", "7/2"),
        ("{ num := -7, den := 2, den_nz := _, reduced := _ }", "-7/2"),
        ("5.25", "≈5.25"),
        ("5.250000", "≈5.25"),
        ("def x : ℕ := 5", "5"),
        ("def answer : ℚ :=\n  7 / 2", "7/2"),
        ("@[reducible] def total : ℤ :=\nInt.negSucc 9", "-10"),
        ("warning: declaration uses 'sorry'\n42", "42"),
        ("(3, 4)", "(3,4)"),
        ("some 5", "5"),
        ("inf", None),
        ("NaN", None),
        ("unknown identifier 'x'", None),
        ("", None),
    ],
)
def test_parse_lean_value(text: str, expected: str | None) -> None:
    assert parse_lean_value(text) == expected


def test_lean_float_is_inexact() -> None:
    ans = normalize(parse_lean_value("5.250000"))
    assert ans.exact is False and ans.value == sympy.Rational(21, 4)
    assert normalize(parse_lean_value("(7 : ℚ)/2")).exact is True


# --- properties -----------------------------------------------------------------------------
ints = st.integers(-10**15, 10**15)
positive = st.integers(1, 10**6)
decimals = st.decimals(min_value=-10**9, max_value=10**9, places=4, allow_nan=False, allow_infinity=False)
money = st.decimals(min_value=0, max_value=10**7, places=2, allow_nan=False, allow_infinity=False)

numeric_strings = st.one_of(
    ints.map(str),
    ints.map(lambda n: f"{n:,}"),
    st.tuples(ints, positive).map(lambda t: f"{t[0]}/{t[1]}"),
    st.tuples(ints, positive).map(lambda t: f"\\frac{{{t[0]}}}{{{t[1]}}}"),
    st.tuples(st.integers(0, 9), st.integers(1, 9)).map(lambda t: f"-\\dfrac{t[0]}{t[1]}"),
    decimals.map(lambda d: f"{d:f}"),
    decimals.map(lambda d: f"{d}%"),
    money.map(lambda d: f"${d:,}"),
    money.map(lambda d: f"{d} dollars"),
    st.tuples(st.integers(1, 50), st.integers(1, 200)).map(lambda t: f"{t[0]}\\sqrt{{{t[1]}}}"),
    st.tuples(st.integers(1, 200), positive).map(lambda t: f"\\frac{{\\sqrt{{{t[0]}}}}}{{{t[1]}}}"),
    st.tuples(ints, ints).map(lambda t: f"({t[0]}, {t[1]})"),
)


FAST = settings(deadline=timedelta(milliseconds=500), suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(numeric_strings)
def test_normalize_is_idempotent(s: str) -> None:
    ans = normalize(s)
    assert ans is not None
    assert normalize(to_text(ans)) == ans


@FAST
@given(ints)
def test_thousands_value(n: int) -> None:
    assert normalize(f"{n:,}").value == n


@FAST
@given(money)
def test_money_value(d: Decimal) -> None:
    assert normalize(f"${d:,}").value == sympy.Rational(str(d))


@FAST
@given(st.fractions(max_denominator=10**6))
def test_print_reparse_round_trip(f: Fraction) -> None:
    ans = normalize(f"{f.numerator}/{f.denominator}")
    assert ans.value == sympy.Rational(f.numerator, f.denominator)
    assert normalize(to_text(ans)) == ans
    assert equivalent(to_text(ans), f"\\frac{{{f.numerator}}}{{{f.denominator}}}")


@FAST
@given(decimals)
def test_decimal_is_exact(d: Decimal) -> None:
    assert normalize(f"{d:f}").value == sympy.Rational(str(d))
    rounded = normalize(f"≈{d:f}")
    assert rounded.exact is False and normalize(to_text(rounded)) == rounded


@FAST
@given(numeric_strings)
def test_equivalent_is_reflexive(s: str) -> None:
    assert equivalent(s, s)
    assert equivalent(s, to_text(normalize(s)))


def _spellings(f: Fraction) -> list[str]:
    """Several ways to write the same rational."""
    p, q = f.numerator, f.denominator
    forms = [f"{p}/{q}", f"\\frac{{{p}}}{{{q}}}", f"\\dfrac{{{p}}}{{{q}}}", f"${p}/{q}$", f"{2 * p}/{2 * q}"]
    if p < 0:
        forms.append(f"-\\frac{{{-p}}}{{{q}}}")
    if q == 1:
        forms += [f"{p:,}", f"{p}.00", f"\\boxed{{{p}}}"]
    if 10**6 % q == 0:
        forms.append(f"{Decimal(p) / Decimal(q):f}")
    return forms


same_value_pairs = st.fractions(max_denominator=1000).flatmap(
    lambda f: st.tuples(st.sampled_from(_spellings(f)), st.sampled_from(_spellings(f))))


@FAST
@given(same_value_pairs)
def test_equivalent_across_spellings(pair: tuple[str, str]) -> None:
    assert equivalent(*pair)


@FAST
@given(st.one_of(st.tuples(numeric_strings, numeric_strings), same_value_pairs))
def test_equivalent_is_symmetric(pair: tuple[str, str]) -> None:
    a, b = pair
    assert equivalent(a, b) == equivalent(b, a)


@FAST
@given(st.text(max_size=300))
def test_arbitrary_text_never_raises(s: str) -> None:
    ans = normalize(s)
    assert ans is None or isinstance(ans, Answer)
    if ans is not None:
        assert normalize(to_text(ans)) == ans
    found = extract_answer(s)
    assert found is None or isinstance(found, str)
    lean = parse_lean_value(s)
    assert lean is None or normalize(lean) is not None


latexish = st.text(alphabet="0123456789\\{}()[]^_,.-+*/ $%fracsqtpi", max_size=60)


@FAST
@given(latexish, latexish)
def test_latexish_text_never_raises(a: str, b: str) -> None:
    for s in (a, "\\frac" + a, "\\sqrt" + a, a + "^" + b):
        ans = normalize(s)
        if ans is not None:
            assert normalize(to_text(ans)) == ans
    assert equivalent(a, b) == equivalent(b, a)


# --- garbage --------------------------------------------------------------------------------
GARBAGE = [
    "9" * 1_000_000,
    "{" * 1_000_000,
    "\\boxed{" * 100_000,
    "(" * 500 + "1" + ")" * 500,
    "{" * 200 + "1" + "}" * 200,
    bytes(range(256)).decode("latin-1") * 4000,
    "\\frac" * 100_000,
    "\\sqrt" * 200 + "2",
    "2^2^2^2^2^2^2",
    "10^{10^{10}}",
    "9" * 300 + "^{9999}",
    "(" + "9" * 100 + ")^{9999} \\cdot " * 20,
    "1e999999",
    "answer is " * 100_000,
    "#### " * 100_000,
    "\x00\x01\ufffd\u202e" * 1000,
]


@pytest.mark.parametrize("s", GARBAGE, ids=range(len(GARBAGE)))
def test_garbage_is_refused_quickly(s: str) -> None:
    start = time.perf_counter()
    for x in (s, s[:1000], s[:200]):
        ans = normalize(x)
        assert ans is None or isinstance(ans, Answer)
        found = extract_answer(x)
        assert found is None or isinstance(found, str)
        assert parse_lean_value(x) is None or isinstance(parse_lean_value(x), str)
        assert isinstance(equivalent(x, x), bool)
    assert time.perf_counter() - start < 2.0
