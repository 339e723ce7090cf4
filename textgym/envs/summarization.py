"""TextSummarization-v0: write a summary one token per step, scored with ROUGE."""

from __future__ import annotations

import os
import textwrap
from collections import OrderedDict
from typing import Any

import gymnasium as gym
import numpy as np

from textgym.envs.base import (
    TaskData,
    TextEnv,
    TextVectorEnv,
    check_choice,
    check_length,
    int_box,
    load_task_data,
)
from textgym.errors import TextgymError
from textgym.metrics import RougeReward
from textgym.tokenizer import TextTokenizer

REWARD_MODES = ("final", "dense")
ROUGE_TYPES = ("rougeL", "rouge1", "rouge2")
CONSTRAINTS = ("none", "source")
#: References whose rouge-score tokens an env keeps (a vector env has one episode a slot).
REFERENCE_CACHE = 4096


def _build_arrays(tokenizer: TextTokenizer, examples: tuple, labels: tuple, max_source_tokens: int):
    ids, mask = tokenizer.encode_texts([e.source for e in examples], max_source_tokens)
    return {"input_ids": ids, "attention_mask": mask}


class SummarizationCore:
    """Step, legality and ROUGE reward of a batch of summarization slots.

    Each slot's summary length is the sum of its ``summary_mask`` row, so the
    observation buffers are the whole state apart from the dense mode's last score.
    """

    def __init__(
        self, data: TaskData, max_summary_tokens: int, rouge: str, reward_mode: str, constraint: str
    ):
        self.arrays = data.arrays
        self.examples = data.examples
        self.tokenizer = data.tokenizer
        info = data.tokenizer.info
        self.eos = info.eos_token_id
        self.pad = info.pad_token_id
        self.vocab_size = info.vocab_size
        self.max_summary_tokens = max_summary_tokens
        self.dense = reward_mode == "dense"
        self.constraint = constraint
        self.scorer = RougeReward(rouge)
        # rouge-score tokens of the references of recent episodes: the dense mode scores
        # a reference at every step of its episode, and tokenizing (with stemming) a long
        # reference each time would cost more than the step. Bounded, most recently used
        # kept, so that a pass over a corpus of any size holds a fixed number of them.
        self._reference_tokens: OrderedDict[int, tuple[str, ...]] = OrderedDict()
        # Special tokens (CLS, SEP, PAD, ...) are never copied from the source; EOS ends.
        self.banned = np.zeros(self.vocab_size, bool)
        self.banned[[i for i in info.special_ids if i < self.vocab_size]] = True
        self.banned[self.eos] = False

    def observation_space(self, max_source_tokens: int) -> gym.spaces.Dict:
        t = self.max_summary_tokens
        return gym.spaces.Dict(
            {
                "input_ids": int_box(self.vocab_size - 1, (max_source_tokens,)),
                "attention_mask": int_box(1, (max_source_tokens,)),
                "summary_ids": int_box(self.vocab_size - 1, (t,)),
                "summary_mask": int_box(1, (t,)),
            }
        )

    def initial_observations(self) -> dict:
        a = self.arrays
        return {
            "input_ids": a["input_ids"],
            "attention_mask": a["attention_mask"],
            "summary_ids": self.pad,
            "summary_mask": 0,
        }

    def action_masks(self, obs: dict) -> np.ndarray:
        """Allowed tokens per slot, ``(B, vocab_size)`` bool."""
        batch = len(obs["input_ids"])
        if self.constraint == "none":
            return np.ones((batch, self.vocab_size), bool)
        masks = np.zeros((batch, self.vocab_size), bool)
        rows = np.arange(batch)[:, None]
        masks[rows, obs["input_ids"]] = obs["attention_mask"].astype(bool)
        masks &= ~self.banned
        masks[:, self.eos] = True
        return masks

    def check_legal(self, obs: dict, actions: np.ndarray, ignored: np.ndarray | None = None):
        """Refuse an action outside the constraint (``ignored`` slots: not checked)."""
        if self.constraint == "none":
            return
        in_source = ((obs["input_ids"] == actions[:, None]) & (obs["attention_mask"] == 1)).any(1)
        legal = (in_source & ~self.banned[actions]) | (actions == self.eos)
        if ignored is not None:
            legal |= ignored
        if not legal.all():
            bad = int(actions[~legal][0])
            raise TextgymError(
                f"action {bad} ({self.tokenizer.id_to_token(bad)!r}) is not allowed under "
                "constraint='source' (only tokens of the source and EOS are): pick actions "
                "from env.action_masks()"
            )

    def summaries(self, obs: dict, rows: np.ndarray) -> list[str]:
        """Decoded summaries of ``rows`` (EOS and other special tokens dropped)."""
        ids = obs["summary_ids"][rows]
        lengths = obs["summary_mask"][rows].sum(1)
        return self.tokenizer.decode_batch([ids[i, : lengths[i]] for i in range(len(rows))])

    def reference_tokens(self, index: int) -> tuple[str, ...]:
        """rouge-score's tokens of example ``index``'s reference (the most recent
        ``REFERENCE_CACHE`` kept)."""
        cache = self._reference_tokens
        tokens = cache.get(index)
        if tokens is None:
            tokens = cache[index] = self.scorer.tokenize(self.examples[index].target)
            if len(cache) > REFERENCE_CACHE:
                cache.popitem(last=False)
        else:
            cache.move_to_end(index)
        return tokens

    def step(self, obs: dict, indices: np.ndarray, actions: np.ndarray, last_scores: np.ndarray):
        """Append one token per slot; returns rewards, terminated, truncated, scores, texts.

        ``last_scores`` (the ROUGE of each slot's summary so far) is read and updated in
        the dense mode only.
        """
        batch = len(actions)
        rows = np.arange(batch)
        pos = obs["summary_mask"].sum(1)
        obs["summary_ids"][rows, pos] = actions
        obs["summary_mask"][rows, pos] = 1
        terminated = actions == self.eos
        truncated = ~terminated & (pos + 1 >= self.max_summary_tokens)
        done = terminated | truncated
        scored = rows if self.dense else np.flatnonzero(done)
        texts = self.summaries(obs, scored) if len(scored) else []
        scores = np.zeros(batch, np.float32)
        for row, text in zip(scored, texts, strict=True):
            scores[row] = self.scorer(self.reference_tokens(int(indices[row])), text)
        if self.dense:
            rewards = scores - last_scores
            last_scores[:] = np.where(done, 0.0, scores)
        else:
            rewards = scores
        return (
            rewards.astype(np.float32),
            terminated,
            truncated,
            scores,
            dict(zip(scored.tolist(), texts, strict=True)),
        )


