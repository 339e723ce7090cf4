"""Which runs are pooled into one row, and how rows are scored and ranked."""

import json

import pytest

from textgym.leaderboard.table import build, canonical_env_kwargs


def _rows(board, env_id="TextNER-v0"):
    return next(t for t in board.tables if t.env_id == env_id).rows


def test_seeds_of_one_setting_are_pooled(summaries, tmp_path):
    for seed, f1 in enumerate([0.4, 0.5, 0.6]):
        summaries(f"a/ppo/seed{seed}", seed=seed, test_metrics={"f1": f1})
    board = build([tmp_path / "runs"], n_resamples=2000)
    (row,) = _rows(board)
    assert sorted(row.seeds) == [0, 1, 2]
    assert row.metric.mean == pytest.approx(0.5) and row.metric.n == 3
    assert row.metric.ci_low < 0.5 < row.metric.ci_high
    assert row.mean_return.mean == 10.0 and row.mean_return.ci_low == row.mean_return.ci_high


def test_runs_with_different_env_kwargs_are_not_pooled(summaries, tmp_path):
    summaries("a/ppo/seed0", seed=0, env_kwargs={"max_tokens": 32})
    summaries("a/ppo/seed1", seed=1, env_kwargs={"max_tokens": 32})
    summaries("b/ppo/seed0", seed=0, env_kwargs={"max_tokens": 64}, test_metrics={"f1": 0.9})
    board = build([tmp_path / "runs"], n_resamples=100)
    (table,) = board.tables
    assert [s.letter for s in table.specs] == ["A", "B"]
    assert table.specs[0].env_kwargs["max_tokens"] == 32  # the spec with the most runs
    rows = table.rows
    assert [(r.spec.letter, len(r.runs)) for r in rows] == [("A", 2), ("B", 1)]
    assert rows[1].rank == 1  # ranked within its own spec, never against spec A
    assert "max_tokens=64 (vs 32)" in rows[1].note and "not pooled" in rows[1].note
    assert rows[0].note == ""


def test_defaults_spelled_out_or_left_implicit_are_the_same_spec(summaries, tmp_path):
    summaries("a/ppo/seed0", seed=0, env_kwargs={})
    summaries("a/ppo/seed1", seed=1, env_kwargs={"max_tokens": 64, "dataset": "wnut16"})
    board = build([tmp_path / "runs"], n_resamples=100)
    (row,) = _rows(board)
    assert sorted(row.seeds) == [0, 1]
    kwargs = canonical_env_kwargs("TextNER-v0", {"split": "test", "render_mode": "ansi"})
    assert kwargs["dataset"] == "wnut16" and kwargs["max_tokens"] == 64
    assert "split" not in kwargs and "render_mode" not in kwargs


def test_runs_of_different_textgym_versions_are_not_pooled(summaries, tmp_path):
    summaries("a/ppo/seed0", seed=0)
    summaries("a/ppo/seed1", seed=1)
    summaries("old/ppo/seed0", seed=0, versions={"textgym": "0.0.9"})
    board = build([tmp_path / "runs"], n_resamples=100)
    rows = _rows(board)
    assert len(rows) == 2
    assert "textgym 0.0.9 (vs 0.1.0)" in rows[1].note


def test_other_hyperparameters_make_a_separate_row(summaries, tmp_path):
    summaries("a/ppo/seed0", seed=0)
    summaries("a/ppo/seed1", seed=1)
    summaries("b/ppo/seed0", seed=0, hyperparameters={"learning_rate": 0.1})
    board = build([tmp_path / "runs"], n_resamples=100)
    labels = {r.label: r for r in _rows(board)}
    assert set(labels) == {"ppo", "ppo #2"}
    assert "learning_rate=0.1 (vs 0.001)" in labels["ppo #2"].note


def test_seeds_of_one_budget_pool_whatever_steps_their_last_rollout_ended_at(summaries, tmp_path):
    # group rollouts end with whole episodes: the steps taken differ a little by seed
    summaries("a/rloo/seed0", seed=0, agent="rloo", timesteps=1000, total_env_steps=1012)
    summaries("a/rloo/seed1", seed=1, agent="rloo", timesteps=1000, total_env_steps=1030)
    # a summary from before the budget was recorded: the bench's run.json beside it
    summaries("a/rloo/seed2", seed=2, agent="rloo", total_env_steps=1021)
    (tmp_path / "runs/a/rloo/seed2/run.json").write_text(json.dumps({"n_timesteps": 1000}))
    summaries("b/rloo/seed0", seed=0, agent="rloo", timesteps=2000, total_env_steps=2010)
    board = build([tmp_path / "runs"], n_resamples=100)
    rows = {r.label: r for r in _rows(board)}
    assert sorted(rows["rloo"].seeds) == [0, 1, 2]
    assert rows["rloo"].total_env_steps == 1021  # the mean of the steps taken
    assert rows["rloo #2"].seeds == [0]
    assert "budget 2,000 env steps (vs 1,000)" in rows["rloo #2"].note


