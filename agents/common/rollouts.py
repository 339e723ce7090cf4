"""Rollout collection of the on-policy agents: what fills the rollout buffer.

:class:`RolloutMixin` is the half of :class:`~textgym.agents.common.on_policy.OnPolicyAlgorithm`
that plays the vector env: step rollouts (``n_steps`` vector steps of every slot, episodes
running on across rollouts, each slot's context encoded once per episode through the
:class:`~textgym.agents.common.caches.ContextCache`) and episode rollouts (one whole
episode per slot, ``group_size`` slots per example opened with
``reset(options={"index": ...})``, each example's context encoded once for its group;
``agents/common/group.py``). It counts the env steps and finished episodes of every rank.
The algorithm supplies the policy, the buffer, the env and its settings, and computes the
advantages (``_compute_advantages``) once a rollout is in.
"""

from __future__ import annotations

import numpy as np
import torch

from textgym.errors import TextgymError

from .env_utils import action_masks, final_obs_rows
from .group import sample_group_actions
from .policies import obs_to_tensors


class RolloutMixin:
    """Plays the env into ``self.buffer``; see the module docstring.

    Needs the attributes :class:`OnPolicyAlgorithm` sets up: ``settings``, ``env``,
    ``env_info``, ``policy``, ``buffer``, ``device``, ``dist``, ``seed``,
    ``sample_generator``, ``schedule`` and ``schedule_rng`` (episode rollouts),
    ``_cache``, ``_obs``, the episode counters and ``rollout_grad``.
    """

    @property
    def _episode_mode(self) -> bool:
        return self.settings.group_size > 1 or self.settings.episode_rollouts

    @property
    def _has_masks(self) -> bool:
        return self.env_info["task"] == "summarization"

    def _sample(self, logits: torch.Tensor, masks: torch.Tensor | None, all_ranks: bool = False):
        """Sample actions; ``all_ranks``: the rows are this rank's rollout slots, drawn
        from the noise of every rank's slots (``Distributed.pad_rows``)."""
        dist = self.policy.distribution(logits, masks)
        probs = self.dist.pad_rows(dist.probs) if all_ranks else dist.probs
        actions = torch.multinomial(probs, 1, generator=self.sample_generator)[:, 0]
        if all_ranks:
            actions = self.dist.own_rows(actions)
        return actions, dist.log_prob(actions)

    def collect_rollouts(self) -> None:
        """Fill ``self.buffer`` with one rollout and compute its advantages."""
        self._finished = ([], [])
        steps = self._collect_group_rollout() if self._episode_mode else self._collect_steps()
        self._count_rollout(steps)
        self.buffer.finalize(merge=self.settings.context_cache)
        self._compute_advantages()

    def _count_rollout(self, steps: int) -> None:
        """Add the rollout's env steps and finished episodes, of every rank, to the counts."""
        returns, lengths = self._finished
        if self.dist.enabled:
            ranks = self.dist.all_gather((steps, returns, lengths))
            steps = sum(r[0] for r in ranks)
            returns = [x for r in ranks for x in r[1]]
            lengths = [x for r in ranks for x in r[2]]
        self.num_timesteps += steps
        self.num_episodes += len(returns)
        self._recent_returns.extend(returns)
        self._recent_lengths.extend(lengths)

    @torch.no_grad()
    def _collect_steps(self) -> int:
        """``n_steps`` vector steps of every slot; episodes run on across rollouts.

        Returns the env steps taken.
        """
        s, buf, env = self.settings, self.buffer, self.env
        n = env.num_envs
        if self._obs is None:
            # rank r's slot i plays what slot r * n + i of one process would
            seed = self.seed + self.num_timesteps + self.dist.rank * n
            self._obs, _ = env.reset(seed=seed)
        self._cache.clear()  # the weights changed since the last rollout
        buf.reset()
        ctx_ids = np.zeros(n, np.int64)
        final_values = np.zeros((s.n_steps, n), np.float32)
        for _ in range(s.n_steps):
            obs = self._obs
            obs_t = obs_to_tensors(obs, self.device)
            if not s.context_cache:
                # every slot re-encoded and stored as a new context, so the update also
                # encodes once per step
                self._cache.clear()
            changed = self._cache.update(obs, obs_t)
            masks = action_masks(env) if self._has_masks else None
            masks_t = None if masks is None else torch.as_tensor(masks, device=self.device)
            logits, values = self._cache.heads(obs_t)
            actions, log_probs = self._sample(logits, masks_t, all_ranks=True)
            if changed.size:  # new episodes (and every slot at the start) are new contexts
                ctx_ids[changed] = buf.add_contexts(obs, changed)
            buf.add(
                obs,
                ctx_ids,
                actions.cpu().numpy(),
                log_probs.cpu().numpy(),
                values.cpu().numpy(),
                masks,
            )
            next_obs, rewards, terminated, truncated, infos = env.step(actions.cpu().numpy())
            # a truncated episode continues in value: V(final obs), read with the finished
            # episode's encoding, which is still in the cache at this point
            cut = np.flatnonzero(truncated & ~terminated)
            if cut.size:
                final = obs_to_tensors(final_obs_rows(infos["final_obs"], cut), self.device)
                _, v = self._cache.heads(final, torch.as_tensor(cut, device=self.device))
                final_values[buf.pos, cut] = v.cpu().numpy()
            buf.add_outcome(rewards, terminated, truncated, np.zeros(n))
            self._track_episodes(rewards, terminated | truncated)
            self._obs = next_obs
        # bootstrap the unfinished episodes with V(s_T)
        obs_t = obs_to_tensors(self._obs, self.device)
        self._cache.update(self._obs, obs_t)
        _, last_values = self._cache.heads(obs_t)
        done = buf.terminated | buf.truncated
        following = np.concatenate([buf.values[1:], last_values.cpu().numpy()[None]])
        buf.next_values[:] = np.where(done, final_values, following)
        return s.n_steps * n

    def _collect_group_rollout(self) -> int:
        """One whole episode per slot, ``G`` slots per example (``agents/common/group.py``).

        Each group's context is encoded once. Slots whose episode has ended are parked
        (placeholder action, invalid steps, no policy pass). With ``rollout_grad`` the
        encoder runs with autograd and ``rollout_encoding`` keeps ``(hidden, contexts)``
        for an update that reuses this forward pass (:meth:`_rollout_pass`). Returns the
        env steps taken.

        With several ranks every rank draws the examples of all ranks from its copy of
        the schedule (the same on every rank) and plays its share, so the ranks play
        distinct examples and hold the same schedule.
        """
        s, buf, env = self.settings, self.buffer, self.env
        n, g = env.num_envs, s.group_size
        share = n // g
        examples = self.schedule.draw(share * self.dist.world_size, self.schedule_rng)
        examples = examples[self.dist.rank * share : (self.dist.rank + 1) * share]
        obs, _ = env.reset(options={"index": np.repeat(examples, g)})
        buf.reset()
        self.rollout_encoding = None
        self._end_episodes_in_flight()  # the next plain rollout (if any) resets afresh
        leaders = np.arange(0, n, g)
        ctx_of_group = buf.add_contexts(obs, leaders)  # (n_groups,)
        ctx_ids = np.repeat(ctx_of_group, g)  # (N,)
        obs_t = obs_to_tensors(obs, self.device)
        leaders_t = torch.as_tensor(leaders, device=self.device)
        contexts = {k: obs_t[k][leaders_t] for k in self.policy.context_keys}
        grad = self.rollout_grad and torch.is_grad_enabled()
        with torch.set_grad_enabled(grad):
            hidden = self.policy.encode(contexts)  # (n_groups, L', H)
        if grad:
            self.rollout_encoding = (hidden, contexts)
        log_probs_all = None
        if self._keeps_rollout_log_probs():
            log_probs_all = np.zeros((buf.n_steps, n, self.env_info["n_actions"]), np.float32)
        self.rollout_log_probs = log_probs_all
        # the steps need no graph: a single-pass update runs the heads again, once over
        # all of them (one batched call, whose backward gathers into hidden once)
        with torch.no_grad():
            slot_ctx = torch.as_tensor(np.repeat(np.arange(n // g), g), device=self.device)
            alive = np.ones(n, bool)
            steps = 0
            while alive.any():
                if buf.pos == buf.n_steps:
                    raise TextgymError(
                        f"an episode ran past {buf.n_steps} steps, the bound read from the "
                        "env's spaces (episode_step_bound); group rollouts need bounded episodes"
                    )
                rows = np.flatnonzero(alive)
                rows_t = torch.as_tensor(rows, device=self.device)
                masks = action_masks(env) if self._has_masks else None
                masks_t = None if masks is None else torch.as_tensor(masks, device=self.device)
                step_obs = {k: v[rows_t] for k, v in obs_t.items()}
                logits, values = self.policy.heads(hidden, contexts, slot_ctx[rows_t], step_obs)
                dist = self.policy.distribution(
                    logits, None if masks_t is None else masks_t[rows_t]
                )
                probs = torch.ones(n, dist.probs.shape[-1], device=self.device)
                probs[rows_t] = dist.probs.detach()
                actions_t = self.dist.own_rows(
                    sample_group_actions(
                        self.dist.pad_rows(probs), g, self.sample_generator, s.distinct_actions
                    )
                )
                log_probs = torch.zeros(n, device=self.device)
                log_probs[rows_t] = dist.log_prob(actions_t[rows_t]).detach()
                if log_probs_all is not None:
                    log_probs_all[buf.pos, rows] = dist.logits.detach().cpu().numpy()
                all_values = torch.zeros(n, device=self.device)
                all_values[rows_t] = values.detach()
                actions = actions_t.cpu().numpy()
                parked = ~alive
                if parked.any():  # any valid action; the env plays it on a new episode
                    actions[parked] = np.argmax(masks[parked], 1) if masks is not None else 0
                buf.add(
                    obs,
                    ctx_ids,
                    actions,
                    log_probs.cpu().numpy(),
                    all_values.cpu().numpy(),
                    masks,
                )
                buf.valid[buf.pos] = alive
                obs, rewards, terminated, truncated, infos = env.step(actions)
                rewards = np.where(alive, rewards, 0.0)
                done = terminated | truncated
                final_values = np.zeros(n, np.float32)
                cut = np.flatnonzero(truncated & ~terminated & alive)
                if cut.size:
                    final = obs_to_tensors(final_obs_rows(infos["final_obs"], cut), self.device)
                    cut_t = torch.as_tensor(cut, device=self.device)
                    with torch.no_grad():
                        _, v = self.policy.heads(hidden, contexts, slot_ctx[cut_t], final)
                    final_values[cut] = v.cpu().numpy()
                # a parked slot's steps end "terminated": nothing flows across them in GAE
                buf.add_outcome(
                    rewards, np.where(alive, terminated, True), truncated & alive, final_values
                )
                self._track_episodes(rewards, done & alive, alive)
                steps += int(alive.sum())
                alive &= ~done
                obs_t = obs_to_tensors(obs, self.device)
        # every slot's episode ended inside the rollout: V(s_{t+1}) is the next row's value
        # (or V(final obs) where truncated); rows past the end are no one's data
        t = buf.pos
        buf.rewards[t:], buf.values[t:], buf.terminated[t:], buf.truncated[t:] = 0, 0, True, False
        done = buf.terminated | buf.truncated
        following = np.concatenate([buf.values[1:], np.zeros((1, n), np.float32)])
        buf.next_values[:] = np.where(done, buf.next_values, following)
        return steps

    def _end_episodes_in_flight(self) -> None:
        """Drop the unfinished episodes: the next step rollout starts from a fresh reset
        (seeded by the step count). Their steps so far were trained on as cut episodes."""
        self._obs = None
        self._ep_returns[:] = 0.0
        self._ep_lengths[:] = 0

    def _track_episodes(
        self, rewards: np.ndarray, done: np.ndarray, playing: np.ndarray | None = None
    ) -> None:
        self._ep_returns += rewards
        self._ep_lengths += 1 if playing is None else playing
        if done.any():
            self._finished[0].extend(self._ep_returns[done].tolist())
            self._finished[1].extend(self._ep_lengths[done].tolist())
            self._ep_returns[done] = 0.0
            self._ep_lengths[done] = 0
