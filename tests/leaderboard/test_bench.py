"""End to end: a tiny bench killed mid-run (SIGKILL) and rerun, then its leaderboard.

One bench run is shared by the module (it is the expensive part): the fixture starts
``python -m textgym.leaderboard bench`` with two workers, waits until the first PPO run
has written a checkpoint but not its summary, SIGKILLs the bench process alone (its
workers must die with it), and runs the same command again.
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
from lb_helpers import TINY_BENCH, subprocess_env

from textgym.leaderboard.config import load_config
from textgym.leaderboard.render import write_leaderboard
from textgym.leaderboard.table import build

pytestmark = pytest.mark.slow

EXPECTED = sorted(spec.key for spec in load_config(TINY_BENCH))
INTERRUPTED = "ner/ppo/seed0"


def _bench(out: Path, **kwargs) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "textgym.leaderboard", "bench", str(TINY_BENCH)]
    cmd += ["--out", str(out), "--workers", "2", "--no-progress"]
    return subprocess.Popen(
        cmd,
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        **kwargs,
    )


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _summaries(out: Path) -> dict[str, bytes]:
    return {str(p.parent.relative_to(out)): p.read_bytes() for p in out.rglob("summary.json")}


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "runs"
    run_dir = out / INTERRUPTED
    first = _bench(out)
    deadline = time.monotonic() + 600
    try:
        while not (
            (run_dir / "checkpoint" / "config.json").exists()
            and not (run_dir / "summary.json").exists()
        ):
            if first.poll() is not None:
                pytest.fail(
                    f"the bench ended (exit {first.returncode}) before {INTERRUPTED} was caught "
                    f"between a checkpoint and its summary:\n{first.stdout.read()[-3000:]}"
                )
            if time.monotonic() > deadline:
                pytest.fail("the bench did not reach a PPO checkpoint in 600 s")
            time.sleep(0.05)
        os.kill(first.pid, signal.SIGKILL)  # the bench only: its workers must follow it
        first.wait()
        deadline = time.monotonic() + 60
        while _group_alive(first.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        orphans_died = not _group_alive(first.pid)
    finally:
        if _group_alive(first.pid):
            os.killpg(first.pid, signal.SIGKILL)
    before = _summaries(out)
    second = _bench(out)
    log, _ = second.communicate(timeout=900)
    return {
        "out": out,
        "before": before,
        "after": _summaries(out),
        "returncode": second.returncode,
        "log": log,
        "orphans_died": orphans_died,
    }


def test_killed_workers_die_with_the_bench(bench):
    assert bench["orphans_died"], "a worker outlived the SIGKILLed bench"


def test_rerun_finishes_every_run_exactly_once(bench):
    assert bench["returncode"] == 0, bench["log"][-3000:]
    assert sorted(bench["after"]) == EXPECTED
    assert INTERRUPTED not in bench["before"]
    assert f"{len(bench['before'])} already done" in bench["log"]
    leftovers = [p for p in bench["out"].rglob("*.tmp")] + list(bench["out"].rglob("*.tmp/"))
    assert not leftovers


def test_runs_finished_before_the_kill_are_kept_untouched(bench):
    assert bench["before"], "nothing had finished before the kill"
    for key, data in bench["before"].items():
        assert bench["after"][key] == data, key


def test_interrupted_run_resumes_from_its_checkpoint(bench):
    run_dir = bench["out"] / INTERRUPTED
    assert "resuming ppo from" in (run_dir / "log.txt").read_text()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["total_env_steps"] == 256 and summary["seed"] == 0
    with open(run_dir / "progress.csv") as f:
        steps = [int(float(row["time/total_timesteps"])) for row in csv.DictReader(f)]
    assert steps == sorted(set(steps)) and steps[-1] == 256  # no update logged twice


def test_summaries_have_the_train_fields(bench):
    for key in EXPECTED:
        summary = json.loads((bench["out"] / key / "summary.json").read_text())
        env, agent, seed = key.split("/")
        assert summary["agent"] == agent and f"seed{summary['seed']}" == seed
        assert {"env_id", "env_kwargs", "versions", "test_metrics", "wall_time_s"} <= set(summary)
        assert "mean_reward" in summary["test_metrics"]


def test_leaderboard_of_the_bench(bench, tmp_path):
    board = build([bench["out"]])
    assert board.num_runs == len(EXPECTED) and not board.skipped
    tables = {t.env_id: t for t in board.tables}
    ner = tables["TextNER-v0"]
    assert {r.agent for r in ner.rows} == {"majority", "supervised", "ppo"}
    assert all(r.seeds == [0, 1] or sorted(r.seeds) == [0, 1] for r in ner.rows)
    majority = next(r for r in ner.rows if r.agent == "majority")
    assert majority.metric.mean == 0.0  # all-"O" finds no entity
    summ = tables["TextSummarization-v0"]
    assert [r.agent for r in summ.rows] == ["lead"] and summ.rows[0].metric.mean > 0
    written = write_leaderboard(board, tmp_path / "lb", command="test")
    assert (tmp_path / "lb" / "curves" / "TextNER-v0.png").read_bytes()[:4] == b"\x89PNG"
    assert set(written) >= {"leaderboard.md", "leaderboard.json", "leaderboard.html"}


@pytest.mark.parametrize(
    "given, expected",
    [({}, 2), ({"OMP_NUM_THREADS": "1"}, 1), ({"MKL_NUM_THREADS": "1"}, 1)],
)
def test_workers_run_the_threads_the_user_set(monkeypatch, given, expected):
    """A worker's torch runs ``cpu_count // workers`` threads, or what the user set in
    either variable: torch takes MKL_NUM_THREADS over OMP_NUM_THREADS, so setting one must
    not leave the other at the default (``OMP_NUM_THREADS=1`` ran 2 threads)."""
    from textgym.leaderboard.runner import child_env

    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in given.items():
        monkeypatch.setenv(name, value)
    out = subprocess.run(
        [sys.executable, "-c", "import torch; print(torch.get_num_threads())"],
        env=child_env(2),
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(out.stdout) == expected
