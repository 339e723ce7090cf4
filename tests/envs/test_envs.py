"""The environment contract, checked for every registered env id (model: Gymnasium's test_envs)."""

from __future__ import annotations

import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from gymnasium.vector.vector_env import AutoresetMode

import textgym
from textgym.envs import TextClassificationVectorEnv, TextNERVectorEnv, TextSummarizationVectorEnv

ENV_IDS = list(textgym.ENV_IDS)
VECTOR_CLASSES = {
    "TextNER-v0": TextNERVectorEnv,
    "TextClassification-v0": TextClassificationVectorEnv,
    "TextSummarization-v0": TextSummarizationVectorEnv,
}
# Small windows keep the tests fast; the defaults are exercised by the checker tests.
SMALL = {
    "TextNER-v0": {"max_tokens": 48},
    "TextClassification-v0": {"max_tokens": 32},
    "TextSummarization-v0": {"max_source_tokens": 32, "max_summary_tokens": 6},
}


def rollout(env, seed, actions_from, steps=60):
    """Observations, rewards and flags of ``steps`` steps, resetting after each episode."""
    obs, info = env.reset(seed=seed)
    trace = [(obs, info["index"])]
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        action = actions_from(env, rng)
        obs, reward, terminated, truncated, info = env.step(action)
        trace.append((obs, reward, terminated, truncated))
        if terminated or truncated:
            obs, info = env.reset()
            trace.append((obs, info["index"]))
    return trace


def random_action(env, rng):
    return int(rng.integers(env.action_space.n))


def assert_same(a, b):
    assert type(a) is type(b)
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, (tuple, list)):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_gymnasium_env_checker(env_id):
    env = gym.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym_check_env(env.unwrapped, skip_render_check=False)
    env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_sb3_env_checker(env_id):
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gym.make(env_id, **SMALL[env_id])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sb3_check_env(env, warn=True)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_attributes(env_id):
    env = gym.make(env_id, **SMALL[env_id]).unwrapped
    assert env.task in ("ner", "classification", "summarization")
    assert env.vocab_size == 30522
    assert env.pad_token_id == 0 and env.eos_token_id == 102
    assert env.num_examples == len(env.examples) > 0
    assert env.split == "train"
    if env.task == "summarization":
        assert env.labels == () and env.action_space.n == env.vocab_size
    else:
        assert env.action_space.n == len(env.labels) > 1
    # compact dtypes: token ids of the 30,522-token vocabulary in int16, the rest in int8
    for key, space in env.observation_space.spaces.items():
        expected = np.int16 if key in ("input_ids", "summary_ids") else np.int8
        assert isinstance(space, gym.spaces.Box) and space.dtype == expected, key


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_same_seed_same_episodes(env_id):
    a = rollout(gym.make(env_id, **SMALL[env_id]), 7, random_action)
    b = rollout(gym.make(env_id, **SMALL[env_id]), 7, random_action)
    assert_same(a, b)
    c = rollout(gym.make(env_id, **SMALL[env_id]), 8, random_action)
    assert [t[1] for t in a if len(t) == 2] != [t[1] for t in c if len(t) == 2]


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_reset_index_opens_that_example(env_id):
    env = gym.make(env_id, **SMALL[env_id])
    for i in (0, 3, env.unwrapped.num_examples - 1):
        obs, info = env.reset(options={"index": i})
        assert info["index"] == i
        assert_same(obs, env.reset(options={"index": i})[0])
    with pytest.raises(ValueError, match="out of range"):
        env.reset(options={"index": env.unwrapped.num_examples})


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_make_vec_is_native_and_next_step_by_default(env_id):
    envs = gym.make_vec(env_id, num_envs=4, **SMALL[env_id])
    assert isinstance(envs, VECTOR_CLASSES[env_id])
    assert envs.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert envs.autoreset_mode == AutoresetMode.NEXT_STEP
    assert envs.single_observation_space == gym.make(env_id, **SMALL[env_id]).observation_space
    obs, _ = envs.reset(seed=0)
    assert envs.observation_space.contains(obs)
    same = gym.make_vec(env_id, num_envs=4, autoreset_mode=AutoresetMode.SAME_STEP, **SMALL[env_id])
    assert same.metadata["autoreset_mode"] == same.autoreset_mode == AutoresetMode.SAME_STEP
    assert type(envs).metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP  # not changed


