"""TextEncoderExtractor: task-aware features from SB3's float observation tensors."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from sb3_contrib import TRPO
from stable_baselines3 import PPO
from stable_baselines3.common.preprocessing import preprocess_obs

import textgym
from textgym.errors import TextgymError
from textgym.sb3 import TextEncoderExtractor, build_encoder, make_sb3_vec_env


def sb3_tensors(obs: dict, space: gym.spaces.Dict) -> dict[str, torch.Tensor]:
    """What SB3 hands a features extractor: float tensors (``preprocess_obs`` of Box)."""
    tensors = {k: torch.as_tensor(np.asarray(v)) for k, v in obs.items()}
    return preprocess_obs(tensors, space)


def batch(env_id: str, kwargs: dict, n: int = 6, steps: int = 0, seed: int = 0):
    envs = gym.make_vec(env_id, num_envs=n, **kwargs)
    obs, _ = envs.reset(seed=seed)
    for _ in range(steps):
        obs, *_ = envs.step(np.zeros(n, np.int64))
    return obs, envs.single_observation_space


@pytest.mark.parametrize("env_id", sorted(textgym.ENV_IDS))
def test_features_shape_and_float_input(env_id, small_kwargs):
    obs, space = batch(env_id, small_kwargs[env_id], steps=1 if env_id == "TextNER-v0" else 0)
    extractor = TextEncoderExtractor(space)
    tensors = sb3_tensors(obs, space)
    assert all(t.dtype == torch.float32 for t in tensors.values())
    features = extractor(tensors)
    assert features.shape == (6, extractor.features_dim)
    assert torch.isfinite(features).all()
    features.sum().backward()
    assert extractor.encoder.tokens.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("env_id", sorted(textgym.ENV_IDS))
def test_padding_columns_do_not_change_features(env_id, small_kwargs):
    """Each row's features are the same alone as in a batch padded to a longer row."""
    obs, space = batch(env_id, small_kwargs[env_id], n=8)
    obs = {k: np.array(v) for k, v in obs.items()}
    if env_id != "TextNER-v0":  # BBC articles fill every column: shorten some rows
        for row, length in enumerate((5, 9, 32, 12, 3, 20, 32, 7)):
            obs["input_ids"][row, length:] = 0
            obs["attention_mask"][row, length:] = 0
    lengths = obs["attention_mask"].sum(1)
    assert lengths.min() < lengths.max()
    extractor = TextEncoderExtractor(space).eval()
    with torch.no_grad():
        together = extractor(sb3_tensors(obs, space))
        for row in range(8):
            alone = extractor(sb3_tensors({k: v[row : row + 1] for k, v in obs.items()}, space))
            torch.testing.assert_close(alone[0], together[row], atol=1e-5, rtol=1e-5)


def test_ner_features_follow_the_word_and_the_previous_tag(small_kwargs):
    obs, space = batch("TextNER-v0", small_kwargs["TextNER-v0"], n=2, steps=2)
    extractor = TextEncoderExtractor(space).eval()
    obs = {k: np.array(v) for k, v in obs.items()}
    assert (obs["word_index"] == 2).all()

    def features(o):
        with torch.no_grad():
            return extractor(sb3_tensors(o, space))

    base = features(obs)
    other_tag = {**obs, "tags": obs["tags"].copy()}
    other_tag["tags"][:, 1] = 3  # the previous word's tag
    assert not torch.allclose(features(other_tag), base)
    other_word = {**obs, "word_index": obs["word_index"] - 1, "tags": obs["tags"].copy()}
    other_word["tags"][:, 1] = len(extractor.tag_embedding.weight) - 1  # untagged again
    assert not torch.allclose(
        features(other_word)[:, : -extractor.tag_embedding.embedding_dim],
        base[:, : -extractor.tag_embedding.embedding_dim],
    )


def test_final_ner_observation_is_encodable():
    """A final observation's word_index may equal the number of word slots (W)."""
    obs, space = batch("TextNER-v0", {"max_tokens": 8}, n=2)
    obs = {k: np.array(v) for k, v in obs.items()}
    obs["word_index"][:] = space["word_index"].high
    features = TextEncoderExtractor(space)(sb3_tensors(obs, space))
    assert torch.isfinite(features).all()


