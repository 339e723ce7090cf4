"""TextNER-v0: named-entity tagging, one word per step."""

from __future__ import annotations

import os
from itertools import chain
from typing import Any

import gymnasium as gym
import numpy as np

from textgym.envs.base import (
    TaskData,
    TextEnv,
    TextVectorEnv,
    check_choice,
    check_length,
    flat_rows,
    int_box,
    load_task_data,
)
from textgym.metrics import LabelTable, sentence_entity_f1
from textgym.tokenizer import TextTokenizer

REWARD_MODES = ("token", "f1", "token+f1")


def _build_arrays(
    tokenizer: TextTokenizer, examples: tuple, labels: tuple[str, ...], max_tokens: int
):
    ids, mask, starts, num_words = tokenizer.encode_words([e.words for e in examples], max_tokens)
    n, width = len(examples), max_tokens - 2
    label_id = {label: i for i, label in enumerate(labels)}
    lengths = np.fromiter((len(e.tags) for e in examples), np.int64, n)
    tags = list(chain.from_iterable(e.tags for e in examples))
    tag_ids = np.fromiter(map(label_id.__getitem__, tags), np.int32, len(tags))
    row = np.repeat(np.arange(n), lengths)  # the sentence of each word
    col = np.arange(len(tags)) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    kept = col < num_words[row]
    gold = np.zeros((n, width), np.int32)
    gold[row[kept], col[kept]] = tag_ids[kept]
    return {
        "input_ids": ids,
        "attention_mask": mask,
        "word_starts": starts,
        "word_mask": (np.arange(width) < num_words[:, None]).astype(np.int32),
        "num_words": num_words,
        "total_words": lengths.astype(np.int32),
        "gold": gold,
    }


