"""Reference baselines, run and scored exactly like an agent: ``random``, ``majority``,
``lead`` and ``supervised``.

Each baseline is a function ``baseline(ctx, *, <its settings>) -> Fitted`` that builds a
policy for :func:`textgym.evaluate` (the callable form: a batch of observations in, one
action per slot out), so its metrics come from the same code path, on the same split,
as an RL agent's. :func:`run_baseline` fits it, evaluates it and writes the same
``summary.json`` that ``textgym train`` writes.

- ``random``: a uniformly random legal action at every step (summaries: random tokens
  among ``action_masks()`` until EOS or the length cap).
- ``majority``: one constant answer: ``"O"`` for every word (NER), the most frequent
  label of the train split (classification). Not defined for summarization.
- ``lead``: the first ``k`` words of the article, then EOS (summarization only). A word
  starts at a token that is not a subword continuation and has a letter or digit, so
  punctuation rides along with the word before it.
- ``supervised``: cross-entropy fine-tuning of the policy the RL agents train (``policy``:
  ``minilm``, ``tiny`` or a Hugging Face name; the same tagger or classifier,
  encoder and heads, built from the same env attributes), on the train split, from the
  env's own observations and the corpus' gold labels
  (:mod:`textgym.agents.common.supervised`). The tagger reads the previous word's tag,
  teacher-forced from the gold tags; like the agents it trains with dropout off.
  AdamW with linear warmup and decay; one validation point per epoch forms its learning
  curve; a checkpoint after every epoch lets an interrupted run continue. Its
  predictions come from an agent's cached predict path. Not offered for summarization
  (use ``lead``).

Step counts: ``random``, ``majority`` and ``lead`` interact with no training env
(``total_env_steps`` 0). ``supervised`` reports the labelled decisions it trained on
(words for NER, documents for classification, times epochs) as ``total_env_steps``, so
its sample budget reads on the same axis as an agent's env steps; it never sees a reward.
"""

from __future__ import annotations

import os
import platform
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

from textgym.errors import TextgymError
from textgym.leaderboard.io import atomic_write_json

Policy = Callable[..., np.ndarray]


@dataclass
class Context:
    """What a baseline is given: the env, the seed and where it may keep state.

    Attributes:
        env_id: Registered env id.
        env_kwargs: Env kwargs (no ``split``).
        seed: Seed of every random choice the baseline makes.
        policy: Encoder name for ``supervised`` (``minilm``, ``tiny``, a HF name/path).
        device: ``auto``, ``cpu`` or ``cuda``.
        run_dir: The run directory (``supervised`` keeps its checkpoint there).
        validation_split: Split of the learning-curve points (None: no curve).
    """

    env_id: str
    env_kwargs: dict[str, Any]
    seed: int = 0
    policy: str = "minilm"
    device: str = "auto"
    run_dir: Path | None = None
    validation_split: str | None = "validation"

    def make(self, split: str) -> gym.Env:
        import textgym  # noqa: F401  (registers the ids)

        return gym.make(self.env_id, split=split, **self.env_kwargs)

    def evaluate(self, policy: Policy, split: str) -> Any:
        import textgym

        return textgym.evaluate(policy, self.env_id, split=split, **self.env_kwargs)


@dataclass
class Fitted:
    """A baseline ready to be scored.

    Attributes:
        policy: ``obs batch (, action_masks=...) -> actions`` for :func:`textgym.evaluate`.
        hyperparameters: The settings it ran with, defaults included.
        total_env_steps: See the module docstring.
        wall_time_s: Seconds spent fitting (0 for the constant baselines).
        device: Where it ran.
        policy_name: Encoder name, or None for baselines without a model.
        validation_curve: ``[{"timesteps": ..., <metric>: ...}, ...]``.
    """

    policy: Policy
    hyperparameters: dict[str, Any]
    total_env_steps: int = 0
    wall_time_s: float = 0.0
    device: str = "cpu"
    policy_name: str | None = None
    validation_curve: list[dict[str, float]] = field(default_factory=list)


def _scalars(result: Any) -> dict[str, float]:
    out = {k: float(v) for k, v in result.metrics.items() if isinstance(v, (int, float))}
    out["mean_reward"] = float(result.mean_return)
    return out


def _curve_point(ctx: Context, policy: Policy, timesteps: int) -> list[dict[str, float]]:
    if ctx.validation_split is None:
        return []
    return [{"timesteps": timesteps, **_scalars(ctx.evaluate(policy, ctx.validation_split))}]


def _task(env: gym.Env) -> str:
    return env.unwrapped.task


# ----- random / majority / lead ---------------------------------------------------------


