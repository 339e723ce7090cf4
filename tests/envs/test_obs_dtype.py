"""Observation dtypes: the compact default and ``obs_dtype="int32"`` hold the same values.

Each ``Box`` of the default observation space has the smallest signed integer dtype its
bounds fit (token ids of a 30,522-token vocabulary in int16, masks, tags and positions in
int8); ``obs_dtype="int32"`` gives every key int32. What a user relies on: the values are
the same either way, the arrays have the space's dtype, and Gymnasium's checker, SB3's
preprocessing and torch take them as they are.
"""

from __future__ import annotations

import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from gymnasium.vector.vector_env import AutoresetMode

import textgym
from textgym.envs.base import compact_dtype

ENV_IDS = list(textgym.ENV_IDS)
SMALL = {
    "TextNER-v0": {"max_tokens": 48, "reward_mode": "token+f1"},
    "TextClassification-v0": {"max_tokens": 32},
    "TextSummarization-v0": {"max_source_tokens": 32, "max_summary_tokens": 6},
}


def actions_for(env, rng, n: int) -> np.ndarray:
    """``n`` random actions (of one env, or one per slot of a vector env)."""
    base = env.unwrapped
    if base.task == "summarization":  # mostly words, sometimes EOS: episodes end
        return np.where(rng.random(n) < 0.2, base.eos_token_id, rng.integers(1000, 2000, n))
    return rng.integers(getattr(base, "single_action_space", base.action_space).n, size=n)


def assert_obs_in_space_dtype(obs: dict, space: gym.spaces.Dict, lead: tuple[int, ...]) -> None:
    assert obs.keys() == space.spaces.keys()
    for key, box in space.spaces.items():
        assert obs[key].dtype == box.dtype and obs[key].shape == (*lead, *box.shape), key


def test_compact_dtype_is_the_smallest_signed_dtype_holding_the_bounds():
    assert compact_dtype(0, 1) == np.int8
    assert compact_dtype(0, 127) == np.int8
    assert compact_dtype(-128, 0) == np.int8
    assert compact_dtype(0, 128) == np.int16
    assert compact_dtype(0, 32767) == np.int16  # a vocabulary of 32,768 tokens
    assert compact_dtype(0, 32768) == np.int32
    assert compact_dtype(0, 50256) == np.int32  # GPT-2's vocabulary


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_int32_switch_gives_the_same_space_in_int32(env_id):
    compact = gym.make(env_id, **SMALL[env_id])
    wide = gym.make(env_id, obs_dtype="int32", **SMALL[env_id])
    assert compact.unwrapped.obs_dtype == "compact" and wide.unwrapped.obs_dtype == "int32"
    assert wide.spec.kwargs["obs_dtype"] == "int32"
    for key, box in compact.observation_space.spaces.items():
        other = wide.observation_space[key]
        assert other.dtype == np.int32
        assert box.dtype == compact_dtype(int(other.low.min()), int(other.high.max())), key
        np.testing.assert_array_equal(box.low, other.low)
        np.testing.assert_array_equal(box.high, other.high)
        assert box.shape == other.shape


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_single_env_values_match_the_int32_path(env_id):
    envs = [gym.make(env_id, obs_dtype=d, **SMALL[env_id]) for d in ("compact", "int32")]
    traces = []
    for env in envs:
        rng = np.random.default_rng(0)
        obs, _ = env.reset(seed=5)
        trace = [obs]
        for _ in range(40):
            obs, reward, terminated, truncated, _ = env.step(int(actions_for(env, rng, 1)[0]))
            assert_obs_in_space_dtype(obs, env.observation_space, ())
            trace.append((obs, reward, terminated, truncated))
            if terminated or truncated:
                trace.append(env.reset()[0])
        traces.append(trace)
    for a, b in zip(*traces, strict=True):
        a, b = (a, b) if isinstance(a, tuple) else ((a,), (b,))
        for key in a[0]:
            np.testing.assert_array_equal(a[0][key], b[0][key].astype(np.int64), err_msg=key)
        assert a[1:] == b[1:]


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_vector_env_values_match_the_int32_path(env_id, mode):
    n = 6
    envs = [
        gym.make_vec(env_id, num_envs=n, autoreset_mode=mode, obs_dtype=d, **SMALL[env_id])
        for d in ("compact", "int32")
    ]
    assert envs[0].obs_dtype == "compact" and envs[1].obs_dtype == "int32"
    for env in envs:
        env.reset(seed=3)
    rng = np.random.default_rng(1)
    finished = 0
    for _ in range(60):
        actions = actions_for(envs[0], rng, n)
        (compact, *rest_c), (wide, *rest_w) = (env.step(actions) for env in envs)
        for env, obs in zip(envs, (compact, wide), strict=True):
            assert_obs_in_space_dtype(obs, env.single_observation_space, (n,))
            assert obs in env.observation_space
        for key in compact:
            np.testing.assert_array_equal(compact[key], wide[key], err_msg=key)
        for x, y in zip(rest_c[:3], rest_w[:3], strict=True):
            np.testing.assert_array_equal(x, y)
        infos_c, infos_w = rest_c[3], rest_w[3]
        if "final_obs" in infos_c:
            done = infos_c["_final_obs"]
            finished += int(done.sum())
            for key in compact:
                np.testing.assert_array_equal(
                    infos_c["final_obs"][key][done], infos_w["final_obs"][key][done]
                )
        elif mode == AutoresetMode.NEXT_STEP:
            finished += int((rest_c[1] | rest_c[2]).sum())
    assert finished > 5


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_gymnasium_checker_passes_in_int32_too(env_id):
    env = gym.make(env_id, obs_dtype="int32", **SMALL[env_id])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(env.unwrapped)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_copies_are_fresh_and_torch_reads_the_strided_views(env_id):
    envs = gym.make_vec(env_id, num_envs=4, **SMALL[env_id])
    first, _ = envs.reset(seed=0)
    kept = {k: v.copy() for k, v in first.items()}
    rng = np.random.default_rng(0)
    second = envs.step(actions_for(envs, rng, 4))[0]
    envs.step(actions_for(envs, rng, 4))
    for key in first:  # copy=True: a returned observation never changes afterwards
        np.testing.assert_array_equal(first[key], kept[key])
        tensor = torch.as_tensor(second[key])
        assert tensor.dtype == {np.int8: torch.int8, np.int16: torch.int16}[second[key].dtype.type]
        assert torch.equal(tensor.long(), torch.as_tensor(second[key].astype(np.int64)))


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_sb3_preprocessing_gives_the_int32_values_as_floats(env_id):
    from stable_baselines3.common.preprocessing import preprocess_obs
    from stable_baselines3.common.utils import obs_as_tensor

    from textgym.sb3 import make_sb3_vec_env

    vecs = [
        make_sb3_vec_env(env_id, n_envs=3, obs_dtype=d, **SMALL[env_id])
        for d in ("compact", "int32")
    ]
    for vec in vecs:
        vec.seed(7)
    features = []
    for vec in vecs:
        obs = vec.reset()
        tensors = preprocess_obs(obs_as_tensor(obs, "cpu"), vec.observation_space)
        assert all(t.dtype == torch.float32 for t in tensors.values())
        features.append(tensors)
    for key in features[0]:
        assert torch.equal(features[0][key], features[1][key]), key
