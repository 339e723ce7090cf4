"""Determinism: the same seed gives the same episodes, rollouts and CPU losses.

- envs: two envs reset with the same seed play the same episodes (single and vector);
  slot ``i`` of a vector env reset with seed ``s`` plays what a single env reset with
  ``s + i`` plays; the trace does not depend on the process (hash seed) nor on whether
  the tokenized arrays were built or read from the on-disk cache;
- agents (tiny encoder, CPU): the same seed fills identical rollout buffers and gives
  identical losses and weights after the first updates, for every algorithm; another
  seed gives different ones; a second process gives the same losses.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode

import textgym  # noqa: F401  (registers the env ids)

CONFIGS = {
    "ner": ("TextNER-v0", {"max_tokens": 16, "reward_mode": "token+f1"}),
    "classification": ("TextClassification-v0", {"max_tokens": 16}),
    "summarization": (
        "TextSummarization-v0",
        {"max_source_tokens": 24, "max_summary_tokens": 4, "reward_mode": "dense"},
    ),
}


def _policy(env_or_vec, obs, rng):
    """Actions that depend on the observation and a seeded generator only."""
    n = getattr(env_or_vec, "single_action_space", env_or_vec.action_space).n
    batch = np.asarray(obs["input_ids"]).ndim == 2
    k = len(obs["input_ids"]) if batch else 1
    actions = (np.asarray(obs["input_ids"]).reshape(k, -1)[:, 1] + rng.integers(0, 3, k)) % n
    return actions if batch else int(actions[0])


def _single_trace(env_id, kwargs, seed, episodes=4):
    env = gym.make(env_id, **kwargs)
    rng = np.random.default_rng(seed)
    trace = []
    obs, info = env.reset(seed=seed)
    for _ in range(episodes):
        trace.append(("reset", info["index"], {k: v.tolist() for k, v in obs.items()}))
        done = False
        while not done:
            obs, reward, terminated, truncated, info = env.step(_policy(env, obs, rng))
            trace.append((reward, terminated, truncated, obs["input_ids"].tolist()))
            done = terminated or truncated
        obs, info = env.reset()
    return trace


@pytest.mark.parametrize("name", list(CONFIGS))
def test_same_seed_same_episodes_single_env(name):
    env_id, kwargs = CONFIGS[name]
    trace = _single_trace(env_id, kwargs, 11)
    assert trace == _single_trace(env_id, kwargs, 11)
    other = _single_trace(env_id, kwargs, 12)
    assert [s[1] for s in trace if s[0] == "reset"] != [s[1] for s in other if s[0] == "reset"]


def _vector_trace(env_id, kwargs, seed, num_envs, steps=12):
    env = gym.make_vec(env_id, num_envs=num_envs, autoreset_mode=AutoresetMode.SAME_STEP, **kwargs)
    rng = np.random.default_rng(seed)
    obs, info = env.reset(seed=seed)
    trace = [info["index"].tolist()]
    for _ in range(steps):
        obs, rewards, terminated, truncated, infos = env.step(_policy(env, obs, rng))
        trace.append(
            (rewards.tolist(), terminated.tolist(), truncated.tolist(), infos["index"].tolist())
        )
        trace.append({k: v.tolist() for k, v in obs.items()})
    return trace


@pytest.mark.parametrize("name", list(CONFIGS))
def test_same_seed_same_episodes_vector_env(name):
    env_id, kwargs = CONFIGS[name]
    assert _vector_trace(env_id, kwargs, 5, 3) == _vector_trace(env_id, kwargs, 5, 3)
    assert _vector_trace(env_id, kwargs, 5, 3) != _vector_trace(env_id, kwargs, 6, 3)


@pytest.mark.parametrize("name", list(CONFIGS))
def test_vector_slot_i_plays_what_a_single_env_with_seed_plus_i_plays(name):
    """With a policy that reads only the observation, each slot's episodes (example,
    return, length) are those of a single env reset with ``seed + i``."""
    env_id, kwargs = CONFIGS[name]
    seed, num_envs, episodes = 40, 3, 3

    def act(obs):  # deterministic, per row
        ids = np.asarray(obs["input_ids"])
        return ids[..., 1] % 3 if name != "summarization" else ids[..., 1]

    vec = gym.make_vec(env_id, num_envs=num_envs, autoreset_mode=AutoresetMode.SAME_STEP, **kwargs)
    obs, info = vec.reset(seed=seed)
    finished = [[] for _ in range(num_envs)]
    current = [[int(i), 0.0, 0] for i in info["index"]]
    while min(map(len, finished)) < episodes:
        obs, rewards, terminated, truncated, infos = vec.step(act(obs))
        for slot in range(num_envs):
            current[slot][1] += float(rewards[slot])
            current[slot][2] += 1
            if terminated[slot] or truncated[slot]:
                finished[slot].append(tuple(current[slot]))
                current[slot] = [int(infos["index"][slot]), 0.0, 0]
    for slot in range(num_envs):
        env = gym.make(env_id, **kwargs)
        obs, info = env.reset(seed=seed + slot)
        expected = []
        for _ in range(episodes):
            index, ret, length, done = info["index"], 0.0, 0, False
            while not done:
                obs, reward, terminated, truncated, info = env.step(int(act(obs)))
                ret, length, done = ret + reward, length + 1, terminated or truncated
            expected.append((index, ret, length))
            obs, info = env.reset()
        got = finished[slot][:episodes]
        assert [(i, n) for i, _, n in got] == [(i, n) for i, _, n in expected]
        np.testing.assert_allclose([r for _, r, _ in got], [r for _, r, _ in expected], rtol=1e-6)


# ----- agents: rollouts and losses on CPU -----------------------------------------------

AGENT = dict(n_envs=3, n_steps=8, batch_size=12, learning_rate=1e-3)
TRPO_SMALL = dict(cg_max_steps=3, n_critic_updates=1, line_search_max_iter=3)


def _agent(algorithm, name, seed):
    from textgym.agents import ALGORITHMS

    env_id, kwargs = CONFIGS[name]
    extra = TRPO_SMALL if algorithm == "trpo" else {}
    return ALGORITHMS[algorithm](
        env_id, policy="tiny", seed=seed, device="cpu", env_kwargs=kwargs, **AGENT, **extra
    )


def _buffer_arrays(buffer) -> dict[str, np.ndarray]:
    arrays = {k: v for k, v in vars(buffer).items() if isinstance(v, np.ndarray)}
    arrays.update({f"obs/{k}": v for k, v in buffer.obs.items()})
    arrays.update({f"ctx/{k}": v for k, v in buffer.contexts.items()})
    return arrays


@pytest.mark.parametrize("name", ["ner", "summarization"])
def test_same_seed_same_rollouts(name):
    buffers = []
    for seed in (7, 7, 8):
        model = _agent("ppo", name, seed)
        model.collect_rollouts()
        buffers.append({k: v.copy() for k, v in _buffer_arrays(model.buffer).items()})
    assert buffers[0].keys() == buffers[1].keys()
    for key in buffers[0]:
        np.testing.assert_array_equal(buffers[0][key], buffers[1][key], err_msg=key)
    assert not np.array_equal(buffers[0]["actions"], buffers[2]["actions"])


def _train_logs(model) -> list[dict]:
    return [{k: v for k, v in row.items() if k.startswith("train/")} for row in model.logger.rows]


@pytest.mark.parametrize(
    "algorithm, name",
    [("ppo", "ner"), ("reinforce", "summarization"), ("trpo", "classification")],
)
def test_same_seed_same_losses_and_weights_on_cpu(algorithm, name):
    runs = []
    for _ in range(2):
        model = _agent(algorithm, name, 3)
        model.learn(2 * AGENT["n_envs"] * AGENT["n_steps"], progress_bar=False)
        assert model.num_updates == 2
        runs.append((_train_logs(model), model.policy.state_dict()))
    (logs_a, weights_a), (logs_b, weights_b) = runs
    assert logs_a == logs_b and logs_a[0]
    for key, tensor in weights_a.items():
        assert torch.equal(tensor, weights_b[key]), key


PROCESS_SCRIPT = textwrap.dedent(
    """
    import hashlib, json, sys
    import gymnasium as gym
    import numpy as np
    import textgym
    from textgym.agents import PPO

    digest = hashlib.sha256()
    for env_id, kwargs in json.loads(sys.argv[1]):
        env = gym.make(env_id, **kwargs)
        rng = np.random.default_rng(3)
        obs, info = env.reset(seed=3)
        for _ in range(40):
            obs, reward, terminated, truncated, info = env.step(int(rng.integers(env.action_space.n)))
            digest.update(repr((reward, terminated, truncated, info["index"])).encode())
            for key in sorted(obs):
                digest.update(obs[key].tobytes())
            if terminated or truncated:
                obs, info = env.reset()
        digest.update(repr(env.unwrapped.labels).encode())
    env_id, kwargs = json.loads(sys.argv[1])[0]
    model = PPO(env_id, policy="tiny", seed=5, device="cpu", env_kwargs=kwargs,
                n_envs=2, n_steps=4, batch_size=8, learning_rate=1e-3)
    model.learn(16, progress_bar=False)
    losses = [{k: v for k, v in r.items() if k.startswith("train/")} for r in model.logger.rows]
    print(json.dumps({"episodes": digest.hexdigest(), "losses": losses}, sort_keys=True))
    """
)


@pytest.mark.slow
def test_same_episodes_and_losses_in_another_process_cold_or_warm_cache(tmp_path):
    """Two processes with different hash seeds; the first builds the tokenized arrays,
    the second reads them from the on-disk cache."""
    data = tmp_path / "news.csv"
    rows = "".join(f"story {i} about topic {i % 4},t{i % 4}\n" for i in range(40))
    data.write_text("text,label\n" + rows)
    configs = [
        ("TextClassification-v0", {"dataset": str(data), "max_tokens": 12}),
        ("TextNER-v0", {"max_tokens": 16}),
    ]
    cache = tmp_path / "cache"
    outputs = []
    for hash_seed in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hash_seed, TEXTGYM_CACHE_DIR=str(cache))
        run = subprocess.run(
            [sys.executable, "-c", PROCESS_SCRIPT, json.dumps(configs)],
            capture_output=True, text=True, env=env, timeout=600,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr[-2000:]
        outputs.append(json.loads(run.stdout.strip().splitlines()[-1]))
    assert outputs[0] == outputs[1]
    assert len(outputs[0]["losses"]) == 2 and "train/policy_loss" in outputs[0]["losses"][0]
    assert any(cache.iterdir())  # the second run read what the first wrote
