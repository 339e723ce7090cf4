"""Advantage estimation as pure functions over ``(n_steps, num_envs)`` arrays.

Bootstrapping is where on-policy code usually goes wrong, so it is explicit here. For
step ``t`` of slot ``i`` the caller passes ``next_values[t, i]``, the critic's value of the
observation that *followed* the action:

- episode still running: the value of the next observation;
- episode **truncated** (a time limit, not a true end): the value of its final
  observation (``infos["final_obs"]`` under same-step autoreset), because the return
  would have continued;
- episode **terminated**: anything; it is multiplied by 0, a true end has no future.

The GAE recursion is then cut at every episode end (terminated *or* truncated), since
the next row of the same slot belongs to a new episode.
"""

from __future__ import annotations

import numpy as np


def compute_gae(
    rewards: np.ndarray,
    values: np.ndarray,
    next_values: np.ndarray,
    terminated: np.ndarray,
    truncated: np.ndarray,
    gamma: float = 0.99,
    gae_lambda: float = 0.95,
) -> tuple[np.ndarray, np.ndarray]:
    """Generalised advantage estimation (Schulman et al. 2016).

    ============  ===================  ============================================
    argument      shape                meaning
    ============  ===================  ============================================
    rewards       (n_steps, num_envs)  reward of step t
    values        (n_steps, num_envs)  V(s_t)
    next_values   (n_steps, num_envs)  V(s_{t+1}); V(final obs) where truncated
    terminated    (n_steps, num_envs)  the episode truly ended at step t
    truncated     (n_steps, num_envs)  the episode was cut at step t
    ============  ===================  ============================================

    Returns:
        ``(advantages, returns)``, both ``(n_steps, num_envs)`` float32, with
        ``returns = advantages + values`` (the critic's regression target). With
        ``gae_lambda=1`` the returns are the Monte-Carlo returns (REINFORCE), bootstrapped
        only where an episode was truncated or the rollout ended, whatever ``values`` is.
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    not_terminated = 1.0 - np.asarray(terminated, dtype=np.float64)
    not_done = not_terminated * (1.0 - np.asarray(truncated, dtype=np.float64))
    deltas = rewards + gamma * np.asarray(next_values, dtype=np.float64) * not_terminated - values
    advantages = np.zeros_like(deltas)
    last = np.zeros(deltas.shape[1:])
    for t in reversed(range(deltas.shape[0])):
        last = deltas[t] + gamma * gae_lambda * not_done[t] * last
        advantages[t] = last
    return advantages.astype(np.float32), (advantages + values).astype(np.float32)
