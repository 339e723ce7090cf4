"""Bad input: every problem is a TextgymError/DataError naming the file and line."""

from __future__ import annotations

import re

import pytest

from textgym.corpora import load_corpus
from textgym.errors import DataError, TextgymError


def _write(path, text):
    path.write_text(text, encoding="utf-8", newline="")
    return path


def _ner(path, **kwargs):
    return load_corpus("ner", "conll", data_files={"train": path}, **kwargs)


def test_conll_line_without_tag_column(tmp_path):
    path = _write(tmp_path / "no_tag.txt", "EU B-ORG\nrejects O\n\nlonely\n")
    with pytest.raises(DataError) as err:
        _ner(path)
    assert str(path) in str(err.value) and "line 4" in str(err.value)
    assert "'lonely'" in str(err.value) and "no tag column" in str(err.value)
    assert err.value.path == str(path) and err.value.line == 4


@pytest.mark.parametrize("tag", ["PER", "B_PER", "B-", "X-LOC", "o"])
def test_conll_tag_not_iob(tmp_path, tag):
    path = _write(tmp_path / "bad_tag.txt", f"a O\r\nb {tag}\r\n")
    with pytest.raises(DataError, match=rf"bad_tag\.txt, line 2: tag '{re.escape(tag)}' is not"):
        _ner(path)


def test_strict_iob2_rejects_i_tag_starting_an_entity(tmp_path):
    path = _write(tmp_path / "iob1.txt", "a O\nb I-PER\n")
    with pytest.raises(DataError, match=r"iob1\.txt, line 2: tag 'I-PER' starts an entity"):
        _ner(path, tag_scheme="iob2")
    assert _ner(path).split("train")[0].tags == ("O", "B-PER")


def test_ner_jsonl_bad_records(tmp_path):
    path = _write(
        tmp_path / "ner.jsonl",
        '{"tokens": ["a"], "ner_tags": ["O"]}\n{"tokens": ["a", "b"], "ner_tags": ["O"]}\n',
    )
    with pytest.raises(DataError, match=r"ner\.jsonl, line 2: 2 words but 1 tags"):
        load_corpus("ner", path)
    path = _write(tmp_path / "tags.jsonl", '{"tokens": ["a"], "ner_tags": ["Z"]}\n')
    with pytest.raises(DataError, match=r"tags\.jsonl, line 1: tag 'Z' is not an IOB tag"):
        load_corpus("ner", path)
    path = _write(tmp_path / "empty.jsonl", '{"tokens": [], "ner_tags": []}\n')
    with pytest.raises(DataError, match=r"empty\.jsonl, line 1: empty sentence"):
        load_corpus("ner", path)


@pytest.mark.parametrize("content", ["", "\n\t\n  \n", "-DOCSTART- -X- -X- O\n\n"])
def test_empty_conll_split(tmp_path, content):
    good = _write(tmp_path / "train.txt", "a O\n")
    empty = _write(tmp_path / "test.txt", content)
    with pytest.raises(DataError, match=r"test\.txt: no examples in this file \(the test split"):
        load_corpus("ner", "conll", data_files={"train": good, "test": empty})


def test_empty_csv_and_header_only(tmp_path):
    path = _write(tmp_path / "empty.csv", "")
    with pytest.raises(DataError, match=r"empty\.csv: empty file: no header row"):
        load_corpus("classification", path)
    path = _write(tmp_path / "header.csv", "text,label\n")
    with pytest.raises(DataError, match=r"header\.csv: no examples"):
        load_corpus("classification", path)


def test_missing_files_and_directories(tmp_path):
    with pytest.raises(DataError, match=r"absent\.txt: no such file"):
        _ner(tmp_path / "absent.txt")
    with pytest.raises(DataError, match=r"nowhere: no such directory"):
        load_corpus("ner", "conll", data_dir=tmp_path / "nowhere")
    with pytest.raises(DataError, match=r"gone\.csv: no such file or directory"):
        load_corpus("classification", str(tmp_path / "gone.csv"))
    with pytest.raises(DataError, match=r"no file matches"):
        _ner(str(tmp_path / "*.conll"))
    with pytest.raises(DataError, match=r"found no train/validation/test files.*notes\.txt"):
        _write(tmp_path / "notes.txt", "a O\n")
        load_corpus("ner", "conll", data_dir=tmp_path)


