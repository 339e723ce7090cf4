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

Two objectives (``objective``):

- ``"surrogate"``: each member's clipped surrogate of its own action's advantage, in its
  own state.
- ``"group"``: for deterministic per-step rewards (NER's token reward, classification),
  every member's state takes the clipped surrogate of *every* action its group tried at
  the step, each with that action's group-normalised advantage: a tag's reward is the
  same whichever member tried it, so what one member found holds in another's state.
  With ``off_path_weight`` 0 only the state after the right previous action learns
  (:func:`~.common.group.state_weights`), as RLOO's and PPO's ``"loglik"`` objective
  does; where no member found the right action, every advantage is 0 (GRPO's nature:
  a group that all scored alike teaches nothing).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.distributions import Categorical

from textgym.errors import TextgymError

from .common.buffers import Minibatch
from .common.checkpoints import register_algorithm
from .common.group import (
    check_group_settings,
    group_loglik_extras,
    group_normalized,
    group_scores,
    group_view,
    on_path,
    per_member,
    state_weighted_mean,
)
from .ppo import PPO, PPOSettings, clipped_surrogate


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
    objective: str = "surrogate"
    """``"surrogate"``: each member's own action in its own state; ``"group"``: every
    action the group tried, in each member's state (deterministic per-step rewards, see
    the module docstring)."""


@register_algorithm
class GRPO(PPO):
    """GRPO with a transformer policy on group rollouts; see :class:`GRPOSettings`."""

    name = "grpo"
    settings_class = GRPOSettings
    objectives = ("surrogate", "group")

    def _setup(self) -> None:
        s = self.settings
        if s.objective == "loglik":
            raise TextgymError(
                "grpo's objective is the clipped surrogate of its group-normalised "
                "advantages ('surrogate' or 'group'), not 'loglik' (that is ppo's and rloo's)"
            )
        check_group_settings("grpo", s)
        if s.objective == "group" and (s.baseline != "step" or s.gamma != 0.0):
            raise TextgymError(
                "grpo objective='group' compares each step's own reward (an action's "
                "reward must not depend on the member that tried it): it needs "
                f"baseline='step' and gamma=0, not baseline={s.baseline!r}, gamma={s.gamma}"
            )
        super()._setup()

    def _keeps_rollout_log_probs(self) -> bool:
        return self.settings.objective == "group"

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
        if s.objective == "group":
            self._group_extras(adv)
        elif s.off_path_weight != 1.0:
            adv = np.where(on_path(buf.rewards), adv, s.off_path_weight * adv)
        buf.advantages[:] = adv
        buf.returns[:] = np.where(buf.valid, scores, 0.0)

    def _group_extras(self, adv: np.ndarray) -> None:
        """What ``objective="group"`` learns at each member's step: the group's tried
        actions, their advantages ``adv`` (``(T, N)``, each member's own), the rollout
        policy's log-probability of each in the member's state, and the state's weight."""
        s, buf = self.settings, self.buffer
        extras = group_loglik_extras(
            buf,
            s.group_size,
            s.off_path_weight,
            "grpo objective='group'",
            ": use objective='surrogate' for this env",
        )
        tried_adv = per_member(group_view(np.where(buf.valid, adv, 0.0), s.group_size))
        t, n, g = extras["tried"].shape
        old = np.take_along_axis(self.rollout_log_probs.reshape(t, n, -1), extras["tried"], axis=2)
        extras["tried_adv"] = np.where(extras["use"], tried_adv, 0.0).astype(np.float32)
        extras["old_log_prob"] = np.where(extras["use"], old, 0.0).astype(np.float32)
        buf.extras = extras

    def _policy_loss(
        self, mb: Minibatch, log_ratio: torch.Tensor, dist: Categorical
    ) -> torch.Tensor:
        s = self.settings
        if s.objective != "group":
            return super()._policy_loss(mb, log_ratio, dist)
        x = mb.extras
        use = x["use"].bool()
        log_p = torch.log_softmax(dist.logits, -1).gather(1, x["tried"].long())  # (B, G)
        ratio = (log_p.masked_fill(~use, 0.0) - x["old_log_prob"]).exp()
        gain = (clipped_surrogate(x["tried_adv"], ratio, s.clip_range) * use).sum(-1)
        return -state_weighted_mean(gain, x["weight"])
