"""The environments: one module per task, each with its single and native batched env."""

from textgym.envs.classification import TextClassificationEnv, TextClassificationVectorEnv
from textgym.envs.ner import TextNEREnv, TextNERVectorEnv
from textgym.envs.summarization import TextSummarizationEnv, TextSummarizationVectorEnv

__all__ = [
    "TextClassificationEnv",
    "TextClassificationVectorEnv",
    "TextNEREnv",
    "TextNERVectorEnv",
    "TextSummarizationEnv",
    "TextSummarizationVectorEnv",
]
