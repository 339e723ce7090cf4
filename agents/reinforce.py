"""REINFORCE (Williams 1992): Monte-Carlo returns, a baseline, an entropy bonus."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from .common.on_policy import (
    OnPolicyAlgorithm,
    OnPolicySettings,
    explained_variance,
    register_algorithm,
)


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

    def train(self) -> dict[str, float]:
        s, buf = self.settings, self.buffer
        if s.baseline == "mean":
            # the returns do not depend on the critic (lambda = 1), only the baseline does
            buf.advantages[:] = buf.returns - self.running_mean
            self.running_mean = s.baseline_momentum * self.running_mean + (
                1 - s.baseline_momentum
            ) * float(buf.returns.mean())
        total = buf.n_steps * buf.num_envs
        adv_all = torch.as_tensor(buf.advantages.reshape(-1))
        mean, std = adv_all.mean(), adv_all.std() + 1e-8
        logs: dict[str, list[float]] = {"policy_loss": [], "value_loss": [], "entropy": []}
        self.optimizer.zero_grad()
        for mb in buf.minibatches(s.batch_size, self.rng, self.device):
            log_prob, entropy, values, _ = self.policy.evaluate_actions(
                mb.contexts, mb.ctx_index, mb.obs, mb.actions, mb.action_masks
            )
            adv = (
                (mb.advantages - mean.to(self.device)) / std.to(self.device)
                if (s.normalize_advantage and total > 1)
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
        torch.nn.utils.clip_grad_norm_(self.policy.parameters(), s.max_grad_norm)
        self.optimizer.step()
        out = {f"train/{k}": float(np.mean(v)) for k, v in logs.items()}
        out["train/learning_rate"] = self.optimizer.param_groups[0]["lr"]
        out["train/explained_variance"] = explained_variance(buf.values, buf.returns)
        return out
