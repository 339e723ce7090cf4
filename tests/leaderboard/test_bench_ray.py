"""``textgym bench --backend ray`` against the local backend, on a local Ray of 2 CPUs.

The config checks of ``resources:`` need no Ray; the bench tests skip without it. They
share one Ray (``num_cpus=2``) and two benches of the 2-env x 2-agent x 2-seed matrix in
``tiny_ray_bench.yaml``, each a ``textgym bench`` process: the local backend, and the Ray
backend (``--address``) SIGKILLed once the first PPO run has a checkpoint but no summary,
then rerun. The Ray summaries, the resumed run's included, must equal the local ones.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lb_helpers import subprocess_env

from textgym.errors import TextgymError
from textgym.leaderboard.config import load_config, parse_config

TINY_RAY_BENCH = Path(__file__).with_name("tiny_ray_bench.yaml")
EXPECTED = sorted(spec.key for spec in load_config(TINY_RAY_BENCH))
INTERRUPTED = "ner/ppo/seed0"
# What may differ between two runs of one spec: when and how long it ran.
TIMING_FIELDS = {"wall_time_s", "session_time_s", "finished_at"}


def _bench(out: Path, *options: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "textgym.leaderboard", "bench", str(TINY_RAY_BENCH)]
    return subprocess.Popen(
        [*cmd, "--out", str(out), "--no-progress", *options],
        env=subprocess_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def _finish(proc: subprocess.Popen, timeout: float = 900) -> tuple[int, str]:
    log, _ = proc.communicate(timeout=timeout)
    return proc.returncode, log


def _summaries(out: Path) -> dict[str, bytes]:
    return {str(p.parent.relative_to(out)): p.read_bytes() for p in out.rglob("summary.json")}


def _without_timing(data: bytes) -> dict:
    return {k: v for k, v in json.loads(data).items() if k not in TIMING_FIELDS}


def _workers_of(out: Path) -> list[int]:
    """Pids of the live worker processes that write under ``out``."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:  # not a process, or it ended
            continue
        if b"textgym.leaderboard.worker" in argv and any(str(out).encode() in a for a in argv):
            pids.append(int(entry.name))
    return pids


@pytest.fixture(scope="module")
def ray():
    """Ray, or a skip: ``pip install -e ".[test]"`` (the README's test command) has none."""
    return pytest.importorskip(
        "ray", reason="the Ray backend's tests need Ray: pip install 'textgym[ray]'"
    )


