"""Limits: very long documents, one-word sentences, labels seen only in test, empty splits,
and an env tokenizer that does not match the policy's encoder.

Each either works as documented or fails clearly (a TextgymError) when the env or the
agent is built, never later in the middle of training.
"""

from __future__ import annotations

import json
import re

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import textgym  # noqa: F401  (registers the env ids)
from textgym.corpora import load_corpus
from textgym.errors import DataError, TextgymError


def _conll(path, sentences):
    path.write_text("\n\n".join("\n".join(f"{w} {t}" for w, t in s) for s in sentences) + "\n")
    return path


def _episode(env, index, action=0):
    obs, info = env.reset(options={"index": index})
    steps, rewards = 0, []
    while True:
        obs, reward, terminated, truncated, info = env.step(action)
        steps, rewards = steps + 1, [*rewards, reward]
        assert obs in env.observation_space and not (terminated and truncated)
        if terminated or truncated:
            return obs, rewards, terminated, truncated, info


# ----- very long documents ------------------------------------------------------------


def test_very_long_sentence_is_truncated_with_words_dropped(tmp_path):
    words = [(f"w{i}", "B-PER" if i % 7 == 0 else "O") for i in range(5_000)]
    path = _conll(tmp_path / "long.txt", [words, [("short", "O")]])
    files = {"train": path, "test": path}
    env = gym.make("TextNER-v0", dataset="conll", data_files=files, split="test", max_tokens=16)
    assert env.unwrapped.num_truncated_examples == 1
    long_index = next(i for i, ex in enumerate(env.unwrapped.examples) if len(ex.words) > 1)
    obs, rewards, terminated, truncated, info = _episode(env, long_index)
    assert truncated and not terminated and len(rewards) == obs["word_index"][0] <= 14
    assert info["words_dropped"] == 5_000 - len(rewards)
    vec = gym.make_vec(
        "TextNER-v0",
        num_envs=2,
        dataset="conll",
        data_files=files,
        split="test",
        max_tokens=16,
        autoreset_mode=AutoresetMode.SAME_STEP,
    )
    vec.reset(options={"index": np.array([long_index, 1 - long_index])})
    for _ in range(len(rewards)):
        _, _, terminated, truncated, infos = vec.step(np.zeros(2, np.int64))
    assert truncated[0] and infos["final_info"]["words_dropped"][0] == info["words_dropped"]


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_megabyte_documents_classify_and_summarize(tmp_path, fmt):
    long_text = "the quick brown fox jumps over the lazy dog " * 25_000  # 1.1 MB
    rows = [{"text": long_text, "label": "long", "target": long_text[:50_000]}]
    rows.append({"text": "short", "label": "short", "target": "short"})
    path = tmp_path / f"long.{fmt}"
    if fmt == "csv":
        path.write_text(
            "text,label,target\n"
            + "".join(f'"{r["text"]}",{r["label"]},"{r["target"]}"\n' for r in rows)
        )
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    files = {"train": path, "test": path}
    env = gym.make(
        "TextClassification-v0", dataset=fmt, data_files=files, split="test", max_tokens=32
    )
    index = [ex.label for ex in env.unwrapped.examples].index("long")
    obs, _ = env.reset(options={"index": index})
    assert obs["attention_mask"].all()  # cut to the window
    _, reward, terminated, _, info = env.step(env.unwrapped.labels.index("long"))
    assert reward == 1.0 and terminated and info["label"] == "long"
    summ = gym.make(
        "TextSummarization-v0",
        dataset=fmt,
        data_files=files,
        split="test",
        source_column="text",
        max_source_tokens=32,
        max_summary_tokens=3,
    )
    quick = summ.unwrapped.data.tokenizer.token_to_id("quick")
    obs, rewards, terminated, truncated, info = _episode(summ, index, action=quick)
    assert truncated and 0.0 < rewards[-1] <= 1.0 and info["rouge"] == rewards[-1]


# ----- tiny examples ------------------------------------------------------------------


@pytest.mark.parametrize("max_tokens", [3, 64])
@pytest.mark.parametrize("reward_mode", ["token", "f1", "token+f1"])
def test_one_word_sentences(tmp_path, max_tokens, reward_mode):
    path = _conll(tmp_path / "one.txt", [[("Paris", "B-LOC")], [("ok", "O")]])
    env = gym.make(
        "TextNER-v0",
        dataset="conll",
        data_files={"train": path, "test": path},
        split="test",
        max_tokens=max_tokens,
        reward_mode=reward_mode,
    )
    for index, example in enumerate(env.unwrapped.examples):
        gold = env.unwrapped.labels.index(example.tags[0])
        obs, rewards, terminated, truncated, _ = _episode(env, index, action=gold)
        assert terminated and not truncated and len(rewards) == 1
        assert obs["word_index"][0] == 1 and obs["tags"][0] == gold
        assert rewards[0] == {"token": 1.0, "f1": 1.0, "token+f1": 2.0}[reward_mode]


