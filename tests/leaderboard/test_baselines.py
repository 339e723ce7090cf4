"""The baselines answer what they claim to, through textgym.evaluate, reproducibly."""

from __future__ import annotations

import json
from collections import Counter

import gymnasium as gym
import numpy as np
import pytest

import textgym
from textgym.errors import TextgymError
from textgym.leaderboard import baselines
from textgym.leaderboard.baselines import Context, run_baseline

NER = ("TextNER-v0", {"max_tokens": 24})
CLS = ("TextClassification-v0", {"max_tokens": 16})
SUMM = ("TextSummarization-v0", {"max_source_tokens": 48, "max_summary_tokens": 10})


def ctx(env, **kwargs) -> Context:
    env_id, env_kwargs = env
    return Context(env_id, env_kwargs, policy="tiny", device="cpu", **kwargs)


def examples(env, split):
    env_id, env_kwargs = env
    return gym.make(env_id, split=split, **env_kwargs).unwrapped.examples


def test_majority_tags_every_word_o():
    fitted = baselines.majority(ctx(NER, validation_split=None))
    result = textgym.evaluate(fitted.policy, NER[0], split="test", **NER[1])
    assert all(set(p["pred_tags"]) == {"O"} for p in result.predictions)
    assert result.metrics["f1"] == 0.0
    gold = [t for ex in examples(NER, "test") for t in ex.tags]
    assert result.metrics["accuracy"] == pytest.approx(gold.count("O") / len(gold))


def test_majority_answers_the_most_frequent_train_label():
    counts = Counter(ex.label for ex in examples(CLS, "train"))
    top = counts.most_common(1)[0][0]
    summary = run_baseline("majority", ctx(CLS, validation_split=None))
    test = [ex.label for ex in examples(CLS, "test")]
    assert summary["hyperparameters"] == {"answer": top}
    assert summary["test_metrics"]["accuracy"] == pytest.approx(test.count(top) / len(test))


def test_majority_refuses_summarization():
    with pytest.raises(TextgymError, match="lead"):
        baselines.majority(ctx(SUMM))


def test_lead_writes_the_first_k_words():
    fitted = baselines.lead(ctx(SUMM, validation_split=None), k=4)
    result = textgym.evaluate(fitted.policy, SUMM[0], split="test", **SUMM[1])
    sources = examples(SUMM, "test")
    plain = [
        (p["summary"], ex.source.split())
        for p, ex in zip(result.predictions, sources, strict=True)
        if all(w.isalpha() for w in ex.source.split()[:5])
    ]
    assert len(plain) >= 10
    for summary, words in plain:
        assert summary == " ".join(words[:4]).lower()
    assert result.metrics["rougeL"] > 0.05


def test_random_is_seeded_and_legal():
    env_id, env_kwargs = SUMM
    kwargs = {**env_kwargs, "constraint": "source"}
    runs = []
    for seed in (0, 0, 1):
        fitted = baselines.random(Context(env_id, kwargs, seed=seed, validation_split=None))
        result = textgym.evaluate(fitted.policy, env_id, split="validation", **kwargs)
        runs.append([p["summary"] for p in result.predictions])
    assert runs[0] == runs[1] and runs[0] != runs[2]
    fitted = baselines.random(ctx(NER, seed=3, validation_split=None))
    result = textgym.evaluate(fitted.policy, NER[0], split="test", **NER[1])
    assert len({t for p in result.predictions for t in p["pred_tags"]}) > 5


def test_supervised_summary_counts_labelled_decisions(tmp_path):
    summary = run_baseline(
        "supervised",
        ctx(NER, run_dir=tmp_path),
        out=tmp_path,
        epochs=2,
        max_train_examples=48,
        batch_size=16,
        # slow enough that the tagger is not yet all-"O" after one epoch: the two
        # epochs' weights then tag the validation split differently
        learning_rate=3e-4,
    )
    env = gym.make(NER[0], split="train", **NER[1])
    # the 48 sentences spread evenly over the split
    drawn = np.linspace(0, env.unwrapped.num_examples - 1, 48).astype(int)
    # the words each sentence's observation holds (a long tweet loses words to max_tokens)
    words = sum(int(env.reset(options={"index": int(i)})[0]["word_mask"].sum()) for i in drawn)
    train = examples(NER, "train")
    assert words < sum(len(train[i].tags) for i in drawn)
    assert summary["total_env_steps"] == 2 * words
    assert summary["policy"] == "tiny" and summary["device"] == "cpu"
    first, second = summary["validation_curve"]
    assert (first["timesteps"], second["timesteps"]) == (words, 2 * words)
    # each epoch's point scores that epoch's weights (no predictions cached across updates)
    assert first != {**second, "timesteps": words}
    assert json.loads((tmp_path / "summary.json").read_text())["agent"] == "supervised"
    assert 0.0 <= summary["test_metrics"]["f1"] <= 1.0


def test_interrupted_supervised_run_continues_to_the_same_result(tmp_path, monkeypatch):
    settings = dict(epochs=2, max_train_examples=32, batch_size=16, learning_rate=1e-3)
    reference = baselines.supervised(ctx(CLS, run_dir=tmp_path / "a"), **settings)

    curve_point = baselines._curve_point
    calls = []

    def crash_after_first_epoch(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return curve_point(*args)

    monkeypatch.setattr(baselines, "_curve_point", crash_after_first_epoch)
    with pytest.raises(KeyboardInterrupt):
        baselines.supervised(ctx(CLS, run_dir=tmp_path / "b"), **settings)
    assert (tmp_path / "b" / "supervised_checkpoint.pt").exists()
    monkeypatch.setattr(baselines, "_curve_point", curve_point)
    resumed = baselines.supervised(ctx(CLS, run_dir=tmp_path / "b"), **settings)
    assert resumed.validation_curve == reference.validation_curve
    assert resumed.total_env_steps == reference.total_env_steps == 64


def test_supervised_refuses_summarization():
    with pytest.raises(TextgymError, match="lead"):
        baselines.supervised(ctx(SUMM, validation_split=None))


def test_supervised_checkpoint_of_other_settings_is_refused(tmp_path):
    settings = dict(epochs=1, max_train_examples=16, batch_size=8, learning_rate=1e-3)
    baselines.supervised(ctx(CLS, run_dir=tmp_path, validation_split=None), **settings)
    with pytest.raises(TextgymError, match="learning_rate"):
        baselines.supervised(
            ctx(CLS, run_dir=tmp_path, validation_split=None), **settings | {"learning_rate": 1e-4}
        )
