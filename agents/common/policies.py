"""Actor-critic policies: one shared text encoder, task heads for policy and value.

Every policy splits its forward pass in two so that the expensive part runs once per
context (sentence, document) rather than once per env step:

- :meth:`ActorCritic.encode` ``contexts -> hidden``: the encoder over the context keys,
  ``(C, L) -> (C, L', H)`` with ``L'`` the longest unpadded context in the batch;
- :meth:`ActorCritic.heads` ``(hidden, contexts, ctx_index, obs) -> (logits, values)``:
  cheap per-step heads; step ``b`` reads context row ``ctx_index[b]``.

Shapes: ``C`` contexts, ``B`` steps, ``L`` tokens, ``H`` hidden size, ``A`` actions,
``W`` words (NER), ``T`` summary tokens.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical

from .encoders import encode, encoder_config, encoder_from_config, hidden_size, load_encoder

CONTEXT_KEYS = {
    "ner": ("input_ids", "attention_mask", "word_starts", "word_mask"),
    "classification": ("input_ids", "attention_mask"),
    "summarization": ("input_ids", "attention_mask"),
}


def length_buckets(lengths: list[int], overhead: int = 32) -> list[tuple[list[int], int]]:
    """Split contexts into ``(rows, padded_length)`` buckets minimising padded tokens.

    The cost of a bucket is ``len(rows) * padded_length + overhead``: the tokens the
    encoder runs over plus a per-call cost (in tokens) that keeps buckets from getting
    tiny. Rows are sorted by length and cut optimally by dynamic programming, so a
    batch of similar lengths stays one call.
    """
    n = len(lengths)
    order = sorted(range(n), key=lengths.__getitem__)
    sizes = [max(lengths[i], 1) for i in order]
    if n <= 1 or sizes[-1] * n <= sum(sizes) + overhead:
        return [(list(range(n)), sizes[-1] if sizes else 1)]
    best = [0.0] + [math.inf] * n  # best[j]: cost of the first j sorted rows
    cut = [0] * (n + 1)
    for j in range(1, n + 1):
        top = sizes[j - 1]
        for i in range(j):
            cost = best[i] + (j - i) * top + overhead
            if cost < best[j]:
                best[j], cut[j] = cost, i
    buckets, j = [], n
    while j > 0:
        i = cut[j]
        buckets.append(([order[k] for k in range(i, j)], sizes[j - 1]))
        j = i
    return buckets[::-1]


class ActorCritic(nn.Module):
    """Base class: an encoder, a task trunk, a policy head and a value head.

    Args:
        encoder: A Hugging Face model returning ``last_hidden_state``.
        n_actions: Size of the (discrete) action space.
        encoder_name: What the encoder was built from ("minilm", "tiny", a name/path);
            recorded in checkpoints.
    """

    task: str

    def __init__(self, encoder: nn.Module, n_actions: int, encoder_name: str = "", **_: Any):
        super().__init__()
        self.encoder = encoder
        self.encoder_name = encoder_name
        self.n_actions = n_actions
        self.hidden = hidden_size(encoder)

    @property
    def context_keys(self) -> tuple[str, ...]:
        return CONTEXT_KEYS[self.task]

    def value_parameters(self) -> list[nn.Parameter]:
        """Parameters only the value head uses (the critic TRPO fits by regression)."""
        return list(self.trunk.value.parameters())

    def policy_parameters(self) -> list[nn.Parameter]:
        """Every other trainable parameter: what the policy's distribution depends on."""
        value = {id(p) for p in self.value_parameters()}
        return [p for p in self.parameters() if id(p) not in value and p.requires_grad]

    def config(self) -> dict[str, Any]:
        """JSON-serialisable description from which :func:`policy_from_config` rebuilds it."""
        return {
            "task": self.task,
            "n_actions": self.n_actions,
            "encoder_name": self.encoder_name,
            "encoder": encoder_config(self.encoder),
        }

    def encode(self, contexts: dict[str, torch.Tensor]) -> torch.Tensor:
        """``(C, L)`` context keys -> ``(C, L', H)`` hidden states, ``L'`` = longest context.

        Contexts of very different lengths are encoded in length buckets
        (:func:`length_buckets`), so a batch with one long sentence does not pad every
        other one to its length; states past a context's end are zeros (the heads mask
        them out).
        """
        mask = contexts["attention_mask"]
        lengths = mask.sum(1)
        length = max(int(lengths.max()), 1)
        ids = contexts["input_ids"]
        buckets = length_buckets(lengths.tolist())
        if len(buckets) == 1:
            return encode(self.encoder, ids[:, :length], mask[:, :length])
        parts, rows = [], []
        for bucket_rows, bucket_length in buckets:
            index = torch.as_tensor(bucket_rows, device=ids.device)
            states = encode(self.encoder, ids[index, :bucket_length], mask[index, :bucket_length])
            parts.append(nn.functional.pad(states, (0, 0, 0, length - bucket_length)))
            rows.append(index)
        order = torch.argsort(torch.cat(rows))
        return torch.cat(parts)[order]

    def heads(
        self,
        hidden: torch.Tensor,
        contexts: dict[str, torch.Tensor],
        ctx_index: torch.Tensor,
        obs: dict[str, torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-step ``(logits (B, A), values (B,))``; see the module docstring."""
        raise NotImplementedError

    @staticmethod
    def distribution(logits: torch.Tensor, action_masks: torch.Tensor | None) -> Categorical:
        """The action distribution, restricted to ``action_masks`` (True = allowed).

        A row whose policy puts no mass on any allowed action falls back to uniform over
        the allowed ones instead of producing NaN.
        """
        if action_masks is not None:
            masked = logits.masked_fill(~action_masks, -math.inf)
            dead = torch.isinf(masked).all(-1, keepdim=True)
            uniform = torch.zeros_like(logits).masked_fill(~action_masks, -math.inf)
            logits = torch.where(dead, uniform, masked)
        return Categorical(logits=logits)

    def evaluate_actions(
        self,
        contexts: dict[str, torch.Tensor],
        ctx_index: torch.Tensor,
        obs: dict[str, torch.Tensor],
        actions: torch.Tensor,
        action_masks: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Categorical]:
        """Encode each unique context once, then ``(log_prob, entropy, values, dist)`` per step."""
        logits, values = self.heads(self.encode(contexts), contexts, ctx_index, obs)
        dist = self.distribution(logits, action_masks)
        return dist.log_prob(actions), dist.entropy(), values, dist

    def forward(
        self, obs: dict[str, torch.Tensor], action_masks: torch.Tensor | None = None
    ) -> tuple[Categorical, torch.Tensor]:
        """Un-cached ``(distribution, values)`` for a batch of full observations."""
        contexts = {k: obs[k] for k in self.context_keys}
        index = torch.arange(len(obs["input_ids"]), device=obs["input_ids"].device)
        logits, values = self.heads(self.encode(contexts), contexts, index, obs)
        return self.distribution(logits, action_masks), values


class _Trunk(nn.Module):
    """Features -> shared hidden layer -> (policy logits, value)."""

    def __init__(self, in_dim: int, dim: int, n_actions: int):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(in_dim, dim), nn.Tanh())
        self.policy = nn.Linear(dim, n_actions)
        # a small MLP of its own: TRPO regresses the critic on these weights only, which
        # leaves the (trust-region constrained) policy untouched
        self.value = nn.Sequential(nn.Linear(dim, dim), nn.Tanh(), nn.Linear(dim, 1))
        # small initial logits: a near-uniform start keeps every tag explored
        nn.init.normal_(self.policy.weight, std=0.01)
        nn.init.zeros_(self.policy.bias)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.body(x)
        return self.policy(h), self.value(h).squeeze(-1)


class TaggerPolicy(ActorCritic):
    """NER: the encoder state of the word's first subword plus the previous word's tag.

    The encoder reads the sentence once; tags chosen so far enter only the head (an
    embedding of the previous word's tag, or a start symbol), so the encoding stays valid
    for the whole episode.
    """

    task = "ner"

    def __init__(self, encoder: nn.Module, n_actions: int, encoder_name: str = "", **_: Any):
        super().__init__(encoder, n_actions, encoder_name)
        tag_dim = max(16, self.hidden // 4)
        # ids 0..A-1 tags, A = "not tagged yet" (as in the observation), A + 1 = start
        self.tag_embedding = nn.Embedding(n_actions + 2, tag_dim)
        self.trunk = _Trunk(self.hidden + tag_dim, self.hidden, n_actions)

    def heads(self, hidden, contexts, ctx_index, obs):
        word = obs["word_index"][:, 0].clamp(max=contexts["word_starts"].shape[1] - 1)  # (B,)
        pos = contexts["word_starts"][ctx_index, word].clamp(max=hidden.shape[1] - 1)  # (B,)
        h_word = hidden[ctx_index, pos]  # (B, H)
        prev = obs["tags"].gather(1, (word - 1).clamp(min=0)[:, None])[:, 0]  # (B,)
        prev = torch.where(word == 0, torch.full_like(prev, self.n_actions + 1), prev)
        return self.trunk(torch.cat([h_word, self.tag_embedding(prev)], -1))


class ClassifierPolicy(ActorCritic):
    """Classification: mean of the token states over the attention mask."""

    task = "classification"

    def __init__(self, encoder: nn.Module, n_actions: int, encoder_name: str = "", **_: Any):
        super().__init__(encoder, n_actions, encoder_name)
        self.trunk = _Trunk(self.hidden, self.hidden, n_actions)

    def heads(self, hidden, contexts, ctx_index, obs):
        states = hidden[ctx_index]  # (B, L', H)
        mask = contexts["attention_mask"][ctx_index, : hidden.shape[1]].unsqueeze(-1).float()
        pooled = (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # (B, H)
        return self.trunk(pooled)


class PointerGeneratorPolicy(ActorCritic):
    """Summarization: a one-layer causal decoder that copies source tokens or stops.

    The decoder reads the summary so far (token embeddings shared with the encoder, plus
    learned positions, after a learned start vector) with causal self-attention and
    cross-attention to the source states. Its state at the current position scores
    every source position (pointer attention) and a stop action; the probabilities of
    positions holding the same token id are summed into a distribution over the vocabulary,
    with the stop mass on ``eos_token_id``. It can only emit source tokens and EOS: exactly
    the env's ``constraint="source"`` action set, and it needs no pretrained decoder.

    The summary prefix is at most ``T`` (24) tokens and the decoder one layer, so re-reading
    it each step costs a small fraction of the cached source encoding.

    Args:
        pad_token_id: Padding id of the env's tokenizer (never copied).
        eos_token_id: The env's stop token (emitted by the stop action, never copied).
        max_summary_tokens: ``T``, the length of ``summary_ids``.
    """

    task = "summarization"

    def __init__(
        self,
        encoder: nn.Module,
        n_actions: int,
        encoder_name: str = "",
        pad_token_id: int = 0,
        eos_token_id: int = 102,
        max_summary_tokens: int = 24,
        **_: Any,
    ):
        super().__init__(encoder, n_actions, encoder_name)
        self.pad_token_id, self.eos_token_id = pad_token_id, eos_token_id
        self.max_summary_tokens = max_summary_tokens
        h = self.hidden
        heads = max(1, h // 64)
        self.start = nn.Parameter(torch.zeros(h))
        self.positions = nn.Embedding(max_summary_tokens + 1, h)
        self.decoder = nn.TransformerDecoderLayer(
            h, heads, dim_feedforward=2 * h, dropout=0.0, batch_first=True
        )
        self.query = nn.Linear(h, h)
        self.key = nn.Linear(h, h)
        self.trunk = _Trunk(h, h, 1)  # the single "policy" logit is the stop score

    def config(self) -> dict[str, Any]:
        return super().config() | {
            "pad_token_id": self.pad_token_id,
            "eos_token_id": self.eos_token_id,
            "max_summary_tokens": self.max_summary_tokens,
        }

    def heads(self, hidden, contexts, ctx_index, obs):
        length = hidden.shape[1]
        src = hidden[ctx_index]  # (B, S', H)
        src_ids = contexts["input_ids"][ctx_index, :length]  # (B, S')
        src_mask = contexts["attention_mask"][ctx_index, :length].bool()  # (B, S')
        summary = obs["summary_ids"]  # (B, T)
        n = obs["summary_mask"].sum(1).clamp(max=summary.shape[1])  # (B,) tokens so far
        b, t = summary.shape
        tokens = self.encoder.get_input_embeddings()(summary)  # (B, T, H)
        x = torch.cat([self.start.expand(b, 1, -1), tokens], 1)  # (B, T+1, H)
        x = x + self.positions.weight[: t + 1]
        causal = torch.triu(torch.ones(t + 1, t + 1, dtype=torch.bool, device=x.device), 1)
        future = torch.arange(t + 1, device=x.device)[None] > n[:, None]  # (B, T+1)
        y = self.decoder(
            x, src, tgt_mask=causal, tgt_key_padding_mask=future, memory_key_padding_mask=~src_mask
        )
        q = y[torch.arange(b, device=y.device), n]  # (B, H) state at the next position
        stop, values = self.trunk(q)  # (B, 1), (B,)
        scores = torch.einsum("bh,bsh->bs", self.query(q), self.key(src)) / math.sqrt(self.hidden)
        copyable = src_mask & (src_ids != self.eos_token_id) & (src_ids != self.pad_token_id)
        copyable[:, 0] = False  # the [CLS]-like first token is not text
        scores = scores.masked_fill(~copyable, -math.inf)
        probs = torch.softmax(torch.cat([scores, stop], 1), -1)  # (B, S'+1)
        vocab = torch.zeros(b, self.n_actions, device=q.device, dtype=probs.dtype)
        vocab = vocab.scatter_add(1, src_ids, probs[:, :-1])
        vocab[:, self.eos_token_id] += probs[:, -1]
        # log of a sum of probabilities; ids with no mass get -inf (and no NaN gradient)
        logits = vocab.clamp_min(1e-30).log().masked_fill(vocab <= 0, -math.inf)
        return logits, values


POLICIES: dict[str, type[ActorCritic]] = {
    p.task: p for p in (TaggerPolicy, ClassifierPolicy, PointerGeneratorPolicy)
}


def make_policy(
    encoder_name: str, env_info: dict[str, Any], context_length: int | None = None
) -> ActorCritic:
    """The policy for ``env_info["task"]`` over a freshly loaded encoder.

    ``env_info`` holds the public env attributes (see :func:`env_info` in ``on_policy``):
    task, n_actions, vocab_size, pad_token_id, eos_token_id, max_summary_tokens.
    ``context_length`` is the length of the env's ``input_ids``: an encoder with fewer
    positions is refused here rather than failing at the first rollout ("tiny" is sized
    to fit).
    """
    encoder = load_encoder(encoder_name, env_info["vocab_size"], context_length)
    return POLICIES[env_info["task"]](encoder, encoder_name=encoder_name, **env_info)


def policy_from_config(config: dict[str, Any]) -> ActorCritic:
    """Rebuild a policy's architecture (untrained weights) from :meth:`ActorCritic.config`."""
    config = dict(config)
    encoder = encoder_from_config(config.pop("encoder"))
    return POLICIES[config.pop("task")](encoder, **config)


def obs_to_tensors(
    obs: dict[str, np.ndarray], device: torch.device | str
) -> dict[str, torch.Tensor]:
    """Numpy observation batch -> long tensors on ``device``."""
    return {k: torch.as_tensor(np.asarray(v), device=device).long() for k, v in obs.items()}
