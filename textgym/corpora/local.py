"""Finding and reading local data files.

Three ways to name files:

- ``data_files``: the Hugging Face ``datasets`` convention. A mapping from split name
  ("train", "validation"/"valid"/"dev"/"val", "test") to one path or a list of paths, or a
  single path or list of paths with no split names. Relative paths are taken from
  ``data_dir`` when it is given; glob patterns (``*``, ``?``, ``[``) are expanded.
- ``data_dir``: a directory whose split files are named ``<split>.<ext>`` (or just
  ``<split>``), with ``<split>`` one of ``train``/``training``; ``validation``/``valid``/
  ``dev``/``val``; ``test``/``testing``: ``train.txt``, ``valid.txt``, ``test.txt``. CoNLL-2003's
  ``<name>.train``, ``<name>.testa`` (validation) and ``<name>.testb`` (test) work too.
  Any other file (``train_backup.txt``, ``test_predictions.txt``, a README) is not data
  and is left alone; two files for one split (``train.txt`` and ``train.conll``) are an
  error. Sub-directories are not searched.
- a path given as ``dataset``: a file (one file, no split names) or a directory (as
  ``data_dir``, or a ``save_to_disk`` directory).

The format comes from ``dataset`` ("conll", "csv", "tsv", "jsonl"/"json", "parquet",
"arrow") or else from the extension: .csv, .tsv, .jsonl/.json/.ndjson, .parquet, .arrow;
for NER any other text file (.txt, .conll, no extension, eng.train) is CoNLL.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from textgym.errors import DataError, TextgymError

from .conll import parse_conll
from .records import SPLIT_ALIASES, SPLITS
from .tabular import iter_examples, read_records, records_to_examples
from .textio import read_text

LOCAL_FORMATS = ("conll", "csv", "tsv", "jsonl", "json", "parquet", "arrow")
TEXT_FORMATS = ("conll", "csv", "tsv", "jsonl")

_EXTENSIONS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".json": "jsonl",
    ".ndjson": "jsonl",
    ".parquet": "parquet",
    ".arrow": "arrow",
    ".conll": "conll",
}
# Files in a data directory that are never data.
_NOT_DATA = {
    ".md", ".rst", ".html", ".pdf", ".py", ".sh", ".yaml", ".yml", ".cfg", ".ini", ".lock",
    ".gz", ".bz2", ".xz", ".zip", ".tar", ".zst", ".7z", ".pkl", ".pt", ".npy", ".npz",
}  # fmt: skip
_SPLIT_WORDS = {**SPLIT_ALIASES, "testa": "validation", "testb": "test"}
_TASK_FORMATS = {
    "ner": ("conll", "jsonl", "parquet", "arrow"),
    "classification": ("csv", "tsv", "jsonl", "parquet", "arrow"),
    "summarization": ("csv", "tsv", "jsonl", "parquet", "arrow"),
}


def normalize_format(fmt: str) -> str:
    """ "json" is read as JSON Lines (or a JSON array); other names are kept."""
    return "jsonl" if fmt == "json" else fmt


def check_format(task: str, fmt: str) -> None:
    """Raise :class:`TextgymError` when ``fmt`` cannot hold examples of ``task``."""
    if fmt not in _TASK_FORMATS[task]:
        raise TextgymError(
            f"{fmt!r} files cannot hold {task} data; formats for {task}: "
            f"{', '.join(_TASK_FORMATS[task])}"
        )


def format_of(path: str, task: str) -> str | None:
    """The format of ``path`` by its extension, or None when it cannot be told."""
    ext = os.path.splitext(path)[1].lower()
    if ext in _EXTENSIONS:
        return _EXTENSIONS[ext]
    if task == "ner" and ext not in _NOT_DATA:
        return "conll"
    return None


def split_of_name(name: str) -> str | None:
    """The split a data_dir file name stands for, or None when it names no split.

    ``train.txt``, ``valid.csv``, ``test`` (the part before the first dot) and CoNLL-2003's
    ``eng.train``, ``eng.testa``, ``eng.testb`` (the part after the only dot) name a split;
    ``train_backup.txt`` and ``test_predictions.txt`` do not.
    """
    parts = name.lower().split(".")
    if parts[0] in SPLIT_ALIASES:
        return SPLIT_ALIASES[parts[0]]
    if len(parts) == 2 and parts[1] in _SPLIT_WORDS:
        return _SPLIT_WORDS[parts[1]]
    return None


@dataclass(frozen=True)
class LocalPlan:
    """Which files to read, in which format.

    Attributes:
        fmt: One of csv, tsv, jsonl, conll, parquet, arrow.
        files: Split name to its files (absolute paths, in order); the key None means the
            files carry no split and get the 80/10/10 hash split.
        root: The absolute path shown in the corpus name ("<fmt>:<root>").
    """

    fmt: str
    files: Mapping[str | None, tuple[str, ...]]
    root: str

    def signature(self) -> tuple:
        """Hashable identity of the plan, including the files' sizes and mtimes."""
        sig = []
        for split, paths in self.files.items():
            stats = []
            for p in paths:
                st = os.stat(p)
                stats.append((p, st.st_size, st.st_mtime_ns))
            sig.append((split, tuple(stats)))
        return (self.fmt, tuple(sig))


