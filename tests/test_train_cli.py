"""``textgym train`` / ``textgym eval`` on run directories: no silent overwrite, no silent
change of experiment on ``--resume``, one writer at a time, a full disk and Ctrl-C lose
nothing, and every bad argument is a one-line ``textgym: error: ...`` with status 2.

Each test here failed before its fix (issue 13, items 1-5, 12, 16 and 17).
"""

from __future__ import annotations

import csv
import fcntl
import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from textgym import cli

HPARAMS = {"n_envs": 2, "n_steps": 16, "batch_size": 32, "n_epochs": 1}
RUN = [
    "TextClassification-v0", "--agent", "ppo", "--policy", "tiny", "--device", "cpu",
    "--env-kwargs", json.dumps({"max_tokens": 16}), "--hparams", json.dumps(HPARAMS),
    "--eval-freq", "0", "--no-progress",
]  # fmt: skip


def train(out: Path, *extra: str, timesteps: int = 64, run: list[str] = RUN) -> int:
    return cli.main(["train", *run, "--timesteps", str(timesteps), "--out", str(out), *extra])


def steps(out: Path, what: str = "checkpoint") -> int:
    return json.loads((out / what / "config.json").read_text())["num_timesteps"]


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("textgym: error: ")]
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished 64-step run (copy it before changing it)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert train(out) == 0
    return out


def copy_run(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "run"
    shutil.copytree(src, dst)
    return dst


def test_resume_removes_what_a_killed_atomic_write_left(finished, tmp_path):
    """A run killed while replacing progress.csv leaves its ``.progress.csv.*.tmp``
    beside the intact file; the run that takes the directory over deletes it."""
    out = copy_run(finished, tmp_path)
    (out / "model").rename(out / "model.gone")  # as if killed before the final save
    (out / "summary.json").unlink()
    leftover = out / ".progress.csv.k1ll3d0x.tmp"
    leftover.write_text("time/total_timesteps\n1")
    assert train(out, "--resume", timesteps=96) == 0
    assert not leftover.exists() and not list(out.glob(".*.tmp"))
    assert steps(out, "model") == 96


# ----- 1. a finished run is never overwritten silently ------------------------------------


def test_train_refuses_to_overwrite_a_finished_run(finished, tmp_path, capsys):
    out = copy_run(finished, tmp_path)
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    capsys.readouterr()
    assert train(out, timesteps=32) == 2
    message = one_line_error(capsys)
    assert f"--out {out} already holds a run" in message
    assert "--resume" in message and "--overwrite" in message
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert steps(out) == steps(out, "model") == 64

    assert train(out, "--overwrite", timesteps=32) == 0
    assert steps(out) == steps(out, "model") == 32
    assert json.loads((out / "summary.json").read_text())["total_env_steps"] == 32
    assert len(list(out.glob("events.out.tfevents.*"))) == 1  # the old run's log is gone


# ----- 2. --resume refuses a changed experiment ---------------------------------------------


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (["--seed", "7"], "--seed 0, not 7"),
        (["--policy", "minilm"], "--policy 'tiny', not 'minilm'"),
        (["--agent", "trpo"], "--agent 'ppo', not 'trpo'"),
        (["--n-envs", "4"], "--n-envs 2, not 4"),
        (["--hparams", '{"learning_rate": 0.1}'], "--hparams learning_rate"),
        (["--env-kwargs", '{"max_tokens": 32}'], "--env-kwargs max_tokens 16, not 32"),
        (["--env-kwargs", '{"max_tokens": 16, "dataset": "sst2"}'], "--env-kwargs dataset"),
        (["--eval-freq", "32"], "--eval-freq 0, not 32"),
    ],
)
def test_resume_refuses_a_changed_setting_and_names_it(finished, tmp_path, capsys, change, named):
    out = copy_run(finished, tmp_path)
    argv = list(RUN)
    if change[0] in argv:  # the changed option replaces the run's own value
        i = argv.index(change[0])
        del argv[i : i + 2]
    argv += change
    assert train(out, "--resume", timesteps=128, run=argv) == 2
    message = one_line_error(capsys)
    assert named in message and "--resume" in message and "--overwrite" in message
    assert steps(out) == 64


