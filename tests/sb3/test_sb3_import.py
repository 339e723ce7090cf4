"""textgym.sb3 without stable-baselines3: a clear ImportError naming the extra."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_missing_stable_baselines3_names_the_extra():
    # A None entry in sys.modules makes "import stable_baselines3" raise ImportError.
    code = (
        "import sys; sys.modules['stable_baselines3'] = None\nimport textgym\nimport textgym.sb3\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode != 0
    assert "pip install textgym[sb3]" in proc.stderr


def test_textgym_imports_without_stable_baselines3():
    code = "import sys; sys.modules['stable_baselines3'] = None\nimport textgym\n"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("name", ["TextEncoderExtractor", "TextgymVecEnv", "make_sb3_vec_env"])
def test_public_names(name):
    import textgym.sb3

    assert name in textgym.sb3.__all__ and hasattr(textgym.sb3, name)
