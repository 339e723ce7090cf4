"""Shared fixtures: where the shared datasets live, and a per-session tokenizer cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(
    os.environ.get(
        "TEXTGYM_SHARED_DATA", Path(__file__).resolve().parents[1].parent / "shared" / "data"
    )
)


def shared_data(*parts: str) -> Path:
    """Path under ../shared/data, skipping the test with a clear reason when absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared dataset not found at {path} (set TEXTGYM_SHARED_DATA to its folder)")
    return path


@pytest.fixture
def shared_data_dir():
    return shared_data