def random(ctx: Context) -> Fitted:
    """A uniformly random legal action per slot and step, seeded by the run's seed."""
    rng = np.random.default_rng(ctx.seed)
    env = ctx.make("train")
    n_actions = int(env.action_space.n)
    env.close()

    def act(obs: dict, action_masks: np.ndarray | None = None) -> np.ndarray:
        batch = len(obs["input_ids"])
        if action_masks is None:
            return rng.integers(0, n_actions, size=batch)
        scores = rng.random(action_masks.shape) * action_masks  # (B, A): 0 where illegal
        return scores.argmax(axis=1)

    fitted = Fitted(act, {})
    fitted.validation_curve = _curve_point(ctx, act, 0)
    return fitted


def majority(ctx: Context) -> Fitted:
    """The constant answer: ``"O"`` (NER) or the most frequent train label (classification)."""
    env = ctx.make("train")
    base = env.unwrapped
    task, labels = base.task, tuple(base.labels)
    if task == "ner":
        if "O" not in labels:
            raise TextgymError(f"majority: {ctx.env_id} has no 'O' tag among {labels}")
        answer = labels.index("O")
    elif task == "classification":
        counts = Counter(example.label for example in base.examples)
        # ties go to the label listed first, so the choice never depends on dict order
        answer = max(range(len(labels)), key=lambda i: (counts.get(labels[i], 0), -i))
    else:
        raise TextgymError(
            f"majority has no meaning for {task} ({ctx.env_id}); use the 'lead' baseline"
        )
    env.close()

    def act(obs: dict) -> np.ndarray:
        return np.full(len(obs["input_ids"]), answer)

    fitted = Fitted(act, {"answer": labels[answer]})
    fitted.validation_curve = _curve_point(ctx, act, 0)
    return fitted


def _word_start_table(tokenizer_name: str, vocab_size: int) -> tuple[np.ndarray, set[int]]:
    """For each token id: does it start a new word? And the special token ids.

    WordPiece marks continuations with ``##``; SentencePiece marks word starts with
    ``▁`` and byte-level BPE with ``Ġ``. Tokens without a letter or digit never start a
    word, so "U.S." or "3-1" stay one word and a comma belongs to the word before it.
    """
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tokenizer_name)
    pieces = tok.convert_ids_to_tokens(list(range(vocab_size)))
    pieces = [p or "" for p in pieces]
    if any(p.startswith("##") for p in pieces):

        def starts(p: str) -> bool:
            return not p.startswith("##")
    else:
        marker = "▁" if any(p.startswith("▁") for p in pieces) else "Ġ"

        def starts(p: str) -> bool:
            return p.startswith(marker)

    table = np.array([starts(p) and any(c.isalnum() for c in p) for p in pieces], dtype=bool)
    return table, set(tok.all_special_ids)


