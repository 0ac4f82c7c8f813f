"""The numbers of an evaluation: rates with confidence intervals, pass@k, paired tests.

Formulas (docs/evaluation.md has the prose):

* rate of n binary outcomes with s successes: s / n with the Wilson score interval
  (centre (p + z²/2n) / (1 + z²/n), half-width z·sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n)),
  which stays inside [0, 1] and is sensible for 0 or n successes, unlike p ± z·se;
* mean of graded per-item values (pass@k, recall): mean ± z·sd/sqrt(n) (normal approximation);
* pass@k of one problem with n samples of which c are correct: 1 - C(n-c, k) / C(n, k), the
  unbiased estimator of Chen et al. 2021, computed as the product 1 - Π_{i=n-c+1..n} (1 - k/i)
  so it never forms huge binomials;
* AUROC of a score against yes/no labels: the Mann-Whitney probability that a random positive
  scores above a random negative (ties count one half); its interval is a percentile bootstrap
  that resamples whole items (a problem's candidates are not independent), seeded;
* two runs on the same items: an exact two-sided sign test on the items where they differ.
  For binary outcomes that is McNemar's exact test: with b items only run A got right and c
  only B, p = min(1, 2 · Σ_{i ≤ min(b, c)} C(b+c, i) / 2^(b+c)).
"""

from __future__ import annotations

import bisect
import math
import random
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Iterable, Mapping, Sequence

Value = bool | float | int | None


def _z(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return NormalDist().inv_cdf(0.5 + confidence / 2)


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a binomial proportion; (0, 1) when there are no trials."""
    if not 0 <= successes <= n:
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return 0.0, 1.0
    z = _z(confidence)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class Estimate:
    """One metric over a run: its value, a confidence interval and how many items it covers."""

    value: float | None
    low: float | None
    high: float | None
    n: int
    successes: int | None = None
    """For a rate: how many items succeeded; None for a mean of graded values."""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping) -> "Estimate":
        return cls(**{k: d.get(k) for k in ("value", "low", "high", "n", "successes")})

    def format(self, digits: int = 3) -> str:
        if self.value is None:
            return "-"
        return f"{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def rate(outcomes: Iterable[bool], confidence: float = 0.95) -> Estimate:
    """The fraction of true outcomes with its Wilson interval."""
    values = [bool(v) for v in outcomes]
    s, n = sum(values), len(values)
    low, high = wilson_interval(s, n, confidence)
    return Estimate(s / n if n else None, low if n else None, high if n else None, n, s)


def mean(values: Iterable[float], confidence: float = 0.95) -> Estimate:
    """The mean of graded values with a normal-approximation interval, clipped to [0, 1]
    (every graded metric here is a probability or a fraction)."""
    xs = [float(v) for v in values]
    n = len(xs)
    if n == 0:
        return Estimate(None, None, None, 0)
    m = sum(xs) / n
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (n - 1)) if n > 1 else 0.0
    half = _z(confidence) * sd / math.sqrt(n)
    return Estimate(m, max(0.0, m - half), min(1.0, m + half), n)


def estimate(values: Sequence[Value], confidence: float = 0.95) -> Estimate:
    """A rate when every value is a bool, else a mean; None values (no data) are left out."""
    present = [v for v in values if v is not None]
    if all(isinstance(v, bool) for v in present):
        return rate(present, confidence)
    return mean(present, confidence)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Probability that at least one of k samples, drawn without replacement from n samples of
    which c are correct, is correct: 1 - C(n-c, k)/C(n, k), computed as a stable product."""
    if not (0 <= c <= n and 1 <= k <= n):
        raise ValueError(f"need 0 <= c <= n and 1 <= k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def mcnemar_exact(only_a: int, only_b: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts (a sign test on them)."""
    if only_a < 0 or only_b < 0:
        raise ValueError("counts must be non-negative")
    m = only_a + only_b
    if m == 0:
        return 1.0
    tail = sum(math.comb(m, i) for i in range(min(only_a, only_b) + 1))
    return min(1.0, 2 * tail / 2 ** m)


@dataclass(frozen=True)
class PairedComparison:
    """Run B against run A on the items both have a value for."""

    n: int
    mean_a: float | None
    mean_b: float | None
    difference: float | None
    """mean_b - mean_a."""
    a_better: int
    """Items where A's value is higher (for binary outcomes: only A got it right)."""
    b_better: int
    p_value: float
    test: str

    def significant(self, alpha: float = 0.05) -> bool:
        return self.p_value < alpha

    def to_dict(self) -> dict:
        return asdict(self)


def paired_comparison(a: Mapping[str, Value], b: Mapping[str, Value]) -> PairedComparison:
    """Compare per-item values of two runs keyed by item id; items missing a value in either
    run are left out. Binary outcomes get McNemar's exact test, graded ones the exact sign test
    (the same computation on the items where the runs differ)."""
    ids = sorted(i for i in a.keys() & b.keys() if a[i] is not None and b[i] is not None)
    xs, ys = [float(a[i]) for i in ids], [float(b[i]) for i in ids]
    a_better = sum(x > y for x, y in zip(xs, ys))
    b_better = sum(y > x for x, y in zip(xs, ys))
    binary = all(isinstance(v[i], bool) for v in (a, b) for i in ids)
    n = len(ids)
    mean_a = sum(xs) / n if n else None
    mean_b = sum(ys) / n if n else None
    return PairedComparison(n, mean_a, mean_b, None if not n else mean_b - mean_a, a_better, b_better,
                            mcnemar_exact(a_better, b_better), "mcnemar-exact" if binary else "sign-test")


def auroc(pairs: Iterable[tuple[float, bool]]) -> float | None:
    """P(score of a positive > score of a negative), ties one half; None without both classes."""
    pairs = list(pairs)
    pos = sorted(s for s, y in pairs if y)
    neg = sorted(s for s, y in pairs if not y)
    if not pos or not neg:
        return None
    wins = 0.0
    for p in pos:  # counts below and equal by bisection keep this O((P + N) log N)
        below = _count_below(neg, p)
        wins += below + 0.5 * (_count_below(neg, p, equal=True) - below)
    return wins / (len(pos) * len(neg))


def _count_below(xs: list[float], x: float, *, equal: bool = False) -> int:
    return (bisect.bisect_right if equal else bisect.bisect_left)(xs, x)


def auroc_estimate(groups: Sequence[Sequence[tuple[float, bool]]], confidence: float = 0.95,
                   resamples: int = 1000, seed: int = 0) -> Estimate:
    """AUROC over every (score, label) pair, with a bootstrap interval over groups (items)."""
    flat = [pair for g in groups for pair in g]
    value = auroc(flat)
    if value is None:
        return Estimate(None, None, None, len(flat))
    rng = random.Random(seed)
    stats = []
    for _ in range(resamples):
        sample = [pair for _ in groups for pair in groups[rng.randrange(len(groups))]]
        if (a := auroc(sample)) is not None:
            stats.append(a)
    stats.sort()
    tail = (1 - confidence) / 2
    low = stats[int(tail * (len(stats) - 1))]
    high = stats[int(round((1 - tail) * (len(stats) - 1)))]
    return Estimate(value, low, high, len(flat))
