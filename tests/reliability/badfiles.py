"""Malformed data files (hypothesis strategies) and the oracle that judges how they load.

A generated file starts as plausible content for its format (CoNLL, CSV, TSV, JSON Lines,
a JSON array), goes through a few line-level mutations (a dropped tag column, a tag
outside IOB, whitespace-only lines, a huge line, NUL characters, a cut line, deep JSON
nesting, ...) and is then written with byte-level noise: line endings (LF, CRLF, CR, mixed),
an encoding (UTF-8 with or without BOM, cp1252, Latin-1, UTF-16, lines of mixed
encodings), a truncation at any byte, stray bytes and single invalid bytes in otherwise
valid UTF-8. Mutations include Unicode whitespace inside words and fields, duplicated
header columns and JSON keys; :func:`data_dirs` makes directories of split files with
stray files beside them.

:func:`attempt` loads it and sorts the outcome into ``COUNTS``: ``loaded`` (the corpus
is well-formed and an env built on it runs), ``failed_clearly`` (a textgym error naming
the file, and the line for a problem on one line) or ``failed_badly`` (anything else:
the test then fails).
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import json
import os
import re
from collections import Counter
from pathlib import Path

import gymnasium as gym
import numpy as np
from hypothesis import strategies as st

import textgym  # noqa: F401  (registers the env ids)
from textgym.corpora import load_corpus
from textgym.corpora.conll import to_iob2
from textgym.errors import DataError, TextgymError
from textgym.tokenizer import TextTokenizer

COUNTS: Counter = Counter(tried=0, loaded=0, failed_clearly=0, failed_badly=0)

IOB_TAGS = ("O", "O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "I-ORG", "B-MISC")
BAD_TAGS = ("PER", "B_PER", "B-", "X-LOC", "o", "I", "-", "0", "b-per", "B-PER\x00", "Ｂ-PER")
GOOD_LABELS = ("sport", "tech", "business", " politics ", "1", "0")
LABELS = (*GOOD_LABELS, "", "  ")

TASKS = {
    "conll": ("ner",),
    "csv": ("classification", "summarization"),
    "tsv": ("classification", "summarization"),
    "jsonl": ("ner", "classification", "summarization"),
    "json": ("ner", "classification", "summarization"),
}
EXTENSIONS = {"conll": (".txt", ".conll"), "csv": (".csv",), "tsv": (".tsv",)}
EXTENSIONS.update(jsonl=(".jsonl", ".ndjson"), json=(".json",))

# Any character a file can hold (lone surrogates cannot be encoded; JSON escapes them).
chars = st.characters(exclude_categories=("Cs",))
texts = st.text(chars, max_size=24)
tsv_texts = st.text(chars.filter(lambda c: c not in "\t\r\n"), max_size=24)
json_texts = st.text(st.characters(), max_size=16)  # lone surrogates included
# A CoNLL word: anything but the column separators (ASCII space, tab) and line ends; other
# Unicode whitespace (U+00A0, U+3000, U+2028, \x0b, \x1c ...) belongs to the word.
UNICODE_SPACES = "\u00a0\u3000\u2028\u2029\u2009\u200a\x0b\x0c\x1c\x1d\x1e\x1f\x85"
words = st.text(
    chars.filter(lambda c: c not in " \t\r\n") | st.sampled_from(UNICODE_SPACES),
    min_size=1,
    max_size=10,
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | json_texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(json_texts, inner, max_size=3),
    max_leaves=6,
)


# ----- plausible content ------------------------------------------------------------------


@st.composite
def conll_lines(draw) -> list[str]:
    lines: list[str] = []
    if draw(st.booleans()):
        lines += ["-DOCSTART- -X- -X- O", ""]
    for _ in range(draw(st.integers(1, 5))):
        sep = draw(st.sampled_from([" ", "\t", "  "]))
        for _ in range(draw(st.integers(1, 5))):
            middle = draw(st.lists(st.sampled_from(["NNP", "VBZ", "B-NP", "-X-"]), max_size=2))
            lines.append(sep.join([draw(words), *middle, draw(st.sampled_from(IOB_TAGS))]))
        lines.append(draw(st.sampled_from(["", "", " ", "\t", "-DOCSTART- -X- O O"])))
    return lines


def _columns(task: str, clean: bool):
    if task == "classification":
        good = [["text", "label"], ["sentence", "label"], ["label", "text", "id"]]
        bad = [["text"], ["foo", "bar"], ["text", "text", "label"], [" text ", "labels"]]
        label = st.sampled_from(GOOD_LABELS if clean else LABELS)
        value = {"label": label, "labels": label}
    else:
        good = [["source", "target"], ["article", "summary"], ["document", "title", "id"]]
        bad = [["source"], ["foo", "bar"], ["text", "text"], ["source", "target", "source"]]
        value = {}
    return st.sampled_from(good if clean else good + bad), value


@st.composite
def delimited_lines(draw, task: str, fmt: str, clean: bool) -> list[str]:
    headers, value = _columns(task, clean)
    header = draw(headers)
    text = tsv_texts if clean and fmt == "tsv" else texts
    rows = [header]
    for _ in range(draw(st.integers(0 if not clean else 1, 6))):
        rows.append([draw(value.get(name.strip(), text)) for name in header])
    if fmt == "csv":
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerows(rows)
        return out.getvalue().split("\n")[:-1]
    return ["\t".join(row) for row in rows]  # tabs and newlines in a field break rows


@st.composite
def json_records(draw, task: str, clean: bool) -> list[dict]:
    records = []
    for _ in range(draw(st.integers(1 if clean else 0, 5))):
        if clean or draw(st.booleans()):  # a record of the right shape, with plausible values
            if task == "ner":
                n = draw(st.integers(1 if clean else 0, 4))
                tags = st.sampled_from(IOB_TAGS if clean else IOB_TAGS + BAD_TAGS[:2])
                record = {
                    draw(st.sampled_from(["tokens", "words"])): draw(
                        st.lists(words, min_size=n, max_size=n)
                    ),
                    draw(st.sampled_from(["ner_tags", "tags"])): draw(
                        st.lists(tags, min_size=n, max_size=n)
                    ),
                }
            elif task == "classification":
                label = (
                    st.sampled_from(GOOD_LABELS) if clean else st.sampled_from(LABELS) | json_values
                )
                record = {"text": draw(json_texts), "label": draw(label)}
            else:
                target = json_texts if clean else json_texts | json_values
                record = {"source": draw(json_texts), "target": draw(target)}
        else:
            keys = ["text", "label", "source", "target", "tokens", "ner_tags", "x"]
            record = draw(st.dictionaries(st.sampled_from(keys), json_values, max_size=3))
        records.append(record)
    return records


@st.composite
def json_lines(draw, task: str, array: bool, clean: bool) -> list[str]:
    records = draw(json_records(task, clean))
    ascii_only = draw(st.booleans())
    dumped = [json.dumps(r, ensure_ascii=ascii_only) for r in records]
    if array:
        return ["[", *[d + "," for d in dumped[:-1]], *dumped[-1:], "]"]
    if not clean and draw(st.booleans()) and records:
        dumped[draw(st.integers(0, len(dumped) - 1))] = json.dumps(draw(json_values))
    return dumped


# ----- mutations ----------------------------------------------------------------------------


def _pos(draw, seq, extra: int = 0) -> int:
    return draw(st.integers(0, max(len(seq) - 1 + extra, 0)))


@st.composite
def mutate(draw, lines: list[str], fmt: str) -> tuple[list[str], list[str]]:
    """Apply up to three line-level mutations; returns (lines, names of the mutations)."""
    names = draw(
        st.lists(
            st.sampled_from(
                [
                    "drop_last_column", "bad_tag", "whitespace_line", "huge_line", "nul",
                    "cut_line", "garbage_line", "empty_file", "deep_nesting", "control_word",
                    "huge_number", "duplicate_key", "unicode_space",
                ]
            ),
            max_size=3,
        )
    )  # fmt: skip
    lines = list(lines)
    for name in names:
        i = _pos(draw, lines)
        if name == "empty_file":
            lines = []
        elif name == "whitespace_line":
            ws = draw(
                st.text(
                    st.sampled_from(" \t\x0b\x0c\u00a0\u3000\u2028\x1c"), min_size=1, max_size=4
                )
            )
            lines.insert(_pos(draw, lines, 1), ws)
        elif name == "garbage_line":
            lines.insert(_pos(draw, lines, 1), draw(texts))
        elif name == "deep_nesting":
            depth = draw(st.sampled_from([50, 999, 1_500, 100_000]))
            nested = "[" * depth + "]" * depth
            lines.insert(
                _pos(draw, lines, 1), f'{{"text": {nested}, "label": "a", "tokens": {nested}}}'
            )
        elif name == "huge_number":  # Python refuses int("1" * 4301) by default
            big = "1" * draw(st.sampled_from([20, 4_301, 50_000]))
            lines.insert(
                _pos(draw, lines, 1), f'{{"text": {big}, "label": {big}, "tokens": [{big}]}}'
            )
        elif name == "duplicate_key":  # JSON keeps the last of two equal keys silently
            key = draw(st.sampled_from(["text", "label", "source", "target", "tokens"]))
            lines.insert(
                _pos(draw, lines, 1),
                f'{{"{key}": "a", "text": "t", "label": "l", "source": "s", "target": "x", '
                f'"tokens": ["w"], "ner_tags": ["O"], "{key}": "b"}}',
            )
        elif not lines:
            continue
        elif name == "unicode_space":  # inside a word or field: never a column separator
            j = _pos(draw, lines[i], 1)
            lines[i] = lines[i][:j] + draw(st.sampled_from(UNICODE_SPACES)) + lines[i][j:]
        elif name == "drop_last_column":
            delim = {"tsv": "\t", "csv": ","}.get(fmt)
            lines[i] = lines[i].rsplit(delim, 1)[0] if delim else " ".join(lines[i].split()[:1])
        elif name == "bad_tag":
            cols = lines[i].split()
            if cols:
                lines[i] = " ".join([*cols[:-1], draw(st.sampled_from(BAD_TAGS) | words)])
        elif name == "huge_line":
            j = _pos(draw, lines[i], 1)
            lines[i] = lines[i][:j] + "x" * draw(st.sampled_from([5_000, 140_000])) + lines[i][j:]
        elif name == "nul":
            j = _pos(draw, lines[i], 1)
            lines[i] = lines[i][:j] + "\x00" + lines[i][j:]
        elif name == "cut_line":
            lines[i] = lines[i][: _pos(draw, lines[i])]
        elif name == "control_word":  # a word the tokenizer maps to no subword at all
            cols = lines[i].split(" ")
            cols[0] = draw(st.sampled_from(["\x01", "\u200b", "\x7f", "\ufeff", "\u0301"]))
            lines[i] = " ".join(cols)
    return lines, names


ENCODINGS = ("utf-8", "utf-8", "utf-8-sig", "cp1252", "latin-1", "utf-16", "utf-16-le", "mixed")


def _encode(text: str, encoding: str) -> bytes:
    if encoding.startswith("utf"):
        return text.encode(encoding, "surrogatepass")
    return text.encode(encoding, "replace")


# Bytes that never occur in valid UTF-8 (continuation bytes alone, C0/C1, F5-FF).
INVALID_UTF8 = (0x80, 0x9D, 0xBF, 0xC0, 0xC1, 0xF5, 0xFE, 0xFF)


def _char_starts(data: bytes, encoding: str) -> list[int]:
    """Offsets between characters (every offset when the bytes are not one UTF-8 text)."""
    if encoding.startswith("utf-8"):
        return [i for i in range(len(data) + 1) if i == len(data) or data[i] & 0xC0 != 0x80]
    return list(range(len(data) + 1))


@st.composite
def serialize(draw, lines: list[str]) -> tuple[bytes, str]:
    """Bytes of ``lines`` with noisy line ends, encoding, truncation and stray bytes."""
    endings = draw(st.sampled_from(["\n", "\r\n", "\r", "mixed"]))
    encoding = draw(st.sampled_from(ENCODINGS))
    parts = []
    for line in lines:
        end = draw(st.sampled_from(["\n", "\r\n", "\r"])) if endings == "mixed" else endings
        parts.append(line + end)
    if parts and draw(st.booleans()):
        parts[-1] = lines[-1]  # no final newline
    if encoding == "mixed":
        data = b"".join(_encode(p, draw(st.sampled_from(["utf-8", "cp1252"]))) for p in parts)
    else:
        data = _encode("".join(parts), encoding)
    noise = draw(st.sampled_from(["none", "none", "truncate", "stray_bytes", "bad_byte"]))
    if noise == "truncate" and data:
        data = data[: _pos(draw, data)]
    elif noise == "stray_bytes":
        j = _pos(draw, data, 1)
        data = data[:j] + draw(st.binary(min_size=1, max_size=4)) + data[j:]
    elif noise == "bad_byte":  # one byte that is never valid UTF-8, between two characters
        j = draw(st.sampled_from(_char_starts(data, encoding)))
        data = data[:j] + bytes([draw(st.sampled_from(INVALID_UTF8))]) + data[j:]
    return data, f"{endings!r} {encoding} {noise}"


@st.composite
def bad_files(draw, fmt: str) -> dict:
    """A malformed file of format ``fmt``: its bytes, the task to load it as, and a log."""
    task = draw(st.sampled_from(TASKS[fmt]))
    clean = draw(st.booleans())  # plausible content: only the mutations and noise are bad
    if fmt == "conll":
        lines = draw(conll_lines())
    elif fmt in ("csv", "tsv"):
        lines = draw(delimited_lines(task, fmt, clean))
    else:
        lines = draw(json_lines(task, array=fmt == "json", clean=clean))
    lines, mutations = draw(mutate(lines, fmt))
    data, noise = draw(serialize(lines))
    how = draw(st.sampled_from(["format", "train_split", "path"]))
    ext = draw(st.sampled_from(EXTENSIONS[fmt]))
    return BadFile(fmt=fmt, task=task, data=data, how=how, ext=ext, log=f"{mutations} {noise}")


class BadFile(dict):
    """A generated file (a dict) whose repr stays readable when the file is huge."""

    def __repr__(self) -> str:
        data = self["data"]
        shown = repr(data[:300]) + (f"... ({len(data)} bytes)" if len(data) > 300 else "")
        rest = {k: v for k, v in self.items() if k != "data"}
        return f"BadFile(data={shown}, {rest})"


# ----- the oracle -------------------------------------------------------------------------

_serial = itertools.count()

# DataErrors about the whole file rather than one line (no line number expected).
_FILE_LEVEL = re.compile(
    r"no examples|empty file|no \w+ column|no column|^record \d+:|every split is empty"
    # JSON arrays are parsed whole: these problems have no line
    r"|nested too deeply|integer string conversion|has the key .* twice"
)


def load(spec: dict, directory: Path):
    """Write the file of ``spec`` under a fresh name and load it as the spec says."""
    path = directory / f"bad{next(_serial)}{spec['ext']}"
    path.write_bytes(spec["data"])
    fmt = "jsonl" if spec["fmt"] == "json" else spec["fmt"]
    if spec["how"] == "format":
        return path, lambda: load_corpus(spec["task"], fmt, data_files=str(path))
    if spec["how"] == "train_split":
        return path, lambda: load_corpus(spec["task"], fmt, data_files={"train": path})
    return path, lambda: load_corpus(spec["task"], str(path))


def _lines_in(data: bytes) -> int:
    """An upper bound on the line count, whatever the line ends and encoding."""
    return data.count(b"\n") + data.count(b"\r") + 1


def check_clear(err: TextgymError, path: Path, data: bytes) -> None:
    """A clear error names the file and, for a problem on one line, a line inside it."""
    message = str(err)
    assert str(path) in message, f"error does not name the file: {message}"
    if isinstance(err, DataError):
        assert err.path == str(path), (err.path, path)
        if err.line is None:
            assert _FILE_LEVEL.search(err.args[0].split(": ", 1)[-1]), (
                f"a problem on one line should give the line: {message}"
            )
        else:
            assert 1 <= err.line <= _lines_in(data), f"line {err.line} is not in the file"


def _strings_ok(*values: str) -> None:
    for v in values:
        assert isinstance(v, str)
        v.encode("utf-8")  # no lone surrogate: tokenizers and file writers need valid text


def check_corpus(corpus, task: str) -> None:
    """What every loaded corpus guarantees (see textgym.corpora)."""
    assert corpus.task == task and corpus.splits
    for examples in corpus.splits.values():
        assert len(examples) > 0
        for ex in examples:
            if task == "ner":
                assert len(ex.words) == len(ex.tags) > 0
                assert all(w for w in ex.words)
                _strings_ok(*ex.words, *ex.tags)
                assert to_iob2(ex.tags, "iob2") == ex.tags  # valid IOB2
                assert set(ex.tags) <= set(corpus.labels)
            elif task == "classification":
                _strings_ok(ex.text, ex.label)
                assert ex.label and ex.label == ex.label.strip()
                assert ex.label in corpus.labels
            else:
                _strings_ok(ex.source, ex.target)
    if task == "ner":
        assert corpus.labels[0] == "O"


ENV_IDS = {
    "ner": ("TextNER-v0", {"max_tokens": 8}),
    "classification": ("TextClassification-v0", {"max_tokens": 8}),
    "summarization": ("TextSummarization-v0", {"max_source_tokens": 8, "max_summary_tokens": 3}),
}


def check_env(task: str, fmt: str, load_kwargs: dict, corpus, rng: np.random.Generator) -> None:
    """An env built on the corpus plays every example of one split within its spaces."""
    env_id, kwargs = ENV_IDS[task]
    split = next(iter(corpus.splits))
    env = gym.make(env_id, split=split, **kwargs, **load_kwargs)
    base = env.unwrapped
    n_words = [len(ex.words) for ex in base.examples] if task == "ner" else None
    for index in range(min(base.num_examples, 6)):
        obs, info = env.reset(seed=int(rng.integers(1 << 30)), options={"index": index})
        assert info["index"] == index and obs in env.observation_space
        steps, done = 0, False
        while not done:
            obs, reward, terminated, truncated, info = env.step(
                int(rng.integers(env.action_space.n))
            )
            assert obs in env.observation_space
            assert not (terminated and truncated)
            done, steps = terminated or truncated, steps + 1
        if task == "ner":  # every word that fits is tagged, one step per word
            assert steps == obs["word_index"][0] == obs["word_mask"].sum() >= 1
            assert terminated == (steps == n_words[index])
            if truncated:  # only words past a full window (or past W words) are dropped
                width = len(obs["word_mask"])
                assert obs["attention_mask"].all() or steps == width, "words dropped early"
    env.close()


def env_kwargs_for(spec: dict, path: Path) -> dict:
    fmt = "jsonl" if spec["fmt"] == "json" else spec["fmt"]
    if spec["how"] == "format":
        return {"dataset": fmt, "data_files": str(path)}
    if spec["how"] == "train_split":
        return {"dataset": fmt, "data_files": {"train": path}}
    return {"dataset": str(path)}


def attempt(spec: dict, directory: Path, rng: np.random.Generator) -> str:
    """Load one generated file and tally the outcome; raises AssertionError if it is bad."""
    COUNTS["tried"] += 1
    COUNTS[f"{spec['fmt']}/tried"] += 1
    path, loader = load(spec, directory)
    outcome = "failed_badly"
    try:
        try:
            corpus = loader()
            check_corpus(corpus, spec["task"])
            check_env(spec["task"], spec["fmt"], env_kwargs_for(spec, path), corpus, rng)
            outcome = "loaded"
        except TextgymError as err:
            check_clear(err, path, spec["data"])
            outcome = "failed_clearly"
    finally:
        COUNTS[outcome] += 1
        COUNTS[f"{spec['fmt']}/{outcome}"] += 1
    return outcome


@functools.cache
def _tokenizer(name: str) -> TextTokenizer:
    return _from_pretrained(name)


_from_pretrained = TextTokenizer.from_pretrained.__func__.__get__(TextTokenizer)


def memoised_tokenizer_loading(monkeypatch) -> None:
    """Load each tokenizer once per session (a fresh corpus otherwise reloads it: 0.5 s)."""
    monkeypatch.setattr(TextTokenizer, "from_pretrained", staticmethod(_tokenizer))


def fresh_dir(base: Path) -> Path:
    path = base / f"d{next(_serial)}"
    os.makedirs(path)
    return path


# ----- data directories with stray files ----------------------------------------------------

# (name, the split it claims by the documented rule: "<split>.*", "<split>", or CoNLL-2003's
# "<name>.train/.testa/.testb"; None: not a split file, to be ignored)
STRAY_FILES = (
    ("train_backup.txt", None), ("test_predictions.txt", None), ("README.md", None),
    ("notes.txt", None), ("dev-old.conll", None), ("eng.train.old", None),
    ("predictions_test.txt", None), ("trainer.py", None), (".train.swp", None),
    ("training_log.csv", None), ("test results.txt", None), ("valid_2.txt", None),
    ("train.txt.bak", "train"), ("test.conll", "test"), ("eng.testa", "validation"),
    ("val", "validation"), ("x.dev", "validation"), ("TRAIN.TXT", "train"),
)  # fmt: skip
SPLIT_NAMES = {
    "train": ("train.txt", "train.conll", "eng.train", "training.txt"),
    "validation": ("valid.txt", "dev.txt", "validation.conll", "eng.testa"),
    "test": ("test.txt", "eng.testb", "testing.conll"),
}
POISON = "B-POISON"  # the tag of every stray file: it must never reach a corpus


def _sentences(split: str, n: int) -> list[list[tuple[str, str]]]:
    return [[(f"{split}{i}", "B-PER"), ("word", "O")] for i in range(n)]


@st.composite
def data_dirs(draw) -> dict:
    """Split files (train and test, validation or not) plus stray files beside them."""
    splits = ["train", "test"] + (["validation"] if draw(st.booleans()) else [])
    names = {s: draw(st.sampled_from(SPLIT_NAMES[s])) for s in splits}
    strays = draw(st.lists(st.sampled_from(STRAY_FILES), max_size=5, unique_by=lambda x: x[0]))
    strays = [(n, c) for n, c in strays if n not in names.values()]
    sizes = {s: draw(st.integers(1, 4)) for s in splits}
    return {
        "names": names,
        "sizes": sizes,
        "strays": strays,
        "subdir": draw(st.sampled_from([None, "train", "test.d"])),
        "how": draw(st.sampled_from(["data_dir", "path"])),
    }


def attempt_data_dir(spec: dict, directory: Path) -> str:
    """Load one generated data directory and tally it: exactly the split files, or a
    DataError naming the directory when two files claim one split."""
    COUNTS["tried"] += 1
    COUNTS["data_dir/tried"] += 1
    outcome = "failed_badly"
    try:
        claims: dict[str, list[str]] = {}
        for split, name in spec["names"].items():
            _conll(directory / name, _sentences(split, spec["sizes"][split]))
            claims.setdefault(split, []).append(name)
        for name, claim in spec["strays"]:
            _conll(directory / name, [[("stray", POISON)]])
            if claim is not None:
                claims.setdefault(claim, []).append(name)
        if spec["subdir"]:
            (directory / spec["subdir"]).mkdir()
            _conll(directory / spec["subdir"] / "train.txt", [[("sub", POISON)]])
        twice = sorted(s for s, names in claims.items() if len(names) > 1)
        try:
            if spec["how"] == "data_dir":
                corpus = load_corpus("ner", "conll", data_dir=directory)
            else:
                corpus = load_corpus("ner", str(directory))
        except DataError as err:
            assert twice, f"no split is claimed twice, yet: {err}"
            assert err.path == str(directory)
            assert any(f"several files claim the {split} split" in str(err) for split in twice)
            outcome = "failed_clearly"
        else:
            assert not twice, f"{twice} claimed twice, yet it loaded"
            expected = {s: sorted(f"{s}{i}" for i in range(n)) for s, n in spec["sizes"].items()}
            # a stray that alone claims a split (eng.testa with no other validation file)
            # is that split's file by the documented rule
            lone = {c for _, c in spec["strays"] if c is not None and c not in expected}
            expected.update({s: ["stray"] for s in lone})
            assert (POISON in corpus.labels) == bool(lone), "a stray file was read"
            words = {s: sorted(ex.words[0] for ex in corpus.split(s)) for s in corpus.splits}
            assert words["test"] == expected["test"]
            if "validation" in expected:
                assert words["train"] == expected["train"]
                assert words["validation"] == expected["validation"]
            else:  # validation carved from train
                carved = words.get("train", []) + words.get("validation", [])
                assert sorted(carved) == expected["train"]
            outcome = "loaded"
    finally:
        COUNTS[outcome] += 1
        COUNTS[f"data_dir/{outcome}"] += 1
    return outcome


def _conll(path: Path, sentences) -> None:
    path.write_text("\n\n".join("\n".join(f"{w} {t}" for w, t in s) for s in sentences) + "\n")