def lead(ctx: Context, *, k: int = 8) -> Fitted:
    """The first ``k`` words of the source, token by token, then EOS (summarization)."""
    if k < 1:
        raise TextgymError(f"lead needs k >= 1, got {k}")
    env = ctx.make("train")
    base = env.unwrapped
    if base.task != "summarization":
        raise TextgymError(f"lead is a summarization baseline; {ctx.env_id} is {base.task}")
    eos = int(base.eos_token_id)
    word_start, special = _word_start_table(base.tokenizer_name, int(base.vocab_size))
    env.close()
    leads: dict[bytes, np.ndarray] = {}

    def lead_tokens(ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        key = ids.tobytes()
        if key not in leads:
            source = np.array([t for t, m in zip(ids, mask, strict=True) if m and t not in special])
            words = np.cumsum(word_start[source]) if source.size else source
            leads[key] = source[words <= k] if source.size else source
        return leads[key]

    def act(obs: dict, action_masks: np.ndarray | None = None) -> np.ndarray:
        done = obs["summary_mask"].sum(axis=1)  # (B,) tokens written so far
        actions = np.full(len(done), eos)
        for slot, t in enumerate(done):
            tokens = lead_tokens(obs["input_ids"][slot], obs["attention_mask"][slot])
            if t < len(tokens) and (action_masks is None or action_masks[slot, tokens[t]]):
                actions[slot] = tokens[t]
        return actions

    fitted = Fitted(act, {"k": k})
    fitted.validation_curve = _curve_point(ctx, act, 0)
    return fitted


# ----- supervised -----------------------------------------------------------------------


def supervised(
    ctx: Context,
    *,
    epochs: int = 2,
    learning_rate: float = 5e-5,
    batch_size: int = 32,
    weight_decay: float = 0.01,
    warmup_ratio: float = 0.1,
    max_train_examples: int | None = None,
    policy_kwargs: dict[str, Any] | None = None,
) -> Fitted:
    """Cross-entropy fine-tuning of the RL agents' own policy (see the module docstring).

    Args:
        ctx: The run.
        epochs: Passes over the train split.
        learning_rate: AdamW peak learning rate (linear warmup, then linear decay to 0).
        batch_size: Examples (sentences or documents) per step.
        weight_decay: AdamW weight decay (not on biases and LayerNorm weights).
        warmup_ratio: Fraction of the steps spent warming up.
        max_train_examples: Train on N examples spread evenly over the train split
            (None: all).
        policy_kwargs: Arguments of the policy class, as an agent's ``policy_kwargs``
            (e.g. ``{"previous_tag": false}`` for the tagger a group agent trains).
    """
    import torch

    from textgym.agents.common.env_utils import env_info, resolve_device
    from textgym.agents.common.policies import make_policy
    from textgym.agents.common.supervised import (
        SupervisedTrainer,
        labelled_split,
        predictor,
    )

    env = ctx.make("train")
    task = _task(env)
    if task not in ("ner", "classification"):
        env.close()
        raise TextgymError(f"supervised supports NER and classification, not {task}; use 'lead'")
    device = resolve_device(ctx.device)
    torch.manual_seed(ctx.seed)
    n = env.unwrapped.num_examples
    subset = None
    if max_train_examples is not None:
        if isinstance(max_train_examples, bool) or not isinstance(max_train_examples, int):
            raise TextgymError(f"max_train_examples must be an integer, got {max_train_examples!r}")
        if max_train_examples < 1:
            raise TextgymError(f"max_train_examples must be >= 1, got {max_train_examples}")
        # spread, not cut: a split may be ordered (bbc-news' train split is grouped by
        # class); the same for every seed, so the seeds of a row train on the same data
        subset = np.linspace(0, n - 1, min(max_train_examples, n)).astype(np.int64)
    data = labelled_split(env, indices=subset)
    context_length = int(env.observation_space["input_ids"].shape[0])
    policy = make_policy(ctx.policy, env_info(env), context_length, policy_kwargs).to(device)
    env.close()
    trainer = SupervisedTrainer(
        policy,
        data,
        epochs=epochs,
        learning_rate=learning_rate,
        batch_size=batch_size,
        weight_decay=weight_decay,
        warmup_ratio=warmup_ratio,
        seed=ctx.seed,
    )
    decisions = data.decisions()  # labelled decisions per epoch

    def validation_point(trainer: SupervisedTrainer) -> None:
        # a fresh predictor: its encodings are of this epoch's weights
        trainer.history += _curve_point(ctx, predictor(policy), decisions * trainer.epoch)

    checkpoint = None if ctx.run_dir is None else Path(ctx.run_dir) / "supervised_checkpoint.pt"
    trainer.fit(validation_point, checkpoint)
    hparams = {
        "epochs": epochs,
        "learning_rate": learning_rate,
        "batch_size": batch_size,
        "weight_decay": weight_decay,
        "warmup_ratio": warmup_ratio,
        "max_train_examples": max_train_examples,
        "policy_kwargs": policy_kwargs,
    }
    return Fitted(
        predictor(policy),
        hparams,
        total_env_steps=decisions * epochs,
        wall_time_s=trainer.wall_time,
        device=str(device),
        policy_name=ctx.policy,
        validation_curve=list(trainer.history),
    )


BASELINES: dict[str, Callable[..., Fitted]] = {
    "random": random,
    "majority": majority,
    "lead": lead,
    "supervised": supervised,
}


# ----- running one baseline -------------------------------------------------------------


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def versions() -> dict[str, str | None]:
    """Package versions in the layout of ``textgym train``'s summary."""
    import textgym

    return {
        "textgym": textgym.__version__,
        "torch": _version("torch"),
        "transformers": _version("transformers"),
        "gymnasium": gym.__version__,
        "python": platform.python_version(),
    }


def full_env_kwargs(env_id: str, env_kwargs: dict) -> dict:
    """The registered defaults overlaid with the run's kwargs (as ``textgym train`` records)."""
    return {**(gym.spec(env_id).kwargs or {}), **env_kwargs}


def run_baseline(
    name: str,
    ctx: Context,
    eval_split: str = "test",
    out: str | os.PathLike | None = None,
    **hyperparameters: Any,
) -> dict[str, Any]:
    """Fit baseline ``name``, evaluate it on ``eval_split``, write ``out/summary.json``.

    Returns:
        The summary, with the fields of ``textgym train``'s plus ``eval_split``.
    """
    if name not in BASELINES:
        raise TextgymError(f"unknown baseline {name!r}; known: {', '.join(BASELINES)}")
    fitted = BASELINES[name](ctx, **hyperparameters)
    result = ctx.evaluate(fitted.policy, eval_split)
    summary = {
        "env_id": ctx.env_id,
        "env_kwargs": full_env_kwargs(ctx.env_id, ctx.env_kwargs),
        "agent": name,
        "policy": fitted.policy_name,
        "hyperparameters": fitted.hyperparameters,
        "seed": ctx.seed,
        "total_env_steps": fitted.total_env_steps,
        "wall_time_s": fitted.wall_time_s,
        "device": fitted.device,
        "versions": versions(),
        "eval_split": eval_split,
        "test_metrics": result.metrics | {"mean_reward": result.mean_return},
        "test_report": result.report,
        "validation_curve": fitted.validation_curve,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if out is not None:
        atomic_write_json(Path(out) / "summary.json", summary)
    return summary
