"""Bootstrap interval and IQM against hand computations."""

import numpy as np
import pytest

from textgym.errors import TextgymError
from textgym.leaderboard.stats import bootstrap_ci, estimate, iqm


@pytest.mark.parametrize("scores", [[0.37, 0.37, 0.37], [0.1] * 5, [1.0]])
def test_identical_scores_give_a_zero_width_interval(scores):
    low, high = bootstrap_ci(scores, seed=3)
    assert low == high == scores[0]
    est = estimate(scores)
    assert est.ci_low == est.ci_high == est.mean == est.iqm == scores[0]


def test_interval_matches_a_hand_computation_with_a_fixed_seed():
    scores = [0.2, 0.5, 0.9]
    # by hand: the same draws, each sample's mean, then the 2.5% / 97.5% order statistics
    # with linear interpolation between neighbours (position q * (R - 1) in sorted order).
    draws = np.random.default_rng(7).integers(0, 3, size=(5, 3))
    means = sorted(sum(scores[i] for i in row) / 3 for row in draws)
    pos_low, pos_high = 0.025 * 4, 0.975 * 4
    expected_low = means[0] + (pos_low - 0) * (means[1] - means[0])
    expected_high = means[3] + (pos_high - 3) * (means[4] - means[3])
    low, high = bootstrap_ci(scores, n_resamples=5, seed=7)
    assert low == pytest.approx(expected_low, abs=1e-12)
    assert high == pytest.approx(expected_high, abs=1e-12)


def test_interval_matches_the_exact_bootstrap_distribution():
    # Two seeds scoring 0 and 1: a resample's mean is 0, 0.5 or 1 with probabilities
    # 1/4, 1/2, 1/4. The 2.5% and 97.5% quantiles are therefore 0 and 1, and the 30% and
    # 70% quantiles (a 40% interval) both fall inside the 0.5 block.
    assert bootstrap_ci([0.0, 1.0], seed=0) == (0.0, 1.0)
    assert bootstrap_ci([0.0, 1.0], confidence=0.4, seed=0) == (0.5, 0.5)
    # Three seeds 1, 2, 3: a mean of exactly 1 (or 3) has probability 1/27 > 2.5%.
    assert bootstrap_ci([1.0, 2.0, 3.0], seed=0) == (1.0, 3.0)


def test_interval_is_reproducible_and_seed_dependent():
    scores = [0.41, 0.48, 0.52, 0.55, 0.61]
    assert bootstrap_ci(scores, seed=1) == bootstrap_ci(scores, seed=1)
    low, high = bootstrap_ci(scores, seed=1)
    assert min(scores) < low < np.mean(scores) < high < max(scores)


def test_iqm_drops_a_quarter_from_each_end():
    assert iqm([7, 1, 100, 3, 5, 2, 6, 4]) == pytest.approx((3 + 4 + 5 + 6) / 4)
    assert iqm([0.2, 0.4, 0.9]) == pytest.approx(0.5)  # fewer than 4 seeds: the mean


@pytest.mark.parametrize("bad", [[], [float("nan"), 1.0], [[1.0, 2.0]]])
def test_bad_scores_are_refused(bad):
    with pytest.raises(TextgymError):
        estimate(bad)
