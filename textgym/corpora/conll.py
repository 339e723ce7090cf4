"""CoNLL column files and IOB tag checks.

A CoNLL file has one word per line, in columns separated by ASCII spaces and tabs (as
conlleval splits them): the word first, the NER tag last, anything in between (POS,
chunk) ignored. Other whitespace (a no-break space in ``10\u00a0000``, an ideographic space
U+3000 that is a word of its own in Japanese corpora) belongs to the word. Sentences end
at a blank or whitespace-only line (a lone tab, as in WNUT-16) and at ``-DOCSTART-``
lines, which are skipped; runs of separators never make an empty sentence. LF, CRLF and CR line ends and a
byte-order mark are accepted (see :mod:`textgym.corpora.textio`).

Tags must be ``O``, ``B-TYPE`` or ``I-TYPE``. Output is always IOB2: an ``I-X`` that
starts a chunk (after ``O``, after another type, or first in the sentence) becomes ``B-X``.
That is exactly the IOB1 to IOB2 conversion, and it leaves valid IOB2 untouched, so
``tag_scheme="auto"`` (the default) and ``"iob1"`` accept either. ``tag_scheme="iob2"`` is
strict: such an ``I-X`` is reported as an error instead of repaired.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence

from textgym.errors import DataError, TextgymError

from .records import NERExample
from .textio import split_lines

TAG_SCHEMES = ("auto", "iob1", "iob2")
_COLUMN_SEP = re.compile("[ \t]+")


def split_columns(line: str) -> list[str]:
    """The columns of a CoNLL line: split at runs of ASCII spaces and tabs only; [] for a
    blank or whitespace-only line (any whitespace: a separator line)."""
    if not line or line.isspace():
        return []
    return _COLUMN_SEP.split(line.strip(" \t"))


def check_tag_scheme(tag_scheme: str) -> str:
    """Return ``tag_scheme`` if valid, else raise :class:`TextgymError`."""
    if tag_scheme not in TAG_SCHEMES:
        raise TextgymError(
            f"unknown tag_scheme {tag_scheme!r}; valid values: {', '.join(TAG_SCHEMES)}"
        )
    return tag_scheme


def is_iob_tag(tag: str) -> bool:
    """True for ``O`` and for ``B-X`` / ``I-X`` with a non-empty type X."""
    return tag == "O" or (len(tag) > 2 and tag[1] == "-" and tag[0] in "BI")


def brief(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters, for error messages."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _bad_tag(tag: object) -> str:
    return f"tag {brief(tag)} is not an IOB tag (expected 'O', 'B-TYPE' or 'I-TYPE')"


def _chunk_start(tag: str, strict: bool, where: str, path: str | None, line: int | None) -> str:
    if strict:
        raise DataError(
            f"{where}tag {tag!r} starts an entity but is not B- (IOB2 expected; "
            "use tag_scheme='auto' or 'iob1' to convert)",
            path,
            line,
        )
    return "B-" + tag[2:]


def to_iob2(
    tags: Sequence[object],
    tag_scheme: str = "auto",
    path: str | None = None,
    line: int | None = None,
    record: str = "",
) -> tuple[str, ...]:
    """Check a sentence's tags and return them in IOB2.

    Args:
        tags: The sentence's tags, as read.
        tag_scheme: "auto" / "iob1" repair an I-X that starts a chunk into B-X; "iob2"
            rejects it.
        path, line: Where the sentence is, for the error message.
        record: Prefix naming the record inside ``path`` (e.g. "row 12: ").

    Raises:
        DataError: A tag is not a string in IOB form, or (strict "iob2") an I-X starts a chunk.
    """
    strict = tag_scheme == "iob2"
    out: list[str] = []
    prev = "O"
    for tag in tags:
        if not isinstance(tag, str) or not is_iob_tag(tag):
            raise DataError(record + _bad_tag(tag), path, line)
        if tag[0] == "I" and (prev == "O" or prev[2:] != tag[2:]):
            tag = _chunk_start(tag, strict, record, path, line)
        out.append(tag)
        prev = tag
    return tuple(out)


def parse_conll(text: str, path: str, tag_scheme: str = "auto") -> list[NERExample]:
    """Parse a decoded CoNLL file into sentences (see the module docstring).

    Args:
        text: The file's content.
        path: The file's name, for error messages.
        tag_scheme: "auto", "iob1" or "iob2".

    Raises:
        DataError: A line has one column only (no tag), or a tag is not IOB; the message
            names the file, the 1-based line number and the offending value.
    """
    return [
        NERExample(tuple(words), tuple(tags))
        for words, tags in iter_conll(split_lines(text), path, tag_scheme)
    ]


def iter_conll(
    lines: Iterable[str], path: str, tag_scheme: str = "auto"
) -> Iterator[tuple[list[str], list[str]]]:
    """The sentences of CoNLL ``lines`` (without their line ends) as (words, IOB2 tags),
    one at a time: what :func:`parse_conll` reads, for files too large to hold.

    Raises:
        DataError: As :func:`parse_conll`, with the 1-based number of the line.
    """
    strict = tag_scheme == "iob2"
    words: list[str] = []
    tags: list[str] = []
    good_tags = {"O"}
    prev = "O"
    for lineno, line in enumerate(lines, 1):
        if not line or line.isspace():
            cols = []
        elif "\t" in line or "  " in line or line[0] == " " or line[-1] == " ":
            cols = _COLUMN_SEP.split(line.strip(" \t"))
        else:  # single spaces only (CoNLL-2003): the same columns, at str.split's speed
            cols = line.split(" ")
        if not cols or cols[0] == "-DOCSTART-":
            if words:
                yield words, tags
                words, tags = [], []
            prev = "O"
            continue
        if len(cols) == 1:
            raise DataError(
                f"line has a single column {brief(cols[0])} and no tag column "
                "(expected the word first and the NER tag last)",
                path,
                lineno,
            )
        tag = cols[-1]
        if tag not in good_tags:
            if not is_iob_tag(tag):
                raise DataError(_bad_tag(tag), path, lineno)
            good_tags.add(tag)
        if tag[0] == "I" and (prev == "O" or prev[2:] != tag[2:]):
            tag = _chunk_start(tag, strict, "", path, lineno)
        words.append(cols[0])
        tags.append(tag)
        prev = tag
    if words:
        yield words, tags
