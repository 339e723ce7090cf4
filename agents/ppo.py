"""Proximal Policy Optimization (Schulman et al. 2017), clipped surrogate."""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.distributions import Categorical

from .common.buffers import Minibatch
from .common.checkpoints import register_algorithm
from .common.group import (
    OBJECTIVES,
    check_objective,
    group_loglik_extras,
    observed_reward_nll,
    state_weighted_mean,
)
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
    objective: str = "surrogate"
    """``"surrogate"``: the clipped surrogate of the advantages. ``"loglik"``: on group
    rollouts with deterministic per-step 0/1 rewards that are 1 for exactly one action
    (NER's token reward, classification), the log-likelihood of the rewards each member's
    group observed at the step (RLOO's ``objective="loglik"``,
    :func:`~.common.group.observed_reward_nll`: every member learns from every action its
    group tried), weighted by ``off_path_weight`` (:func:`~.common.group.state_weights`),
    clipped as PPO clips a positive advantage: a step stops counting once the likelihood
    it raises is ``1 + clip_range`` times the rollout policy's. The advantages are unused."""


def clipped_log_ratio(log_ratio: torch.Tensor, clip_range: float) -> torch.Tensor:
    """``min(log_ratio, log(1 + clip_range))``: PPO's clip for an objective that only
    rises (a positive advantage, a likelihood): no gradient once the ratio of new to old
    passes ``1 + clip_range``."""
    return log_ratio.clamp(max=math.log1p(clip_range))


def clipped_surrogate(adv: torch.Tensor, ratio: torch.Tensor, clip_range: float) -> torch.Tensor:
    """PPO's clipped surrogate per element: ``min(adv * ratio, adv * clip(ratio))``, the
    ratio clipped to ``[1 - clip_range, 1 + clip_range]``."""
    return torch.min(adv * ratio, adv * ratio.clamp(1 - clip_range, 1 + clip_range))


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
    objectives = OBJECTIVES

    def _setup(self) -> None:
        check_objective(self.name, self.settings, self.objectives)
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

    def _keeps_rollout_log_probs(self) -> bool:
        return self.settings.objective == "loglik"

    def _compute_advantages(self) -> None:
        super()._compute_advantages()
        s, buf = self.settings, self.buffer
        if s.objective != "loglik":
            return
        extras = group_loglik_extras(
            buf, s.group_size, s.off_path_weight, f"{self.name} objective='loglik'"
        )
        # the rollout policy's negative log-likelihood of the same observations
        t, n, g = extras["tried"].shape
        old = observed_reward_nll(
            torch.as_tensor(self.rollout_log_probs).reshape(t * n, -1),
            torch.as_tensor(extras["tried"]).reshape(t * n, g),
            torch.as_tensor(extras["scored"]).reshape(t * n, g),
            torch.as_tensor(extras["use"]).reshape(t * n, g),
        )
        extras["old_nll"] = np.where(buf.valid, old.reshape(t, n).numpy(), 0.0).astype(np.float32)
        buf.extras = extras

    def _policy_loss(
        self, mb: Minibatch, log_ratio: torch.Tensor, dist: Categorical
    ) -> torch.Tensor:
        """The clipped surrogate of the advantages, or of the observed rewards' likelihood."""
        s = self.settings
        if s.objective == "loglik":
            x = mb.extras
            nll = observed_reward_nll(dist.logits, x["tried"], x["scored"], x["use"].bool())
            gain = clipped_log_ratio(x["old_nll"] - nll, s.clip_range)
            return -state_weighted_mean(gain, x["weight"])
        adv = normalize(mb.advantages) if s.normalize_advantage else mb.advantages
        return -clipped_surrogate(adv, log_ratio.exp(), s.clip_range).mean()

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
                log_ratio = log_prob - mb.old_log_probs
                ratio = log_ratio.exp()
                policy_loss = self._policy_loss(mb, log_ratio, dist)
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
