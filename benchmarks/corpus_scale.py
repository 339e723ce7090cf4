"""Large corpora: load time and memory of a 212 MB CoNLL file, first and from the cache.

Generates the file under ``--workdir`` (a temporary directory by default; never in the
repository): CoNLL-2003 train from ``../shared/data`` repeated, each repetition's words
varied (a suffix per repetition on every word of four letters or more), until it holds
``--megabytes``. Each figure is measured in a child process of its own, with a cache
directory of its own (``TEXTGYM_CACHE_DIR``), peak RSS from ``resource.getrusage``:

1. first load: ``load_corpus("ner", "conll", data_files=...)`` with an empty cache (the
   streamed parse into the record store), time and peak RSS;
2. later load: the same in a new process with the cache present, time and the RSS it adds
   over the process before the load;
3. a second process over the same corpus: two processes load it and read every example;
   the second one's anonymous (private) memory added, against the store's size on disk
   (its pages are the page cache's, shared, not a copy per process);
4. the packaged default: ``gymnasium.make("TextNER-v0")`` with an empty cache (first load
   of wnut16 and its tokenization), time.

``--env`` adds ``gymnasium.make("TextNER-v0", dataset="conll", data_files=...,
max_tokens=128)`` on the file, each in a child process: first load with an empty cache
(parse, tokenization into the array cache), time and peak RSS; from the cache, time and
RSS added; two processes that each make the env and play 2,000 episodes, the private
memory the second adds against the array entry's size on disk.

    nice -n 10 python benchmarks/corpus_scale.py [--env | --env-only]

The last line is the headline.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "conll2003" / "train.txt"

_CHILD = r"""
import json, os, resource, sys, time
mode, path = sys.argv[1], sys.argv[2]

def rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])

