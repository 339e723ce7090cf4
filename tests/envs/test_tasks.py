"""Task semantics: rewards, episode ends, masks, truncation, the tokenizer cache."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import textgym  # noqa: F401  (registers the envs)
from textgym import tokenizer as tokenizer_module
from textgym.metrics import RougeReward


def gold_actions(env):
    example = env.unwrapped.examples[env.unwrapped._index]
    label_id = {label: i for i, label in enumerate(env.unwrapped.labels)}
    return [label_id[t] for t in example.tags]


def play(env, actions):
    rewards, last = [], None
    for action in actions:
        obs, reward, terminated, truncated, info = env.step(action)
        rewards.append(reward)
        last = (obs, terminated, truncated, info)
        if terminated or truncated:
            break
    return rewards, last


def sentence_with_entities(env, want_entities=True):
    for i, example in enumerate(env.unwrapped.examples):
        has = any(t != "O" for t in example.tags)
        if has == want_entities and len(example.words) > 3:
            return i
    raise AssertionError("no such sentence")


def test_ner_token_reward_and_observation_progress():
    env = gym.make("TextNER-v0")
    obs, info = env.reset(options={"index": 5})
    n = len(env.unwrapped.examples[5].words)
    untagged = len(env.unwrapped.labels)
    assert obs["word_index"][0] == 0 and (obs["tags"] == untagged).all()
    assert obs["word_mask"].sum() == n
    starts = obs["word_starts"][:n]
    assert starts[0] == 1 and (np.diff(starts) > 0).all()  # after [CLS], increasing
    assert obs["input_ids"][0] == 101 and obs["attention_mask"][starts].all()
    actions = gold_actions(env)
    rewards, (obs, terminated, truncated, info) = play(env, actions)
    assert rewards == [1.0] * n and terminated and not truncated
    assert obs["word_index"][0] == n
    np.testing.assert_array_equal(obs["tags"][:n], actions)
    env.reset(options={"index": 5})
    wrong = [(a + 1) % untagged for a in actions]
    rewards, _ = play(env, wrong)
    assert rewards == [0.0] * n


def test_ner_f1_reward_modes():
    env = gym.make("TextNER-v0", reward_mode="f1")
    i = sentence_with_entities(env)
    env.reset(options={"index": i})
    rewards, (_, terminated, _, info) = play(env, gold_actions(env))
    assert rewards[:-1] == [0.0] * (len(rewards) - 1) and rewards[-1] == 1.0 and info["f1"] == 1.0
    env.reset(options={"index": i})
    rewards, _ = play(env, [0] * 200)  # all "O" on a sentence with entities: F1 0
    assert sum(rewards) == 0.0
    j = sentence_with_entities(env, want_entities=False)
    env.reset(options={"index": j})
    rewards, _ = play(env, [0] * 200)  # all "O" where there is nothing to find: F1 1
    assert rewards[-1] == 1.0
    both = gym.make("TextNER-v0", reward_mode="token+f1")
    both.reset(options={"index": i})
    rewards, _ = play(both, gold_actions(both))
    assert rewards[-1] == 2.0 and sum(rewards) == len(rewards) + 1


def test_ner_truncates_long_sentences_and_counts_them():
    env = gym.make("TextNER-v0", max_tokens=12)
    assert env.unwrapped.num_truncated_examples > 0
    long = next(i for i, e in enumerate(env.unwrapped.examples) if len(e.words) > 20)
    obs, _ = env.reset(options={"index": long})
    kept = int(obs["word_mask"].sum())
    assert 0 < kept < 20
    rewards, (_, terminated, truncated, info) = play(env, [0] * 100)
    assert truncated and not terminated and len(rewards) == kept
    assert info["words_dropped"] == len(env.unwrapped.examples[long].words) - kept


def test_ner_words_without_subwords_are_taggable(tmp_path):
    data = "Hello O\n\u200b O\nParis B-LOC\n\nBerlin B-LOC\nis O\n"
    for split in ("train", "validation", "test"):
        (tmp_path / f"{split}.txt").write_text(data, encoding="utf-8")
    env = gym.make("TextNER-v0", dataset="conll", data_dir=str(tmp_path))
    obs, _ = env.reset(options={"index": 0})
    assert obs["word_mask"].sum() == 3
    assert obs["input_ids"][obs["word_starts"][1]] == 100  # [UNK] stands in for the empty word


def test_classification_reward_and_info():
    env = gym.make("TextClassification-v0")
    env.reset(options={"index": 3})
    gold = env.unwrapped.examples[3].label
    action = env.unwrapped.labels.index(gold)
    _, reward, terminated, truncated, info = env.step(action)
    assert (reward, terminated, truncated, info["correct"], info["label"]) == (
        1.0,
        True,
        False,
        True,
        gold,
    )
    env.reset(options={"index": 3})
    _, reward, _, _, info = env.step((action + 1) % 5)
    assert reward == 0.0 and not info["correct"]


def test_summarization_rewards_end_and_masks():
    env = gym.make("TextSummarization-v0", max_summary_tokens=5, constraint="source")
    obs, _ = env.reset(options={"index": 2})
    masks = env.unwrapped.action_masks()
    source = set(obs["input_ids"][obs["attention_mask"] == 1].tolist())
    allowed = set(np.flatnonzero(masks).tolist())
    assert allowed - {env.unwrapped.eos_token_id} <= source - {101, 102, 0}
    assert masks[env.unwrapped.eos_token_id] and not masks[101] and not masks[0]
    not_in_source = next(t for t in range(2000, 30000) if not masks[t])
    with pytest.raises(ValueError, match="not allowed under constraint='source'"):
        env.step(not_in_source)
    tokens = sorted(allowed - {env.unwrapped.eos_token_id})[:5]
    rewards, (obs, terminated, truncated, info) = play(env, tokens)
    assert truncated and not terminated and len(rewards) == 5
    reference = env.unwrapped.examples[2].target
    assert rewards[-1] == pytest.approx(RougeReward("rougeL")(reference, info["summary"]))
    assert rewards[:-1] == [0.0] * 4
    env.reset(options={"index": 2})
    _, reward, terminated, truncated, info = env.step(env.unwrapped.eos_token_id)
    assert terminated and not truncated and reward == 0.0 and info["summary"] == ""


def test_summarization_dense_rewards_sum_to_final_rouge():
    dense = gym.make("TextSummarization-v0", reward_mode="dense", max_summary_tokens=8)
    final = gym.make("TextSummarization-v0", max_summary_tokens=8)
    obs, _ = dense.reset(options={"index": 4})
    final.reset(options={"index": 4})
    words = [t for t in obs["input_ids"][1:40].tolist() if t not in (0, 101, 102)][:6]
    actions = [*words, dense.unwrapped.eos_token_id]
    r_dense, _ = play(dense, actions)
    r_final, _ = play(final, actions)
    assert sum(r_dense) == pytest.approx(r_final[-1], abs=1e-6)
    assert r_final[-1] > 0


def test_dense_reward_tokenizes_each_reference_once(monkeypatch):
    calls = []
    tokenize = RougeReward.tokenize
    monkeypatch.setattr(
        RougeReward, "tokenize", lambda self, t: calls.append(t) or tokenize(self, t)
    )
    env = gym.make("TextSummarization-v0", reward_mode="dense", max_summary_tokens=8)
    for _ in range(2):  # the same article twice: its reference is tokenized once in all
        obs, _ = env.reset(options={"index": 4})
        words = [t for t in obs["input_ids"][1:40].tolist() if t not in (0, 101, 102)][:7]
        rewards, _ = play(env, words)
        assert len(rewards) == 7 and sum(rewards) > 0
    assert calls == [env.unwrapped.examples[4].target]


def test_dense_reward_keeps_a_bounded_number_of_references(monkeypatch):
    from textgym.envs import summarization

    monkeypatch.setattr(summarization, "REFERENCE_CACHE", 3)
    env = gym.make("TextSummarization-v0", reward_mode="dense", max_summary_tokens=4)
    core = env.unwrapped.core
    eos = env.unwrapped.eos_token_id
    for index in [0, 1, 2, 0, 3, 4]:  # 0 used again before 3 and 4 arrive: 1 and 2 go
        env.reset(options={"index": index})
        env.step(eos)
    assert list(core._reference_tokens) == [0, 3, 4]
    assert core.reference_tokens(1) == RougeReward("rougeL").tokenize(
        env.unwrapped.examples[1].target
    )


def test_vector_action_masks_shape():
    envs = gym.make_vec(
        "TextSummarization-v0", num_envs=3, constraint="source", max_source_tokens=32
    )
    envs.reset(seed=0)
    masks = envs.action_masks()
    assert masks.shape == (3, envs.vocab_size) and masks.dtype == bool
    actions = np.array([np.flatnonzero(m)[0] for m in masks])
    envs.step(actions)


def test_tokenized_arrays_are_cached_on_disk_and_shared(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTGYM_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tokenizer_module, "_MEMO", {})
    first = gym.make("TextClassification-v0", max_tokens=24).unwrapped
    (entry,) = tmp_path.glob("classification-*")
    assert (entry / "input_ids.npy").exists() and (entry / "meta.json").exists()
    # A new process (an empty memo) loads the arrays without loading the tokenizer again.
    monkeypatch.setattr(tokenizer_module, "_MEMO", {})

    def no_load(name):
        raise AssertionError("the tokenizer was loaded again instead of the cache")

    monkeypatch.setattr(tokenizer_module.TextTokenizer, "from_pretrained", staticmethod(no_load))
    second = gym.make("TextClassification-v0", max_tokens=24).unwrapped
    np.testing.assert_array_equal(first.data.arrays["input_ids"], second.data.arrays["input_ids"])
    envs = gym.make_vec("TextClassification-v0", num_envs=4, max_tokens=24)
    assert envs.data.arrays["input_ids"] is second.data.arrays["input_ids"]  # one copy
    assert not second.data.arrays["input_ids"].flags.writeable
