"""Encoder outputs kept while they are valid: per rollout slot, and per context for a frozen encoder."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .policies import ActorCritic


class ContextCache:
    """Encoder output per vector-env slot, recomputed only for slots whose context changed.

    ``hidden`` is ``(N, L, H)``; a slot's row stays valid while its ``input_ids`` row is
    unchanged. Call :meth:`clear` after every weight update.
    """

    def __init__(self, policy: ActorCritic):
        self.policy = policy
        self.clear()

    def clear(self) -> None:
        self.ids: np.ndarray | None = None
        self.hidden: torch.Tensor | None = None
        self.contexts: dict[str, torch.Tensor] = {}

    @torch.no_grad()
    def update(self, obs: dict[str, np.ndarray], obs_t: dict[str, torch.Tensor]) -> np.ndarray:
        """Encode the slots whose context changed (all after :meth:`clear`); returns them."""
        ids = np.asarray(obs["input_ids"])
        if self.ids is None or self.ids.shape != ids.shape:
            self.ids = None
            rows = np.arange(len(ids))
        else:
            rows = np.flatnonzero((ids != self.ids).any(1))
        if rows.size == 0:
            return rows
        rows_t = torch.as_tensor(rows, device=obs_t["input_ids"].device)
        ctx = {k: obs_t[k][rows_t] for k in self.policy.context_keys}
        hidden = self.policy.encode(ctx)  # (r, L', H)
        if self.ids is None:
            n, length = ids.shape
            self.hidden = hidden.new_zeros(n, length, hidden.shape[-1])
            self.contexts = {k: obs_t[k].clone() for k in self.policy.context_keys}
            self.ids = ids.copy()
        self.hidden[rows_t] = 0.0
        self.hidden[rows_t, : hidden.shape[1]] = hidden
        for k in self.policy.context_keys:
            self.contexts[k][rows_t] = ctx[k]
        self.ids[rows] = ids[rows]
        return rows

    def heads(self, obs_t: dict[str, torch.Tensor], rows: torch.Tensor | None = None):
        """``(logits, values)`` of the given slots (all by default) from the cache."""
        if rows is None:
            rows = torch.arange(len(self.ids), device=self.hidden.device)
        return self.policy.heads(self.hidden, self.contexts, rows, obs_t)


class FrozenEncodings:
    """``policy.encode`` memoised by context content, valid while the encoder is frozen.

    Holds one ``(L_i, H)`` float16 tensor per distinct context (its own length, no
    padding) on the encoder's device: about 0.1 MB per 128-token MiniLM context. A call
    encodes the unseen contexts in one batch and pads the rest from the memo.
    """

    def __init__(self, encode: Callable[[dict[str, torch.Tensor]], torch.Tensor]):
        self._encode = encode
        self.memo: dict[bytes, torch.Tensor] = {}

    @torch.no_grad()
    def __call__(self, contexts: dict[str, torch.Tensor]) -> torch.Tensor:
        lengths = contexts["attention_mask"].sum(1).clamp(min=1).tolist()
        ids = contexts["input_ids"].cpu().numpy()
        keys = [ids[i, :n].tobytes() for i, n in enumerate(lengths)]
        missing = [i for i, k in enumerate(keys) if k not in self.memo]
        if missing:
            rows = torch.as_tensor(missing, device=contexts["input_ids"].device)
            hidden = self._encode({k: v[rows] for k, v in contexts.items()})  # (m, L', H)
            for j, i in enumerate(missing):
                self.memo[keys[i]] = hidden[j, : lengths[i]].half()
        length = max(lengths)
        first = self.memo[keys[0]]
        out = first.new_zeros(len(keys), length, first.shape[-1], dtype=torch.float32)
        for i, k in enumerate(keys):
            out[i, : lengths[i]] = self.memo[k]
        return out  # (C, L', H)
