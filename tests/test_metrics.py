"""Metric functions against hand-computed values and against the reference implementations."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from seqeval.metrics import classification_report as seqeval_report
from seqeval.metrics import f1_score as seqeval_f1
from seqeval.metrics.sequence_labeling import precision_recall_fscore_support as seqeval_prfs

from textgym.errors import TextgymError
from textgym.metrics import (
    LabelTable,
    RougeReward,
    classification_report,
    classification_scores,
    entity_report,
    entity_scores,
    lead_k,
    rouge_report,
    rouge_scores,
    sentence_entity_f1,
)

LABELS = ("O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-MISC", "I-MISC")


# ------------------------------------------------------------------------------ entity scores

# Gold entities: PER(0-1), LOC(3), LOC(0-1 of sentence 2), MISC(3) -> 4 entities.
# Predicted: PER(0-1) correct; LOC(3) correct; LOC(0) wrong end; PER(1) spurious (an I-PER
# after I-LOC starts a new entity, conlleval rule); MISC missed -> 4 predicted, 2 correct.
# precision = 2/4, recall = 2/4, f1 = 0.5.
# Per type: LOC tp=1 pred=2 gold=2 -> P=R=F=0.5; MISC tp=0 pred=0 gold=1 -> 0;
# PER tp=1 pred=2 gold=1 -> P=0.5 R=1 F=2/3.
# Token accuracy: sentence 1 has 4 of 4 right; sentence 2 has 3 of 5 (wrong at word 1, I-PER
# for I-LOC, and word 3, O for B-MISC): 7 of 9 words.
GOLD = [
    ["B-PER", "I-PER", "O", "B-LOC"],
    ["B-LOC", "I-LOC", "O", "B-MISC", "O"],
]
PRED = [
    ["B-PER", "I-PER", "O", "B-LOC"],
    ["B-LOC", "I-PER", "O", "O", "O"],
]


def test_entity_scores_hand_example():
    scores = entity_scores(GOLD, PRED)
    assert scores["precision"] == pytest.approx(2 / 4)
    assert scores["recall"] == pytest.approx(2 / 4)
    assert scores["f1"] == pytest.approx(0.5)
    assert scores["accuracy"] == pytest.approx(7 / 9)
    assert scores["support"] == 4
    assert scores["per_type"] == {
        "LOC": {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2},
        "MISC": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1},
        "PER": {"precision": 0.5, "recall": 1.0, "f1": pytest.approx(2 / 3), "support": 1},
    }
    # macro F1 = (0.5 + 0 + 2/3) / 3; weighted by gold support (2, 1, 1) / 4.
    assert scores["macro_f1"] == pytest.approx((0.5 + 0 + 2 / 3) / 3)
    assert scores["weighted_f1"] == pytest.approx((2 * 0.5 + 0 + 2 / 3) / 4)


def test_entity_scores_accept_tuples_and_do_not_join_sentences():
    # seqeval itself only separates sentences given as lists; an I-PER opening sentence 2
    # must not extend sentence 1's PER entity.
    gold = (("B-PER",), ("I-PER",))
    pred = (("B-PER",), ("B-PER",))
    scores = entity_scores(gold, pred)
    assert scores["support"] == 2
    assert scores["f1"] == pytest.approx(1.0)


def test_entity_report_is_seqeval_report():
    assert entity_report(GOLD, PRED) == seqeval_report(GOLD, PRED, digits=4, zero_division=0)
    assert entity_report(GOLD, PRED, digits=2) == seqeval_report(
        GOLD, PRED, digits=2, zero_division=0
    )


def test_no_entities_gives_zeros_without_warnings():
    gold = [["O", "O"], []]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = entity_scores(gold, gold)
        report = entity_report(gold, gold)
        empty = entity_scores([], [])
    assert scores["f1"] == scores["precision"] == scores["recall"] == 0.0
    assert scores["macro_f1"] == scores["weighted_f1"] == 0.0
    assert scores["accuracy"] == 1.0
    assert scores["per_type"] == {}
    assert "micro avg" in report and "weighted avg" in report
    assert empty["f1"] == empty["accuracy"] == 0.0


def test_only_false_positives_without_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = entity_scores([["O", "O"]], [["B-PER", "O"]])
    assert scores["f1"] == 0.0 and scores["weighted_f1"] == 0.0
    assert scores["per_type"]["PER"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_entity_scores_reject_misaligned_input():
    with pytest.raises(TextgymError, match="sentence 1: gold has 2 tags but pred has 1"):
        entity_scores([["O"], ["O", "O"]], [["O"], ["O"]])
    with pytest.raises(TextgymError, match="2 sentences"):
        entity_scores([["O"], ["O"]], [["O"]])


@st.composite
def tagged_corpus(draw, labels=LABELS, min_sentences=0, max_sentences=6, max_words=10):
    """(gold, pred): lists of equally long random tag sequences (any IOB1/IOB2 mix)."""
    gold, pred = [], []
    for _ in range(draw(st.integers(min_sentences, max_sentences))):
        n = draw(st.integers(0, max_words))
        gold.append(draw(st.lists(st.sampled_from(labels), min_size=n, max_size=n)))
        pred.append(draw(st.lists(st.sampled_from(labels), min_size=n, max_size=n)))
    return gold, pred


@settings(deadline=None, max_examples=150)
@given(tagged_corpus(min_sentences=1))  # seqeval rejects an empty corpus
def test_entity_scores_match_seqeval(corpus):
    gold, pred = corpus
    scores = entity_scores(gold, pred)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval's UndefinedMetricWarning / empty means
        micro = seqeval_prfs(gold, pred, average="micro", zero_division=0)
        per_type = seqeval_prfs(gold, pred, average=None, zero_division=0)
        has_entities = len(per_type[3]) > 0
        if has_entities:
            macro = seqeval_prfs(gold, pred, average="macro", zero_division=0)
            weighted = seqeval_prfs(gold, pred, average="weighted", zero_division=0)
            report = seqeval_report(gold, pred, digits=4, zero_division=0)
    assert (scores["precision"], scores["recall"], scores["f1"]) == micro[:3]
    assert [t["f1"] for t in scores["per_type"].values()] == list(per_type[2])
    assert [t["support"] for t in scores["per_type"].values()] == list(per_type[3])
    if has_entities:
        assert scores["macro_f1"] == macro[2]
        assert scores["weighted_f1"] == weighted[2]
        assert entity_report(gold, pred) == report
    n_words = sum(map(len, gold))
    if n_words:
        flat = [
            (g, p) for gs, ps in zip(gold, pred, strict=True) for g, p in zip(gs, ps, strict=True)
        ]
        assert scores["accuracy"] == pytest.approx(sum(g == p for g, p in flat) / n_words)


# ------------------------------------------------------------------------- sentence entity F1


def _ids(tags, width, fill):
    row = np.full(width, fill, dtype=np.int64)
    row[: len(tags)] = [LABELS.index(t) for t in tags]
    return row


def _expected_f1(gold, pred):
    """seqeval's f1 of one sentence, 1.0 when neither side has an entity."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f1 = seqeval_f1([list(gold)], [list(pred)], zero_division=0)
    no_entities = all(t == "O" for t in gold) and all(t == "O" for t in pred)
    return 1.0 if no_entities else f1


