"""Loaders on the real files in ../shared/data: CoNLL-2003, SST-2, BBC News Summary."""

from __future__ import annotations

from textgym.corpora import Seq2SeqExample, TextExample, load_corpus
from textgym.corpora.splits import example_key, split_of

CONLL_SIZES = {"train": 14041, "validation": 3250, "test": 3453}
CONLL_LABELS = ("O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER")


def _sizes(corpus):
    return {k: len(v) for k, v in corpus.splits.items()}


def test_conll2003_data_dir_and_data_files(shared_data_dir):
    root = shared_data_dir("conll2003")
    by_dir = load_corpus("ner", "conll", data_dir=root)
    assert _sizes(by_dir) == CONLL_SIZES
    assert by_dir.labels == CONLL_LABELS
    first = by_dir.split("train")[0]
    assert first.words[:3] == ("EU", "rejects", "German")
    assert first.tags[:3] == ("B-ORG", "O", "B-MISC")
    files = {
        "train": root / "train.txt",
        "dev": str(root / "valid.txt"),
        "test": [root / "test.txt"],
    }
    by_files = load_corpus("ner", "conll", data_files=files)
    assert by_files.splits == by_dir.splits
    assert by_files.fingerprint == by_dir.fingerprint
    # a directory path as dataset, format from the extensions
    assert load_corpus("ner", str(root)).splits == by_dir.splits


def test_conll2003_iob1_gives_the_same_iob2_tags(shared_data_dir):
    iob2 = load_corpus("ner", "conll", data_dir=shared_data_dir("conll2003"))
    iob1 = load_corpus("ner", "conll", data_dir=shared_data_dir("conll2003", "original_iob1"))
    assert _sizes(iob1) == CONLL_SIZES  # eng.train / eng.testa / eng.testb
    for split in CONLL_SIZES:
        assert iob1.split(split) == iob2.split(split)
    assert iob1.fingerprint == iob2.fingerprint
    # the raw IOB1 file really differs: I- starts most entities there
    raw = (shared_data_dir("conll2003", "original_iob1", "eng.train")).read_text()
    assert " I-ORG" in raw.split("\n\n")[1]


def test_sst2_tsv(shared_data_dir):
    root = shared_data_dir("sst2")
    corpus = load_corpus(
        "classification",
        "tsv",
        data_files={
            "train": root / "train.tsv",
            "validation": root / "dev.tsv",
            "test": root / "test_labeled.tsv",  # CRLF line ends
        },
    )
    assert _sizes(corpus) == {"train": 67349, "validation": 872, "test": 1821}
    assert corpus.labels == ("0", "1")
    assert corpus.split("test")[0] == TextExample("uneasy mishmash of styles and genres .", "0")
    assert not any("\r" in ex.text or "\r" in ex.label for ex in corpus.split("test"))
    assert corpus.split("train")[0] == TextExample(
        "hide new secretions from the parental units ", "0"
    )


def test_bbc_news_summary_jsonl(shared_data_dir):
    path = shared_data_dir("bbc_news_summary", "bbc_news_summary.jsonl")
    cls = load_corpus("classification", path)  # article / category by default
    assert sum(map(len, cls.splits.values())) == 2225
    assert cls.labels == ("business", "entertainment", "politics", "sport", "tech")
    assert cls.name == f"jsonl:{path}"
    summ = load_corpus("summarization", "jsonl", data_files=str(path))  # article / summary
    assert sum(map(len, summ.splits.values())) == 2225
    every = [e for examples in summ.splits.values() for e in examples]
    (ex,) = [e for e in every if e.source.startswith("Ad sales boost Time Warner profit\n")]
    assert isinstance(ex, Seq2SeqExample)
    assert ex.target.startswith("TimeWarner said fourth quarter sales rose 2%")
    # single file: 80/10/10 by the hash of the input
    for split, examples in summ.splits.items():
        assert all(split_of(example_key(e)) == split for e in examples)
    assert {k: len(v) for k, v in summ.splits.items()} == _sizes(cls)
    # explicit columns: headline generation from the JSONL
    titles = load_corpus("summarization", path, source_column="article", target_column="title")
    every = [e for examples in titles.splits.values() for e in examples]
    assert "Ad sales boost Time Warner profit" in {e.target for e in every}
    assert all(e.source.startswith(e.target) for e in every)