def test_summary_features_see_the_last_tokens(small_kwargs):
    obs, space = batch("TextSummarization-v0", small_kwargs["TextSummarization-v0"], n=2)
    extractor = TextEncoderExtractor(space).eval()
    obs = {k: np.array(v) for k, v in obs.items()}
    obs["summary_ids"][:, 0] = obs["input_ids"][:, 3]
    obs["summary_mask"][:, 0] = 1
    changed = {**obs, "summary_ids": obs["summary_ids"].copy()}
    changed["summary_ids"][:, 0] = obs["input_ids"][:, 4]
    with torch.no_grad():
        assert not torch.allclose(
            extractor(sb3_tensors(obs, space)), extractor(sb3_tensors(changed, space))
        )


def test_rejects_non_text_observations():
    space = gym.spaces.Dict({"x": gym.spaces.Box(0, 1, (3,), np.int32)})
    with pytest.raises(TextgymError, match="input_ids"):
        TextEncoderExtractor(space)


def test_unknown_encoder_is_a_clear_error():
    with pytest.raises(TextgymError, match="cannot load encoder"):
        build_encoder("/no/such/encoder", vocab_size=100, max_len=8)


def test_freeze_encoder(small_kwargs):
    obs, space = batch("TextNER-v0", small_kwargs["TextNER-v0"], n=2, steps=1)
    extractor = TextEncoderExtractor(space, freeze_encoder=True)
    extractor(sb3_tensors(obs, space)).sum().backward()
    assert all(p.grad is None for p in extractor.encoder.parameters())
    assert extractor.tag_embedding.weight.grad is not None


def test_trpo_with_a_frozen_encoder(small_kwargs):
    """TRPO differentiates every policy parameter: a frozen encoder must not break it."""
    env = make_sb3_vec_env("TextClassification-v0", 4, **small_kwargs["TextClassification-v0"])
    model = TRPO(
        "MultiInputPolicy",
        env,
        n_steps=32,
        batch_size=128,
        cg_max_steps=3,
        n_critic_updates=1,
        policy_kwargs=dict(
            features_extractor_class=TextEncoderExtractor,
            features_extractor_kwargs=dict(freeze_encoder=True),
        ),
    )
    before = [p.clone() for p in model.policy.features_extractor.encoder.parameters()]
    model.learn(128)
    after = list(model.policy.features_extractor.encoder.parameters())
    assert all(torch.equal(a, b) for a, b in zip(after, before, strict=True))


@pytest.mark.parametrize("double_backward", [True, False])
def test_trpo_differentiates_through_attention(double_backward, small_kwargs):
    """TRPO's Hessian-vector products need twice-differentiable attention."""
    env = make_sb3_vec_env("TextNER-v0", 4, **small_kwargs["TextNER-v0"])
    model = TRPO(
        "MultiInputPolicy",
        env,
        n_steps=16,
        batch_size=64,
        cg_max_steps=2,
        n_critic_updates=1,
        policy_kwargs=dict(
            features_extractor_class=TextEncoderExtractor,
            features_extractor_kwargs=dict(double_backward=double_backward),
        ),
    )
    if double_backward:
        model.learn(64)
    else:  # the fused kernels have no second derivative
        with pytest.raises(RuntimeError, match="derivative"):
            model.learn(64)


def test_minilm_weights_survive_sb3_orthogonal_init(small_kwargs):
    """SB3's ortho_init re-initialises Linear layers through apply(); MiniLM must keep its own."""
    env = make_sb3_vec_env("TextClassification-v0", 2, **small_kwargs["TextClassification-v0"])
    model = PPO(
        "MultiInputPolicy",
        env,
        n_steps=32,
        batch_size=64,
        policy_kwargs=dict(
            features_extractor_class=TextEncoderExtractor,
            features_extractor_kwargs=dict(encoder="minilm"),
        ),
    )
    fresh = build_encoder("minilm", vocab_size=30522, max_len=32)
    loaded = model.policy.features_extractor.encoder.state_dict()
    for name, weight in fresh.state_dict().items():
        torch.testing.assert_close(loaded[name], weight, msg=name)
    # SB3's own layers were initialised (orthogonal, so not PyTorch's default scale).
    assert model.policy.ortho_init
    dropouts = [
        m.p
        for m in model.policy.features_extractor.encoder.modules()
        if isinstance(m, torch.nn.Dropout)
    ]
    assert dropouts and all(p == 0.0 for p in dropouts)
