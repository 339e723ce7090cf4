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
- ``supervised``: cross-entropy fine-tuning of the RL policy's encoder (``policy``:
  ``minilm``, ``tiny`` or a Hugging Face name) on the train split, from the env's own
  observations and the corpus' gold labels: a linear tag head on each word's first
  subword (NER; the layout of the ``word_starts`` observation) or on the mean of the
  token states (classification, the pooling of the RL classifier). One validation point
  per epoch forms its learning curve; a checkpoint after every epoch lets an
  interrupted run continue. Not offered for summarization (use ``lead``): a generator
  trained with teacher forcing is a different model family from the RL pointer policy
  and would take most of a CPU benchmark's hour.

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
from textgym.leaderboard.io import atomic_write_bytes, atomic_write_json

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


def _resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _training_set(ctx: Context, split: str) -> tuple[dict[str, np.ndarray], np.ndarray, Any]:
    """The env's observations of every example of ``split`` and the gold label ids.

    Returns ``(obs, targets, env)``: obs arrays with a leading example axis; targets
    ``(N, W)`` tag ids with -100 past each sentence's kept words (NER) or ``(N,)`` label
    ids (classification).
    """
    env = ctx.make(split)
    base = env.unwrapped
    labels = {name: i for i, name in enumerate(base.labels)}
    keys = (
        ("input_ids", "attention_mask", "word_starts", "word_mask")
        if base.task == "ner"
        else ("input_ids", "attention_mask")
    )
    columns: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    targets = []
    for i in range(base.num_examples):
        obs, _ = env.reset(options={"index": i})
        for k in keys:
            columns[k].append(np.array(obs[k], copy=True))
        example = base.examples[i]
        if base.task == "ner":
            kept = int(obs["word_mask"].sum())
            row = np.full(len(obs["word_mask"]), -100, np.int64)
            row[:kept] = [labels[t] for t in example.tags[:kept]]
            targets.append(row)
        else:
            targets.append(labels[example.label])
    return {k: np.stack(v) for k, v in columns.items()}, np.asarray(targets), env


class _SupervisedModel:
    """Encoder + linear head; ``logits(batch)`` is ``(B, W, C)`` (NER) or ``(B, C)``."""

    def __init__(
        self, task: str, encoder_name: str, vocab_size: int, n_labels: int, dropout: float
    ):
        import torch
        from torch import nn

        from textgym.agents.common.encoders import hidden_size, load_encoder

        self.task = task
        self.encoder = load_encoder(encoder_name, vocab_size)
        self.head = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(hidden_size(self.encoder), n_labels)
        )
        self.modules = nn.ModuleDict({"encoder": self.encoder, "head": self.head})
        self.torch = torch

    def logits(self, batch: dict[str, Any]):
        torch = self.torch
        length = int(batch["attention_mask"].sum(1).max())  # trim shared padding
        ids, mask = batch["input_ids"][:, :length], batch["attention_mask"][:, :length]
        states = self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state  # (B, L, H)
        if self.task == "ner":
            starts = batch["word_starts"].clamp(max=length - 1)  # (B, W)
            index = starts[..., None].expand(-1, -1, states.shape[-1])  # (B, W, H)
            return self.head(torch.gather(states, 1, index))  # (B, W, C)
        weights = mask[..., None].to(states.dtype)  # (B, L, 1)
        pooled = (states * weights).sum(1) / weights.sum(1).clamp(min=1.0)  # (B, H)
        return self.head(pooled)  # (B, C)


def _tensors(obs: dict[str, np.ndarray], rows: np.ndarray | slice, device: str) -> dict:
    import torch

    return {
        k: torch.as_tensor(np.ascontiguousarray(v[rows]), dtype=torch.long, device=device)
        for k, v in obs.items()
    }


def _predictor(model: _SupervisedModel, device: str, batch_size: int) -> Policy:
    """An evaluation policy: argmax labels, each NER sentence encoded once and cached.

    The cache holds predictions of the weights at creation time: make a new predictor
    after every update.
    """
    torch = model.torch
    cache: dict[bytes, np.ndarray] = {}

    @torch.no_grad()
    def predict(obs: dict[str, np.ndarray]) -> np.ndarray:
        if model.task != "ner":
            arrays = {k: np.asarray(obs[k]) for k in ("input_ids", "attention_mask")}
            return model.logits(_tensors(arrays, slice(None), device)).argmax(-1).cpu().numpy()
        arrays = {k: np.asarray(obs[k]) for k in ("input_ids", "attention_mask", "word_starts")}
        if len(cache) > 50_000:  # a long-lived predictor must not grow without bound
            cache.clear()
        row_keys = [row.tobytes() for row in arrays["input_ids"]]
        todo: dict[bytes, int] = {}  # one row per sentence not yet tagged
        for i, key in enumerate(row_keys):
            if key not in cache:
                todo.setdefault(key, i)
        rows_todo = np.array(list(todo.values()), dtype=np.int64)
        for start in range(0, len(rows_todo), batch_size):
            rows = rows_todo[start : start + batch_size]
            tags = model.logits(_tensors(arrays, rows, device)).argmax(-1).cpu().numpy()  # (b, W)
            for i, row in zip(rows, tags, strict=True):
                cache[row_keys[i]] = row
        word = np.asarray(obs["word_index"])[:, 0]
        return np.array(
            [
                cache[key][min(int(w), len(cache[key]) - 1)]
                for key, w in zip(row_keys, word, strict=True)
            ]
        )

    return predict


