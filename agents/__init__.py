"""textgym.agents: REINFORCE, TRPO, PPO, RLOO and GRPO with transformer policies, on the public env interface.

from textgym.agents import PPO
model = PPO("TextNER-v0", policy="minilm", seed=0)
model.learn(20_000)
model.save("runs/ner-ppo")
model = PPO.load("runs/ner-ppo")
"""

from .common.checkpoints import ALGORITHMS
from .common.on_policy import OnPolicyAlgorithm
from .grpo import GRPO, GRPOSettings
from .ppo import PPO, PPOSettings
from .reinforce import REINFORCE, ReinforceSettings
from .rloo import RLOO, RLOOSettings
from .trpo import TRPO, TRPOSettings

__all__ = [
    "ALGORITHMS",
    "GRPO",
    "PPO",
    "REINFORCE",
    "RLOO",
    "TRPO",
    "OnPolicyAlgorithm",
    "GRPOSettings",
    "PPOSettings",
    "RLOOSettings",
    "ReinforceSettings",
    "TRPOSettings",
]
