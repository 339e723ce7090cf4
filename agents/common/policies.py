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

import inspect
import math
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical

from textgym.errors import TextgymError

from .encoders import (
    encode,
    encoder_config,
    encoder_from_config,
    hidden_size,
    is_causal_lm,
    load_encoder,
)

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
        hidden: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, Categorical]:
        """Encode each unique context once, then ``(log_prob, entropy, values, dist)`` per step.

        ``hidden``: :meth:`encode` of ``contexts``, when the caller keeps it for later use.
        """
        if hidden is None:
            hidden = self.encode(contexts)
        logits, values = self.heads(hidden, contexts, ctx_index, obs)
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

    Args:
        previous_tag: Condition on the previous word's tag. False reads the start symbol
            at every word: each word's tag then depends on the sentence alone, as in a
            token-classification head. Group agents that try several distinct tags per
            word leave most slots with histories the policy would never produce; without
            this input those histories cannot mislead it.
    """

    task = "ner"

    def __init__(
        self,
        encoder: nn.Module,
        n_actions: int,
        encoder_name: str = "",
        previous_tag: bool = True,
        **_: Any,
    ):
        super().__init__(encoder, n_actions, encoder_name)
        self.previous_tag = previous_tag
        tag_dim = max(16, self.hidden // 4)
        # ids 0..A-1 tags, A = "not tagged yet" (as in the observation), A + 1 = start
        self.tag_embedding = nn.Embedding(n_actions + 2, tag_dim)
        self.trunk = _Trunk(self.hidden + tag_dim, self.hidden, n_actions)

    def heads(self, hidden, contexts, ctx_index, obs):
        word = obs["word_index"][:, 0].clamp(max=contexts["word_starts"].shape[1] - 1)  # (B,)
        pos = contexts["word_starts"][ctx_index, word].clamp(max=hidden.shape[1] - 1)  # (B,)
        h_word = hidden[ctx_index, pos]  # (B, H)
        prev = obs["tags"].gather(1, (word - 1).clamp(min=0)[:, None])[:, 0]  # (B,)
        start = (word == 0) | (not self.previous_tag)
        prev = torch.where(start, torch.full_like(prev, self.n_actions + 1), prev)
        return self.trunk(torch.cat([h_word, self.tag_embedding(prev)], -1))

    def config(self) -> dict[str, Any]:
        return super().config() | {"previous_tag": self.previous_tag}


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
    COPY_SKIP = 3
    LEAD_PRIOR = (6.0, 2.0, 0.0, -8.0)
    STOP_PRIOR = (-4.0, 0.8)

    def __init__(
        self,
        encoder: nn.Module,
        n_actions: int,
        encoder_name: str = "",
        pad_token_id: int = 0,
        eos_token_id: int = 102,
        max_summary_tokens: int = 24,
        lead_prior: bool = True,
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
        # copy features of each source position, weighted per decoder state: continuing
        # right after (or up to ``COPY_SKIP`` tokens after) a source occurrence of the
        # last emitted token, and "already emitted"; plus a learned bias per source
        # position. ``lead_prior``: they start as "copy on from the start of the
        # source" (continue +6, skip one +2, repeat -4, position s: -0.1 s), a
        # lead-k-like policy that RL then edits; otherwise at zero (plain attention).
        self.copy_weights = nn.Linear(h, self.COPY_SKIP + 1)
        nn.init.zeros_(self.copy_weights.weight)
        positions = getattr(encoder.config, "max_position_embeddings", 512)
        self.position_bias = nn.Parameter(torch.zeros(positions))
        # the stop score grows with the summary's length at this learned rate
        self.length_weight = nn.Parameter(torch.zeros(()))
        self.lead_prior = lead_prior
        with torch.no_grad():
            if lead_prior:
                self.copy_weights.bias.copy_(torch.tensor(self.LEAD_PRIOR))
                self.position_bias.copy_(-0.1 * torch.arange(positions, dtype=torch.float32))
                self.trunk.policy.bias.fill_(self.STOP_PRIOR[0])
                self.length_weight.fill_(self.STOP_PRIOR[1])
                # content attention starts near zero, so that the prior decides at first
                nn.init.normal_(self.query.weight, std=0.01)
                nn.init.zeros_(self.query.bias)
            else:
                self.copy_weights.bias.zero_()

    def config(self) -> dict[str, Any]:
        return super().config() | {
            "pad_token_id": self.pad_token_id,
            "eos_token_id": self.eos_token_id,
            "max_summary_tokens": self.max_summary_tokens,
            "lead_prior": self.lead_prior,
        }

    def copy_features(
        self, src_ids: torch.Tensor, summary: torch.Tensor, n: torch.Tensor
    ) -> torch.Tensor:
        """``(B, S', COPY_SKIP + 1)`` float features of each source position.

        Feature ``k - 1`` (``k = 1..COPY_SKIP``): the source token ``k`` positions earlier
        is the last emitted one (``k = 1``: continue the span being copied). Last feature:
        the token is already in the summary (ROUGE punishes repeats).
        """
        b, t = summary.shape
        last = summary[torch.arange(b, device=summary.device), (n - 1).clamp(min=0)]
        last = torch.where(n > 0, last, torch.full_like(last, -1))  # (B,) -1: nothing yet
        feats = [
            (nn.functional.pad(src_ids, (k, 0), value=-2)[:, : src_ids.shape[1]] == last[:, None])
            for k in range(1, self.COPY_SKIP + 1)
        ]
        written = torch.arange(t, device=summary.device)[None] < n[:, None]  # (B, T)
        emitted = ((src_ids[:, :, None] == summary[:, None, :]) & written[:, None, :]).any(-1)
        return torch.stack([*feats, emitted], -1).float()

    def decode_next(
        self, x: torch.Tensor, n: torch.Tensor, src: torch.Tensor, src_mask: torch.Tensor
    ) -> torch.Tensor:
        """``self.decoder``'s output at position ``n`` of each row, ``(B, H)``.

        The same function as ``self.decoder(x, src, tgt_mask=causal, ...)[rows, n]`` (the
        layer is post-norm, without dropout), computed for that one position: the query at
        ``n`` attends to positions ``0..n``, and the cross-attention never projects the
        source. Its key projection moves to the query's side (``q . (W_k m + b_k) =
        (W_k^T q) . m + const``, the constant cancelling in the softmax) and its value
        projection after the weighted sum (the weights sum to 1). The full layer projected
        every source state of every step's row, ``(B, S', H) x (H, 2H)``; that was most of
        a summarization step's forward and backward time.
        """
        d = self.decoder
        b, length, h = x.shape
        heads = d.self_attn.num_heads
        hd = h // heads
        x_n = x[torch.arange(b, device=x.device), n]  # (B, H)
        # causal self-attention of the one query at n
        w, bias = d.self_attn.in_proj_weight, d.self_attn.in_proj_bias
        q = nn.functional.linear(x_n, w[:h], bias[:h]).view(b, heads, 1, hd)
        kv = nn.functional.linear(x, w[h:], bias[h:]).view(b, length, 2, heads, hd)
        seen = torch.arange(length, device=x.device)[None] <= n[:, None]  # (B, T+1)
        att = nn.functional.scaled_dot_product_attention(
            q, kv[:, :, 0].transpose(1, 2), kv[:, :, 1].transpose(1, 2), seen[:, None, None]
        )
        y = d.norm1(x_n + d.self_attn.out_proj(att.reshape(b, h)))
        # cross-attention to the source states
        w, bias = d.multihead_attn.in_proj_weight, d.multihead_attn.in_proj_bias
        q = nn.functional.linear(y, w[:h], bias[:h]).view(b, heads, hd) / math.sqrt(hd)
        q = torch.einsum("bnd,ndh->bnh", q, w[h : 2 * h].view(heads, hd, h))  # W_k^T q
        scores = torch.einsum("bnh,bsh->bns", q, src)
        weights = torch.softmax(scores.masked_fill(~src_mask[:, None], -math.inf), -1)
        mixed = torch.einsum("bns,bsh->bnh", weights, src)  # (B, heads, H)
        values = torch.einsum("bnh,ndh->bnd", mixed, w[2 * h :].view(heads, hd, h))
        values = values + bias[2 * h :].view(heads, hd)
        z = d.norm2(y + d.multihead_attn.out_proj(values.reshape(b, h)))
        return d.norm3(z + d.linear2(d.activation(d.linear1(z))))

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
        q = self.decode_next(x, n, src, src_mask)  # (B, H) state at the next position
        stop, values = self.trunk(q)  # (B, 1), (B,)
        stop = stop + self.length_weight * n[:, None]
        # query . key(src), with the key's weight moved to the query's side: no (B, S', H)
        # projection of the source per step
        query = self.query(q)
        scores = torch.einsum("bh,bsh->bs", query @ self.key.weight, src)
        scores = (scores + (query @ self.key.bias)[:, None]) / math.sqrt(self.hidden)
        scores = (
            scores
            + self.position_bias[:length]
            + torch.einsum(
                "bf,bsf->bs", self.copy_weights(q), self.copy_features(src_ids, summary, n)
            )
        )
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


class CausalLMPolicy(ActorCritic):
    """Summarization with a causal language model (``gpt2`` or any ``*ForCausalLM``).

    The LM reads the source, then the env's EOS token as a separator, then the summary so
    far, and its next-token distribution over the whole vocabulary is the policy; a value
    head reads the same last hidden state. The env's tokenizer must be the LM's
    (``tokenizer=`` env kwarg): actions are the LM's token ids.

    KV cache: :meth:`encode` runs the LM over the source once and returns its keys and
    values of every layer packed into one ``(C, S', 2 * layers * H)`` tensor, so the
    rollout's per-slot cache, the update's once-per-context encoding and the frozen-encoder
    memo all hold the source's KV cache. :meth:`heads` then runs only the separator and
    the summary prefix (at most ``T + 1`` tokens) on top of it, in chunks of
    ``chunk_size`` steps to bound the memory of the gathered caches.

    Args:
        model: A Hugging Face causal LM (``AutoModelForCausalLM``).
        eos_token_id: The env's stop token, also the separator after the source.
    """

    task = "summarization"
    kind = "causal_lm"
    chunk_size = 32

    def __init__(
        self,
        encoder: nn.Module,
        n_actions: int,
        encoder_name: str = "",
        eos_token_id: int = 0,
        **_: Any,
    ):
        super().__init__(encoder, n_actions, encoder_name)
        self.eos_token_id = eos_token_id
        cfg = encoder.config
        self.n_layers = cfg.num_hidden_layers
        # keys/values have num_key_value_heads heads (fewer than the queries' under GQA)
        self.n_kv_heads = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
        vocab = encoder.get_output_embeddings().out_features
        if vocab < n_actions:
            raise TextgymError(
                f"causal LM {encoder_name!r} predicts {vocab} tokens but the env has {n_actions} "
                "actions: pass the env the LM's tokenizer (env kwarg tokenizer=...)"
            )
        h = self.hidden
        self.value = nn.Sequential(nn.Linear(h, h), nn.Tanh(), nn.Linear(h, 1))
        # transformers 5 renamed the forward's ``past_key_values`` to ``cache``
        forward = inspect.signature(encoder.forward).parameters
        self._cache_kwarg = "cache" if "cache" in forward else "past_key_values"

    def value_parameters(self) -> list[nn.Parameter]:
        return list(self.value.parameters())

    def config(self) -> dict[str, Any]:
        return super().config() | {
            "kind": self.kind,
            "eos_token_id": self.eos_token_id,
        }

    def encode(self, contexts: dict[str, torch.Tensor]) -> torch.Tensor:
        """Source ``(C, S)`` -> its KV cache ``(C, S', 2 * layers * H)`` (keys, then values)."""
        mask = contexts["attention_mask"]
        length = max(int(mask.sum(1).max()), 1)
        out = self.encoder(
            input_ids=contexts["input_ids"][:, :length],
            attention_mask=mask[:, :length],
            use_cache=True,
        )
        cache = out.get("cache")
        layers = _cache_layers(out.past_key_values if cache is None else cache)
        c = mask.shape[0]
        flat = [t.transpose(1, 2).reshape(c, length, -1) for kv in layers for t in kv]
        return torch.cat(flat, -1)

    def heads(self, hidden, contexts, ctx_index, obs):
        logits, values = [], []
        for start in range(0, len(ctx_index), self.chunk_size):
            rows = slice(start, start + self.chunk_size)
            lg, v = self._heads(
                hidden, contexts, ctx_index[rows], {k: x[rows] for k, x in obs.items()}
            )
            logits.append(lg)
            values.append(v)
        return torch.cat(logits), torch.cat(values)

    def _heads(self, hidden, contexts, ctx_index, obs):
        from transformers import DynamicCache

        length = hidden.shape[1]
        b = len(ctx_index)
        src_mask = contexts["attention_mask"][ctx_index, :length]  # (B, S')
        packed = hidden[ctx_index].view(b, length, 2 * self.n_layers, self.n_kv_heads, -1)
        packed = packed.permute(2, 0, 3, 1, 4)  # (2 * layers, B, heads, S', head_dim)
        cache = DynamicCache()
        for layer in range(self.n_layers):
            cache.update(packed[2 * layer], packed[2 * layer + 1], layer)
        summary = obs["summary_ids"]  # (B, T)
        t = summary.shape[1]
        n = obs["summary_mask"].sum(1).clamp(max=t)  # (B,) tokens so far
        sep = torch.full_like(summary[:, :1], self.eos_token_id)
        tokens = torch.cat([sep, summary], 1)  # (B, T + 1)
        steps = torch.arange(t + 1, device=tokens.device)
        prefix_mask = (steps[None] <= n[:, None]).long()
        positions = src_mask.sum(1, keepdim=True) + steps[None]  # right after each source
        out = self.encoder(
            input_ids=tokens,
            attention_mask=torch.cat([src_mask, prefix_mask], 1),
            position_ids=positions,
            use_cache=True,
            output_hidden_states=True,
            **{self._cache_kwarg: cache},
        )
        rows = torch.arange(b, device=tokens.device)
        state = out.hidden_states[-1][rows, n]  # (B, H) after the last token written
        logits = out.logits[rows, n, : self.n_actions]
        return logits, self.value(state).squeeze(-1)


def _cache_layers(cache: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Per-layer ``(keys, values)`` of a transformers cache (``DynamicCache`` or tuples)."""
    layers = getattr(cache, "layers", None)
    if layers is not None:
        return [(layer.keys, layer.values) for layer in layers]
    return [(k, v) for k, v in cache]


POLICIES: dict[str, type[ActorCritic]] = {
    p.task: p for p in (TaggerPolicy, ClassifierPolicy, PointerGeneratorPolicy)
}


def make_policy(
    encoder_name: str,
    env_info: dict[str, Any],
    context_length: int | None = None,
    policy_kwargs: dict[str, Any] | None = None,
) -> ActorCritic:
    """The policy for ``env_info["task"]`` over a freshly loaded encoder.

    ``env_info`` holds the public env attributes (see :func:`env_info` in ``on_policy``):
    task, n_actions, vocab_size, pad_token_id, eos_token_id, max_summary_tokens.
    ``context_length`` is the length of the env's ``input_ids``: an encoder with fewer
    positions is refused here rather than failing at the first rollout ("tiny" is sized
    to fit). ``policy_kwargs``: arguments of the task's policy class (e.g.
    ``{"previous_tag": False}`` for the tagger); an unknown one is a TypeError.
    """
    policy_kwargs = dict(policy_kwargs or {})
    causal = env_info["task"] == "summarization" and is_causal_lm(encoder_name)
    cls = CausalLMPolicy if causal else POLICIES[env_info["task"]]
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "encoder", "_"}
    reserved = set(env_info) | {"encoder_name"}  # set from the env and --policy
    unknown = sorted(set(policy_kwargs) - (accepted - reserved))
    if unknown:
        raise TypeError(
            f"{cls.__name__} got unknown policy_kwargs {unknown}; valid: "
            f"{sorted(accepted - reserved)}"
        )
    if causal:
        # the LM also reads the separator and the summary after the source
        length = (
            None
            if context_length is None
            else context_length + env_info.get("max_summary_tokens", 0) + 1
        )
        model = load_encoder(encoder_name, env_info["vocab_size"], length, causal_lm=True)
        return CausalLMPolicy(model, encoder_name=encoder_name, **env_info, **policy_kwargs)
    encoder = load_encoder(encoder_name, env_info["vocab_size"], context_length)
    return cls(encoder, encoder_name=encoder_name, **env_info, **policy_kwargs)


def policy_from_config(config: dict[str, Any]) -> ActorCritic:
    """Rebuild a policy's architecture (untrained weights) from :meth:`ActorCritic.config`."""
    config = dict(config)
    if config.pop("kind", None) == CausalLMPolicy.kind:
        config.pop("task")
        return CausalLMPolicy(encoder_from_config(config.pop("encoder"), causal_lm=True), **config)
    encoder = encoder_from_config(config.pop("encoder"))
    return POLICIES[config.pop("task")](encoder, **config)


def obs_to_tensors(
    obs: dict[str, np.ndarray], device: torch.device | str
) -> dict[str, torch.Tensor]:
    """Numpy observation batch -> long tensors on ``device``."""
    return {k: torch.as_tensor(np.asarray(v), device=device).long() for k, v in obs.items()}
