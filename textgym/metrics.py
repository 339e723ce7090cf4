"""Task metrics as pure functions: entity F1 (NER), accuracy and macro-F1 (classification), ROUGE.

Corpus metrics follow the reference implementations users compare against: seqeval's default
(conlleval-compatible) entity scores and report, scikit-learn's classification report (computed
here with numpy; scikit-learn is not a dependency), and the ``rouge-score`` package with the
Porter stemmer. :func:`sentence_entity_f1` is the hot path: the NER env calls it for every
finished episode, so it is vectorised over a batch of sentences and takes a precomputed
:class:`LabelTable`.

seqeval and rouge-score (which pulls in nltk) take seconds to import, so they are imported inside
the functions that need them: ``import textgym`` and ``gymnasium.make`` stay fast.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

from textgym.errors import TextgymError

__all__ = [
    "LabelTable",
    "RougeReward",
    "classification_report",
    "classification_scores",
    "entity_report",
    "entity_scores",
    "lead_k",
    "rouge_report",
    "rouge_scores",
    "sentence_entity_f1",
]

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")


# --------------------------------------------------------------------------------------------
# NER: corpus entity scores (seqeval)
# --------------------------------------------------------------------------------------------


def _check_sequences(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> None:
    if len(gold) != len(pred):
        raise TextgymError(f"gold has {len(gold)} sentences but pred has {len(pred)}")
    for i, (g, p) in enumerate(zip(gold, pred, strict=True)):
        if len(g) != len(p):
            raise TextgymError(
                f"sentence {i}: gold has {len(g)} tags but pred has {len(p)}; "
                "give one predicted tag per word"
            )


def _flatten(sentences: Sequence[Sequence[str]]) -> list[str]:
    # An "O" after every sentence keeps an entity from running into the next sentence; this is
    # what seqeval does for a list of lists (it skips it for tuples, hence our own flattening).
    flat: list[str] = []
    for sentence in sentences:
        flat.extend(sentence)
        flat.append("O")
    return flat


def _entity_counts(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """Per-type (types, true positives, predicted, gold) entity counts, types sorted."""
    from seqeval.metrics.sequence_labeling import get_entities

    _check_sequences(gold, pred)
    gold_entities: dict[str, set[tuple[int, int]]] = {}
    pred_entities: dict[str, set[tuple[int, int]]] = {}
    for entities, sentences in ((gold_entities, gold), (pred_entities, pred)):
        for type_, start, end in get_entities(_flatten(sentences)):
            entities.setdefault(type_, set()).add((start, end))
    types = sorted(gold_entities.keys() | pred_entities.keys())
    empty: set[tuple[int, int]] = set()
    tp = np.array([len(gold_entities.get(t, empty) & pred_entities.get(t, empty)) for t in types])
    n_pred = np.array([len(pred_entities.get(t, empty)) for t in types])
    n_gold = np.array([len(gold_entities.get(t, empty)) for t in types])
    return types, tp.astype(np.int64), n_pred.astype(np.int64), n_gold.astype(np.int64)


def _prf(
    tp: np.ndarray, n_pred: np.ndarray, n_gold: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall and F1 with 0 where undefined, in seqeval's order of operations.

    The order matters: :func:`sentence_entity_f1` promises bit-identical values to seqeval.
    """
    precision = tp / np.maximum(n_pred, 1)
    recall = tp / np.maximum(n_gold, 1)
    denom = precision + recall
    f1 = 2.0 * precision * recall / np.where(denom == 0.0, 1.0, denom)
    return precision, recall, f1


def _averages(
    tp: np.ndarray, n_pred: np.ndarray, n_gold: np.ndarray
) -> dict[str, tuple[float, float, float]]:
    """seqeval's micro, macro and weighted (precision, recall, f1), with 0 where undefined."""
    precision, recall, f1 = _prf(tp, n_pred, n_gold)
    micro = _prf(tp.sum(keepdims=True), n_pred.sum(keepdims=True), n_gold.sum(keepdims=True))
    averages = {"micro": tuple(float(v[0]) for v in micro)}
    if len(tp) == 0:
        averages["macro"] = averages["weighted"] = (0.0, 0.0, 0.0)
        return averages
    averages["macro"] = (float(precision.mean()), float(recall.mean()), float(f1.mean()))
    if n_gold.sum() == 0:
        # Only false positives: nothing to weight by; seqeval (zero_division=0) reports 0.
        averages["weighted"] = (0.0, 0.0, 0.0)
    else:
        averages["weighted"] = tuple(
            float(np.average(v, weights=n_gold)) for v in (precision, recall, f1)
        )
    return averages