def test_resume_refuses_another_env_id(finished, tmp_path, capsys):
    out = copy_run(finished, tmp_path)
    argv = ["TextNER-v0", *RUN[1:]]
    assert train(out, "--resume", timesteps=128, run=argv) == 2
    assert "env id 'TextClassification-v0', not 'TextNER-v0'" in one_line_error(capsys)


def test_resume_extends_a_run_with_the_same_or_omitted_settings(finished, tmp_path, capsys):
    out = copy_run(finished, tmp_path)
    assert train(out, "--resume", timesteps=96) == 0
    assert steps(out, "model") == 96
    # settings left out are the run's own (even --agent and --policy)
    bare = ["TextClassification-v0", "--device", "cpu", "--no-progress"]
    assert train(out, "--resume", timesteps=128, run=bare) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["total_env_steps"] == 128 and summary["policy"] == "tiny"
    assert summary["hyperparameters"]["n_envs"] == 2
    capsys.readouterr()
    assert train(out, "--resume", timesteps=64) == 2  # shorter than what is done
    assert "already trained 128 steps" in one_line_error(capsys)


def test_resume_finishes_a_run_whose_last_rollout_ended_past_its_budget(tmp_path, capsys):
    """Whole rollouts end past the budget (32-step rollouts, 80 asked: 96 done). A run
    killed after its last checkpoint and before its summary is resumed with its own
    budget (as ``textgym bench`` does) and only finishes: no more training, the summary."""
    out = tmp_path / "run"
    assert train(out, timesteps=80) == 0
    assert steps(out) == 96
    first = json.loads((out / "summary.json").read_text())
    shutil.rmtree(out / "model")  # as if killed before the final save
    (out / "summary.json").unlink()
    assert train(out, "--resume", timesteps=80) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["total_env_steps"] == 96 and summary["timesteps"] == 80
    assert summary["test_metrics"] == first["test_metrics"]
    assert steps(out, "model") == 96
    capsys.readouterr()
    # another budget below what is done is still refused
    (out / "summary.json").unlink()
    assert train(out, "--resume", timesteps=70) == 2
    assert "already trained 96 steps" in one_line_error(capsys)


# ----- 3. one writer per run directory ------------------------------------------------------


