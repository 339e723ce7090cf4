"""Every example script runs end to end offline, with tiny arguments, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

CASES = {
    "sb3_ppo_classification.py": (
        ["--timesteps", "64", "--n-envs", "4", "--n-steps", "16", "--max-tokens", "16"],
        "test accuracy",
    ),
    "sb3_maskable_ppo_summarization.py": (
        ["--timesteps", "64", "--n-envs", "4", "--n-steps", "16"]
        + ["--max-source-tokens", "16", "--max-summary-tokens", "3"],
        "test ROUGE-1",
    ),
    "sb3_trpo_ner.py": (
        ["--timesteps", "128", "--n-envs", "4", "--n-steps", "32", "--max-tokens", "16"],
        "test entity F1",
    ),
    "custom_loop.py": (
        ["--total-timesteps", "128", "--num-envs", "4", "--num-steps", "8", "--max-tokens", "16"],
        "test accuracy",
    ),
    "textgym_ppo_ner.py": (
        ["--policy", "tiny", "--timesteps", "64", "--n-envs", "4", "--max-tokens", "16"],
        "test entity F1",
    ),
    "custom_loop.py NER": (
        ["--env-id", "TextNER-v0", "--gamma", "0", "--total-timesteps", "128"]
        + ["--num-envs", "4", "--num-steps", "8", "--max-tokens", "16"],
        "test entity F1",
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(CASES))
def test_example_runs(case):
    script = EXAMPLES / case.split()[0]
    args, last_line_start = CASES[case]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    last = proc.stdout.strip().splitlines()[-1]
    assert last.startswith(last_line_start), last
    value = float(last.split()[len(last_line_start.split())])
    assert 0.0 <= value <= 1.0