def entity_scores(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict:
    """Corpus entity-level scores, as seqeval computes them in its default (conlleval) mode.

    An entity counts as found only when its type, first and last word all match. An ``I-X``
    that does not continue an ``X`` entity starts a new one (conlleval rule), so IOB1 input
    is scored the same way as by ``conlleval.pl``. Undefined ratios (no predicted or no gold
    entities) are 0, without warnings.

    Args:
        gold: Gold IOB2 tags, one list per sentence.
        pred: Predicted tags, same shape as ``gold``.

    Returns:
        A dict with ``precision``, ``recall``, ``f1`` (micro averages over entities),
        ``macro_f1``, ``weighted_f1``, ``accuracy`` (token accuracy), ``support`` (number of
        gold entities) and ``per_type``: ``{type: {"precision", "recall", "f1", "support"}}``
        for every type seen in ``gold`` or ``pred``.

    Raises:
        TextgymError: If ``gold`` and ``pred`` differ in number of sentences or of words.
    """
    types, tp, n_pred, n_gold = _entity_counts(gold, pred)
    precision, recall, f1 = _prf(tp, n_pred, n_gold)
    averages = _averages(tp, n_pred, n_gold)
    n_words = sum(len(sentence) for sentence in gold)
    n_correct = sum(
        g == p for gs, ps in zip(gold, pred, strict=True) for g, p in zip(gs, ps, strict=True)
    )
    micro_p, micro_r, micro_f1 = averages["micro"]
    return {
        "precision": micro_p,
        "recall": micro_r,
        "f1": micro_f1,
        "macro_f1": averages["macro"][2],
        "weighted_f1": averages["weighted"][2],
        "accuracy": n_correct / n_words if n_words else 0.0,
        "support": int(n_gold.sum()),
        "per_type": {
            t: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(n_gold[i]),
            }
            for i, t in enumerate(types)
        },
    }


def entity_report(
    gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], digits: int = 4
) -> str:
    """seqeval's ``classification_report`` text: one row per entity type, then the averages.

    Identical to ``seqeval.metrics.classification_report(gold, pred, digits=digits,
    zero_division=0)``, except that a corpus with no entity at all gives the header and the
    average rows instead of an exception.

    Args:
        gold: Gold IOB2 tags, one list per sentence.
        pred: Predicted tags, same shape as ``gold``.
        digits: Decimal places of the scores.

    Returns:
        The report as a multi-line string.
    """
    from seqeval.reporters import StringReporter

    types, tp, n_pred, n_gold = _entity_counts(gold, pred)
    precision, recall, f1 = _prf(tp, n_pred, n_gold)
    width = max([len(t) for t in types] + [len("weighted avg"), digits])
    reporter = StringReporter(width=width, digits=digits)
    for i, t in enumerate(types):
        reporter.write(t, precision[i], recall[i], f1[i], n_gold[i])
    if types:
        reporter.write_blank()
    for name, (p, r, f) in _averages(tp, n_pred, n_gold).items():
        reporter.write(f"{name} avg", p, r, f, int(n_gold.sum()))
    reporter.write_blank()
    return reporter.report()


# --------------------------------------------------------------------------------------------
# NER: vectorised per-sentence entity F1 (the env's reward)
# --------------------------------------------------------------------------------------------

_OUTSIDE = -1  # type id of "O" (and of padding)
_NO_CONTINUATION = -2  # continuation id of anything but I-X; equal to no type id


