"""Reliability tests: shared tallies of the bad-input fuzzing and small data fixtures.

Every generated bad file goes through :func:`badfiles.attempt`, which tallies it as
tried / loaded / failed clearly / failed badly. The tallies are printed at the end of the
run (terminal summary) and written to ``<pytest basetemp>/bad_input_counts.json``.
"""

from __future__ import annotations

import json

import pytest
from badfiles import COUNTS


@pytest.fixture(scope="session", autouse=True)
def _write_bad_input_counts(tmp_path_factory):
    yield
    if COUNTS["tried"] or COUNTS["checkpoint/tried"]:
        path = tmp_path_factory.getbasetemp() / "bad_input_counts.json"
        path.write_text(json.dumps(dict(COUNTS), indent=2) + "\n")


def pytest_terminal_summary(terminalreporter):
    if COUNTS["tried"] or COUNTS["checkpoint/tried"]:
        terminalreporter.section("bad input fuzzing")
        for line in summary_lines():
            terminalreporter.write_line(line)


def summary_lines() -> list[str]:
    per_format = sorted(k for k in COUNTS if "/" in k and not k.startswith("checkpoint/"))
    lines = [f"  {fmt}: {COUNTS[fmt]}" for fmt in per_format]
    if COUNTS["tried"]:
        lines.append(
            f"bad inputs: tried={COUNTS['tried']} loaded={COUNTS['loaded']} "
            f"failed_clearly={COUNTS['failed_clearly']} failed_badly={COUNTS['failed_badly']}"
        )
    if COUNTS["checkpoint/tried"]:
        c = {
            k: COUNTS[f"checkpoint/{k}"]
            for k in ("tried", "loaded", "failed_clearly", "failed_badly")
        }
        lines.append(
            f"bad checkpoints: tried={c['tried']} loaded={c['loaded']} "
            f"failed_clearly={c['failed_clearly']} failed_badly={c['failed_badly']}"
        )
    return lines
