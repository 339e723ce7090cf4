"""Env throughput: single envs against CartPole-v1, native vector envs against SyncVectorEnv.

    python benchmarks/env_throughput.py [--seconds 1.0] [--sizes 1 64 256 1024] [--repeats 5]

Prints a table of steps/s, then the headline measured ``--repeats`` times: TextNER native
vector env-steps/s at the largest size with ``copy=True`` (the default), next to the same
env with ``obs_dtype="int32"`` (the observation layout before compact dtypes), timed
alternately in the same run. The machine may be shared, so the ratio of the two is the
figure to compare across runs; the load average is printed with every table. Native and
SyncVectorEnv both run Gymnasium's default next-step autoreset.

Targets (2-core CPU): TextNER single >= 0.5x CartPole-v1; native vector >= 30x
SyncVectorEnv at 256 envs; >= 8M env-steps/s at 1024 envs for TextNER with ``copy=True``.

Measured 2026-12-01 23:35 (``--sizes 1024 --repeats 5``, load average 0.8): 11,878,670
env-steps/s median of 5 (best 13,083,200; 9.3M to 13.1M), 2.61x ``obs_dtype="int32"``
(4.0M to 4.5M). The issue's quiet baseline before compact dtypes was 5.0M.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import time

import gymnasium as gym
import numpy as np

import textgym

ENV_IDS = list(textgym.ENV_IDS)


def _load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f}"


def _actions(space_n: int, eos: int | None, shape: tuple[int, ...], rng) -> np.ndarray:
    if eos is not None:  # summaries: mostly words, sometimes EOS, so episodes end
        return np.where(rng.random(shape) < 0.1, eos, rng.integers(1000, 20000, shape))
    return rng.integers(space_n, size=shape)


def single_steps_per_s(env_id: str, seconds: float) -> float:
    env = gym.make(env_id)
    base = env.unwrapped
    eos = base.eos_token_id if getattr(base, "task", "") == "summarization" else None
    rng = np.random.default_rng(0)
    actions = _actions(env.action_space.n, eos, (4096,), rng).tolist()
    env.reset(seed=0)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for a in actions[:256]:
            _, _, terminated, truncated, _ = env.step(a)
            if terminated or truncated:
                env.reset()
        steps += 256
        actions = actions[256:] + actions[:256]
    return steps / (time.perf_counter() - start)


def vector_steps_per_s(
    envs, seconds: float, eos: int | None, max_calls: int | None = None
) -> float:
    """Env-steps/s of ``envs`` on random actions (``eos``: summarization's EOS id, else None)."""
    n = envs.num_envs
    rng = np.random.default_rng(0)
    pool = _actions(envs.single_action_space.n, eos, (64, n), rng)
    envs.reset(seed=0)
    for i in range(min(20, max_calls or 20)):  # warm-up: buffers, caches, page faults
        envs.step(pool[i % 64])
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds and (max_calls is None or calls < max_calls):
        envs.step(pool[calls % 64])
        calls += 1
    return calls * n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 64, 256, 1024])
    parser.add_argument("--repeats", type=int, default=5, help="headline measurements")
    args = parser.parse_args()

    print(f"== single envs through gym.make (steps/s; {_load()})")
    cartpole = single_steps_per_s("CartPole-v1", args.seconds)
    print(f"{'CartPole-v1':<24}{cartpole:>14,.0f}")
    for env_id in ENV_IDS:
        rate = single_steps_per_s(env_id, args.seconds)
        print(f"{env_id:<24}{rate:>14,.0f}  ({rate / cartpole:.2f}x CartPole-v1)")

    print(f"\n== vector envs, next-step autoreset, copy=True (env-steps/s; {_load()})")
    print(f"{'env':<24}{'num_envs':>9}{'native':>14}{'int32 obs':>14}{'sync':>12}{'ratio':>9}")
    for env_id in ENV_IDS:
        for n in args.sizes:
            native = gym.make_vec(env_id, num_envs=n)
            eos = native.eos_token_id if native.task == "summarization" else None
            native_rate = vector_steps_per_s(native, args.seconds, eos)
            native.close()
            wide = gym.make_vec(env_id, num_envs=n, obs_dtype="int32")
            wide_rate = vector_steps_per_s(wide, args.seconds, eos)
            wide.close()
            sync = gym.make_vec(env_id, num_envs=n, vectorization_mode="sync")
            sync_rate = vector_steps_per_s(sync, args.seconds, eos, max_calls=max(3, 2000 // n))
            sync.close()
            print(
                f"{env_id:<24}{n:>9}{native_rate:>14,.0f}{wide_rate:>14,.0f}{sync_rate:>12,.0f}"
                f"{native_rate / sync_rate:>8.1f}x"
            )
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\npeak RSS: {peak_mib:,.0f} MiB")

    n = max(args.sizes)
    print(f"\n== headline: TextNER-v0 native vector env, {n} envs, copy=True ({_load()})")
    compact = gym.make_vec("TextNER-v0", num_envs=n)
    wide = gym.make_vec("TextNER-v0", num_envs=n, obs_dtype="int32")
    rates, wide_rates = [], []
    for i in range(args.repeats):
        rates.append(vector_steps_per_s(compact, args.seconds, None))
        wide_rates.append(vector_steps_per_s(wide, args.seconds, None))
        print(
            f"run {i + 1}: {rates[-1]:>12,.0f} env-steps/s; obs_dtype='int32' {wide_rates[-1]:>12,.0f}"
            f" ({rates[-1] / wide_rates[-1]:.2f}x)"
        )
    ratio = statistics.median(r / w for r, w in zip(rates, wide_rates, strict=True))
    print(f"({_load()})")
    print(
        f"TextNER-v0 native vector env at {n} envs, copy=True: "
        f"{statistics.median(rates):,.0f} env-steps/s median of {args.repeats} "
        f"(best {max(rates):,.0f}), {ratio:.2f}x obs_dtype='int32'"
    )


if __name__ == "__main__":
    main()
