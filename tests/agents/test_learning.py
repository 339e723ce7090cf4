"""Learning beyond chance with the tiny encoder and small budgets (slow: ~1-2 min each)."""

from collections import Counter
from pathlib import Path

import pytest
from textgym.agents import GRPO, PPO, REINFORCE, RLOO, TRPO

import textgym  # noqa: F401

CONLL = Path(__file__).parents[3] / "shared" / "data" / "conll2003" / "train.txt"


def conll_subset(tmp_path) -> dict:
    """The first 40 CoNLL-2003 training sentences as every split (learning = fitting them)."""
    if not CONLL.exists():
        pytest.skip(f"shared data not found at {CONLL}")
    blocks = CONLL.read_text().split("\n\n")
    sentences = [b for b in blocks if b.strip() and "-DOCSTART-" not in b][:40]
    subset = tmp_path / "ner.txt"
    subset.write_text("\n\n".join(sentences) + "\n")
    files = {split: str(subset) for split in ("train", "validation", "test")}
    return {"dataset": "conll", "data_files": files, "max_tokens": 48}


@pytest.mark.slow
def test_ppo_learns_entities_not_all_o_on_a_small_ner_subset(tmp_path):
    kwargs = conll_subset(tmp_path)
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
def test_reinforce_learns_entities_from_one_sample_per_word_with_the_loglik_objective(
    tmp_path,
):
    # one tag per word, no critic, no group: the objective keeps it off all-"O" (seen at
    # 12k steps: F1 0.34, 18k: 0.43, 36k: 0.90; with the expected reward's gradient
    # instead, REINFORCE's NER defaults before it stayed all-"O" on CoNLL for minutes)
    kwargs = conll_subset(tmp_path)
    model = REINFORCE(
        "TextNER-v0",
        policy="tiny",
        seed=0,
        device="cpu",
        env_kwargs=kwargs,
        n_envs=8,
        episode_rollouts=True,
        learning_rate=3e-3,
        gamma=0.0,
        reward_objective="loglik",
        normalize_advantage=False,
        off_path_weight=0.0,
    )
    model.learn(18_000, progress_bar=False)
    result = model.evaluate("train")
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


GROUP_NER = dict(n_envs=8, group_size=4, distinct_actions=True, learning_rate=1e-3)
GRPO_GROUP = dict(gamma=0.0, n_epochs=1, batch_size=1024, objective="group", off_path_weight=0.0)
# the group's log-likelihood in TRPO's natural steps, bounded by its trust region
TRPO_LOGLIK = dict(
    objective="loglik", off_path_weight=0.0, n_critic_updates=0, batch_size=128, max_kl=0.02,
    cg_max_steps=5,
)  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(
    "cls, extra",
    [
        (RLOO, {"objective": "loglik"}),
        (GRPO, {"gamma": 0.0, "n_epochs": 1, "batch_size": 1024}),
        # every tag the group tried, in the state after the right previous tag (NER default)
        (GRPO, GRPO_GROUP),
        # the group's log-likelihood in PPO's clipped steps: 2 epochs of 2 minibatches
        (PPO, {"objective": "loglik", "off_path_weight": 0.0, "n_epochs": 2, "batch_size": 128}),
        (TRPO, TRPO_LOGLIK),
    ],
    ids=["rloo", "grpo", "grpo-group", "ppo-loglik", "trpo-loglik"],
)
def test_group_agents_learn_entities_not_all_o_on_a_small_ner_subset(cls, extra, tmp_path):
    kwargs = conll_subset(tmp_path)
    model = cls(
        "TextNER-v0", policy="tiny", seed=0, device="cpu", env_kwargs=kwargs, **GROUP_NER, **extra
    )
    model.learn(45_000, progress_bar=False)
    result = model.evaluate("train")
    assert result.metrics["f1"] > 0.2, result.report


@pytest.mark.slow
@pytest.mark.parametrize(
    "cls, extra, steps",
    [
        # 4 distinct labels of 5 per document: nearly a supervised step per document
        (RLOO, {"objective": "loglik", "n_envs": 64, "learning_rate": 3e-3}, 24_576),
        (GRPO, {"n_epochs": 2, "batch_size": 64, "n_envs": 32, "learning_rate": 1e-3}, 12_288),
    ],
    ids=["rloo", "grpo"],
)
def test_group_agents_classification_beat_the_majority_class(cls, extra, steps):
    model = cls(
        "TextClassification-v0",
        policy="tiny",
        seed=0,
        device="cpu",
        env_kwargs={"max_tokens": 64},
        group_size=4,
        distinct_actions=True,
        gamma=0.0,
        **extra,
    )
    model.learn(steps, progress_bar=False)
    result = model.evaluate("validation")
    gold = [p["label"] for p in result.predictions]
    majority = Counter(gold).most_common(1)[0][1] / len(gold)
    assert result.metrics["accuracy"] > majority + 0.15, (result.metrics["accuracy"], majority)
