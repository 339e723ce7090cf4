"""Supervised fine-tuning of the agents' own policy: the reference point for every agent.

DESIGN.md compares the agents with "supervised fine-tuning of the same encoder". Here that
is the policy the agents train (:func:`~.policies.make_policy`: the NER
:class:`~.policies.TaggerPolicy`, the :class:`~.policies.ClassifierPolicy`) trained with
cross-entropy on the gold answers. The tagger reads the previous word's tag, which is
teacher-forced from the gold sequence. It runs the same encode-once-per-context,
heads-per-step computation as an on-policy update, so its words/s and memory are the
yardstick for the agents' (``benchmarks/agent_throughput.py``), and its predictions come
from the same cached ``predict`` path (:func:`predictor`; loaded into an agent, the agent's
own ``predict`` gives the same actions). The leaderboard's ``supervised`` baseline and
``benchmarks/learning_quality.py`` both train through this module.

Pieces, smallest first:

- :func:`labelled_split`: the context arrays and gold answers of a split, read through the
  public env interface only (``reset(options={"index": i})`` for the observation,
  ``env.unwrapped.examples[i]`` for the gold tags or label);
- :func:`batches`: shuffled example indices, cut by examples or (NER) by words;
- :func:`supervised_step`: one cross-entropy step, both tasks;
- :func:`make_adamw` and :func:`linear_warmup_decay`: the optimiser and schedule of
  :class:`SupervisedTrainer`, which runs epochs with a per-epoch callback, writes a
  checkpoint after each epoch and resumes from one;
- :func:`predictor`: ``predict(obs, action_masks=None) -> actions`` for
  :func:`textgym.evaluate`.

Shapes: ``N`` examples, ``C`` contexts in a batch, ``B`` labelled decisions in a batch
(words for NER, examples for classification), ``L`` tokens, ``W`` word slots, ``A``
actions.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F

from textgym.errors import TextgymError
from textgym.io import atomic_path

from .caches import ContextCache
from .policies import CONTEXT_KEYS, ActorCritic, obs_to_tensors

TASKS = ("ner", "classification")
BATCH_UNITS = ("examples", "words")


@dataclass
class LabelledSplit:
    """Every example of a split as the policy reads it, with its gold answer.

    Attributes:
        task: ``"ner"`` or ``"classification"``.
        contexts: The task's context keys (``CONTEXT_KEYS[task]``), ``(N, ...)`` each.
        gold: ``(N, W)`` tag ids (NER; 0 past a sentence's kept words, which no step
            reads) or ``(N,)`` label ids (classification), indices into the env's
            ``labels``.
    """

    task: str
    contexts: dict[str, np.ndarray]
    gold: np.ndarray

    def __len__(self) -> int:
        return len(self.gold)

    def decisions(self, idx: np.ndarray | None = None) -> int:
        """Labelled decisions among examples ``idx`` (all by default): the words an NER
        observation holds (a sentence longer than ``max_tokens`` loses its tail), or one
        per document."""
        if self.task == "ner":
            mask = self.contexts["word_mask"]
            return int((mask if idx is None else mask[idx]).sum())
        return len(self) if idx is None else len(idx)


def labelled_split(
    env: Any, limit: int | None = None, indices: Sequence[int] | np.ndarray | None = None
) -> LabelledSplit:
    """The context arrays and gold answers of a single env's split.

    Args:
        env: A single (not vector) ``TextNER-v0`` or ``TextClassification-v0`` env, made
            with the split to read.
        limit: Read the first ``limit`` examples (None: all).
        indices: Read these examples, in this order, instead (not with ``limit``). A
            split may be ordered (bbc-news' train split is grouped by class), so a
            subset of it should be drawn rather than cut.

    Raises:
        TextgymError: A vector env, a task other than NER and classification, an index
            outside the split, or a gold tag / label that is not among the env's
            ``labels``.
    """
    if isinstance(env, gym.vector.VectorEnv):
        raise TextgymError(
            "labelled_split reads one example per reset: pass a single env "
            "(gymnasium.make), not a vector env"
        )
    base = env.unwrapped
    if base.task not in TASKS:
        raise TextgymError(
            f"supervised fine-tuning covers NER and classification, not {base.task!r}"
        )
    if limit is not None and indices is not None:
        raise TextgymError("labelled_split takes limit or indices, not both")
    if limit is not None and limit < 1:
        raise TextgymError(f"labelled_split: limit must be >= 1 or None, got {limit}")
    n = base.num_examples
    if indices is None:
        indices = range(n if limit is None else min(limit, n))
    indices = [int(i) for i in indices]
    if not indices:
        raise TextgymError("labelled_split: no examples to read")
    outside = [i for i in indices if not 0 <= i < n]
    if outside:
        raise TextgymError(
            f"labelled_split: indices {outside[:5]} are outside the split's {n} examples"
        )
    label_id = {label: i for i, label in enumerate(base.labels)}
    keys = CONTEXT_KEYS[base.task]
    rows: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    gold = []
    for i in indices:
        obs, _ = env.reset(options={"index": i})
        for k in keys:
            rows[k].append(np.array(obs[k], copy=True))
        example = base.examples[i]
        answers = example.tags if base.task == "ner" else [example.label]
        unknown = sorted({a for a in answers if a not in label_id})
        if unknown:
            raise TextgymError(
                f"example {i} of the split has gold answer(s) {unknown} that are not "
                f"among the env's labels {tuple(base.labels)}"
            )
        if base.task == "ner":
            tags = np.zeros(len(obs["word_mask"]), np.int64)
            kept = int(obs["word_mask"].sum())
            tags[:kept] = [label_id[t] for t in example.tags[:kept]]
            gold.append(tags)
        else:
            gold.append(label_id[example.label])
    return LabelledSplit(base.task, {k: np.stack(v) for k, v in rows.items()}, np.asarray(gold))


def batches(
    data: LabelledSplit, batch_size: int, rng: np.random.Generator, unit: str = "examples"
) -> Iterator[np.ndarray]:
    """One epoch of shuffled example indices, in batches of ``batch_size`` units.

    ``unit="examples"``: ``batch_size`` examples per batch (the last one may be smaller).
    ``unit="words"`` (NER): whole sentences, about ``batch_size`` words per batch, as an
    agent's minibatch of ``batch_size`` steps keeps whole contexts.
    """
    if unit not in BATCH_UNITS:
        raise TextgymError(f"batches: unit must be one of {BATCH_UNITS}, got {unit!r}")
    if unit == "words" and data.task != "ner":
        raise TextgymError(f"batches: unit='words' is for NER, not {data.task}")
    if batch_size < 1:
        raise TextgymError(f"batches: batch_size must be >= 1, got {batch_size}")
    order = rng.permutation(len(data))
    if unit == "examples":
        yield from (order[i : i + batch_size] for i in range(0, len(order), batch_size))
        return
    words = np.cumsum(data.contexts["word_mask"][order].sum(1))
    cuts = np.searchsorted(words, np.arange(batch_size, words[-1], batch_size), side="right")
    for chunk in np.split(order, cuts):
        if chunk.size:
            yield chunk


def supervised_loss(
    policy: ActorCritic, data: LabelledSplit, idx: np.ndarray
) -> tuple[torch.Tensor, int]:
    """Mean cross-entropy of the policy's logits on examples ``idx``, and the decisions
    it averages over (each context encoded once)."""
    if policy.task != data.task:
        raise TextgymError(f"a {policy.task} policy cannot train on {data.task} examples")
    device = next(policy.parameters()).device
    contexts = {
        k: torch.as_tensor(data.contexts[k][idx], device=device).long()
        for k in CONTEXT_KEYS[data.task]
    }
    gold = torch.as_tensor(data.gold[idx], device=device)  # (C, W) or (C,)
    hidden = policy.encode(contexts)  # (C, L', H)
    if data.task == "ner":
        n_words = contexts["word_mask"].sum(1)  # (C,)
        ctx_index = torch.repeat_interleave(torch.arange(len(idx), device=device), n_words)  # (B,)
        first = torch.cumsum(n_words, 0) - n_words  # (C,) offset of each sentence's first word
        word = torch.arange(len(ctx_index), device=device) - first[ctx_index]  # (B,)
        obs = {"word_index": word[:, None], "tags": gold[ctx_index]}  # teacher forcing
        target = gold[ctx_index, word]  # (B,)
    else:
        ctx_index = torch.arange(len(idx), device=device)  # (B,) = (C,)
        obs = {}
        target = gold
    logits, _ = policy.heads(hidden, contexts, ctx_index, obs)  # (B, A)
    return F.cross_entropy(logits, target), len(target)


def supervised_step(
    policy: ActorCritic,
    optimizer: torch.optim.Optimizer,
    data: LabelledSplit,
    idx: np.ndarray,
    max_grad_norm: float = 1.0,
) -> tuple[float, int]:
    """One cross-entropy step on examples ``idx``; returns ``(loss, decisions)``."""
    loss, n = supervised_loss(policy, data, idx)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(policy.parameters(), max_grad_norm)
    optimizer.step()
    return loss.item(), n


def make_adamw(policy: torch.nn.Module, lr: float, weight_decay: float) -> torch.optim.AdamW:
    """AdamW over the trainable parameters, with weight decay on matrices only.

    Biases and LayerNorm weights (the 1-d parameters) are not decayed, as in BERT
    fine-tuning. PyTorch's fused kernel is used where it applies (float parameters on
    CPU or CUDA), as :func:`~.optim.make_adam` does.
    """
    params = [p for p in policy.parameters() if p.requires_grad]
    fused = bool(params) and all(
        p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params
    )
    groups = [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, fused=fused or None)


def linear_warmup_decay(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """Learning rate rising linearly over ``warmup_steps``, then falling linearly to 0 at
    ``total_steps`` (call ``step()`` after every optimiser step)."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        return max(0.0, (total_steps - step) / max(total_steps - warmup_steps, 1))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def predictor(policy: ActorCritic) -> Callable[..., np.ndarray]:
    """``predict(obs, action_masks=None) -> actions``: the policy's most probable legal
    action for each slot of a batch (or one observation), for :func:`textgym.evaluate`.

    It is an agent's deterministic ``predict``: each slot's context is encoded once and
    kept (:class:`~.caches.ContextCache`) while the slot stays on it, so an NER sentence
    costs one encoder pass for all its words; then the policy's heads. The cache holds
    encodings of the weights at creation time: make a new predictor after an update.
    """
    cache = ContextCache(policy)
    device = next(policy.parameters()).device

    @torch.no_grad()
    def predict(obs: dict[str, np.ndarray], action_masks: np.ndarray | None = None) -> np.ndarray:
        single = np.asarray(obs["input_ids"]).ndim == 1
        obs = {k: np.asarray(v)[None] if single else np.asarray(v) for k, v in obs.items()}
        obs_t = obs_to_tensors(obs, device)
        cache.update(obs, obs_t)
        logits, _ = cache.heads(obs_t)  # (B, A)
        masks = None
        if action_masks is not None:
            masks = np.asarray(action_masks) != 0  # int8 masks too (Gymnasium's convention)
            masks = torch.as_tensor(masks[None] if single else masks, device=device)
        actions = policy.distribution(logits, masks).probs.argmax(-1).cpu().numpy()
        return actions[0] if single else actions

    return predict


