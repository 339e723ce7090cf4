"""REINFORCE (Williams 1992): Monte-Carlo returns, a baseline, an entropy bonus."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .common.checkpoints import register_algorithm
from .common.on_policy import (
    OnPolicyAlgorithm,
    OnPolicySettings,
    explained_variance,
)
from .common.optim import fit_critic


@dataclass
class ReinforceSettings(OnPolicySettings):
    """REINFORCE hyperparameters (on top of :class:`OnPolicySettings`)."""

    gae_lambda: float = 1.0
    """1.0: advantages are Monte-Carlo returns minus the baseline (keep it at 1)."""
    baseline: str = "value"
    """``"value"``: a learned critic (value head, weight ``vf_coef``); ``"mean"``: a
    running mean of the returns (the value head is then not trained)."""
    baseline_momentum: float = 0.9
    """Momentum of the running-mean baseline."""
    n_critic_updates: int = 0
    """Extra passes of value-head regression over each rollout after the policy step
    (``baseline="value"``), with their own Adam at ``critic_learning_rate``, on the
    encodings the policy step already made (as in Spinning Up's VPG). One joint step per
    rollout leaves the critic behind the policy; with ``scale_advantage_by_value`` a
    critic that overestimates P(correct tag) on the words the policy gets wrong damps
    exactly their updates (DESIGN.md, "the known hard part")."""
    critic_learning_rate: float = 1e-3
    """Adam step size of the extra critic passes."""


@register_algorithm
class REINFORCE(OnPolicyAlgorithm):
    """Vanilla policy gradient: one gradient step per rollout (minibatches accumulate)."""

    name = "reinforce"
    settings_class = ReinforceSettings

    def _setup(self) -> None:
        super()._setup()
        if self.settings.baseline not in ("value", "mean"):
            raise ValueError(f"baseline must be 'value' or 'mean', not {self.settings.baseline!r}")
        self.running_mean = 0.0
        self.critic_optimizer = torch.optim.Adam(
            self.policy.value_parameters(), lr=self.settings.critic_learning_rate
        )

    def _optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return super()._optimizers() | {"critic_optimizer": self.critic_optimizer}

    def _single_step_update(self) -> bool:
        # the critic fits need each minibatch's encodings, which the rollout pass lacks
        s = self.settings
        return not (s.baseline == "value" and s.n_critic_updates > 0)

    def train(self) -> dict[str, float]:
        s, buf = self.settings, self.buffer
        if s.baseline == "mean":
            # the returns do not depend on the critic (lambda = 1), only the baseline does
            buf.advantages[:] = buf.returns - self.running_mean
            # of every rank's returns: the ranks keep one baseline
            (mean_return,) = self.dist.mean_floats(
                [float(buf.returns[buf.valid].mean())], int(buf.valid.sum())
            )
            self.running_mean = (
                s.baseline_momentum * self.running_mean + (1 - s.baseline_momentum) * mean_return
            )
        total = int(buf.valid.sum())
        normalize = s.normalize_advantage and self.dist.sum_int(total) > 1
        adv_all = torch.as_tensor(buf.advantages[buf.valid])
        # normalised over the whole rollout, of every rank
        mean, std = self.dist.mean_std(adv_all)
        std = std + 1e-8
        logs: dict[str, list[float]] = {"policy_loss": [], "value_loss": [], "entropy": []}
        self.optimizer.zero_grad()
        fit = s.baseline == "value" and s.n_critic_updates > 0
        batches = []
        # one gradient step: the rollout's own forward pass where single_pass kept it, else
        # minibatches (the same count on every rank: see fit)
        for mb, log_prob, entropy, values, _, hidden in self._evaluated_minibatches(
            s.batch_size, keep_hidden=fit
        ):
            if fit:  # encoder states before this rollout's step: one step stale, no new pass
                batches.append((hidden.detach(), mb))
            adv = (
                (mb.advantages - mean.to(self.device)) / std.to(self.device)
                if normalize
                else mb.advantages
            )
            weight = len(mb.actions) / total  # minibatches sum to the full-batch mean
            policy_loss = -(adv * log_prob).mean()
            value_loss = F.mse_loss(values, mb.returns)
            loss = policy_loss - s.ent_coef * entropy.mean()
            if s.baseline == "value":
                loss = loss + s.vf_coef * value_loss
            (weight * loss).backward()
            logs["policy_loss"].append(policy_loss.item())
            logs["value_loss"].append(value_loss.item())
            logs["entropy"].append(entropy.mean().item())
        self.dist.all_reduce_grads(self.policy.parameters(), total)
        torch.nn.utils.clip_grad_norm_(self.policy.parameters(), s.max_grad_norm)
        self.optimizer.step()
        if fit:
            logs["value_loss"] += fit_critic(
                self.policy,
                self.critic_optimizer,
                batches,
                s.n_critic_updates,
                s.max_grad_norm,
                self.dist.all_reduce_grads,
            )
        out = {f"train/{k}": float(np.mean(v)) for k, v in logs.items()}
        out["train/learning_rate"] = self.optimizer.param_groups[0]["lr"]
        out["train/explained_variance"] = explained_variance(
            buf.values[buf.valid], buf.returns[buf.valid]
        )
        return out
