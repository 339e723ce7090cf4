"""Corpora larger than memory: a streamed parse into a memory-mapped record store.

Local text files (conll, csv, tsv, jsonl) that hold :data:`STREAM_MIN_BYTES` or more in
all are read one line at a time and written, example by example, into a record store in
the cache directory (``$TEXTGYM_CACHE_DIR/corpora``, else ``$XDG_CACHE_HOME/textgym/corpora``,
else ``~/.cache/textgym/corpora``). Memory stays bounded by a line and a write buffer, not
by the corpus: a split's examples are a :class:`StoredExamples` sequence that decodes an
example when it is indexed, from files that every process maps instead of reading, so N
processes over one corpus share one copy of its pages.

The store is keyed by the files' bytes (:func:`file_digest`, streamed, no parse), the task
and the loader options. A later load hashes the files and maps the store: no parse.
``Corpus.fingerprint`` is the same as for a corpus read whole (it is computed from the
store's bytes, which are exactly what the fingerprint hashes), so the tokenized-array
caches keyed by it are shared by both paths.

Layout of an entry ``<task>-<digest>/``:

- ``<split>.blob``: the split's examples one after another, each as
  :func:`textgym.corpora.records.example_bytes` gives it (UTF-8; NER: the words joined by
  U+001F, U+001E, the tags joined by U+001F, then U+001D; classification: text U+001E label
  U+001D; summarization: source U+001E target U+001D);
- ``<split>.offsets``: ``count + 1`` little-endian int64, where each example starts;
- ``manifest.json``: the key, the labels, the fingerprint, each split's count, byte size
  and CRCs of sampled blocks, the few examples whose text holds a separator character (so
  that the blob cannot be split back), and a checksum of the manifest itself.

An entry is written into a temporary directory and renamed into place (two processes that
load the same corpus at once: the second waits on a lock file and maps the first's
entry). An entry that is truncated or damaged (wrong sizes, a bad manifest, a sampled block
whose CRC differs) is rebuilt, with a warning naming it; a damaged byte between the sampled
blocks is not seen, the price of mapping instead of reading.

Behaviour matches reading the files whole (:func:`textgym.corpora.local.read_plan`): the
same examples in the same order, splits and labels, and the same errors naming the file and
line. Files the stream cannot read alone are read whole, as before: a JSON array, a file
that is not UTF-8 (cp1252, or UTF-8 with bad bytes, for the error), and, for the exact
message, a CSV/TSV/JSON Lines file with an error.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import operator
import os
import shutil
import tempfile
import warnings
from array import array
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from textgym.errors import DataError
from textgym.io import (
    atomic_dir,
    discard_dir,
    file_lock,
    read_checksummed_json,
    sampled_crcs,
    write_checksummed_json,
)

from .conll import iter_conll
from .local import LocalPlan, empty_file_error, read_file
from .records import (
    SPLITS,
    Corpus,
    NERExample,
    Seq2SeqExample,
    TextExample,
    fingerprint_hasher,
)
from .splits import TRAIN_BUCKETS, VALIDATION_BUCKETS, bucket, split_of
from .tabular import NeedsWholeFile, iter_examples, stream_records, warn_dropped
from .textio import open_text

#: Local text files of at least this many bytes in all are streamed into a record store;
#: smaller ones are read whole into memory (faster for them, and nothing is written).
STREAM_MIN_BYTES = 64 * 2**20

#: Bump when the store's layout changes, so that older entries are never read.
STORE_VERSION = 1

_WRITE_BUFFER = 4 * 2**20
_PROGRESS_EVERY = 4096
_strip_newline = operator.methodcaller("rstrip", "\n")


def store_dir() -> Path:
    """Where record stores live: ``corpora/`` in the tokenizer's cache directory."""
    from textgym.tokenizer import cache_dir

    return cache_dir() / "corpora"


