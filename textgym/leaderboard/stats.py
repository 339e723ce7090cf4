"""Statistics over seeds: the mean with a percentile-bootstrap 95% interval, and the IQM.

With 3 to 10 seeds a normal-theory interval is a guess about a distribution nobody has
seen; the bootstrap only resamples the scores that exist (Agarwal et al., 2021, "Deep RL
at the edge of the statistical precipice", whose ``rliable`` reports the same two
numbers). Both functions are pure and seeded, so a leaderboard renders the same twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from textgym.errors import TextgymError

DEFAULT_RESAMPLES = 10_000


@dataclass(frozen=True)
class Estimate:
    """A score summarised over seeds.

    Attributes:
        mean: Mean over seeds.
        ci_low: Lower end of the 95% percentile-bootstrap interval of the mean.
        ci_high: Upper end.
        iqm: Interquartile mean (the mean of the middle 50% of the sorted scores).
        n: Number of seeds.
    """

    mean: float
    ci_low: float
    ci_high: float
    iqm: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
        return {
            "mean": self.mean,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "iqm": self.iqm,
            "n": self.n,
        }


def _scores(values: Sequence[float]) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64)
    if x.ndim != 1 or x.size == 0:
        raise TextgymError(f"need a non-empty 1-D sequence of scores, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise TextgymError(f"scores must be finite, got {x.tolist()}")
    return x


def bootstrap_ci(
    values: Sequence[float],
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile-bootstrap interval of the mean of ``values``.

    Draws ``n_resamples`` samples of ``len(values)`` scores with replacement (one
    ``(n_resamples, n)`` index matrix from ``np.random.default_rng(seed)``), takes each
    sample's mean, and returns the ``(1 - confidence) / 2`` and ``(1 + confidence) / 2``
    quantiles of those means (``np.quantile``'s default linear interpolation).

    A single score, or identical scores, give a zero-width interval: the data carry no
    information about spread, and the leaderboard shows the seed count next to it.

    Args:
        values: One score per seed.
        confidence: Coverage of the interval, in (0, 1).
        n_resamples: Bootstrap samples.
        seed: Seed of the resampling RNG.

    Returns:
        ``(low, high)``.
    """
    x = _scores(values)
    if not 0.0 < confidence < 1.0:
        raise TextgymError(f"confidence must be in (0, 1), got {confidence}")
    if n_resamples < 1:
        raise TextgymError(f"n_resamples must be >= 1, got {n_resamples}")
    if x.min() == x.max():  # no spread to resample (and no rounding error in the means)
        return float(x[0]), float(x[0])
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, x.size, size=(n_resamples, x.size))  # (R, n)
    means = x[idx].mean(axis=1)  # (R,)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [alpha, 1.0 - alpha])
    # Means of resamples can differ from the data in the last ulp; clamp so the interval
    # never leaves the range of the data.
    return float(max(low, x.min())), float(min(high, x.max()))


def iqm(values: Sequence[float]) -> float:
    """Interquartile mean: drop ``floor(n / 4)`` scores from each end, average the rest.

    This is ``scipy.stats.trim_mean(values, 0.25)`` (what ``rliable`` reports): robust to
    one diverged seed, less noisy than the median. With fewer than 4 seeds nothing is
    dropped and it equals the mean.
    """
    x = np.sort(_scores(values))
    if x[0] == x[-1]:
        return float(x[0])
    cut = x.size // 4
    return float(x[cut : x.size - cut].mean())


def estimate(
    values: Sequence[float],
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> Estimate:
    """Mean, bootstrap interval and IQM of one score per seed."""
    x = _scores(values)
    low, high = bootstrap_ci(x, confidence, n_resamples, seed)
    mean = float(x[0]) if x.min() == x.max() else float(x.mean())
    return Estimate(mean, low, high, iqm(x), int(x.size))
