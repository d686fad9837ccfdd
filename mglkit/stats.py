"""Uncertainty of scores: percentile bootstrap intervals, and paired deltas between two columns."""

from __future__ import annotations

import random
from dataclasses import dataclass

RESAMPLES = 1000


@dataclass
class Score:
    value: float
    low: float  # 95% bootstrap interval
    high: float
    n: int

    def to_dict(self) -> dict:
        return {"value": self.value, "ci95": [self.low, self.high], "n": self.n}


@dataclass
class Delta:
    value: float
    low: float
    high: float

    @property
    def significant(self) -> bool:
        """True when the 95% interval of the paired difference excludes zero."""
        return self.low > 0 or self.high < 0

    def to_dict(self) -> dict:
        return {"value": self.value, "ci95": [self.low, self.high], "significant": self.significant}


def _percentiles(samples: list[float]) -> tuple[float, float]:
    samples = sorted(samples)
    return samples[int(0.025 * (len(samples) - 1))], samples[int(0.975 * (len(samples) - 1))]


def bootstrap(values: list[float], seed: int = 0) -> Score:
    """The mean of per-item values with a 95% percentile bootstrap interval."""
    n = len(values)
    if n == 0:
        return Score(float("nan"), float("nan"), float("nan"), 0)
    mean = sum(values) / n
    rng = random.Random(seed)
    means = [sum(values[rng.randrange(n)] for _ in range(n)) / n for _ in range(RESAMPLES)]
    low, high = _percentiles(means)
    return Score(mean, low, high, n)


def paired_delta(a: list[float], b: list[float], seed: int = 0) -> Delta:
    """b - a over the same items, resampling items (so item difficulty cancels out)."""
    diffs = [y - x for x, y in zip(a, b, strict=True)]
    score = bootstrap(diffs, seed)
    return Delta(score.value, score.low, score.high)
