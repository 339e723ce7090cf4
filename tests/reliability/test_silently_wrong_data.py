"""Data that used to load silently wrong or fail in the wrong place (issue 13, items 6-10
and 18), one test each; each failed before its fix.
"""

from __future__ import annotations

import json
import warnings

import gymnasium as gym
import pytest

import textgym  # noqa: F401  (registers the env ids)
from textgym.corpora import NERExample, Seq2SeqExample, clear_cache, load_corpus
from textgym.errors import DataError, TextgymError

JAPANESE = [["東京", "B-LOC"], ["に", "O"], ["行く", "O"]] * 3


def _conll(sentences) -> str:
    return "\n\n".join("\n".join(f"{w} {t}" for w, t in s) for s in sentences) + "\n"


@pytest.fixture(autouse=True)
def _fresh():
    clear_cache()
    yield
    clear_cache()


# ----- 6. one invalid byte does not turn a UTF-8 file into mojibake -------------------------


def test_one_invalid_byte_in_a_utf8_file_names_the_line_and_offset(tmp_path):
    """A single 0xFF at the start of line 5 of a Japanese file made the whole file load as
    cp1252 mojibake, with no warning."""
    text = _conll([JAPANESE[:3], JAPANESE[3:6]])
    lines = text.encode("utf-8").split(b"\n")
    offset = sum(len(line) + 1 for line in lines[:4])
    lines[4] = b"\xff" + lines[4]
    path = tmp_path / "train.txt"
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(DataError) as err:
        load_corpus("ner", "conll", data_files={"train": path})
    assert err.value.path == str(path) and err.value.line == 5
    message = str(err.value)
    assert f"byte 0xff at byte offset {offset} is not valid utf-8" in message
    assert "encoding=" in message
    # an explicit encoding is the user's choice: strict, and the whole file in it
    clear_cache()
    corpus = load_corpus("ner", "conll", data_files={"train": path}, encoding="latin-1")
    assert corpus.splits["train"][0].words[0] == "東京".encode().decode("latin-1")


def test_real_replacement_characters_are_not_counted_as_bad_bytes(tmp_path):
    """Found by the fuzzer at 1500 examples: two genuine U+FFFD characters and one bad byte
    were counted as three bad sequences against two good ones, and read as cp1252."""
    path = tmp_path / "data.csv"
    path.write_bytes(b"\x80text,label\n\xef\xbf\xbd,a\n\xef\xbf\xbd,a\n")
    with pytest.raises(DataError) as err:
        load_corpus("classification", "csv", data_files={"train": path})
    assert err.value.line == 1 and "byte 0x80 at byte offset 0" in str(err.value)


def test_a_wholly_cp1252_file_is_still_read_as_cp1252(tmp_path):
    path = tmp_path / "train.txt"
    path.write_bytes(_conll([[["Café", "B-LOC"], ["£5", "O"]]]).encode("cp1252"))
    corpus = load_corpus("ner", "conll", data_files={"train": path, "test": path})
    assert corpus.split("test")[0] == NERExample(("Café", "£5"), ("B-LOC", "O"))


def test_the_encoding_kwarg_reads_a_file_in_that_codec_and_reaches_the_env(tmp_path):
    path = tmp_path / "train.txt"
    path.write_bytes(_conll([JAPANESE]).encode("shift_jis"))
    files = {"train": path, "test": path}
    corpus = load_corpus("ner", "conll", data_files=files, encoding="shift_jis")
    assert corpus.split("test")[0].words[:3] == ("東京", "に", "行く")
    env = gym.make("TextNER-v0", dataset="conll", data_files=files, encoding="shift_jis")
    assert env.unwrapped.examples[0].words[0] == "東京"
    with pytest.raises(DataError, match=r"train\.txt, line 1: .* is not valid utf-8"):
        load_corpus("ner", "conll", data_files=files, encoding="utf-8")
    with pytest.raises(TextgymError, match="unknown encoding 'utf-9'"):
        load_corpus("ner", "conll", data_files=files, encoding="utf-9")
    with pytest.raises(TextgymError, match="encoding= applies to text files"):
        load_corpus("ner", "wnut16", encoding="utf-8")


# ----- 7. data_dir takes split files only ---------------------------------------------------


def test_data_dir_ignores_files_that_only_contain_a_split_word(tmp_path):
    """train_backup.txt doubled train; test_predictions.txt mixed predicted tags into test."""
    (tmp_path / "train.txt").write_text(_conll([[["a", "B-PER"]], [["b", "O"]]]))
    (tmp_path / "train_backup.txt").write_text(_conll([[["a", "B-PER"]], [["b", "O"]]]))
    (tmp_path / "valid.txt").write_text(_conll([[["v", "O"]]]))
    (tmp_path / "test.txt").write_text(_conll([[["c", "B-LOC"]]]))
    (tmp_path / "test_predictions.txt").write_text(_conll([[["c", "B-ORG"]]]))
    corpus = load_corpus("ner", "conll", data_dir=tmp_path)
    assert {k: len(v) for k, v in corpus.splits.items()} == {
        "train": 2,
        "validation": 1,
        "test": 1,
    }
    assert corpus.split("test")[0].tags == ("B-LOC",)
    assert "B-ORG" not in corpus.labels


