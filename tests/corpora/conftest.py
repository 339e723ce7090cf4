"""Fixtures for the corpora tests."""

from __future__ import annotations

import pytest


@pytest.fixture
def hf_offline(monkeypatch):
    """Hugging Face offline mode, even when ``datasets`` was imported before the test.

    Both libraries read HF_HUB_OFFLINE once at import, so the module constants are patched
    too; without this a hub lookup with no network retries for about 25 seconds.
    """
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    datasets = pytest.importorskip("datasets")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True, raising=False)