def test_max_tokens_below_the_minimum_fails_at_construction():
    with pytest.raises(TextgymError, match="max_tokens must be an integer >= 3"):
        gym.make("TextNER-v0", max_tokens=2)
    with pytest.raises(TextgymError, match="max_summary_tokens must be an integer >= 1"):
        gym.make("TextSummarization-v0", max_summary_tokens=0)


@pytest.mark.parametrize(
    ("env_id", "kwargs", "length"),
    [
        ("TextNER-v0", {"max_tokens": 10**7}, "10,000,000"),
        ("TextClassification-v0", {"max_tokens": 10**7}, "10,000,000"),
        ("TextSummarization-v0", {"max_source_tokens": 10**8}, "100,000,000"),
    ],
)
def test_lengths_that_cannot_fit_in_memory_fail_before_allocating(env_id, kwargs, length):
    """max_tokens=10**7 gave a raw MemoryError for 72.8 GiB (smaller huge values would be
    killed by the OOM killer while the tokenizer pads every text). The arrays go to the
    cache's disk, chunk by chunk: the disk's free space is the limit there."""
    with pytest.raises(TextgymError) as err:
        gym.make(env_id, **kwargs)
    message = str(err.value)
    assert f"a length of {length} tokens for " in message
    assert re.search(r"GiB (of memory available|free on the disk of .+): lower max_tokens", message)


