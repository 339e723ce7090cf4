"""A randomly initialised tiny GPT-2 saved as a local model: the causal-LM policy's
offline stand-in for ``gpt2`` (whose weights and tokenizer need the network)."""

import torch
import transformers


def save_tiny_gpt2(path, vocab_size: int, eos_token_id: int) -> str:
    """Save a 2-layer, 32-wide GPT-2 over ``vocab_size`` ids to ``path``; returns it."""
    config = transformers.GPT2Config(
        vocab_size=vocab_size,
        n_embd=32,
        n_layer=2,
        n_head=2,
        n_positions=64,
        bos_token_id=eos_token_id,
        eos_token_id=eos_token_id,
    )
    torch.manual_seed(0)
    transformers.GPT2LMHeadModel(config).save_pretrained(path)
    return str(path)
