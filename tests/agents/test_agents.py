"""Each algorithm on each env with the tiny encoder: learn, save/load, determinism, CLI."""

import json
import subprocess

import gymnasium as gym
import numpy as np
import pytest
import torch
from lm_fixtures import save_tiny_gpt2
from textgym.agents import ALGORITHMS, PPO, REINFORCE, TRPO
from textgym.agents.common.optim import flat_grad
from torch.nn.attention import SDPBackend, sdpa_kernel

import textgym  # noqa: F401
from textgym.errors import TextgymError

SMALL_ENVS = {
    "TextNER-v0": {"max_tokens": 32},
    "TextClassification-v0": {"max_tokens": 32},
    "TextSummarization-v0": {"max_source_tokens": 32, "max_summary_tokens": 4},
}
SMALL = dict(n_envs=4, n_steps=16, batch_size=32, learning_rate=1e-3)
TRPO_SMALL = dict(cg_max_steps=3, n_critic_updates=1, line_search_max_iter=3)


def small_agent(cls, env_id, seed=0, **extra):
    hparams = SMALL | (TRPO_SMALL if cls is TRPO else {}) | extra
    return cls(
        env_id, policy="tiny", seed=seed, device="cpu", env_kwargs=SMALL_ENVS[env_id], **hparams
    )


@pytest.mark.parametrize("env_id", list(SMALL_ENVS))
@pytest.mark.parametrize("cls", [PPO, REINFORCE, TRPO], ids=lambda c: c.name)
def test_short_learn_logs_sb3_keys(cls, env_id):
    model = small_agent(cls, env_id)
    model.learn(128, progress_bar=False)
    assert model.num_timesteps == 128 and model.num_updates == 2
    row = model.logger.rows[-1]
    for key in ("train/policy_loss", "train/value_loss", "train/entropy", "time/fps"):
        assert np.isfinite(row[key]), key
    assert model.num_episodes > 0 and "rollout/ep_rew_mean" in model.logger.rows[-1]


def test_rollout_encodes_each_context_once_per_rollout():
    model = small_agent(PPO, "TextNER-v0", n_steps=64)
    calls = []
    encode = model.policy.encode
    model.policy.encode = lambda ctx: calls.append(len(ctx["input_ids"])) or encode(ctx)
    model.collect_rollouts()
    steps = model.buffer.n_steps * model.buffer.num_envs
    assert model.buffer.num_contexts > model.env.num_envs  # episodes ended and began
    # one encoder row per context (plus the slots renewed by the very last step), far
    # fewer than one per step
    assert model.buffer.num_contexts <= sum(calls) <= model.buffer.num_contexts + 4
    assert sum(calls) < steps / 4


def test_without_context_cache_every_step_is_encoded():
    model = small_agent(PPO, "TextNER-v0", context_cache=False, n_epochs=1)
    calls = []
    encode = model.policy.encode
    model.policy.encode = lambda ctx: calls.append(len(ctx["input_ids"])) or encode(ctx)
    model.collect_rollouts()
    steps = model.buffer.n_steps * model.buffer.num_envs
    assert model.buffer.num_contexts == steps
    rollout_rows = sum(calls)
    assert steps <= rollout_rows <= steps + model.env.num_envs
    model.train()
    assert sum(calls) - rollout_rows == steps  # the update encodes once per step too


@pytest.mark.parametrize("cls", [PPO, REINFORCE, TRPO], ids=lambda c: c.name)
def test_frozen_encoder_encodes_each_document_once_and_trains_the_heads(cls):
    model = small_agent(cls, "TextClassification-v0", freeze_encoder=True)
    encoder_before = [p.detach().clone() for p in model.policy.encoder.parameters()]
    heads_before = [p.detach().clone() for p in model.policy.trunk.parameters()]
    memo = model.policy.encode
    calls = []
    encode = memo._encode
    memo._encode = lambda ctx: calls.append(len(ctx["input_ids"])) or encode(ctx)
    model.learn(256, progress_bar=False)
    # each distinct document once (a document drawn twice in one batch may be encoded twice)
    assert len(memo.memo) <= sum(calls) <= len(memo.memo) + 4
    for a, b in zip(encoder_before, model.policy.encoder.parameters(), strict=True):
        assert torch.equal(a, b)
    assert any(
        not torch.equal(a, b)
        for a, b in zip(heads_before, model.policy.trunk.parameters(), strict=True)
    )


