"""A tiny NER vector env that follows the env contract of SPEC/DESIGN, for loop tests.

Words are single tokens; tokens 5..24 are entities ("B-X"), everything else "O". It lets
the agent loop be tested without the corpora, and its gold rule is learnable in seconds.
"""

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode
from gymnasium.vector.utils import batch_space

VOCAB, L = 120, 12
W = L - 2
LABELS = ("O", "B-X", "I-X")


class FakeNERVectorEnv(gym.vector.VectorEnv):
    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP}
    labels, vocab_size, pad_token_id, eos_token_id = LABELS, VOCAB, 0, 2
    task, tokenizer_name, split, num_examples = "ner", "fake", "train", 50

    def __init__(self, num_envs=4):
        self.num_envs = num_envs
        box = lambda high, n: spaces.Box(0, high, (n,), np.int32)  # noqa: E731
        self.single_observation_space = spaces.Dict(
            {
                "input_ids": box(VOCAB - 1, L),
                "attention_mask": box(1, L),
                "word_starts": box(L - 1, W),
                "word_mask": box(1, W),
                "word_index": box(W, 1),
                "tags": box(len(LABELS), W),
            }
        )
        self.single_action_space = spaces.Discrete(len(LABELS))
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        rng = np.random.default_rng(123)
        self.lengths = rng.integers(3, W + 1, self.num_examples)
        self.words = rng.integers(5, VOCAB, (self.num_examples, W))
        self.rng = np.random.default_rng(0)

    def _open(self, slots, seed=None):
        self.example[slots] = self.rng.integers(0, self.num_examples, len(slots))
        self.pos[slots] = 0
        self.tags[slots] = len(LABELS)

    def _obs(self):
        n = self.lengths[self.example]
        w = np.arange(W)[None]
        live = w < n[:, None]
        ids = np.zeros((self.num_envs, L), np.int32)
        ids[:, 0] = 1
        ids[:, 1:-1] = np.where(live, self.words[self.example], 0)
        ids[np.arange(self.num_envs), n + 1] = 2
        return {
            "input_ids": ids,
            "attention_mask": (np.arange(L)[None] < (n + 2)[:, None]).astype(np.int32),
            "word_starts": np.where(live, w + 1, 0).astype(np.int32),
            "word_mask": live.astype(np.int32),
            "word_index": self.pos[:, None].astype(np.int32),
            "tags": self.tags.copy(),
        }

    def gold(self):
        return (self.words[self.example, np.minimum(self.pos, W - 1)] < 25).astype(np.int64)

    def reset(self, *, seed=None, options=None):
        if seed is not None:
            self.rng = np.random.default_rng(seed)
        self.example = np.zeros(self.num_envs, np.int64)
        self.pos = np.zeros(self.num_envs, np.int64)
        self.tags = np.zeros((self.num_envs, W), np.int32)
        self._open(np.arange(self.num_envs))
        return self._obs(), {"index": self.example.copy()}

    def step(self, actions):
        actions = np.asarray(actions)
        rewards = (actions == self.gold()).astype(np.float32)
        self.tags[np.arange(self.num_envs), self.pos] = actions
        self.pos += 1
        terminated = self.pos >= self.lengths[self.example]
        truncated = np.zeros(self.num_envs, bool)
        infos = {"index": self.example.copy()}
        if terminated.any():
            final = self._obs()
            done = np.flatnonzero(terminated)
            final_obs = np.empty(self.num_envs, object)
            final_obs[done] = [{k: v[i] for k, v in final.items()} for i in done]
            infos["final_obs"], infos["_final_obs"] = final_obs, terminated.copy()
            self._open(done)
        return self._obs(), rewards, terminated, truncated, infos
