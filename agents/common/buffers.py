"""Rollout storage that keeps each context (sentence, document) once.

An NER episode is a sentence of ~14 words: 14 steps whose ``input_ids``,
``attention_mask``, ``word_starts`` and ``word_mask`` are identical. The buffer stores
those *context keys* once per episode in a context table and, per step, only an index
into it plus the keys that change (``word_index``, ``tags``, ``summary_ids``...), each in
the smallest integer dtype its ``Box`` bounds allow. In updates, a minibatch is made of
whole contexts so that each unique context is encoded once and the per-step heads are
gathered from that encoding.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from gymnasium import spaces


def compact_dtype(space: spaces.Box) -> np.dtype:
    """The smallest integer dtype holding every value of an integer ``Box``."""
    low, high = int(np.min(space.low)), int(np.max(space.high))
    for dtype in (np.uint8, np.int8, np.uint16, np.int16, np.int32, np.int64):
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return np.dtype(dtype)
    raise ValueError(f"no integer dtype holds the range [{low}, {high}]")


@dataclass
class Minibatch:
    """Tensors for one update step; ``B`` steps drawn from ``C`` unique contexts.

    ``contexts[k]`` is ``(C, ...)``, ``obs[k]`` and the rest are ``(B, ...)``;
    ``ctx_index[b]`` is the row of ``contexts`` that step ``b`` belongs to.
    """

    contexts: dict[str, torch.Tensor]
    ctx_index: torch.Tensor
    obs: dict[str, torch.Tensor]
    actions: torch.Tensor
    old_log_probs: torch.Tensor
    old_values: torch.Tensor
    advantages: torch.Tensor
    returns: torch.Tensor
    action_masks: torch.Tensor | None
    extras: dict[str, torch.Tensor] = dataclasses.field(default_factory=dict)
    """Per-step arrays an algorithm added to the buffer (``RolloutBuffer.extras``)."""


class RolloutBuffer:
    """``n_steps`` x ``num_envs`` transitions of a vector env with ``Dict`` observations.

    Args:
        observation_space: The *single* env's ``Dict`` observation space.
        context_keys: Keys constant within an episode, stored once per context.
        n_steps: Steps per slot per rollout.
        num_envs: Vector env slots.
        action_mask_size: Size of the action mask when the env has one (summaries), else
            None. Masks are stored bit-packed (vocab/8 bytes per step).
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        context_keys: Sequence[str],
        n_steps: int,
        num_envs: int,
        action_mask_size: int | None = None,
    ):
        self.context_keys = tuple(context_keys)
        self.step_keys = tuple(k for k in observation_space.spaces if k not in self.context_keys)
        self.n_steps, self.num_envs = n_steps, num_envs
        self.action_mask_size = action_mask_size
        shape = (n_steps, num_envs)
        self.obs = {
            k: np.zeros(shape + observation_space[k].shape, compact_dtype(observation_space[k]))
            for k in self.step_keys
        }
        self._ctx_dtypes = {k: compact_dtype(observation_space[k]) for k in self.context_keys}
        self.ctx_ids = np.zeros(shape, np.int64)
        self.actions = np.zeros(shape, np.int64)
        self.log_probs = np.zeros(shape, np.float32)
        self.values = np.zeros(shape, np.float32)
        self.next_values = np.zeros(shape, np.float32)
        self.rewards = np.zeros(shape, np.float32)
        self.terminated = np.zeros(shape, bool)
        self.truncated = np.zeros(shape, bool)
        self.advantages = np.zeros(shape, np.float32)
        self.returns = np.zeros(shape, np.float32)
        # False for the steps of a parked slot in a group rollout (agents/common/group.py)
        self.valid = np.ones(shape, bool)
        self.extras: dict[str, np.ndarray] = {}
        self.masks = (
            None
            if action_mask_size is None
            else np.zeros(shape + ((action_mask_size + 7) // 8,), np.uint8)
        )
        self.reset()

    def reset(self) -> None:
        """Forget all steps and contexts (the arrays are reused)."""
        self.pos = 0
        self.valid[:] = True
        self.extras = {}
        self._ctx_chunks: dict[str, list[np.ndarray]] = {k: [] for k in self.context_keys}
        self.num_contexts = 0
        self.contexts: dict[str, np.ndarray] = {}

    def add_contexts(self, obs: dict[str, np.ndarray], rows: np.ndarray) -> np.ndarray:
        """Store the context keys of the given slots as new contexts; returns their ids."""
        for k in self.context_keys:
            self._ctx_chunks[k].append(np.asarray(obs[k])[rows].astype(self._ctx_dtypes[k]))
        ids = np.arange(self.num_contexts, self.num_contexts + len(rows))
        self.num_contexts += len(rows)
        return ids

    def add(
        self,
        obs: dict[str, np.ndarray],
        ctx_ids: np.ndarray,
        actions: np.ndarray,
        log_probs: np.ndarray,
        values: np.ndarray,
        action_masks: np.ndarray | None = None,
    ) -> None:
        """Record what the agent saw and did at one vector step (rewards come after)."""
        t = self.pos
        for k in self.step_keys:
            self.obs[k][t] = obs[k]
        self.ctx_ids[t] = ctx_ids
        self.actions[t] = actions
        self.log_probs[t] = log_probs
        self.values[t] = values
        if self.masks is not None:
            self.masks[t] = np.packbits(np.asarray(action_masks, bool), axis=-1)

    def add_outcome(
        self,
        rewards: np.ndarray,
        terminated: np.ndarray,
        truncated: np.ndarray,
        next_values: np.ndarray,
    ) -> None:
        """Record the env's answer to the step added last; see ``gae.compute_gae``."""
        t = self.pos
        self.rewards[t] = rewards
        self.terminated[t] = terminated
        self.truncated[t] = truncated
        self.next_values[t] = next_values
        self.pos += 1

    @property
    def full(self) -> bool:
        return self.pos == self.n_steps

    def finalize(self, merge: bool = True) -> None:
        """Join the context table and merge identical contexts; call once the rollout is complete.

        Contexts are identified by content: the same sentence stored twice (the slots of
        a group rollout, or one drawn again by another slot) becomes one context, so an
        update encodes it once. ``merge=False`` keeps every stored context apart (the
        naive agent that ``context_cache=False`` measures).
        """
        self.valid[self.pos :] = False  # a group rollout may end before n_steps
        self.ctx_ids[self.pos :] = 0
        contexts = {k: np.concatenate(v) for k, v in self._ctx_chunks.items()}
        if merge and self.num_contexts > 1:
            rows = np.concatenate(
                [
                    contexts[k].reshape(self.num_contexts, -1).astype(np.int64)
                    for k in self.context_keys
                ],
                1,
            )
            _, first, inverse = np.unique(rows, axis=0, return_index=True, return_inverse=True)
            order = np.argsort(first)  # keep first-seen order: a pure function of the rollout
            rank = np.empty_like(order)
            rank[order] = np.arange(len(order))
            self.ctx_ids[:] = rank[inverse.reshape(-1)][self.ctx_ids]
            contexts = {k: v[first[order]] for k, v in contexts.items()}
            self.num_contexts = len(first)
        self.contexts = contexts

    def minibatches(
        self, batch_size: int, rng: np.random.Generator, device: torch.device | str
    ) -> Iterator[Minibatch]:
        """Yield about ``batch_size`` steps at a time, whole contexts together.

        Contexts are shuffled and their steps laid end to end, then cut every
        ``batch_size`` steps, so a context lands in one minibatch (two at a cut) and is
        encoded once there.
        """
        flat_ctx = self.ctx_ids.reshape(-1)
        rank = np.empty(self.num_contexts, np.int64)
        rank[rng.permutation(self.num_contexts)] = np.arange(self.num_contexts)
        order = np.argsort(rank[flat_ctx], kind="stable")
        order = order[self.valid.reshape(-1)[order]]  # parked slots' steps are not data
        for start in range(0, len(order), batch_size):
            yield self.get(order[start : start + batch_size], device)

    def get(self, idx: np.ndarray, device: torch.device | str) -> Minibatch:
        """The minibatch of the given flat step indices (row-major over steps x slots)."""
        unique, inverse = np.unique(self.ctx_ids.reshape(-1)[idx], return_inverse=True)

        def tensor(a: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
            return torch.as_tensor(np.ascontiguousarray(a)).to(device=device, dtype=dtype)

        def flat(a: np.ndarray) -> np.ndarray:
            return a.reshape((-1,) + a.shape[2:])[idx]

        masks = None
        if self.masks is not None:
            masks = np.unpackbits(flat(self.masks), axis=-1, count=self.action_mask_size)
            masks = tensor(masks, torch.bool)
        return Minibatch(
            contexts={k: tensor(v[unique], torch.long) for k, v in self.contexts.items()},
            ctx_index=tensor(inverse.reshape(-1), torch.long),
            obs={k: tensor(flat(v), torch.long) for k, v in self.obs.items()},
            actions=tensor(flat(self.actions), torch.long),
            old_log_probs=tensor(flat(self.log_probs), torch.float32),
            old_values=tensor(flat(self.values), torch.float32),
            advantages=tensor(flat(self.advantages), torch.float32),
            returns=tensor(flat(self.returns), torch.float32),
            action_masks=masks,
            extras={
                k: tensor(flat(v), torch.float32 if v.dtype.kind == "f" else torch.long)
                for k, v in self.extras.items()
            },
        )
