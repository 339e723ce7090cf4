"""Group rollouts and the group agents (RLOO, GRPO): hand-checked math, encoder calls,
save/load and resume. Learning is checked in test_learning.py."""

from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch
from textgym.agents import GRPO, PPO, REINFORCE, RLOO, TRPO
from textgym.agents.common.group import (
    ExampleSchedule,
    group_normalized,
    group_trials,
    leave_one_out,
    observed_reward_nll,
    returns_to_go,
    sample_group_actions,
    state_weights,
)
from textgym.agents.ppo import clipped_log_ratio
from torch.distributions import Categorical

import textgym  # noqa: F401
from textgym.errors import TextgymError

SMALL_ENVS = {
    "TextNER-v0": {"max_tokens": 32},
    "TextClassification-v0": {"max_tokens": 32},
    "TextSummarization-v0": {"max_source_tokens": 32, "max_summary_tokens": 4},
}


def group_agent(cls, env_id, seed=0, **extra):
    hparams = dict(n_envs=8, group_size=4, batch_size=64, learning_rate=1e-3) | extra
    return cls(
        env_id, policy="tiny", seed=seed, device="cpu", env_kwargs=SMALL_ENVS[env_id], **hparams
    )


# ----- math, against hand-computed values ---------------------------------------------------


def test_leave_one_out_compares_each_sample_with_the_others_at_the_same_step():
    # one step, two groups of 3; the second group's last member had already finished
    scores = np.array([[1.0, 0.0, 0.0, 3.0, 1.0, 9.0]])
    valid = np.array([[True, True, True, True, True, False]])
    adv = leave_one_out(scores, valid, 3)
    np.testing.assert_allclose(adv, [[1.0, -0.5, -0.5, 2.0, -2.0, 0.0]])


def test_leave_one_out_gives_zero_to_a_member_alone_in_its_group():
    adv = leave_one_out(np.array([[5.0, 7.0]]), np.array([[True, False]]), 2)
    np.testing.assert_array_equal(adv, [[0.0, 0.0]])


def test_group_normalized_standardises_within_each_group():
    scores = np.array([[1.0, 0.0, 0.0, 0.0, 2.0, 2.0, 2.0, 2.0]])
    adv = group_normalized(scores, np.ones_like(scores, bool), 4)
    std = np.sqrt(0.75 * 0.25)  # population std of (1, 0, 0, 0)
    np.testing.assert_allclose(
        adv[0, :4], [0.75 / std, -0.25 / std, -0.25 / std, -0.25 / std], 1e-5
    )
    np.testing.assert_array_equal(adv[0, 4:], 0.0)  # equal scores: no signal


def test_returns_to_go_stop_at_each_slots_episode_end():
    rewards = np.array([[1.0, 1.0], [2.0, 0.0], [4.0, 0.0]])
    valid = np.array([[True, True], [True, False], [True, False]])
    np.testing.assert_allclose(
        returns_to_go(rewards, valid, 0.5), [[3.0, 1.0], [4.0, 0.0], [4.0, 0.0]]
    )


def test_group_trials_count_each_tried_action_once():
    actions = np.array([[2, 2, 5, 1]])  # one group of 4: member 1 repeats member 0
    rewards = np.array([[0.0, 0.0, 1.0, 0.0]])
    tried, scored, use = group_trials(actions, rewards, np.ones((1, 4), bool), 4)
    assert tried.shape == (1, 4, 4)
    np.testing.assert_array_equal(tried[0, 3], [2, 2, 5, 1])
    np.testing.assert_array_equal(scored[0, 0], [0, 0, 1, 0])
    np.testing.assert_array_equal(use[0, 1], [True, False, True, True])


def test_observed_reward_nll_by_hand():
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2], [0.5, 0.3, 0.2]]))
    tried = torch.tensor([[0, 1], [0, 1]])
    scored = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    use = torch.ones(2, 2, dtype=torch.bool)
    nll = observed_reward_nll(logits, tried, scored, use)
    # found: -log pi(1); none scored: -log(1 - pi(0) - pi(1)) = -log pi(2)
    torch.testing.assert_close(nll, -torch.log(torch.tensor([0.3, 0.2])))


