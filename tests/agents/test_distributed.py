"""Training with several processes (``agents/common/distributed.py``), on CPU with gloo.

Two ranks run in worker processes: after several updates every agent's parameters are
the same on both; the first rollout of 2 ranks x 8 slots is the first rollout of one
process with 16 slots; ``textgym train --nproc 2`` and ``torchrun`` write one run
directory from rank 0 with the world size in ``summary.json``, and a 2-rank run killed
with SIGKILL resumes to the right step count.
"""

from __future__ import annotations

import fcntl
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from textgym.agents import ALGORITHMS

from textgym import cli

NER = ("TextNER-v0", {"max_tokens": 32})
CLASSIFICATION = ("TextClassification-v0", {"max_tokens": 16})
SMALL = dict(n_steps=8, batch_size=16, learning_rate=1e-3)
TRPO_SMALL = dict(cg_max_steps=3, n_critic_updates=2, line_search_max_iter=3)
GROUP = dict(group_size=4, distinct_actions=True)

# agent -> (env, hyperparameters); each runs 3 updates on 2 ranks of 4 slots
IDENTITY_CASES = {
    "ppo": (NER, SMALL | {"n_epochs": 2, "target_kl": 0.002}),
    "trpo": (NER, SMALL | TRPO_SMALL),
    "reinforce": (NER, SMALL | {"n_critic_updates": 1}),
    "rloo": (NER, SMALL | GROUP | {"objective": "loglik"}),
    # ranks of a group rollout hold different numbers of steps: minibatch counts agree
    "grpo": (NER, SMALL | GROUP | {"n_epochs": 2, "batch_size": 8}),
    # single_pass: the update reuses each rank's rollout forward pass
    "ppo/single-pass": (NER, SMALL | {"episode_rollouts": True, "n_epochs": 1, "batch_size": 4096}),
    "grpo/single-pass": (NER, SMALL | GROUP | {"n_epochs": 1, "batch_size": 4096}),
    "reinforce/single-pass": (NER, SMALL | {"episode_rollouts": True}),
}
# first-rollout cases: (agent, env, hyperparameters); 2 x 8 slots against 1 x 16
ROLLOUT_CASES = [
    ("ppo", NER, SMALL),
    ("rloo", NER, SMALL | GROUP),
]


def _make(name: str, env, n_envs: int, **hparams):
    env_id, env_kwargs = env
    return ALGORITHMS[name.split("/")[0]](
        env_id,
        policy="tiny",
        seed=7,
        device="cpu",
        env_kwargs=env_kwargs,
        n_envs=n_envs,
        **hparams,
    )


def _rollout(model) -> dict[str, np.ndarray]:
    """What one rollout recorded, with each step's context spelled out (context ids are
    numbered per buffer)."""
    model.collect_rollouts()
    buf = model.buffer
    out = {
        "valid": buf.valid,
        "actions": buf.actions,
        "rewards": buf.rewards,
        "log_probs": buf.log_probs,
        "terminated": buf.terminated,
        **{f"obs/{k}": v for k, v in buf.obs.items()},
        **{f"context/{k}": v[buf.ctx_ids] for k, v in buf.contexts.items()},
    }
    return {k: np.where(_expand(buf.valid, v), v, 0) for k, v in out.items()}


def _expand(valid: np.ndarray, like: np.ndarray) -> np.ndarray:
    return valid.reshape(valid.shape + (1,) * (like.ndim - valid.ndim))


def _worker(rank: int, world: int, port: int, out_dir: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    try:
        results = {}
        for name, (env, hparams) in IDENTITY_CASES.items():
            model = _make(name, env, 4, **hparams)
            assert model.dist.world_size == world and model.dist.rank == rank
            model.learn(1, progress_bar=False)
            first = model.num_timesteps  # one update's steps, of both ranks
            for _ in range(2):
                model.learn(1, progress_bar=False, reset_num_timesteps=False)
            params = torch.cat([p.detach().reshape(-1) for p in model.policy.parameters()])
            results[name] = {
                "params": params,
                "steps": model.num_timesteps,
                "first": first,
                "updates": model.num_updates,
            }
        for name, env, hparams in ROLLOUT_CASES:
            rollout = _rollout(_make(name, env, 8, **hparams))  # as tensors: weights_only
            results[f"rollout/{name}"] = {k: torch.from_numpy(v.copy()) for k, v in rollout.items()}
        torch.save(results, Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    from textgym.agents.common.distributed import free_port

    return free_port()


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory) -> list[dict]:
    """The results of :func:`_worker` on 2 gloo ranks."""
    out = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(2, _free_port(), str(out)), nprocs=2, join=True)
    ranks = [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2)]
    for results in ranks:
        for key in [k for k in results if k.startswith("rollout/")]:
            results[key] = {k: v.numpy() for k, v in results[key].items()}
    return ranks