def _expand(path: str | os.PathLike, base: str | None) -> list[str]:
    path = os.path.expanduser(os.fspath(path))
    if base is not None and not os.path.isabs(path):
        path = os.path.join(base, path)
    if glob.has_magic(path):
        matches = sorted(p for p in glob.glob(path) if os.path.isfile(p))
        if not matches:
            raise DataError("no file matches this pattern", path)
        return [os.path.abspath(p) for p in matches]
    if not os.path.exists(path):
        raise DataError("no such file", path)
    if os.path.isdir(path):
        raise DataError(
            "is a directory; data_files takes files (use data_dir for a directory)", path
        )
    return [os.path.abspath(path)]


def _paths(value: Any, base: str | None) -> tuple[str, ...]:
    if isinstance(value, (str, os.PathLike)):
        return tuple(_expand(value, base))
    if (
        isinstance(value, Sequence)
        and value
        and all(isinstance(v, (str, os.PathLike)) for v in value)
    ):
        return tuple(p for v in value for p in _expand(v, base))
    raise TextgymError(
        f"data_files entries must be a path or a non-empty list of paths, got {value!r}"
    )


def _common_format(task: str, fmt: str | None, paths: Sequence[str], where: str) -> str:
    if fmt is not None:
        return fmt
    formats = {format_of(p, task) for p in paths}
    if None in formats:
        unknown = next(p for p in paths if format_of(p, task) is None)
        raise TextgymError(
            f"cannot tell the format of {unknown!r} from its extension; pass "
            f"dataset={' or '.join(map(repr, _TASK_FORMATS[task]))}"
        )
    if len(formats) > 1:
        raise TextgymError(
            f"{where} mixes formats ({', '.join(sorted(formats))}); pass dataset=<format> "
            "or name the files with data_files"
        )
    return formats.pop()


def plan_data_files(
    task: str, fmt: str | None, data_files: Any, data_dir: str | os.PathLike | None
) -> LocalPlan:
    """A plan for ``data_files`` (see the module docstring)."""
    base = None
    if data_dir is not None:
        base = os.path.expanduser(os.fspath(data_dir))
        if not os.path.isdir(base):
            raise DataError("no such directory (data_dir)", base)
    files: dict[str | None, tuple[str, ...]] = {}
    if isinstance(data_files, Mapping):
        if not data_files:
            raise TextgymError("data_files is an empty mapping; give at least a 'train' file")
        for key, value in data_files.items():
            split = SPLIT_ALIASES.get(str(key).lower())
            if split is None:
                raise TextgymError(
                    f"unknown split {key!r} in data_files; valid splits: {', '.join(SPLITS)} "
                    "(or valid/dev/val for validation)"
                )
            if split in files:
                raise TextgymError(f"data_files names the {split!r} split twice")
            files[split] = _paths(value, base)
    else:
        files[None] = _paths(data_files, base)
    every = [p for paths in files.values() for p in paths]
    fmt = _common_format(task, fmt, every, "data_files")
    root = os.path.abspath(base) if base else os.path.commonpath(every)
    if len(every) == 1 and base is None:
        root = every[0]
    return LocalPlan(fmt, {s: files[s] for s in (*SPLITS, None) if s in files}, root)


