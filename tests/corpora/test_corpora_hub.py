"""The Hugging Face path, with datasets built locally (there is no network here)."""

from __future__ import annotations

import sys

import pytest

from textgym.corpora import NERExample, Seq2SeqExample, TextExample, load_corpus
from textgym.corpora.splits import bucket, example_key, split_of
from textgym.errors import DataError, TextgymError

datasets = pytest.importorskip("datasets")

TAGS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def _ner_dataset(n: int, offset: int = 0):
    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "tokens": datasets.Sequence(datasets.Value("string")),
            "ner_tags": datasets.Sequence(datasets.ClassLabel(names=TAGS)),
        }
    )
    return datasets.Dataset.from_dict(
        {
            "id": [str(i) for i in range(n)],
            "tokens": [["John", f"Smith{i + offset}", "in", "Paris"] for i in range(n)],
            "ner_tags": [[1, 2, 0, 3]] * n,
        },
        features=features,
    )


def _cls_dataset(texts, labels):
    features = datasets.Features(
        {"sentence": datasets.Value("string"), "label": datasets.ClassLabel(names=["neg", "pos"])}
    )
    return datasets.Dataset.from_dict({"sentence": texts, "label": labels}, features=features)


def test_save_to_disk_ner_classlabels_and_split_names(tmp_path):
    path = tmp_path / "ner_saved"
    datasets.DatasetDict(
        {"train": _ner_dataset(6), "dev": _ner_dataset(2, 100), "test": _ner_dataset(3, 200)}
    ).save_to_disk(str(path))
    corpus = load_corpus("ner", path)
    assert corpus.name == f"disk:{path}"
    assert {k: len(v) for k, v in corpus.splits.items()} == {"train": 6, "validation": 2, "test": 3}
    assert corpus.split("validation")[0] == NERExample(
        ("John", "Smith100", "in", "Paris"), ("B-PER", "I-PER", "O", "B-LOC")
    )
    assert corpus.labels == ("O", "B-LOC", "B-PER", "I-PER")  # seen tags only
    assert load_corpus("ner", str(path)) is corpus


def test_save_to_disk_unlabelled_test_dropped_and_validation_carved(tmp_path):
    texts = [f"review number {i}" for i in range(100)]
    path = tmp_path / "cls_saved"
    datasets.DatasetDict(
        {
            "train": _cls_dataset(texts, [i % 2 for i in range(100)]),
            "test": _cls_dataset(["no label"], [-1]),  # GLUE-style unlabelled test split
            "unsupervised": _cls_dataset(["x"], [0]),  # not a train/validation/test name
        }
    ).save_to_disk(str(path))
    corpus = load_corpus("classification", str(path))
    assert tuple(corpus.splits) == ("train", "validation")
    assert corpus.labels == ("neg", "pos")
    validation = corpus.split("validation")
    assert validation and all(80 <= bucket(ex.text) < 90 for ex in validation)
    assert len(corpus.split("train")) + len(validation) == 100
    assert corpus.split("train")[0] == TextExample("review number 0", "neg")


def test_saved_single_dataset_gets_hash_split(tmp_path):
    path = tmp_path / "one"
    _ner_dataset(50).save_to_disk(str(path))
    corpus = load_corpus("ner", path)
    assert sum(map(len, corpus.splits.values())) == 50
    for split, examples in corpus.splits.items():
        assert all(split_of(example_key(ex)) == split for ex in examples)


def test_parquet_files(tmp_path):
    for split, n in (("train", 4), ("test", 2)):
        datasets.Dataset.from_dict(
            {"article": [f"{split} article {i}" for i in range(n)], "highlights": ["h"] * n}
        ).to_parquet(str(tmp_path / f"{split}.parquet"))
    cache = str(tmp_path / "hf_cache")
    corpus = load_corpus(
        "summarization",
        "parquet",
        data_files={"train": tmp_path / "train.parquet", "test": tmp_path / "test.parquet"},
        cache_dir=cache,
    )
    every = [ex for examples in corpus.splits.values() for ex in examples]
    assert len(every) == 6 and corpus.split("test") == (
        Seq2SeqExample("test article 0", "h"),
        Seq2SeqExample("test article 1", "h"),
    )
    assert corpus.name == f"parquet:{tmp_path}"
    # a parquet path as dataset: one file, hash split
    single = load_corpus("summarization", str(tmp_path / "train.parquet"), cache_dir=cache)
    assert sum(map(len, single.splits.values())) == 4
    # the format is inferred from the extension under data_dir too
    by_dir = load_corpus("summarization", data_dir=tmp_path, cache_dir=cache)
    assert by_dir.splits == corpus.splits


@pytest.mark.parametrize(
    ("task", "name", "hint"),
    [
        ("ner", "conll2003", 'dataset="conll", data_files='),
        ("classification", "sst2", 'dataset="csv"'),
        ("summarization", "xsum", 'dataset="jsonl"'),
    ],
)
def test_offline_hub_name_fails_with_local_alternative(hf_offline, task, name, hint):
    with pytest.raises(TextgymError) as err:
        load_corpus(task, name)
    msg = str(err.value)
    assert f"Hugging Face dataset {name!r}" in msg and "offline" in msg
    assert hint in msg and "save_to_disk" in msg


def test_missing_datasets_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # import datasets -> ImportError
    with pytest.raises(TextgymError, match=r"needs the 'datasets' package.*textgym\[hub\]"):
        load_corpus("classification", "imdb")


def test_string_tags_are_checked_and_converted(tmp_path):
    good = datasets.Dataset.from_dict({"words": [["a", "b"]], "tags": [["I-X", "I-X"]]})
    good.save_to_disk(str(tmp_path / "good"))
    assert load_corpus("ner", tmp_path / "good").labels == ("O", "B-X", "I-X")
    bad = datasets.Dataset.from_dict({"tokens": [["a"], ["b"]], "ner_tags": [["O"], ["X"]]})
    bad.save_to_disk(str(tmp_path / "bad"))
    with pytest.raises(DataError, match=r"bad: row 1: tag 'X' is not an IOB tag"):
        load_corpus("ner", tmp_path / "bad")