def test_a_second_train_into_a_locked_run_directory_fails_clearly(tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    with open(out / ".lock", "w") as held:  # another process's lock (its own open file)
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert train(out) == 2
    assert "is being written by another process" in one_line_error(capsys)
    assert not (out / "checkpoint").exists() and not (out / "progress.csv").exists()


# ----- 4. a full disk while writing a checkpoint ---------------------------------------------


def test_a_full_disk_during_a_checkpoint_keeps_the_last_good_one(tmp_path, capsys, monkeypatch):
    import safetensors
    import textgym.agents.common.io as agent_io

    real_save = agent_io.save_file
    calls = []

    def disk_fills_up(tensors, filename):
        calls.append(filename)
        if len(calls) <= 2:  # the first checkpoint (weights + training state) fits
            return real_save(tensors, filename)
        Path(filename).write_bytes(b"\0" * 100_000)  # a partial file, as a full disk leaves
        raise safetensors.SafetensorError(
            'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No '
            'space left on device" })'
        )

    monkeypatch.setattr(agent_io, "save_file", disk_fills_up)
    out = tmp_path / "run"
    assert train(out, "--checkpoint-freq", "32", timesteps=128) == 2
    message = one_line_error(capsys)
    assert "No space left on device" in message
    assert f"the last good checkpoint, {out / 'checkpoint'} (32 steps), is kept" in message
    assert "--resume" in message
    assert steps(out) == 32
    leftovers = [p for p in out.rglob("*") if ".tmp" in p.name or p.name.endswith(".old")]
    assert leftovers == []

    monkeypatch.setattr(agent_io, "save_file", real_save)  # space freed
    assert train(out, "--resume", "--checkpoint-freq", "32", timesteps=128) == 0
    assert steps(out, "model") == 128


# ----- 5. Ctrl-C and SIGTERM save a checkpoint ------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_saves_a_checkpoint_and_exits_130(tmp_path, sig):
    out = tmp_path / "run"
    log = tmp_path / "log.txt"
    argv = [sys.executable, "-m", "textgym.cli", "train", *RUN, "--timesteps", "1000000"]
    argv += ["--checkpoint-freq", "1000000", "--out", str(out)]
    with open(log, "w") as f:
        proc = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while not (out / "progress.csv").exists():  # a few updates are done, none checkpointed
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, "no update within 300 s"
        time.sleep(0.05)
    time.sleep(0.5)
    assert not (out / "checkpoint").exists()
    proc.send_signal(sig)
    assert proc.wait(timeout=120) == 130, log.read_text()[-3000:]
    text = log.read_text()
    assert "Traceback" not in text
    done = steps(out)
    assert done >= 32 and done % 32 == 0
    assert f"checkpoint saved in {out / 'checkpoint'}" in text and "--resume" in text
    with open(out / "progress.csv", newline="") as f:
        logged = [int(float(row["time/total_timesteps"])) for row in csv.DictReader(f)]
    assert logged[-1] == done  # nothing trained after the checkpoint


# ----- 12. bad arguments: one line, status 2 --------------------------------------------------


def _without(option: str) -> list[str]:
    argv = list(RUN)
    i = argv.index(option)
    return argv[:i] + argv[i + 2 :]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (
            [*_without("--env-kwargs"), "--env-kwargs", "[1,2]"],
            "--env-kwargs must be a JSON object",
        ),
        ([*_without("--env-kwargs"), "--env-kwargs", '"x"'], "--env-kwargs must be a JSON object"),
        ([*_without("--env-kwargs"), "--env-kwargs", "{max"], "--env-kwargs is not valid JSON"),
        (["TextNERR-v0", *RUN[1:]], "unknown env id 'TextNERR-v0'; did you mean 'TextNER-v0'?"),
        (
            [*_without("--hparams"), "--hparams", '{"learning_rate": "fast"}'],
            "--hparams: learning_rate must be float, got 'fast'",
        ),
        (
            [*_without("--hparams"), "--hparams", '{"learnin_rate": 0.1}'],
            "unknown hyperparameter 'learnin_rate' for ppo (did you mean 'learning_rate'?)",
        ),
        ([*_without("--hparams"), "--hparams", '{"n_envs": true}'], "n_envs must be int"),
        ([*_without("--device"), "--device", "gpu"], "--device 'gpu' is not a device"),
        ([*RUN, "--timesteps", "0"], "--timesteps must be >= 1, got 0"),
        ([*RUN, "--timesteps", "-5"], "--timesteps must be >= 1, got -5"),
        ([*RUN, "--n-envs", "0"], "--n-envs must be >= 1, got 0"),
        ([*RUN, "--resume", "--overwrite"], "--resume and --overwrite exclude each other"),
    ],
)
def test_bad_train_arguments_are_one_line_errors(tmp_path, capsys, argv, expected):
    code = cli.main(["train", *argv, "--out", str(tmp_path / "run")])
    assert code == 2
    assert expected in one_line_error(capsys)
    assert not (tmp_path / "run" / "summary.json").exists()


