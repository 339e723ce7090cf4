"""The tokenized-array cache: built chunk by chunk, mapped on every load, repaired when damaged."""

from __future__ import annotations

import mmap
import multiprocessing
import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest

import textgym  # noqa: F401  (registers the envs)
import textgym.tokenizer as tokenizer_module
from textgym.corpora import load_corpus
from textgym.envs.ner import _build_arrays as ner_arrays
from textgym.tokenizer import TextTokenizer, cached_arrays, resolve_tokenizer_name


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache directory of the test's own, and an empty per-process memo."""
    monkeypatch.setenv("TEXTGYM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(tokenizer_module, "_MEMO", {})
    return tmp_path / "cache"


def _new_process(monkeypatch):
    """What a new process starts from: nothing memoised."""
    monkeypatch.setattr(tokenizer_module, "_MEMO", {})


def _mapped(array: np.ndarray) -> bool:
    """Whether ``array`` is a view of a memory-mapped file (not a private copy)."""
    while isinstance(array, np.ndarray):
        if array.flags.owndata:
            return False
        array = array.base
    return isinstance(array, mmap.mmap)


def _csv(path, rows: int):
    path.write_text(
        "text,label\n" + "".join(f"document {i} é,{'abc'[i % 3]}\n" for i in range(rows))
    )
    return path


def test_chunked_build_gives_the_arrays_of_a_one_shot_build(cache):
    corpus = load_corpus("ner", None)
    examples = corpus.split("train")[:300]

    def build(tok, chunk):
        return ner_arrays(tok, chunk, corpus.labels, 24)

    chunked, _ = cached_arrays(
        {"task": "ner", "n": 1}, None, build, examples=examples, chunk_size=7
    )
    whole, _ = cached_arrays(
        {"task": "ner", "n": 2}, None, build, examples=examples, chunk_size=10**6
    )
    assert len(list(cache.glob("ner-*"))) == 2  # two entries, built apart
    assert chunked.keys() == whole.keys()
    for name in whole:
        assert chunked[name].dtype == whole[name].dtype == np.int32
        np.testing.assert_array_equal(chunked[name], whole[name])
        assert len(chunked[name]) == 300


def test_wordwise_encoding_equals_encoding_each_sentence(cache):
    tok = TextTokenizer.from_pretrained(resolve_tokenizer_name(None))
    assert tok._word_pieces() is not None  # the packaged WordPiece takes the fast path
    corpus = load_corpus("ner", None)
    sentences = [e.words for e in corpus.split("test")]
    sentences += [
        ("a", "\u200b", "b"),  # a word without subwords: the unknown token
        ("\u200b",),
        ("hello",) * 61 + ("\u200b",),  # it would start right after the window
        ("hello",) * 62 + ("\u200b", "z"),
        ("supercalifragilistic",) * 30,  # truncated in the middle of a word
        ("U.S.", "don't", "Zürich", "東京", "[SEP]", "[UNK]", "naïve"),
        # words joined by spaces are encoded as text: characters that split, combine,
        # vanish or change case by context must give what each word alone gives
        ("ΟΔΟΣ", "Σ", "\u0301abc", "e\u0301", "a\u00a0b", "x\ty", "a\u200bb", "\ufeffw", "ﬁne"),
        ("İstanbul", "ß", "😀x", "Ⅻ", "a  b", " lead", "trail ", "\x00"),
    ]
    for max_tokens in (3, 5, 16, 64):
        fast = tok.encode_words(sentences, max_tokens)
        exact = tok._encode_words_exact(sentences, max_tokens)
        for a, b in zip(fast, exact, strict=True):
            np.testing.assert_array_equal(a, b)


def test_env_observations_are_those_of_encoding_each_sentence(cache, monkeypatch):
    env = gym.make("TextNER-v0", split="test", max_tokens=32).unwrapped
    _new_process(monkeypatch)
    monkeypatch.setenv("TEXTGYM_CACHE_DIR", str(cache.parent / "exact"))
    monkeypatch.setattr(TextTokenizer, "_word_pieces", lambda self: None)
    exact = gym.make("TextNER-v0", split="test", max_tokens=32).unwrapped
    for name, array in exact.data.arrays.items():
        np.testing.assert_array_equal(env.data.arrays[name], array)
    for index in (0, 7, exact.num_examples - 1):
        a, _ = env.reset(options={"index": index})
        b, _ = exact.reset(options={"index": index})
        for key in b:
            np.testing.assert_array_equal(a[key], b[key])


def test_a_later_load_maps_the_arrays_and_the_first_observations(cache, monkeypatch):
    first = gym.make("TextNER-v0", split="test", max_tokens=24).unwrapped
    obs, _ = first.reset(seed=5)
    _new_process(monkeypatch)

    def no_load(name):
        raise AssertionError("a load from the cache loaded the tokenizer")

    monkeypatch.setattr(TextTokenizer, "from_pretrained", staticmethod(no_load))
    env = gym.make("TextNER-v0", split="test", max_tokens=24).unwrapped
    for name, array in env.data.arrays.items():
        assert _mapped(array), name
        assert not array.flags.writeable
        np.testing.assert_array_equal(array, first.data.arrays[name])
    assert _mapped(env._initial) and not env._initial.flags.writeable
    again, _ = env.reset(seed=5)
    for key in obs:
        np.testing.assert_array_equal(again[key], obs[key])
    envs = gym.make_vec("TextNER-v0", num_envs=3, split="test", max_tokens=24)
    assert envs.data.arrays["input_ids"] is env.data.arrays["input_ids"]  # one mapping
    assert envs._initial is env._initial
    # A copy sent to another process carries the arrays, not this process's tables.
    sent = pickle.loads(pickle.dumps(env.data.arrays))
    assert sent.derived == {} and sent.directory == env.data.arrays.directory
    np.testing.assert_array_equal(sent["input_ids"], env.data.arrays["input_ids"])


def test_a_damaged_first_observation_table_is_rebuilt(cache, monkeypatch, tmp_path):
    kwargs = {"dataset": str(_csv(tmp_path / "d.csv", 40)), "max_tokens": 8, "split": "train"}
    first, _ = gym.make("TextClassification-v0", **kwargs).reset(seed=1)
    (table,) = cache.glob("classification-*/initial-*.npy")
    raw = bytearray(table.read_bytes())
    raw[-3] ^= 0xFF
    table.write_bytes(bytes(raw))
    _new_process(monkeypatch)
    with pytest.warns(UserWarning, match=rf"{table}: damaged tokenized-data cache file"):
        env = gym.make("TextClassification-v0", **kwargs)
    again, _ = env.reset(seed=1)
    for key in first:
        np.testing.assert_array_equal(again[key], first[key])
    _new_process(monkeypatch)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym.make("TextClassification-v0", **kwargs)  # repaired: silent


def _make_in_child(args):
    cache_dir, path = args
    import os

    os.environ["TEXTGYM_CACHE_DIR"] = cache_dir
    import gymnasium as child_gym

    env = child_gym.make("TextClassification-v0", dataset=path, max_tokens=16).unwrapped
    return str(env.data.arrays.directory), env.data.arrays["input_ids"].sum().item()


def test_two_processes_building_at_once_end_with_one_valid_entry(cache, tmp_path):
    path = _csv(tmp_path / "d.csv", 3000)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        results = pool.map(_make_in_child, [(str(cache), str(path))] * 2)
    assert results[0] == results[1]
    entries = [p for p in cache.iterdir() if not p.name.startswith(".")]
    assert [str(p) for p in entries] == [results[0][0]]  # no temporary directory left
    assert not [p for p in cache.iterdir() if p.name.endswith(".tmp")]
    arrays, _ = tokenizer_module._open_entry(entries[0], _entry_key(entries[0]))
    assert arrays["input_ids"].shape[1] == 16


def _entry_key(entry):
    import json

    return json.loads((entry / "meta.json").read_text())["key"]


def test_a_cache_that_cannot_be_written_builds_in_memory(tmp_path, monkeypatch):
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    monkeypatch.setenv("TEXTGYM_CACHE_DIR", str(blocked))
    _new_process(monkeypatch)
    kwargs = {"dataset": str(_csv(tmp_path / "d.csv", 40)), "max_tokens": 8}
    env = gym.make("TextClassification-v0", **kwargs).unwrapped
    assert env.data.arrays.directory is None
    assert not env.data.arrays["input_ids"].flags.writeable
    monkeypatch.setenv("TEXTGYM_CACHE_DIR", str(tmp_path / "cache"))
    _new_process(monkeypatch)
    mapped = gym.make("TextClassification-v0", **kwargs).unwrapped
    np.testing.assert_array_equal(env.data.arrays["input_ids"], mapped.data.arrays["input_ids"])
    np.testing.assert_array_equal(env._initial, mapped._initial)


def test_only_word_by_word_pipelines_take_the_word_cache():
    from textgym.tokenizer import _is_wordwise

    bert = {
        "normalizer": {"type": "BertNormalizer"},
        "pre_tokenizer": {"type": "BertPreTokenizer"},
        "model": {"type": "WordPiece"},
        "post_processor": {"type": "TemplateProcessing"},
    }
    assert _is_wordwise(bert)
    sequence = {"type": "Sequence", "normalizers": [{"type": "NFD"}, {"type": "Lowercase"}]}
    assert _is_wordwise(dict(bert, normalizer=sequence, post_processor=None))
    # a prefix space or merges that depend on a word's place: each sentence encoded whole
    assert not _is_wordwise(dict(bert, pre_tokenizer={"type": "Metaspace"}))
    assert not _is_wordwise(dict(bert, pre_tokenizer={"type": "ByteLevel"}, model={"type": "BPE"}))
    assert not _is_wordwise(dict(bert, post_processor={"type": "RobertaProcessing"}))
    assert not _is_wordwise(dict(bert, normalizer={"type": "Sequence", "normalizers": []}))
    assert not _is_wordwise({k: v for k, v in bert.items() if k != "model"})