class NERCore:
    """The NER step and reward on a batch of slots, shared by the single and vector env.

    Observation buffers are ``(B, ...)`` integer arrays keyed as in the observation space;
    ``indices`` holds each slot's example index.
    """

    def __init__(self, data: TaskData, reward_mode: str):
        self.arrays = data.arrays
        self.reward_mode = reward_mode
        self.untagged = len(data.corpus.labels)
        self.table = LabelTable.from_labels(data.corpus.labels)
        self.token_reward = reward_mode in ("token", "token+f1")
        self.f1_reward = reward_mode in ("f1", "token+f1")
        # Sentences with words past max_tokens: their episodes end truncated.
        #: Words of each sentence beyond max_tokens subwords (its episode ends truncated).
        self.words_dropped = self.arrays["total_words"] - self.arrays["num_words"]
        self.cut = self.words_dropped > 0
        self.gold = np.reshape(self.arrays["gold"], -1)  # row i starts at i * width
        self.width = self.arrays["gold"].shape[1]
        self._tags: np.ndarray | None = None

    def observation_space(self, max_tokens: int, vocab_size: int) -> gym.spaces.Dict:
        width = max_tokens - 2
        return gym.spaces.Dict(
            {
                "input_ids": int_box(vocab_size - 1, (max_tokens,)),
                "attention_mask": int_box(1, (max_tokens,)),
                "word_starts": int_box(max_tokens - 1, (width,)),
                "word_mask": int_box(1, (width,)),
                "word_index": int_box(width, (1,)),
                "tags": int_box(self.untagged, (width,)),
            }
        )

    def initial_observations(self) -> dict:
        """Each example's first observation, per key."""
        a = self.arrays
        keys = ("input_ids", "attention_mask", "word_starts", "word_mask")
        return {**{k: a[k] for k in keys}, "word_index": 0, "tags": self.untagged}

    def step(self, obs: dict, indices: np.ndarray, actions: np.ndarray):
        """Tag the current word of every slot; returns rewards, terminated, truncated, info."""
        a = self.arrays
        pos = obs["word_index"][:, 0]  # a view: ``pos += 1`` moves the observation on
        at = pos.astype(np.intp)
        # Flat indices: numpy's 1-D fancy indexing costs about half of its 2-D one.
        tags, row_starts = self._flat_tags(obs["tags"])
        tags[row_starts + at] = actions.astype(tags.dtype, copy=False)  # a cast-free put
        correct = self.gold.take(indices * self.width + at) == actions
        pos += 1
        num_words = a["num_words"][indices]
        done = pos >= num_words
        rewards = (
            correct.astype(np.float32) if self.token_reward else np.zeros(len(actions), np.float32)
        )
        f1 = None
        if self.f1_reward and done.any():
            d = np.flatnonzero(done)
            width = int(num_words[d].max())  # only the words of the finished sentences
            f1 = np.zeros(len(actions), np.float32)
            f1[d] = sentence_entity_f1(
                a["gold"][indices[d], :width], obs["tags"][d, :width], num_words[d], self.table
            )
            rewards[d] += f1[d]
        truncated = done & self.cut[indices]
        return rewards, done ^ truncated, truncated, correct, f1

    def _flat_tags(self, tags: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``tags`` ``(B, W)`` as one flat array and the flat index of each row's start.

        Remembered for the last ``tags`` array seen: an env steps the same buffers every
        time, and the reference kept here stops a new array from reusing its id.
        """
        if tags is not self._tags:
            self._tags = tags
            self._tags_flat, self._row_starts = flat_rows(tags)
        return self._tags_flat, self._row_starts


class TextNEREnv(TextEnv):
    """Named-entity recognition as sequential tagging: one step tags one word.

    ## Description
    An episode is one sentence of the chosen split. At step ``t`` the agent tags word
    ``t`` with one of the dataset's IOB2 labels; the observation shows the sentence's
    subword ids, where each word starts, which word is being tagged and the tags chosen
    so far. Gold tags never appear in the observation.

    ## Action Space
    ``Discrete(len(env.labels))``: index into ``env.labels`` (IOB2 tags, ``"O"`` first).

    ## Observation Space
    A ``Dict`` of integer ``Box`` es, with ``L = max_tokens`` and ``W = max_tokens - 2``.
    Each key has the smallest signed dtype its bounds fit (the dtype column: default
    tokenizer, ``max_tokens <= 128``, fewer than 127 labels); ``obs_dtype="int32"`` makes
    every key int32 instead. The values are the same either way.

    | key | shape | dtype | content |
    |---|---|---|---|
    | ``input_ids`` | (L,) | int16 | ``[CLS]`` subword ids ``[SEP]``, then ``pad_token_id`` |
    | ``attention_mask`` | (L,) | int8 | 1 on real tokens, 0 on padding |
    | ``word_starts`` | (W,) | int8 | position in ``input_ids`` of each word's first subword (0 past the last word) |
    | ``word_mask`` | (W,) | int8 | 1 for the sentence's words |
    | ``word_index`` | (1,) | int8 | the word to tag now (the number of words in the final observation) |
    | ``tags`` | (W,) | int8 | tag ids chosen so far; ``len(labels)`` means "not tagged yet" |

    ## Rewards
    ``reward_mode="token"`` (default): 1 for a correct tag, else 0 (range [0, 1] per step).
    ``"f1"``: 0 until the last word, then the sentence's entity-level F1 (seqeval's
    conlleval rules; a sentence with no gold and no predicted entity scores 1).
    ``"token+f1"``: both (range [0, 2] at the last step).

    ## Starting State
    ``reset()`` opens an example drawn by the env's seeded stream; ``reset(options=
    {"index": i})`` opens example ``i`` of the split.

    ## Episode End
    Terminated after the last word is tagged. Truncated instead when the sentence has
    more words than fit in ``max_tokens`` subwords: the words that fit are tagged, the
    rest are dropped from the episode (``info["words_dropped"]``) and counted as missed
    entities by ``textgym.evaluate``. ``env.num_truncated_examples`` counts such
    sentences in the split.

    ## Arguments
    ``dataset`` (``"wnut16"``; see ``textgym list``), ``split`` (``"train"``,
    ``"validation"``, ``"test"``), ``tokenizer`` (Hugging Face name or path; default the
    packaged all-MiniLM-L6-v2 WordPiece), ``max_tokens`` (64, >= 3; 64 subwords hold 99.9% of
    WNUT-16 tweets; use 128 or more for CoNLL-2003's longest sentences), ``reward_mode``,
    ``data_files`` / ``data_dir`` and loader options for local files, ``render_mode``
    (``"ansi"`` or ``"human"``), ``obs_dtype`` (``"compact"``, the default, or
    ``"int32"``).

    ## Version History
    * v0: initial release.
    """

    task = "ner"

    def __init__(
        self,
        dataset: str | os.PathLike | None = None,
        split: str = "train",
        tokenizer: str | os.PathLike | None = None,
        max_tokens: int = 64,
        reward_mode: str = "token",
        render_mode: str | None = None,
        obs_dtype: str = "compact",
        **dataset_kwargs: Any,
    ):
        super().__init__(render_mode, obs_dtype)
        self.max_tokens = check_length("max_tokens", max_tokens, 3)
        self.reward_mode = check_choice("reward_mode", reward_mode, REWARD_MODES)
        self.data = load_task_data(
            "ner",
            dataset,
            split,
            tokenizer,
            {"max_tokens": self.max_tokens},
            lambda tok, ex, labels: _build_arrays(tok, ex, labels, self.max_tokens),
            dataset_kwargs,
            type(self).__name__,
        )
        self.core = NERCore(self.data, self.reward_mode)
        self._init_observations(
            self.core.observation_space(self.max_tokens, self.vocab_size),
            self.core.initial_observations,
            ("ner", self.max_tokens),
        )
        self.action_space = gym.spaces.Discrete(len(self.labels))
        self._action = np.zeros(1, np.int64)

    @property
    def num_truncated_examples(self) -> int:
        """Sentences of the split with words beyond ``max_tokens`` subwords."""
        return int(np.count_nonzero(self.core.cut))

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        index = self._start_episode(seed, options)
        return self._observation(), {"index": index}

    def step(self, action):
        self._action[0] = self._check_action(action)
        rewards, terminated, truncated, correct, f1 = self.core.step(
            self._obs, self._indices, self._action
        )
        info: dict[str, Any] = {"index": self._index, "correct": bool(correct[0])}
        if terminated[0] or truncated[0]:
            self._done = True
            if f1 is not None:
                info["f1"] = float(f1[0])
            info["words_dropped"] = int(self.core.words_dropped[self._index])
        return self._observation(), float(rewards[0]), bool(terminated[0]), bool(truncated[0]), info

    def _render_text(self) -> str:
        example = self.examples[self._index]
        tags = self._obs["tags"][0]
        pos = int(self._obs["word_index"][0, 0])
        lines = [
            f"sentence {self._index} of {self.split} ({self.dataset}), word {pos + 1}/{len(example.words)}"
        ]
        for i, word in enumerate(example.words):
            if i < pos:
                pred = self.labels[tags[i]]
                mark = "ok" if pred == example.tags[i] else f"gold {example.tags[i]}"
                lines.append(f"  {word:<20} {pred:<16} {mark}")
            elif i == pos and not self._done:
                lines.append(f"> {word:<20} ?")
            else:
                lines.append(f"  {word}")
        return "\n".join(lines)


class TextNERVectorEnv(TextVectorEnv):
    """``num_envs`` TextNER-v0 episodes stepped together with numpy.

    Takes the same arguments as :class:`TextNEREnv` plus ``num_envs``, ``copy`` and
    ``autoreset_mode``. A finished slot's last info (``infos["final_info"]`` in same-step
    mode, ``infos`` itself in next-step mode) has the single env's keys: ``"index"``,
    ``"correct"``, ``"words_dropped"`` and, in the ``f1`` reward modes, ``"f1"``.
    """

    task = "ner"

    single_env_class = TextNEREnv
    shared_attributes = ("max_tokens", "reward_mode")

    def _step(self, actions, ignored):
        rewards, terminated, truncated, correct, f1 = self.core.step(
            self._obs, self._indices, actions
        )
        final = {}
        if (terminated | truncated).any():
            final["words_dropped"] = self.core.words_dropped[self._indices]
            if f1 is not None:
                final["f1"] = f1
        return rewards, terminated, truncated, {"correct": correct}, final
