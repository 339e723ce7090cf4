"""Trust Region Policy Optimization (Schulman et al. 2015).

Per minibatch: the policy gradient ``g`` of the surrogate, the natural direction
``s = F^-1 g`` by conjugate gradient on Fisher-vector products of the mean KL, a step
scaled to the trust region ``sqrt(2 max_kl / s^T F s)``, and a backtracking line search
that keeps the step only if the surrogate improves and the KL stays within ``max_kl``.
The critic (the value head's own weights) is then fitted by regression, which leaves
the policy unchanged.

The Fisher step is why TRPO learns NER where plain policy gradient collapses: for a
softmax head it undoes the ``pi(a)`` weighting that makes the vanilla gradient vanish on
the tags the policy gets wrong.

With ``objective="loglik"`` (group rollouts, deterministic per-step 0/1 rewards) the
objective is RLOO's log-likelihood of what each group observed instead of the
advantages' surrogate: the same natural step and line search, on an objective whose
gradient does not vanish where the policy is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.distributions import Categorical, kl_divergence
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.utils import parameters_to_vector

from .common.buffers import Minibatch
from .common.checkpoints import register_algorithm
from .common.group import (
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
from .common.optim import backtracking_line_search, conjugate_gradient, fit_critic, flat_grad


@dataclass
class TRPOSettings(OnPolicySettings):
    """TRPO hyperparameters (on top of :class:`OnPolicySettings`).

    ``learning_rate`` is the critic's Adam step size; the policy step size is set by
    ``max_kl``.
    """

    learning_rate: float = 1e-3
    """Critic (value head) Adam step size."""
    max_kl: float = 0.01
    """Trust-region radius: bound on the mean KL(old || new) per step."""
    cg_max_steps: int = 10
    """Conjugate-gradient iterations for the natural gradient."""
    cg_damping: float = 0.1
    """Added to the Fisher-vector product (F + damping I) for stability."""
    line_search_max_iter: int = 10
    """Step sizes tried by the backtracking line search."""
    line_search_shrinking_factor: float = 0.8
    """Step shrink factor per line-search try."""
    n_critic_updates: int = 5
    """Passes of critic regression over each rollout."""
    fisher_subsample: int = 1
    """Use every k-th step of the minibatch for Fisher-vector products (1: all)."""
    objective: str = "surrogate"
    """``"surrogate"``: the importance-weighted advantages. ``"loglik"``: on group
    rollouts with deterministic per-step 0/1 rewards that are 1 for exactly one action,
    the log-likelihood of the rewards each member's group observed at the step, weighted
    by ``off_path_weight`` (PPO's ``objective="loglik"`` without its clip: the trust
    region bounds the step). The advantages are unused."""


@register_algorithm
class TRPO(OnPolicyAlgorithm):
    """TRPO with a shared-backbone actor-critic; see :class:`TRPOSettings`."""

    name = "trpo"
    settings_class = TRPOSettings

    def _setup(self) -> None:
        check_objective(self.name, self.settings)
        self.optimizer = torch.optim.Adam(
            self.policy.value_parameters(), lr=self.settings.learning_rate
        )

    def _compute_advantages(self) -> None:
        super()._compute_advantages()
        s = self.settings
        if s.objective == "loglik":
            self.buffer.extras = group_loglik_extras(
                self.buffer, s.group_size, s.off_path_weight, f"{self.name} objective='loglik'"
            )

    def _surrogate(self, mb: Minibatch, dist: Categorical) -> torch.Tensor:
        """What a step raises: the advantages' surrogate or the observed rewards'
        weighted log-likelihood (see :class:`TRPOSettings`)."""
        s = self.settings
        if s.objective == "loglik":
            x = mb.extras
            nll = observed_reward_nll(dist.logits, x["tried"], x["scored"], x["use"].bool())
            return -state_weighted_mean(nll, x["weight"])
        adv = normalize(mb.advantages) if s.normalize_advantage else mb.advantages
        return (adv * (dist.log_prob(mb.actions) - mb.old_log_probs).exp()).mean()

    def _dist(self, mb: Minibatch) -> tuple[Categorical, torch.Tensor]:
        logits, values = self.policy.heads(
            self.policy.encode(mb.contexts), mb.contexts, mb.ctx_index, mb.obs
        )
        return self.policy.distribution(logits, mb.action_masks), values

    def _policy_step(self, mb: Minibatch) -> dict[str, float]:
        s = self.settings
        params = self.policy.policy_parameters()
        dist, _ = self._dist(mb)
        surrogate = self._surrogate(mb, dist)
        entropy = dist.entropy().mean()
        objective = surrogate + s.ent_coef * entropy
        sub = slice(None, None, s.fisher_subsample)
        # averaged over ranks, as are the Fisher-vector products and the line search's
        # values below: every rank then solves the same system and takes the same step
        n, n_sub = len(mb.actions), len(mb.actions[sub])
        g = self.dist.mean(flat_grad(objective, params, retain_graph=True), n)
        old_logits = dist.logits.detach()
        old_dist = Categorical(logits=old_logits)
        kl = kl_divergence(
            Categorical(logits=old_logits[sub]), Categorical(logits=dist.logits[sub])
        ).mean()
        grad_kl = flat_grad(kl, params, create_graph=True)

        def fisher_vector(v: torch.Tensor) -> torch.Tensor:
            fv = self.dist.mean(flat_grad(grad_kl @ v, params, retain_graph=True), n_sub)
            return fv + s.cg_damping * v

        direction = conjugate_gradient(fisher_vector, g, max_iter=s.cg_max_steps)
        shs = (direction @ fisher_vector(direction)).clamp(min=1e-12)
        full_step = torch.sqrt(2 * s.max_kl / shs) * direction
        base = objective.item()

        tried: list[float] = []  # the KL of each step size the line search evaluates

        def evaluate() -> tuple[float, float]:
            new, _ = self._dist(mb)
            new_obj = self._surrogate(mb, new) + s.ent_coef * new.entropy().mean()
            values = (new_obj.item() - base, kl_divergence(old_dist, new).mean().item())
            improvement, kl = self.dist.mean_floats(values, n)
            tried.append(kl)
            return improvement, kl

        before = parameters_to_vector(params).detach()
        fraction = backtracking_line_search(
            params,
            full_step,
            evaluate,
            s.max_kl,
            s.line_search_max_iter,
            s.line_search_shrinking_factor,
        )
        # the accepted step size was the last one evaluated; none accepted: the parameters
        # are the old ones again (no forward pass to measure either)
        approx_kl = tried[-1] if fraction > 0 else 0.0
        return {
            "policy_loss": -surrogate.item(),
            "entropy": entropy.item(),
            "approx_kl": approx_kl,
            "line_search_success": float(fraction > 0),
            "step_norm": float((parameters_to_vector(params).detach() - before).norm()),
        }

    def train(self) -> dict[str, float]:
        s, buf = self.settings, self.buffer
        logs: dict[str, list[float]] = {}
        # Fisher-vector products differentiate twice; only the math attention kernel
        # (not the fused CPU/flash ones) has a second derivative
        with sdpa_kernel(SDPBackend.MATH):
            for mb in self._minibatches(s.batch_size):
                for k, v in self._policy_step(mb).items():
                    logs.setdefault(k, []).append(v)
        if s.n_critic_updates:
            with torch.no_grad():  # encoded once: the critic's steps leave the encoder as is
                batches = [
                    (self.policy.encode(mb.contexts), mb) for mb in self._minibatches(s.batch_size)
                ]
            logs["value_loss"] = fit_critic(
                self.policy,
                self.optimizer,
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