def file_digest(path: str | os.PathLike) -> str:
    """Hex digest of a file's bytes, read in blocks: identifies its content without
    parsing it (any changed byte changes it)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, lambda: hashlib.blake2b(digest_size=16)).hexdigest()


# ----- writing ------------------------------------------------------------------------------


def _ner_bytes(words: Sequence[str], tags: Sequence[str]) -> tuple[bytes, list | None]:
    """(the example's bytes, the example itself when a separator inside it would make the
    bytes ambiguous to split back, else None)."""
    text = "\x1f".join(words) + "\x1e" + "\x1f".join(tags)
    clean = (
        text.count("\x1f") == 2 * (len(words) - 1)
        and text.count("\x1e") == 1
        and "\x1d" not in text
    )
    data = (text + "\x1d").encode("utf-8", "surrogatepass")
    return data, None if clean else [list(words), list(tags)]


def _pair_bytes(first: str, second: str) -> tuple[bytes, list | None]:
    text = first + "\x1e" + second
    clean = text.count("\x1e") == 1 and "\x1d" not in text
    data = (text + "\x1d").encode("utf-8", "surrogatepass")
    return data, None if clean else [first, second]


class _SplitWriter:
    """Appends one split's examples to its blob; keeps the offsets (8 bytes an example)."""

    def __init__(self, directory: Path, split: str):
        self.directory = directory
        self.split = split
        self.blob = open(directory / f"{split}.blob", "wb")  # noqa: SIM115  (closed in close())
        self.offsets = array("q", [0])
        self.exceptions: list[list] = []
        self.buffer: list[bytes] = []
        self.buffered = 0

    def add(self, data: bytes, exact: list | None) -> None:
        if exact is not None:
            self.exceptions.append([len(self.offsets) - 1, exact])
        self.buffer.append(data)
        self.buffered += len(data)
        self.offsets.append(self.offsets[-1] + len(data))
        if self.buffered >= _WRITE_BUFFER:
            self.flush()

    def flush(self) -> None:
        self.blob.write(b"".join(self.buffer))
        self.buffer.clear()
        self.buffered = 0

    def mark(self) -> tuple[int, int]:
        return len(self.offsets), len(self.exceptions)

    def rollback(self, mark: tuple[int, int]) -> None:
        """Forget what was added since ``mark`` (a file that must be read again whole)."""
        count, exceptions = mark
        self.flush()
        del self.offsets[count:]
        del self.exceptions[exceptions:]
        self.blob.truncate(self.offsets[-1])
        self.blob.seek(self.offsets[-1])

    def close(self) -> None:
        self.flush()
        self.blob.close()
        with open(self.directory / f"{self.split}.offsets", "wb") as f:
            f.write(np.frombuffer(self.offsets, np.int64).astype("<i8").tobytes())

    @property
    def count(self) -> int:
        return len(self.offsets) - 1


class _Builder:
    """Routes examples to split writers by the split rules of :mod:`textgym.corpora`."""

    def __init__(self, directory: Path, task: str, plan: LocalPlan):
        self.task = task
        self.writers = {split: _SplitWriter(directory, split) for split in SPLITS}
        self.single = None in plan.files
        self.carve = "train" in plan.files and "validation" not in plan.files
        self.labels: set[str] = set()

    def route(self, split: str | None, key: str) -> str:
        if split is None:
            return split_of(key)
        if self.carve and split == "train":
            b = bucket(key)
            if TRAIN_BUCKETS <= b < TRAIN_BUCKETS + VALIDATION_BUCKETS:
                return "validation"
        return split

    def add_sentence(self, split: str | None, words: list[str], tags: list[str]) -> None:
        self.writers[self.route(split, " ".join(words))].add(*_ner_bytes(words, tags))

    def add(self, split: str | None, example: Any) -> None:
        if isinstance(example, NERExample):
            self.add_sentence(split, list(example.words), list(example.tags))
        elif isinstance(example, TextExample):
            self.writers[self.route(split, example.text)].add(
                *_pair_bytes(example.text, example.label)
            )
        else:
            self.writers[self.route(split, example.source)].add(
                *_pair_bytes(example.source, example.target)
            )

    def marks(self) -> dict[str, tuple[int, int]]:
        return {split: w.mark() for split, w in self.writers.items()}

    def rollback(self, marks: Mapping[str, tuple[int, int]]) -> None:
        for split, mark in marks.items():
            self.writers[split].rollback(mark)

    def added_since(self, marks: Mapping[str, tuple[int, int]]) -> int:
        return sum(w.count - (marks[s][0] - 1) for s, w in self.writers.items())