@pytest.mark.parametrize(
    ("gold", "pred", "expected"),
    [
        # same entities, the prediction written IOB1-style: an I- after O starts an entity
        (["B-PER", "I-PER", "O"], ["I-PER", "I-PER", "O"], 1.0),
        # type switch inside a run: I-LOC after I-PER is a new LOC entity -> 2 predicted,
        # 1 gold, 0 right
        (["B-PER", "I-PER", "O"], ["B-PER", "I-LOC", "O"], 0.0),
        # B- splits an entity: gold 1, predicted 2 (PER(0), PER(1)), none right
        (["B-PER", "I-PER"], ["B-PER", "B-PER"], 0.0),
        # one of two found: P = 1/1, R = 1/2, F = 2/3
        (["B-PER", "O", "B-LOC"], ["B-PER", "O", "O"], 2 / 3),
        # entity at the very end of the sentence
        (["O", "O", "B-MISC"], ["O", "O", "B-MISC"], 1.0),
        # nothing to find and nothing found: a perfect answer
        (["O", "O"], ["O", "O"], 1.0),
        ([], [], 1.0),
        # spurious entity in an entity-free sentence
        (["O", "O"], ["O", "I-LOC"], 0.0),
    ],
)
def test_sentence_entity_f1_cases(gold, pred, expected):
    width = 6
    f1 = sentence_entity_f1(
        _ids(gold, width, 0)[None],
        _ids(pred, width, len(LABELS))[None],
        np.array([len(gold)]),
        LABELS,
    )
    assert f1.shape == (1,)
    assert f1[0] == pytest.approx(expected)
    assert f1[0] == _expected_f1(gold, pred)