def rollup():
    out = {}
    with open("/proc/self/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1])
    return out

if mode.startswith("env"):
    import gymnasium as gym
    import textgym  # noqa: F401
else:
    from textgym.corpora import load_corpus
before_rss, before = rss_kb(), rollup()
t0 = time.perf_counter()
if mode == "env-packaged":
    env = gym.make("TextNER-v0")
    n = env.unwrapped.num_examples
elif mode in ("env-file", "env-share"):
    env = gym.make("TextNER-v0", dataset="conll", data_files={"train": path}, max_tokens=128)
    n = env.unwrapped.num_examples
else:
    corpus = load_corpus("ner", "conll", data_files={"train": path})
    n = sum(len(s) for s in corpus.splits.values())
    corpus.split("train")[0]
seconds = time.perf_counter() - t0
result = {"seconds": seconds, "examples": n,
          "cpu_seconds": sum(resource.getrusage(resource.RUSAGE_SELF)[:2]),
          "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
          "rss_added_mb": (rss_kb() - before_rss) / 1024}
if mode == "env-share":
    env.reset(seed=0)
    for _ in range(2000):
        env.reset()
    after = rollup()
    result["anonymous_added_mb"] = (after["Anonymous"] - before["Anonymous"]) / 1024
    result["rss_file_mb"] = (after["Rss"] - after["Anonymous"]) / 1024
    print(json.dumps(result), flush=True)
    sys.stdin.readline()
elif mode == "share":
    words = 0
    for split in corpus.splits.values():
        for example in split:
            words += len(example.words)
    after = rollup()
    result["words"] = words
    result["anonymous_added_mb"] = (after["Anonymous"] - before["Anonymous"]) / 1024
    result["rss_file_mb"] = (after["Rss"] - after["Anonymous"]) / 1024
    print(json.dumps(result), flush=True)
    sys.stdin.readline()  # hold the mapping while the other process measures
else:
    print(json.dumps(result), flush=True)
"""


def generate(path: Path, megabytes: float) -> None:
    """CoNLL-2003 train repeated with its words varied, up to ``megabytes`` MB."""
    source = DATA.read_text(encoding="utf-8").splitlines()
    target = int(megabytes * 1e6)
    size = 0
    with open(path, "w", encoding="utf-8") as out:
        rep = 0
        while size < target:
            suffix = "" if rep == 0 else f"q{rep}"
            lines = []
            for line in source:
                cols = line.split(" ")
                if len(cols) > 1 and cols[0] != "-DOCSTART-" and len(cols[0]) >= 4:
                    cols[0] += suffix
                lines.append(" ".join(cols))
            text = "\n".join(lines) + "\n\n"
            out.write(text)
            size += len(text.encode("utf-8"))
            rep += 1


def child(mode: str, path: Path, cache: Path) -> dict:
    env = dict(os.environ, TEXTGYM_CACHE_DIR=str(cache), OMP_NUM_THREADS="1")
    env["RAYON_NUM_THREADS"] = "1"  # the tokenizers' thread pool: one core, as the agents
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, mode, str(path)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{mode} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def shared(path: Path, cache: Path, mode: str = "share") -> tuple[dict, dict]:
    """Two processes over one corpus: both load it and read every example (``share``), or
    both make the env on it and play 2,000 episodes (``env-share``)."""
    env = dict(os.environ, TEXTGYM_CACHE_DIR=str(cache), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-c", _CHILD, mode, str(path)]
    first = subprocess.Popen(cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    a = json.loads(first.stdout.readline())
    second = subprocess.Popen(
        cmd, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    b = json.loads(second.stdout.readline())
    for proc in (first, second):
        proc.communicate("\n")
    return a, b


def load_average() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--workdir", type=Path, help="where the file and caches go (default: a temp dir)"
    )
    p.add_argument("--megabytes", type=float, default=212.0, help="size of the generated file")
    p.add_argument("--env", action="store_true", help="also gymnasium.make the env on the file")
    p.add_argument(
        "--env-only", action="store_true", help="only the packaged default and the env figures"
    )
    args = p.parse_args()
    args.env |= args.env_only
    if not DATA.exists():
        raise SystemExit(f"CoNLL-2003 not found at {DATA}")
    with tempfile.TemporaryDirectory(prefix="corpus-scale-") as tmp:
        work = args.workdir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        path = work / "conll_large.txt"
        if not path.exists() or path.stat().st_size < args.megabytes * 1e6:
            generate(path, args.megabytes)
        mb = path.stat().st_size / 1e6
        cache = work / "cache"
        if cache.exists():  # start from a cold cache
            shutil.rmtree(cache)
        print(f"file: {path} ({mb:.0f} MB); load average {load_average()}", flush=True)
        if not args.env_only:
            first = child("corpus", path, cache)
            print(
                f"first load:  {first['seconds']:.1f} s, peak RSS {first['peak_rss_mb'] / 1024:.2f} GB, "
                f"{first['examples']:,} sentences; load average {load_average()}",
                flush=True,
            )
            later = child("corpus", path, cache)
            print(
                f"later load:  {later['seconds']:.2f} s, RSS added {later['rss_added_mb']:.0f} MB "
                f"(peak {later['peak_rss_mb']:.0f} MB); load average {load_average()}",
                flush=True,
            )
            store = sum(f.stat().st_size for f in (cache / "corpora").rglob("*") if f.is_file())
            a, b = shared(path, cache)
            print(
                f"two processes reading every example ({b['words']:,} words): store "
                f"{store / 2**20:.0f} MiB on disk; private memory added: first "
                f"{a['anonymous_added_mb']:.0f} MiB, second {b['anonymous_added_mb']:.0f} MiB; "
                f"file pages mapped (shared) {b['rss_file_mb']:.0f} MiB; load average {load_average()}",
                flush=True,
            )
        packaged_cache = work / "cache-packaged"
        if packaged_cache.exists():  # start from a cold cache
            shutil.rmtree(packaged_cache)
        packaged = child("env-packaged", path, packaged_cache)
        print(
            f"packaged default, gym.make('TextNER-v0') first load: {packaged['seconds']:.1f} s "
            f"({packaged['cpu_seconds']:.1f} s of CPU) "
            f"(peak RSS {packaged['peak_rss_mb']:.0f} MB); load average {load_average()}",
            flush=True,
        )
        if args.env:
            env_cache = work / "cache-env"
            if env_cache.exists():  # start from a cold cache
                shutil.rmtree(env_cache)
            env_first = child("env-file", path, env_cache)
            print(
                f"gym.make('TextNER-v0', dataset='conll', data_files=..., max_tokens=128), first "
                f"load (empty cache): {env_first['seconds']:.1f} s "
                f"({env_first['cpu_seconds']:.1f} s of CPU), peak RSS "
                f"{env_first['peak_rss_mb'] / 1024:.2f} GB, {env_first['examples']:,} train "
                f"sentences; load average {load_average()}",
                flush=True,
            )
            env_later = child("env-file", path, env_cache)
            print(
                f"gym.make on the file, from the cache: {env_later['seconds']:.2f} s "
                f"({env_later['cpu_seconds']:.2f} s of CPU), RSS added "
                f"{env_later['rss_added_mb']:.0f} MB (peak {env_later['peak_rss_mb']:.0f} MB); "
                f"load average {load_average()}",
                flush=True,
            )
            arrays = sum(f.stat().st_size for f in env_cache.glob("ner-*/*") if f.is_file())
            ea, eb = shared(path, env_cache, "env-share")
            print(
                f"two processes each making the env and playing 2,000 episodes: array entry "
                f"{arrays / 2**20:.0f} MiB on disk; private memory added: first "
                f"{ea['anonymous_added_mb']:.0f} MiB, second {eb['anonymous_added_mb']:.0f} MiB; "
                f"file pages mapped (shared) {eb['rss_file_mb']:.0f} MiB; load average "
                f"{load_average()}",
                flush=True,
            )
            print(
                f"corpus_scale env: {mb:.0f} MB CoNLL, TextNER-v0 max_tokens=128: first load "
                f"{env_first['seconds']:.1f} s at peak RSS {env_first['peak_rss_mb'] / 1024:.2f} "
                f"GB; from the cache {env_later['seconds']:.2f} s, +{env_later['rss_added_mb']:.0f}"
                f" MB RSS; a second process adds {eb['anonymous_added_mb']:.0f} MiB private of a "
                f"{arrays / 2**20:.0f} MiB array entry"
            )
            return
        print(
            f"corpus_scale: {mb:.0f} MB CoNLL: first load {first['seconds']:.1f} s at peak RSS "
            f"{first['peak_rss_mb'] / 1024:.2f} GB; from the cache {later['seconds']:.2f} s, "
            f"+{later['rss_added_mb']:.0f} MB RSS; a second process adds "
            f"{b['anonymous_added_mb']:.0f} MiB private of a {store / 2**20:.0f} MiB store"
        )


if __name__ == "__main__":
    main()
