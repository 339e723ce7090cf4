"""Local files: CoNLL, CSV, TSV, JSONL; file discovery, split rules and memoisation."""

from __future__ import annotations

import json
import os

import pytest

from textgym.corpora import NERExample, Seq2SeqExample, TextExample, load_corpus
from textgym.corpora.conll import parse_conll, to_iob2
from textgym.corpora.splits import bucket, example_key, split_of
from textgym.errors import DataError


def _write(path, text, encoding="utf-8"):
    path.write_bytes(text.encode(encoding))
    return path


def _all(corpus):
    return [ex for examples in corpus.splits.values() for ex in examples]


CONLL = "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter NNP B-NP B-PER\nBlackburn NNP I-NP I-PER\n"


def test_conll_separators_collapse_and_docstart_is_skipped():
    text = "a\tO\n\t\n \n\t\t\nb\tB-X\nc\tI-X\n-DOCSTART-\tO\nd\tO\n\n\n"
    assert parse_conll(text, "f") == [
        NERExample(("a",), ("O",)),
        NERExample(("b", "c"), ("B-X", "I-X")),
        NERExample(("d",), ("O",)),
    ]


def test_conll_columns_crlf_bom_and_cp1252(tmp_path):
    expected = [
        NERExample(("EU", "rejects"), ("B-ORG", "O")),
        NERExample(("Peter", "Blackburn"), ("B-PER", "I-PER")),
    ]
    crlf = _write(tmp_path / "crlf.txt", "\ufeff" + CONLL.replace("\n", "\r\n"))
    corpus = load_corpus("ner", "conll", data_files={"train": crlf, "test": crlf})
    assert list(corpus.split("test")) == expected
    _write(tmp_path / "latin.txt", "Café O\nMünchen B-LOC\n\n£5 O\n", encoding="cp1252")
    latin = load_corpus("ner", "conll", data_files={"train": tmp_path / "latin.txt"})
    assert _all(latin) == [
        NERExample(("Café", "München"), ("O", "B-LOC")),
        NERExample(("£5",), ("O",)),
    ]


def test_iob1_is_converted_and_iob2_kept():
    iob1 = ("I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG", "I-ORG")
    iob2 = ("B-PER", "I-PER", "B-PER", "O", "B-LOC", "B-ORG", "I-ORG")
    assert to_iob2(iob1) == iob2
    assert to_iob2(iob1, "iob1") == iob2
    assert to_iob2(iob2, "iob2") == iob2
    text = "\n".join(f"w{i} {t}" for i, t in enumerate(iob1))
    assert parse_conll(text, "f")[0].tags == iob2


def test_ner_labels_seen_tags_in_order(tmp_path):
    path = _write(tmp_path / "train.conll", "a B-PER\nb I-PER\n\nc B-LOC\n\nd B-AAA\n")
    corpus = load_corpus("ner", "conll", data_files={"train": path})
    assert corpus.labels == ("O", "B-AAA", "B-LOC", "B-PER", "I-PER")  # "O" always first


def test_single_file_gets_hash_split(tmp_path):
    lines = [f"word{i} O\nx{i % 7} B-T\n" for i in range(300)]
    path = _write(tmp_path / "all.txt", "\n".join(lines))
    corpus = load_corpus("ner", path)
    assert corpus.name == f"conll:{path}"
    assert sum(map(len, corpus.splits.values())) == 300
    for split, examples in corpus.splits.items():
        assert all(split_of(example_key(ex)) == split for ex in examples)
    sizes = {k: len(v) for k, v in corpus.splits.items()}
    assert 200 < sizes["train"] < 280 and sizes["validation"] > 10 and sizes["test"] > 10
    # order inside a split is file order
    words = [int(ex.words[0][4:]) for ex in corpus.split("train")]
    assert words == sorted(words)


def test_hash_buckets_are_fixed():
    # sha256("hello") starts with 2cf24dba5fb0a30e: the documented rule, pinned
    assert bucket("hello") == int("2cf24dba5fb0a30e", 16) % 100
    assert split_of("hello") == "train"


def test_data_dir_conventional_names(tmp_path):
    for name, word in [("train.txt", "t"), ("dev.txt", "d"), ("test.txt", "s")]:
        _write(tmp_path / name, f"{word} O\n")
    _write(tmp_path / "README.md", "# not data\n")
    corpus = load_corpus("ner", "conll", data_dir=tmp_path)
    assert {k: v[0].words[0] for k, v in corpus.splits.items()} == {
        "train": "t",
        "validation": "d",
        "test": "s",
    }
    assert corpus.name == f"conll:{tmp_path}"
    # the format is inferred when dataset is None or a path
    assert load_corpus("ner", data_dir=tmp_path).splits == corpus.splits
    assert load_corpus("ner", tmp_path).splits == corpus.splits


def test_data_files_relative_to_data_dir_lists_and_globs(tmp_path):
    for i in range(3):
        _write(tmp_path / f"part-{i}.csv", f"text,label\ndoc {i},{i % 2}\n")
    _write(tmp_path / "eval.csv", "text,label\nheld out,1\n")
    corpus = load_corpus(
        "classification",
        "csv",
        data_dir=tmp_path,
        data_files={"train": "part-*.csv", "validation": ["eval.csv"], "test": "eval.csv"},
    )
    assert [ex.text for ex in corpus.split("train")] == ["doc 0", "doc 1", "doc 2"]
    assert corpus.split("validation") == corpus.split("test") == (TextExample("held out", "1"),)


