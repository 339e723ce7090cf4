"""Learning beyond chance with the tiny encoder and small budgets (slow: ~1-2 min each)."""

from collections import Counter
from pathlib import Path

import pytest
from textgym.agents import PPO

import textgym  # noqa: F401

CONLL = Path(__file__).parents[3] / "shared" / "data" / "conll2003" / "train.txt"


@pytest.mark.slow
def test_ppo_learns_entities_not_all_o_on_a_small_ner_subset(tmp_path):
    if not CONLL.exists():
        pytest.skip(f"shared data not found at {CONLL}")
    blocks = CONLL.read_text().split("\n\n")
    sentences = [b for b in blocks if b.strip() and "-DOCSTART-" not in b][:40]
    subset = tmp_path / "ner.txt"
    subset.write_text("\n\n".join(sentences) + "\n")
    files = {split: str(subset) for split in ("train", "validation", "test")}
    kwargs = {"dataset": "conll", "data_files": files, "max_tokens": 48}
    model = PPO(
        "TextNER-v0",
        policy="tiny",
        seed=0,
        device="cpu",
        env_kwargs=kwargs,
        n_envs=16,
        n_steps=32,
        batch_size=256,
        n_epochs=4,
        learning_rate=3e-3,
        gamma=0.0,
        gae_lambda=0.0,
        scale_advantage_by_value=True,
        ent_coef=0.01,
    )
    model.learn(8192, progress_bar=False)
    result = model.evaluate("train")
    # an all-"O" policy scores exactly 0 entity-F1
    assert result.metrics["f1"] > 0.2, result.report


@pytest.mark.slow
def test_ppo_classification_beats_the_majority_class():
    kwargs = {"max_tokens": 64}
    model = PPO(
        "TextClassification-v0",
        policy="tiny",
        seed=0,
        device="cpu",
        env_kwargs=kwargs,
        n_envs=16,
        n_steps=8,
        batch_size=64,
        n_epochs=4,
        learning_rate=3e-3,
        gamma=0.0,
        gae_lambda=0.0,
    )
    model.learn(6144, progress_bar=False)
    result = model.evaluate("validation")
    gold = [p["label"] for p in result.predictions]
    majority = Counter(gold).most_common(1)[0][1] / len(gold)
    assert result.metrics["accuracy"] > majority + 0.15, (result.metrics["accuracy"], majority)
