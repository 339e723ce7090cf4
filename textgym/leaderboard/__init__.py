"""Benchmarks and leaderboards: ``textgym bench`` runs a matrix of env x agent x seed,
``textgym leaderboard`` turns the run directories into ranked tables with confidence
intervals (Markdown, JSON, HTML) and learning curves.

Modules: :mod:`~textgym.leaderboard.config` (the YAML), :mod:`~textgym.leaderboard.runner`
and :mod:`~textgym.leaderboard.worker` (running it; :mod:`~textgym.leaderboard.ray_backend`
on Ray), :mod:`~textgym.leaderboard.baselines`
(random, majority, lead, supervised), :mod:`~textgym.leaderboard.stats` (bootstrap
interval, IQM), :mod:`~textgym.leaderboard.table` (pooling rules) and
:mod:`~textgym.leaderboard.render` (the pages). Only ``bench`` and the ``supervised``
baseline need torch.
"""

from textgym.leaderboard.stats import Estimate, bootstrap_ci, estimate, iqm

__all__ = ["Estimate", "bootstrap_ci", "estimate", "iqm"]
