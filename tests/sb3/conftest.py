"""Shared settings of the stable-baselines3 tests: small envs, one torch thread."""

from __future__ import annotations

import pytest

pytest.importorskip("stable_baselines3", reason="needs the sb3 extra: pip install textgym[sb3]")
pytest.importorskip("sb3_contrib", reason="needs the sb3 extra: pip install textgym[sb3]")

import torch  # noqa: E402

# Env kwargs that keep every env small: a short rollout costs a fraction of a second.
_SMALL_KWARGS = {
    "TextNER-v0": {"max_tokens": 32},
    "TextClassification-v0": {"max_tokens": 32},
    "TextSummarization-v0": {"max_source_tokens": 32, "max_summary_tokens": 4},
}


@pytest.fixture(autouse=True)
def one_torch_thread():
    """The models here are tiny: intra-op threads only add contention (70x on a busy 2-core box)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def small_kwargs():
    """Env id -> kwargs of a small version of that env."""
    return {env_id: dict(kwargs) for env_id, kwargs in _SMALL_KWARGS.items()}
