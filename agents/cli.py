"""``textgym train`` and ``textgym eval``: registered on the textgym CLI by :func:`register`.

A run directory (``--out``) holds:

- ``checkpoint/``: weights, optimiser and RNG state, written atomically during training
  (``--resume`` continues from it);
- ``model/``: the final weights and config (``PPO.load(out / "model")``);
- ``progress.csv`` and TensorBoard event files;
- ``summary.json``: everything needed to reproduce and compare the run. Its
  ``wall_time_s`` is the time spent training (rollouts and updates, over every resumed
  session), without evaluation; ``session_time_s`` is the whole last ``textgym train``
  command, evaluation and loading included.

A directory that holds a run is never overwritten silently: ``--resume`` continues it
(refusing any setting that would make it another experiment; a longer ``--timesteps``
extends it) and ``--overwrite`` starts it again. One process at a time writes a run
directory (``.lock``). Ctrl-C (SIGINT) or SIGTERM during training finishes the current
update, writes a checkpoint and exits with status 130; a second one stops at once.

``--nproc N`` trains with N processes (``agents/common/distributed.py``): gloo on CPU,
nccl and one GPU per process on CUDA, each process playing ``--n-envs`` slots of its
own, gradients averaged. ``textgym train`` starts the processes itself (on CPU each runs
one torch thread unless ``OMP_NUM_THREADS`` is set); ``torchrun --nproc-per-node N -m
textgym.cli train ...`` works too. Rank 0 alone writes the run directory, and
``summary.json`` records the ``world_size``.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import json
import os
import platform
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym

from textgym.corpora.records import SPLIT_ALIASES
from textgym.errors import TextgymError
from textgym.io import lock_dir, remove_atomic_leftovers

from .common import distributed
from .common.checkpoints import ALGORITHMS
from .common.encoders import is_causal_lm
from .common.hyperparams import default_agent, default_hyperparams
from .common.io import atomic_write_json, read_json, resolve_dir
from .common.on_policy import OnPolicyAlgorithm, scalar_metrics


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``train`` and ``eval`` subcommands to the textgym CLI."""
    # Options that define the experiment default to None, so that ``--resume`` can tell
    # the ones given (checked against the run) from the ones left out (taken from it).
    p = subparsers.add_parser("train", help="train an agent on an env and write a run directory")
    p.add_argument("env_id", help="e.g. TextNER-v0")
    p.add_argument(
        "--agent",
        choices=sorted(ALGORITHMS),
        default=None,
        help="default: the env's default_agent in hyperparams.yaml (rloo for TextNER-v0, else ppo)",
    )
    p.add_argument("--policy", default=None, help="minilm (default), tiny, or an HF name/path")
    p.add_argument("--timesteps", type=int, default=20_000, help="env steps to train for")
    p.add_argument("--seed", type=int, default=None, help="default: 0")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--env-kwargs", default=None, help="env kwargs as a JSON object")
    p.add_argument("--hparams", default=None, help="hyperparameters as a JSON object")
    p.add_argument("--n-envs", type=int, default=None, help="vector env slots")
    p.add_argument("--eval-freq", type=int, default=None, help="validation every N env steps")
    p.add_argument("--checkpoint-freq", type=int, default=None, help="checkpoint every N steps")
    p.add_argument("--resume", action="store_true", help="continue from --out/checkpoint")
    p.add_argument(
        "--overwrite", action="store_true", help="replace the run already in --out, if any"
    )
    p.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    p.add_argument(
        "--nproc",
        type=int,
        default=None,
        help="train with N processes (torch.distributed: gloo on CPU, nccl with one GPU each "
        "on CUDA; --n-envs slots each; on CPU one torch thread each unless OMP_NUM_THREADS "
        "is set). Default: 1, or torchrun's WORLD_SIZE",
    )
    p.set_defaults(func=train_command)

    e = subparsers.add_parser("eval", help="evaluate a trained run directory on a split")
    e.add_argument("run_dir")
    e.add_argument("--split", default="test")
    e.add_argument("--device", default="auto")
    e.set_defaults(func=eval_command)


def _versions() -> dict[str, str]:
    import torch
    import transformers

    import textgym

    return {
        "textgym": textgym.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "gymnasium": gym.__version__,
        "python": platform.python_version(),
    }


def _full_env_kwargs(env_id: str, env_kwargs: dict) -> dict:
    """The registered defaults overlaid with the run's kwargs (what the env really used)."""
    return {**(gym.spec(env_id).kwargs or {}), **env_kwargs}


