"""Supervised fine-tuning of a tagger policy: the reference point for the NER agents.

DESIGN.md compares the agents with "supervised fine-tuning of the same encoder". Here that
is the agents' own :class:`~.policies.TaggerPolicy` trained with cross-entropy on the gold
tags, the previous word's tag teacher-forced from the gold sequence. It runs the same
encode-once-per-sentence, heads-per-word computation as an on-policy update, so its
words/s and memory are the yardstick for the agents' (``benchmarks/agent_throughput.py``)
and, loaded into an agent, it is evaluated by the same ``predict`` path
(``benchmarks/learning_quality.py``).

Sentences come from the public env interface only: ``reset(options={"index": i})`` gives
the context keys, ``env.unwrapped.examples[i].tags`` the gold tags.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .policies import ActorCritic

CONTEXT_KEYS = ("input_ids", "attention_mask", "word_starts", "word_mask")


def ner_arrays(env: Any, limit: int | None = None) -> dict[str, np.ndarray]:
    """Context keys ``(N, ...)`` and gold tag ids ``gold (N, W)`` of a single NER env's split.

    Args:
        env: A single (not vector) ``TextNER-v0`` env.
        limit: Keep the first ``limit`` examples (None: all).
    """
    base = env.unwrapped
    label_id = {label: i for i, label in enumerate(base.labels)}
    n = base.num_examples if limit is None else min(limit, base.num_examples)
    rows: dict[str, list[np.ndarray]] = {k: [] for k in CONTEXT_KEYS}
    gold = []
    for i in range(n):
        obs, _ = env.reset(options={"index": i})
        for k in CONTEXT_KEYS:
            rows[k].append(np.asarray(obs[k]))
        tags = np.zeros(len(obs["word_mask"]), np.int64)
        kept = int(obs["word_mask"].sum())
        tags[:kept] = [label_id[t] for t in base.examples[i].tags[:kept]]
        gold.append(tags)
    out = {k: np.stack(v) for k, v in rows.items()}
    out["gold"] = np.stack(gold)
    return out


def sentence_batches(
    arrays: dict[str, np.ndarray], batch_size: int, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """Shuffled sentence indices, cut into batches of about ``batch_size`` words each
    (whole sentences, as an agent's minibatch keeps whole contexts)."""
    order = rng.permutation(len(arrays["gold"]))
    words = np.cumsum(arrays["word_mask"][order].sum(1))
    cuts = np.searchsorted(words, np.arange(batch_size, words[-1], batch_size), side="right")
    for chunk in np.split(order, cuts):
        if chunk.size:
            yield chunk


def supervised_step(
    policy: ActorCritic,
    optimizer: torch.optim.Optimizer,
    arrays: dict[str, np.ndarray],
    idx: np.ndarray,
    max_grad_norm: float = 1.0,
) -> tuple[float, int]:
    """One cross-entropy step on sentences ``idx``; returns ``(loss, words)``."""
    device = next(policy.parameters()).device
    contexts = {k: torch.as_tensor(arrays[k][idx], device=device).long() for k in CONTEXT_KEYS}
    gold = torch.as_tensor(arrays["gold"][idx], device=device)  # (C, W)
    n_words = contexts["word_mask"].sum(1)  # (C,)
    ctx_index = torch.repeat_interleave(torch.arange(len(idx), device=device), n_words)  # (B,)
    first = torch.cumsum(n_words, 0) - n_words  # (C,) offset of each sentence's first word
    word = torch.arange(len(ctx_index), device=device) - first[ctx_index]  # (B,)
    obs = {"word_index": word[:, None], "tags": gold[ctx_index]}  # teacher forcing
    logits, _ = policy.heads(policy.encode(contexts), contexts, ctx_index, obs)
    loss = F.cross_entropy(logits, gold[ctx_index, word])
    optimizer.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(policy.parameters(), max_grad_norm)
    optimizer.step()
    return loss.item(), len(ctx_index)