@pytest.mark.parametrize("name", list(IDENTITY_CASES))
def test_parameters_are_identical_on_all_ranks_after_several_updates(two_ranks, name):
    rank0, rank1 = two_ranks[0][name], two_ranks[1][name]
    assert rank0["updates"] == rank1["updates"] == 3
    assert rank0["steps"] == rank1["steps"] > rank0["first"] > 0
    # the ranks trained: their weights moved from the shared start
    env, hparams = IDENTITY_CASES[name]
    start = torch.cat(
        [p.detach().reshape(-1) for p in _make(name, env, 4, **hparams).policy.parameters()]
    )
    assert not torch.equal(rank0["params"], start)
    assert torch.equal(rank0["params"], rank1["params"])


def test_each_rank_counts_the_steps_of_all_ranks(two_ranks):
    # ppo: 2 ranks x 4 slots x 8 steps per update
    assert two_ranks[0]["ppo"]["first"] == 2 * 4 * SMALL["n_steps"]


@pytest.mark.parametrize("case", ROLLOUT_CASES, ids=lambda c: c[0])
def test_two_ranks_of_8_slots_play_the_first_rollout_of_one_process_with_16(two_ranks, case):
    name, env, hparams = case
    single = _rollout(_make(name, env, 16, **hparams))
    for rank in range(2):
        ranked = two_ranks[rank][f"rollout/{name}"]
        assert ranked["valid"].any()
        for key, value in single.items():
            mine = value[: ranked[key].shape[0], rank * 8 : (rank + 1) * 8]
            if key == "log_probs":  # float: a forward over 8 rows instead of 16
                np.testing.assert_allclose(ranked[key], mine, rtol=1e-5, atol=1e-6)
            else:
                np.testing.assert_array_equal(ranked[key], mine, err_msg=f"rank {rank} {key}")
    if name == "rloo":  # the ranks played distinct examples
        ids = [two_ranks[r][f"rollout/{name}"]["context/input_ids"][0] for r in range(2)]
        assert not any((a == b).all() for a in ids[0] for b in ids[1])


# ----- the command line ---------------------------------------------------------------------

HPARAMS = {"n_envs": 2, "n_steps": 8, "batch_size": 16, "n_epochs": 1}
RUN = [
    "TextClassification-v0", "--agent", "ppo", "--policy", "tiny", "--device", "cpu",
    "--env-kwargs", json.dumps({"max_tokens": 16}), "--hparams", json.dumps(HPARAMS),
    "--eval-freq", "0", "--no-progress",
]  # fmt: skip


def _train(out: Path, *extra: str, timesteps: int, launcher: list[str] | None = None):
    command = launcher or [sys.executable, "-m", "textgym.cli"]
    argv = [*command, "train", *RUN, "--timesteps", str(timesteps), "--out", str(out), *extra]
    log = open(out.with_name(out.name + f".log{time.monotonic_ns()}"), "w")  # noqa: SIM115
    return subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT), Path(log.name)