_BOUNDS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "epochs": (lambda v: isinstance(v, int) and v >= 1, "an integer >= 1"),
    "learning_rate": (lambda v: v > 0, "> 0"),
    "batch_size": (lambda v: isinstance(v, int) and v >= 1, "an integer >= 1"),
    "weight_decay": (lambda v: v >= 0, ">= 0"),
    "warmup_ratio": (lambda v: 0 <= v < 1, "in [0, 1)"),
    "max_grad_norm": (lambda v: v > 0, "> 0"),
}


def _check_settings(**settings: Any) -> None:
    for name, value in settings.items():
        ok, bound = _BOUNDS[name]
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or not ok(value):
            raise TextgymError(f"supervised: {name} must be {bound}, got {value!r}")


class SupervisedTrainer:
    """Epochs of :func:`supervised_step` with AdamW and a linear warmup-then-decay schedule.

    The policy stays in eval mode (dropout off), as the agents train it. The examples of
    epoch ``e`` are shuffled by ``numpy.random.default_rng([seed, e])``, so an epoch's
    batches depend on the seed and the epoch alone and a resumed run replays exactly the
    epochs it had left.

    Args:
        policy: The policy to train (on its device), e.g. from :func:`~.policies.make_policy`.
        data: Its training examples (:func:`labelled_split`).
        epochs: Passes over ``data``.
        learning_rate: AdamW peak learning rate.
        batch_size: Examples per step.
        weight_decay: AdamW weight decay (not on biases and LayerNorm weights).
        warmup_ratio: Fraction of all steps spent warming up, in ``[0, 1)``.
        max_grad_norm: Gradient-norm clipping threshold.
        seed: Seed of the epochs' shuffles.

    Attributes:
        epoch: Epochs done.
        wall_time: Seconds spent training (callbacks and checkpoints excluded), over
            resumed runs too.
        train_losses: Mean training loss of each epoch done.
        history: Records a callback appends (e.g. validation points); kept in
            checkpoints, so they must be plain numbers, strings, lists and dicts.
    """

    def __init__(
        self,
        policy: ActorCritic,
        data: LabelledSplit,
        *,
        epochs: int = 2,
        learning_rate: float = 5e-5,
        batch_size: int = 32,
        weight_decay: float = 0.01,
        warmup_ratio: float = 0.1,
        max_grad_norm: float = 1.0,
        seed: int = 0,
    ):
        _check_settings(
            epochs=epochs,
            learning_rate=learning_rate,
            batch_size=batch_size,
            weight_decay=weight_decay,
            warmup_ratio=warmup_ratio,
            max_grad_norm=max_grad_norm,
        )
        if policy.task != data.task:
            raise TextgymError(f"a {policy.task} policy cannot train on {data.task} examples")
        self.policy, self.data, self.seed = policy.eval(), data, seed
        self.settings = {
            "epochs": epochs,
            "learning_rate": learning_rate,
            "batch_size": batch_size,
            "weight_decay": weight_decay,
            "warmup_ratio": warmup_ratio,
            "max_grad_norm": max_grad_norm,
            "seed": seed,
            "examples": len(data),
        }
        self.optimizer = make_adamw(policy, learning_rate, weight_decay)
        total = epochs * math.ceil(len(data) / batch_size)
        self.scheduler = linear_warmup_decay(self.optimizer, total, int(warmup_ratio * total))
        self.epoch = 0
        self.wall_time = 0.0
        self.train_losses: list[float] = []
        self.history: list[dict[str, Any]] = []

    @property
    def epochs(self) -> int:
        return self.settings["epochs"]

    def train_epoch(self) -> float:
        """One pass over the data (the next epoch); returns its mean loss per decision."""
        rng = np.random.default_rng([self.seed, self.epoch])
        start = time.perf_counter()
        total, count = 0.0, 0
        for idx in batches(self.data, self.settings["batch_size"], rng):
            loss, n = supervised_step(
                self.policy, self.optimizer, self.data, idx, self.settings["max_grad_norm"]
            )
            self.scheduler.step()
            total, count = total + loss * n, count + n
        self.wall_time += time.perf_counter() - start
        self.epoch += 1
        self.train_losses.append(total / max(count, 1))
        return self.train_losses[-1]

    def fit(
        self,
        callback: Callable[[SupervisedTrainer], None] | None = None,
        checkpoint: str | Path | None = None,
    ) -> SupervisedTrainer:
        """Train the epochs not done yet.

        Args:
            callback: Called after every epoch, before its checkpoint is written (so
                what it appends to :attr:`history` is part of that checkpoint).
            checkpoint: A file: resumed from when it exists, rewritten (atomically) after
                every epoch.
        """
        if checkpoint is not None and Path(checkpoint).exists():
            self.load(checkpoint)
        while self.epoch < self.epochs:
            self.train_epoch()
            if callback is not None:
                callback(self)
            if checkpoint is not None:
                self.save(checkpoint)
        return self

    def save(self, path: str | Path) -> None:
        """Write epoch, weights, optimiser, schedule, torch RNG, losses and history to
        ``path``, atomically (a crash leaves the previous checkpoint)."""
        state = {
            "settings": self.settings,
            "policy_config": self.policy.config(),
            "epoch": self.epoch,
            "wall_time": self.wall_time,
            "train_losses": self.train_losses,
            "history": self.history,
            "policy": self.policy.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "torch_rng": torch.get_rng_state(),
        }
        if torch.cuda.is_available():
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        with atomic_path(path) as tmp:
            torch.save(state, tmp)

    def load(self, path: str | Path) -> None:
        """Continue from a checkpoint of :meth:`save`.

        Raises:
            TextgymError: The file is not such a checkpoint, or it was written with other
                settings, another number of examples or another policy architecture.
        """
        device = next(self.policy.parameters()).device
        try:
            state = torch.load(path, map_location=device, weights_only=True)
        except Exception as err:  # a truncated or foreign file: say which
            raise TextgymError(f"cannot read the supervised checkpoint {path}: {err}") from err
        if not isinstance(state, dict) or "settings" not in state:
            raise TextgymError(f"{path} is not a supervised checkpoint")
        for what, saved, current in (
            ("settings", state["settings"], self.settings),
            ("policy", state.get("policy_config"), self.policy.config()),
        ):
            if saved != current:
                diff = {
                    k: (saved.get(k), current.get(k))
                    for k in sorted(set(saved) | set(current))
                    if saved.get(k) != current.get(k)
                }
                raise TextgymError(
                    f"the supervised checkpoint {path} was written with another {what} "
                    f"(saved, now): {diff}; remove it to start over"
                )
        self.policy.load_state_dict(state["policy"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"].cpu())
        if "cuda_rng" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda_rng"]])
        self.epoch = state["epoch"]
        self.wall_time = state["wall_time"]
        self.train_losses = list(state["train_losses"])
        self.history = list(state["history"])
