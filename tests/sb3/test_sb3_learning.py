"""SB3 PPO with the text-encoder extractor learns bbc-news classification from reward."""

from __future__ import annotations

from collections import Counter

import pytest
from stable_baselines3 import PPO

import textgym
from textgym.sb3 import TextEncoderExtractor, make_sb3_vec_env

ENV_ID = "TextClassification-v0"
KWARGS = {"max_tokens": 64}


@pytest.mark.slow
def test_ppo_with_extractor_beats_the_majority_class():
    env = make_sb3_vec_env(ENV_ID, 16, **KWARGS)
    model = PPO(
        "MultiInputPolicy",
        env,
        n_steps=16,
        batch_size=64,
        n_epochs=4,
        learning_rate=1e-3,
        gamma=0.0,  # one-step episodes
        seed=0,
        policy_kwargs=dict(features_extractor_class=TextEncoderExtractor),
    )
    model.learn(4096)  # ~30 s on one CPU thread

    result = textgym.evaluate(model, ENV_ID, split="test", **KWARGS)
    gold = [p["label"] for p in result.predictions]
    majority = Counter(gold).most_common(1)[0][1] / len(gold)
    # Measured: 0.56 against a majority baseline of 0.26 (5 classes, 244 test articles).
    assert result.metrics["accuracy"] > majority + 0.15
