"""Bugs found by the reliability fuzzing, one test each (each failed before its fix)."""

from __future__ import annotations

import json
import warnings

import gymnasium as gym
import numpy as np
import pytest

import textgym  # noqa: F401  (registers the env ids)
from textgym.corpora import NERExample, TextExample, load_corpus
from textgym.errors import DataError, TextgymError

# ----- corpora: encodings and line ends ---------------------------------------------------


def test_conll_with_old_mac_cr_line_ends_is_read_line_by_line(tmp_path):
    """A CR-only file used to be one line: one sentence of one word, silently wrong."""
    path = tmp_path / "mac.txt"
    path.write_bytes(b"EU B-ORG\rrejects O\r\rPeter B-PER\r\nBlackburn I-PER\r")
    corpus = load_corpus("ner", "conll", data_files={"train": path, "test": path})
    assert list(corpus.split("test")) == [
        NERExample(("EU", "rejects"), ("B-ORG", "O")),
        NERExample(("Peter", "Blackburn"), ("B-PER", "I-PER")),
    ]
    bad = tmp_path / "mac_bad.txt"
    bad.write_bytes(b"EU B-ORG\rrejects\rx O\r")
    with pytest.raises(DataError) as err:
        load_corpus("ner", "conll", data_files={"train": bad})
    assert err.value.line == 2


def test_jsonl_with_cr_line_ends_is_read_line_by_line(tmp_path):
    path = tmp_path / "mac.jsonl"
    path.write_bytes(b'{"text": "a", "label": "x"}\r{"text": "b", "label": "y"}\r')
    corpus = load_corpus("classification", "jsonl", data_files={"train": path, "test": path})
    assert [ex.text for ex in corpus.split("test")] == ["a", "b"]
    path.write_bytes(b'{"text": "a", "label": "x"}\r{"text": "b", "lab\r')
    with pytest.raises(DataError) as err:
        load_corpus("classification", str(path))
    assert err.value.line == 2


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le", "utf-16-be", "utf-32"])
def test_utf16_and_utf32_files_with_a_bom_are_decoded(tmp_path, encoding):
    """Notepad's "Unicode" is UTF-16 with a BOM; it used to fail on tags like '\\x00O'."""
    text = "Café B-LOC\nMünchen I-LOC\n\n£5 O\n"
    bom = "\ufeff" if encoding in ("utf-16-le", "utf-16-be") else ""
    path = tmp_path / "wide.txt"
    path.write_bytes((bom + text).encode(encoding))
    corpus = load_corpus("ner", "conll", data_files={"train": path, "test": path})
    assert list(corpus.split("test")) == [
        NERExample(("Café", "München"), ("B-LOC", "I-LOC")),
        NERExample(("£5",), ("O",)),
    ]


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_utf16_file_whose_first_word_is_nul_is_not_read_as_utf32(tmp_path, eol):
    """UTF-16's little-endian mark before a U+0000 is UTF-32's mark, byte for byte
    (``FF FE 00 00``); found by the fuzzer (a CoNLL word '\x00'), it read as garbage."""
    from textgym.corpora.textio import decode

    text = f"\x00 O{eol}Paris B-LOC{eol}"
    data = text.encode("utf-16")
    assert data.startswith(b"\xff\xfe\x00\x00")
    assert decode(data) == text
    assert decode(text.encode("utf-32")) == text  # a real UTF-32 file still is one


# ----- corpora: JSON that escaped as RecursionError/ValueError or broke the tokenizer ------


@pytest.mark.parametrize(
    "name, content",
    [
        ("deep.jsonl", "[" * 100_000 + "]" * 100_000 + "\n"),
        ("deep_field.jsonl", '{"text": ' + "[" * 5_000 + "]" * 5_000 + ', "label": "a"}\n'),
        ("deep.json", "[" * 100_000),
        ("big_label.jsonl", '{"text": "x", "label": 1' + "0" * 5_000 + "}\n"),
        (
            "big_text.jsonl",
            '{"text": "ok", "label": "a"}\n{"text": 1' + "0" * 5_000 + ', "label": "a"}\n',
        ),
    ],
)
def test_json_nesting_and_huge_numbers_fail_clearly(tmp_path, name, content):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(DataError) as err:
        load_corpus("classification", str(path))
    assert err.value.path == str(path)
    if content.startswith("{"):  # JSON Lines (a file starting with "[" is one JSON array)
        assert err.value.line == content.count("\n")


def test_json_lone_surrogate_escapes_become_replacement_characters(tmp_path):
    """A tweet cut inside a UTF-16 surrogate pair holds "\\ud83d" alone: keep the text."""
    path = tmp_path / "cut.jsonl"
    lines = [
        {"tokens": ["fun", "x\ud83d"], "ner_tags": ["O", "O"]},
        {"tokens": ["\udc00"], "ner_tags": ["O"]},
    ]
    path.write_text("\n".join(json.dumps(r) for r in lines))  # ensure_ascii: "\ud83d" escapes
    corpus = load_corpus("ner", "jsonl", data_files={"train": path, "test": path})
    assert list(corpus.split("test")) == [
        NERExample(("fun", "x\ufffd"), ("O", "O")),
        NERExample(("\ufffd",), ("O",)),
    ]
    path = tmp_path / "cut_text.jsonl"
    path.write_text(json.dumps({"text": "a\ud800b", "label": "x\udfff"}))
    files = {"test": path, "train": path}
    corpus = load_corpus("classification", "jsonl", data_files=files)
    assert corpus.split("test")[0] == TextExample("a\ufffdb", "x\ufffd")
    # the tokenizer used to fail on the lone surrogate with a TypeError
    env = gym.make("TextClassification-v0", dataset="jsonl", data_files=files, max_tokens=8)
    obs, _ = env.reset(seed=0)
    assert obs in env.observation_space