def _lock_is_free(out: Path) -> bool:
    with open(out / ".lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


def _rows(out: Path) -> list[dict]:
    import csv

    with open(out / "progress.csv") as f:
        return list(csv.DictReader(f))


def test_torchrun_trains_one_run_directory_written_by_rank_0(tmp_path):
    out = tmp_path / "run"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    torchrun += ["--nproc-per-node", "2", "-m", "textgym.cli"]
    proc, log = _train(out, timesteps=96, launcher=torchrun)
    assert proc.wait(timeout=600) == 0, log.read_text()[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2
    assert summary["total_env_steps"] == 96  # 3 updates of 2 ranks x 2 slots x 8 steps
    # one writer: one log, one row per update, no second rank's files
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith("events.")) == [
        ".lock", "checkpoint", "model", "progress.csv", "summary.json"
    ]  # fmt: skip
    assert len(list(out.glob("events.out.tfevents.*"))) == 1
    assert [int(r["time/total_timesteps"]) for r in _rows(out)] == [32, 64, 96]
    config = json.loads((out / "checkpoint" / "config.json").read_text())
    assert config["world_size"] == 2 and len(config["training_state"]["ranks"]) == 2
    assert "resuming" not in log.read_text() and log.read_text().count("test split") == 1


def test_a_resume_on_another_number_of_processes_is_refused(tmp_path, capsys):
    (tmp_path / "checkpoint").mkdir()
    config = {"format": "textgym-agent/1", "algorithm": "ppo", "env_id": RUN[0], "world_size": 2}
    (tmp_path / "checkpoint" / "config.json").write_text(json.dumps(config))
    argv = ["train", *RUN, "--timesteps", "64", "--out", str(tmp_path), "--resume", "--nproc", "1"]
    assert cli.main(argv) == 2
    assert "was trained with --nproc 2, not 1" in capsys.readouterr().err


def test_a_killed_two_rank_run_resumes_to_the_right_step_count(tmp_path):
    out = tmp_path / "run"
    timesteps = 320  # 10 updates of 32 steps; a checkpoint every 64
    proc, log = _train(out, "--nproc", "2", "--checkpoint-freq", "64", timesteps=timesteps)
    deadline = time.monotonic() + 600
    config = out / "checkpoint" / "config.json"
    while not (config.exists() and json.loads(config.read_text())["num_timesteps"] >= 64):
        assert proc.poll() is None, f"the run ended before the kill:\n{log.read_text()[-3000:]}"
        assert time.monotonic() < deadline, "timed out waiting for a checkpoint"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)  # the launcher: its ranks die with it
    proc.wait()
    while not _lock_is_free(out):  # rank 0 held the lock until it died
        assert time.monotonic() < deadline, "a rank outlived the killed launcher"
        time.sleep(0.05)
    killed_at = json.loads(config.read_text())["num_timesteps"]
    assert not (out / "summary.json").exists() and killed_at < timesteps

    # --resume without --nproc: the run's 2 processes
    proc, log = _train(out, "--resume", timesteps=timesteps)
    assert proc.wait(timeout=600) == 0, log.read_text()[-3000:]
    assert f"resuming ppo from {out / 'checkpoint'} at {killed_at} steps" in log.read_text()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["total_env_steps"] == timesteps and summary["world_size"] == 2
    steps = [int(r["time/total_timesteps"]) for r in _rows(out)]
    assert steps == list(range(32, timesteps + 1, 32))  # redone steps replaced, none lost


def test_rank_argv_passes_every_train_option_on(tmp_path):
    from textgym.agents.cli import _rank_argv

    argv = [
        "train", "TextNER-v0", "--agent", "rloo", "--policy", "tiny", "--timesteps", "77",
        "--seed", "3", "--out", str(tmp_path), "--device", "cpu", "--env-kwargs", '{"a": 1}',
        "--hparams", '{"n_steps": 4}', "--n-envs", "6", "--eval-freq", "9",
        "--checkpoint-freq", "11", "--resume", "--no-progress", "--nproc", "3",
    ]  # fmt: skip
    parser = cli.build_parser("train")
    args = parser.parse_args(argv)
    raw = {"--env-kwargs": args.env_kwargs, "--hparams": args.hparams}
    assert vars(parser.parse_args(_rank_argv(args, raw, 3))) == vars(args)


def test_nproc_is_checked_before_anything_starts(tmp_path, capsys, monkeypatch):
    argv = ["train", *RUN, "--timesteps", "8", "--out", str(tmp_path), "--nproc"]
    assert cli.main([*argv, "0"]) == 2
    assert "--nproc must be >= 1, got 0" in capsys.readouterr().err
    monkeypatch.setenv("WORLD_SIZE", "3")
    assert cli.main([*argv, "2"]) == 2
    assert "--nproc 2 but the launcher started WORLD_SIZE=3" in capsys.readouterr().err