def test_data_dir_with_two_files_for_one_split_fails_clearly(tmp_path):
    (tmp_path / "train.txt").write_text(_conll([[["a", "O"]]]))
    (tmp_path / "train.conll").write_text(_conll([[["b", "O"]]]))
    with pytest.raises(DataError, match=r"several files claim the train split \(train\.conll"):
        load_corpus("ner", "conll", data_dir=tmp_path)


def test_conll2003_file_names_still_work(tmp_path):
    for name, word in (("eng.train", "a"), ("eng.testa", "b"), ("eng.testb", "c")):
        (tmp_path / name).write_text(_conll([[[word, "O"]]]))
    corpus = load_corpus("ner", "conll", data_dir=tmp_path)
    assert [ex.words for s in ("train", "validation", "test") for ex in corpus.split(s)] == [
        ("a",),
        ("b",),
        ("c",),
    ]


# ----- 8. a column or key named twice -------------------------------------------------------


@pytest.mark.parametrize("header", ["text,text,label", "text, text ,label"])
def test_a_csv_header_with_a_duplicated_column_is_refused(tmp_path, header):
    path = tmp_path / "data.csv"
    path.write_text(f"{header}\nfirst,second,sport\n")
    with pytest.raises(DataError) as err:
        load_corpus("classification", str(path))
    assert err.value.line == 1
    assert "names column 'text' twice (columns 1 and 2)" in str(err.value)


def test_a_json_object_with_a_duplicated_key_is_refused(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_text('{"text": "a", "label": "x"}\n{"text": "a", "text": "b", "label": "x"}\n')
    with pytest.raises(DataError) as err:
        load_corpus("classification", str(path))
    assert err.value.line == 2 and "has the key 'text' twice" in str(err.value)


# ----- 9. only ASCII spaces and tabs separate CoNLL columns --------------------------------


def test_unicode_whitespace_inside_a_conll_word_stays_in_the_word(tmp_path):
    path = tmp_path / "train.txt"
    text = "10\u00a0000 O\n\u3000 O\nTokyo\tNNP\tB-LOC\n\u3000\n\nnext O\n"
    path.write_text(text, encoding="utf-8")
    corpus = load_corpus("ner", "conll", data_files={"train": path, "test": path})
    assert list(corpus.split("test")) == [
        NERExample(("10\u00a0000", "\u3000", "Tokyo"), ("O", "O", "B-LOC")),
        NERExample(("next",), ("O",)),
    ]


# ----- 10. empty summary targets ------------------------------------------------------------


def test_an_empty_summary_target_is_an_error_naming_file_and_line(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("source,target\nan article,a title\nanother article,  \nthird,t\n")
    with pytest.raises(DataError) as err:
        load_corpus("summarization", str(path))
    assert err.value.path == str(path) and err.value.line == 3
    assert "empty summary target (field 'target')" in str(err.value)
    assert "empty_targets='drop'" in str(err.value)


def test_empty_targets_drop_leaves_them_out_with_a_counting_warning(tmp_path):
    path = tmp_path / "data.jsonl"
    rows = [("a", "x"), ("b", ""), ("c", "y"), ("d", " ")]
    path.write_text("".join(json.dumps({"source": s, "target": t}) + "\n" for s, t in rows))
    files = {"train": path, "test": path}
    with pytest.warns(UserWarning, match=r"data\.jsonl: left out 2 examples with an empty"):
        corpus = load_corpus("summarization", "jsonl", data_files=files, empty_targets="drop")
    assert list(corpus.split("test")) == [Seq2SeqExample("a", "x"), Seq2SeqExample("c", "y")]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = gym.make(
            "TextSummarization-v0", dataset="jsonl", data_files=files, empty_targets="drop"
        )
    assert env.unwrapped.num_examples == 2
    with pytest.raises(TextgymError, match="unknown empty_targets 'skip'"):
        load_corpus("summarization", "jsonl", data_files=files, empty_targets="skip")


# ----- 18. an unterminated CSV quote is reported where it opens ---------------------------


@pytest.mark.parametrize(
    ("content", "line"),
    [
        ('text,label\na,b\n"never closed,x\nc,d\ne,f\n', 3),  # too few fields at the end
        ('text,label\nhello,"sport\nworld,tech\nx,y\n', 2),  # swallowed the rest silently
        ('text,label\r\nok,"fine\r\nacross lines"\r\nbad,"open\r\nmore', 4),
    ],
)
def test_an_unterminated_csv_quote_is_reported_where_it_opens(tmp_path, content, line):
    path = tmp_path / "data.csv"
    path.write_bytes(content.encode())
    with pytest.raises(DataError) as err:
        load_corpus("classification", str(path))
    assert err.value.line == line
    assert "a quoted field opens on this line and is never closed" in str(err.value)


def test_quoted_fields_across_lines_that_close_still_load(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text('text,label\n"two\nlines",a\n"say ""hi""",b\nx"y,c\n', newline="")
    corpus = load_corpus("classification", "csv", data_files={"train": path, "test": path})
    assert [ex.text for ex in corpus.split("test")] == ["two\nlines", 'say "hi"', 'x"y']