def plan_directory(task: str, fmt: str | None, directory: str | os.PathLike) -> LocalPlan:
    """A plan for the split files of ``directory`` (see the module docstring)."""
    root = os.path.abspath(os.path.expanduser(os.fspath(directory)))
    if not os.path.isdir(root):
        raise DataError("no such directory", root)
    found: dict[str, list[str]] = {}
    names = sorted(n for n in os.listdir(root) if not n.startswith("."))
    for name in names:
        path = os.path.join(root, name)
        if not os.path.isfile(path):
            continue
        kind = format_of(name, task)
        if kind is None or (fmt is not None and kind != fmt):
            continue
        split = split_of_name(name)
        if split is not None:
            found.setdefault(split, []).append(path)
    if not found:
        raise DataError(
            "found no train/validation/test files (named train.*, validation.*/valid.*/"
            f"dev.*/val.*, test.*{', of format ' + fmt if fmt else ''}); files here: "
            f"{', '.join(names) or 'none'}",
            root,
        )
    for split, paths in found.items():
        if len(paths) > 1:
            shown = ", ".join(os.path.basename(p) for p in paths)
            raise DataError(
                f"several files claim the {split} split ({shown}); keep one, or name the "
                "files with data_files={split: [paths]}",
                root,
            )
    every = [p for paths in found.values() for p in paths]
    fmt = _common_format(task, fmt, every, root)
    return LocalPlan(fmt, {s: tuple(found[s]) for s in SPLITS if s in found}, root)


def plan_file(task: str, fmt: str | None, path: str | os.PathLike) -> LocalPlan:
    """A plan for one file with no split names (hash split)."""
    paths = _paths(path, None)
    return LocalPlan(_common_format(task, fmt, paths, paths[0]), {None: paths}, paths[0])


def read_plan(
    task: str,
    plan: LocalPlan,
    tag_scheme: str,
    columns: Mapping[str, str | None],
    encoding: str | None = None,
    empty_targets: str = "error",
) -> dict[str | None, list]:
    """Read the text files of ``plan`` (conll, csv, tsv, jsonl) into examples per split.

    ``encoding`` None detects each file's encoding (see :mod:`textgym.corpora.textio`).

    Raises:
        DataError: A file is missing, malformed, or holds no example (an empty split).
    """
    out: dict[str | None, list] = {}
    for split, paths in plan.files.items():
        examples: list = []
        for path in paths:
            found = read_file(task, plan.fmt, path, tag_scheme, columns, encoding, empty_targets)
            if not found:
                raise empty_file_error(split, path)
            examples.extend(found)
        out[split] = examples
    return out


def read_file(
    task: str,
    fmt: str,
    path: str,
    tag_scheme: str,
    columns: Mapping[str, str | None],
    encoding: str | None = None,
    empty_targets: str = "error",
    dropped: list | None = None,
) -> list:
    """The examples of one text file (conll, csv, tsv, jsonl), read whole.

    ``dropped``: where to count the examples ``empty_targets="drop"`` leaves out (one item
    each) instead of warning.
    """
    text = read_text(path, encoding)
    if fmt == "conll":
        return parse_conll(text, path, tag_scheme)
    cols, records = read_records(text, path, fmt)
    if dropped is None:
        return records_to_examples(
            task, cols, records, path, tag_scheme=tag_scheme, empty_targets=empty_targets, **columns
        )
    examples = iter_examples(
        task,
        cols,
        records,
        path,
        tag_scheme=tag_scheme,
        empty_targets=empty_targets,
        dropped=dropped,
        **columns,
    )
    return list(examples)


def empty_file_error(split: str | None, path: str) -> DataError:
    """The error for a data file that holds no example."""
    what = f"the {split} split" if split else "the corpus"
    return DataError(f"no examples in this file ({what} would be empty)", path)
