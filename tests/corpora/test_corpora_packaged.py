"""The offline packaged corpora: wnut16 and bbc-news."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys

import pytest

from textgym.corpora import (
    DATASETS,
    Corpus,
    NERExample,
    Seq2SeqExample,
    TextExample,
    clear_cache,
    load_corpus,
)
from textgym.corpora.conll import is_iob_tag
from textgym.corpora.packaged import _bbc_documents
from textgym.corpora.splits import split_of
from textgym.errors import TextgymError


def _total(corpus: Corpus) -> int:
    return sum(len(v) for v in corpus.splits.values())


def test_wnut16_is_the_ner_default():
    corpus = load_corpus("ner")
    assert corpus is load_corpus("ner", "wnut16")
    assert corpus.name == "wnut16" and corpus.task == "ner"
    assert tuple(corpus.splits) == ("train", "validation", "test")
    assert _total(corpus) == 2394
    assert len(corpus.labels) == 21 and corpus.labels[0] == "O"
    types = {tag[2:] for tag in corpus.labels[1:]}
    assert len(types) == 10
    # grouped by sorted entity type, B- before I-
    assert list(corpus.labels[1:]) == [f"{p}-{t}" for t in sorted(types) for p in "BI"]
    for examples in corpus.splits.values():
        for ex in examples:
            assert isinstance(ex, NERExample)
            assert ex.words and len(ex.words) == len(ex.tags)
            assert all(is_iob_tag(t) for t in ex.tags)


def test_wnut16_split_is_by_sentence_hash_and_disjoint():
    corpus = load_corpus("ner")
    seen: dict[str, str] = {}
    for split, examples in corpus.splits.items():
        for ex in examples:
            key = " ".join(ex.words)
            assert split_of(key) == split
            assert seen.setdefault(key, split) == split  # duplicates share a split
    sizes = {k: len(v) for k, v in corpus.splits.items()}
    assert sizes == {"train": 1955, "validation": 219, "test": 220}


@pytest.mark.parametrize("task", ["classification", "summarization"])
def test_bbc_news_sizes_and_split(task):
    corpus = load_corpus(task)
    assert corpus.name == "bbc-news" and corpus.task == task
    assert _total(corpus) == 2225
    sizes = {k: len(v) for k, v in corpus.splits.items()}
    assert sizes == {"train": 1755, "validation": 226, "test": 244}
    texts = {
        split: {f"{ex.target}\n{ex.source}" if task == "summarization" else ex.text for ex in exs}
        for split, exs in corpus.splits.items()
    }
    # The corpus repeats some articles under other file names: each copy shares a split.
    assert not texts["train"] & (texts["validation"] | texts["test"])
    if task == "classification":
        assert corpus.labels == ("business", "entertainment", "politics", "sports", "tech")
        assert all(isinstance(ex, TextExample) for ex in corpus.split("train"))
    else:
        assert corpus.labels == ()
        assert all(isinstance(ex, Seq2SeqExample) for ex in corpus.split("test"))


def test_bbc_news_documents():
    cls = load_corpus("classification")
    summ = load_corpus("summarization")
    first = summ.split("train")[0]
    assert first.target == "Ad sales boost Time Warner profit"
    assert first.source.startswith("Quarterly profits at US media giant TimeWarner")
    assert "\n\n" not in first.source and first.target not in first.source
    assert cls.split("train")[0] == TextExample(f"{first.target}\n{first.source}", "business")
    # sports/199.txt is cp1252: its pound signs must survive decoding
    mutu = [ex for ex in summ.split("train") + summ.split("validation") + summ.split("test")
            if ex.target == "Chelsea sack Mutu"]  # fmt: skip
    assert len(mutu) == 1 and "£15.8m" in mutu[0].source
    assert "\ufffd" not in mutu[0].source


def test_bbc_split_is_by_article_text_hash():
    corpus = load_corpus("classification")
    expected: dict[str, list] = {"train": [], "validation": [], "test": []}
    for _, label, title, body in _bbc_documents():
        expected[split_of(f"{title}\n{body}")].append(TextExample(f"{title}\n{body}", label))
    assert {k: list(v) for k, v in corpus.splits.items()} == expected
    assert len({rel for rel, *_ in _bbc_documents()}) == 2225  # each file in one split


def test_reload_is_identical():
    corpus = load_corpus("classification")
    clear_cache()
    again = load_corpus("classification")
    assert again is not corpus
    assert again == corpus and again.fingerprint == corpus.fingerprint
    assert load_corpus("classification") is again  # memoised


def test_fingerprint_is_stable_across_processes_and_needs_no_datasets():
    # another process with another PYTHONHASHSEED: fingerprints and splits use hashlib only
    code = (
        "import sys; from textgym.corpora import load_corpus;"
        "print(load_corpus('ner').fingerprint, load_corpus('summarization').fingerprint,"
        "'datasets' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "123"},
    ).stdout.split()
    ner, summarization = load_corpus("ner").fingerprint, load_corpus("summarization").fingerprint
    assert out == [ner, summarization, "False"]  # the packaged corpora never import datasets
    assert ner != summarization and len(ner) == 32


def test_split_accessor_aliases_and_errors():
    corpus = load_corpus("ner")
    assert corpus.split("dev") is corpus.split("validation") is corpus.split("valid")
    with pytest.raises(TextgymError, match=r"no split 'unlabeled'.*train, validation, test"):
        corpus.split("unlabeled")
    assert "wnut16" in repr(corpus) and "train=1955" in repr(corpus)


def test_corpus_is_immutable_and_picklable():
    corpus = load_corpus("ner")
    with pytest.raises(TypeError):
        corpus.splits["train"] = ()
    with pytest.raises(AttributeError):
        corpus.name = "x"
    copy = pickle.loads(pickle.dumps(corpus))
    assert copy == corpus and hash(copy) == hash(corpus)
    with pytest.raises(TypeError):
        copy.splits["train"] = ()


def test_packaged_task_mismatch_and_options():
    with pytest.raises(TextgymError, match="'wnut16' provides ner, not classification"):
        load_corpus("classification", "wnut16")
    with pytest.raises(TextgymError, match="packaged and takes no data_files"):
        load_corpus("ner", "wnut16", data_dir=".")
    with pytest.raises(TextgymError, match="unexpected keyword argument"):
        load_corpus("ner", "wnut16", revision="main")
    with pytest.raises(TextgymError, match="text_column applies to classification"):
        load_corpus("ner", text_column="text")


def test_datasets_registry():
    assert DATASETS["wnut16"].tasks == ("ner",)
    assert set(DATASETS["bbc-news"].tasks) == {"classification", "summarization"}
    for name in ("conll", "csv", "tsv", "jsonl", "conll2003", "sst2", "ag_news", "imdb",
                 "cnn_dailymail", "xsum", "parquet"):  # fmt: skip
        assert name in DATASETS
    for info in DATASETS.values():
        assert info.source in ("packaged", "local", "hub") and info.description