def test_make_with_namespace_prefix_in_fresh_process():
    code = "import gymnasium as gym; env = gym.make('textgym:TextNER-v0'); print(env.reset(seed=0)[1]['index'])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().isdigit()


def slot_info(info: dict, i: int) -> dict:
    """Slot ``i``'s entries of a vector info dict (the keys whose mask is set at ``i``)."""
    out = {}
    for key, value in info.items():
        if key.startswith("_") or key in ("final_obs", "final_info"):
            continue
        mask = info.get(f"_{key}")
        if mask is None or mask[i]:
            item = value[i]
            item = item.item() if isinstance(item, np.generic) else item
            out[key] = round(item, 5) if isinstance(item, float) else item
    return out


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_vector_matches_gymnasium_sync_vector_env(env_id, mode):
    """Same episodes, observations, rewards, flags, final observations and final infos as
    Gymnasium's SyncVectorEnv over single envs, in each autoreset mode."""
    n = 5
    kwargs = (
        {**SMALL[env_id], "reward_mode": "token+f1"} if env_id == "TextNER-v0" else SMALL[env_id]
    )
    singles = gym.vector.SyncVectorEnv(
        [lambda: gym.make(env_id, **kwargs) for _ in range(n)], autoreset_mode=mode
    )
    native = gym.make_vec(env_id, num_envs=n, autoreset_mode=mode, **kwargs)
    assert native.metadata["autoreset_mode"] == native.autoreset_mode == mode
    obs_s, info_s = singles.reset(seed=11)
    obs_n, info_n = native.reset(seed=11)
    assert_same(obs_s, obs_n)
    np.testing.assert_array_equal(info_s["index"], info_n["index"])
    rng = np.random.default_rng(0)
    finished = 0
    for _ in range(80):
        if env_id == "TextSummarization-v0":
            actions = np.where(
                rng.random(n) < 0.2, native.eos_token_id, rng.integers(1000, 2000, n)
            )
        else:
            actions = rng.integers(native.single_action_space.n, size=n)
        obs_s, r_s, te_s, tr_s, info_s = singles.step(actions)
        obs_n, r_n, te_n, tr_n, info_n = native.step(actions)
        assert_same(obs_s, obs_n)
        np.testing.assert_allclose(r_s, r_n, rtol=1e-6)
        np.testing.assert_array_equal(te_s, te_n)
        np.testing.assert_array_equal(tr_s, tr_n)
        np.testing.assert_array_equal(info_s["index"], info_n["index"])
        done = te_s | tr_s
        if mode == AutoresetMode.NEXT_STEP:
            # Slots that finished last step restarted now: reward 0, their first observation.
            assert "final_obs" not in info_n and "final_info" not in info_n
            finals_s, finals_n = info_s, info_n  # the last info of a finished slot
        else:
            finals_s = info_s.get("final_info", {})
            finals_n = info_n.get("final_info", {})
            for i in np.flatnonzero(done):
                for key, value in info_s["final_obs"][i].items():
                    np.testing.assert_array_equal(value, info_n["final_obs"][key][i])
        for i in np.flatnonzero(done):
            finished += 1
            assert slot_info(finals_n, i) == slot_info(finals_s, i)
    assert finished > 5


