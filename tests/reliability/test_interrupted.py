"""Interrupted work: ``textgym train`` killed with SIGKILL, then ``--resume``.

One run directory is killed three times, at the three moments that can lose work:
during training (between checkpoints), while a checkpoint is being written (its
``checkpoint.tmp`` directory exists) and while the final model is being written
(``model.tmp`` exists). Each time ``--resume`` picks up from the last complete
checkpoint, and the last resume finishes with the step count, configuration and a
consistent ``progress.csv`` equal to an uninterrupted run with the same seed.

A tiny model's checkpoint is written in a few milliseconds, so a kill aimed at the
write can land after it, on a loaded machine. The runs therefore go through
``_SLOW_SWAP``: it pauses before each written directory is swapped in, the moment a
crash mid-write would find. The process is still killed with a real SIGKILL.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

TIMESTEPS = 512
HPARAMS = {"n_envs": 4, "n_steps": 16, "batch_size": 64, "learning_rate": 1e-3, "n_epochs": 1}


_SLOW_SWAP = """
import sys, time
import textgym.agents.common.checkpoints as checkpoints
from textgym.cli import main

_replace_dir = checkpoints.replace_dir

def replace_dir(tmp, final):
    time.sleep(0.25)
    _replace_dir(tmp, final)

checkpoints.replace_dir = replace_dir
sys.exit(main(sys.argv[1:]))
"""


def _command(out: Path, resume: bool) -> list[str]:
    return [
        sys.executable, "-c", _SLOW_SWAP, "train", "TextClassification-v0",
        "--agent", "ppo", "--policy", "tiny", "--seed", "0", "--device", "cpu",
        "--timesteps", str(TIMESTEPS), "--checkpoint-freq", "64", "--eval-freq", "0",
        "--env-kwargs", json.dumps({"max_tokens": 16}), "--hparams", json.dumps(HPARAMS),
        "--out", str(out), "--no-progress", *(["--resume"] if resume else []),
    ]  # fmt: skip


def _start(out: Path, resume: bool) -> tuple[subprocess.Popen, Path]:
    log = out.with_name(out.name + f".log{time.monotonic_ns()}")
    with open(log, "w") as f:
        proc = subprocess.Popen(_command(out, resume), stdout=f, stderr=subprocess.STDOUT)
    return proc, log


def _finish(out: Path, resume: bool) -> None:
    proc, log = _start(out, resume)
    assert proc.wait(timeout=600) == 0, log.read_text()[-3000:]


def _kill_when(out: Path, moment, poll: float, delay: float = 0.0) -> None:
    """Start a resumed run and SIGKILL it as soon as ``moment()`` is true."""
    proc, log = _start(out, resume=True)
    deadline = time.monotonic() + 600
    while not moment():
        if proc.poll() is not None:
            raise AssertionError(
                f"the run ended before the moment to kill it:\n{log.read_text()[-3000:]}"
            )
        assert time.monotonic() < deadline, "timed out waiting for the moment to kill"
        time.sleep(poll)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL


def _checkpoint_steps(out: Path) -> int:
    try:
        return json.loads((out / "checkpoint" / "config.json").read_text())["num_timesteps"]
    except (OSError, ValueError, KeyError):
        return -1


def _summary(out: Path) -> dict:
    summary = json.loads((out / "summary.json").read_text())
    keys = ("env_id", "env_kwargs", "agent", "policy", "hyperparameters", "seed", "total_env_steps")
    return {k: summary[k] for k in keys}


def _logged_steps(out: Path) -> list[int]:
    with open(out / "progress.csv", newline="") as f:
        return [int(float(row["time/total_timesteps"])) for row in csv.DictReader(f)]


@pytest.mark.slow
def test_sigkill_during_training_checkpointing_and_final_save_then_resume(tmp_path):
    reference = tmp_path / "reference"
    _finish(reference, resume=False)
    out = tmp_path / "run"
    out.mkdir()
    # 1. during training: a little after the checkpoint at >= 128 steps
    _kill_when(out, lambda: _checkpoint_steps(out) >= 128, poll=0.005, delay=0.3)
    killed_at = _checkpoint_steps(out)
    assert 128 <= killed_at < TIMESTEPS and not (out / "summary.json").exists()
    # 2. while the next checkpoint is being written (the previous one is complete)
    _kill_when(
        out,
        lambda: (out / "checkpoint.tmp").exists() and _checkpoint_steps(out) > killed_at,
        poll=0.0005,
    )
    assert (out / "checkpoint.tmp").exists()  # the kill landed mid-write
    assert _checkpoint_steps(out) > killed_at  # ... and the complete checkpoint survived
    # 3. while the final model is being written
    _kill_when(out, lambda: (out / "model.tmp").exists(), poll=0.0005)
    assert not (out / "summary.json").exists()
    _finish(out, resume=True)
    assert _summary(out) == _summary(reference)
    assert _summary(out)["total_env_steps"] == TIMESTEPS
    steps = _logged_steps(out)
    assert steps == sorted(set(steps)) and steps[-1] == TIMESTEPS  # no row lost or repeated
    assert steps == _logged_steps(reference)
    from textgym.agents import PPO

    assert PPO.load(out / "model", device="cpu").num_timesteps == TIMESTEPS


# ----- crash points inside a save, in process -------------------------------------------


class Killed(BaseException):
    """Stands for SIGKILL: nothing after the crash point runs (no cleanup is attempted
    by the code under test for a BaseException it does not expect)."""


def _tiny_model():
    from textgym.agents import PPO

    return PPO(
        "TextClassification-v0", policy="tiny", device="cpu", env_kwargs={"max_tokens": 16},
        n_envs=2, n_steps=8, batch_size=16,
    )  # fmt: skip


def test_a_crash_while_swapping_in_a_checkpoint_never_leaves_none(tmp_path, monkeypatch):
    """A save swaps ``ckpt.tmp`` in through ``ckpt.old``. After a crash between the two
    renames only ``ckpt.old`` holds the checkpoint; the next save deleted it before its
    own swap, so a second crash there left no checkpoint at all."""
    import textgym.agents.common.io as agent_io
    from textgym.agents import PPO

    model = _tiny_model()
    path = tmp_path / "ckpt"
    model.save(path, training_state=True)
    os.replace(path, path.with_name("ckpt.old"))  # the state a first crash leaves
    assert PPO.load(path, device="cpu").num_timesteps == 0  # found through ckpt.old

    real_replace = os.replace

    def crash_on_swap(src, dst):
        if Path(dst) == path:
            raise Killed
        real_replace(src, dst)

    monkeypatch.setattr(agent_io.os, "replace", crash_on_swap)
    with pytest.raises(Killed):
        model.save(path, training_state=True)
    monkeypatch.setattr(agent_io.os, "replace", real_replace)
    assert PPO.load(path, device="cpu").num_timesteps == 0


def test_resume_from_a_truncated_checkpoint_is_a_one_line_cli_error(tmp_path):
    out = tmp_path / "run"
    (out / "checkpoint").mkdir(parents=True)
    config = out / "checkpoint" / "config.json"
    config.write_text('{"format": "textgym-agent/1", "algo')
    proc, log = _start(out, resume=True)
    assert proc.wait(timeout=600) == 2
    text = log.read_text()
    assert f"textgym: error: {config}: corrupt or truncated JSON" in text
    assert "Traceback" not in text
