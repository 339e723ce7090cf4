"""textgym.evaluate on whole splits: an oracle scores 1.0, a random policy scores near chance."""

from __future__ import annotations

import numpy as np
import pytest

import textgym


def oracle(env_id, **kwargs):
    """A policy that reads gold answers from the corpus (through infos["index"]), not the obs."""
    import gymnasium as gym

    env = gym.make(env_id, split="test", **kwargs).unwrapped
    examples, labels = env.examples, env.labels
    label_id = {label: i for i, label in enumerate(labels)}

    def policy(obs, infos):
        idx = infos["index"]
        if env.task == "ner":
            pos = obs["word_index"][:, 0]
            return np.array([label_id[examples[i].tags[p]] for i, p in zip(idx, pos, strict=True)])
        return np.array([label_id[examples[i].label] for i in idx])

    return policy


@pytest.mark.parametrize("num_envs", [1, 7, 64])
def test_ner_oracle_scores_one(num_envs):
    result = textgym.evaluate(oracle("TextNER-v0"), "TextNER-v0", split="test", num_envs=num_envs)
    assert result.num_episodes == 220
    assert result.metrics["f1"] == 1.0
    assert result.metrics["accuracy"] == 1.0
    assert "micro avg" in result.report and "person" in result.report
    assert [p["index"] for p in result.predictions] == list(range(220))


def test_ner_words_beyond_max_tokens_count_as_missed():
    cut = textgym.evaluate(oracle("TextNER-v0", max_tokens=16), "TextNER-v0", max_tokens=16)
    full = textgym.evaluate(oracle("TextNER-v0"), "TextNER-v0")
    assert cut.num_episodes == full.num_episodes == 220
    # Every gold entity is still counted; those past 16 subwords are missed.
    assert cut.metrics["support"] == full.metrics["support"]
    assert 0.0 < cut.metrics["recall"] < 1.0


def test_classification_oracle_and_random():
    result = textgym.evaluate(
        oracle("TextClassification-v0"), "TextClassification-v0", split="test"
    )
    assert result.metrics["accuracy"] == 1.0 and result.metrics["macro_f1"] == 1.0
    assert result.mean_return == 1.0
    rng = np.random.default_rng(0)
    rand = textgym.evaluate(
        lambda obs: rng.integers(5, size=len(obs["input_ids"])), "TextClassification-v0"
    )
    assert 0.1 < rand.metrics["accuracy"] < 0.35  # chance is 0.2 on 5 classes


def test_ner_random_policy_scores_near_zero():
    rng = np.random.default_rng(0)
    result = textgym.evaluate(lambda obs: rng.integers(21, size=len(obs["tags"])), "TextNER-v0")
    assert result.metrics["f1"] < 0.05


def test_summarization_copying_the_reference_scores_one():
    import gymnasium as gym

    env = gym.make("TextSummarization-v0", split="test").unwrapped
    tok = env.data.tokenizer
    targets = [tok.encode_texts([e.target], 64)[0][0] for e in env.examples]
    targets = [t[(t != 0) & (t != 101) & (t != 102)] for t in targets]

    def policy(obs, infos):
        pos = obs["summary_mask"].sum(1)
        out = []
        for i, p in zip(infos["index"], pos, strict=True):
            out.append(targets[i][p] if p < len(targets[i]) else env.eos_token_id)
        return np.array(out)

    result = textgym.evaluate(policy, "TextSummarization-v0", split="test", max_summary_tokens=48)
    assert result.num_episodes == env.num_examples
    assert result.metrics["rougeL"] > 0.99
    assert "rouge1" in result.report