def _print_report(result: Any, split: str) -> None:
    print(f"\n{split} split: {result.num_episodes} examples, mean return {result.mean_return:.4f}")
    print(result.report)


# ----- checking the arguments ----------------------------------------------------------


def _json_object(text: str | None, option: str) -> dict:
    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise TextgymError(f"{option} is not valid JSON ({err}): {text!r}") from None
    if not isinstance(value, dict):
        raise TextgymError(
            f"{option} must be a JSON object such as '{{\"max_tokens\": 64}}', "
            f"got {type(value).__name__} {text!r}"
        )
    return value


def _check_env_id(env_id: str) -> None:
    if env_id in gym.registry:
        return
    known = sorted(gym.registry)
    close = difflib.get_close_matches(env_id, known, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    import textgym

    raise TextgymError(
        f"unknown env id {env_id!r}{hint} (textgym envs: {', '.join(textgym.ENV_IDS)})"
    )


def _check_device(device: str) -> None:
    import torch

    if device == "auto":
        return
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise TextgymError(f"--device {device!r} is not a device; use auto, cpu or cuda") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise TextgymError(
            f"--device {device}: CUDA is not available on this machine (torch "
            f"{torch.__version__}); use --device cpu or auto"
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise TextgymError(
            f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)"
        )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise TextgymError(f"--device {device}: MPS is not available on this machine")


_TYPES = {
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "str": (str,),
    "None": (type(None),),
}


def _check_hparams(cls: type[OnPolicyAlgorithm], hparams: dict) -> None:
    """Unknown names and values of the wrong type, before anything is built."""
    fields = {f.name: f for f in dataclasses.fields(cls.settings_class)}
    unknown = sorted(set(hparams) - set(fields))
    if unknown:
        close = difflib.get_close_matches(unknown[0], fields, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise TextgymError(
            f"--hparams: unknown hyperparameter {unknown[0]!r} for {cls.name}{hint}; "
            f"valid: {', '.join(sorted(fields))}"
        )
    for name, value in hparams.items():
        annotation = str(fields[name].type)
        allowed = tuple(t for part in annotation.split("|") for t in _TYPES.get(part.strip(), ()))
        if not allowed:
            continue
        if isinstance(value, bool) and bool not in allowed:
            allowed = ()
        if not isinstance(value, allowed):
            raise TextgymError(
                f"--hparams: {name} must be {annotation.replace(' | ', ' or ')}, got {value!r}"
            )


def _check_counts(args: argparse.Namespace) -> None:
    for option, value, least in (
        ("--timesteps", args.timesteps, 1),
        ("--n-envs", args.n_envs, 1),
        ("--eval-freq", args.eval_freq, 0),
        ("--checkpoint-freq", args.checkpoint_freq, 1),
        ("--nproc", args.nproc, 1),
    ):
        if value is not None and value < least:
            raise TextgymError(f"{option} must be >= {least}, got {value}")


_PATH_KWARGS = ("data_dir", "tokenizer", "dataset")


def _absolute(path: Any) -> Any:
    if isinstance(path, str) and not os.path.isabs(os.path.expanduser(path)):
        return os.path.abspath(path)
    return path


def _absolute_paths(env_kwargs: dict) -> dict:
    """Relative file paths made absolute, so that ``textgym eval`` works from anywhere.

    ``data_files`` relative to a ``data_dir`` stay as they are (the data_dir is made
    absolute); ``dataset`` and ``tokenizer`` are touched only when they name an existing
    path here (otherwise they are hub names).
    """
    out = dict(env_kwargs)
    for key in _PATH_KWARGS:
        value = out.get(key)
        if isinstance(value, str) and (key == "data_dir" or os.path.exists(value)):
            out[key] = _absolute(value)
    files = out.get("data_files")
    if files is not None and out.get("data_dir") is None:
        if isinstance(files, dict):
            out["data_files"] = {
                k: [_absolute(v) for v in vs] if isinstance(vs, list) else _absolute(vs)
                for k, vs in files.items()
            }
        elif isinstance(files, list):
            out["data_files"] = [_absolute(v) for v in files]
        else:
            out["data_files"] = _absolute(files)
    return out


# ----- the run directory -----------------------------------------------------------------

# What a run leaves in its directory (``--overwrite`` removes exactly these).
_RUN_ENTRIES = ("checkpoint", "model", "summary.json", "progress.csv")
_RUN_PATTERNS = ("events.out.tfevents.*", "eval_*.json", "checkpoint.*", "model.*")


def _run_entries(out: Path) -> list[Path]:
    found = [out / name for name in _RUN_ENTRIES if (out / name).exists()]
    for pattern in _RUN_PATTERNS:
        found += [p for p in sorted(out.glob(pattern)) if p not in found]
    return found


def _prepare_out(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise TextgymError(f"--out {out}: exists and is not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise TextgymError(
            f"--out {out}: cannot create the run directory ({err.strerror or err})"
        ) from None
    if not os.access(out, os.W_OK | os.X_OK):
        raise TextgymError(f"--out {out}: the run directory is not writable")


def _clear_run(out: Path) -> None:
    for path in _run_entries(out):
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


def _refuse_changes(
    args: argparse.Namespace, config: dict, checkpoint: Path, world_size: int = 1
) -> None:
    """``--resume`` with a setting that differs from the run's: name it and stop."""
    hparams = config.get("hyperparameters") or {}
    given: list[tuple[str, Any, Any]] = [("env id", args.env_id, config.get("env_id"))]
    # processes: n_envs and batch_size are per process, so their number is the experiment's
    given.append(("--nproc", world_size, config.get("world_size", 1)))
    if args.agent is not None:
        given.append(("--agent", args.agent, config.get("algorithm")))
    if args.policy is not None:
        given.append(("--policy", args.policy, (config.get("policy") or {}).get("encoder_name")))
    if args.seed is not None:
        given.append(("--seed", args.seed, config.get("seed")))
    if args.env_kwargs is not None:
        env_id = config.get("env_id") or args.env_id
        # a run written before paths were stored absolute: its relative paths, from here
        saved = _full_env_kwargs(env_id, _absolute_paths(config.get("env_kwargs") or {}))
        wanted = _full_env_kwargs(env_id, _absolute_paths(args.env_kwargs))
        for key in sorted(set(saved) | set(wanted)):
            given.append((f"--env-kwargs {key}", wanted.get(key), saved.get(key)))
    for key, value in (args.hparams or {}).items():
        given.append((f"--hparams {key}", value, hparams.get(key)))
    if args.n_envs is not None:
        given.append(("--n-envs", args.n_envs, hparams.get("n_envs")))
    if args.eval_freq is not None:
        given.append(("--eval-freq", args.eval_freq, hparams.get("eval_freq")))
    for option, wanted, saved in given:
        if wanted != saved:
            raise TextgymError(
                f"--resume: {checkpoint} was trained with {option} {saved!r}, not {wanted!r}; "
                "a changed setting would make it another experiment: leave it out to keep "
                "the run's, use another --out, or pass --overwrite to start again"
            )
    done = config.get("num_timesteps", 0)
    # a run's last whole rollout ends past its budget: killed after its last checkpoint and
    # before its summary, it is resumed with that same budget and only finishes
    reached = config.get("target_timesteps") == args.timesteps
    if isinstance(done, int) and args.timesteps < done and not reached:
        raise TextgymError(
            f"--resume: {checkpoint} has already trained {done} steps, more than "
            f"--timesteps {args.timesteps}; give --timesteps >= {done} (a longer run extends it)"
        )


class _GracefulStop:
    """SIGINT/SIGTERM during training: finish the update, then stop (a second one: now)."""

    def __init__(self) -> None:
        self.signal: int | None = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.signal is not None:
            raise KeyboardInterrupt
        self.signal = signum
        print(
            f"\ntextgym: {signal.Signals(signum).name} received: saving a checkpoint after the "
            "current update (send it again to stop without saving)",
            file=sys.stderr,
            flush=True,
        )

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield  # signal handlers can only be set in the main thread
            return
        old = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, handler in old.items():
                signal.signal(s, handler)


def _save(model: OnPolicyAlgorithm, path: Path, checkpoint: Path, training_state: bool) -> None:
    """``model.save``; a failed write (a full disk) removes its partial files and says
    which checkpoint is still good."""
    try:
        model.save(path, training_state=training_state)
    except OSError as err:
        if not model.dist.is_main:  # rank 0 wrote, cleans up and reports
            raise distributed.RankZeroError(str(err)) from None
        shutil.rmtree(path.with_name(path.name + ".tmp"), ignore_errors=True)
        raise _write_error(err, path, checkpoint) from None


def _write_error(err: OSError, path: Path, checkpoint: Path) -> TextgymError:
    where = err.filename or path
    good = resolve_dir(checkpoint)
    try:
        steps = read_json(good / "config.json")["num_timesteps"]
        kept = f"the last good checkpoint, {good} ({steps} steps), is kept"
    except (TextgymError, KeyError, TypeError):
        kept = "there is no earlier checkpoint"
    return TextgymError(
        f"cannot write {where}: {err.strerror or err}; {kept}: free some space, then run "
        "again with --resume"
    )


# ----- the commands ----------------------------------------------------------------------


def train_command(args: argparse.Namespace) -> int:
    import textgym  # noqa: F401  (registers the env ids)

    started = time.perf_counter()
    if args.resume and args.overwrite:
        raise TextgymError("--resume and --overwrite exclude each other: choose one")
    raw = {"--env-kwargs": args.env_kwargs, "--hparams": args.hparams}
    args.env_kwargs = (
        None if args.env_kwargs is None else _json_object(args.env_kwargs, "--env-kwargs")
    )
    args.hparams = None if args.hparams is None else _json_object(args.hparams, "--hparams")
    _check_counts(args)
    _check_env_id(args.env_id)
    _check_device(args.device)
    world = distributed.launched_world_size()
    if world > 1:  # a rank, started by torchrun or by the launch below
        if args.nproc is not None and args.nproc != world:
            raise TextgymError(
                f"--nproc {args.nproc} but the launcher started WORLD_SIZE={world} processes: "
                "leave --nproc out under torchrun"
            )
        return _train_rank(args, started)
    nproc = args.nproc or _resumed_nproc(args)
    if nproc > 1:
        return _launch(args, raw, nproc)
    return _train_rank(args, started)


def _resumed_nproc(args: argparse.Namespace) -> int:
    """``--resume`` without ``--nproc``: the run's number of processes (1 when unknown;
    the rank then reads the checkpoint and reports what is wrong with it)."""
    if not args.resume:
        return 1
    try:
        size = read_json(resolve_dir(Path(args.out) / "checkpoint") / "config.json")["world_size"]
    except (TextgymError, OSError, KeyError, TypeError):
        return 1
    return size if isinstance(size, int) and not isinstance(size, bool) and size > 1 else 1


def _rank_argv(args: argparse.Namespace, raw: dict[str, str | None], nproc: int) -> list[str]:
    """The ``textgym train`` arguments that each launched rank runs with."""
    argv = ["train", args.env_id, "--out", str(args.out), "--timesteps", str(args.timesteps)]
    argv += ["--device", args.device, "--nproc", str(nproc)]
    options = {
        "--agent": args.agent,
        "--policy": args.policy,
        "--seed": args.seed,
        **raw,
        "--n-envs": args.n_envs,
        "--eval-freq": args.eval_freq,
        "--checkpoint-freq": args.checkpoint_freq,
    }
    for option, value in options.items():
        if value is not None:
            argv += [option, str(value)]
    flags = {"--resume": args.resume, "--overwrite": args.overwrite}
    flags["--no-progress"] = args.no_progress
    return argv + [flag for flag, on in flags.items() if on]


def _launch(args: argparse.Namespace, raw: dict[str, str | None], nproc: int) -> int:
    """``--nproc N``: start N ranks of this command on this machine and wait for them."""
    import torch

    cuda = (
        args.device not in ("cpu", "mps") and not args.device.startswith("mps")
    ) and torch.cuda.is_available()
    if args.device.startswith("cuda:"):
        raise TextgymError(
            f"--device {args.device} with --nproc {nproc}: each process uses its own GPU "
            "(cuda:LOCAL_RANK); pass --device cuda"
        )
    if cuda and nproc > torch.cuda.device_count():
        raise TextgymError(
            f"--nproc {nproc}: this machine has {torch.cuda.device_count()} CUDA device(s), "
            "one per process; use fewer processes or --device cpu"
        )
    threads = os.environ.get("OMP_NUM_THREADS")
    how = (
        "nccl, one GPU each"
        if cuda
        else "gloo, one torch thread each; set OMP_NUM_THREADS to change it"
        if threads is None
        else f"gloo, OMP_NUM_THREADS={threads} torch threads each"
    )
    print(f"textgym: training with {nproc} processes ({how})", file=sys.stderr, flush=True)
    command = [sys.executable, "-m", "textgym.cli", *_rank_argv(args, raw, nproc)]
    return distributed.launch(command, nproc, one_thread=not cuda)


def _train_rank(args: argparse.Namespace, started: float) -> int:
    """Train in this process: the only one, or one rank of several."""
    out = Path(args.out)
    with distributed.process_group(args.device) as group, contextlib.ExitStack() as stack:

        def claim() -> str | None:  # rank 0 alone decides about the run directory
            _prepare_out(out)
            stack.enter_context(lock_dir(out))
            for name in ("checkpoint", "model"):  # a killed writer's partial save
                shutil.rmtree(out / f"{name}.tmp", ignore_errors=True)
            remove_atomic_leftovers(out)  # ... and its half-written progress.csv, summary
            return _claim_run(args, out, group.world_size)

        try:
            algorithm = group.main_first(claim)
            return _train_claimed(args, out, started, algorithm, group)
        except distributed.RankZeroError:
            return 2  # rank 0 reports it
        except TextgymError as err:
            if group.is_main:
                raise
            raise TextgymError(f"rank {group.rank}: {err}") from None


def _claim_run(args: argparse.Namespace, out: Path, world_size: int) -> str | None:
    """Check ``--out`` against ``--resume``/``--overwrite``; the algorithm to resume, if any."""
    saved = resolve_dir(out / "checkpoint")
    if args.resume and saved.exists():
        config = read_json(saved / "config.json")
        if not isinstance(config, dict):
            raise TextgymError(f"{saved / 'config.json'}: not a textgym agent checkpoint")
        _refuse_changes(args, config, saved, world_size)
        algorithm = config.get("algorithm")
        if algorithm not in ALGORITHMS:
            raise TextgymError(f"{saved}: corrupt checkpoint: unknown algorithm {algorithm!r}")
        return algorithm
    existing = [p.name for p in _run_entries(out)]
    if existing and args.overwrite:
        _clear_run(out)
    elif existing and not (args.resume and {"summary.json", "model"}.isdisjoint(existing)):
        raise TextgymError(
            f"--out {out} already holds a run ({', '.join(existing)}); pass --resume to "
            "continue it or --overwrite to replace it, or choose another --out"
        )
    elif existing:  # --resume of a run killed before its first checkpoint: start over
        _clear_run(out)
    return None


def _train_claimed(
    args: argparse.Namespace,
    out: Path,
    started: float,
    algorithm: str | None,
    group: distributed.Distributed,
) -> int:
    checkpoint = out / "checkpoint"
    if algorithm is not None:
        model = ALGORITHMS[algorithm].load(checkpoint, device=args.device, log_dir=out)
        if group.is_main:
            saved = resolve_dir(checkpoint)
            print(f"resuming {algorithm} from {saved} at {model.num_timesteps} steps")
    else:
        model = _new_model(args, out)
    _check_splits(model)
    freq = args.checkpoint_freq or max(args.timesteps // 10, 1)
    next_save = [(model.num_timesteps // freq + 1) * freq]
    saved_at = [-1]
    stop = _GracefulStop()

    def save_checkpoint(m: OnPolicyAlgorithm) -> bool:
        # agreed by every rank: a signal reaches the ranks at different updates
        stopping = m.dist.any(stop.signal is not None)
        if m.num_timesteps >= next_save[0] or stopping:
            _save(m, checkpoint, checkpoint, training_state=True)
            next_save[0] = (m.num_timesteps // freq + 1) * freq
            saved_at[0] = m.num_timesteps
        return not stopping

    remaining = args.timesteps - model.num_timesteps
    try:
        if remaining > 0:
            with stop.installed():
                model.learn(
                    remaining,
                    progress_bar=not args.no_progress,
                    callback=save_checkpoint,
                    reset_num_timesteps=False,
                )
                signalled = model.dist.any(stop.signal is not None)
            if signalled:
                if saved_at[0] != model.num_timesteps:  # the signal came after the last check
                    _save(model, checkpoint, checkpoint, training_state=True)
                model.logger.close()
                if group.is_main:
                    name = signal.Signals(stop.signal).name if stop.signal else "a signal"
                    print(
                        f"textgym: stopped by {name} at "
                        f"{model.num_timesteps} steps; checkpoint saved in {checkpoint}; continue "
                        f"with: textgym train {args.env_id} --out {out} --resume",
                        file=sys.stderr,
                    )
                return 130
            _save(model, checkpoint, checkpoint, training_state=True)
        _save(model, out / "model", checkpoint, training_state=False)
    except OSError as err:  # progress.csv or the event files on a full disk
        raise _write_error(err, out, checkpoint) from None
    if not group.is_main:  # rank 0 evaluates and writes the summary
        model.logger.close()
        return 0
    result = model.evaluate("test")
    _print_report(result, "test")
    summary = {
        "env_id": model.env_id,
        "env_kwargs": _full_env_kwargs(model.env_id, model.env_kwargs),
        "agent": model.name,
        "policy": model.policy.encoder_name,
        "hyperparameters": model.hyperparameters(),
        "seed": model.seed,
        # the requested budget: whole rollouts (and whole episodes of group rollouts) end
        # past it by a seed-dependent amount
        "timesteps": args.timesteps,
        "total_env_steps": model.num_timesteps,
        "wall_time_s": model.wall_time,
        "session_time_s": time.perf_counter() - started,
        "device": str(model.device),
        "world_size": group.world_size,
        "versions": _versions(),
        "test_metrics": result.metrics | {"mean_reward": result.mean_return},
        "test_report": result.report,
        "validation_curve": model.eval_history,
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    try:
        atomic_write_json(out / "summary.json", summary)
    except OSError as err:
        raise _write_error(err, out / "summary.json", checkpoint) from None
    model.logger.close()
    print(
        f"trained {model.num_timesteps} steps in {model.wall_time:.1f} s (rollouts and updates, "
        f"without evaluation); this command took {summary['session_time_s']:.1f} s in all"
    )
    print(f"wrote {out / 'summary.json'}")
    return 0


def _check_splits(model: OnPolicyAlgorithm) -> None:
    """The splits evaluation will need exist, before training starts rather than after."""
    corpus = getattr(getattr(model.env, "data", None), "corpus", None)
    if corpus is None:
        return
    needed = {"test": "the final evaluation"}
    if model.settings.eval_freq:
        needed[model.settings.eval_split] = f"evaluation every {model.settings.eval_freq} steps"
    for split, why in needed.items():
        if SPLIT_ALIASES.get(str(split).lower(), split) not in corpus.splits:
            raise TextgymError(
                f"corpus {corpus.name!r} has no {split!r} split, which {why} needs "
                f"(it has {', '.join(corpus.splits)}; a corpus too small to carve one from "
                "train gets none): give that split a file in data_files"
                + (", or pass --eval-freq 0" if split != "test" else "")
            )


def _new_model(args: argparse.Namespace, out: Path) -> OnPolicyAlgorithm:
    agent = args.agent or default_agent(args.env_id)
    policy = args.policy or "minilm"
    cls = ALGORITHMS[agent]
    hparams = default_hyperparams(args.env_id, agent)
    if is_causal_lm(policy):
        # the YAML's frozen encoder is for the default pointer policy; an LM's head is
        # its policy, so freezing it would leave nothing to learn
        hparams.pop("freeze_encoder", None)
    hparams |= args.hparams or {}
    if args.n_envs is not None:
        hparams["n_envs"] = args.n_envs
    if args.eval_freq is not None:
        hparams["eval_freq"] = args.eval_freq
    hparams.setdefault("eval_freq", max(args.timesteps // 5, 1))
    _check_hparams(cls, hparams)
    return cls(
        args.env_id,
        policy=policy,
        seed=0 if args.seed is None else args.seed,
        device=args.device,
        env_kwargs=_absolute_paths(args.env_kwargs or {}),
        log_dir=out,
        **hparams,
    )


def eval_command(args: argparse.Namespace) -> int:
    import textgym  # noqa: F401

    run = Path(args.run_dir)
    path = next(
        (
            p
            for p in (run / "model", run / "checkpoint", run)
            if resolve_dir(p).is_dir() and (resolve_dir(p) / "config.json").exists()
        ),
        None,
    )
    if path is None:
        raise TextgymError(f"{run}: no model/ or checkpoint/ with a config.json (not a run dir?)")
    algorithm = read_json(resolve_dir(path) / "config.json")["algorithm"]
    _check_device(args.device)
    model = ALGORITHMS[algorithm].load(path, device=args.device)
    result = model.evaluate(args.split)
    _print_report(result, args.split)
    atomic_write_json(
        run / f"eval_{args.split}.json",
        {
            "split": args.split,
            "metrics": result.metrics,
            "scalars": scalar_metrics(result),
            "report": result.report,
        },
    )
    return 0
