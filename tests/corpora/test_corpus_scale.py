"""Large local corpora: the streamed record store behaves as reading the files whole.

``STREAM_MIN_BYTES`` is lowered so that small generated files take the streamed path; the
reference is the same files read whole (the path every small file takes).
"""

from __future__ import annotations

import json
import mmap
import multiprocessing
import pickle
import warnings

import pytest

import textgym.corpora.store as store
from textgym.corpora import NERExample, TextExample, clear_cache, load_corpus
from textgym.corpora.records import example_bytes
from textgym.errors import DataError


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty cache directory of the test's own; memoised corpora forgotten."""
    monkeypatch.setenv("TEXTGYM_CACHE_DIR", str(tmp_path / "cache"))
    clear_cache()
    yield tmp_path / "cache"
    clear_cache()


def _load(monkeypatch, streamed: bool, *args, **kwargs):
    clear_cache()
    monkeypatch.setattr(store, "STREAM_MIN_BYTES", 0 if streamed else 2**62)
    return load_corpus(*args, **kwargs)


def _same(streamed, whole):
    assert streamed.labels == whole.labels
    assert streamed.fingerprint == whole.fingerprint
    assert list(streamed.splits) == list(whole.splits)
    for split, examples in whole.splits.items():
        assert isinstance(streamed.splits[split], store.StoredExamples)
        assert len(streamed.splits[split]) == len(examples)
        assert list(streamed.splits[split]) == list(examples)
        assert streamed.splits[split] == examples


def _conll(path, sentences: int, crlf: bool = False):
    """A CoNLL file of ``sentences`` sentences, some non-ASCII, IOB1 tags, DOCSTARTs."""
    end = "\r\n" if crlf else "\n"
    lines = []
    for i in range(sentences):
        if i % 500 == 0:
            lines += ["-DOCSTART- -X- O O", ""]
        lines += [
            f"Wörd{i} NNP B-NP I-PER",
            f"x{i % 7} VBZ B-VP O",
            f"Zürich{i % 13} NNP B-NP I-LOC",
            f"city{i % 3} NN I-NP I-LOC",
            "" if i % 2 else "\t",
        ]
    path.write_bytes(end.join(lines).encode())
    return path


def test_streamed_conll_matches_reading_it_whole(cache, tmp_path, monkeypatch):
    # several write buffers and progress steps, CRLF line ends split across read blocks
    monkeypatch.setattr(store, "_WRITE_BUFFER", 4096)
    path = _conll(tmp_path / "big.txt", 20000, crlf=True)
    whole = _load(monkeypatch, False, "ner", "conll", data_files=path)
    streamed = _load(monkeypatch, True, "ner", "conll", data_files=path)
    _same(streamed, whole)
    assert whole.split("train")[0] == NERExample(
        ("Wörd0", "x0", "Zürich0", "city0"), ("B-PER", "O", "B-LOC", "I-LOC")
    )
    train = streamed.split("train")
    assert train[-1] == whole.split("train")[-1]
    assert train[3:6] == tuple(whole.split("train")[3:6])
    with pytest.raises(IndexError):
        train[len(train)]


def test_streamed_splits_files_and_carved_validation(cache, tmp_path, monkeypatch):
    train = _conll(tmp_path / "train.txt", 3000)
    test = _conll(tmp_path / "test.txt", 300)
    files = {"train": [str(train), str(test)], "test": str(test)}
    whole = _load(monkeypatch, False, "ner", "conll", data_files=files)
    streamed = _load(monkeypatch, True, "ner", "conll", data_files=files)
    assert set(streamed.splits) == {"train", "validation", "test"}
    _same(streamed, whole)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl"])