def test_observed_reward_nll_has_finite_gradients_where_nothing_scored():
    logits = torch.zeros(1, 4, requires_grad=True)
    nll = observed_reward_nll(
        logits, torch.tensor([[0, 1]]), torch.zeros(1, 2), torch.tensor([[True, False]])
    )
    nll.sum().backward()
    assert torch.isfinite(logits.grad).all()
    # the tried action loses mass, the untried ones gain it
    assert logits.grad[0, 0] > 0 and (logits.grad[0, 1:] < 0).all()


def test_state_weights_count_the_right_path_once_and_scale_the_rest():
    # one group of 3 over 3 steps: member 1 scores at step 0, member 2 at step 1; member 2's
    # episode ends after step 1
    rewards = np.array([[0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    valid = np.array([[True, True, True], [True, True, True], [True, True, False]])
    w = state_weights(rewards, valid, 3, 0.25)
    np.testing.assert_allclose(
        w,
        [
            # the shared first state weighs what a later step does: 1 (the right path)
            # plus 0.25 for each other member, shared by the 3
            [0.5, 0.5, 0.5],
            [0.25, 1.0, 0.25],  # member 1 holds the right previous action
            [0.25, 0.25, 0.0],  # only member 2 was right at step 1, and it ended
        ],
    )
    # a member alone at the first step (the others parked) counts fully
    w = state_weights(np.zeros((1, 2)), np.array([[True, False]]), 2, 0.0)
    np.testing.assert_array_equal(w, [[1.0, 0.0]])
    # off_path_weight 0: the first state counts once; 1: every member alike, as later
    np.testing.assert_allclose(state_weights(rewards, valid, 3, 0.0)[0], [1 / 3] * 3)
    np.testing.assert_array_equal(state_weights(rewards, valid, 3, 1.0), valid.astype(float))


def test_loglik_with_off_path_weight_0_is_cross_entropy_on_the_right_path():
    # a group that tries every tag finds the right one at every word: with
    # off_path_weight=0 the update is the teacher-forced cross-entropy step
    n_tags = gym.make("TextNER-v0", **SMALL_ENVS["TextNER-v0"]).action_space.n
    model = group_agent(
        RLOO,
        "TextNER-v0",
        objective="loglik",
        distinct_actions=True,
        off_path_weight=0.0,
        group_size=n_tags,
        n_envs=2 * n_tags,
    )
    model.collect_rollouts()
    model._compute_advantages()
    buf = model.buffer
    w = buf.extras["weight"]
    # every word after the first has exactly one member on the path, in every group
    per_group = w.reshape(w.shape[0], -1, n_tags)
    lengths = buf.valid.reshape(buf.valid.shape[0], -1, n_tags).any(-1)
    np.testing.assert_allclose(per_group.sum(-1)[lengths], 1.0, rtol=1e-6)
    on_path = (w[1:] == 1.0) & buf.valid[1:]
    np.testing.assert_array_equal(on_path, (buf.rewards[:-1] > 0) & buf.valid[1:])


def test_distinct_sampling_gives_each_member_of_a_group_another_action():
    probs = torch.tensor([[0.97, 0.01, 0.01, 0.01]]).repeat(8, 1)  # 2 groups of 4
    actions = sample_group_actions(probs, 4, torch.Generator().manual_seed(0), distinct=True)
    for group in actions.view(2, 4):
        assert sorted(group.tolist()) == [0, 1, 2, 3]
    # fewer actions than members: the extra members sample from their own distribution
    actions = sample_group_actions(
        torch.tensor([[0.5, 0.5]]).repeat(3, 1), 3, torch.Generator().manual_seed(0), True
    )
    assert set(actions[:2].tolist()) == {0, 1}


def test_example_schedule_covers_the_split_before_repeating():
    schedule = ExampleSchedule(10)
    rng = np.random.default_rng(0)
    first = schedule.draw(6, rng)
    second = schedule.draw(4, rng)
    assert sorted(np.concatenate([first, second]).tolist()) == list(range(10))


# ----- group rollouts on the real envs ---------------------------------------------------------


@pytest.mark.parametrize("env_id", list(SMALL_ENVS))
def test_group_rollout_plays_one_example_per_group_and_one_episode_per_slot(env_id):
    model = group_agent(GRPO, env_id, distinct_actions=env_id != "TextSummarization-v0")
    model.collect_rollouts()
    buf = model.buffer
    assert buf.num_contexts <= 2  # one context per group, merged by content
    ctx = buf.ctx_ids[0].reshape(2, 4)
    assert (ctx == ctx[:, :1]).all()
    # each slot's valid steps are one episode, ended (terminated or truncated) at its last
    done = (buf.terminated | buf.truncated) & buf.valid
    np.testing.assert_array_equal(done.sum(0), 1)
    last = buf.valid.sum(0) - 1
    assert done[last, np.arange(8)].all()
    assert model.num_timesteps == int(buf.valid.sum())


def test_distinct_actions_differ_within_each_group_at_every_step():
    model = group_agent(RLOO, "TextNER-v0", distinct_actions=True, objective="loglik")
    model.collect_rollouts()
    buf = model.buffer
    actions = buf.actions[: buf.pos].reshape(buf.pos, 2, 4)
    valid = buf.valid[: buf.pos].reshape(buf.pos, 2, 4)
    for t in range(buf.pos):
        for g in range(2):
            played = actions[t, g][valid[t, g]]
            assert len(set(played.tolist())) == len(played)


def count_encoder_rows(model):
    rows = []
    encode = model.policy.encode
    model.policy.encode = lambda ctx: rows.append(len(ctx["input_ids"])) or encode(ctx)
    return rows


@pytest.mark.parametrize("cls", [GRPO, PPO], ids=lambda c: c.name)
def test_identical_contexts_are_encoded_once_per_group_in_rollout_and_update(cls):
    """G = 4 slots per sentence: one encoder row per group in the rollout, and one per
    unique sentence in each update minibatch (one minibatch holds the whole rollout)."""
    model = group_agent(
        cls, "TextNER-v0", n_envs=16, batch_size=10_000, n_epochs=1, single_pass=False
    )
    rows = count_encoder_rows(model)
    model.collect_rollouts()
    assert rows == [4]  # 16 slots, 4 groups: one encoder call of 4 rows
    model.train()
    assert sum(rows[1:]) == model.buffer.num_contexts <= 4


# Agents whose update can be one gradient step at the rollout's weights, with settings
# (episode rollouts; PPO and GRPO: one epoch, one minibatch) where single_pass applies.
SINGLE_PASS = {
    "rloo": (RLOO, {"objective": "loglik", "distinct_actions": True}),
    "grpo": (GRPO, {"distinct_actions": True, "batch_size": 10_000}),
    "ppo": (PPO, {"group_size": 1, "episode_rollouts": True, "n_epochs": 1, "batch_size": 10_000}),
    "reinforce": (REINFORCE, {"group_size": 1, "episode_rollouts": True}),
}


@pytest.mark.parametrize("name", list(SINGLE_PASS))
def test_single_pass_reuses_the_rollout_forward(name):
    """The update is the rollout's own forward pass: no encoder call in train()."""
    cls, extra = SINGLE_PASS[name]
    model = group_agent(cls, "TextNER-v0", **extra)
    rows = count_encoder_rows(model)
    model.collect_rollouts()
    assert rows == [model.env.num_envs // model.settings.group_size]
    before = [p.detach().clone() for p in model.policy.encoder.parameters()]
    model.train()
    assert len(rows) == 1
    assert any(
        not torch.equal(a, b)
        for a, b in zip(before, model.policy.encoder.parameters(), strict=True)
    )


@pytest.mark.parametrize("name", list(SINGLE_PASS))
def test_single_pass_and_minibatch_updates_agree(name):
    cls, extra = SINGLE_PASS[name]
    a = group_agent(cls, "TextNER-v0", seed=5, **extra)
    b = group_agent(cls, "TextNER-v0", seed=5, single_pass=False, **extra)
    for model in (a, b):
        model.collect_rollouts()
        model.train()
    # the same gradient (to float32 rounding; Adam's step divides it by its own size, so
    # the weights of near-zero gradients can differ by more)
    pairs = zip(a.policy.parameters(), b.policy.parameters(), strict=True)
    grads = [(p.grad, q.grad) for p, q in pairs]
    assert any(p is not None for p, _ in grads)
    for p, q in grads:
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-7)


def test_ppo_re_encodes_a_rollout_of_several_minibatches():
    """Later minibatches are evaluated at the weights the earlier ones changed: the
    rollout's forward pass serves PPO only where the rollout is one minibatch."""
    extra = {"group_size": 1, "episode_rollouts": True, "n_epochs": 1, "batch_size": 8}
    model = group_agent(PPO, "TextNER-v0", **extra)
    assert model.rollout_grad
    rows = count_encoder_rows(model)
    model.collect_rollouts()
    model.train()
    assert len(rows) - 1 == -(-int(model.buffer.valid.sum()) // 8) > 1
    assert model.rollout_encoding is None  # the kept graph is dropped, not held


@pytest.mark.parametrize(
    "cls, extra",
    [(PPO, {"n_epochs": 2}), (REINFORCE, {"n_critic_updates": 1}), (TRPO, {})],
    ids=["ppo-2-epochs", "reinforce-critic-fits", "trpo"],
)
def test_updates_of_several_steps_keep_no_rollout_graph(cls, extra):
    model = group_agent(cls, "TextNER-v0", group_size=1, episode_rollouts=True, **extra)
    assert not model.rollout_grad
    model.collect_rollouts()
    assert model.rollout_encoding is None


def test_loglik_objective_refuses_rewards_other_than_0_and_1():
    model = RLOO(
        "TextSummarization-v0",
        policy="tiny",
        device="cpu",
        env_kwargs=SMALL_ENVS["TextSummarization-v0"],
        n_envs=4,
        group_size=2,
        objective="loglik",
    )
    with pytest.raises(textgym.errors.TextgymError, match="objective='scaled'"):
        for _ in range(5):  # until some summary scores a ROUGE strictly between 0 and 1
            model.collect_rollouts()
            model.train()


def test_group_size_must_divide_n_envs():
    with pytest.raises(textgym.errors.TextgymError, match="group_size=3 must divide n_envs=8"):
        group_agent(GRPO, "TextNER-v0", group_size=3)


# ----- the agents' public surface -----------------------------------------------------------


@pytest.mark.parametrize("env_id", list(SMALL_ENVS))
@pytest.mark.parametrize("cls", [RLOO, GRPO], ids=lambda c: c.name)
def test_group_agents_learn_save_and_load_identically(cls, env_id, tmp_path):
    extra = {"objective": "scaled", "baseline": "episode"} if cls is RLOO else {}
    model = group_agent(cls, env_id, **extra)
    model.learn(100, progress_bar=False)
    row = model.logger.rows[-1]
    assert np.isfinite(row["train/policy_loss"]) and np.isfinite(row["train/entropy"])
    model.save(tmp_path / "m")
    loaded = cls.load(tmp_path / "m", device="cpu")
    env = gym.make_vec(env_id, num_envs=4, **SMALL_ENVS[env_id])
    obs, _ = env.reset(seed=1)
    for _ in range(3):
        a, _ = model.predict(obs)
        b, _ = loaded.predict(obs)
        np.testing.assert_array_equal(a, b)
        obs, *_ = env.step(a)


@pytest.mark.parametrize("cls", [RLOO, GRPO], ids=lambda c: c.name)
def test_group_agents_resume_the_step_count_and_the_example_order(cls, tmp_path):
    model = group_agent(cls, "TextNER-v0")
    model.learn(100, progress_bar=False)
    model.save(tmp_path / "ckpt", training_state=True)
    steps = model.num_timesteps
    resumed = cls.load(tmp_path / "ckpt", device="cpu")
    assert resumed.num_timesteps == steps
    assert resumed.schedule.state() == model.schedule.state()
    model.learn(100, progress_bar=False, reset_num_timesteps=False)
    resumed.learn(100, progress_bar=False, reset_num_timesteps=False)
    assert resumed.num_timesteps == model.num_timesteps > steps
    for p, q in zip(model.policy.parameters(), resumed.policy.parameters(), strict=True):
        torch.testing.assert_close(p, q)


@pytest.mark.parametrize(
    "cls, env_id, extra",
    [
        (RLOO, "TextNER-v0", {"objective": "loglik", "distinct_actions": True}),
        (GRPO, "TextSummarization-v0", {"baseline": "episode"}),
    ],
    ids=["rloo-ner", "grpo-summarization"],
)
def test_same_seed_gives_identical_group_training_on_cpu(cls, env_id, extra):
    runs = []
    for _ in range(2):
        model = group_agent(cls, env_id, seed=3, **extra)
        model.learn(150, progress_bar=False)
        logs = [{k: v for k, v in r.items() if k.startswith("train/")} for r in model.logger.rows]
        runs.append((logs, model.policy.state_dict()))
    (logs_a, weights_a), (logs_b, weights_b) = runs
    assert logs_a == logs_b and logs_a[0]
    for key, tensor in weights_a.items():
        assert torch.equal(tensor, weights_b[key]), key


def test_grpo_drops_only_the_probes_negative_advantages():
    model = group_agent(GRPO, "TextNER-v0", distinct_actions=True, gamma=0.0)
    model.collect_rollouts()
    buf = model.buffer
    plain = group_normalized(buf.rewards, buf.valid, 4)
    probe = (np.arange(8) % 4) > 0
    np.testing.assert_allclose(buf.advantages[:, ~probe], plain[:, ~probe], atol=1e-6)
    np.testing.assert_allclose(buf.advantages[:, probe], np.maximum(plain[:, probe], 0), atol=1e-6)
    assert (plain[:, ~probe] < 0).any() or (plain[:, probe] < 0).any()


def test_grpo_off_path_weight_scales_the_advantages_after_a_wrong_action():
    model = group_agent(GRPO, "TextNER-v0", distinct_actions=True, gamma=0.0, off_path_weight=0.25)
    model.collect_rollouts()
    buf = model.buffer
    plain = group_normalized(buf.rewards, buf.valid, 4)
    plain = np.where((np.arange(8) % 4 > 0)[None, :], np.maximum(plain, 0.0), plain)
    first_or_right = np.concatenate([np.ones((1, 8), bool), buf.rewards[:-1] > 0])
    expected = np.where(first_or_right, plain, 0.25 * plain)
    np.testing.assert_allclose(buf.advantages, expected, atol=1e-6)
    assert (~first_or_right & buf.valid & (plain != 0)).any()  # something was scaled


def test_grpo_group_objective_gives_each_member_every_action_its_group_tried():
    model = group_agent(
        GRPO, "TextNER-v0", seed=3, distinct_actions=True, gamma=0.0, objective="group"
    )
    model.collect_rollouts()
    buf, x = model.buffer, model.buffer.extras
    t, n, g = x["tried"].shape
    assert (t, n, g) == (buf.n_steps, 8, 4)
    for i in range(n):
        members = slice(i // 4 * 4, i // 4 * 4 + 4)
        use = x["use"][:, i]
        np.testing.assert_array_equal(x["tried"][:, i][use], buf.actions[:, members][use])
        # each tried action carries the advantage of the member that tried it
        np.testing.assert_allclose(
            x["tried_adv"][:, i][use], buf.advantages[:, members][use], atol=1e-6
        )
        # and the rollout policy's log-probability of it in member i's own state
        old = np.take_along_axis(model.rollout_log_probs[:, i], x["tried"][:, i], axis=1)
        np.testing.assert_allclose(x["old_log_prob"][:, i][use], old[use], atol=1e-6)
    assert (x["tried_adv"][x["use"]] > 0).any()


def test_grpo_group_loss_against_hand_computed_values():
    model = group_agent(GRPO, "TextNER-v0", distinct_actions=True, gamma=0.0, objective="group")
    logits = torch.zeros(2, 3, requires_grad=True)  # uniform over 3 actions in both states
    third = float(np.log(1 / 3))
    extras = {
        "tried": torch.tensor([[0, 1, 2, 0], [0, 1, 2, 0]]),
        "use": torch.tensor([[1, 1, 1, 0], [1, 1, 1, 0]]),
        "tried_adv": torch.tensor([[1.5, -0.5, 0.0, 0.0], [1.5, -0.5, 0.0, 0.0]]),
        # state 2: the rollout policy gave action 0 a sixth, so its ratio is 2 (> 1.2)
        "old_log_prob": torch.tensor(
            [[third] * 3 + [0.0], [float(np.log(1 / 6)), third, third, 0]]
        ),
        "weight": torch.tensor([1.0, 1.0]),
    }
    mb = SimpleNamespace(extras=extras)
    loss = model._policy_loss(mb, torch.zeros(2), Categorical(logits=logits))
    # state 1 at ratio 1: 1.5 - 0.5; state 2: action 0 clipped at 1.2 x 1.5, then -0.5
    torch.testing.assert_close(loss, torch.tensor(-((1.5 - 0.5) + (1.2 * 1.5 - 0.5)) / 2))
    loss.backward()
    # state 1: -(1.5 (e_0 - pi) - 0.5 (e_1 - pi)) / 2 with pi = 1/3; state 2: action 0's
    # term is clipped (no gradient), what remains is 0.5 (e_1 - pi) / 2
    torch.testing.assert_close(
        logits.grad,
        torch.tensor([[-1.5 + 1 / 3, 0.5 + 1 / 3, 1 / 3], [-1 / 6, 1 / 3, -1 / 6]]) / 2,
    )


@pytest.mark.parametrize(
    "extra, match",
    [
        ({"objective": "loglik"}, "not 'loglik'"),
        ({"objective": "group", "gamma": 1.0}, "needs baseline='step' and gamma=0"),
        ({"objective": "group", "gamma": 0.0, "baseline": "episode"}, "baseline='episode'"),
        ({"objective": "nope"}, "objective must be one of"),
    ],
)
def test_grpo_refuses_objectives_it_cannot_run(extra, match):
    with pytest.raises(TextgymError, match=match):
        group_agent(GRPO, "TextNER-v0", **extra)


@pytest.mark.parametrize("cls", [RLOO, GRPO], ids=lambda c: c.name)
def test_group_agents_refuse_the_gae_agents_reward_objective(cls):
    # their advantages come from the group: the setting would be silently ignored
    with pytest.raises(TextgymError, match=f"{cls.name} computes its own advantages"):
        group_agent(cls, "TextNER-v0", reward_objective="loglik")


# ----- PPO on the group's log-likelihood ----------------------------------------------------


def test_clipped_log_ratio_stops_the_gradient_past_one_plus_clip():
    log_ratio = torch.tensor([-0.5, 0.0, 0.1, 0.5], requires_grad=True)
    gain = clipped_log_ratio(log_ratio, 0.2)
    torch.testing.assert_close(gain.detach(), torch.tensor([-0.5, 0.0, 0.1, float(np.log(1.2))]))
    gain.sum().backward()
    # log(1.2) = 0.18: the last step's likelihood rose past 1.2x and no longer counts
    torch.testing.assert_close(log_ratio.grad, torch.tensor([1.0, 1.0, 1.0, 0.0]))


@pytest.mark.parametrize("off_path_weight", [0.0, 1.0])
def test_ppo_loglik_first_step_is_rloos_update(off_path_weight):
    # at the rollout's weights nothing is clipped: PPO's first step on the group's
    # log-likelihood has RLOO's gradient, on the same rollout
    common = {"distinct_actions": True, "off_path_weight": off_path_weight, "ent_coef": 0.0}
    rloo = group_agent(RLOO, "TextNER-v0", seed=3, objective="loglik", **common)
    ppo = group_agent(
        PPO, "TextNER-v0", seed=3, objective="loglik", n_epochs=1, batch_size=4096,
        vf_coef=0.0, **common,
    )  # fmt: skip
    for model in (rloo, ppo):
        model.collect_rollouts()
    np.testing.assert_array_equal(rloo.buffer.actions, ppo.buffer.actions)
    for model in (rloo, ppo):
        model._compute_advantages()
        model.train()
    pairs = zip(rloo.policy.policy_parameters(), ppo.policy.policy_parameters(), strict=True)
    for p, q in pairs:
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-7)


def test_ppo_loglik_keeps_the_rollout_likelihood_of_what_each_group_observed():
    model = group_agent(PPO, "TextNER-v0", objective="loglik", distinct_actions=True)
    model.collect_rollouts()
    model._compute_advantages()
    buf, extras = model.buffer, model.buffer.extras
    # the same observations scored by the policy now (the rollout's weights) agree
    mb = buf.get(np.flatnonzero(buf.valid.reshape(-1)), "cpu")
    with torch.no_grad():
        _, _, _, dist = model.policy.evaluate_actions(
            mb.contexts, mb.ctx_index, mb.obs, mb.actions, mb.action_masks
        )
        nll = observed_reward_nll(
            dist.logits, mb.extras["tried"], mb.extras["scored"], mb.extras["use"].bool()
        )
    torch.testing.assert_close(nll, mb.extras["old_nll"], rtol=1e-4, atol=1e-5)
    assert extras["old_nll"][~buf.valid].sum() == 0


def test_trpo_loglik_step_raises_the_observed_likelihood_within_the_trust_region():
    model = group_agent(
        TRPO, "TextNER-v0", objective="loglik", distinct_actions=True, off_path_weight=0.0,
        n_critic_updates=0, batch_size=4096, max_kl=0.01, ent_coef=0.0,
    )  # fmt: skip
    model.collect_rollouts()
    model._compute_advantages()
    buf = model.buffer
    mb = buf.get(np.flatnonzero(buf.valid.reshape(-1)), "cpu")
    x = mb.extras

    def scored() -> tuple[torch.Tensor, torch.distributions.Categorical]:
        with torch.no_grad():
            _, _, _, dist = model.policy.evaluate_actions(
                mb.contexts, mb.ctx_index, mb.obs, mb.actions, mb.action_masks
            )
        nll = observed_reward_nll(dist.logits, x["tried"], x["scored"], x["use"].bool())
        return (x["weight"] * nll).sum() / x["weight"].sum(), dist

    before, old = scored()
    logs = model.train()
    after, new = scored()
    assert logs["train/line_search_success"] == 1.0
    assert after < before
    kl = torch.distributions.kl_divergence(old, new).mean()
    assert 0 < kl <= 0.01 * 1.001
    # one minibatch: the logged KL is the accepted step's (the line search measured it)
    assert logs["train/approx_kl"] == pytest.approx(kl.item(), rel=1e-4)


@pytest.mark.parametrize(
    "cls, extra, message",
    [
        (PPO, {"objective": "loglik", "group_size": 1}, "needs group_size >= 2"),
        (PPO, {"objective": "ce"}, "ppo objective must be one of"),
        (TRPO, {"objective": "loglik", "group_size": 1}, "needs group_size >= 2"),
        (TRPO, {"objective": "ce"}, "trpo objective must be one of"),
        (GRPO, {"objective": "loglik"}, "grpo's objective is the clipped surrogate"),
    ],
    ids=["ppo-without-groups", "ppo-unknown", "trpo-without-groups", "trpo-unknown", "grpo"],
)
def test_ppo_objective_refusals_name_the_setting(cls, extra, message):
    with pytest.raises(TextgymError, match=message):
        group_agent(cls, "TextNER-v0", **extra)
