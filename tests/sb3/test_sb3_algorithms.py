"""SB3 and sb3-contrib algorithms run on every textgym env, straight and through the adapter.

"Straight" is the user's first try: ``PPO("MultiInputPolicy", gym.make(env_id))`` with
no wrapper (SB3 wraps it in Monitor and DummyVecEnv); "adapter" is
``make_sb3_vec_env``, the native vector env as an SB3 VecEnv.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from sb3_contrib import TRPO, MaskablePPO
from sb3_contrib.common.maskable.utils import get_action_masks
from stable_baselines3 import A2C, DQN, PPO

import textgym
from textgym.sb3 import TextEncoderExtractor, make_sb3_vec_env

TIMESTEPS = 256
N_ENVS = 4
ENV_IDS = sorted(textgym.ENV_IDS)


def make_env(source: str, env_id: str, kwargs: dict):
    if source == "gym.make":
        return gym.make(env_id, **kwargs)
    return make_sb3_vec_env(env_id, N_ENVS, **kwargs)


def rollout_kwargs(algo: type, env_id: str, source: str) -> dict:
    """Small rollouts: one or two updates within TIMESTEPS."""
    n_envs = 1 if source == "gym.make" else N_ENVS
    n_steps = 128 // n_envs
    kwargs: dict = {"n_steps": n_steps}
    if algo is PPO:
        kwargs.update(batch_size=64, n_epochs=2)
    if algo is TRPO:
        # A Hessian-vector product over 30522 logits per step is the cost: few CG steps.
        kwargs.update(batch_size=128, cg_max_steps=3, n_critic_updates=2, line_search_max_iter=3)
    return kwargs


def on_policy_cases():
    for env_id in ENV_IDS:
        for algo in (PPO, A2C, TRPO):
            for source in ("gym.make", "adapter"):
                # TRPO's Hessian-vector products over 30522 logits take ~20 s here.
                slow = algo is TRPO and env_id == "TextSummarization-v0"
                marks = [pytest.mark.slow] if slow else []
                yield pytest.param(
                    env_id, algo, source, marks=marks, id=f"{env_id}-{algo.__name__}-{source}"
                )


@pytest.mark.parametrize("env_id, algo, source", list(on_policy_cases()))
def test_on_policy_runs(env_id, algo, source, small_kwargs):
    env = make_env(source, env_id, small_kwargs[env_id])
    model = algo("MultiInputPolicy", env, seed=0, **rollout_kwargs(algo, env_id, source))
    model.learn(TIMESTEPS)
    assert model.num_timesteps >= TIMESTEPS
    obs = model.get_env().reset()
    actions, _ = model.predict(obs)
    assert actions.shape == (model.get_env().num_envs,)


@pytest.mark.parametrize("source", ["gym.make", "adapter"])
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_dqn_runs(env_id, source, small_kwargs):
    env = make_env(source, env_id, small_kwargs[env_id])
    # The replay buffer holds observations of every key: keep it small.
    model = DQN(
        "MultiInputPolicy", env, buffer_size=1_000, learning_starts=64, batch_size=32, seed=0
    )
    model.learn(TIMESTEPS)
    assert model.num_timesteps >= TIMESTEPS


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_ppo_with_the_extractor_runs(env_id, small_kwargs):
    env = make_sb3_vec_env(env_id, N_ENVS, **small_kwargs[env_id])
    model = PPO(
        "MultiInputPolicy",
        env,
        n_steps=32,
        batch_size=64,
        n_epochs=2,
        seed=0,
        policy_kwargs=dict(features_extractor_class=TextEncoderExtractor),
    )
    model.learn(TIMESTEPS)
    assert isinstance(model.policy.features_extractor, TextEncoderExtractor)


@pytest.mark.parametrize("source", ["gym.make", "adapter"])
def test_maskable_ppo_never_picks_a_masked_token(source, small_kwargs):
    kwargs = {**small_kwargs["TextSummarization-v0"], "constraint": "source"}
    env = make_env(source, "TextSummarization-v0", kwargs)
    # The env raises on a token outside the source: learn() itself checks every action.
    model = MaskablePPO(
        "MultiInputPolicy",
        env,
        n_steps=128 // (1 if source == "gym.make" else N_ENVS),
        batch_size=64,
        n_epochs=1,
        seed=0,
    )
    model.learn(TIMESTEPS)

    vec = make_sb3_vec_env("TextSummarization-v0", 16, **kwargs)
    obs = vec.reset()
    finished = np.zeros(16, bool)
    steps = 0
    while not finished.all():
        masks = get_action_masks(vec)
        assert masks.shape == (16, vec.action_space.n)
        actions, _ = model.predict(obs, action_masks=masks, deterministic=False)
        assert masks[np.arange(16), actions].all()
        obs, _, dones, _ = vec.step(actions)
        finished |= dones
        steps += 1
    assert steps <= kwargs["max_summary_tokens"]
