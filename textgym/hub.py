"""Reaching the Hugging Face Hub, or knowing at once that it cannot be reached.

Loading an unknown dataset or tokenizer name through ``datasets`` or ``transformers``
on a machine without network spends 23 to 52 seconds on retries before its error.
:func:`offline_reason` tells in a moment why the hub is out of reach: offline mode
(``HF_HUB_OFFLINE``, ``TRANSFORMERS_OFFLINE``, ``HF_DATASETS_OFFLINE``), or a failed
connection to the hub's host (one attempt of at most :data:`PROBE_TIMEOUT_S` seconds per
process; skipped when a proxy is configured, which only the libraries know how to use).
Callers then read only the local Hugging Face cache (:func:`offline_mode`) and fail fast.
"""

from __future__ import annotations

import contextlib
import functools
import os
import socket
import sys
from collections.abc import Iterator
from urllib.parse import urlparse

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE")
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY")
PROBE_TIMEOUT_S = 3.0


def _truthy(value: str | None) -> bool:
    return (value or "").strip().upper() in ("1", "ON", "YES", "TRUE")


def offline_reason() -> str | None:
    """Why the Hugging Face Hub cannot be reached now, or None when it may be."""
    for name in OFFLINE_VARIABLES:
        if _truthy(os.environ.get(name)):
            return f"offline mode ({name}={os.environ[name]})"
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None and getattr(constants, "HF_HUB_OFFLINE", False):
        return "offline mode (HF_HUB_OFFLINE)"
    if any(os.environ.get(name) for name in PROXY_VARIABLES):
        return None
    endpoint = os.environ.get("HF_ENDPOINT") or "https://huggingface.co"
    return _probe(endpoint)


@functools.cache
def _probe(endpoint: str) -> str | None:
    url = urlparse(endpoint)
    host = url.hostname or "huggingface.co"
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
    except OSError as err:
        return f"no connection to {host}:{port} ({err.strerror or err})"
    return None


@contextlib.contextmanager
def offline_mode() -> Iterator[None]:
    """Make ``huggingface_hub``, ``transformers`` and ``datasets`` read only their local
    cache for the block (they read the offline variables once, at import)."""
    import huggingface_hub.constants as hub_constants

    patches = [(hub_constants, "HF_HUB_OFFLINE")]
    datasets_config = sys.modules.get("datasets.config")
    if datasets_config is not None:
        patches += [(datasets_config, "HF_HUB_OFFLINE"), (datasets_config, "HF_DATASETS_OFFLINE")]
    saved = [(module, name, getattr(module, name, None)) for module, name in patches]
    try:
        for module, name in patches:
            setattr(module, name, True)
        yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)