@dataclass(frozen=True, eq=False)
class LabelTable:
    """Per-label lookup tables for :func:`sentence_entity_f1`; build once per label set.

    Row ``len(labels)`` is an extra "outside" row, used for padding and for the envs'
    "not tagged yet" value.

    Attributes:
        labels: The IOB2 label strings; label id ``i`` is ``labels[i]``.
        type_names: Entity type names; ``type_ids`` index into it.
        type_ids: (len(labels) + 1,) the entity type of each label, -1 for ``O``.
        continuation_ids: (len(labels) + 1,) the type of each ``I-`` label, -2 otherwise: a
            word continues the previous word's entity iff its continuation id equals the
            previous word's type id.
    """

    labels: tuple[str, ...]
    type_names: tuple[str, ...]
    type_ids: np.ndarray
    continuation_ids: np.ndarray

    @classmethod
    def from_labels(cls, labels: Sequence[str]) -> LabelTable:
        """Build (or fetch from a cache) the table of a label set.

        Args:
            labels: IOB2 tags (``"O"``, ``"B-X"``, ``"I-X"``), in label-id order.

        Returns:
            The table; equal label sequences share one cached instance.

        Raises:
            TextgymError: If a label is not ``O`` nor starts with ``B`` or ``I``.
        """
        return _label_table(tuple(labels))

    @property
    def outside_id(self) -> int:
        """The extra id that means "no entity" (padding, untagged words)."""
        return len(self.labels)


@functools.lru_cache(maxsize=64)
def _label_table(labels: tuple[str, ...]) -> LabelTable:
    type_names: list[str] = []
    type_ids = np.full(len(labels) + 1, _OUTSIDE, dtype=np.int32)
    continuation_ids = np.full(len(labels) + 1, _NO_CONTINUATION, dtype=np.int32)
    for i, label in enumerate(labels):
        if label == "O":
            continue
        if not isinstance(label, str) or label[:1] not in ("B", "I") or label[1:2] not in ("", "-"):
            raise TextgymError(
                f"label {label!r} (id {i}) is not an IOB2 tag: expected 'O', 'B-<type>' or "
                "'I-<type>'"
            )
        # seqeval's type of a prefix-only tag such as "B" is "_".
        type_ = label[2:] or "_"
        if type_ not in type_names:
            type_names.append(type_)
        type_ids[i] = type_names.index(type_)
        if label[0] == "I":
            continuation_ids[i] = type_ids[i]
    type_ids.flags.writeable = False
    continuation_ids.flags.writeable = False
    return LabelTable(labels, tuple(type_names), type_ids, continuation_ids)


def sentence_entity_f1(
    gold_ids: np.ndarray,
    pred_ids: np.ndarray,
    lengths: np.ndarray,
    labels: Sequence[str] | LabelTable,
) -> np.ndarray:
    """Entity F1 of each sentence of a batch, vectorised (no Python loop over sentences).

    Equals seqeval's default-mode ``f1_score([gold], [pred])`` of each sentence bit for bit,
    except that a sentence with no gold and no predicted entity scores 1.0 (seqeval: 0):
    tagging an entity-free sentence all ``O`` is a perfect answer.

    Chunks follow conlleval: an entity starts at ``B-X``, or at ``I-X`` after ``O`` or after
    another type, and continues while the next word is ``I-X``. A predicted entity is correct
    when it starts where a gold entity starts, with the same type, and ends where it ends.

    Shapes (B sentences, W word slots):

    ============  ==========  ==============================================
    gold_ids      (B, W) int  gold label ids; ignored at positions >= length
    pred_ids      (B, W) int  predicted label ids; same
    lengths       (B,) int    words in each sentence
    returns       (B,) f64    entity F1 of each sentence
    ============  ==========  ==============================================

    Args:
        gold_ids: Gold label ids (indexes into ``labels``).
        pred_ids: Predicted label ids.
        lengths: Number of words of each sentence.
        labels: The label strings, or better (cheaper) their :class:`LabelTable`.

    Returns:
        (B,) float64 F1 per sentence.
    """
    table = labels if isinstance(labels, LabelTable) else LabelTable.from_labels(labels)
    lengths = np.asarray(lengths)
    # Columns past the longest sentence are all padding: dropping them saves most of the work
    # when the env hands over its fixed-width (B, max_words) arrays.
    n_words = min(gold_ids.shape[-1], int(lengths.max(initial=0)))
    positions = np.arange(n_words)
    # One "outside" column on each side: entities cannot run past either end of a sentence.
    padded = np.full((2, len(lengths), n_words + 2), table.outside_id, dtype=np.intp)
    padded[0, :, 1:-1] = gold_ids[:, :n_words]
    padded[1, :, 1:-1] = pred_ids[:, :n_words]
    np.copyto(padded[..., 1:-1], table.outside_id, where=positions >= lengths[:, None])
    types = table.type_ids.take(padded)  # (2, B, W+2): [0] gold, [1] pred
    # breaks[..., j]: column j+1 does not continue column j's entity.  # (2, B, W+1)
    breaks = table.continuation_ids.take(padded)[..., 1:] != types[..., :-1]
    types = types[..., 1:-1]  # (2, B, W)
    inside = types != _OUTSIDE
    starts = inside & breaks[..., :-1]
    ends = inside & breaks[..., 1:]
    # end_of[..., i]: the last word of the entity containing word i (first end at or after i).
    end_of = np.where(ends, positions, n_words)[..., ::-1]
    end_of = np.minimum.accumulate(end_of, axis=-1)[..., ::-1]
    hits = starts[0] & starts[1] & (types[0] == types[1]) & (end_of[0] == end_of[1])  # (B, W)
    n_gold, n_pred = starts.sum(axis=-1)  # (B,) each
    _, _, f1 = _prf(hits.sum(axis=-1), n_pred, n_gold)
    return np.where((n_gold == 0) & (n_pred == 0), 1.0, f1)