class TextSummarizationEnv(TextEnv):
    """Abstractive summarization: emit the summary one token per step.

    ## Description
    An episode is one source document. Each step appends one token of the tokenizer's
    vocabulary to the summary; EOS ends it. The finished summary is decoded and scored
    with ROUGE (``rouge-score``, F-measure, stemming) against the reference. The
    default data, ``bbc-news``, is headline generation: BBC article body to its title.

    ## Action Space
    ``Discrete(vocab_size)``: a token id. ``env.action_masks()`` gives the allowed tokens
    (sb3-contrib's ``MaskablePPO`` convention). With ``constraint="source"`` only tokens of
    the source plus EOS are allowed (copying, as in extractive headlines) and any other
    action raises an error; with ``"none"`` (default) every token is allowed.

    ## Observation Space
    A ``Dict`` of integer ``Box`` es with ``S = max_source_tokens``, ``T = max_summary_tokens``:
    ``input_ids`` (S,), ``attention_mask`` (S,) for the source; ``summary_ids`` (T,) the
    tokens emitted so far (then ``pad_token_id``) and ``summary_mask`` (T,). Each key has
    the smallest signed dtype its bounds fit: with the default tokenizer the ids are int16
    (int32 for vocabularies over 32,768 tokens) and the masks int8; ``obs_dtype="int32"``
    makes every key int32.

    ## Rewards
    ``reward_mode="final"`` (default): 0 on every step but the last, which gets the ROUGE
    F-measure (``rouge="rougeL"``, ``"rouge1"`` or ``"rouge2"``) of the finished summary,
    in [0, 1]. ``"dense"``: each step gets the change in ROUGE that its token made (in
    [-1, 1]; the sum over an episode is the final ROUGE). ROUGE is computed once per
    finished episode in the final mode and once per step in the dense mode.

    ## Starting State
    ``reset()`` opens an example drawn by the env's seeded stream; ``reset(options=
    {"index": i})`` opens example ``i`` of the split.

    ## Episode End
    Terminated when the action is ``eos_token_id``; truncated when the summary reaches
    ``max_summary_tokens`` tokens. The last step's ``info`` holds ``"summary"`` (text) and
    ``"rouge"``.

    ## Arguments
    ``dataset`` (``"bbc-news"``), ``split``, ``tokenizer``, ``max_source_tokens`` (256),
    ``max_summary_tokens`` (24), ``rouge``, ``reward_mode``, ``constraint``,
    ``data_files`` / ``data_dir`` / ``source_column`` / ``target_column`` for local files,
    ``render_mode``, ``obs_dtype`` (``"compact"``, the default, or ``"int32"``).

    ## Version History
    * v0: initial release.
    """

    task = "summarization"

    def __init__(
        self,
        dataset: str | os.PathLike | None = None,
        split: str = "train",
        tokenizer: str | os.PathLike | None = None,
        max_source_tokens: int = 256,
        max_summary_tokens: int = 24,
        rouge: str = "rougeL",
        reward_mode: str = "final",
        constraint: str = "none",
        render_mode: str | None = None,
        obs_dtype: str = "compact",
        **dataset_kwargs: Any,
    ):
        super().__init__(render_mode, obs_dtype)
        self.max_source_tokens = check_length("max_source_tokens", max_source_tokens, 2)
        self.max_summary_tokens = check_length("max_summary_tokens", max_summary_tokens, 1)
        self.rouge = check_choice("rouge", rouge, ROUGE_TYPES)
        self.reward_mode = check_choice("reward_mode", reward_mode, REWARD_MODES)
        self.constraint = check_choice("constraint", constraint, CONSTRAINTS)
        self.data = load_task_data(
            "summarization",
            dataset,
            split,
            tokenizer,
            {"max_source_tokens": self.max_source_tokens},
            lambda tok, ex, labels: _build_arrays(tok, ex, labels, self.max_source_tokens),
            dataset_kwargs,
            type(self).__name__,
        )
        self.core = SummarizationCore(
            self.data, self.max_summary_tokens, self.rouge, self.reward_mode, self.constraint
        )
        self._init_observations(
            self.core.observation_space(self.max_source_tokens),
            self.core.initial_observations,
            ("summarization", self.max_source_tokens, self.max_summary_tokens),
        )
        self.action_space = gym.spaces.Discrete(self.vocab_size)
        self._scores = np.zeros(1, np.float32)
        self._last_score: float | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        index = self._start_episode(seed, options)
        self._scores[:] = 0.0
        self._last_score = None
        return self._observation(), {"index": index}

    def action_masks(self) -> np.ndarray:
        """Allowed actions now: ``(vocab_size,)`` int8, 1 = allowed.

        int8 is what Gymnasium's sampler takes
        (``env.action_space.sample(mask=env.unwrapped.action_masks())``); sb3-contrib's
        ``MaskablePPO`` takes it too.
        """
        return self.core.action_masks(self._obs)[0].view(np.int8)

    def step(self, action):
        action = self._check_action(action)
        actions = np.array([action], np.int64)
        self.core.check_legal(self._obs, actions)
        rewards, terminated, truncated, scores, texts = self.core.step(
            self._obs, self._indices, actions, self._scores
        )
        info: dict[str, Any] = {"index": self._index}
        if terminated[0] or truncated[0]:
            self._done = True
            self._last_score = float(scores[0])
            info.update(summary=texts[0], rouge=self._last_score)
        return self._observation(), float(rewards[0]), bool(terminated[0]), bool(truncated[0]), info

    def _render_text(self) -> str:
        example = self.examples[self._index]
        source = textwrap.shorten(example.source, width=700, placeholder=" ...")
        summary = self.core.summaries(self._obs, np.array([0]))[0]
        lines = [
            f"article {self._index} of {self.split} ({self.dataset})",
            textwrap.fill(source, 88),
            f"summary so far ({int(self._obs['summary_mask'][0].sum())}/{self.max_summary_tokens} tokens): {summary}",
        ]
        if self._done:
            lines.append(f"reference: {example.target}")
            lines.append(f"{self.rouge}: {self._last_score:.3f}")
        return "\n".join(lines)