def supervised(
    ctx: Context,
    *,
    epochs: int = 2,
    learning_rate: float = 5e-5,
    batch_size: int = 32,
    weight_decay: float = 0.01,
    warmup_ratio: float = 0.1,
    dropout: float = 0.1,
    max_train_examples: int | None = None,
) -> Fitted:
    """Cross-entropy fine-tuning of the encoder + a linear head (see the module docstring).

    Args:
        ctx: The run.
        epochs: Passes over the train split.
        learning_rate: AdamW peak learning rate (linear warmup, then linear decay to 0).
        batch_size: Examples per step.
        weight_decay: AdamW weight decay (not on biases and LayerNorm weights).
        warmup_ratio: Fraction of the steps spent warming up.
        dropout: Dropout before the head.
        max_train_examples: Train on the first N examples only (None: all).
    """
    import torch

    device = _resolve_device(ctx.device)
    torch.manual_seed(ctx.seed)
    obs, targets, env = _training_set(ctx, "train")
    base = env.unwrapped
    if base.task not in ("ner", "classification"):
        raise TextgymError(
            f"supervised supports NER and classification, not {base.task}; use 'lead'"
        )
    if max_train_examples is not None:
        obs = {k: v[:max_train_examples] for k, v in obs.items()}
        targets = targets[:max_train_examples]
    n = len(targets)
    decisions = int((targets >= 0).sum()) if base.task == "ner" else n  # labels per epoch
    model = _SupervisedModel(base.task, ctx.policy, int(base.vocab_size), len(base.labels), dropout)
    env.close()
    model.modules.to(device)
    no_decay = [p for name, p in model.modules.named_parameters() if p.ndim < 2]
    decay = [p for name, p in model.modules.named_parameters() if p.ndim >= 2]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=learning_rate,
    )
    steps_per_epoch = -(-n // batch_size)
    total = max(epochs * steps_per_epoch, 1)
    warmup = int(warmup_ratio * total)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(total - warmup, 1))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    checkpoint = None if ctx.run_dir is None else Path(ctx.run_dir) / "supervised_checkpoint.pt"
    state = {"epoch": 0, "wall_time_s": 0.0, "curve": []}
    if checkpoint is not None and checkpoint.exists():
        saved = torch.load(checkpoint, map_location=device, weights_only=True)
        model.modules.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["torch_rng"].cpu())
        state = {k: saved[k] for k in state}
    loss_fn = torch.nn.CrossEntropyLoss(ignore_index=-100)
    target_t = torch.as_tensor(targets, dtype=torch.long)
    for epoch in range(state["epoch"], epochs):
        start = time.perf_counter()
        model.modules.train()
        # the order of an epoch depends only on (seed, epoch): a resumed run replays it
        order = np.random.default_rng([ctx.seed, epoch]).permutation(n)
        for first in range(0, n, batch_size):
            rows = order[first : first + batch_size]
            logits = model.logits(_tensors(obs, rows, device))
            y = target_t[rows].to(device)
            loss = loss_fn(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.modules.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
        model.modules.eval()
        state["wall_time_s"] += time.perf_counter() - start
        state["epoch"] = epoch + 1
        predict = _predictor(model, device, batch_size)  # fresh cache for the new weights
        state["curve"] = state["curve"] + _curve_point(ctx, predict, decisions * (epoch + 1))
        if checkpoint is not None:
            _save_checkpoint(checkpoint, model, optimizer, scheduler, state)
    model.modules.eval()
    hparams = {
        "epochs": epochs,
        "learning_rate": learning_rate,
        "batch_size": batch_size,
        "weight_decay": weight_decay,
        "warmup_ratio": warmup_ratio,
        "dropout": dropout,
        "max_train_examples": max_train_examples,
    }
    return Fitted(
        _predictor(model, device, batch_size),
        hparams,
        total_env_steps=decisions * epochs,
        wall_time_s=state["wall_time_s"],
        device=device,
        policy_name=ctx.policy,
        validation_curve=list(state["curve"]),
    )


def _save_checkpoint(
    path: Path, model: _SupervisedModel, optimizer, scheduler, state: dict
) -> None:
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(
        {
            "model": model.modules.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            **state,
        },
        buffer,
    )
    atomic_write_bytes(path, buffer.getvalue())


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