@settings(deadline=None, max_examples=200)
@given(
    tagged_corpus(labels=(*LABELS, "B", "I"), max_sentences=8, max_words=9),
    st.integers(0, 3),
    st.data(),
)
def test_sentence_entity_f1_equals_seqeval_per_sentence(corpus, extra_width, data):
    gold, pred = corpus
    labels = (*LABELS, "B", "I")
    width = max(map(len, gold), default=0) + extra_width
    # Slots past a sentence's length hold anything: other labels or the "not tagged" id.
    junk = st.integers(0, len(labels))
    gold_ids = np.array(
        [
            [labels.index(t) for t in g] + [data.draw(junk) for _ in range(width - len(g))]
            for g in gold
        ],
        dtype=np.int64,
    ).reshape(len(gold), width)
    pred_ids = np.array(
        [
            [labels.index(t) for t in p] + [data.draw(junk) for _ in range(width - len(p))]
            for p in pred
        ],
        dtype=np.int32,
    ).reshape(len(pred), width)
    lengths = np.array([len(g) for g in gold], dtype=np.int64)

    f1 = sentence_entity_f1(gold_ids, pred_ids, lengths, LabelTable.from_labels(labels))

    assert f1.shape == (len(gold),) and f1.dtype == np.float64
    # Bit-identical to seqeval, not merely close.
    assert f1.tolist() == [_expected_f1(g, p) for g, p in zip(gold, pred, strict=True)]


def test_sentence_entity_f1_empty_batch():
    empty = np.zeros((0, 5), np.int64)
    assert sentence_entity_f1(empty, empty, np.zeros(0, np.int64), LABELS).shape == (0,)


def test_label_table_is_cached_and_validates():
    assert LabelTable.from_labels(list(LABELS)) is LabelTable.from_labels(LABELS)
    table = LabelTable.from_labels(LABELS)
    assert table.outside_id == len(LABELS)
    assert table.type_names == ("PER", "LOC", "MISC")
    with pytest.raises(TextgymError, match="'E-PER'"):
        LabelTable.from_labels(("O", "B-PER", "E-PER"))
    with pytest.raises(TextgymError, match="'PER'"):
        LabelTable.from_labels(("O", "PER"))


# ------------------------------------------------------------------------------ classification


def test_classification_scores_hand_example():
    gold = ["a", "a", "b", "b", "c"]
    pred = ["a", "b", "b", "b", "c"]
    scores = classification_scores(gold, pred)
    # 4 of 5 right.
    assert scores["accuracy"] == pytest.approx(0.8)
    # a: P=1/1 R=1/2 F=2/3; b: P=2/3 R=2/2 F=0.8; c: P=R=F=1.
    assert scores["per_class"]["a"] == {
        "precision": 1.0,
        "recall": 0.5,
        "f1": pytest.approx(2 / 3),
        "support": 2,
    }
    assert scores["per_class"]["b"] == {
        "precision": pytest.approx(2 / 3),
        "recall": 1.0,
        "f1": pytest.approx(0.8),
        "support": 2,
    }
    assert scores["macro_f1"] == pytest.approx((2 / 3 + 0.8 + 1) / 3)
    assert scores["weighted_f1"] == pytest.approx((2 * 2 / 3 + 2 * 0.8 + 1) / 5)


