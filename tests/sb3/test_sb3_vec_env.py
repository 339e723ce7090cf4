"""TextgymVecEnv: the native vector env seen through SB3's VecEnv API.

The reference is SB3's own DummyVecEnv over single envs: seeded alike, the native slot
``i`` plays what a single env seeded ``s + i`` plays, so both must return the same
observations, rewards, dones, terminal observations and truncation flags step by step.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

import textgym
from textgym.errors import TextgymError
from textgym.sb3 import TextgymVecEnv, make_sb3_vec_env

N_ENVS = 4

# Kwargs that make both episode ends frequent: NER sentences of more than 18 subwords are
# truncated, summaries are cut after 3 tokens.
END_KWARGS = {
    "TextNER-v0": {"max_tokens": 20},
    "TextClassification-v0": {"max_tokens": 16},
    "TextSummarization-v0": {"max_source_tokens": 16, "max_summary_tokens": 3},
}


def random_actions(rng: np.random.Generator, n_actions: int, eos: int, env_id: str) -> np.ndarray:
    actions = rng.integers(0, n_actions, size=N_ENVS)
    if env_id == "TextSummarization-v0":  # end some summaries early (terminated)
        actions = np.where(rng.random(N_ENVS) < 0.3, eos, actions)
    return actions


def assert_obs_equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(np.asarray(a[key]), np.asarray(b[key]), err_msg=key)


@pytest.mark.parametrize("env_id", sorted(textgym.ENV_IDS))
def test_matches_dummy_vec_env(env_id):
    kwargs = END_KWARGS[env_id]
    ours = make_sb3_vec_env(env_id, N_ENVS, monitor=False, **kwargs)
    reference = DummyVecEnv([lambda: gym.make(env_id, **kwargs) for _ in range(N_ENVS)])
    ours.seed(7)
    reference.seed(7)
    assert_obs_equal(ours.reset(), reference.reset())
    assert [i["index"] for i in ours.reset_infos] == [i["index"] for i in reference.reset_infos]
    env = ours.vector_env
    rng = np.random.default_rng(0)
    ends = {"terminated": 0, "truncated": 0}
    for _ in range(40):
        actions = random_actions(rng, env.single_action_space.n, env.eos_token_id, env_id)
        obs, rewards, dones, infos = ours.step(actions)
        ref_obs, ref_rewards, ref_dones, ref_infos = reference.step(actions)
        assert_obs_equal(obs, ref_obs)
        np.testing.assert_allclose(rewards, ref_rewards)
        np.testing.assert_array_equal(dones, ref_dones)
        assert rewards.dtype == np.float32 and dones.dtype == bool
        assert len(infos) == N_ENVS
        for slot in range(N_ENVS):
            info, ref = infos[slot], ref_infos[slot]
            assert info["index"] == ref["index"]
            if not dones[slot]:
                assert "terminal_observation" not in info
                continue
            assert_obs_equal(info["terminal_observation"], ref["terminal_observation"])
            assert info["TimeLimit.truncated"] == ref["TimeLimit.truncated"]
            ends["truncated" if info["TimeLimit.truncated"] else "terminated"] += 1
            assert ours.reset_infos[slot]["index"] == reference.reset_infos[slot]["index"]
    assert ends["terminated"] > 0
    if env_id != "TextClassification-v0":  # one-step episodes always terminate
        assert ends["truncated"] > 0


def test_final_info_reaches_the_finished_slots():
    vec = make_sb3_vec_env("TextNER-v0", N_ENVS, monitor=False, max_tokens=8, reward_mode="f1")
    vec.reset()
    finished = 0
    for _ in range(20):
        _, rewards, dones, infos = vec.step(np.zeros(N_ENVS, np.int64))
        for slot in np.flatnonzero(dones):
            assert set(infos[slot]) >= {"index", "words_dropped", "f1"}
            assert infos[slot]["f1"] == pytest.approx(rewards[slot])
            finished += 1
        for slot in np.flatnonzero(~dones):
            assert set(infos[slot]) == {"index"}
    assert finished > 0


def test_seed_and_options_reach_the_native_reset():
    vec = make_sb3_vec_env("TextClassification-v0", N_ENVS, monitor=False, max_tokens=16)
    native = gym.make_vec("TextClassification-v0", num_envs=N_ENVS, max_tokens=16)
    vec.seed(3)
    _, native_info = native.reset(seed=3)
    assert_obs_equal(vec.reset(), native.reset(seed=3)[0])
    assert [i["index"] for i in vec.reset_infos] == native_info["index"].tolist()

    vec.set_options([{"index": i} for i in (5, 6, 7, 8)])
    vec.reset()
    assert [i["index"] for i in vec.reset_infos] == [5, 6, 7, 8]
    vec.set_options({"indices": [11, 12, 13, 14, 15]})  # a playlist: the same for all envs
    vec.reset()
    assert [i["index"] for i in vec.reset_infos] == [11, 12, 13, 14]
    _, _, _, infos = vec.step(np.zeros(N_ENVS, np.int64))  # one-step episodes: all finish
    assert [i["index"] for i in infos] == [11, 12, 13, 14]  # the finished episodes
    assert vec.reset_infos[0]["index"] == 15  # the playlist's last entry goes to slot 0
    vec.set_options([{"index": 1}, {}, {}, {}])
    with pytest.raises(TextgymError, match="reset options"):
        vec.reset()


def test_action_masks_one_per_env():
    vec = make_sb3_vec_env(
        "TextSummarization-v0",
        N_ENVS,
        max_source_tokens=16,
        max_summary_tokens=3,
        constraint="source",
    )
    vec.seed(0)  # an unseeded reset may, rarely, open one article in two slots
    vec.reset()
    masks = vec.env_method("action_masks")
    assert len(masks) == N_ENVS
    expected = vec.venv.vector_env.action_masks()
    for slot, mask in enumerate(masks):
        assert mask.shape == (vec.observation_space["input_ids"].high.max() + 1,)
        np.testing.assert_array_equal(mask, expected[slot])
    assert len(vec.env_method("action_masks", indices=[1, 3])) == 2
    # Rows differ between articles: each env gets its own mask, not the first one repeated.
    assert not np.array_equal(masks[0], masks[1])
    assert vec.has_attr("action_masks")


def test_attributes_and_wrappers():
    vec = make_sb3_vec_env("TextNER-v0", N_ENVS, max_tokens=16)
    assert isinstance(vec, VecMonitor)
    assert vec.get_attr("task") == ["ner"] * N_ENVS
    assert vec.get_attr("labels", indices=[0])[0][0] == "O"
    assert vec.env_is_wrapped(Monitor) == [False] * N_ENVS
    assert not vec.has_attr("no_such_attribute")
    vec.set_attr("reward_mode", "token")
    assert vec.get_attr("reward_mode") == ["token"] * N_ENVS


def test_monitor_reports_episodes():
    vec = make_sb3_vec_env("TextClassification-v0", N_ENVS, max_tokens=16)
    vec.reset()
    _, rewards, _, infos = vec.step(np.zeros(N_ENVS, np.int64))
    assert [i["episode"]["r"] for i in infos] == pytest.approx(rewards.tolist())
    assert [i["episode"]["l"] for i in infos] == [1] * N_ENVS


def test_rejects_next_step_autoreset():
    env = gym.vector.SyncVectorEnv([lambda: gym.make("TextClassification-v0", max_tokens=16)])
    with pytest.raises(TextgymError, match="SAME_STEP"):
        TextgymVecEnv(env)
    native = gym.make_vec("TextClassification-v0", num_envs=2, max_tokens=16)  # next-step
    with pytest.raises(TextgymError, match="autoreset_mode=AutoresetMode.SAME_STEP"):
        TextgymVecEnv(native)
    assert make_sb3_vec_env("TextClassification-v0", 2, max_tokens=16).num_envs == 2
