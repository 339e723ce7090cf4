"""The rendered files: every row in Markdown, JSON and a self-contained HTML page."""

import json
import re

import pytest
from lb_helpers import make_runs, write_summary

from textgym.leaderboard.cli import main as cli_main
from textgym.leaderboard.render import write_leaderboard
from textgym.leaderboard.table import build


def test_markdown_json_html_and_curves(tmp_path):
    make_runs(tmp_path / "runs")
    board = build([tmp_path / "runs"], n_resamples=500)
    out = tmp_path / "lb"
    write_leaderboard(board, out, command="textgym leaderboard runs --out lb")
    md = (out / "leaderboard.md").read_text()
    data = json.loads((out / "leaderboard.json").read_text())
    page = (out / "leaderboard.html").read_text()

    rows = [r for env in data["envs"] for r in env["rows"]]
    assert len(rows) == 5
    ner = next(e for e in data["envs"] if e["env_id"] == "TextNER-v0")
    assert [r["agent"] for r in ner["rows"]] == ["supervised", "ppo", "random", "ppo"]
    assert ner["rows"][1]["metric"]["mean"] == pytest.approx(0.4) and ner["rows"][1]["seeds"] == [
        0,
        1,
        2,
    ]
    assert "max_tokens=64 (vs 32)" in ner["rows"][3]["note"]

    table_lines = [line for line in md.splitlines() if re.match(r"\| \d+ \|", line)]
    assert len(table_lines) == 5
    assert "0.400 [" in md and "4,000 labelled" in md
    assert "![TextNER-v0 spec A learning curves](curves/TextNER-v0.png)" in md
    assert (out / "curves" / "TextNER-v0.png").read_bytes()[:4] == b"\x89PNG"

    assert page.count("<tr") == 5 + 2  # body rows + one header row per table
    assert page.count('src="data:image/png;base64,') == 2  # NER spec A and B (B has a curve)
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched from the web


def test_cli_renders_and_refuses_an_empty_directory(tmp_path, capsys):
    make_runs(tmp_path / "runs")
    assert cli_main(["leaderboard", str(tmp_path / "runs"), "--out", str(tmp_path / "lb")]) == 0
    assert "TextNER-v0: best supervised" in capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    assert cli_main(["leaderboard", str(tmp_path / "empty"), "--out", str(tmp_path / "x")]) == 2
    assert "no finished runs" in capsys.readouterr().err


def test_register_adds_both_subcommands():
    import argparse

    from textgym.leaderboard.cli import register

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["bench", "c.yaml", "--out", "runs", "--workers", "2"])
    assert (args.command, args.workers, args.out) == ("bench", 2, "runs")
    args = parser.parse_args(["leaderboard", "runs", "--out", "lb"])
    assert (args.command, args.runs) == ("leaderboard", ["runs"])


def test_without_matplotlib_the_tables_are_still_written(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.split(".")[0] == "matplotlib":
            raise ImportError("No module named 'matplotlib'")
        return real_import(name, *args, **kwargs)

    make_runs(tmp_path / "runs")
    board = build([tmp_path / "runs"], n_resamples=100)
    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    write_leaderboard(board, tmp_path / "lb", command="test")
    assert "pip install textgym[plots]" in (tmp_path / "lb" / "leaderboard.md").read_text()
    assert not (tmp_path / "lb" / "curves").exists()


def _curves_figure(tmp_path, runs):
    from textgym.leaderboard.render import curves_figure

    for name, changes in runs.items():
        write_summary(tmp_path / "runs", name, **changes)
    board = build([tmp_path / "runs"], n_resamples=200)
    table = board.tables[0]
    return curves_figure(table, table.specs[0])


def test_curves_fit_the_agents_and_name_a_far_baseline(tmp_path):
    learning = [{"timesteps": t, "f1": f, "mean_reward": f * 10} for t, f in ((0, 0.3), (64, 0.4))]
    fig = _curves_figure(
        tmp_path,
        {
            "ppo/seed0": {"validation_curve": learning},
            "random/seed0": {
                "agent": "random",
                "policy": None,
                "validation_curve": [{"timesteps": 0, "f1": 0.001, "mean_reward": 0.01}],
            },
        },
    )
    f1_axis = fig.axes[0]
    low, high = f1_axis.get_ylim()
    assert 0.25 < low < 0.3 and 0.4 < high < 0.45  # not stretched down to random's 0.001
    labels = f1_axis.get_legend_handles_labels()[1]
    assert "random (0.001, off axis)" in labels and "ppo" in labels
    assert f1_axis.get_xlim()[0] == 0 and list(f1_axis.lines[0].get_xdata())[0] == 0


def test_seeds_whose_evaluations_fell_a_few_steps_apart_make_one_curve(tmp_path):
    def curve(steps, f1s):
        return [
            {"timesteps": t, "f1": f, "mean_reward": 1.0} for t, f in zip(steps, f1s, strict=True)
        ]

    runs = {  # group rollouts end with whole episodes: each seed evaluates a little late
        "rloo/seed0": {
            "agent": "rloo",
            "validation_curve": curve((0, 96012, 192030), (0, 0.2, 0.3)),
        },
        "rloo/seed1": {
            "agent": "rloo",
            "validation_curve": curve((0, 96048, 192006), (0, 0.0, 0.5)),
        },
    }
    line = _curves_figure(tmp_path, {k: {**v, "seed": i} for i, (k, v) in enumerate(runs.items())})
    line = line.axes[0].lines[0]
    assert list(line.get_xdata()) == [0, 96030, 192018]
    assert list(line.get_ydata()) == pytest.approx([0, 0.1, 0.4])


def test_a_curve_equal_to_the_mean_return_is_drawn_once(tmp_path):
    curve = [{"timesteps": t, "accuracy": a, "mean_reward": a} for t, a in ((0, 0.2), (8, 0.9))]
    cls = {"env_id": "TextClassification-v0", "env_kwargs": {}, "validation_curve": curve}
    fig = _curves_figure(tmp_path, {"ppo/seed0": cls})
    assert len(fig.axes) == 1 and fig.axes[0].get_title() == "validation accuracy"
    # a summary's reward is its ROUGE-L, accumulated in float32
    rouge = [
        {"timesteps": t, "rougeL": r, "mean_reward": r + 5e-9} for t, r in ((0, 0.2), (8, 0.21))
    ]
    summ = {"env_id": "TextSummarization-v0", "env_kwargs": {}, "validation_curve": rouge}
    summ["test_metrics"] = {"rougeL": 0.21}
    fig = _curves_figure(tmp_path / "summ", {"ppo/seed0": summ})
    assert len(fig.axes) == 1 and fig.axes[0].get_title() == "validation ROUGE-L"
    ner = _curves_figure(tmp_path / "ner", {"ppo/seed0": {}})  # F1 and return differ
    assert [ax.get_title() for ax in ner.axes] == ["validation entity F1", "validation mean return"]