def _stream_file(
    builder: _Builder,
    split: str | None,
    path: str,
    fmt: str,
    request: Mapping[str, Any],
    progress: Any,
) -> tuple[set[str], list]:
    """Feed one file's examples to ``builder`` as they are read: (labels, dropped lines)."""
    labels: set[str] = set()
    dropped: list = []
    raw, text = open_text(path, request["encoding"], "" if fmt in ("csv", "tsv") else None)
    with text:
        done = raw.tell()

        def advance(n: int) -> None:
            nonlocal done
            if n % _PROGRESS_EVERY == 0:
                now = raw.tell()
                progress.update(now - done)
                done = now

        n = 0
        if fmt == "conll":
            for words, tags in iter_conll(map(_strip_newline, text), path, request["tag_scheme"]):
                builder.add_sentence(split, words, tags)
                labels.update(tags)
                n += 1
                advance(n)
        else:
            columns, records = stream_records(
                text if fmt in ("csv", "tsv") else map(_strip_newline, text), path, fmt
            )
            examples = iter_examples(
                builder.task,
                columns,
                records,
                path,
                tag_scheme=request["tag_scheme"],
                empty_targets=request["empty_targets"],
                dropped=dropped,
                **request["columns"],
            )
            for example in examples:
                builder.add(split, example)
                labels.update(_labels_of(example))
                n += 1
                advance(n)
        progress.update(os.path.getsize(path) - done)
    return labels, dropped


def _labels_of(example: Any) -> tuple[str, ...]:
    if isinstance(example, NERExample):
        return example.tags
    if isinstance(example, TextExample):
        return (example.label,)
    return ()


def _read_whole(
    builder: _Builder, split: str | None, path: str, fmt: str, request: Mapping[str, Any]
) -> tuple[set[str], list]:
    """Feed one file read whole, as :func:`textgym.corpora.local.read_plan` reads it."""
    labels: set[str] = set()
    dropped: list = []
    examples = read_file(
        builder.task,
        fmt,
        path,
        request["tag_scheme"],
        request["columns"],
        request["encoding"],
        request["empty_targets"],
        dropped=dropped,
    )
    for example in examples:
        builder.add(split, example)
        labels.update(_labels_of(example))
    return labels, dropped


def _order_labels(task: str, seen: set[str]) -> tuple[str, ...]:
    if task == "ner":
        rest = seen - {"O"}
        return ("O", *sorted(rest, key=lambda tag: (tag[2:], tag[0] != "B")))
    if task == "classification":
        return tuple(sorted(seen))
    return ()


def _build(
    directory: Path,
    task: str,
    plan: LocalPlan,
    name: str,
    key: Mapping[str, Any],
    options: Mapping[str, Any],
    request: Mapping[str, Any],
) -> None:
    from tqdm.auto import tqdm

    builder = _Builder(directory, task, plan)
    dropped_by_file: list[list[int]] = []
    total = sum(os.path.getsize(p) for paths in plan.files.values() for p in paths)
    # disable=None: shown on a terminal only; delay: only for a load that takes a while
    with tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        desc=f"reading {os.path.basename(plan.root) or plan.root}",
        delay=2.0,
        disable=None,
        leave=False,
    ) as progress:
        index = 0
        for split, paths in plan.files.items():
            for path in paths:
                marks = builder.marks()
                try:
                    labels, dropped = _stream_file(
                        builder, split, path, plan.fmt, request, progress
                    )
                except (UnicodeDecodeError, NeedsWholeFile, DataError) as err:
                    if isinstance(err, DataError) and plan.fmt == "conll":
                        raise  # the stream runs the very code that reads it whole
                    builder.rollback(marks)
                    labels, dropped = _read_whole(builder, split, path, plan.fmt, request)
                if builder.added_since(marks) == 0:
                    raise empty_file_error(split, path)
                if dropped:
                    warn_dropped(len(dropped), path)
                    dropped_by_file.append([index, len(dropped)])
                builder.labels |= labels
                index += 1
    for writer in builder.writers.values():
        writer.close()
    present = [s for s in SPLITS if builder.writers[s].count > 0]
    if not present:
        raise DataError("no examples (every split is empty or unlabelled)", name)
    labels = _order_labels(task, builder.labels)
    h = fingerprint_hasher(task, labels, options)
    splits: dict[str, Any] = {}
    for split in present:
        writer = builder.writers[split]
        h.update(f"\x00{split}\x00{writer.count}\x00".encode())
        blob = directory / f"{split}.blob"
        with open(blob, "rb") as f:
            hashlib.file_digest(f, lambda h=h: h)
        offsets = directory / f"{split}.offsets"
        size = writer.offsets[-1]
        splits[split] = {
            "count": writer.count,
            "bytes": size,
            "blob_crc": sampled_crcs(blob, size),
            "offsets_crc": sampled_crcs(offsets, 8 * (writer.count + 1)),
            "exceptions": writer.exceptions,
        }
    for split in SPLITS:
        if split not in splits:
            for suffix in (".blob", ".offsets"):
                (directory / f"{split}{suffix}").unlink()
    body = {
        "version": STORE_VERSION,
        "key": key,
        "task": task,
        "labels": list(labels),
        "fingerprint": h.hexdigest(),
        "splits": splits,
        "dropped": dropped_by_file,
    }
    write_checksummed_json(directory / "manifest.json", body)