# ----- the gradient all-reduce ---------------------------------------------------------------


def _flat_mean(params: list[torch.nn.Parameter], weight: float) -> list[torch.Tensor | None]:
    """The reference: the whole gradient (zeros for a parameter without one) times
    ``weight`` and flags of which parameters have one, in one flat all-reduce, divided by
    the summed weights; None where no rank had a gradient."""
    import torch.distributed as dist

    parts = [
        p.grad.reshape(-1).float() * weight if p.grad is not None else torch.zeros(p.numel())
        for p in params
    ]
    has = torch.tensor([p.grad is not None for p in params], dtype=torch.float32)
    flat = torch.cat([*parts, has, torch.tensor([float(weight)])])
    dist.all_reduce(flat)
    total, seen = flat[-1], flat[-1 - len(params) : -1]
    out, offset = [], 0
    for p, flag in zip(params, seen.tolist(), strict=True):
        out.append((flat[offset : offset + p.numel()] / total).view_as(p) if flag else None)
        offset += p.numel()
    return out


class _Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.table = torch.nn.Embedding(16384, 64)  # an embedding table: rows sent sparsely
        self.table_rank0 = torch.nn.Embedding(16384, 64)  # one only rank 0 uses
        self.linear = torch.nn.Linear(64, 300)
        self.only_rank0 = torch.nn.Parameter(torch.ones(7))
        self.unused = torch.nn.Parameter(torch.ones(3))


def _grads_worker(rank: int, world: int, port: int, out_dir: str) -> None:
    import torch.distributed as dist
    from textgym.agents.common.distributed import Distributed

    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world
    )
    try:
        results = {}
        for bucket_bytes in (Distributed.bucket_bytes, 4096):
            torch.manual_seed(0)
            net = _Net()
            ids = torch.tensor([1, 2, 3, 3] if rank == 0 else [3, 100, 16383])
            loss = net.linear(net.table(ids)).square().sum() * (rank + 1)
            if rank == 0:
                loss = loss + net.only_rank0.sum() + net.table_rank0(ids[:2]).sum()
            loss.backward()
            weight = 3 if rank == 0 else 5
            expected = _flat_mean(list(net.parameters()), weight)
            group = Distributed()
            group.bucket_bytes = bucket_bytes
            group.all_reduce_grads(net.parameters(), weight)
            for (name, p), want in zip(net.named_parameters(), expected, strict=True):
                key = f"{bucket_bytes}/{name}"
                assert (p.grad is None) == (want is None), key
                if want is not None:
                    results[key] = torch.stack([p.grad.reshape(-1), want.reshape(-1)])
        torch.save(results, Path(out_dir) / f"grads{rank}.pt")
    finally:
        dist.destroy_process_group()


def test_the_gradient_all_reduce_is_the_weighted_mean_of_the_flat_gradients(tmp_path):
    mp.spawn(_grads_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"grads{r}.pt", weights_only=True) for r in range(2)]
    assert ranks[0].keys() == ranks[1].keys()
    for key, pair in ranks[0].items():
        got, want = pair
        assert torch.equal(got, want), key  # exactly the flat all-reduce
        assert torch.equal(got, ranks[1][key][0]), key  # the same on both ranks
    # the parameter only rank 0 used: its gradient (1 per element) weighted 3 of 3 + 5
    only = ranks[0][f"{4096}/only_rank0"][0]
    assert torch.allclose(only, torch.full_like(only, 3 / 8))
    # embedding rows: used by one rank, by both, by none
    table = ranks[0][f"{4096}/table.weight"][0].view(16384, 64)
    assert table[[1, 2, 3, 100, 16383]].abs().sum(1).gt(0).all()
    assert table[[0, 4, 99, 16382]].eq(0).all()
    table = ranks[1][f"{4096}/table_rank0.weight"][0].view(16384, 64)  # rank 1: had none
    assert torch.equal(table[[1, 2]], torch.full((2, 64), 3 / 8)) and table[3:].eq(0).all()
    names = {k.split("/", 1)[1] for k in ranks[0]}
    # not `unused`: no rank gave it a gradient
    assert names == {
        "table.weight",
        "table_rank0.weight",
        "linear.weight",
        "linear.bias",
        "only_rank0",
    }