def test_json_syntax_error_and_non_object(tmp_path):
    path = _write(tmp_path / "bad.jsonl", '{"text": "a", "label": 1}\n\n{"text": "b", "label": }\n')
    with pytest.raises(DataError, match=r"bad\.jsonl, line 3: invalid JSON"):
        load_corpus("classification", path)
    path = _write(tmp_path / "list.jsonl", '{"text": "a", "label": 1}\n[1, 2]\n')
    with pytest.raises(DataError, match=r"list\.jsonl, line 2: expected a JSON object"):
        load_corpus("classification", path)
    path = _write(tmp_path / "field.jsonl", '{"text": "a", "label": 1}\n{"text": "b"}\n')
    with pytest.raises(DataError, match=r"field\.jsonl, line 2: missing field 'label'"):
        load_corpus("classification", path)
    path = _write(tmp_path / "null.jsonl", '{"text": "a", "label": null}\n')
    with pytest.raises(DataError, match=r"null\.jsonl, line 1: field 'label' is None"):
        load_corpus("classification", path)


def test_missing_csv_column(tmp_path):
    path = _write(tmp_path / "cols.csv", "body,stars\nnice,5\n")
    with pytest.raises(DataError) as err:
        load_corpus("classification", path)
    msg = str(err.value)
    assert "cols.csv" in msg and "no text column" in msg and "'body', 'stars'" in msg
    with pytest.raises(DataError, match=r"cols\.csv: no column 'review' \(text_column\).*'body'"):
        load_corpus("classification", path, text_column="review", label_column="stars")
    assert load_corpus("classification", path, text_column="body", label_column="stars").labels == (
        "5",
    )


def test_tsv_field_count_and_empty_label(tmp_path):
    path = _write(tmp_path / "ragged.tsv", "sentence\tlabel\nok\t1\ntab\tinside\t0\n")
    with pytest.raises(DataError, match=r"ragged\.tsv, line 3: row has 3 fields, the header has 2"):
        load_corpus("classification", path)
    path = _write(tmp_path / "nolabel.csv", "text,label\nfine,1\nunlabelled,\n")
    with pytest.raises(
        DataError, match=r"nolabel\.csv, line 3: field 'label' is '', expected a non-empty"
    ):
        load_corpus("classification", path)


def test_unknown_task_split_scheme_and_format():
    with pytest.raises(
        TextgymError, match="unknown task 'tagging'; valid tasks: ner, classification"
    ):
        load_corpus("tagging")
    with pytest.raises(TextgymError, match="unknown tag_scheme 'bioes'"):
        load_corpus("ner", tag_scheme="bioes")
    with pytest.raises(TextgymError, match=r"unknown split 'extra' in data_files; valid splits"):
        load_corpus("ner", "conll", data_files={"extra": "x.txt"})
    with pytest.raises(TextgymError, match="'conll' files cannot hold classification data"):
        load_corpus("classification", "conll", data_dir=".")
    with pytest.raises(TextgymError, match="reads local files: give data_files"):
        load_corpus("classification", "csv")
    with pytest.raises(TextgymError, match="'sst2' provides classification, not ner"):
        load_corpus("ner", "sst2")


def test_format_cannot_be_inferred(tmp_path):
    path = _write(tmp_path / "train.txt", "some text\n")
    with pytest.raises(TextgymError, match=r"cannot tell the format of .*train\.txt"):
        load_corpus("classification", data_files={"train": path})


def test_unknown_dataset_lists_known_ones(hf_offline):
    with pytest.raises(TextgymError) as err:
        load_corpus("ner", "no-such-corpus")
    msg = str(err.value)
    assert "unknown dataset 'no-such-corpus'" in msg
    assert "wnut16" in msg and "conll2003" in msg and 'dataset="conll"' in msg


def test_no_raw_exception_on_binary_garbage(tmp_path):
    path = tmp_path / "train.txt"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(DataError, match=r"train\.txt, line \d+"):
        _ner(path)