class TextSummarizationVectorEnv(TextVectorEnv):
    """``num_envs`` TextSummarization-v0 episodes stepped together.

    ``action_masks()`` returns ``(num_envs, vocab_size)`` bool (torch-ready; the single
    env's is int8, for Gymnasium's sampler). A finished slot's last info has the single
    env's keys: ``"index"``, ``"summary"`` (text) and ``"rouge"``.
    """

    task = "summarization"

    single_env_class = TextSummarizationEnv
    shared_attributes = (
        "max_source_tokens",
        "max_summary_tokens",
        "rouge",
        "reward_mode",
        "constraint",
    )

    def __init__(self, num_envs: int = 1, copy: bool = True, **kwargs: Any):
        super().__init__(num_envs, copy, **kwargs)
        self._scores = np.zeros(self.num_envs, np.float32)  # dense mode: ROUGE so far per slot

    def action_masks(self) -> np.ndarray:
        """Allowed actions of every slot: bool ``(num_envs, vocab_size)``."""
        return self.core.action_masks(self._obs)

    def _reset_slots(self, slots, indices):
        super()._reset_slots(slots, indices)
        self._scores[slots] = 0.0

    def _step(self, actions, ignored):
        self.core.check_legal(self._obs, actions, ignored)
        rewards, terminated, truncated, scores, texts = self.core.step(
            self._obs, self._indices, actions, self._scores
        )
        done = terminated | truncated
        final = {}
        if done.any():
            summary = np.full(self.num_envs, None, dtype=object)
            for row in np.flatnonzero(done):
                summary[row] = texts[row]
            final = {"summary": summary, "rouge": scores}
        return rewards, terminated, truncated, {}, final
