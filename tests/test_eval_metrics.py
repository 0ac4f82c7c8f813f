"""Evaluation metrics against independent computations: pass@k by enumerating subsets, Wilson
intervals and exact McNemar p-values against values worked out by hand."""

from fractions import Fraction
from itertools import combinations
from math import comb

import pytest

from solve_in_lean.eval.metrics import (estimate, mcnemar_exact, mean, pass_at_k, paired_comparison, rate,
                                        wilson_interval)


def brute_force_pass_at_k(n: int, c: int, k: int) -> Fraction:
    """Fraction of the k-subsets of n samples (the first c correct) holding a correct one."""
    subsets = list(combinations(range(n), k))
    return Fraction(sum(any(i < c for i in s) for s in subsets), len(subsets))


@pytest.mark.parametrize("n", range(1, 9))
def test_pass_at_k_equals_the_count_over_all_subsets(n):
    for c in range(n + 1):
        for k in range(1, n + 1):
            assert pass_at_k(n, c, k) == pytest.approx(float(brute_force_pass_at_k(n, c, k)), abs=1e-12)


def test_pass_at_k_is_stable_where_binomials_are_huge():
    n, c, k = 1000, 3, 100
    exact = 1 - Fraction(comb(n - c, k), comb(n, k))
    assert pass_at_k(n, c, k) == pytest.approx(float(exact), rel=1e-12)
    assert pass_at_k(n, 0, k) == 0.0 and pass_at_k(n, n - k + 1, k) == 1.0


@pytest.mark.parametrize("args", [(3, 4, 1), (3, 1, 4), (3, 1, 0), (3, -1, 1)])
def test_pass_at_k_rejects_impossible_counts(args):
    with pytest.raises(ValueError):
        pass_at_k(*args)


@pytest.mark.parametrize("s, n, low, high", [
    (5, 10, 0.236593, 0.763407),   # p = 1/2: centre 1/2, half-width 1.96*sqrt(.025+.009604)/1.38416
    (0, 10, 0.0, 0.277530),        # no successes: the interval still has width
    (10, 10, 0.722470, 1.0),
    (1, 20, 0.008881, 0.236133),
])
def test_wilson_interval_known_values(s, n, low, high):
    lo, hi = wilson_interval(s, n)
    assert lo == pytest.approx(low, abs=1e-5) and hi == pytest.approx(high, abs=1e-5)


def test_wilson_interval_edges():
    assert wilson_interval(0, 0) == (0.0, 1.0)
    lo90, hi90 = wilson_interval(5, 10, confidence=0.90)
    lo95, hi95 = wilson_interval(5, 10)
    assert lo95 < lo90 < 0.5 < hi90 < hi95
    with pytest.raises(ValueError):
        wilson_interval(11, 10)


@pytest.mark.parametrize("only_a, only_b, p", [
    (1, 9, 2 * (1 + 10) / 1024),   # 2 * P(X <= 1), X ~ Bin(10, 1/2)
    (9, 1, 2 * (1 + 10) / 1024),   # symmetric
    (0, 5, 2 / 32),
    (3, 3, 1.0),                   # capped at 1
    (0, 0, 1.0),                   # no discordant pairs: no evidence either way
    (2, 10, 2 * (1 + 12 + 66) / 4096),
])
def test_mcnemar_exact_known_values(only_a, only_b, p):
    assert mcnemar_exact(only_a, only_b) == pytest.approx(p, rel=1e-12)


def test_paired_comparison_of_binary_outcomes_is_mcnemar_on_shared_items():
    a = {f"q{i}": i < 8 for i in range(12)}        # A right on q0..q7
    b = {f"q{i}": i >= 6 for i in range(12)}       # B right on q6..q11
    b["extra"] = True                              # not in A: not paired
    a["q11"] = None                                # no value in A: not paired
    c = paired_comparison(a, b)
    assert c.test == "mcnemar-exact" and c.n == 11
    assert (c.a_better, c.b_better) == (6, 3)      # q0..q5 only A; q8..q10 only B
    assert c.p_value == pytest.approx(mcnemar_exact(6, 3))
    assert c.mean_a == pytest.approx(8 / 11) and c.difference == pytest.approx(5 / 11 - 8 / 11)
    assert not c.significant(0.05)


def test_paired_comparison_of_graded_values_is_a_sign_test():
    a = {str(i): 0.25 for i in range(10)}
    b = {str(i): 0.75 for i in range(10)}
    c = paired_comparison(a, b)
    assert c.test == "sign-test" and (c.a_better, c.b_better) == (0, 10)
    assert c.p_value == pytest.approx(2 / 1024) and c.significant(0.05)
    assert c.difference == pytest.approx(0.5)


def test_rate_mean_and_estimate():
    r = rate([True, False, True, True])
    assert (r.value, r.successes, r.n) == (0.75, 3, 4) and (r.low, r.high) == wilson_interval(3, 4)
    m = mean([0.4, 0.5, 0.6])  # sample sd 0.1
    assert m.value == pytest.approx(0.5) and m.successes is None
    assert m.low == pytest.approx(0.5 - 1.959964 * 0.1 / 3 ** 0.5, abs=1e-5)
    assert mean([0.0, 0.5, 1.0]).low == 0.0  # clipped to [0, 1]
    assert estimate([True, None, False]).n == 2 and estimate([True, None, False]).successes == 1
    assert estimate([0.5, None, 1.0]).value == pytest.approx(0.75)
    empty = estimate([None, None])
    assert empty.value is None and empty.n == 0 and empty.format() == "-"
