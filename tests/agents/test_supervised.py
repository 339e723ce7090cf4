"""Supervised fine-tuning of the agents' own policy (agents/common/supervised.py).

The NER tests fit the tiny policy to the first 40 CoNLL-2003 training sentences (every
split is that subset: learning = fitting them); they skip when ../shared/data is absent.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode
from textgym.agents import PPO
from textgym.agents.common.env_utils import env_info
from textgym.agents.common.policies import make_policy
from textgym.agents.common.supervised import (
    LabelledSplit,
    SupervisedTrainer,
    batches,
    labelled_split,
    predictor,
)

import textgym
from textgym.errors import TextgymError

SHARED_DATA = Path(
    os.environ.get("TEXTGYM_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data")
)
NER_ID, CLS_ID = "TextNER-v0", "TextClassification-v0"
NER_FIT = dict(epochs=30, learning_rate=3e-3, batch_size=8, warmup_ratio=0.0)


@pytest.fixture(scope="module")
def conll(tmp_path_factory) -> dict:
    """Env kwargs: the first 40 CoNLL-2003 training sentences as every split."""
    train = SHARED_DATA / "conll2003" / "train.txt"
    if not train.exists():
        pytest.skip(f"shared dataset not found at {train} (set TEXTGYM_SHARED_DATA)")
    blocks = train.read_text().split("\n\n")
    sentences = [b for b in blocks if b.strip() and "-DOCSTART-" not in b][:40]
    subset = tmp_path_factory.mktemp("conll") / "ner.txt"
    subset.write_text("\n\n".join(sentences) + "\n")
    files = {split: str(subset) for split in ("train", "validation", "test")}
    return {"dataset": "conll", "data_files": files, "max_tokens": 48}


def tiny_policy(env: gym.Env, seed: int = 0):
    torch.manual_seed(seed)
    return make_policy("tiny", env_info(env), int(env.observation_space["input_ids"].shape[0]))


@pytest.fixture(scope="module")
def trained_tagger(conll):
    env = gym.make(NER_ID, **conll)
    policy = tiny_policy(env)
    trainer = SupervisedTrainer(policy, labelled_split(env), **NER_FIT)
    trainer.fit()
    return policy, trainer


def test_labelled_split_reads_the_gold_tags_of_each_observation(conll):
    env = gym.make(NER_ID, **conll)
    base = env.unwrapped
    data = labelled_split(env, indices=[3, 0])
    assert data.task == "ner" and len(data) == 2
    for row, i in enumerate((3, 0)):
        obs, _ = env.reset(options={"index": i})
        kept = int(obs["word_mask"].sum())
        assert [base.labels[t] for t in data.gold[row, :kept]] == list(base.examples[i].tags)
        np.testing.assert_array_equal(data.contexts["input_ids"][row], obs["input_ids"])
    assert data.decisions() == sum(len(base.examples[i].tags) for i in (3, 0))
    with pytest.raises(TextgymError, match="outside"):
        labelled_split(env, indices=[40])
    with pytest.raises(TextgymError, match="single env"):
        labelled_split(gym.make_vec(NER_ID, num_envs=2, **conll))


def test_batches_cover_every_example_once_by_examples_or_by_words():
    word_mask = np.zeros((10, 8), np.int8)
    for i, n in enumerate([3, 8, 1, 5, 2, 7, 4, 6, 2, 3]):
        word_mask[i, :n] = 1
    data = LabelledSplit("ner", {"word_mask": word_mask}, np.zeros((10, 8), np.int64))
    by_examples = list(batches(data, 4, np.random.default_rng(0)))
    assert [len(b) for b in by_examples] == [4, 4, 2]
    assert sorted(np.concatenate(by_examples)) == list(range(10))
    by_words = list(batches(data, 10, np.random.default_rng(0), unit="words"))
    assert sorted(np.concatenate(by_words)) == list(range(10))
    # whole sentences, cut where the running word count passes each multiple of 10
    ends = np.cumsum([int(word_mask[b].sum()) for b in by_words])
    assert ends[-1] == 41 and len(by_words) == 5
    for k, (end, after) in enumerate(zip(ends[:-1], by_words[1:], strict=True), start=1):
        assert end <= 10 * k < end + word_mask[after[0]].sum()
    classes = LabelledSplit("classification", {}, np.zeros(5, np.int64))
    with pytest.raises(TextgymError, match="words"):
        next(batches(classes, 4, np.random.default_rng(0), unit="words"))


def test_supervised_training_tags_entities(conll, trained_tagger):
    policy, trainer = trained_tagger
    assert trainer.epoch == NER_FIT["epochs"] and len(trainer.train_losses) == trainer.epoch
    assert trainer.train_losses[-1] < trainer.train_losses[0] / 5
    result = textgym.evaluate(predictor(policy), NER_ID, split="train", **conll)
    # an all-"O" tagger scores exactly 0 entity-F1
    assert result.metrics["f1"] > 0.6, result.report


def test_predictor_acts_as_the_policy_loaded_into_an_agent(conll, trained_tagger):
    policy, _ = trained_tagger
    agent = PPO(NER_ID, policy="tiny", seed=1, device="cpu", env_kwargs=conll, n_envs=2)
    agent.policy.load_state_dict(policy.state_dict())
    predict = predictor(policy)
    envs = gym.make_vec(NER_ID, num_envs=8, autoreset_mode=AutoresetMode.SAME_STEP, **conll)
    obs, _ = envs.reset(seed=0)
    tags = set()
    for _ in range(100):
        actions = predict(obs)
        agent_actions, _ = agent.predict(obs, deterministic=True)
        np.testing.assert_array_equal(actions, agent_actions)
        tags.update(actions.tolist())
        obs, *_ = envs.step(actions)
    assert len(tags) > 2  # the comparison covers entity tags, not only "O"
    result = textgym.evaluate(predict, NER_ID, split="test", **conll)
    assert result.predictions == agent.evaluate("test").predictions


def test_supervised_classification_beats_the_majority_class():
    kwargs = {"max_tokens": 64}
    env = gym.make(CLS_ID, **kwargs)
    # drawn, not cut: bbc-news' train split is grouped by class
    drawn = np.random.default_rng(0).choice(env.unwrapped.num_examples, 320, replace=False)
    data = labelled_split(env, indices=drawn)
    assert len(set(data.gold.tolist())) == len(env.unwrapped.labels)
    policy = tiny_policy(env)
    SupervisedTrainer(
        policy, data, epochs=4, learning_rate=3e-3, batch_size=16, warmup_ratio=0.0
    ).fit()
    result = textgym.evaluate(predictor(policy), CLS_ID, split="validation", **kwargs)
    gold = [p["label"] for p in result.predictions]
    majority = Counter(gold).most_common(1)[0][1] / len(gold)
    assert result.metrics["accuracy"] > majority + 0.2, (result.metrics["accuracy"], majority)


def test_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(conll, tmp_path):
    env = gym.make(NER_ID, **conll)
    data = labelled_split(env, limit=24)
    settings = dict(epochs=4, learning_rate=3e-3, batch_size=8, warmup_ratio=0.25, seed=5)

    def record(trainer):
        trainer.history.append({"epoch": trainer.epoch, "loss": trainer.train_losses[-1]})

    reference = SupervisedTrainer(tiny_policy(env), data, **settings)
    reference.fit(record, tmp_path / "a.pt")

    def crash_in_epoch_three(trainer):
        if trainer.epoch == 3:
            raise KeyboardInterrupt
        record(trainer)

    interrupted = SupervisedTrainer(tiny_policy(env), data, **settings)
    with pytest.raises(KeyboardInterrupt):
        interrupted.fit(crash_in_epoch_three, tmp_path / "b.pt")
    (tmp_path / "mid.pt").write_bytes((tmp_path / "b.pt").read_bytes())
    # another initialisation: every weight must come from the checkpoint (epoch 2)
    resumed = SupervisedTrainer(tiny_policy(env, seed=1), data, **settings)
    resumed.fit(record, tmp_path / "b.pt")

    assert resumed.epoch == 4 and resumed.history == reference.history
    assert resumed.train_losses == reference.train_losses
    assert resumed.scheduler.get_last_lr() == reference.scheduler.get_last_lr()
    final, expected = resumed.policy.state_dict(), reference.policy.state_dict()
    assert final.keys() == expected.keys()
    for name in expected:
        assert torch.equal(final[name], expected[name]), name
    # the resumed run trained on from epoch 2: its weights are not the checkpoint's
    epoch_two = SupervisedTrainer(tiny_policy(env, seed=1), data, **settings)
    epoch_two.load(tmp_path / "mid.pt")
    assert epoch_two.epoch == 2
    assert not torch.equal(epoch_two.policy.trunk.policy.weight, final["trunk.policy.weight"])


def test_checkpoint_of_other_settings_is_refused(conll, tmp_path):
    env = gym.make(NER_ID, **conll)
    data = labelled_split(env, limit=8)
    SupervisedTrainer(tiny_policy(env), data, epochs=1, batch_size=8).fit(
        checkpoint=tmp_path / "c.pt"
    )
    other = SupervisedTrainer(tiny_policy(env), data, epochs=1, batch_size=4)
    with pytest.raises(TextgymError, match="batch_size"):
        other.fit(checkpoint=tmp_path / "c.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(TextgymError, match="cannot read"):
        other.load(tmp_path / "junk.pt")


@pytest.mark.parametrize(
    "setting, value",
    [("epochs", 0), ("learning_rate", 0.0), ("batch_size", 2.5), ("warmup_ratio", 1.0)],
)
def test_bad_settings_are_named(setting, value):
    data = LabelledSplit("classification", {}, np.zeros(4, np.int64))
    env = gym.make(CLS_ID, max_tokens=16)
    with pytest.raises(TextgymError, match=setting):
        SupervisedTrainer(tiny_policy(env), data, **{setting: value})
