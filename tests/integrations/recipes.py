"""The recipes of docs/integrations.md, read from the page so that the tests run what it says."""

from __future__ import annotations

import re
from pathlib import Path

import textgym

DOC = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"
ENV_IDS = list(textgym.ENV_IDS)
_RECIPE = re.compile(r"<!-- recipe: ([\w-]+) -->\n```python\n(.*?)```", re.S)
_ENV_LINE = 'env_id = "TextNER-v0"\n'


def recipes() -> dict[str, str]:
    """Every recipe of the page by name."""
    return {name: code for name, code in _RECIPE.findall(DOC.read_text())}


def recipe(name: str, env_id: str) -> str:
    """Recipe ``name`` with ``env_id`` in place of the page's ``"TextNER-v0"``."""
    code = recipes()[name]
    assert code.count(_ENV_LINE) == 1, f"recipe {name!r} must set env_id once"
    return code.replace(_ENV_LINE, f"env_id = {env_id!r}\n")


def run_recipe(name: str, env_id: str) -> dict:
    """Run recipe ``name`` on ``env_id`` as a script; returns its globals."""
    namespace: dict = {"__name__": "__recipe__"}
    exec(compile(recipe(name, env_id), f"<docs/integrations.md: {name}>", "exec"), namespace)
    return namespace