# ----- NER: words the tokenizer maps to no subword ----------------------------------------


def test_words_without_subwords_are_tagged_not_dropped(tmp_path):
    """A control character or zero-width space alone in a sentence, or last in it, gave
    episodes that skipped words (truncated early) or had zero words (a step tagged nothing)."""
    sentences = [["a", "\x01"], ["\x1b"], ["\u200b", "b", "\x7f"], ["x"] * 30]
    path = tmp_path / "ctrl.txt"
    path.write_text("\n\n".join("\n".join(f"{w} O" for w in s) for s in sentences) + "\n")
    files = {"train": path, "test": path}
    env = gym.make("TextNER-v0", dataset="conll", data_files=files, split="test", max_tokens=10)
    for index, words in enumerate(env.unwrapped.examples):
        obs, _ = env.reset(options={"index": index})
        steps, terminated, truncated = 0, False, False
        while not (terminated or truncated):
            obs, _, terminated, truncated, info = env.step(0)
            steps += 1
        if len(words.words) <= 8:  # fits in 10 tokens: every word is tagged
            assert (steps, terminated, info["words_dropped"]) == (len(words.words), True, 0)
        else:  # a full window: the words past it are dropped, as documented
            assert (steps, truncated, obs["attention_mask"].all()) == (8, True, True)
        assert obs["word_index"][0] == obs["word_mask"].sum() == steps


# ----- vector envs: bad arguments that escaped as TypeError or warned ---------------------


def test_vector_env_bad_indices_seed_and_infinite_actions_are_textgym_errors():
    env = gym.make_vec("TextClassification-v0", num_envs=2, max_tokens=8)
    with pytest.raises(TextgymError, match=r"options\['indices'\] must be a sequence"):
        env.reset(options={"indices": 5})  # was TypeError: 'int' object is not iterable
    with pytest.raises(TextgymError, match="seed must be an integer or a sequence"):
        env.reset(seed=1.5)  # was TypeError: 'float' object is not iterable
    with pytest.raises(TextgymError, match="seeds must be integers"):
        env.reset(seed=[0, 1.5])
    env.reset(seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # was RuntimeWarning: invalid value in cast
        for bad in (np.array([0.0, np.inf]), np.array([0.0, 1e300])):
            with pytest.raises(TextgymError, match="not in the action space|must be 2 integers"):
                env.step(bad)
    env.step(np.array([0.0, 1.0]))  # whole floats (SB3's float buffers) still work


# ----- NER: empty-string words (JSON Lines, Hugging Face files) ---------------------------


def test_an_empty_string_word_is_a_data_error_naming_file_and_line(tmp_path):
    """A word "" has no subword under any tokenizer; with one that has no [UNK] (byte-level
    BPE, as GPT-2's) a sentence [""] had 0 taggable words and the rest of ["a", "", "b"]
    was dropped silently."""
    path = tmp_path / "empty_word.jsonl"
    path.write_text(
        '{"tokens": ["a"], "ner_tags": ["O"]}\n{"tokens": ["a", "", "b"], "ner_tags": ["O", "O", "O"]}\n'
    )
    with pytest.raises(
        DataError, match=r"empty_word\.jsonl, line 2: field 'tokens': word 1 is an empty string"
    ):
        load_corpus("ner", str(path))


def test_an_empty_string_word_in_a_parquet_file_is_a_data_error(tmp_path):
    datasets = pytest.importorskip("datasets")
    path = tmp_path / "ner.parquet"
    datasets.Dataset.from_dict(
        {"tokens": [["a"], ["b", ""]], "ner_tags": [["O"], ["O", "O"]]}
    ).to_parquet(path)
    with pytest.raises(DataError, match="row 1: field 'tokens': word 1 is an empty string"):
        load_corpus("ner", str(path))


# ----- the tokenized-data cache: damaged entries are rebuilt (issue 13, item 15) -----------


@pytest.mark.parametrize("damage", ["truncate", "flip_byte", "garbage"])
def test_a_damaged_cache_file_is_rebuilt_with_a_warning_naming_it(tmp_path, monkeypatch, damage):
    """A truncated file or a flipped byte failed every later gym.make with EOFError or
    zipfile.BadZipFile, though _load_cached promised to rebuild bad entries."""
    import textgym.tokenizer as tokenizer_module

    monkeypatch.setenv("TEXTGYM_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(tokenizer_module, "_MEMO", {})
    data = tmp_path / "data.csv"
    data.write_text("text,label\n" + "".join(f"document {i},{'ab'[i % 2]}\n" for i in range(20)))
    kwargs = {"dataset": str(data), "max_tokens": 8, "split": "train"}
    first = gym.make("TextClassification-v0", **kwargs).reset(seed=0)[0]
    (entry,) = (tmp_path / "cache").glob("classification-*")
    path = entry / "input_ids.npy"
    raw = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    elif damage == "flip_byte":
        middle = len(raw) // 2
        path.write_bytes(raw[:middle] + bytes([raw[middle] ^ 0xFF]) + raw[middle + 1 :])
    else:
        (entry / "meta.json").write_bytes(b"not json at all")
    monkeypatch.setattr(tokenizer_module, "_MEMO", {})  # a new process
    with pytest.warns(UserWarning, match=rf"{entry}: damaged tokenized-data cache entry"):
        env = gym.make("TextClassification-v0", **kwargs)
    obs, _ = env.reset(seed=0)
    assert all((obs[k] == first[k]).all() for k in obs)
    assert path.read_bytes() == raw  # rewritten whole
    monkeypatch.setattr(tokenizer_module, "_MEMO", {})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gym.make("TextClassification-v0", **kwargs)  # read from the repaired cache silently