def test_frozen_embeddings_keep_the_token_table_and_train_the_rest():
    model = small_agent(PPO, "TextNER-v0", freeze_embeddings=True)
    table = model.policy.encoder.get_input_embeddings().weight
    before = {n: p.detach().clone() for n, p in model.policy.encoder.named_parameters()}
    model.learn(128, progress_bar=False)
    after = dict(model.policy.encoder.named_parameters())
    assert table.grad is None and not table.requires_grad
    changed = {n for n, p in before.items() if not torch.equal(p, after[n])}
    assert changed and all("word_embeddings" not in n for n in changed)


@pytest.mark.parametrize("cls", [PPO, REINFORCE, TRPO], ids=lambda c: c.name)
def test_loglik_objective_gives_the_gradients_of_the_observed_rewards_likelihood(cls):
    model = small_agent(
        cls, "TextNER-v0", gamma=0.0, reward_objective="loglik", normalize_advantage=False
    )
    model.collect_rollouts()
    buf = model.buffer
    p = np.exp(buf.log_probs.astype(np.float64))
    # the gradient of log pi(a) where a scored, of log(1 - pi(a)) where it did not
    expected = np.where(buf.rewards > 0, 1.0, -p / np.maximum(1 - p, 0.05))
    np.testing.assert_allclose(buf.advantages, expected, rtol=1e-5)
    assert (buf.rewards == 1).any() and (buf.rewards == 0).any()
    model.train()  # and the update runs on it


def test_reward_objectives_refuse_discounting_graded_rewards_and_unknown_names():
    with pytest.raises(TextgymError, match="gamma=0.*gamma=0.99"):
        small_agent(PPO, "TextNER-v0", reward_objective="loglik").collect_rollouts()
    model = small_agent(PPO, "TextSummarization-v0", gamma=0.0, reward_objective="loglik")
    with pytest.raises(TextgymError, match="0 or 1.*a reward of"):
        while True:  # until a summary ends with a ROUGE reward that is neither 0 nor 1
            model.collect_rollouts()
    with pytest.raises(TextgymError, match="reward_objective must be one of.*'ce'"):
        small_agent(PPO, "TextNER-v0", reward_objective="ce")


def test_off_path_weight_scales_steps_after_a_wrong_action_within_each_episode():
    hp = dict(gamma=0.0, gae_lambda=0.0, n_steps=64)
    model = small_agent(PPO, "TextNER-v0", off_path_weight=0.25, **hp)
    model.collect_rollouts()
    buf = model.buffer
    plain = small_agent(PPO, "TextNER-v0", **hp)
    plain.collect_rollouts()
    np.testing.assert_array_equal(plain.buffer.actions, buf.actions)  # the same rollout
    # a step is on the path after a reward of 1, at an episode's first step, and in the
    # rollout's first row (whose previous reward it does not see)
    done = buf.terminated | buf.truncated
    on = np.ones_like(done)
    for t in range(1, len(on)):
        on[t] = (buf.rewards[t - 1] > 0) | done[t - 1]
    np.testing.assert_allclose(
        buf.advantages, np.where(on, plain.buffer.advantages, 0.25 * plain.buffer.advantages)
    )
    # scaled steps, and new episodes after an episode whose last tag was wrong
    assert (~on).any() and (done[:-1] & (buf.rewards[:-1] == 0)).any()


def test_same_seed_gives_identical_losses_on_cpu():
    rows = []
    for _ in range(2):
        model = small_agent(PPO, "TextNER-v0", seed=3)
        model.learn(128, progress_bar=False)
        rows.append(
            [{k: v for k, v in r.items() if k.startswith("train/")} for r in model.logger.rows]
        )
    assert rows[0] == rows[1]
    other = small_agent(PPO, "TextNER-v0", seed=4)
    other.learn(128, progress_bar=False)
    assert [
        {k: v for k, v in r.items() if k.startswith("train/")} for r in other.logger.rows
    ] != rows[0]