@pytest.mark.parametrize("task", ["classification", "summarization"])
def test_streamed_tabular_matches_reading_it_whole(cache, tmp_path, monkeypatch, fmt, task):
    rows = [
        (f"doc {i}, with \u00e9 and a\ttab" if fmt != "tsv" else f"doc {i} é", f"c{i % 4}")
        for i in range(3000)
    ]
    rows[5] = ("a text holding \x1e and \x1d separators", "c1")  # stored apart, exactly
    if fmt == "csv":
        rows[7] = ('a "quoted"\r\nmulti-line text', "c2")
    head = ("text", "label") if task == "classification" else ("source", "target")
    path = tmp_path / f"data.{fmt}"
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(dict(zip(head, r, strict=True))) + "\n" for r in rows))
    else:
        import csv

        with open(path, "w", newline="") as f:
            quoting = csv.QUOTE_NONE if fmt == "tsv" else csv.QUOTE_MINIMAL
            writer = csv.writer(f, delimiter="\t" if fmt == "tsv" else ",", quoting=quoting)
            writer.writerow(head)
            writer.writerows(rows)
    whole = _load(monkeypatch, False, task, fmt, data_files={"train": path})
    streamed = _load(monkeypatch, True, task, fmt, data_files={"train": path})
    _same(streamed, whole)
    if task == "classification" and fmt != "tsv":
        assert TextExample("a text holding \x1e and \x1d separators", "c1") in list(
            streamed.split("train")
        ) + list(streamed.split("validation"))


def test_streamed_errors_name_file_line_and_field(cache, tmp_path, monkeypatch):
    monkeypatch.setattr(store, "STREAM_MIN_BYTES", 0)
    bad = _conll(tmp_path / "bad.txt", 2000)
    bad.write_bytes(bad.read_bytes() + b"last NN B-NP X-PER\n")
    with pytest.raises(DataError, match=r"bad\.txt, line \d+: tag 'X-PER' is not an IOB tag"):
        load_corpus("ner", "conll", data_files=bad)
    rows = tmp_path / "rows.jsonl"
    rows.write_text('{"text": "a", "label": "x"}\n' * 50 + '{"text": "b", "label": ""}\n')
    with pytest.raises(DataError, match=r"rows\.jsonl, line 51: field 'label' is ''"):
        load_corpus("classification", "jsonl", data_files=rows)
    csv_file = tmp_path / "open.csv"
    csv_file.write_text('text,label\n"never closed,x\n' + "more,y\n" * 20)
    with pytest.raises(DataError, match=r"open\.csv, line 2: a quoted field opens"):
        load_corpus("classification", "csv", data_files=csv_file)
    # nothing published for bad data, no temporary directory left (lock files stay)
    assert all(p.name.endswith(".lock") for p in (cache / "corpora").iterdir())


def test_cp1252_file_is_read_whole_and_matches(cache, tmp_path, monkeypatch):
    path = tmp_path / "latin.txt"
    path.write_bytes("Café O\nMünchen B-LOC\n\n£5 O\n".encode("cp1252") * 500)
    whole = _load(monkeypatch, False, "ner", "conll", data_files=path)
    streamed = _load(monkeypatch, True, "ner", "conll", data_files=path)
    _same(streamed, whole)