def test_classification_labels_fix_order_and_count_unseen_classes():
    scores = classification_scores(["x", "x"], ["x", "x"], labels=["y", "x"])
    assert list(scores["per_class"]) == ["y", "x"]
    # "y" never occurs: its F1 is 0 and it still counts in the macro average.
    assert scores["macro_f1"] == pytest.approx(0.5)
    assert scores["accuracy"] == 1.0


def test_classification_rejects_misaligned_input():
    with pytest.raises(TextgymError, match="2 labels but pred has 1"):
        classification_scores(["a", "b"], ["a"])


@pytest.mark.parametrize(
    ("gold", "pred", "labels"),
    [
        (["a", "a", "b", "b", "c"], ["a", "b", "b", "b", "c"], None),
        (["business", "sport", "tech"], ["sport", "sport", "politics"], None),
        (["x", "x", "y"], ["x", "y", "y"], ["y", "x", "z"]),
        # a label list that leaves out an occurring class: "micro avg" instead of "accuracy"
        (["x", "x", "y"], ["x", "y", "y"], ["x"]),
    ],
)
def test_classification_report_matches_sklearn_layout(gold, pred, labels):
    sklearn_metrics = pytest.importorskip("sklearn.metrics")
    expected = sklearn_metrics.classification_report(
        gold, pred, labels=labels, digits=4, zero_division=0
    )
    assert classification_report(gold, pred, labels=labels) == expected


# ------------------------------------------------------------------------------------ ROUGE


def test_rouge_hand_example():
    # unigrams: {the, cat} shared of 3 each -> P = R = F = 2/3; bigrams: {the cat} of 2 -> 1/2;
    # LCS "the cat" -> 2/3.
    scores = rouge_scores(["the cat sat"], ["the cat ran"])
    assert scores["rouge1"] == pytest.approx(2 / 3)
    assert scores["rouge1_precision"] == pytest.approx(2 / 3)
    assert scores["rouge2"] == pytest.approx(1 / 2)
    assert scores["rougeL"] == pytest.approx(2 / 3)


def test_rouge_is_a_corpus_mean_with_stemming():
    # "Cats running!" stems to "cat run": a perfect rouge1; the second pair scores 0.
    scores = rouge_scores(["cat run", "a b"], ["Cats running!", "c d"], types=("rouge1",))
    assert scores == {"rouge1": 0.5, "rouge1_precision": 0.5, "rouge1_recall": 0.5}


def test_rouge_report_lists_each_type():
    report = rouge_report(["the cat sat"], ["the cat ran"])
    lines = report.splitlines()
    assert lines[0].split() == ["precision", "recall", "f-measure", "examples"]
    assert lines[2].split() == ["rouge1", "0.6667", "0.6667", "0.6667", "1"]
    assert lines[3].split() == ["rouge2", "0.5000", "0.5000", "0.5000", "1"]


def test_rouge_rejects_bad_input():
    with pytest.raises(TextgymError, match="rouge3"):
        rouge_scores(["a"], ["a"], types=("rouge3",))
    with pytest.raises(TextgymError, match="2 references but 1 predictions"):
        rouge_scores(["a", "b"], ["a"])


def test_rouge_reward():
    reward = RougeReward("rouge1")
    assert reward("the cat sat", "the cat ran") == pytest.approx(2 / 3)
    reference = reward.tokenize("The cats sat.")
    assert reference == ("the", "cat", "sat")
    assert reward(reference, "the cat ran") == reward("The cats sat.", "the cat ran")
    assert reward("the cat sat", "") == 0.0
    assert reward("the cat sat", "!!") == 0.0
    assert RougeReward()("a b c d", "a c d") == pytest.approx(2 * 1 * 0.75 / 1.75)  # rougeL


# ----------------------------------------------------------------------------------- lead-k


def test_lead_k():
    text = "  The quick\tbrown\n fox jumps "
    assert lead_k(text, 3) == "The quick brown"
    assert lead_k(text, 10) == "The quick brown fox jumps"
    assert lead_k(text, 0) == ""
    with pytest.raises(TextgymError, match="k >= 0"):
        lead_k(text, -1)
