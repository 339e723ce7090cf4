"""Fixtures of the leaderboard tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from lb_helpers import write_summary


@pytest.fixture
def summaries(tmp_path):
    def make(name: str, **changes) -> Path:
        return write_summary(tmp_path / "runs", name, **changes)

    return make
