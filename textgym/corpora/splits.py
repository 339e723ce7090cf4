"""Deterministic train/validation/test splits by a stable hash.

A key string (a file name, a sentence, a document's text) goes into one of 100 buckets:
the first 8 bytes of ``sha256(key.encode("utf-8"))`` read as a big-endian integer, modulo
100. Buckets 0-79 are train, 80-89 validation, 90-99 test. The bucket depends on the key
alone, so the split is the same in every process, on every machine, in any file order, and
identical keys (duplicate sentences or documents) always land in the same split.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from .records import NERExample, Seq2SeqExample, TextExample

T = TypeVar("T")

TRAIN_BUCKETS = 80
VALIDATION_BUCKETS = 10


def bucket(key: str) -> int:
    """The key's bucket in 0..99 (see the module docstring)."""
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % 100


def split_of(key: str) -> str:
    """ "train", "validation" or "test" for ``key`` (80/10/10 by :func:`bucket`)."""
    b = bucket(key)
    if b < TRAIN_BUCKETS:
        return "train"
    if b < TRAIN_BUCKETS + VALIDATION_BUCKETS:
        return "validation"
    return "test"


def example_key(example: NERExample | TextExample | Seq2SeqExample) -> str:
    """The hash key of an example with no file name: its input.

    NER: the words joined by single spaces; classification: the text; summarization: the
    source. Keying on the input keeps duplicated inputs inside one split.
    """
    if isinstance(example, NERExample):
        return " ".join(example.words)
    if isinstance(example, TextExample):
        return example.text
    return example.source


def hash_split(items: Iterable[T], key: Callable[[T], str] = example_key) -> dict[str, list[T]]:
    """Split ``items`` 80/10/10 by the bucket of ``key(item)``, keeping their order."""
    out: dict[str, list[T]] = {"train": [], "validation": [], "test": []}
    for item in items:
        out[split_of(key(item))].append(item)
    return out


def carve_validation(
    train: Sequence[T], key: Callable[[T], str] = example_key
) -> tuple[list[T], list[T]]:
    """Take a validation split out of a train split that has none.

    The examples whose key falls in the validation buckets (80-89, about 10% of train)
    become validation; the others stay in train, in their order. Used for Hugging Face
    datasets published without a validation split (imdb, ag_news).
    """
    kept: list[T] = []
    carved: list[T] = []
    for item in train:
        b = bucket(key(item))
        is_val = TRAIN_BUCKETS <= b < TRAIN_BUCKETS + VALIDATION_BUCKETS
        (carved if is_val else kept).append(item)
    return kept, carved
