"""The textgym command: list and play (train and eval are tested with the agents)."""

from __future__ import annotations

import subprocess
import sys

import gymnasium as gym
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
    assert "tokenizer    all-MiniLM-L6-v2 (packaged WordPiece, uncased; vocab 30,522)" in out
    assert "site-packages" not in out


def play(argv: list[str], answers: list[str]) -> int:
    replies = iter(answers)
    args = cli.build_parser().parse_args(["play", *argv])
    return cli.cmd_play(args, read=lambda prompt: next(replies))


def test_play_ner_one_line_per_step_enter_is_o_and_the_end_shows_entity_f1(capsys):
    assert play(["TextNER-v0", "--seed", "0"], ["", "B-person", "B-nothing", "?", "q"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    sentence = next(line for line in lines if line.startswith("sentence "))
    assert "of train (wnut16): Well , after" in sentence
    steps = [line for line in lines if line.lstrip().startswith(("1/", "2/"))]
    assert len(steps) == 2  # one line per step; the sentence is not printed again
    assert steps[0].split()[1:] == ["Well", "O", "ok"]
    assert steps[1].split()[1:] == [",", "B-person", "wrong,", "gold", "O"]
    error = next(line for line in lines if "error:" in line)
    assert error.strip() == "error: unknown tag 'B-nothing' (type ? to list them)"
    assert sum(line.startswith("labels: ") for line in lines) == 2  # at the start, and for ?
    assert out.count("Well") == 2  # the sentence line and step 1


def test_play_ner_episode_end_gives_the_sentences_entity_f1(capsys):
    env = gym.make("TextNER-v0").unwrapped
    env.reset(seed=0)
    gold = env.examples[env.reset(seed=0)[1]["index"]].tags
    assert play(["TextNER-v0", "--seed", "0"], [*gold, "n"]) == 0  # type the gold tags
    out = capsys.readouterr().out
    assert "entity-F1 1.000" in out and "all 1 sentences: entity-F1" in out


def test_play_classification_scores_accuracy(capsys):
    assert play(["TextClassification-v0", "--seed", "0"], ["", "tech", "n"]) == 0
    out = capsys.readouterr().out
    assert "error: type a label (name or number)" in out  # no default without a model
    assert "tech: correct (reward +1)" in out and "accuracy 1/1 = 1.000" in out


def test_play_summarization_a_typed_word_is_one_line_and_the_end_shows_rouge(capsys):
    kwargs = '{"max_source_tokens": 32, "max_summary_tokens": 8}'
    answers = ["the", "Goverment", "", "n"]
    assert play(["TextSummarization-v0", "--seed", "1", "--env-kwargs", kwargs], answers) == 0
    out = capsys.readouterr().out
    assert "+ the (1 token)  summary: 'the'" in out
    assert "+ gov ##er ##ment (3 tokens)  summary: 'the goverment'" in out
    assert "episode over: return" in out and "rougeL" in out and "reference: " in out


def test_play_summarization_refuses_a_token_outside_the_source_before_stepping(capsys):
    kwargs = '{"max_source_tokens": 32, "constraint": "source"}'
    answers = ["zebra", "end", "n"]
    assert play(["TextSummarization-v0", "--seed", "1", "--env-kwargs", kwargs], answers) == 0
    out = capsys.readouterr().out
    assert "error: 'zebra' is not allowed here (not in the source)" in out
    assert "+ <end> (1 token)  summary: ''" in out


def test_play_against_a_trained_run_shows_its_suggestion(tmp_path, capsys):
    agents = pytest.importorskip("textgym.agents")
    kwargs = {"max_tokens": 32}
    model = agents.PPO(
        "TextClassification-v0", policy="tiny", seed=0, device="cpu", env_kwargs=kwargs,
        n_envs=2, n_steps=8, batch_size=16,
    )  # fmt: skip
    model.learn(16, progress_bar=False)
    model.save(tmp_path / "run" / "model")
    env = gym.make("TextClassification-v0", **kwargs).unwrapped
    obs, info = env.reset(seed=0)
    guess = env.labels[int(model.predict(obs, deterministic=True)[0])]
    argv = ["TextClassification-v0", "--seed", "0", "--model", str(tmp_path / "run")]
    assert play(argv, ["", "n"]) == 0  # Enter takes the model's suggestion
    out = capsys.readouterr().out
    assert "suggestions from ppo (run) are in [brackets]" in out
    assert f"  {guess}: " in out


def test_play_model_errors_are_clean(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "textgym.cli", "play", "TextNER-v0", "--model", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "no model/config.json (not a textgym run directory?)" in proc.stderr


def test_bad_env_kwargs_is_a_clean_error():
    proc = subprocess.run(
        [sys.executable, "-m", "textgym.cli", "list", "--env-kwargs", '{"max_tokens": 1}'],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert "textgym: error: max_tokens must be an integer >= " in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["play", "--help"]])
def test_help(argv):
    proc = subprocess.run(
        [sys.executable, "-m", "textgym.cli", *argv], capture_output=True, text=True
    )
    assert proc.returncode == 0 and "usage: textgym" in proc.stdout
    assert "``" not in proc.stdout  # plain text, not reST markup