def test_train_and_test_only_get_a_carved_validation(tmp_path):
    rows = "\n".join(f"document number {i},{'ab'[i % 2]}" for i in range(200))
    train = _write(tmp_path / "train.csv", "text,label\n" + rows + "\n")
    test = _write(tmp_path / "test.csv", "text,label\nt,a\n")
    corpus = load_corpus("classification", "csv", data_files={"train": train, "test": test})
    assert len(corpus.split("train")) + len(corpus.split("validation")) == 200
    assert all(80 <= bucket(ex.text) < 90 for ex in corpus.split("validation"))
    assert not any(80 <= bucket(ex.text) < 90 for ex in corpus.split("train"))
    assert corpus.split("test") == (TextExample("t", "a"),)


def test_csv_quoting_and_empty_text_kept(tmp_path):
    path = _write(
        tmp_path / "train.csv",
        'id,sentence,category\n1,"Hello, ""world""\nsecond line",sport\n2,,tech\n\n3,x, biz \n',
    )
    # a "test" split only: no validation is carved, so the file order is kept
    corpus = load_corpus("classification", "csv", data_files={"test": path})
    assert _all(corpus) == [
        TextExample('Hello, "world"\nsecond line', "sport"),
        TextExample("", "tech"),
        TextExample("x", "biz"),
    ]
    assert corpus.labels == ("biz", "sport", "tech")


def test_tsv_has_no_quoting(tmp_path):
    path = _write(tmp_path / "train.tsv", 'text\tlabel\n"quoted" start\t1\r\nplain\t0\r\n')
    corpus = load_corpus("classification", "tsv", data_files={"test": path})
    assert _all(corpus) == [TextExample('"quoted" start', "1"), TextExample("plain", "0")]


def test_jsonl_labels_become_strings_and_explicit_columns(tmp_path):
    records = [{"body": "good", "y": 1}, {"body": "bad", "y": 0}, {"body": "meh", "y": "2"}]
    path = _write(tmp_path / "d.jsonl", "\n".join(json.dumps(r) for r in records) + "\n\n")
    corpus = load_corpus(
        "classification", "jsonl", data_files={"test": path}, text_column="body", label_column="y"
    )
    assert _all(corpus) == [
        TextExample("good", "1"),
        TextExample("bad", "0"),
        TextExample("meh", "2"),
    ]


def test_json_array_file(tmp_path):
    path = _write(tmp_path / "train.json", json.dumps([{"document": "d", "summary": "s"}]))
    corpus = load_corpus("summarization", "json", data_files={"train": path})
    assert _all(corpus) == [Seq2SeqExample("d", "s")]


def test_summarization_default_and_explicit_columns(tmp_path):
    path = _write(tmp_path / "train.csv", "title,article,summary\nT,A body,S\n")
    assert _all(load_corpus("summarization", "csv", data_files={"train": path})) == [
        Seq2SeqExample("A body", "S")
    ]
    explicit = load_corpus(
        "summarization", "csv", data_files={"train": path}, target_column="title"
    )
    assert _all(explicit) == [Seq2SeqExample("A body", "T")]


def test_ner_jsonl(tmp_path):
    records = [
        {"tokens": ["John", "Smith", "runs"], "ner_tags": ["I-PER", "I-PER", "O"]},
        {"words": ["x"], "tags": ["O"]},
    ]
    path = _write(tmp_path / "train.jsonl", json.dumps(records[0]) + "\n")
    corpus = load_corpus("ner", path.parent)
    assert _all(corpus) == [NERExample(("John", "Smith", "runs"), ("B-PER", "I-PER", "O"))]
    other = _write(tmp_path / "other.jsonl", json.dumps(records[1]))
    assert _all(load_corpus("ner", "jsonl", data_files={"test": other})) == [
        NERExample(("x",), ("O",))
    ]


def test_memoised_per_arguments_and_file_state(tmp_path):
    path = _write(tmp_path / "train.txt", "a O\n")
    first = load_corpus("ner", "conll", data_files={"train": path})
    assert load_corpus("ner", "conll", data_files={"train": str(path)}) is first
    assert load_corpus("ner", "conll", data_files={"train": path}, tag_scheme="iob2") is not first
    _write(path, "a O\n\nb B-X\n")
    os.utime(path, ns=(1, 1))  # a new mtime even on coarse-clock file systems
    changed = load_corpus("ner", "conll", data_files={"train": path})
    assert changed is not first and len(_all(changed)) == 2


def test_fingerprint_depends_on_content_not_location(tmp_path):
    a = _write(tmp_path / "a.txt", "x O\n\ny B-T\n")
    b = _write(tmp_path / "b.conll", "x  POS  O\r\n\r\ny POS B-T\r\n")
    c = _write(tmp_path / "c.txt", "x O\n\ny B-U\n")
    fa, fb, fc = (
        load_corpus("ner", "conll", data_files={"train": p}).fingerprint for p in (a, b, c)
    )
    assert fa == fb != fc
    as_test = load_corpus("ner", "conll", data_files={"test": a}).fingerprint
    assert as_test != fa  # the split an example belongs to is content too


def test_decode_fallbacks(tmp_path):
    from textgym.corpora.textio import decode, read_text

    assert decode("é".encode()) == "é"
    assert decode(b"\xef\xbb\xbfx") == "x"
    assert decode(b"\xa3") == "£"
    assert decode(b"\x81") == "\x81"  # undefined in cp1252: Latin-1
    with pytest.raises(DataError, match="no such file"):
        read_text(tmp_path / "absent.txt")
