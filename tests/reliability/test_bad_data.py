"""Bad data files load correctly or fail with a DataError naming the file (and line).

The fuzz tests tally every generated file (see ``badfiles.COUNTS``; printed at the end of
the run). The round-trip tests check "loads correctly" exactly: files that are valid
but noisy (BOM, CRLF or CR line ends, separator lines of any whitespace, extra columns,
UTF-16 or cp1252) give back exactly the examples that were written.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
from collections import Counter

import numpy as np
import pytest
from badfiles import (
    INVALID_UTF8,
    attempt,
    attempt_data_dir,
    bad_files,
    data_dirs,
    fresh_dir,
    memoised_tokenizer_loading,
)
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from textgym.corpora import NERExample, Seq2SeqExample, TextExample, clear_cache, load_corpus
from textgym.errors import DataError

# TEXTGYM_FUZZ_EXAMPLES=2000 for a longer hunt; 120 per format keeps the suite quick.
FUZZ = settings(
    max_examples=int(os.environ.get("TEXTGYM_FUZZ_EXAMPLES", "120")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    """A directory for the generated files; tokenized-array caches go there and go away."""
    base = tmp_path_factory.mktemp("bad_data")
    with pytest.MonkeyPatch.context() as mp:
        memoised_tokenizer_loading(mp)
        mp.setenv("TEXTGYM_CACHE_DIR", str(base / "cache"))
        yield base
    shutil.rmtree(base, ignore_errors=True)  # each cache file holds the tokenizer (~0.7 MB)


@pytest.mark.parametrize("fmt", ["conll", "csv", "tsv", "jsonl", "json"])
def test_generated_bad_files_load_or_fail_clearly(fmt, workdir):
    rng = np.random.default_rng(0)

    @FUZZ
    @given(spec=bad_files(fmt))
    def check(spec):
        try:
            attempt(spec, fresh_dir(workdir), rng)
        except AssertionError:
            raise
        except Exception as err:  # the point of the test: say which input did this
            raise AssertionError(f"{type(err).__name__} for {spec['log']}: {err}") from err

    check()


@FUZZ
@given(spec=data_dirs())
def test_generated_data_dirs_with_stray_files_load_exactly_their_split_files(
    tmp_path_factory, spec
):
    """train_backup.txt, test_predictions.txt, README.md... beside the split files are never
    read; a second file for one split (train.txt.bak, eng.testa) is an error."""
    clear_cache()
    attempt_data_dir(spec, fresh_dir(tmp_path_factory.getbasetemp()))


@FUZZ
@given(
    data=st.data(),
    fmt=st.sampled_from(["conll", "csv", "jsonl"]),
    bad=st.sampled_from(INVALID_UTF8),
)
def test_one_invalid_byte_in_a_utf8_file_is_reported_at_its_line(tmp_path_factory, data, fmt, bad):
    """A file with non-ASCII UTF-8 text and one invalid byte used to load whole as cp1252
    mojibake, silently; now the error names the line and the byte offset."""
    alphabet = st.characters(min_codepoint=0xA0, exclude_categories=("Cs", "Zs", "Zl", "Zp"))
    word = st.text(alphabet.filter(lambda c: not c.isspace()), min_size=1, max_size=6)
    n = data.draw(st.integers(2, 8))
    words = data.draw(st.lists(word, min_size=n, max_size=n))
    if fmt == "conll":
        lines = [f"{w} O" for w in words]
    elif fmt == "csv":
        lines = ["text,label", *[f"{w},a" for w in words]]
    else:
        lines = [json.dumps({"text": w, "label": "a"}, ensure_ascii=False) for w in words]
    encoded = [line.encode("utf-8") for line in lines]
    line = data.draw(st.integers(0, len(encoded) - 1))
    column = data.draw(st.integers(0, len(encoded[line])))
    while column < len(encoded[line]) and encoded[line][column] & 0xC0 == 0x80:
        column += 1  # between two characters, never inside one
    offset = sum(len(e) + 1 for e in encoded[:line]) + column
    encoded[line] = encoded[line][:column] + bytes([bad]) + encoded[line][column:]
    path = fresh_dir(tmp_path_factory.getbasetemp()) / f"train.{'txt' if fmt == 'conll' else fmt}"
    path.write_bytes(b"\n".join(encoded) + b"\n")
    task = "ner" if fmt == "conll" else "classification"
    clear_cache()
    with pytest.raises(DataError) as err:
        load_corpus(task, fmt, data_files={"train": path})
    assert err.value.path == str(path) and err.value.line == line + 1, str(err.value)
    assert f"byte 0x{bad:02x} at byte offset {offset} is not valid utf-8" in str(err.value)


# ----- exact round trips of valid files with tolerated noise ----------------------------

GOOD_TAGS = st.sampled_from(["O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC"])
# cp1252/Latin-1 text stays unambiguous (never valid UTF-8) with letters U+00C0-U+00FF only.
LATIN = st.characters(codec="ascii") | st.characters(min_codepoint=0xC0, max_codepoint=0xFF)


def _ner_sentences(alphabet):
    # only ASCII spaces and tabs separate CoNLL columns: other whitespace is part of a word
    word = st.text(alphabet.filter(lambda c: c not in " \t\r\n"), min_size=1, max_size=8).filter(
        lambda w: w != "-DOCSTART-" and not w.isspace()
    )
    pair = st.tuples(word, GOOD_TAGS)
    return st.lists(st.lists(pair, min_size=1, max_size=6), min_size=1, max_size=6)


def _iob2(tags):
    out, prev = [], "O"
    for tag in tags:
        if tag[0] == "I" and (prev == "O" or prev[2:] != tag[2:]):
            tag = "B" + tag[1:]
        out.append(tag)
        prev = tag
    return tuple(out)


def _encode(text: str, encoding: str) -> bytes:
    return text.encode(encoding)


def _all(corpus):
    return Counter(ex for examples in corpus.splits.values() for ex in examples)


ENCODING = st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"])


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    encoding=ENCODING,
    eol=st.sampled_from(["\n", "\r\n", "\r"]),
)
def test_noisy_valid_conll_round_trips(tmp_path_factory, data, encoding, eol):
    alphabet = LATIN if encoding == "cp1252" else st.characters(exclude_categories=("Cs",))
    sentences = data.draw(_ner_sentences(alphabet))
    lines = []
    if data.draw(st.booleans()):
        lines += ["-DOCSTART- -X- -X- O", ""]
    for sentence in sentences:
        for w, t in sentence:
            sep = data.draw(st.sampled_from([" ", "\t", "  "]))
            middle = data.draw(st.lists(st.sampled_from(["NNP", "B-NP"]), max_size=2))
            lines.append(sep.join([w, *middle, t]) + data.draw(st.sampled_from(["", " ", "\t"])))
        lines += data.draw(
            st.lists(
                st.sampled_from(["", " ", "\t", "\x0c", "-DOCSTART- O"]), min_size=1, max_size=3
            )
        )
    path = fresh_dir(tmp_path_factory.getbasetemp()) / "train.txt"
    path.write_bytes(_encode(eol.join(lines), encoding))
    corpus = load_corpus("ner", "conll", data_files=str(path))
    expected = Counter(
        NERExample(tuple(w for w, _ in s), _iob2([t for _, t in s])) for s in sentences
    )
    assert _all(corpus) == expected


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    encoding=ENCODING,
    eol=st.sampled_from(["\n", "\r\n", "\r"]),
    task=st.sampled_from(["classification", "summarization"]),
)
def test_noisy_valid_csv_round_trips(tmp_path_factory, data, encoding, eol, task):
    alphabet = LATIN if encoding == "cp1252" else st.characters(exclude_categories=("Cs",))
    text = st.text(alphabet, max_size=30)
    label = st.text(alphabet, min_size=1, max_size=8).map(str.strip).filter(bool)
    target = text.filter(lambda t: t.strip())  # an empty summary target is an error
    rows = data.draw(
        st.lists(
            st.tuples(text, label if task == "classification" else target), min_size=1, max_size=8
        )
    )
    header = ["text", "label"] if task == "classification" else ["source", "target"]
    out = io.StringIO()
    # Python's writer quotes a field holding CR or LF only when the terminator holds it.
    broken = any("\r" in f or "\n" in f for row in rows for f in row)
    quoting = csv.QUOTE_ALL if broken else csv.QUOTE_MINIMAL
    csv.writer(out, lineterminator=eol, quoting=quoting).writerows([header, *rows])
    path = fresh_dir(tmp_path_factory.getbasetemp()) / "data.csv"
    path.write_bytes(_encode(out.getvalue(), encoding))
    corpus = load_corpus(task, str(path))
    cls = TextExample if task == "classification" else Seq2SeqExample
    assert _all(corpus) == Counter(cls(a, b) for a, b in rows)


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    encoding=ENCODING,
    eol=st.sampled_from(["\n", "\r\n", "\r"]),
    as_array=st.booleans(),
)
def test_noisy_valid_jsonl_round_trips(tmp_path_factory, data, encoding, eol, as_array):
    alphabet = LATIN if encoding == "cp1252" else st.characters(exclude_categories=("Cs",))
    sentences = data.draw(_ner_sentences(alphabet))
    records = [{"tokens": [w for w, _ in s], "ner_tags": [t for _, t in s]} for s in sentences]
    dumped = [json.dumps(r, ensure_ascii=data.draw(st.booleans())) for r in records]
    if as_array:
        text = "[" + ("," + eol).join(dumped) + "]"
    else:
        blank = data.draw(st.sampled_from(["", " ", "\t"]))
        text = eol.join(d + eol + blank for d in dumped)
    path = fresh_dir(tmp_path_factory.getbasetemp()) / ("data.json" if as_array else "data.jsonl")
    path.write_bytes(_encode(text, encoding))
    corpus = load_corpus("ner", str(path))
    expected = Counter(NERExample(tuple(r["tokens"]), _iob2(r["ner_tags"])) for r in records)
    assert _all(corpus) == expected


# ----- the line of a bad line, exactly ----------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    before=_ner_sentences(st.characters(codec="ascii")),
    problem=st.sampled_from(["no tag column", "not an IOB tag"]),
    eol=st.sampled_from(["\n", "\r\n", "\r"]),
    bom=st.booleans(),
)
def test_conll_error_names_file_and_line(tmp_path_factory, before, problem, eol, bom):
    lines = []
    for sentence in before:
        lines += [f"{w} {t}" for w, t in sentence] + ["\t"]
    bad = "lonely" if problem == "no tag column" else "lonely B_PER"
    lines.append(bad)
    path = fresh_dir(tmp_path_factory.getbasetemp()) / "eng.train"
    path.write_text(
        ("\ufeff" if bom else "") + eol.join([*lines, "x O"]), encoding="utf-8", newline=""
    )
    with pytest.raises(DataError) as err:
        load_corpus("ner", "conll", data_files={"train": path})
    assert err.value.path == str(path) and err.value.line == len(lines)
    assert f"{path}, line {len(lines)}: " in str(err.value) and problem in str(err.value)


@settings(max_examples=40, deadline=None)
@given(
    good=st.lists(st.tuples(st.text(max_size=10), st.sampled_from(["a", "b"])), max_size=6),
    fmt=st.sampled_from(["csv", "tsv", "jsonl"]),
    eol=st.sampled_from(["\n", "\r\n"]),
)
def test_tabular_error_names_file_and_line(tmp_path_factory, good, fmt, eol):
    if fmt == "jsonl":
        lines = [json.dumps({"text": t, "label": y}) for t, y in good]
        lines.append('{"text": "cut here", "lab')
    elif fmt == "tsv":
        assume(all("\t" not in t and "\n" not in t and "\r" not in t for t, _ in good))
        lines = ["text\tlabel", *[f"{t}\t{y}" for t, y in good], "one field only"]
    else:
        assume(all("\n" not in t and "\r" not in t for t, _ in good))
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows([["text", "label"], *good])
        lines = [*out.getvalue().split("\n")[:-1], "a,b,c"]
    path = fresh_dir(tmp_path_factory.getbasetemp()) / f"data.{fmt}"
    path.write_text(eol.join(lines) + eol, encoding="utf-8", newline="")
    with pytest.raises(DataError) as err:
        load_corpus("classification", str(path))
    assert err.value.path == str(path) and err.value.line == len(lines), str(err.value)


def test_empty_and_whitespace_only_files_fail_clearly(tmp_path):
    for name, task in [("e.txt", "ner"), ("e.csv", "classification"), ("e.jsonl", "summarization")]:
        for content in (b"", b"\n\r\n \t\n", b"\xef\xbb\xbf"):
            path = tmp_path / name
            path.write_bytes(content)
            clear_cache()
            with pytest.raises(
                DataError, match=rf"{name}: (no examples|empty file|no text column)"
            ):
                load_corpus(task, str(path))