@pytest.mark.parametrize("env_id", list(SMALL_ENVS))
def test_save_load_gives_identical_deterministic_predictions(env_id, tmp_path):
    model = small_agent(PPO, env_id)
    model.learn(64, progress_bar=False)
    model.save(tmp_path / "m")
    loaded = PPO.load(tmp_path / "m", device="cpu")
    env = gym.make_vec(env_id, num_envs=4, **SMALL_ENVS[env_id])
    obs, _ = env.reset(seed=1)
    for _ in range(3):
        a, _ = model.predict(obs, deterministic=True)
        b, _ = loaded.predict(obs, deterministic=True)
        np.testing.assert_array_equal(a, b)
        obs, *_ = env.step(a)
    single, _ = loaded.predict({k: v[0] for k, v in obs.items()})
    assert np.ndim(single) == 0
    assert not list(tmp_path.glob("m/*.pt")) and not list(tmp_path.glob("m/*.pkl"))


@pytest.mark.parametrize("cls", [PPO, REINFORCE, TRPO], ids=lambda c: c.name)
def test_causal_lm_policy_learns_saves_and_loads(cls, tmp_path):
    """A causal LM name/path gives the KV-cached LM policy (a random tiny GPT-2 here,
    over the env's vocabulary: the real gpt2 needs its tokenizer and the network)."""
    env_id = "TextSummarization-v0"
    vocab = gym.make(env_id, **SMALL_ENVS[env_id]).unwrapped.vocab_size
    save_tiny_gpt2(tmp_path / "lm", vocab, eos_token_id=102)
    hparams = SMALL | (TRPO_SMALL if cls is TRPO else {})
    model = cls(
        env_id,
        policy=str(tmp_path / "lm"),
        seed=0,
        device="cpu",
        env_kwargs=SMALL_ENVS[env_id],
        **hparams,
    )
    assert type(model.policy).__name__ == "CausalLMPolicy"
    with pytest.raises(textgym.errors.TextgymError, match="freeze_encoder=False"):
        cls(env_id, policy=str(tmp_path / "lm"), env_kwargs=SMALL_ENVS[env_id], freeze_encoder=True)
    model.learn(64, progress_bar=False)
    assert np.isfinite(model.logger.rows[-1]["train/policy_loss"])
    model.save(tmp_path / "m")
    loaded = cls.load(tmp_path / "m", device="cpu")
    obs, _ = gym.make_vec(env_id, num_envs=4, **SMALL_ENVS[env_id]).reset(seed=1)
    np.testing.assert_array_equal(
        model.predict(obs, deterministic=True)[0], loaded.predict(obs, deterministic=True)[0]
    )


def test_load_refuses_a_pickle(tmp_path):
    model = small_agent(PPO, "TextClassification-v0")
    model.save(tmp_path / "m")
    torch.save(model.policy.state_dict(), tmp_path / "m" / "model.safetensors")  # a pickle
    with pytest.raises(textgym.errors.TextgymError, match="safetensors"):
        PPO.load(tmp_path / "m", device="cpu")


def test_unknown_hyperparameter_and_vocab_mismatch_fail_clearly():
    with pytest.raises(TypeError, match="clip_rnage"):
        small_agent(PPO, "TextNER-v0", clip_rnage=0.1)
    from textgym.agents.common.encoders import load_encoder, minilm_path

    with pytest.raises(textgym.errors.TextgymError, match="vocabulary"):
        load_encoder(minilm_path(), vocab_size=1000)


def test_resume_continues_to_the_requested_step_count(tmp_path):
    model = small_agent(PPO, "TextNER-v0")
    model.learn(64, progress_bar=False)
    model.save(tmp_path / "ckpt", training_state=True)
    resumed = PPO.load(tmp_path / "ckpt", device="cpu")
    assert resumed.num_timesteps == 64
    resumed.learn(128 - resumed.num_timesteps, progress_bar=False, reset_num_timesteps=False)
    assert resumed.num_timesteps == 128 and len(resumed.logger.rows) == 2