@pytest.fixture(scope="module")
def ray_address(ray):
    for attempt in range(3):  # Ray gives its raylet 30 s to register: a busy machine may not
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
            break
        except Exception:
            ray.shutdown()
            if attempt == 2:
                raise
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def local_bench(tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "runs"
    code, log = _finish(_bench(out, "--workers", "2"))
    assert code == 0, log[-3000:]
    return _summaries(out)


@pytest.fixture(scope="module")
def killed_bench(tmp_path_factory, ray_address):
    """The Ray bench SIGKILLed between a PPO checkpoint and its summary, then rerun."""
    out = tmp_path_factory.mktemp("killed") / "runs"
    run_dir = out / INTERRUPTED
    first = _bench(out, "--backend", "ray", "--address", ray_address)
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
                pytest.fail("the Ray bench did not reach a PPO checkpoint in 600 s")
            time.sleep(0.05)
        os.kill(first.pid, signal.SIGKILL)  # the driver only: Ray must reap its tasks
        first.wait()
        deadline = time.monotonic() + 60
        while _workers_of(out) and time.monotonic() < deadline:
            time.sleep(0.2)
        orphans = _workers_of(out)
    finally:
        for pid in _workers_of(out):
            os.kill(pid, signal.SIGKILL)
    before = _summaries(out)
    code, log = _finish(_bench(out, "--backend", "ray", "--address", ray_address))
    return {
        "out": out,
        "before": before,
        "after": _summaries(out),
        "returncode": code,
        "log": log,
        "orphans": orphans,
    }


@pytest.mark.slow
def test_ray_summaries_equal_the_local_ones(local_bench, killed_bench):
    assert killed_bench["returncode"] == 0, killed_bench["log"][-3000:]
    assert sorted(killed_bench["after"]) == EXPECTED == sorted(local_bench)
    for key in EXPECTED:
        ray_summary = _without_timing(killed_bench["after"][key])
        how = "killed, then resumed from its checkpoint" if key == INTERRUPTED else "on Ray"
        assert ray_summary == _without_timing(local_bench[key]), f"{key} ({how})"


@pytest.mark.slow
def test_ray_runs_are_run_by_the_bench_worker(killed_bench):
    out = killed_bench["out"]
    for key in EXPECTED:
        log = (out / key / "log.txt").read_text()
        assert log.startswith("textgym bench: Ray task on node "), key
        assert "Traceback" not in log, key
    record = json.loads((out / "bench.json").read_text())
    assert record["backend"] == "ray"
    assert record["runs"] == [s.key for s in load_config(TINY_RAY_BENCH)]


@pytest.mark.slow
def test_without_address_the_bench_starts_its_own_ray(ray, tmp_path, local_bench):
    out = tmp_path / "runs"
    code, log = _finish(_bench(out, "--backend", "ray", "--only", "ner/random/seed0"))
    assert code == 0, log[-3000:]
    assert "Started a local Ray instance" in log
    assert "1 finished, 0 already done, 0 failed" in log
    [(key, data)] = _summaries(out).items()
    assert _without_timing(data) == _without_timing(local_bench[key])


@pytest.mark.slow
def test_killed_driver_takes_its_workers_down(killed_bench):
    assert not killed_bench["orphans"], "a worker outlived the SIGKILLed Ray driver"


@pytest.mark.slow
def test_rerun_after_a_kill_finishes_every_run_exactly_once(killed_bench):
    assert killed_bench["returncode"] == 0, killed_bench["log"][-3000:]
    assert sorted(killed_bench["after"]) == EXPECTED
    assert INTERRUPTED not in killed_bench["before"]
    done = len(killed_bench["before"])
    assert f"{len(EXPECTED) - done} finished, {done} already done, 0 failed" in killed_bench["log"]
    out = killed_bench["out"]
    assert not list(out.rglob("*.tmp")), "a half-written file was left behind"
    for key, data in killed_bench["before"].items():  # finished runs are not run again
        assert killed_bench["after"][key] == data, key


@pytest.mark.slow
def test_killed_run_resumes_from_its_checkpoint(killed_bench):
    run_dir = killed_bench["out"] / INTERRUPTED
    log = (run_dir / "log.txt").read_text()
    assert "resuming ppo from" in log
    assert log.count("textgym bench: Ray task on node ") == 2
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["total_env_steps"] == 256 and summary["seed"] == 0


def test_missing_ray_is_a_clear_error(tmp_path, monkeypatch):
    from textgym.leaderboard.runner import run_bench

    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    runs = load_config(TINY_RAY_BENCH)
    with pytest.raises(TextgymError, match=r"pip install 'textgym\[ray\]'"):
        run_bench(runs, tmp_path / "runs", backend="ray")
    assert not (tmp_path / "runs").exists()  # nothing written before the error


CONFIG = {
    "seeds": 1,
    "policy": "tiny",
    "agents": {"random": {}, "ppo": {}},
    "envs": {"ner": {"env_id": "TextNER-v0"}},
}


def _resources(**changes) -> dict[str, dict]:
    return {s.key: s.resources for s in parse_config({**CONFIG, **changes}, "bench.yaml")}


def test_resources_default_to_one_cpu_and_a_gpu_for_cuda_models():
    assert _resources() == {
        "ner/random/seed0": {"cpus": 1, "gpus": 0},
        "ner/ppo/seed0": {"cpus": 1, "gpus": 0},
    }
    assert _resources(device="cuda") == {
        "ner/random/seed0": {"cpus": 1, "gpus": 0},  # a baseline without a torch model
        "ner/ppo/seed0": {"cpus": 1, "gpus": 1},
    }


def test_resources_merge_key_by_key_the_innermost_winning():
    envs = {
        "ner": {
            "env_id": "TextNER-v0",
            "resources": {"cpus": 2},
            "agents": {"random": {}, "ppo": {"resources": {"gpus": 0.5}}},
        }
    }
    got = _resources(
        device="auto", resources={"cpus": 4, "gpus": 0}, agents={"random": {}, "ppo": {}}, envs=envs
    )
    assert got == {
        "ner/random/seed0": {"cpus": 2, "gpus": 0},
        "ner/ppo/seed0": {"cpus": 2, "gpus": 0.5},
    }
    agents = {"random": {}, "ppo": {"resources": {"cpus": 3}}}
    assert _resources(agents=agents)["ner/ppo/seed0"] == {"cpus": 3, "gpus": 0}


def test_resources_are_not_part_of_run_json():
    [one] = parse_config({**CONFIG, "agents": {"ppo": {"resources": {"cpus": 2}}}})
    [two] = parse_config({**CONFIG, "agents": {"ppo": {}}})
    assert one.to_json() == two.to_json() and one == two  # rescheduling is no new setting
    assert "resources" not in one.to_json()


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        ({"cpu": 1}, r"unknown key\(s\) \['cpu'\] in agents.ppo.resources"),
        ({"cpus": 0}, r"agents.ppo.resources.cpus must be > 0, got 0"),
        ({"gpus": -1}, r"agents.ppo.resources.gpus must be >= 0"),
        ({"cpus": "two"}, r"agents.ppo.resources.cpus must be a number, got 'two'"),
        ({"cpus": True}, r"agents.ppo.resources.cpus must be a number"),
        ({"gpus": 1.5}, r"agents.ppo.resources.gpus = 1.5: a share of a GPU must be below 1"),
        ([1, 2], r"agents.ppo.resources must be a mapping, got list"),
    ],
)
def test_bad_resources_name_the_entry(resources, message):
    with pytest.raises(TextgymError, match=rf"^bench.yaml: .*{message}"):
        parse_config({**CONFIG, "agents": {"ppo": {"resources": resources}}}, "bench.yaml")