# --------------------------------------------------------------------------------------------
# Classification
# --------------------------------------------------------------------------------------------


def _class_counts(
    gold: Sequence[Hashable], pred: Sequence[Hashable], labels: Sequence[Hashable] | None
) -> tuple[list, np.ndarray, np.ndarray, np.ndarray]:
    if len(gold) != len(pred):
        raise TextgymError(f"gold has {len(gold)} labels but pred has {len(pred)}")
    if labels is None:
        labels = sorted(set(gold) | set(pred))
    labels = list(labels)
    index = {label: i for i, label in enumerate(labels)}
    if len(index) != len(labels):
        raise TextgymError(f"labels has duplicates: {labels}")
    # -1: a class outside `labels`; it counts against accuracy, not in the per-class rows.
    gold_ids = np.array([index.get(g, -1) for g in gold], dtype=np.int64)
    pred_ids = np.array([index.get(p, -1) for p in pred], dtype=np.int64)
    n = len(labels)
    correct = (gold_ids == pred_ids) & (gold_ids >= 0)
    tp = np.bincount(gold_ids[correct], minlength=n)
    n_gold = np.bincount(gold_ids[gold_ids >= 0], minlength=n)
    n_pred = np.bincount(pred_ids[pred_ids >= 0], minlength=n)
    return labels, tp, n_pred, n_gold


def _class_averages(
    tp: np.ndarray, n_pred: np.ndarray, n_gold: np.ndarray
) -> dict[str, tuple[float, float, float]]:
    precision, recall, f1 = _prf(tp, n_pred, n_gold)
    micro = _prf(tp.sum(keepdims=True), n_pred.sum(keepdims=True), n_gold.sum(keepdims=True))
    weights = n_gold if n_gold.sum() > 0 else None
    if len(tp) == 0:
        macro = weighted = (0.0, 0.0, 0.0)
    else:
        macro = tuple(float(v.mean()) for v in (precision, recall, f1))
        weighted = (
            (0.0, 0.0, 0.0)
            if weights is None
            else tuple(float(np.average(v, weights=weights)) for v in (precision, recall, f1))
        )
    return {"micro": tuple(float(v[0]) for v in micro), "macro": macro, "weighted": weighted}


def classification_scores(
    gold: Sequence[Hashable], pred: Sequence[Hashable], labels: Sequence[Hashable] | None = None
) -> dict:
    """Accuracy and per-class / macro / weighted precision, recall and F1.

    Same values as scikit-learn's ``accuracy_score`` and ``precision_recall_fscore_support``
    with ``zero_division=0``.

    Args:
        gold: Gold class of each example.
        pred: Predicted class of each example.
        labels: The classes to report, in order; default: every class in ``gold`` or
            ``pred``, sorted. Macro averages run over these (a class never seen scores 0).

    Returns:
        A dict with ``accuracy``, ``macro_precision``, ``macro_recall``, ``macro_f1``,
        ``weighted_f1``, ``support`` (number of examples) and ``per_class``:
        ``{label: {"precision", "recall", "f1", "support"}}``.

    Raises:
        TextgymError: If ``gold`` and ``pred`` differ in length.
    """
    labels, tp, n_pred, n_gold = _class_counts(gold, pred, labels)
    precision, recall, f1 = _prf(tp, n_pred, n_gold)
    averages = _class_averages(tp, n_pred, n_gold)
    n_correct = sum(g == p for g, p in zip(gold, pred, strict=True))
    return {
        "accuracy": n_correct / len(gold) if len(gold) else 0.0,
        "macro_precision": averages["macro"][0],
        "macro_recall": averages["macro"][1],
        "macro_f1": averages["macro"][2],
        "weighted_f1": averages["weighted"][2],
        "support": len(gold),
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(n_gold[i]),
            }
            for i, label in enumerate(labels)
        },
    }


