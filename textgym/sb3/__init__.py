"""stable-baselines3 integration: a text-encoder features extractor and a native VecEnv adapter.

Needs the ``sb3`` extra (``pip install textgym[sb3]``: stable-baselines3 and sb3-contrib)::

    import gymnasium as gym
    import textgym
    from stable_baselines3 import PPO
    from textgym.sb3 import TextEncoderExtractor, make_sb3_vec_env

    env = make_sb3_vec_env("TextClassification-v0", n_envs=16)
    model = PPO("MultiInputPolicy", env, policy_kwargs=dict(
        features_extractor_class=TextEncoderExtractor,
        features_extractor_kwargs=dict(encoder="tiny")))
    model.learn(20_000)
    print(textgym.evaluate(model, "TextClassification-v0", split="test").metrics["accuracy"])
"""

try:
    import stable_baselines3  # noqa: F401
except ImportError as err:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "textgym.sb3 needs stable-baselines3, which is not installed: "
        "pip install textgym[sb3]  (installs stable-baselines3 and sb3-contrib)"
    ) from err

from textgym.sb3.extractor import TextEncoderExtractor, TinyEncoder, build_encoder
from textgym.sb3.vec_env import TextgymVecEnv, make_sb3_vec_env

__all__ = [
    "TextEncoderExtractor",
    "TextgymVecEnv",
    "TinyEncoder",
    "build_encoder",
    "make_sb3_vec_env",
]
