"""Hugging Face ``datasets``: hub names, ``save_to_disk`` directories, parquet/arrow files.

``datasets`` is imported only here, and only when one of these sources is asked for, so
textgym works without it.

Columns: NER reads ``tokens``/``words`` and ``ner_tags``/``tags`` (a list of ``ClassLabel``
ints is turned into tag names through the dataset's features; string tags are taken as
they are); classification reads a text column and a label column (``ClassLabel`` ints
become their names); summarization reads the known columns of the dataset (cnn_dailymail
``article``/``highlights``, xsum ``document``/``summary``) or the defaults of
:data:`textgym.corpora.tabular.DEFAULT_COLUMNS`. Rows whose label is -1 or null are
unlabelled (GLUE test sets, imdb's "unsupervised" split) and are dropped; a split left
empty is dropped. Split names "validation"/"valid"/"dev"/"val" map to "validation";
splits with other names (e.g. "unsupervised") are ignored.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from textgym.errors import DataError, TextgymError
from textgym.hub import offline_mode, offline_reason

from .conll import brief, to_iob2
from .records import SPLIT_ALIASES, NERExample, Seq2SeqExample, TextExample
from .tabular import check_words, pick_column


@dataclass(frozen=True)
class HubSpec:
    """Where a known dataset lives on the hub and which columns to read."""

    path: str
    task: str
    config: str | None = None
    columns: Mapping[str, str] = field(default_factory=dict)


# Repository ids of the script-free (parquet) versions: datasets>=4 no longer runs
# loading scripts, which the old canonical names relied on.
HUB_DATASETS: dict[str, HubSpec] = {
    "conll2003": HubSpec(
        "lhoestq/conll2003", "ner", columns={"words": "tokens", "tags": "ner_tags"}
    ),
    "sst2": HubSpec(
        "stanfordnlp/sst2", "classification", columns={"text": "sentence", "label": "label"}
    ),
    "ag_news": HubSpec(
        "fancyzhx/ag_news", "classification", columns={"text": "text", "label": "label"}
    ),
    "imdb": HubSpec(
        "stanfordnlp/imdb", "classification", columns={"text": "text", "label": "label"}
    ),
    "cnn_dailymail": HubSpec(
        "abisee/cnn_dailymail",
        "summarization",
        config="3.0.0",
        columns={"source": "article", "target": "highlights"},
    ),
    "xsum": HubSpec(
        "EdinburghNLP/xsum", "summarization", columns={"source": "document", "target": "summary"}
    ),
}

_LOCAL_HINT = {
    "ner": 'dataset="conll", data_files={"train": "train.txt", "validation": "valid.txt", '
    '"test": "test.txt"} (or data_dir=DIR)',
    "classification": 'dataset="csv" (or "tsv", "jsonl"), data_files={"train": "train.csv", '
    '"validation": "dev.csv", "test": "test.csv"} (or data_dir=DIR)',
    "summarization": 'dataset="jsonl" (or "csv", "tsv"), data_files={"train": "train.jsonl", '
    '"validation": "dev.jsonl", "test": "test.jsonl"} (or data_dir=DIR)',
}


def local_hint(task: str) -> str:
    """How to load the same data from local files, for error messages."""
    return (
        f"To work offline, point textgym at local files instead: {_LOCAL_HINT[task]}, or at a "
        "directory written by DatasetDict.save_to_disk."
    )


def _datasets(what: str, task: str, context: str = "") -> Any:
    try:
        import datasets
    except ImportError:
        raise TextgymError(
            f"{context}loading {what} needs the 'datasets' package, which is not installed "
            f"(pip install 'textgym[hub]'). {local_hint(task)}"
        ) from None
    return datasets


@dataclass(frozen=True)
class Columns:
    """Column choices passed by the user (None: use the defaults)."""

    text: str | None = None
    label: str | None = None
    source: str | None = None
    target: str | None = None

    def with_defaults(self, known: Mapping[str, str]) -> Columns:
        return Columns(
            self.text or known.get("text"),
            self.label or known.get("label"),
            self.source or known.get("source"),
            self.target or known.get("target"),
        )


def _class_names(feature: Any) -> list[str] | None:
    names = getattr(feature, "names", None)
    return list(names) if isinstance(names, list) and names else None


def _ner_examples(
    ds: Any, where: str, tag_scheme: str, known: Mapping[str, str]
) -> list[NERExample]:
    cols = ds.column_names
    wcol = pick_column(cols, "words", known.get("words"), where)
    tcol = pick_column(cols, "tags", known.get("tags"), where)
    names = _class_names(getattr(ds.features[tcol], "feature", None))
    data = ds.select_columns([wcol, tcol]).to_dict()
    out = []
    for i, (words, tags) in enumerate(zip(data[wcol], data[tcol], strict=True)):
        record = f"row {i}: "
        words = [str(w) for w in words or ()]
        check_words(words, wcol, where, None, record)
        if tags is None or len(tags) != len(words):
            raise DataError(f"{record}{len(words)} words but {len(tags or ())} tags", where)
        if names is not None:
            if not all(isinstance(t, int) and 0 <= t < len(names) for t in tags):
                raise DataError(
                    f"{record}tag ids {brief(tags)} outside the {len(names)} class names of {tcol!r}",
                    where,
                )
            tags = [names[t] for t in tags]
        out.append(NERExample(tuple(words), to_iob2(tags, tag_scheme, where, None, record)))
    return out


def _label_of(value: Any, names: list[str] | None, where: str, record: str) -> str | None:
    """The label as a string, or None for an unlabelled row (null, or -1 of a ClassLabel)."""
    if value is None or (names is not None and value == -1):
        return None
    if names is not None:
        if not isinstance(value, int) or not 0 <= value < len(names):
            raise DataError(
                f"{record}label {brief(value)} outside the {len(names)} class names", where
            )
        return names[value]
    label = str(value).strip()
    if not label:
        raise DataError(f"{record}empty label", where)
    return label


def _text(value: Any, column: str, where: str, record: str) -> str:
    if isinstance(value, str):
        return value
    raise DataError(f"{record}field {column!r} is {brief(value)}, expected a string", where)


def _examples(
    task: str, ds: Any, where: str, columns: Columns, tag_scheme: str, known: Mapping[str, str]
) -> list:
    if task == "ner":
        return _ner_examples(ds, where, tag_scheme, known)
    cols = ds.column_names
    if task == "classification":
        xcol = pick_column(cols, "text", columns.text, where)
        ycol = pick_column(cols, "label", columns.label, where)
        names = _class_names(ds.features[ycol])
        data = ds.select_columns([xcol, ycol]).to_dict()
        out = []
        for i, (text, value) in enumerate(zip(data[xcol], data[ycol], strict=True)):
            label = _label_of(value, names, where, f"row {i}: ")
            if label is not None:
                out.append(TextExample(_text(text, xcol, where, f"row {i}: "), label))
        return out
    scol = pick_column(cols, "source", columns.source, where)
    tcol = pick_column(cols, "target", columns.target, where)
    data = ds.select_columns([scol, tcol]).to_dict()
    return [
        Seq2SeqExample(_text(s, scol, where, f"row {i}: "), _text(t, tcol, where, f"row {i}: "))
        for i, (s, t) in enumerate(zip(data[scol], data[tcol], strict=True))
    ]


def _convert(
    task: str,
    loaded: Any,
    where: str,
    columns: Columns,
    tag_scheme: str,
    known: Mapping[str, str] | None = None,
    split_hint: str | None = None,
) -> tuple[dict[str, list], bool]:
    """Examples per split of a Dataset or DatasetDict; the flag says "no split names"."""
    datasets = _datasets(where, task)
    known = known or {}
    columns = columns.with_defaults(known)
    if isinstance(loaded, (datasets.IterableDataset, datasets.IterableDatasetDict)):
        raise TextgymError("streaming=True is not supported: a corpus is read into memory")
    if isinstance(loaded, datasets.Dataset):
        if split_hint is None:
            return {"train": _examples(task, loaded, where, columns, tag_scheme, known)}, True
        loaded = {split_hint: loaded}
    splits: dict[str, list] = {}
    ignored = []
    for raw_name, ds in loaded.items():
        split = SPLIT_ALIASES.get(str(raw_name).lower())
        if split is None:
            ignored.append(str(raw_name))
            continue
        if split in splits:
            raise TextgymError(
                f"{where}: two splits map to {split!r} ({', '.join(map(str, loaded))})"
            )
        splits[split] = _examples(task, ds, f"{where} [{raw_name}]", columns, tag_scheme, known)
    if not splits:
        raise TextgymError(
            f"{where}: no train/validation/test split among its splits ({', '.join(ignored)})"
        )
    return splits, False


def load_hub(
    task: str,
    name: str,
    columns: Columns,
    tag_scheme: str,
    hub_kwargs: Mapping[str, Any],
    context: str = "",
) -> tuple[dict[str, list], bool]:
    """Load ``name`` from the hub with ``datasets.load_dataset`` and map it to examples.

    Known names (:data:`HUB_DATASETS`) map to their repository and config; any other name is
    passed to ``load_dataset`` as it is, with ``hub_kwargs``.

    ``context`` starts the error message (the loader says there that the name is not a
    packaged corpus, a local format or a path).

    Raises:
        TextgymError: ``datasets`` is missing or loading failed (offline, unknown name); the
            message names the dataset and the local-file alternative.
    """
    spec = HUB_DATASETS.get(name)
    datasets = _datasets(f"the Hugging Face dataset {name!r}", task, context)
    kwargs = dict(hub_kwargs)
    if kwargs.get("streaming"):
        raise TextgymError("streaming=True is not supported: a corpus is read into memory")
    path = name
    if spec is not None:
        path = spec.path
        if spec.config is not None:
            kwargs.setdefault("name", spec.config)
    # Out of reach (offline mode, no connection): read only the local cache and fail in a
    # moment, instead of after half a minute of retries.
    offline = offline_reason()
    try:
        with offline_mode() if offline else contextlib.nullcontext():
            loaded = datasets.load_dataset(path, **kwargs)
    except Exception as e:  # datasets raises many types (ConnectionError, FileNotFoundError, ...)
        shown = repr(name) if path == name else f"{name!r} ({path})"
        note = f" from the local cache: the hub is out of reach, {offline}" if offline else ""
        raise TextgymError(
            f"{context}could not load the Hugging Face dataset {shown}{note}: "
            f"{type(e).__name__}: {e}. {local_hint(task)}"
        ) from e
    split = kwargs.get("split")
    split_hint = None
    if isinstance(split, str):
        split_hint = split.split("[")[0].split("+")[0].strip()
    return _convert(
        task, loaded, name, columns, tag_scheme, spec.columns if spec else None, split_hint
    )


def load_files(
    task: str,
    fmt: str,
    files: Mapping[str | None, Sequence[str]],
    columns: Columns,
    tag_scheme: str,
    hub_kwargs: Mapping[str, Any],
) -> tuple[dict[str, list], bool]:
    """Local parquet/arrow files through ``load_dataset(fmt, data_files=...)``."""
    datasets = _datasets(f"{fmt} files", task)
    single = None in files
    data_files: Any = list(files[None]) if single else {k: list(v) for k, v in files.items()}
    where = ", ".join(os.path.basename(p) for paths in files.values() for p in paths)
    try:
        loaded = datasets.load_dataset(fmt, data_files=data_files, **hub_kwargs)
    except Exception as e:  # pyarrow and datasets raise many types on a bad file
        raise DataError(f"could not read {fmt} files: {type(e).__name__}: {e}", where) from e
    splits, _ = _convert(task, loaded, where, columns, tag_scheme)
    return splits, single


def is_saved_dataset(path: str | os.PathLike) -> bool:
    """True for a directory written by ``Dataset.save_to_disk`` or ``DatasetDict.save_to_disk``."""
    return os.path.isfile(os.path.join(path, "dataset_dict.json")) or os.path.isfile(
        os.path.join(path, "state.json")
    )


def load_saved(
    task: str, path: str, columns: Columns, tag_scheme: str
) -> tuple[dict[str, list], bool]:
    """A ``save_to_disk`` directory through ``datasets.load_from_disk``."""
    datasets = _datasets(f"the saved dataset {path!r}", task)
    try:
        loaded = datasets.load_from_disk(path)
    except Exception as e:  # a corrupt or partial directory
        raise DataError(f"could not load the saved dataset: {type(e).__name__}: {e}", path) from e
    return _convert(task, loaded, path, columns, tag_scheme)