def classification_report(
    gold: Sequence[Hashable],
    pred: Sequence[Hashable],
    labels: Sequence[Hashable] | None = None,
    digits: int = 4,
) -> str:
    """A text table laid out like scikit-learn's ``classification_report``.

    One row per class, then ``accuracy`` (or ``micro avg`` when ``labels`` leaves out a
    class that occurs), ``macro avg`` and ``weighted avg``.

    Args:
        gold: Gold class of each example.
        pred: Predicted class of each example.
        labels: The classes to report, in order; default: every class seen, sorted.
        digits: Decimal places of the scores.

    Returns:
        The report as a multi-line string.
    """
    labels, tp, n_pred, n_gold = _class_counts(gold, pred, labels)
    precision, recall, f1 = _prf(tp, n_pred, n_gold)
    averages = _class_averages(tp, n_pred, n_gold)
    names = [str(label) for label in labels]
    width = max([len(name) for name in names] + [len("weighted avg"), digits])
    row = "{:>{width}s} " + " {:>9.{digits}f}" * 3 + " {:>9}\n"
    report = ("{:>{width}s} " + " {:>9}" * 4).format(
        "", "precision", "recall", "f1-score", "support", width=width
    )
    report += "\n\n"
    for i, name in enumerate(names):
        report += row.format(
            name, precision[i], recall[i], f1[i], n_gold[i], width=width, digits=digits
        )
    report += "\n"
    support = int(n_gold.sum())
    if set(gold) | set(pred) <= set(labels):
        accuracy = averages["micro"][2]
        report += ("{:>{width}s} " + " {:>9}" * 2 + " {:>9.{digits}f} {:>9}\n").format(
            "accuracy", "", "", accuracy, support, width=width, digits=digits
        )
    else:
        report += row.format("micro avg", *averages["micro"], support, width=width, digits=digits)
    for name in ("macro", "weighted"):
        report += row.format(f"{name} avg", *averages[name], support, width=width, digits=digits)
    return report


# --------------------------------------------------------------------------------------------
# Summarization
# --------------------------------------------------------------------------------------------


class _MemoStemmer:
    """Porter stemmer with a memo: rewards re-stem the same few words at every step."""

    def __init__(self) -> None:
        from nltk.stem import porter

        self._stemmer = porter.PorterStemmer()
        self._memo: dict[str, str] = {}

    def stem(self, word: str) -> str:
        stem = self._memo.get(word)
        if stem is None:
            stem = self._memo[word] = self._stemmer.stem(word)
        return stem


def _rouge_tokenizer():
    """rouge-score's default tokenizer (stemming), which passes token lists through as is."""
    from rouge_score import tokenize, tokenizers

    class _Tokenizer(tokenizers.Tokenizer):
        def __init__(self) -> None:
            self._stemmer = _MemoStemmer()

        def tokenize(self, text: str | Sequence[str]) -> list[str]:
            if isinstance(text, str):
                return tokenize.tokenize(text, self._stemmer)
            return list(text)

    return _Tokenizer()


def _rouge_scorer(types: Sequence[str], tokenizer=None):
    from rouge_score import rouge_scorer

    unknown = [t for t in types if t not in ROUGE_TYPES]
    if unknown:
        raise TextgymError(f"unknown ROUGE type(s) {unknown}; valid: {list(ROUGE_TYPES)}")
    return rouge_scorer.RougeScorer(
        list(types), use_stemmer=True, tokenizer=tokenizer or _rouge_tokenizer()
    )