def test_vector_slots_keep_the_single_env_streams_over_many_episodes():
    """Slot i's examples are those of a single env seeded ``seed + i``, across more
    episodes than the vector env computes ahead at once, and across a plain ``reset()``
    (which goes on with the streams) and a reset to chosen examples (which uses none)."""
    kwargs = SMALL["TextClassification-v0"]
    n, seed = 3, 21
    envs = gym.make_vec(
        "TextClassification-v0", num_envs=n, autoreset_mode=AutoresetMode.SAME_STEP, **kwargs
    )
    _, info = envs.reset(seed=seed)
    played = [[int(i)] for i in info["index"]]
    for step in range(100):  # every step ends every episode
        if step == 40:
            _, info = envs.reset(options={"index": [0, 1, 2]})
            assert info["index"].tolist() == [0, 1, 2]
        if step == 41:
            _, info = envs.reset()
            for slot in range(n):
                played[slot].append(int(info["index"][slot]))
            continue
        _, _, _, _, infos = envs.step(np.zeros(n, np.int64))
        for slot in range(n):
            played[slot].append(int(infos["index"][slot]))
    for slot in range(n):
        env = gym.make("TextClassification-v0", **kwargs)
        expected = [env.reset(seed=seed + slot)[1]["index"]]
        expected += [env.reset()[1]["index"] for _ in range(len(played[slot]) - 1)]
        assert played[slot] == expected
    assert len(played[0]) > 64


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_final_info_has_the_single_envs_last_info_keys(env_id):
    env = gym.make(env_id, **SMALL[env_id])
    env.reset(seed=0)
    action = env.unwrapped.eos_token_id if env_id == "TextSummarization-v0" else 0
    done = False
    while not done:
        _, _, terminated, truncated, last = env.step(action)
        done = terminated or truncated
    for mode in (AutoresetMode.SAME_STEP, AutoresetMode.NEXT_STEP):
        envs = gym.make_vec(env_id, num_envs=2, autoreset_mode=mode, **SMALL[env_id])
        envs.reset(seed=0)
        for _ in range(200):
            _, _, terminated, truncated, infos = envs.step(np.full(2, action))
            if (terminated | truncated)[0]:
                break
        finals = infos["final_info"] if mode == AutoresetMode.SAME_STEP else infos
        assert slot_info(finals, 0).keys() == last.keys()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_whole_number_float_actions_work_in_single_and_vector_envs(env_id):
    env = gym.make(env_id, **SMALL[env_id])
    env.reset(seed=0)
    by_int = env.step(1)
    env.reset(seed=0)
    by_float = env.step(np.float32(1.0))
    assert_same(by_int[0], by_float[0])
    assert by_int[1:4] == by_float[1:4]
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action 1.5 is not in the action space"):
        env.step(1.5)
    envs = gym.make_vec(env_id, num_envs=2, **SMALL[env_id])
    envs.reset(seed=0)
    envs.step(np.array([1.0, 0.0]))
    with pytest.raises(ValueError, match="actions must be 2 integers"):
        envs.step(np.array([1.5, 0.0]))


@pytest.mark.filterwarnings("ignore:.*render_mode='rgb_array'")
def test_unknown_or_unsupported_kwargs_are_type_errors_worded_like_pythons():
    for make in (
        lambda **kw: gym.make("TextNER-v0", **kw),
        lambda **kw: gym.make_vec("TextNER-v0", num_envs=2, **kw),
    ):
        with pytest.raises(TypeError, match="unexpected keyword argument 'frameskip'"):
            make(frameskip=1)
        with pytest.raises(ValueError, match="__init__\\(\\) got an unexpected keyword argument"):
            make(frameskip=1)  # still a TextgymError (a ValueError)
    with pytest.raises(
        TypeError, match="__init__\\(\\) got an unexpected keyword argument 'render_mode'"
    ):
        gym.make("TextClassification-v0", render_mode="rgb_array")
    with pytest.raises(ValueError, match="unsupported autoreset_mode AutoresetMode.DISABLED"):
        gym.make_vec("TextNER-v0", num_envs=2, autoreset_mode=AutoresetMode.DISABLED)