def test_cuda_on_a_machine_without_it_is_a_one_line_error(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert train(tmp_path / "run", "--device", "cuda", run=_without("--device")) == 2
    assert "--device cuda: CUDA is not available on this machine" in one_line_error(capsys)


def test_an_out_dir_that_cannot_be_created_is_a_one_line_error(tmp_path, capsys):
    assert train(Path("/proc/nope/run")) == 2
    assert "--out /proc/nope/run: cannot create the run directory" in one_line_error(capsys)
    (tmp_path / "file").write_text("x")
    assert train(tmp_path / "file") == 2
    assert "exists and is not a directory" in one_line_error(capsys)


def test_bad_arguments_through_the_real_command_line(tmp_path):
    """The same as the in-process tests, through ``python -m textgym.cli``."""
    proc = subprocess.run(
        [sys.executable, "-m", "textgym.cli", "train", "TextNERR-v0", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "textgym: error: unknown env id 'TextNERR-v0'; did you mean 'TextNER-v0'? "
        "(textgym envs: TextNER-v0, TextClassification-v0, TextSummarization-v0)"
    ]


# ----- 16. a missing evaluation split fails before training ---------------------------------


def test_a_corpus_without_a_validation_split_fails_before_training(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    rows = "text,label\n" + "".join(f"doc {i},{'ab'[i % 2]}\n" for i in range(4))
    (data / "train.csv").write_text(rows)  # 4 rows: every one stays in train
    (data / "test.csv").write_text(rows)
    kwargs = json.dumps({"dataset": "csv", "data_dir": str(data), "max_tokens": 16})
    argv = [*_without("--env-kwargs"), "--env-kwargs", kwargs]
    i = argv.index("--eval-freq")
    del argv[i : i + 2]
    out = tmp_path / "run"
    assert train(out, "--eval-freq", "32", run=argv) == 2
    message = one_line_error(capsys)
    assert "has no 'validation' split, which evaluation every 32 steps needs" in message
    assert "--eval-freq 0" in message
    assert not (out / "progress.csv").exists()  # nothing was trained
    assert train(out, "--eval-freq", "0", run=argv) == 0


# ----- 17. one TensorBoard log over resumes; run summaries that work from anywhere -----------


def _tensorboard_steps(out: Path) -> list[list[int]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    logs = []
    for path in sorted(out.glob("events.out.tfevents.*")):
        acc = EventAccumulator(str(path))
        acc.Reload()
        logs.append([e.step for e in acc.Scalars("time/total_timesteps")])
    return logs


def test_resumes_keep_one_tensorboard_log_without_redone_steps(tmp_path):
    out = tmp_path / "run"
    assert train(out, timesteps=64) == 0
    at_64 = tmp_path / "checkpoint64"
    shutil.copytree(out / "checkpoint", at_64)
    assert train(out, "--resume", timesteps=128) == 0
    assert _tensorboard_steps(out) == [[32, 64, 96, 128]]
    # a crash after the 64-step checkpoint: 96 and 128 are logged, then redone
    shutil.rmtree(out / "checkpoint")
    shutil.copytree(at_64, out / "checkpoint")
    assert train(out, "--resume", timesteps=160) == 0
    assert _tensorboard_steps(out) == [[32, 64, 96, 128, 160]]


def test_eval_finds_relative_data_files_from_another_directory(tmp_path, monkeypatch, capsys):
    project = tmp_path / "project"
    (project / "data").mkdir(parents=True)
    rows = "text,label\n" + "".join(f"doc number {i},{'ab'[i % 2]}\n" for i in range(30))
    for split in ("train", "validation", "test"):
        (project / "data" / f"{split}.csv").write_text(rows)
    files = {s: f"data/{s}.csv" for s in ("train", "validation", "test")}
    kwargs = json.dumps({"dataset": "csv", "data_files": files, "max_tokens": 16})
    monkeypatch.chdir(project)
    assert train(Path("run"), run=[*_without("--env-kwargs"), "--env-kwargs", kwargs]) == 0
    summary = json.loads((project / "run" / "summary.json").read_text())
    assert summary["env_kwargs"]["data_files"]["test"] == str(project / "data" / "test.csv")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    capsys.readouterr()
    assert cli.main(["eval", str(project / "run"), "--device", "cpu"]) == 0
    assert "test split: 30 examples" in capsys.readouterr().out


def test_ner_without_agent_trains_the_envs_default_agent(tmp_path):
    """hyperparams.yaml names RLOO as TextNER-v0's default agent (PPO elsewhere)."""
    out = tmp_path / "run"
    run = [
        "TextNER-v0", "--policy", "tiny", "--device", "cpu",
        "--env-kwargs", json.dumps({"max_tokens": 16}),
        "--hparams", json.dumps({"n_envs": 8}), "--eval-freq", "0", "--no-progress",
    ]  # fmt: skip
    assert train(out, run=run, timesteps=32) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["agent"] == "rloo"
    assert summary["hyperparameters"]["group_size"] == 4
    assert summary["hyperparameters"]["objective"] == "loglik"
    # whole episodes of 2 sentences x 4 slots: past the budget, which is recorded too
    assert summary["timesteps"] == 32 < summary["total_env_steps"]