# ----- reading ------------------------------------------------------------------------------


class DamagedStore(Exception):
    """A record store entry that must not be used: what is wrong with it."""


class _Split:
    """One split of an opened entry: its blob and offsets, mapped."""

    def __init__(self, directory: Path, split: str, info: Mapping[str, Any]):
        count, size = info["count"], info["bytes"]
        blob, offsets = directory / f"{split}.blob", directory / f"{split}.offsets"
        for path, expected in ((blob, size), (offsets, 8 * (count + 1))):
            try:
                actual = path.stat().st_size
            except FileNotFoundError:
                raise DamagedStore(f"{path.name} is missing") from None
            if actual != expected:
                raise DamagedStore(f"{path.name} has {actual} bytes, expected {expected}")
        if sampled_crcs(blob, size) != info["blob_crc"]:
            raise DamagedStore(f"{blob.name}: content differs from when it was written")
        if sampled_crcs(offsets, 8 * (count + 1)) != info["offsets_crc"]:
            raise DamagedStore(f"{offsets.name}: content differs from when it was written")
        with open(blob, "rb") as f:
            self.blob = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        with open(offsets, "rb") as f:
            self._offsets_map = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        self.offsets = np.frombuffer(self._offsets_map, dtype="<i8")
        if self.offsets[0] != 0 or self.offsets[-1] != size:
            raise DamagedStore(f"{offsets.name}: offsets do not span {blob.name}")
        self.count = count
        self.exceptions = {int(i): fields for i, fields in info["exceptions"]}


class RecordStore:
    """An opened entry of the record store (see the module docstring).

    Raises:
        DamagedStore: The entry is incomplete, truncated or altered.
    """

    def __init__(self, directory: str | os.PathLike, key: Mapping[str, Any] | None = None):
        self.directory = Path(directory)
        body = read_checksummed_json(self.directory / "manifest.json", DamagedStore)
        if body.get("version") != STORE_VERSION or (key is not None and body["key"] != key):
            raise DamagedStore("manifest.json describes another corpus or store version")
        self.task: str = body["task"]
        self.labels = tuple(body["labels"])
        self.fingerprint: str = body["fingerprint"]
        self.dropped = [tuple(d) for d in body["dropped"]]
        self.splits = {s: _Split(self.directory, s, info) for s, info in body["splits"].items()}

    def examples(self, split: str) -> StoredExamples:
        return StoredExamples(self, split)


class StoredExamples(Sequence):
    """A split's examples, decoded from the mapped store one at a time when indexed.

    A read-only sequence like the tuple a corpus read whole holds: ``len``, indexing
    (negative too; a slice gives a tuple), iteration, ``==`` against any sequence of
    examples. It holds no example as a Python object.
    """

    def __init__(self, store: RecordStore, split: str):
        self._store = store
        self._split = split
        part = store.splits[split]
        self._blob = part.blob
        self._offsets = part.offsets
        self._exceptions = part.exceptions
        self._len = part.count
        task = store.task
        self._make = NERExample if task == "ner" else TextExample
        if task == "summarization":
            self._make = Seq2SeqExample

    def __len__(self) -> int:
        return self._len

    def _decode(self, i: int, start: int, end: int) -> Any:
        exact = self._exceptions.get(i)
        if exact is not None:
            first, second = exact
        else:
            text = self._blob[start : end - 1].decode("utf-8", "surrogatepass")
            first, second = text.split("\x1e")
        if self._make is NERExample:
            if exact is not None:
                return NERExample(tuple(first), tuple(second))
            return NERExample(tuple(first.split("\x1f")), tuple(second.split("\x1f")))
        return self._make(first, second)

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return tuple(self[i] for i in range(*index.indices(self._len)))
        i = operator.index(index)
        if i < 0:
            i += self._len
        if not 0 <= i < self._len:
            raise IndexError(f"example index {index} out of range for {self._len} examples")
        return self._decode(i, int(self._offsets[i]), int(self._offsets[i + 1]))

    def __iter__(self) -> Iterator:
        step = 65536
        for begin in range(0, self._len, step):
            offsets = self._offsets[begin : min(begin + step, self._len) + 1].tolist()
            for j in range(len(offsets) - 1):
                yield self._decode(begin + j, offsets[j], offsets[j + 1])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, StoredExamples) and other._blob is self._blob:
            return True
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]

    def __add__(self, other: Sequence) -> tuple:
        return (*self, *other)

    def __radd__(self, other: Sequence) -> tuple:
        return (*other, *self)

    def __repr__(self) -> str:
        return f"StoredExamples({self._split!r}, {self._len} examples, {self._store.directory})"

    def __reduce__(self) -> tuple:
        if self._store.directory.exists():
            return _open_split, (str(self._store.directory), self._split)
        return tuple, (tuple(self),)


