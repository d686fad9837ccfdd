"""The intervals mglkit reports cover the truth as often as they claim, at the suite's sizes."""

import math

import numpy as np
import pytest

from mglkit.stats import bootstrap, paired_delta

REPETITIONS = 1000


def _coverage(draw, truth: float, interval) -> float:
    hits = 0
    for rep in range(REPETITIONS):
        values = draw(np.random.default_rng([7, rep])).tolist()  # data and resampling use different streams
        low, high = interval(values, rep)
        hits += low <= truth <= high
    return hits / REPETITIONS


def _mean_interval(values, seed):
    score = bootstrap(values, seed)
    return score.low, score.high


SHAPES = {
    # the facts and preference suites: 0/1 scores of about 60 items, a hard and an even item set
    "bernoulli p=0.15, n=60": (lambda rng: (rng.random(60) < 0.15).astype(float), 0.15),
    "bernoulli p=0.5, n=60": (lambda rng: (rng.random(60) < 0.5).astype(float), 0.5),
    # the fluency suite: 50 texts, a positive right-skewed score (exponential: skewness 2)
    "exponential mean=0.8, n=50": (lambda rng: rng.exponential(0.8, 50), 0.8),
}


@pytest.mark.parametrize("shape", SHAPES)
def test_score_interval_covers_the_mean(shape):
    draw, truth = SHAPES[shape]
    coverage = _coverage(draw, truth, _mean_interval)
    assert 0.93 <= coverage <= 0.97, f"{shape}: {coverage:.3f}"


def _sparse_differences(up: float, down: float, n: int = 60):
    """Per-item adapter-minus-base differences of a 0/1 score: +1 where only the adapter is right."""

    def draw(rng):
        u = rng.random(n)
        return np.where(u < up, 1.0, np.where(u < up + down, -1.0, 0.0))

    return draw, up - down


@pytest.mark.parametrize("up, down", [(0.10, 0.05), (0.05, 0.05)])
def test_paired_delta_covers_the_difference(up, down):
    draw, truth = _sparse_differences(up, down)

    def interval(diffs, seed):
        delta = paired_delta([0.0] * len(diffs), diffs, seed)
        return delta.low, delta.high

    coverage = _coverage(draw, truth, interval)
    assert 0.93 <= coverage <= 0.97, f"+{up}/-{down}: {coverage:.3f}"


def test_same_seed_same_interval_and_the_estimate_inside():
    rng = np.random.default_rng(3)
    skewed = rng.exponential(1.0, 50).tolist()
    assert bootstrap(skewed, 11) == bootstrap(skewed, 11)
    assert bootstrap(skewed, 11) != bootstrap(skewed, 12)
    a, b = (rng.random(60) < 0.4).astype(float).tolist(), (rng.random(60) < 0.6).astype(float).tolist()
    assert paired_delta(a, b, 5) == paired_delta(a, b, 5)
    for values in (skewed, a, [0.0] * 30, [1.0] * 30, [2.5], [0.0] * 59 + [7.0]):
        score = bootstrap(values, 0)
        assert score.low <= score.value <= score.high
        assert min(values) <= score.low and score.high <= max(values) or set(values) <= {0.0, 1.0}


def test_all_wrong_is_not_certainty_and_empty_is_nan():
    score = bootstrap([0.0] * 60)
    assert score.low == 0.0 and 0.03 < score.high < 0.08  # Wilson: [0, 0.060] for 0 of 60
    assert math.isnan(bootstrap([]).value) and bootstrap([]).n == 0
    assert math.isnan(paired_delta([], []).value)
    with pytest.raises(ValueError):
        paired_delta([1.0], [1.0, 0.0])


def test_scores_are_plain_floats_that_json_output_takes():
    import io

    from mglkit.report import write_json

    score = bootstrap([0.1, 0.5, 0.3, 0.9, 0.2])  # a studentized interval strictly inside the values' range
    assert all(type(x) is float for x in (score.value, score.low, score.high))
    write_json(score.to_dict(), io.BytesIO())
