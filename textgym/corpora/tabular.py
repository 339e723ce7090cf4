"""CSV, TSV and JSON Lines files: records with named fields, mapped to examples.

- CSV: comma-separated with a header row, standard ``"`` quoting (the ``csv`` module).
- TSV: tab-separated with a header row and *no* quoting, as in GLUE: a ``"`` is a
  character of the text. A row whose field count differs from the header's is an error.
- JSONL (also ``.json``): one JSON object per line; blank lines are skipped. A ``.json``
  file holding one JSON array of objects is read too. A ``\\uD83D`` escape with no partner
  (a text cut inside a UTF-16 surrogate pair, as truncated tweets are) is read as U+FFFD,
  since no tokenizer accepts a lone surrogate.

Columns are chosen by keyword (``text_column=`` ...) or else by the first present of the
defaults in :data:`DEFAULT_COLUMNS`. Labels become strings (JSON ``1`` gives ``"1"``) with
surrounding whitespace removed; texts are kept verbatim, and an empty text is kept (the envs
handle it), whereas an empty or null label is an error, and so is an empty summary target
(every episode on it would score 0) unless ``empty_targets="drop"``. A column named twice
in a header, or a key twice in a JSON object, is an error. NER records (JSONL only) carry a
list of words (``tokens`` / ``words``, none of them "") and a list of string tags
(``ner_tags`` / ``tags``).
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from textgym.errors import DataError

from .conll import brief, to_iob2
from .records import NERExample, Seq2SeqExample, TextExample
from .textio import split_lines

# role -> default column names, first present wins.
DEFAULT_COLUMNS: dict[str, tuple[str, ...]] = {
    "text": ("text", "sentence", "article", "document", "content"),
    "label": ("label", "category", "labels"),
    "source": ("source", "article", "document", "text"),
    "target": ("target", "summary", "highlights", "title"),
    "words": ("tokens", "words"),
    "tags": ("ner_tags", "tags"),
}

Record = tuple[int | None, str, Mapping[str, Any]]  # (line, record name for messages, fields)


def pick_column(available: Sequence[str], role: str, explicit: str | None, path: str) -> str:
    """The column playing ``role``: ``explicit`` if given, else the first default present.

    Raises:
        DataError: The column is missing; the message lists the available columns.
    """
    listed = ", ".join(map(repr, available)) or "none"
    if explicit is not None:
        if explicit in available:
            return explicit
        raise DataError(
            f"no column {explicit!r} ({role}_column); available columns: {listed}", path
        )
    for name in DEFAULT_COLUMNS[role]:
        if name in available:
            return name
    looked = ", ".join(map(repr, DEFAULT_COLUMNS[role]))
    raise DataError(
        f"no {role} column: looked for {looked}; available columns: {listed} "
        f"(pass {role}_column=... to choose one)",
        path,
    )


def _read_delimited(text: str, path: str, fmt: str) -> tuple[list[str], Iterator[Record]]:
    try:
        header, rows, last_start = _parse_delimited(text, path, fmt)
    except DataError as err:
        # A quote that never closes swallows the rest of the file: the symptom shows at
        # the last line, the cause is where the quote opens.
        opened = _unclosed_quote(text) if fmt == "csv" else None
        if opened is not None and (err.line is None or opened <= err.line):
            raise _unclosed_quote_error(path, opened, text) from None
        raise
    if fmt == "csv" and rows and last_start < (rows[-1][0] or 0):  # a last row of several lines
        opened = _unclosed_quote(text)
        if opened is not None:
            raise _unclosed_quote_error(path, opened, text)
    return header, iter(rows)


def _unclosed_quote_error(path: str, line: int, text: str) -> DataError:
    last = len(split_lines(text)) - (1 if text.endswith(("\n", "\r")) else 0)
    return DataError(
        "a quoted field opens on this line and is never closed: the rest of the file "
        f"(to line {last}) would be read into it; close the quote or "
        'double a literal one ("")',
        path,
        line,
    )


def _unclosed_quote(text: str) -> int | None:
    """The line where a CSV quoted field opens and is still open at the end of ``text``
    (read as the ``csv`` module reads it, non-strict), or None."""
    line, state, opened = 1, "start", 0
    prev = ""
    for ch in text:
        newline = ch == "\n" and prev != "\r" or ch == "\r"
        if state == "quoted":
            if ch == '"':
                state = "quote"
        elif state == "quote" and ch == '"':
            state = "quoted"  # an escaped quote
        elif ch == "," or ch in "\r\n":
            state = "start"
        elif state == "start" and ch == '"':
            state, opened = "quoted", line
        elif state in ("start", "quote"):
            state = "field"
        line += newline
        prev = ch
    return opened if state == "quoted" else None


def _csv_reader(lines: Iterable[str], fmt: str):
    if fmt == "tsv":
        return csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE)
    return csv.reader(lines)


def _delimited(lines: Iterable[str], path: str, fmt: str) -> Iterator:
    """The header row, then ``(start line, record)`` for each row (a record spans lines
    start to ``record[0]``). Errors name the file and line."""
    reader = _csv_reader(lines, fmt)
    # Long articles exceed the csv module's 128 KiB field default; 2**31 - 1 fits a C long.
    old_limit = csv.field_size_limit(min(sys.maxsize, 2**31 - 1))
    try:
        try:
            header = next((row for row in reader if row), None)
        except csv.Error as e:
            raise DataError(f"malformed {fmt.upper()}: {e}", path, reader.line_num) from None
        if header is None:
            raise DataError(f"empty file: no header row ({fmt.upper()} needs one)", path)
        header = [name.strip() for name in header]
        _check_unique(header, path, reader.line_num)
        yield header
        try:
            while True:
                start = reader.line_num + 1
                row = next(reader, None)
                if row is None:
                    break
                if not row:
                    continue
                if len(row) != len(header):
                    raise DataError(
                        f"row has {len(row)} fields, the header has {len(header)} "
                        f"({', '.join(header)})",
                        path,
                        reader.line_num,
                    )
                yield start, (reader.line_num, "", dict(zip(header, row, strict=True)))
        except csv.Error as e:
            raise DataError(f"malformed {fmt.upper()}: {e}", path, reader.line_num) from None
    finally:
        csv.field_size_limit(old_limit)


def _parse_delimited(text: str, path: str, fmt: str) -> tuple[list[str], list[Record], int]:
    """(header, records, the line where the last record starts)."""
    rows = _delimited(io.StringIO(text, newline=""), path, fmt)
    header = next(rows)
    records: list[Record] = []
    last_start = 0
    for start, record in rows:
        records.append(record)
        last_start = start
    return header, records, last_start


def _check_unique(header: Sequence[str], path: str, line: int) -> None:
    """A column named twice would make one of the two silently win."""
    seen: dict[str, int] = {}
    for i, name in enumerate(header, 1):
        if name in seen:
            raise DataError(
                f"the header names column {name!r} twice (columns {seen[name]} and {i}): "
                "rename one of them",
                path,
                line,
            )
        seen[name] = i


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


_SURROGATE = re.compile("[\ud800-\udfff]")


def _parse_json(text: str, path: str, line: int | None) -> Any:
    """``json.loads``, every failure a :class:`DataError` (``line`` None: the whole file)."""
    try:
        return json.loads(text, object_pairs_hook=_unique_keys)
    except _DuplicateKey as e:
        raise DataError(
            f"a JSON object has the key {e.args[0]!r} twice; rename one of them", path, line
        ) from None
    except json.JSONDecodeError as e:
        where = e.lineno if line is None else line
        raise DataError(f"invalid JSON: {e.msg} (column {e.colno})", path, where) from None
    except RecursionError:
        raise DataError("invalid JSON: nested too deeply", path, line) from None
    except ValueError as e:  # an integer of more than sys.get_int_max_str_digits() digits
        raise DataError(f"invalid JSON: {e}", path, line) from None


def _read_json(text: str, path: str) -> tuple[list[str], Iterator[Record]]:
    records: list[Record] = []
    if text.lstrip().startswith("["):
        items = _parse_json(text, path, None)
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                raise DataError(
                    f"record {i}: expected a JSON object, got {type(item).__name__}", path
                )
            records.append((None, f"record {i}: ", item))
    else:
        for lineno, line in enumerate(split_lines(text), 1):
            if not line.strip():
                continue
            item = _parse_json(line, path, lineno)
            if not isinstance(item, dict):
                raise DataError(f"expected a JSON object, got {type(item).__name__}", path, lineno)
            records.append((lineno, "", item))
    columns = list(records[0][2]) if records else []
    return columns, iter(records)


def read_records(text: str, path: str, fmt: str) -> tuple[list[str], Iterator[Record]]:
    """Parse a decoded file into (column names, records); ``fmt`` is csv, tsv or jsonl."""
    if fmt in ("csv", "tsv"):
        return _read_delimited(text, path, fmt)
    return _read_json(text, path)


def _field(fields: Mapping[str, Any], column: str, path: str, line: int | None, record: str) -> Any:
    try:
        return fields[column]
    except KeyError:
        raise DataError(f"{record}missing field {column!r}", path, line) from None


def _valid(text: str) -> str:
    """``text`` with lone surrogates (only JSON escapes make them) replaced by U+FFFD."""
    return _SURROGATE.sub("\ufffd", text)


def _text(value: Any, column: str, path: str, line: int | None, record: str) -> str:
    if isinstance(value, str):
        return _valid(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise DataError(f"{record}field {column!r} is {brief(value)}, expected a string", path, line)


def _label(value: Any, column: str, path: str, line: int | None, record: str) -> str:
    if isinstance(value, (str, int, float, bool)):
        label = _valid(str(value)).strip()
        if label:
            return label
    raise DataError(
        f"{record}field {column!r} is {value!r}, expected a non-empty label", path, line
    )


def check_words(
    words: Sequence[str], column: str, path: str, line: int | None, record: str
) -> None:
    """A sentence has words, and a word is never "" (no tokenizer gives it a subword)."""
    if not words:
        raise DataError(f"{record}empty sentence: field {column!r} has no words", path, line)
    for i, word in enumerate(words):
        if not word:
            raise DataError(f"{record}field {column!r}: word {i} is an empty string", path, line)


def _words(value: Any, column: str, path: str, line: int | None, record: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(w, str) for w in value):
        raise DataError(f"{record}field {column!r} must be a list of strings", path, line)
    check_words(value, column, path, line, record)
    return tuple(_valid(w) for w in value)


def records_to_examples(
    task: str,
    columns: Sequence[str],
    records: Iterator[Record],
    path: str,
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    source_column: str | None = None,
    target_column: str | None = None,
    tag_scheme: str = "auto",
    empty_targets: str = "error",
) -> list:
    """Turn parsed records into the task's examples (see the module docstring).

    ``empty_targets``: a summarization record whose target is empty or whitespace is an
    error ("error") or left out with a warning that counts them ("drop").

    Raises:
        DataError: A column is missing (the message lists those present), or a value has
            the wrong type, with the file and line.
    """
    dropped: list[int | None] = []
    out = list(
        iter_examples(
            task,
            columns,
            records,
            path,
            text_column=text_column,
            label_column=label_column,
            source_column=source_column,
            target_column=target_column,
            tag_scheme=tag_scheme,
            empty_targets=empty_targets,
            dropped=dropped,
        )
    )
    if dropped:
        warn_dropped(len(dropped), path)
    return out


def iter_examples(
    task: str,
    columns: Sequence[str],
    records: Iterable[Record],
    path: str,
    *,
    text_column: str | None = None,
    label_column: str | None = None,
    source_column: str | None = None,
    target_column: str | None = None,
    tag_scheme: str = "auto",
    empty_targets: str = "error",
    dropped: list[int | None] | None = None,
) -> Iterator:
    """:func:`records_to_examples` one example at a time; the line of each record left out
    by ``empty_targets="drop"`` is appended to ``dropped`` (the caller warns)."""
    if not columns:
        return
    if task == "ner":
        wcol = pick_column(columns, "words", None, path)
        tcol = pick_column(columns, "tags", None, path)
        for line, record, fields in records:
            words = _words(_field(fields, wcol, path, line, record), wcol, path, line, record)
            raw = _field(fields, tcol, path, line, record)
            if not isinstance(raw, list):
                raise DataError(f"{record}field {tcol!r} must be a list of tag strings", path, line)
            if len(raw) != len(words):
                raise DataError(f"{record}{len(words)} words but {len(raw)} tags", path, line)
            raw = [_valid(t) if isinstance(t, str) else t for t in raw]
            yield NERExample(words, to_iob2(raw, tag_scheme, path, line, record))
    elif task == "classification":
        xcol = pick_column(columns, "text", text_column, path)
        ycol = pick_column(columns, "label", label_column, path)
        for line, record, fields in records:
            text = _text(_field(fields, xcol, path, line, record), xcol, path, line, record)
            label = _label(_field(fields, ycol, path, line, record), ycol, path, line, record)
            yield TextExample(text, label)
    else:
        scol = pick_column(columns, "source", source_column, path)
        tcol = pick_column(columns, "target", target_column, path)
        for line, record, fields in records:
            source = _text(_field(fields, scol, path, line, record), scol, path, line, record)
            target = _text(_field(fields, tcol, path, line, record), tcol, path, line, record)
            if not target.strip():
                if empty_targets == "error":
                    raise DataError(
                        f"{record}empty summary target (field {tcol!r}): every episode on it "
                        "would score 0; fill it in, or pass empty_targets='drop' to leave "
                        "such examples out",
                        path,
                        line,
                    )
                if dropped is not None:
                    dropped.append(line)
                continue
            yield Seq2SeqExample(source, target)


class NeedsWholeFile(Exception):
    """Raised by :func:`stream_records` where only a read of the whole file can tell (a JSON
    array, a CSV quote left open in the last record): the caller reads it whole."""


def stream_records(lines: Iterable[str], path: str, fmt: str) -> tuple[list[str], Iterator[Record]]:
    """(column names, records) of a file read one line at a time: what :func:`read_records`
    gives, for files too large to hold.

    ``lines``: CSV/TSV lines with their line ends (a text file opened with ``newline=""``);
    JSON Lines without them.

    Raises:
        DataError: As :func:`read_records`, as the records are read.
        NeedsWholeFile: The file is a JSON array, or a CSV quote may be open at its end.
    """
    gen = (
        _stream_delimited(lines, path, fmt) if fmt in ("csv", "tsv") else _stream_json(lines, path)
    )
    columns = next(gen)
    return columns, gen


def _stream_delimited(lines: Iterable[str], path: str, fmt: str) -> Iterator:
    rows = _delimited(lines, path, fmt)
    yield next(rows)
    last_start = last_line = 0
    for start, record in rows:
        last_start, last_line = start, record[0]
        yield record
    if fmt == "csv" and last_start < last_line:  # a last record of several lines
        raise NeedsWholeFile(path)


def _stream_json(lines: Iterable[str], path: str) -> Iterator:
    first = True
    for lineno, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if first and line.lstrip().startswith("["):
            raise NeedsWholeFile(path)
        item = _parse_json(line, path, lineno)
        if not isinstance(item, dict):
            raise DataError(f"expected a JSON object, got {type(item).__name__}", path, lineno)
        if first:
            yield list(item)
            first = False
        yield (lineno, "", item)
    if first:
        yield []


def warn_dropped(count: int, where: str) -> None:
    """The warning ``empty_targets='drop'`` gives: how many examples, and where."""
    warnings.warn(
        f"{where}: left out {count} example{'s' if count != 1 else ''} with an empty summary "
        "target (empty_targets='drop')",
        stacklevel=3,
    )
