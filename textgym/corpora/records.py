"""Plain in-memory records: the examples of each task and the :class:`Corpus` holding them."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from textgym.errors import TextgymError

TASKS = ("ner", "classification", "summarization")
SPLITS = ("train", "validation", "test")

# Accepted spellings of the three split names (Hugging Face and CoNLL habits).
SPLIT_ALIASES = {
    "train": "train",
    "training": "train",
    "validation": "validation",
    "valid": "validation",
    "dev": "validation",
    "val": "validation",
    "test": "test",
    "testing": "test",
}

# Bump when a loader changes what it produces from the same files, so that fingerprints
# (and the tokenizer caches keyed by them) change too.
_FORMAT_VERSION = "1"


@dataclass(frozen=True, slots=True)
class NERExample:
    """One sentence: its words and their IOB2 tags (same length, never empty)."""

    words: tuple[str, ...]
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TextExample:
    """One document to classify: its text and its class name."""

    text: str
    label: str


@dataclass(frozen=True, slots=True)
class Seq2SeqExample:
    """One summarization pair: the source document and its reference summary."""

    source: str
    target: str


Example = NERExample | TextExample | Seq2SeqExample


def check_task(task: str) -> str:
    """Return ``task`` if it is one of :data:`TASKS`, else raise :class:`TextgymError`."""
    if task not in TASKS:
        raise TextgymError(f"unknown task {task!r}; valid tasks: {', '.join(TASKS)}")
    return task


def normalize_split(name: str, valid: Iterable[str] = SPLITS) -> str:
    """Map a split name or alias ("dev", "valid", ...) to train/validation/test.

    Raises:
        TextgymError: ``name`` is not a split name, or not one of ``valid``.
    """
    valid = tuple(valid)
    split = SPLIT_ALIASES.get(str(name).lower()) if isinstance(name, str) else None
    if split is None or split not in valid:
        raise TextgymError(f"unknown split {name!r}; valid splits: {', '.join(valid)}")
    return split


@dataclass(frozen=True)
class Corpus:
    """A dataset read into memory, one tuple of examples per split.

    Build one with :func:`textgym.corpora.load_corpus`.

    Attributes:
        name: Display name: "wnut16", "bbc-news", "sst2", or "<format>:<absolute path>".
        task: "ner", "classification" or "summarization".
        splits: Split name ("train", "validation", "test"; only those present) to a tuple of
            :class:`NERExample`, :class:`TextExample` or :class:`Seq2SeqExample`.
        labels: NER: every IOB2 tag seen in any split, "O" first (always present), then per
            entity type in sorted order, B- before I-. Classification: the sorted class
            names over all splits. Summarization: ().
        fingerprint: Hex digest of the task, labels, loader options and every example of
            every split; identical content gives the identical fingerprint in any process.
    """

    name: str
    task: str
    splits: Mapping[str, tuple]
    labels: tuple[str, ...]
    fingerprint: str

    def split(self, name: str) -> tuple:
        """The examples of split ``name`` ("valid" and "dev" mean "validation").

        Raises:
            TextgymError: The corpus has no such split; the message lists those it has.
        """
        try:
            split = normalize_split(name, self.splits)
        except TextgymError:
            raise TextgymError(
                f"corpus {self.name!r} has no split {name!r}; "
                f"valid splits: {', '.join(self.splits)}"
            ) from None
        return self.splits[split]

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def __reduce__(self) -> tuple:
        # A mappingproxy cannot be pickled; rebuild it from a plain dict.
        return _rebuild_corpus, (
            self.name,
            self.task,
            dict(self.splits),
            self.labels,
            self.fingerprint,
        )

    def __repr__(self) -> str:
        sizes = ", ".join(f"{k}={len(v)}" for k, v in self.splits.items())
        return (
            f"Corpus(name={self.name!r}, task={self.task!r}, splits=({sizes}), "
            f"labels={len(self.labels)}, fingerprint={self.fingerprint[:12]!r})"
        )


def _rebuild_corpus(
    name: str, task: str, splits: dict, labels: tuple[str, ...], fingerprint: str
) -> Corpus:
    return Corpus(name, task, MappingProxyType(splits), labels, fingerprint)


def ner_labels(examples: Iterable[NERExample]) -> tuple[str, ...]:
    """Tag set in the documented order: "O", then per sorted entity type B-X, I-X."""
    seen: set[str] = set()
    for ex in examples:
        seen.update(ex.tags)
    seen.discard("O")
    return ("O", *sorted(seen, key=lambda tag: (tag[2:], tag[0] != "B")))


def fingerprint_hasher(task: str, labels: tuple[str, ...], options: Mapping[str, Any]) -> Any:
    """The fingerprint's hash, fed with its header. Then, per non-empty split in
    :data:`SPLITS` order, ``"\\x00<split>\\x00<count>\\x00"`` and :func:`example_bytes` of
    each example (see :func:`make_corpus`)."""
    h = hashlib.blake2b(digest_size=16)
    header = {"version": _FORMAT_VERSION, "task": task, "labels": labels, "options": options}
    h.update(json.dumps(header, sort_keys=True, default=str).encode("utf-8"))
    return h


def example_bytes(example: Example) -> bytes:
    """What the fingerprint hashes of one example (ending in U+001D)."""
    if isinstance(example, NERExample):
        parts = ("\x1f".join(example.words), "\x1f".join(example.tags))
    elif isinstance(example, TextExample):
        parts = (example.text, example.label)
    else:
        parts = (example.source, example.target)
    return "\x1e".join(parts).encode("utf-8", "surrogatepass") + b"\x1d"


def make_corpus(
    name: str, task: str, splits: Mapping[str, Iterable[Example]], options: Mapping[str, Any]
) -> Corpus:
    """Assemble a :class:`Corpus`: order the splits, derive the labels, compute the fingerprint.

    Args:
        name: Display name.
        task: One of :data:`TASKS`.
        splits: Split name to examples; empty splits are left out.
        options: Loader options that shape the content (format, tag scheme, columns); they
            enter the fingerprint. Paths must not be in here: the fingerprint depends on the
            content, not on where the files live.
    """
    ordered = {s: tuple(splits[s]) for s in SPLITS if s in splits and len(splits[s]) > 0}
    every = [ex for examples in ordered.values() for ex in examples]
    if task == "ner":
        labels = ner_labels(every)
    elif task == "classification":
        labels = tuple(sorted({ex.label for ex in every}))
    else:
        labels = ()
    h = fingerprint_hasher(task, labels, options)
    for split, examples in ordered.items():
        h.update(f"\x00{split}\x00{len(examples)}\x00".encode())
        for ex in examples:
            # Unit/record separators cannot occur inside a whitespace-split word and are
            # vanishingly rare in text, so the encoding is unambiguous in practice.
            h.update(example_bytes(ex))
    return Corpus(
        name=name,
        task=task,
        splits=MappingProxyType(ordered),
        labels=labels,
        fingerprint=h.hexdigest(),
    )
