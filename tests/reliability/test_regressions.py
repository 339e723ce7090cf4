"""Bugs found by the reliability fuzzing, one test each (each failed before its fix)."""

from __future__ import annotations

import pytest

from textgym.corpora import NERExample, load_corpus
from textgym.errors import DataError

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
