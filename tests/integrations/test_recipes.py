"""Every recipe of docs/integrations.md, run on every env id with the real library.

The libraries come with the ``integrations`` extra; where one is missing its tests skip.
RLlib's tests are in test_rllib.py (ray pins an older Gymnasium: .ci/run gives it its own
virtual environment).
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from .recipes import ENV_IDS, recipes, run_recipe

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


def test_every_recipe_on_the_page_is_run_by_a_test():
    tested = {"gymnasium", "sb3", "sb3-contrib", "torchrl", "tianshou", "skrl", "cleanrl", "rllib"}
    assert set(recipes()) == tested


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_gymnasium(env_id):
    ns = run_recipe("gymnasium", env_id)
    assert ns["info"]["episode"]["l"] >= 1
    assert np.isfinite(ns["returns"]).all()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_stable_baselines3(env_id):
    pytest.importorskip("stable_baselines3")
    ns = run_recipe("sb3", env_id)
    result = ns["result"]
    assert result.num_episodes == gym.make(env_id, split="validation").unwrapped.num_examples
    assert result.metrics


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_sb3_contrib(env_id):
    pytest.importorskip("sb3_contrib")
    ns = run_recipe("sb3-contrib", env_id)
    assert ns["model"].num_timesteps >= 32


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_torchrl(env_id):
    pytest.importorskip("torchrl")
    ns = run_recipe("torchrl", env_id)
    rollout = ns["rollout"]
    # Episode boundaries are right: a step after a done starts a fresh episode.
    done = rollout["next", "done"].squeeze(-1)
    after = np.zeros(done.shape, bool)
    after[:, 1:] = done[:, :-1].numpy()
    first = gym.make(env_id).unwrapped
    if env_id == "TextNER-v0":
        starts = rollout["word_index"][..., 0].numpy()
        assert done.any() and (starts[after] == 0).all()
        final = rollout["next"]
        assert (final["word_index"][..., 0][done] == final["word_mask"].sum(-1)[done]).all()
    if env_id == "TextSummarization-v0":
        assert (rollout["summary_mask"].sum(-1).numpy()[after] == 0).all()
    assert first.task in ("ner", "classification", "summarization")


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_tianshou(env_id):
    pytest.importorskip("tianshou")
    ns = run_recipe("tianshou", env_id)
    stats = ns["stats"]
    assert stats.n_collected_steps >= stats.n_collected_episodes >= 8


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_skrl(env_id):
    pytest.importorskip("skrl")
    ns = run_recipe("skrl", env_id)
    assert ns["terminated"].shape == (4, 1)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_cleanrl_style_loop(env_id):
    pytest.importorskip("torch")
    ns = run_recipe("cleanrl", env_id)
    assert np.isfinite(ns["loss"].item())
    assert ns["valid"].min() == 0 or env_id != "TextClassification-v0"  # restarts masked
    assert ns["result"].num_episodes > 0


def test_skrl_auto_detection_does_not_know_textgym():
    """Why the recipe names the wrapper: if skrl learns to detect textgym, simplify it."""
    skrl_wrappers = pytest.importorskip("skrl.envs.wrappers.torch")
    with pytest.raises(ValueError, match="Unknown wrapper type"):
        skrl_wrappers.wrap_env(gym.make_vec("TextClassification-v0", num_envs=2))


def test_torchrl_gym_env_drops_frameskip_thanks_to_the_type_error():
    pytest.importorskip("torchrl")
    from torchrl.envs import GymEnv

    env = GymEnv("TextClassification-v0", frame_skip=1)
    assert env.wrapper_frame_skip == 1  # TorchRL dropped frameskip and does it itself
