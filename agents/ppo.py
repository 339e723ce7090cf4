"""Proximal Policy Optimization (Schulman et al. 2017), clipped surrogate."""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.distributions import Categorical

from .common.checkpoints import register_algorithm
from .common.on_policy import (
    OnPolicyAlgorithm,
    OnPolicySettings,
    explained_variance,
    normalize,
)


@dataclass
class PPOSettings(OnPolicySettings):
    """PPO hyperparameters (on top of :class:`OnPolicySettings`)."""

    n_epochs: int = 4
    """Passes over each rollout."""
    clip_range: float = 0.2
    """Probability-ratio clipping epsilon of the surrogate."""
    clip_range_vf: float | None = None
    """Clip the value change per update to this (None: no value clipping)."""
    target_kl: float | None = None
    """Stop the epochs early once the approximate KL to the rollout policy passes
    1.5 x this (None: never)."""
    kl_coef: float = 0.0
    """Weight of a KL(policy || frozen initial policy) penalty (0: off). Keeps a
    generator close to its starting point; costs one more encoder pass per minibatch."""


def categorical_kl(p: Categorical, q: Categorical) -> torch.Tensor:
    """KL(p || q) per row, 0 (not NaN) over actions p gives no mass.

    ``torch.distributions.kl_divergence`` computes ``0 * (-inf - -inf)`` = NaN on the
    actions a mask removes (-inf logits in both), which a generator's masks always do.
    """
    outside = p.probs == 0
    log_p = p.logits.masked_fill(outside, 0.0)
    log_q = q.logits.masked_fill(outside, 0.0)
    return (p.probs * (log_p - log_q)).sum(-1)


@register_algorithm
class PPO(OnPolicyAlgorithm):
    """PPO with a shared-backbone transformer actor-critic; see :class:`PPOSettings`."""

    name = "ppo"
    settings_class = PPOSettings

    def _setup(self) -> None:
        super()._setup()
        self.reference = None
        if self.settings.kl_coef > 0:
            self.reference = copy.deepcopy(self.policy).requires_grad_(False)

    def _frozen_modules(self) -> dict[str, torch.nn.Module]:
        # the reference is the policy as training began; rebuilt from the loaded weights
        # on resume it would drift to wherever the run had got to
        return {} if self.reference is None else {"reference": self.reference}

    def _single_step_update(self) -> bool:
        return self.settings.n_epochs == 1

    def train(self) -> dict[str, float]:
        s, buf = self.settings, self.buffer
        logs: dict[str, list[float]] = {
            k: [] for k in ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction")
        }
        if self.reference is not None:
            logs["reference_kl"] = []
        stop, epochs = False, 0
        while epochs < s.n_epochs and not stop:
            epochs += 1
            # with one epoch, a rollout that is one minibatch is evaluated by its own
            # forward pass (single_pass); later epochs and minibatches encode again
            for mb, log_prob, entropy, values, dist, _ in self._evaluated_minibatches(
                s.batch_size, one_step=False
            ):
                mb_adv = normalize(mb.advantages) if s.normalize_advantage else mb.advantages
                log_ratio = log_prob - mb.old_log_probs
                ratio = log_ratio.exp()
                policy_loss = torch.max(
                    -mb_adv * ratio, -mb_adv * ratio.clamp(1 - s.clip_range, 1 + s.clip_range)
                ).mean()
                if s.clip_range_vf is not None:
                    values = mb.old_values + (values - mb.old_values).clamp(
                        -s.clip_range_vf, s.clip_range_vf
                    )
                value_loss = F.mse_loss(values, mb.returns)
                loss = policy_loss - s.ent_coef * entropy.mean() + s.vf_coef * value_loss
                if self.reference is not None:
                    with torch.no_grad():
                        ref_logits, _ = self.reference.heads(
                            self.reference.encode(mb.contexts), mb.contexts, mb.ctx_index, mb.obs
                        )
                    ref = self.reference.distribution(ref_logits, mb.action_masks)
                    ref_kl = categorical_kl(dist, ref).mean()
                    loss = loss + s.kl_coef * ref_kl
                    logs["reference_kl"].append(ref_kl.item())
                with torch.no_grad():
                    approx_kl = ((ratio - 1) - log_ratio).mean().item()
                # over every rank's minibatch, so that all ranks take the same early stop
                (approx_kl,) = self.dist.mean_floats([approx_kl], len(mb.actions))
                logs["policy_loss"].append(policy_loss.item())
                logs["value_loss"].append(value_loss.item())
                logs["entropy"].append(entropy.mean().item())
                logs["approx_kl"].append(approx_kl)
                logs["clip_fraction"].append(
                    ((ratio - 1).abs() > s.clip_range).float().mean().item()
                )
                if s.target_kl is not None and approx_kl > 1.5 * s.target_kl:
                    stop = True
                    break
                self.optimizer.zero_grad()
                loss.backward()
                self.dist.all_reduce_grads(self.policy.parameters(), len(mb.actions))
                torch.nn.utils.clip_grad_norm_(self.policy.parameters(), s.max_grad_norm)
                self.optimizer.step()
        out = {f"train/{k}": float(np.mean(v)) for k, v in logs.items() if v}
        out["train/n_epochs"] = epochs
        out["train/learning_rate"] = self.optimizer.param_groups[0]["lr"]
        out["train/explained_variance"] = explained_variance(
            buf.values[buf.valid], buf.returns[buf.valid]
        )
        return out
