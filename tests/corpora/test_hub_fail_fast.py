"""Offline, an unknown dataset or tokenizer name fails in moments, not after half a minute
of hub retries (issue 12): offline mode and a missing connection are checked first, and
then only the local Hugging Face cache is read. No test here reaches the network: the
"no connection" case stands the connection check in for one that failed.
"""

from __future__ import annotations

import socket
import time

import pytest

import textgym.hub
from textgym.corpora import clear_cache, load_corpus
from textgym.errors import TextgymError
from textgym.tokenizer import TextTokenizer

pytest.importorskip("datasets")
pytest.importorskip("transformers")

FAST_S = 8.0  # the libraries' retries took 25 s (datasets) and 52 s (transformers)


@pytest.fixture
def no_connection(monkeypatch):
    """No offline variable set, and the hub's host cannot be reached."""
    import datasets
    import huggingface_hub.constants

    for name in (*textgym.hub.OFFLINE_VARIABLES, *textgym.hub.PROXY_VARIABLES, "HF_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", False, raising=False)
    reason = "no connection to huggingface.co:443 (Network is unreachable)"
    monkeypatch.setattr(textgym.hub, "_probe", lambda endpoint: reason)
    clear_cache()
    return reason


def _timed(fn):
    start = time.monotonic()
    with pytest.raises(TextgymError) as err:
        fn()
    return str(err.value), time.monotonic() - start


def test_an_unknown_dataset_without_a_connection_fails_fast(no_connection):
    message, took = _timed(lambda: load_corpus("classification", "nosuchorg/nosuchdataset"))
    assert took < FAST_S, f"took {took:.1f} s"
    assert "unknown dataset 'nosuchorg/nosuchdataset'" in message
    assert f"from the local cache: the hub is out of reach, {no_connection}" in message
    assert 'dataset="csv"' in message  # the local-file alternative
    import datasets

    assert datasets.config.HF_HUB_OFFLINE is False  # offline only for that call


def test_an_unknown_tokenizer_without_a_connection_fails_fast(no_connection):
    import transformers  # noqa: F401  (its import time is not the lookup's)

    message, took = _timed(lambda: TextTokenizer.from_pretrained("nosuchorg/nosuchtok"))
    assert took < FAST_S, f"took {took:.1f} s"
    assert (
        "could not load tokenizer 'nosuchorg/nosuchtok': it is not in the local cache and "
        f"the hub is out of reach, {no_connection}"
    ) in message
    assert "tokenizer=PATH" in message


def test_offline_mode_is_read_from_the_environment(hf_offline):
    import transformers  # noqa: F401

    assert textgym.hub.offline_reason() == "offline mode (HF_HUB_OFFLINE=1)"
    message, took = _timed(lambda: TextTokenizer.from_pretrained("nosuchorg/nosuchtok"))
    assert took < FAST_S and "offline mode (HF_HUB_OFFLINE=1)" in message


def test_a_tokenizer_path_that_does_not_exist_fails_at_once(tmp_path):
    for name in (str(tmp_path / "missing"), "./no/such/tokenizer", "~/no_such_tokenizer"):
        message, took = _timed(lambda n=name: TextTokenizer.from_pretrained(n))
        assert took < 1.0 and f"tokenizer {name!r}: no such directory" in message


def test_the_connection_check_on_loopback():
    """The check itself, against this machine only: a closed port, then a listening one."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    assert textgym.hub._probe(f"http://127.0.0.1:{closed}").startswith(
        f"no connection to 127.0.0.1:{closed} ("
    )
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        assert textgym.hub._probe(f"http://127.0.0.1:{port}") is None