def test_ranking_by_metric_and_unusable_summaries_are_listed(summaries, tmp_path):
    summaries("r/random/seed0", agent="random", policy=None, test_metrics={"f1": 0.01})
    summaries("r/supervised/seed0", agent="supervised", test_metrics={"f1": 0.8})
    summaries("r/ppo/seed0", test_metrics={"f1": 0.3})
    summaries("r/ppo/seed0-copy", test_metrics={"f1": 0.3})
    broken = tmp_path / "runs" / "r" / "trpo" / "seed0" / "summary.json"
    broken.parent.mkdir(parents=True)
    broken.write_text('{"env_id": "TextNER-v0"')
    partial = broken.parent.parent / "seed1" / "summary.json"
    partial.parent.mkdir()
    partial.write_text(json.dumps({"env_id": "TextNER-v0"}))
    board = build([tmp_path / "runs"], n_resamples=100)
    assert [(r.rank, r.agent) for r in _rows(board)] == [
        (1, "supervised"),
        (2, "ppo"),
        (3, "random"),
    ]
    reasons = dict(board.skipped)
    assert "unreadable" in reasons[str(broken.parent)]
    assert "lacks" in reasons[str(partial.parent)]
    assert any("counted once" in why for why in reasons.values())
    assert board.num_runs == 3


def test_each_task_is_ranked_by_its_metric(summaries, tmp_path):
    summaries(
        "c/ppo/seed0",
        env_id="TextClassification-v0",
        env_kwargs={},
        test_metrics={"accuracy": 0.7, "f1": None},
    )
    summaries(
        "s/ppo/seed0",
        env_id="TextSummarization-v0",
        env_kwargs={},
        test_metrics={"rougeL": 0.2, "f1": None},
    )
    board = build([tmp_path / "runs"], n_resamples=100)
    metrics = {t.env_id: (t.metric_key, t.rows[0].metric.mean) for t in board.tables}
    assert metrics == {
        "TextClassification-v0": ("accuracy", 0.7),
        "TextSummarization-v0": ("rougeL", 0.2),
    }


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ({"f1": 7.5}, "test_metrics.f1 is 7.5, outside [0, 1]"),
        ({"f1": -0.1}, "test_metrics.f1 is -0.1, outside [0, 1]"),
        ({"f1": float("nan")}, "test_metrics.f1 is nan"),
        ({"f1": "0.9"}, "test_metrics.f1 is '0.9', not a number"),
        ({"precision": 2.0}, "test_metrics.precision is 2.0, outside [0, 1]"),
        ({"mean_reward": float("inf")}, "test_metrics.mean_reward is inf"),
    ],
)
def test_impossible_scores_are_skipped_and_never_counted_as_seeds(summaries, tmp_path, bad, why):
    """An accuracy of 7.5 ranked first; a NaN seed was dropped from the mean while the row
    still showed "seeds 2"."""
    summaries("a/ppo/seed0", seed=0, test_metrics={"f1": 0.4})
    summaries("a/ppo/seed1", seed=1, test_metrics=bad)
    summaries("b/trpo/seed0", agent="trpo", seed=0, test_metrics={"f1": 0.3})
    board = build([tmp_path / "runs"], n_resamples=100)
    rows = _rows(board)
    assert [(r.agent, r.seeds) for r in rows] == [("ppo", [0]), ("trpo", [0])]
    assert rows[0].metric.n == rows[0].mean_return.n == 1
    assert [w for _, w in board.skipped] == [why]
    assert board.skipped[0][0].endswith("seed1")


def test_a_run_without_the_ranked_metric_is_skipped(summaries, tmp_path):
    summaries("a/ppo/seed0", seed=0)
    path = summaries("a/ppo/seed1", seed=1)
    summary = json.loads(path.read_text())
    del summary["test_metrics"]["f1"]
    path.write_text(json.dumps(summary))
    board = build([tmp_path / "runs"], n_resamples=100)
    assert [r.seeds for r in _rows(board)] == [[0]]
    assert (
        board.skipped[0][1]
        == "test_metrics has no f1 (entity F1, the metric this env is ranked by)"
    )