def _open_split(directory: str, split: str) -> StoredExamples:
    return RecordStore(directory).examples(split)


# ----- the entry point ----------------------------------------------------------------------


def _open(entry: Path, key: Mapping[str, Any]) -> RecordStore | None | DamagedStore:
    """The entry, None where there is none, or what is wrong with it."""
    if not entry.exists():
        return None
    try:
        return RecordStore(entry, key)
    except DamagedStore as err:
        return err


def plan_size(plan: LocalPlan) -> int:
    """Bytes in all the files of ``plan``."""
    return sum(os.path.getsize(p) for paths in plan.files.values() for p in paths)


def load_stored(
    task: str,
    plan: LocalPlan,
    name: str,
    options: Mapping[str, Any],
    request: Mapping[str, Any],
) -> Corpus:
    """The corpus of the text files of ``plan``, through the record store.

    Args:
        task: "ner", "classification" or "summarization".
        plan: The files and their format (conll, csv, tsv, jsonl).
        name: The corpus's display name.
        options: The loader options that enter the fingerprint.
        request: ``tag_scheme``, ``encoding``, ``empty_targets`` and ``columns`` (the
            ``*_column`` keywords).

    Raises:
        DataError: As :func:`textgym.corpora.local.read_plan`.
    """
    key = {
        "task": task,
        "format": plan.fmt,
        "options": json.loads(json.dumps(options, sort_keys=True, default=str)),
        "request": json.loads(json.dumps(request, sort_keys=True, default=str)),
        "files": [[split, [file_digest(p) for p in paths]] for split, paths in plan.files.items()],
    }
    digest = hashlib.blake2b(json.dumps(key, sort_keys=True).encode(), digest_size=12).hexdigest()
    root = store_dir()
    entry = root / f"{task}-{digest}"
    found = _open(entry, key)
    if not isinstance(found, RecordStore):
        try:
            root.mkdir(parents=True, exist_ok=True)
            with file_lock(root / f".{entry.name}.lock"):
                found = _open(entry, key)  # another process may have built it meanwhile
                if isinstance(found, DamagedStore):
                    warnings.warn(
                        f"{entry}: damaged corpus store entry ({found}); rebuilding it",
                        stacklevel=4,
                    )
                    discard_dir(entry)
                if not isinstance(found, RecordStore):
                    with atomic_dir(entry) as tmp:
                        _build(Path(tmp), task, plan, name, key, options, request)
                    found = RecordStore(entry, key)
        except OSError:  # a read-only cache costs a build per process, not correctness
            found = _build_private(task, plan, name, key, options, request)
    else:
        paths = [p for paths in plan.files.values() for p in paths]
        for index, count in found.dropped:
            warn_dropped(count, paths[index])
    return Corpus(
        name=name,
        task=task,
        splits=MappingProxyType({s: found.examples(s) for s in found.splits}),
        labels=found.labels,
        fingerprint=found.fingerprint,
    )


def _build_private(
    task: str,
    plan: LocalPlan,
    name: str,
    key: Mapping[str, Any],
    options: Mapping[str, Any],
    request: Mapping[str, Any],
) -> RecordStore:
    """An entry in a temporary directory, removed once mapped (POSIX keeps mapped files)."""
    tmp = Path(tempfile.mkdtemp(prefix="textgym-corpus-"))
    try:
        _build(tmp, task, plan, name, key, options, request)
        return RecordStore(tmp, key)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
