"""RLOO: REINFORCE with a leave-one-out group baseline (Kool et al. 2019; Ahmadian et al. 2024).

Critic-free. ``G`` slots play each example (group rollouts, ``agents/common/group.py``);
each sample's baseline is the mean of the group's other samples, compared per step
(``baseline="step"``, dense rewards such as NER's token reward: each word is compared with
the other samples at that word) or per episode (``"episode"``, sparse rewards such as
ROUGE at the end of a summary).

Three objectives (``objective``):

- ``"plain"``: ``-A * log pi(a)`` with the leave-one-out advantage ``A``. Unbiased, but on
  NER its expectation for a word is still ``pi(gold) * grad log pi(gold)``, which
  vanishes where the policy is wrong: it collapses to all-"O" like plain REINFORCE.
- ``"scaled"``: the same advantage divided by the group's mean reward (its estimate of
  the expected reward, floored at ``value_floor``): the gradient of ``log E[r]`` rather
  than ``E[r]``, which does not vanish where the policy is wrong. For any reward.
- ``"loglik"``: for deterministic per-step 0/1 rewards that are 1 for exactly one action
  (NER's token reward, classification): the log-likelihood of the rewards the group
  observed (:func:`~.common.group.observed_reward_nll`). Every member learns from every
  action its group tried at that step; with ``distinct_actions`` a group of 4 tries 4
  different tags per word. Measured outside the project (MiniLM, 4k CoNLL sentences, 2
  epochs): 0.820 entity-F1, 0.98x supervised, where plain RLOO with 8 samples stayed at
  0.000. A member whose previous action was wrong is in a state the right actions never
  reach (for the tagger: a wrong previous tag); ``off_path_weight`` says how much its
  steps count (:func:`~.common.group.state_weights`). At 0, every step is learnt in the
  state after the right previous action, which the group found wherever one member
  scored: supervised learning's teacher-forced states, from rewards alone. On WNUT-16
  that took validation entity-F1 after 62k words from 0.106 (every member alike) to
  0.274 (learning rate 2e-4; 0.199 with seed 1).

The update is one gradient step per rollout on on-policy data, so the rollout's own
forward pass (run with autograd) serves as the update's (``single_pass``): a sentence costs
one encoder forward and one backward however many samples its group draws.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from textgym.errors import TextgymError

from .common.checkpoints import register_algorithm
from .common.group import (
    check_group_settings,
    group_loglik_extras,
    group_mean,
    group_scores,
    leave_one_out,
    observed_reward_nll,
)
from .common.on_policy import OnPolicyAlgorithm, OnPolicySettings
from .common.optim import make_adam

OBJECTIVES = ("loglik", "scaled", "plain")


@dataclass
class RLOOSettings(OnPolicySettings):
    """RLOO hyperparameters (on top of :class:`OnPolicySettings`; no critic is trained)."""

    group_size: int = 4
    """Samples per example (``G``); the baseline of each is the mean of the other G-1."""
    objective: str = "scaled"
    """``"loglik"``, ``"scaled"`` or ``"plain"``; see the module docstring."""
    baseline: str = "step"
    """``"step"``: compare returns-to-go at the same step (dense rewards); ``"episode"``:
    compare whole-episode returns (sparse rewards)."""
    gamma: float = 1.0
    """Discount of the returns that are compared (0: each step's own reward)."""
    value_floor: float = 0.05
    """``"scaled"``: lower bound on the group's mean reward that divides the advantage."""
    off_path_weight: float = 1.0
    """``"loglik"``: how much a step counts for a member whose previous action was wrong
    (:func:`~.common.group.state_weights`); steps on the right path count 1, and the
    group's shared first step counts once. 0 learns from the right path alone."""


@register_algorithm
class RLOO(OnPolicyAlgorithm):
    """RLOO with a transformer policy on group rollouts; see :class:`RLOOSettings`."""

    name = "rloo"
    settings_class = RLOOSettings

    def _setup(self) -> None:
        s = self.settings
        if s.objective not in OBJECTIVES:
            raise TextgymError(f"rloo objective must be one of {OBJECTIVES}, not {s.objective!r}")
        check_group_settings("rloo", s)
        trainable = [p for p in self.policy.policy_parameters() if p.requires_grad]
        self.optimizer = make_adam(trainable, s.learning_rate)

    def _single_step_update(self) -> bool:
        return True

    def _compute_advantages(self) -> None:
        """Group advantages instead of GAE (no critic)."""
        s, buf = self.settings, self.buffer
        valid = buf.valid
        if s.objective == "loglik":
            buf.extras = group_loglik_extras(
                buf,
                s.group_size,
                s.off_path_weight,
                "rloo objective='loglik'",
                ": use objective='scaled' for this env",
            )
            buf.advantages[:] = 0.0
            return
        scores = group_scores(buf.rewards, valid, s.baseline, s.gamma)
        adv = leave_one_out(scores, valid, s.group_size)
        if s.objective == "scaled":
            adv = adv / np.maximum(group_mean(scores, valid, s.group_size), s.value_floor)
        buf.advantages[:] = np.where(valid, adv, 0.0)

    def _loss(
        self,
        dist: torch.distributions.Categorical,
        actions: torch.Tensor,
        advantages: torch.Tensor,
        extras: dict[str, torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Summed ``(policy loss, entropy)`` over a set of steps."""
        if self.settings.objective == "loglik":
            nll = observed_reward_nll(
                dist.logits, extras["tried"].long(), extras["scored"], extras["use"].bool()
            )
            w = extras["weight"]
            return (w * nll).sum(), (w * dist.entropy()).sum()
        return -(advantages * dist.log_prob(actions)).sum(), dist.entropy().sum()

    def train(self) -> dict[str, float]:
        s, buf = self.settings, self.buffer
        if s.objective == "loglik":  # what the steps weigh (state_weights)
            n_valid = max(float(buf.extras["weight"].sum()), 1e-6)
        else:
            n_valid = max(int(buf.valid.sum()), 1)
        self.optimizer.zero_grad()
        policy_loss = entropy = 0.0
        # the rollout's own forward pass (single_pass), else minibatches that accumulate
        for mb, _, _, _, dist, _ in self._evaluated_minibatches(s.batch_size):
            pl, ent = self._loss(dist, mb.actions, mb.advantages, mb.extras)
            ((pl - s.ent_coef * ent) / n_valid).backward()
            policy_loss += pl.item()
            entropy += ent.item()
        # each rank's gradient is its mean over its steps: weighted, the mean over all
        self.dist.all_reduce_grads(self.policy.parameters(), n_valid)
        torch.nn.utils.clip_grad_norm_(self.policy.parameters(), s.max_grad_norm)
        self.optimizer.step()
        rewards = buf.rewards[buf.valid]
        out = {
            "train/policy_loss": policy_loss / n_valid,
            "train/entropy": entropy / n_valid,
            "train/learning_rate": self.optimizer.param_groups[0]["lr"],
            "train/reward_mean": float(rewards.mean()) if rewards.size else 0.0,
        }
        if s.objective == "loglik":
            hit = (buf.extras["use"] & (buf.extras["scored"] > 0)).any(-1)[buf.valid]
            out["train/found_fraction"] = float(hit.mean()) if hit.size else 0.0
        return out