def test_empty_text_and_empty_source(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text(
        '{"text": "", "label": "a", "target": "t"}\n{"text": "x", "label": "b", "target": "x"}\n'
    )  # an empty source (an empty target is refused: see test_silently_wrong_data.py)
    files = {"train": path, "test": path}
    env = gym.make(
        "TextClassification-v0", dataset="jsonl", data_files=files, split="test", max_tokens=8
    )
    obs, _ = env.reset(options={"index": 0})
    assert obs["attention_mask"].sum() == 2  # [CLS] [SEP]
    assert env.step(0)[2]
    summ = gym.make(
        "TextSummarization-v0",
        dataset="jsonl",
        data_files=files,
        split="test",
        source_column="text",
        max_source_tokens=8,
        max_summary_tokens=3,
        constraint="source",
    )
    summ.reset(options={"index": 0})
    allowed = np.flatnonzero(summ.unwrapped.action_masks())
    assert allowed.tolist() == [summ.unwrapped.eos_token_id]  # nothing to copy: only EOS
    _, reward, terminated, truncated, info = summ.step(int(allowed[0]))
    assert terminated and not truncated and reward == 0.0 and info["summary"] == ""


# ----- labels and splits --------------------------------------------------------------


def test_label_seen_only_in_test_is_in_every_splits_action_space(tmp_path):
    train = _conll(tmp_path / "train.txt", [[("Ann", "B-PER"), ("ran", "O")]] * 3)
    test = _conll(tmp_path / "test.txt", [[("Kiel", "B-MISC"), ("Week", "I-MISC")]])
    files = {"train": train, "test": test}
    for split in ("train", "test"):
        env = gym.make("TextNER-v0", dataset="conll", data_files=files, split=split, max_tokens=8)
        assert {"B-MISC", "I-MISC"} <= set(env.unwrapped.labels)
        assert env.action_space.n == len(env.unwrapped.labels)
    b_misc, i_misc = env.unwrapped.labels.index("B-MISC"), env.unwrapped.labels.index("I-MISC")
    env.reset(options={"index": 0})
    assert env.step(b_misc)[1] == 1.0 and env.step(i_misc)[1] == 1.0
    csv_train = tmp_path / "train.csv"
    csv_train.write_text("text,label\nfine,sport\nok,sport\n")
    csv_test = tmp_path / "test.csv"
    csv_test.write_text("text,label\nnew,weather\n")
    cls = gym.make(
        "TextClassification-v0",
        dataset="csv",
        data_files={"train": csv_train, "test": csv_test},
        max_tokens=8,
    )
    assert cls.unwrapped.labels == ("sport", "weather") and cls.action_space.n == 2
    cls.reset(seed=0)
    assert cls.step(1)[1] == 0.0


def test_empty_split_fails_at_construction(tmp_path):
    good = _conll(tmp_path / "train.txt", [[("a", "O")]])
    empty = tmp_path / "test.txt"
    empty.write_text("\n\t\n-DOCSTART- -X- O O\n")
    with pytest.raises(DataError, match=r"test\.txt: no examples in this file \(the test split"):
        gym.make("TextNER-v0", dataset="conll", data_files={"train": good, "test": empty})
    # a one-sentence file gets one split of the 80/10/10 hash split; the others are absent
    present = load_corpus("ner", "conll", data_files=str(good)).splits
    missing = next(s for s in ("train", "validation", "test") if s not in present)
    with pytest.raises(TextgymError, match=f"has no split '{missing}'; valid splits: "):
        gym.make("TextNER-v0", dataset="conll", data_files=str(good), split=missing)
    with pytest.raises(
        TextgymError, match="has no split 'tset'; valid splits: train, validation, test"
    ):
        gym.make("TextNER-v0", split="tset")
    with pytest.raises(TextgymError, match=f"has no split '{missing}'"):
        gym.make_vec("TextNER-v0", num_envs=2, dataset="conll", data_files=str(good), split=missing)


# ----- env tokenizer vs policy encoder (agents side) ----------------------------------

AGENT = dict(n_envs=2, n_steps=8, batch_size=16, learning_rate=1e-3)


@pytest.fixture(scope="module")
def small_tokenizer(tmp_path_factory):
    """A 60-token WordPiece tokenizer directory (BERT-style specials), built offline."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *letters, *("##" + c for c in letters)]
    vocab += ["the", "eu", "peter"]
    backend = Tokenizer(models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)]
    )
    specials = dict(unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]", sep_token="[SEP]")
    path = tmp_path_factory.mktemp("small_tokenizer")
    PreTrainedTokenizerFast(
        tokenizer_object=backend, mask_token="[MASK]", **specials
    ).save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def small_encoder(tmp_path_factory):
    """A tiny BERT over a 1000-token vocabulary, saved as a Hugging Face model directory."""
    import transformers

    path = tmp_path_factory.mktemp("small_encoder")
    config = transformers.BertConfig(
        vocab_size=1000,
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    )
    transformers.BertModel(config).save_pretrained(path)
    return str(path)


def test_encoder_vocabulary_mismatch_fails_when_the_agent_is_built(small_tokenizer, small_encoder):
    from textgym.agents import PPO

    env_kwargs = {"tokenizer": small_tokenizer, "max_tokens": 16}
    assert gym.make("TextNER-v0", **env_kwargs).unwrapped.vocab_size == 60
    with pytest.raises(
        TextgymError, match="vocabulary of 30522 tokens but the env's tokenizer has 60"
    ):
        PPO("TextNER-v0", policy="minilm", device="cpu", env_kwargs=env_kwargs, **AGENT)
    with pytest.raises(
        TextgymError, match="vocabulary of 1000 tokens but the env's tokenizer has 30522"
    ):
        PPO(
            "TextNER-v0", policy=small_encoder, device="cpu", env_kwargs={"max_tokens": 16}, **AGENT
        )
    # the tiny encoder is built over the env's vocabulary: it works with any tokenizer
    model = PPO("TextNER-v0", policy="tiny", device="cpu", env_kwargs=env_kwargs, **AGENT)
    model.learn(16, progress_bar=False)


def test_env_longer_than_the_encoders_positions_fails_when_the_agent_is_built():
    """Both encoders have 512 positions; a 600-token env crashed in BERT's embeddings at
    the first rollout (RuntimeError: expanded size 600 must match 512)."""
    from textgym.agents import PPO

    try:
        model = PPO(
            "TextClassification-v0",
            policy="tiny",
            device="cpu",
            env_kwargs={"max_tokens": 600},
            **AGENT,
        )
    except TextgymError as err:
        assert "600" in str(err) and "512" in str(err)
        return
    model.learn(16, progress_bar=False)  # or the agent sizes its encoder to the env


@pytest.mark.parametrize("mismatch", ["tokenizer", "labels", "smaller_vocab"])
def test_loading_a_checkpoint_into_a_mismatched_env_fails_at_load(
    tmp_path, small_tokenizer, mismatch
):
    """PPO.load(path, env=...) trusted any env: another tokenizer silently fed token ids
    that mean other words, another label set failed mid-training with 'action 11 is not
    in the action space Discrete(2)', a larger vocabulary with an IndexError in torch."""
    from textgym.agents import PPO

    saved_kwargs = {"max_tokens": 16}
    if mismatch == "smaller_vocab":
        saved_kwargs["tokenizer"] = small_tokenizer
    PPO("TextNER-v0", policy="tiny", device="cpu", env_kwargs=saved_kwargs, **AGENT).save(
        tmp_path / "m"
    )
    other = {
        "tokenizer": {"tokenizer": small_tokenizer, "max_tokens": 16},
        "labels": {
            "dataset": "conll",
            "data_files": {"train": _conll(tmp_path / "t.txt", [[("Ann", "B-PER")]])},
        },
        "smaller_vocab": {"max_tokens": 16},
    }[mismatch]
    env = gym.make_vec("TextNER-v0", num_envs=2, **other)
    with pytest.raises(TextgymError, match="vocab|label|tokenizer|action"):
        PPO.load(tmp_path / "m", env=env, device="cpu")