STEP_ROLLOUTS = {
    PPO: dict(group_size=1, distinct_actions=False, objective="surrogate"),
    REINFORCE: dict(episode_rollouts=False, reward_objective="expected", off_path_weight=1.0),
    TRPO: {},
}


@pytest.mark.parametrize("cls", [PPO, REINFORCE, TRPO], ids=lambda c: c.name)
def test_training_on_after_a_checkpoint_equals_resuming_it(cls, tmp_path):
    """Step rollouts stop mid-episode; a checkpoint cannot hold the episodes in flight,
    so saving one ends them: the run goes on exactly as a resume from it does (weights,
    logged rows), which is what makes a killed ``textgym train`` finish as if unkilled."""
    model = small_agent(cls, "TextNER-v0", **STEP_ROLLOUTS[cls])
    model.learn(64, progress_bar=False)
    assert model._obs is not None  # slots are mid-episode, as a step rollout leaves them
    model.save(tmp_path / "ckpt", training_state=True)
    resumed = cls.load(tmp_path / "ckpt", device="cpu")
    for agent in (model, resumed):
        agent.learn(128, progress_bar=False, reset_num_timesteps=False)
    assert resumed.num_timesteps == model.num_timesteps == 192
    for p, q in zip(model.policy.parameters(), resumed.policy.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)

    def untimed(rows):
        return [{k: v for k, v in r.items() if not k.startswith("time/fps")} for r in rows]

    assert untimed(resumed.logger.rows) == untimed(model.logger.rows)


def test_reinforce_critic_passes_fit_the_value_head_and_resume(tmp_path):
    model = small_agent(REINFORCE, "TextNER-v0", n_critic_updates=3, gamma=0.0, gae_lambda=0.0)
    value = [p.clone() for p in model.policy.value_parameters()]
    model.learn(64, progress_bar=False)
    assert model.critic_optimizer.state  # the extra passes stepped the critic
    assert any(
        not torch.equal(a, b) for a, b in zip(value, model.policy.value_parameters(), strict=True)
    )
    model.save(tmp_path / "ckpt", training_state=True)
    resumed = REINFORCE.load(tmp_path / "ckpt", device="cpu")
    steps = [s["step"] for s in model.critic_optimizer.state.values()]
    assert [s["step"] for s in resumed.critic_optimizer.state.values()] == steps
    resumed.learn(64, progress_bar=False, reset_num_timesteps=False)
    assert resumed.num_timesteps == 128


def test_resume_keeps_the_kl_reference_policy(tmp_path):
    model = small_agent(PPO, "TextSummarization-v0", kl_coef=0.1)
    model.learn(64, progress_bar=False)
    model.save(tmp_path / "ckpt", training_state=True)
    resumed = PPO.load(tmp_path / "ckpt", device="cpu")
    reference = dict(model.reference.state_dict())
    for name, tensor in resumed.reference.state_dict().items():
        assert torch.equal(tensor, reference[name]), name
    policy = resumed.policy.state_dict()
    assert any(not torch.equal(t, policy[n]) for n, t in reference.items())