def test_fingerprint_of_a_file_is_its_bytes_without_parsing(cache, tmp_path, monkeypatch):
    path = _conll(tmp_path / "a.txt", 500)
    original = path.read_bytes()
    before = store.file_digest(path)
    data = bytearray(original)
    data[len(data) // 2] ^= 1
    path.write_bytes(bytes(data))
    assert store.file_digest(path) != before
    path.write_bytes(original.replace(b" VBZ ", b" VBD ", 1))  # a column the loader ignores
    assert store.file_digest(path) != before
    path.write_bytes(original)
    assert store.file_digest(path) == before

    first = _load(monkeypatch, True, "ner", "conll", data_files=path)

    def no_parse(*args, **kwargs):
        raise AssertionError("a load from the cache parsed the file")

    monkeypatch.setattr(store, "iter_conll", no_parse)
    monkeypatch.setattr(store, "read_file", no_parse)
    again = _load(monkeypatch, True, "ner", "conll", data_files=path)
    assert again.fingerprint == first.fingerprint
    assert list(again.split("train")) == list(first.split("train"))


def test_later_load_maps_the_store_instead_of_reading_it(cache, tmp_path, monkeypatch):
    path = _conll(tmp_path / "a.txt", 2000)
    _load(monkeypatch, True, "ner", "conll", data_files=path)
    corpus = _load(monkeypatch, True, "ner", "conll", data_files=path)
    train = corpus.split("train")
    part = train._store.splits["train"]
    assert isinstance(part.blob, mmap.mmap)
    assert not part.offsets.flags.owndata and not part.offsets.flags.writeable
    (entry,) = (cache / "corpora").glob("ner-*")
    assert train._store.directory == entry
    # pickles by reference to the store, not as a copy of every example
    assert len(pickle.dumps(train)) < 1000
    assert pickle.loads(pickle.dumps(corpus)).split("train") == train


@pytest.mark.parametrize("damage", ["truncate", "flip", "manifest"])
def test_damaged_store_is_rebuilt(cache, tmp_path, monkeypatch, damage):
    path = _conll(tmp_path / "a.txt", 2000)
    good = _load(monkeypatch, True, "ner", "conll", data_files=path)
    expected = list(good.split("train"))
    (entry,) = (cache / "corpora").glob("ner-*")
    blob = entry / "train.blob"
    data = bytearray(blob.read_bytes())
    del good
    if damage == "truncate":
        blob.write_bytes(bytes(data[:-100]))
    elif damage == "flip":
        data[-10] ^= 0xFF
        blob.write_bytes(bytes(data))
    else:
        (entry / "manifest.json").write_text('{"version": 1, "checks')
    with pytest.warns(UserWarning, match="damaged corpus store entry.*rebuilding"):
        again = _load(monkeypatch, True, "ner", "conll", data_files=path)
    assert list(again.split("train")) == expected
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert (
            list(_load(monkeypatch, True, "ner", "conll", data_files=path).split("train"))
            == expected
        )


def _load_in_child(args):
    cache_dir, path = args
    import os

    os.environ["TEXTGYM_CACHE_DIR"] = cache_dir
    import textgym.corpora.store as child_store
    from textgym.corpora import load_corpus as child_load

    child_store.STREAM_MIN_BYTES = 0
    corpus = child_load("ner", "conll", data_files=path)
    return (
        corpus.fingerprint,
        len(corpus.split("train")),
        str(corpus.split("train")._store.directory),
    )


def test_two_processes_loading_at_once_end_with_one_valid_store(cache, tmp_path):
    path = _conll(tmp_path / "a.txt", 20000)
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        results = pool.map(_load_in_child, [(str(cache), str(path))] * 2)
    assert results[0] == results[1]
    entries = [p for p in (cache / "corpora").iterdir() if not p.name.endswith(".lock")]
    assert [p.name for p in entries] == [results[0][2].rsplit("/", 1)[1]]  # no temp dir left
    store.RecordStore(entries[0])  # valid


def test_store_bytes_are_what_the_fingerprint_hashes(cache, tmp_path, monkeypatch):
    path = _conll(tmp_path / "a.txt", 300)
    corpus = _load(monkeypatch, True, "ner", "conll", data_files=path)
    train = corpus.split("train")
    blob = train._store.splits["train"].blob
    assert bytes(blob[:]) == b"".join(example_bytes(ex) for ex in train)


def test_read_only_cache_still_loads(tmp_path, monkeypatch):
    path = _conll(tmp_path / "a.txt", 300)
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("")
    monkeypatch.setenv("TEXTGYM_CACHE_DIR", str(blocked))
    corpus = _load(monkeypatch, True, "ner", "conll", data_files=path)
    whole = _load(monkeypatch, False, "ner", "conll", data_files=path)
    assert list(corpus.split("train")) == list(whole.split("train"))
    clear_cache()
