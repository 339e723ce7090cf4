"""The RLlib recipe of docs/integrations.md, and what makes RLlib's data right.

ray[rllib] pins an older Gymnasium than textgym's other integrations, so .ci/run runs
this file in a virtual environment of its own; elsewhere it skips when ray is missing.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from .recipes import ENV_IDS, run_recipe

pytest.importorskip("ray.rllib", reason="ray[rllib] is not installed (see docs/integrations.md)")
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


@pytest.fixture(scope="module", autouse=True)
def ray_session():
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_rllib_recipe(env_id):
    ns = run_recipe("rllib", env_id)
    result = ns["result"]
    assert result["env_runners"]["num_env_steps_sampled"] >= 128
    assert np.isfinite(result["env_runners"]["episode_return_mean"])
    if env_id == "TextNER-v0":
        right, total = _episodes_right(ns["algo"])
        assert right == total >= 12  # every episode starts at word 0 and ends on its last
    ns["algo"].stop()


def _episodes_right(algo) -> tuple[int, int]:
    """(episodes whose first and last observations are a sentence's, episodes sampled)."""
    space = gym.make("TextNER-v0").observation_space
    episodes = algo.env_runner.sample(num_episodes=12, random_actions=True)
    right = 0
    for episode in episodes:
        observations = episode.get_observations()
        first = gym.spaces.unflatten(space, observations[0])
        last = gym.spaces.unflatten(space, observations[-1])
        starts_at_word_0 = first["word_index"][0] == 0
        ends_on_the_last_word = last["word_index"][0] == last["word_mask"].sum() == len(episode)
        right += int(starts_at_word_0 and (ends_on_the_last_word or not episode.is_done))
    return right, len(episodes)


def test_same_step_autoreset_would_corrupt_rllib_episodes():
    """The control: RLlib assumes next-step autoreset; given same-step its episodes start
    and end in the wrong places (the data the default now prevents)."""
    from ray.rllib.algorithms.ppo import PPOConfig
    from ray.rllib.connectors.env_to_module import FlattenObservations

    config = (
        PPOConfig()
        .environment("TextNER-v0", env_config={"autoreset_mode": "SameStep"})
        .env_runners(
            num_env_runners=0,
            num_envs_per_env_runner=4,
            gym_env_vectorize_mode="vector_entry_point",
            env_to_module_connector=lambda env, spaces, device: FlattenObservations(),
        )
    )
    algo = config.build_algo()
    right, total = _episodes_right(algo)
    algo.stop()
    assert right < total