def test_cli_train_then_eval_in_subprocess(tmp_path):
    out = tmp_path / "run"
    cmd = ["textgym"]
    train = subprocess.run(
        cmd
        + [
            "train",
            "TextClassification-v0",
            "--agent",
            "ppo",
            "--policy",
            "tiny",
            "--timesteps",
            "128",
            "--seed",
            "0",
            "--out",
            str(out),
            "--device",
            "cpu",
            "--env-kwargs",
            json.dumps(SMALL_ENVS["TextClassification-v0"]),
            "--hparams",
            json.dumps(SMALL),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert train.returncode == 0, train.stderr[-2000:]
    assert "accuracy" in train.stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["env_id"] == "TextClassification-v0" and summary["total_env_steps"] == 128
    assert summary["env_kwargs"]["max_tokens"] == 32
    assert summary["hyperparameters"]["n_envs"] == 4 and summary["seed"] == 0
    assert {"textgym", "torch", "transformers"} <= set(summary["versions"])
    assert "accuracy" in summary["test_metrics"] and summary["validation_curve"]
    assert "rollout/ep_rew_mean" in (out / "progress.csv").read_text().splitlines()[0]
    ev = subprocess.run(
        cmd + ["eval", str(out), "--split", "test", "--device", "cpu"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ev.returncode == 0, ev.stderr[-2000:]
    scores = json.loads((out / "eval_test.json").read_text())["metrics"]
    assert scores["accuracy"] == summary["test_metrics"]["accuracy"]


def test_algorithms_registry_lists_all_five():
    assert set(ALGORITHMS) == {"ppo", "reinforce", "trpo", "rloo", "grpo"}


def test_learning_curve_starts_at_the_untrained_policy(capsys):
    model = small_agent(PPO, "TextClassification-v0", eval_freq=64)
    model.learn(128, progress_bar=False)
    steps = [point["timesteps"] for point in model.eval_history]
    assert steps == [0, 64, 128]
    # step 0 scores the weights before any update: the same as a fresh model's evaluation
    fresh = small_agent(PPO, "TextClassification-v0")
    assert model.eval_history[0]["accuracy"] == fresh.evaluate().metrics["accuracy"]
    assert "0 steps (untrained): validation accuracy" in capsys.readouterr().out
    model.learn(64, progress_bar=False, reset_num_timesteps=False)  # continuing: no new step 0
    assert [point["timesteps"] for point in model.eval_history] == [0, 64, 128, 192]


def _full_decoder_layer(policy):
    """The pointer policy's decoder step as the whole nn.TransformerDecoderLayer: a policy
    built on nn.MultiheadAttention, as a third-party one may be."""

    def decode_next(x, n, src, src_mask):
        causal = torch.triu(torch.ones(x.shape[1], x.shape[1], dtype=torch.bool), 1)
        future = torch.arange(x.shape[1])[None] > n[:, None]
        y = policy.decoder(
            x, src, tgt_mask=causal, tgt_key_padding_mask=future, memory_key_padding_mask=~src_mask
        )
        return y[torch.arange(len(n)), n]

    return decode_next


@pytest.mark.parametrize("env_id", [*SMALL_ENVS, "TextSummarization-v0 (nn.MultiheadAttention)"])
def test_trpo_fisher_vector_product_is_the_hessian_of_the_mean_kl(env_id):
    # the reference: differentiate the KL's gradient a second time (summarization's
    # action masks give actions of probability 0; every other step with fisher_subsample)
    model = small_agent(TRPO, env_id.split()[0], fisher_subsample=2, cg_damping=0.1)
    if env_id.startswith("TextSummarization-v0"):
        # an even head count, as MiniLM's decoder has (6)
        model.policy.decoder = torch.nn.TransformerDecoderLayer(
            64, 2, dim_feedforward=128, dropout=0.0, batch_first=True
        ).eval()
    if env_id.endswith("(nn.MultiheadAttention)"):
        # nn.MultiheadAttention takes its fused fast path where no gradient is recorded,
        # which forward AD lacks: TRPO turns the fast path off for its products
        model.policy.decode_next = _full_decoder_layer(model.policy)
    model.collect_rollouts()
    mb = next(iter(model._minibatches(32)))
    params = model.policy.policy_parameters()
    v = torch.randn(sum(p.numel() for p in params), generator=torch.Generator().manual_seed(0))
    dist, _ = model._dist(mb)
    fisher_vector = model._fisher_vector_product(mb, dist, params)
    with sdpa_kernel(SDPBackend.MATH):  # the one attention kernel with a second derivative
        dist, _ = model._dist(mb)
        old = torch.distributions.Categorical(logits=dist.logits.detach()[::2])
        kl = torch.distributions.kl_divergence(
            old, torch.distributions.Categorical(logits=dist.logits[::2])
        ).mean()
        grad_kl = flat_grad(kl, params, create_graph=True)
        expected = flat_grad(grad_kl @ v, params) + 0.1 * v
    torch.testing.assert_close(fisher_vector(v), expected, rtol=1e-4, atol=1e-6)