def rouge_scores(
    references: Sequence[str], predictions: Sequence[str], types: Sequence[str] = ROUGE_TYPES
) -> dict[str, float]:
    """Corpus ROUGE: the mean over examples of each example's score (rouge-score, stemmed).

    Args:
        references: Reference summary of each example.
        predictions: Predicted summary of each example.
        types: ROUGE variants among ``rouge1``, ``rouge2``, ``rougeL``.

    Returns:
        ``{type: mean F-measure, f"{type}_precision": ..., f"{type}_recall": ...}`` for each
        type; all 0.0 for an empty corpus.

    Raises:
        TextgymError: If the lengths differ or a type is unknown.
    """
    if len(references) != len(predictions):
        raise TextgymError(f"{len(references)} references but {len(predictions)} predictions")
    scorer = _rouge_scorer(types)
    totals = np.zeros((len(types), 3))  # (type, [F, precision, recall])
    for reference, prediction in zip(references, predictions, strict=True):
        score = scorer.score(reference, prediction)
        totals += [[score[t].fmeasure, score[t].precision, score[t].recall] for t in types]
    means = totals / max(len(references), 1)
    scores: dict[str, float] = {}
    for i, t in enumerate(types):
        scores[t] = float(means[i, 0])
        scores[f"{t}_precision"] = float(means[i, 1])
        scores[f"{t}_recall"] = float(means[i, 2])
    return scores


def rouge_report(
    references: Sequence[str],
    predictions: Sequence[str],
    types: Sequence[str] = ROUGE_TYPES,
    digits: int = 4,
) -> str:
    """A text table of corpus ROUGE: one row per type with precision, recall, F and examples.

    Args:
        references: Reference summary of each example.
        predictions: Predicted summary of each example.
        types: ROUGE variants among ``rouge1``, ``rouge2``, ``rougeL``.
        digits: Decimal places of the scores.

    Returns:
        The report as a multi-line string.
    """
    scores = rouge_scores(references, predictions, types)
    width = max(len(t) for t in ROUGE_TYPES)
    row = "{:>{width}s} " + " {:>9.{digits}f}" * 3 + " {:>9}\n"
    report = ("{:>{width}s} " + " {:>9}" * 4).format(
        "", "precision", "recall", "f-measure", "examples", width=width
    )
    report += "\n\n"
    for t in types:
        report += row.format(
            t,
            scores[f"{t}_precision"],
            scores[f"{t}_recall"],
            scores[t],
            len(references),
            width=width,
            digits=digits,
        )
    return report


class RougeReward:
    """ROUGE F-measure of one prediction against its reference, for rewards.

    Keeps one scorer (and a memo of word stems) for all calls. A reference scored many times
    (the dense reward scores every prefix of the summary) can be tokenized once with
    :meth:`tokenize` and passed as tokens.

    Args:
        rouge_type: ``"rouge1"``, ``"rouge2"`` or ``"rougeL"``.

    Example:
        >>> reward = RougeReward("rouge1")
        >>> round(reward("the cat sat", "the cat ran"), 4)
        0.6667
    """

    def __init__(self, rouge_type: str = "rougeL") -> None:
        self.rouge_type = rouge_type
        self._tokenizer = _rouge_tokenizer()
        self._scorer = _rouge_scorer([rouge_type], self._tokenizer)

    def tokenize(self, text: str) -> tuple[str, ...]:
        """rouge-score's tokens of ``text`` (lower-cased, alphanumeric, stemmed)."""
        return tuple(self._tokenizer.tokenize(text))

    def __call__(self, reference: str | Sequence[str], prediction: str | Sequence[str]) -> float:
        """F-measure of ``prediction`` against ``reference``; 0.0 when either is empty.

        Args:
            reference: Reference text, or its tokens from :meth:`tokenize`.
            prediction: Predicted text, or its tokens from :meth:`tokenize`.

        Returns:
            The F-measure in [0, 1].
        """
        return float(self._scorer.score(reference, prediction)[self.rouge_type].fmeasure)


def lead_k(text: str, k: int) -> str:
    """The first ``k`` whitespace-separated words of ``text``: the lead-k summary baseline.

    Args:
        text: The source document.
        k: Number of words to keep (>= 0).

    Returns:
        The words joined by single spaces.

    Raises:
        TextgymError: If ``k`` is negative.
    """
    if k < 0:
        raise TextgymError(f"lead_k needs k >= 0, got {k}")
    return " ".join(text.split()[:k])
