"""The textgym command: list and play (train and eval are tested with the agents)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from textgym import cli


def test_list_shows_every_env(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for env_id in ("TextNER-v0", "TextClassification-v0", "TextSummarization-v0"):
        assert env_id in out
    assert "wnut16: train 1,955, validation 219, test 220" in out
    assert "Discrete(21)" in out and "Discrete(30522)" in out
    assert "token+f1" in out and "rougeL" in out


def test_play_ner_by_typing_tags(capsys):
    answers = iter(["O", "B-nothing", "0", "q"])
    args = cli.build_parser().parse_args(["play", "TextNER-v0", "--seed", "0"])
    assert cli.cmd_play(args, read=lambda prompt: next(answers)) == 0
    out = capsys.readouterr().out
    assert "reward +" in out and "of train (wnut16)" in out
    assert "error: 'B-nothing' is not one of" in out


def test_play_summarization_until_the_end(capsys):
    answers = iter(["the", "government", "", "n"])
    args = cli.build_parser().parse_args(
        ["play", "TextSummarization-v0", "--seed", "1", "--env-kwargs", '{"max_source_tokens": 32}']
    )
    assert cli.cmd_play(args, read=lambda prompt: next(answers)) == 0
    out = capsys.readouterr().out
    assert "episode over: return" in out and "rougeL" in out


def test_bad_env_kwargs_is_a_clean_error():
    proc = subprocess.run(
        [sys.executable, "-m", "textgym.cli", "list", "--env-kwargs", '{"max_tokens": 1}'],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "textgym: error: max_tokens must be an integer >= " in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"]])
def test_help(argv):
    proc = subprocess.run(
        [sys.executable, "-m", "textgym.cli", *argv], capture_output=True, text=True
    )
    assert proc.returncode == 0 and "usage: textgym" in proc.stdout
