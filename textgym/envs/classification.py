"""TextClassification-v0: pick a document's label in one step."""

from __future__ import annotations

import os
import textwrap
from typing import Any

import gymnasium as gym
import numpy as np

from textgym.envs.base import (
    TaskData,
    TextEnv,
    TextVectorEnv,
    check_length,
    int_box,
    load_task_data,
)
from textgym.tokenizer import TextTokenizer


def _build_arrays(
    tokenizer: TextTokenizer, examples: tuple, labels: tuple[str, ...], max_tokens: int
):
    ids, mask = tokenizer.encode_texts([e.text for e in examples], max_tokens)
    label_id = {label: i for i, label in enumerate(labels)}
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "label": np.array([label_id[e.label] for e in examples], np.int32),
    }


class ClassificationCore:
    """Observation and reward of a batch of classification slots (single and vector env)."""

    def __init__(self, data: TaskData):
        self.arrays = data.arrays

    @staticmethod
    def observation_space(max_tokens: int, vocab_size: int) -> gym.spaces.Dict:
        return gym.spaces.Dict(
            {
                "input_ids": int_box(vocab_size - 1, (max_tokens,)),
                "attention_mask": int_box(1, (max_tokens,)),
            }
        )

    def initial_observations(self) -> dict:
        return {
            "input_ids": self.arrays["input_ids"],
            "attention_mask": self.arrays["attention_mask"],
        }

    def step(self, indices: np.ndarray, actions: np.ndarray):
        """Rewards (1 for the gold label) and the gold label ids."""
        gold = self.arrays["label"][indices]
        return (gold == actions).astype(np.float32), gold


class TextClassificationEnv(TextEnv):
    """Document classification: one step picks the label.

    ## Description
    An episode is one document of the chosen split (a BBC news article by default). The
    observation is the document's subword ids; the single action is the label.

    ## Action Space
    ``Discrete(len(env.labels))``: index into ``env.labels`` (class names, sorted).

    ## Observation Space
    A ``Dict`` of integer ``Box`` es with ``L = max_tokens``: ``input_ids`` (L,)
    (``[CLS]`` subwords ``[SEP]`` then padding; documents longer than ``L`` are cut) and
    ``attention_mask`` (L,). Each key has the smallest signed dtype its bounds fit: with
    the default tokenizer ``input_ids`` is int16 (int32 for vocabularies over 32,768
    tokens) and ``attention_mask`` int8; ``obs_dtype="int32"`` makes both int32.

    ## Rewards
    1 if the label is correct, else 0.

    ## Starting State
    ``reset()`` opens an example drawn by the env's seeded stream; ``reset(options=
    {"index": i})`` opens example ``i`` of the split.

    ## Episode End
    Terminated after the one step. ``info`` then holds ``"correct"``, ``"label"`` (the
    gold label's name), ``"pred"`` (the action) and ``"label_id"`` (the gold label's index).

    ## Arguments
    ``dataset`` (``"bbc-news"``), ``split``, ``tokenizer``, ``max_tokens`` (128, >= 2),
    ``data_files`` / ``data_dir`` / ``text_column`` / ``label_column`` for local files,
    ``render_mode``, ``obs_dtype`` (``"compact"``, the default, or ``"int32"``).

    ## Version History
    * v0: initial release.
    """

    task = "classification"

    def __init__(
        self,
        dataset: str | os.PathLike | None = None,
        split: str = "train",
        tokenizer: str | os.PathLike | None = None,
        max_tokens: int = 128,
        render_mode: str | None = None,
        obs_dtype: str = "compact",
        **dataset_kwargs: Any,
    ):
        super().__init__(render_mode, obs_dtype)
        self.max_tokens = check_length("max_tokens", max_tokens, 2)
        self.data = load_task_data(
            "classification",
            dataset,
            split,
            tokenizer,
            {"max_tokens": self.max_tokens},
            lambda tok, ex, labels: _build_arrays(tok, ex, labels, self.max_tokens),
            dataset_kwargs,
            type(self).__name__,
        )
        self.core = ClassificationCore(self.data)
        self._init_observations(
            self.core.observation_space(self.max_tokens, self.vocab_size),
            self.core.initial_observations,
            ("classification", self.max_tokens),
        )
        self.action_space = gym.spaces.Discrete(len(self.labels))
        self._last_action: int | None = None

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        index = self._start_episode(seed, options)
        self._last_action = None
        return self._observation(), {"index": index}

    def step(self, action):
        action = self._check_action(action)
        rewards, gold = self.core.step(self._indices, np.array([action]))
        self._done = True
        self._last_action = action
        info = {
            "index": self._index,
            "correct": bool(rewards[0]),
            "label": self.labels[gold[0]],
            "pred": action,
            "label_id": int(gold[0]),
        }
        return self._observation(), float(rewards[0]), True, False, info

    def _render_text(self) -> str:
        example = self.examples[self._index]
        text = textwrap.shorten(example.text, width=600, placeholder=" ...")
        lines = [
            f"document {self._index} of {self.split} ({self.dataset})",
            textwrap.fill(text, 88),
        ]
        lines.append("labels: " + ", ".join(f"{i}={name}" for i, name in enumerate(self.labels)))
        if self._last_action is not None:
            pred = self.labels[self._last_action]
            verdict = "correct" if pred == example.label else f"wrong, gold {example.label}"
            lines.append(f"chosen: {pred} ({verdict})")
        return "\n".join(lines)


class TextClassificationVectorEnv(TextVectorEnv):
    """``num_envs`` TextClassification-v0 episodes stepped together.

    Every step ends every episode (in next-step mode, every other step starts new ones).
    A finished slot's last info has the single env's keys: ``"index"``, ``"correct"``,
    ``"label"`` (the gold label's name), ``"pred"`` (the action) and ``"label_id"`` (the
    gold label's index).
    """

    task = "classification"

    single_env_class = TextClassificationEnv
    shared_attributes = ("max_tokens",)

    def __init__(self, num_envs: int = 1, copy: bool = True, **kwargs: Any):
        super().__init__(num_envs, copy, **kwargs)
        self._done_all = np.ones(self.num_envs, bool)
        self._not_done = np.zeros(self.num_envs, bool)
        self._label_names = np.array(self.labels, dtype=object)

    def _step(self, actions, ignored):
        rewards, gold = self.core.step(self._indices, actions)
        every = {
            "correct": rewards > 0,
            "label": self._label_names[gold],
            "pred": actions.copy(),
            "label_id": gold,
        }
        return rewards, self._done_all.copy(), self._not_done.copy(), every, {}
