"""GRPO (Shao et al. 2024): PPO's clipped surrogate on group-normalised advantages.

Critic-free. ``G`` slots play each example (group rollouts, ``agents/common/group.py``)
and each sample's advantage is its score standardised within its group,
``(s - mean) / (std + eps)``: per step for dense rewards (``baseline="step"``: each NER
word is compared with the group's other samples at that word) or per episode for sparse
ones (``"episode"``). The update is PPO's (``n_epochs`` passes of clipped minibatch steps,
each unique context encoded once per minibatch), with an optional KL penalty to the frozen
initial policy (``kl_coef``).

On NER with ``distinct_actions`` a group tries ``G`` different tags per word: member 0
samples from the policy and members 1..G-1 are *probes* that take actions member 0 did
not. Where a probe finds the right tag it gets a large positive advantage however little
mass the policy gave it, so the gradient does not vanish where the policy is wrong (as
``pi(gold) * grad log pi(gold)`` does for independent samples). A probe's negative
advantage is dropped: probes are tried because the policy ranked them low, and pushing
each one down raises every other logit in proportion to its probability, which on NER
pushes "O" up at every word without end (measured: all-"O" with the tiny encoder on a
CoNLL subset, F1 0.41 with probes' negative advantages dropped).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from textgym.errors import TextgymError

from .common.checkpoints import register_algorithm
from .common.group import check_group_settings, group_normalized, group_scores, on_path
from .ppo import PPO, PPOSettings


@dataclass
class GRPOSettings(PPOSettings):
    """GRPO hyperparameters (PPO's, on top of :class:`OnPolicySettings`; no critic)."""

    group_size: int = 4
    """Samples per example (``G``) that are standardised against each other."""
    baseline: str = "step"
    """``"step"``: standardise returns-to-go at each step (dense rewards); ``"episode"``:
    whole-episode returns (sparse rewards)."""
    gamma: float = 1.0
    """Discount of the returns that are compared (0: each step's own reward)."""
    vf_coef: float = 0.0
    """No critic: the value head is not trained."""
    normalize_advantage: bool = False
    """The advantages are standardised within groups already."""
    n_epochs: int = 1
    """Passes over each rollout."""


@register_algorithm
class GRPO(PPO):
    """GRPO with a transformer policy on group rollouts; see :class:`GRPOSettings`."""

    name = "grpo"
    settings_class = GRPOSettings

    def _setup(self) -> None:
        if self.settings.objective != "surrogate":
            raise TextgymError(
                "grpo's objective is the clipped surrogate of its group-normalised "
                f"advantages, not {self.settings.objective!r} (objective='loglik' is ppo's "
                "and rloo's)"
            )
        check_group_settings("grpo", self.settings)
        super()._setup()

    def _compute_advantages(self) -> None:
        """Group-normalised advantages instead of GAE; returns are the compared scores."""
        s, buf = self.settings, self.buffer
        scores = group_scores(buf.rewards, buf.valid, s.baseline, s.gamma)
        adv = group_normalized(scores, buf.valid, s.group_size)
        if s.distinct_actions:
            # members 1..G-1 took the actions member 0 did not: they are probes, tried
            # *because* the policy ranked them below. Their negative advantages would
            # push that mass onto the policy's favourite at every step (on NER: "O" for
            # ever, since the gradient of -log pi(probe) raises every other logit by its
            # probability); only what a probe found better counts
            probe = (np.arange(buf.num_envs) % s.group_size) > 0
            adv = np.where(probe[None, :], np.maximum(adv, 0.0), adv)
        if s.off_path_weight != 1.0:
            adv = np.where(on_path(buf.rewards), adv, s.off_path_weight * adv)
        buf.advantages[:] = adv
        buf.returns[:] = np.where(buf.valid, scores, 0.0)
