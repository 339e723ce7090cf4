"""textgym: NLP tasks as Gymnasium reinforcement-learning environments.

Importing the package registers ``TextNER-v0``, ``TextClassification-v0`` and
``TextSummarization-v0`` (``gymnasium.make("textgym:TextNER-v0")`` imports it for you).
"""

from textgym.errors import DataError, TextgymError
from textgym.evaluation import EvaluationResult, evaluate
from textgym.registration import ENV_IDS, register_envs

__version__ = "0.1.0"

register_envs()


__all__ = [
    "ENV_IDS",
    "DataError",
    "EvaluationResult",
    "TextgymError",
    "evaluate",
    "register_envs",
    "__version__",
]