def test_action_masks_work_with_gymnasiums_sampler():
    env = gym.make("TextSummarization-v0", constraint="source", **SMALL["TextSummarization-v0"])
    obs, _ = env.reset(seed=0)
    mask = env.unwrapped.action_masks()
    assert mask.dtype == np.int8 and mask.shape == (env.action_space.n,)
    allowed = set(np.flatnonzero(mask).tolist())
    for _ in range(20):
        assert env.action_space.sample(mask=mask) in allowed
    env.step(env.action_space.sample(mask=mask))  # legal under the constraint


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_bad_actions_and_step_after_end(env_id):
    env = gym.make(env_id, **SMALL[env_id])
    env.reset(seed=0)
    n = env.action_space.n
    with pytest.raises(ValueError, match=f"action {n} is not in the action space"):
        env.step(n)
    with pytest.raises(ValueError, match="not in the action space"):
        env.step(-1)
    envs = gym.make_vec(env_id, num_envs=3, **SMALL[env_id])
    with pytest.raises(ValueError, match="step\\(\\) called before reset"):
        envs.step(np.zeros(3, np.int64))
    envs.reset(seed=0)
    with pytest.raises(ValueError, match=f"action {n} is not in the action space"):
        envs.step(np.array([0, n, 0]))
    with pytest.raises(ValueError, match="one per env"):
        envs.step(np.zeros(2, np.int64))
    # Run one episode to its end, then step again.
    env = gym.make(env_id, **SMALL[env_id]).unwrapped
    env.reset(seed=0)
    done = False
    action = env.eos_token_id if env.task == "summarization" else 0
    while not done:
        _, _, terminated, truncated, _ = env.step(action)
        done = terminated or truncated
    with pytest.raises(ValueError, match="after the episode ended"):
        env.step(action)


@pytest.mark.parametrize(
    ("env_id", "kwargs", "message"),
    [
        ("TextNER-v0", {"max_tokens": 2}, "max_tokens must be an integer >= 3"),
        ("TextNER-v0", {"reward_mode": "bleu"}, "unknown reward_mode 'bleu'"),
        ("TextClassification-v0", {"max_tokens": 1}, "max_tokens must be an integer >= 2"),
        ("TextSummarization-v0", {"rouge": "rouge3"}, "unknown rouge 'rouge3'"),
        ("TextSummarization-v0", {"constraint": "vocab"}, "unknown constraint 'vocab'"),
        ("TextNER-v0", {"split": "tset"}, "no split .tset.; valid splits: train, validation, test"),
        ("TextNER-v0", {"render_mode": "rgb_array"}, "render_mode 'rgb_array' is not supported"),
        ("TextNER-v0", {"obs_dtype": "uint16"}, "unknown obs_dtype 'uint16'"),
    ],
)
def test_bad_kwargs_fail_at_construction(env_id, kwargs, message):
    with pytest.raises(ValueError, match=message):
        gym.make(env_id, **kwargs)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_render_ansi_and_human(env_id, capsys):
    env = gym.make(env_id, render_mode="ansi", **SMALL[env_id])
    env.reset(seed=0)
    text = env.render()
    assert isinstance(text, str) and "of train" in text
    env = gym.make(env_id, render_mode="human", **SMALL[env_id])
    env.reset(seed=0)
    assert env.render() is None
    assert "of train" in capsys.readouterr().out


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_registered_defaults_match_the_constructor(env_id):
    import inspect

    entry = gym.spec(env_id).entry_point
    module, cls = entry.split(":")
    signature = inspect.signature(getattr(__import__(module, fromlist=[cls]), cls))
    defaults = {
        name: p.default
        for name, p in signature.parameters.items()
        if p.default is not inspect.Parameter.empty and name != "render_mode"
    }
    assert gym.spec(env_id).kwargs == defaults
    env = gym.make(env_id, split="validation")
    assert env.spec.kwargs == {**defaults, "split": "validation"}