def test_resources_that_contradict_the_device_are_errors():
    with pytest.raises(TextgymError, match=r"envs.ner.agents.ppo: resources ask for 1 GPU"):
        _resources(device="cpu", resources={"gpus": 1})
    with pytest.raises(TextgymError, match=r"device is cuda but resources ask for no GPU"):
        _resources(device="cuda", resources={"gpus": 0})


def test_address_needs_the_ray_backend(tmp_path, capsys):
    from textgym.cli import main

    argv = ["bench", str(TINY_RAY_BENCH), "--out", str(tmp_path / "runs"), "--address", "auto"]
    assert main(argv) == 2
    assert "--address names a Ray cluster: it needs --backend ray" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_worker_env_gives_threads_per_cpu_and_hides_unreserved_gpus():
    from textgym.leaderboard.ray_backend import worker_env

    [spec] = parse_config({**CONFIG, "agents": {"ppo": {"resources": {"cpus": 3}}}})
    assert worker_env(spec, {}) == {
        "OMP_NUM_THREADS": "3",
        "MKL_NUM_THREADS": "3",
        "TOKENIZERS_PARALLELISM": "false",
        "CUDA_VISIBLE_DEVICES": "",  # device: auto must not take a GPU it did not reserve
    }
    assert worker_env(spec, {"OMP_NUM_THREADS": "1"})["MKL_NUM_THREADS"] == "1"  # the driver's
    [gpu] = parse_config({**CONFIG, "agents": {"ppo": {"resources": {"gpus": 1}}}})
    assert "CUDA_VISIBLE_DEVICES" not in worker_env(gpu, {})  # Ray sets the reserved one


def test_runs_that_no_node_can_hold_are_named():
    from textgym.leaderboard.ray_backend import unfit

    runs = parse_config({**CONFIG, "resources": {"cpus": 2}, "agents": {"random": {}}})
    runs += parse_config({**CONFIG, "device": "cuda", "agents": {"ppo": {}}})
    assert unfit(runs, [{"CPU": 2.0}, {"CPU": 1.0, "GPU": 1.0}]) == []
    assert unfit(runs, [{"CPU": 1.0, "GPU": 1.0}]) == ["ner/random/seed0 (cpus=2, gpus=0)"]
    assert unfit(runs, [{"CPU": 8.0}]) == ["ner/ppo/seed0 (cpus=1, gpus=1)"]
