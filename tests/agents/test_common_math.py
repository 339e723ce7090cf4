"""GAE, conjugate gradient, line search and the rollout buffer (no env, no encoder)."""

import numpy as np
import pytest
import torch
from gymnasium import spaces
from textgym.agents.common.buffers import RolloutBuffer, compact_dtype
from textgym.agents.common.gae import compute_gae
from textgym.agents.common.optim import backtracking_line_search, conjugate_gradient, flat_grad


def col(*xs):
    return np.array(xs, dtype=np.float32)[:, None]


def test_gae_terminated_does_not_bootstrap():
    # gamma = lambda = 0.5, V = 0.5 everywhere; deltas 0.75, 0.75, 1 + 0 - 0.5 = 0.5
    adv, ret = compute_gae(
        col(1, 1, 1), col(0.5, 0.5, 0.5), col(0.5, 0.5, 9.0), col(0, 0, 1), col(0, 0, 0), 0.5, 0.5
    )
    np.testing.assert_allclose(adv[:, 0], [0.96875, 0.875, 0.5])
    np.testing.assert_allclose(ret[:, 0], [1.46875, 1.375, 1.0])


def test_gae_truncated_bootstraps_from_final_observation():
    # last delta = 1 + 0.5 * V(final obs)=2 - 0.5 = 1.5
    adv, _ = compute_gae(
        col(1, 1, 1), col(0.5, 0.5, 0.5), col(0.5, 0.5, 2.0), col(0, 0, 0), col(0, 0, 1), 0.5, 0.5
    )
    np.testing.assert_allclose(adv[:, 0], [1.03125, 1.125, 1.5])


def test_gae_cuts_recursion_at_episode_end_per_slot():
    rewards = np.array([[1, 1], [1, 1]], np.float32)
    values = np.full((2, 2), 0.5, np.float32)
    next_values = np.full((2, 2), 0.5, np.float32)
    terminated = np.array([[1, 0], [0, 0]], bool)
    adv, _ = compute_gae(rewards, values, next_values, terminated, np.zeros((2, 2)), 0.5, 0.5)
    assert adv[0, 0] == pytest.approx(0.5)  # its episode ended: nothing from row 1
    assert adv[0, 1] == pytest.approx(0.75 + 0.25 * 0.75)


def test_gae_lambda_one_gives_monte_carlo_returns_whatever_the_values():
    values = np.random.default_rng(0).normal(size=(3, 1)).astype(np.float32)
    next_values = np.concatenate([values[1:], [[0.0]]])
    _, ret = compute_gae(col(1, 1, 1), values, next_values, col(0, 0, 1), col(0, 0, 0), 0.5, 1.0)
    np.testing.assert_allclose(ret[:, 0], [1.75, 1.5, 1.0], rtol=1e-6)


def test_conjugate_gradient_solves_spd_system():
    g = torch.Generator().manual_seed(0)
    m = torch.randn(6, 6, generator=g, dtype=torch.float64)
    a = m @ m.T + 6 * torch.eye(6, dtype=torch.float64)
    b = torch.randn(6, generator=g, dtype=torch.float64)
    x = conjugate_gradient(lambda v: a @ v, b, max_iter=20)
    torch.testing.assert_close(x, torch.linalg.solve(a, b))


def test_conjugate_gradient_iterates_give_the_step_scale_without_another_product():
    # TRPO scales its step by x^T A x, which equals x^T b for CG started at 0 (its
    # residual is orthogonal to the iterate), also before CG has converged
    g = torch.Generator().manual_seed(1)
    m = torch.randn(40, 40, generator=g, dtype=torch.float64)
    a = m @ m.T + 0.1 * torch.eye(40, dtype=torch.float64)
    b = torch.randn(40, generator=g, dtype=torch.float64)
    for steps in (1, 2, 3, 5):
        x = conjugate_gradient(lambda v: a @ v, b, max_iter=steps)
        assert not torch.allclose(a @ x, b, atol=1e-3)  # not converged
        torch.testing.assert_close(x @ a @ x, x @ b)


def test_flat_grad_matches_parameter_layout_and_fills_unused_with_zeros():
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    unused = torch.nn.Parameter(torch.ones(3))
    grad = flat_grad((w**2).sum(), [w, unused])
    torch.testing.assert_close(grad, torch.tensor([2.0, 4.0, 0, 0, 0]))


def _line_search(kl_of_step, improvement=1.0):
    theta = torch.nn.Parameter(torch.zeros(2))
    step = torch.tensor([1.0, 0.0])

    def evaluate():
        return improvement, kl_of_step(theta.detach())

    frac = backtracking_line_search([theta], step, evaluate, max_kl=0.1, backtrack_coeff=0.5)
    return frac, theta.detach()


def test_line_search_rejects_step_that_breaks_kl_bound():
    # KL = |theta|^2: the full step has KL 1 > 0.1; 0.25 has 0.0625 <= 0.1
    frac, theta = _line_search(lambda t: float((t**2).sum()))
    assert frac == 0.25
    torch.testing.assert_close(theta, torch.tensor([0.25, 0.0]))


def test_line_search_step_is_old_plus_fraction_times_step_bit_for_bit():
    # the in-place update rounds as the flat `old + fraction * step` did (published
    # TRPO runs stay reproducible); the parameters keep their own storage
    gen = torch.Generator().manual_seed(0)
    params = [torch.nn.Parameter(torch.randn(300, 7, generator=gen)) for _ in range(2)]
    storage = [p.data_ptr() for p in params]
    old = torch.cat([p.detach().reshape(-1) for p in params])
    step = torch.randn(len(old), generator=gen)
    tries = iter([(-1.0, 0.0), (1.0, 1.0), (1.0, 0.0)])  # worse, too far, accepted
    frac = backtracking_line_search(params, step, lambda: next(tries), max_kl=0.1)
    assert frac == 0.8 * 0.8
    assert torch.equal(torch.cat([p.detach().reshape(-1) for p in params]), old + frac * step)
    assert [p.data_ptr() for p in params] == storage


def test_line_search_restores_parameters_when_nothing_passes():
    frac, theta = _line_search(lambda t: 1.0)
    assert frac == 0.0
    torch.testing.assert_close(theta, torch.zeros(2))
    frac, theta = _line_search(lambda t: 0.0, improvement=-1.0)
    assert frac == 0.0
    torch.testing.assert_close(theta, torch.zeros(2))


def test_compact_dtype_picks_smallest_integer_type():
    assert compact_dtype(spaces.Box(0, 1, (3,), np.int32)) == np.uint8
    assert compact_dtype(spaces.Box(0, 30521, (3,), np.int32)) == np.uint16
    assert compact_dtype(spaces.Box(-1, 70000, (3,), np.int32)) == np.int32


def test_buffer_stores_contexts_once_and_batches_whole_contexts():
    space = spaces.Dict(
        {
            "input_ids": spaces.Box(0, 99, (5,), np.int32),
            "word_index": spaces.Box(0, 3, (1,), np.int32),
        }
    )
    buf = RolloutBuffer(space, ["input_ids"], n_steps=4, num_envs=2)
    obs = {"input_ids": np.array([[1] * 5, [2] * 5]), "word_index": np.zeros((2, 1))}
    ctx = buf.add_contexts(obs, np.array([0, 1]))
    for t in range(4):
        if t == 2:  # slot 1 starts a new episode
            obs = {"input_ids": np.array([[1] * 5, [3] * 5]), "word_index": np.zeros((2, 1))}
            ctx = np.array([ctx[0], buf.add_contexts(obs, np.array([1]))[0]])
        obs["word_index"] = np.full((2, 1), t)
        buf.add(obs, ctx, np.array([t, t]), np.zeros(2), np.zeros(2))
        buf.add_outcome(np.ones(2), np.zeros(2), np.zeros(2), np.zeros(2))
    assert buf.full
    buf.finalize()
    assert buf.num_contexts == 3 and buf.contexts["input_ids"].dtype == np.uint8
    assert buf.obs["word_index"].shape == (4, 2, 1)
    batches = list(buf.minibatches(2, np.random.default_rng(0), "cpu"))
    assert sum(len(b.actions) for b in batches) == 8
    for b in batches:
        # each step's context row holds the ids of the slot that produced it
        ids = b.contexts["input_ids"][b.ctx_index, 0]
        assert len(b.contexts["input_ids"]) <= 2
        assert set(ids.tolist()) <= {1, 2, 3}
    whole = buf.get(np.arange(8), "cpu")
    assert whole.contexts["input_ids"][whole.ctx_index, 0].tolist() == [1, 2, 1, 2, 1, 3, 1, 3]


def test_categorical_kl_is_finite_over_masked_actions_and_matches_torch_elsewhere():
    from textgym.agents.ppo import categorical_kl
    from torch.distributions import Categorical, kl_divergence

    logits_p, logits_q = torch.randn(3, 5), torch.randn(3, 5)
    p, q = Categorical(logits=logits_p), Categorical(logits=logits_q)
    torch.testing.assert_close(categorical_kl(p, q), kl_divergence(p, q))
    mask = torch.tensor([True, True, False, True, False])
    pm = Categorical(logits=logits_p.masked_fill(~mask, -torch.inf).requires_grad_())
    qm = Categorical(logits=logits_q.masked_fill(~mask, -torch.inf))
    kl = categorical_kl(pm, qm)
    assert torch.isfinite(kl).all() and (kl >= 0).all()
    expected = kl_divergence(
        Categorical(logits=logits_p[:, mask]), Categorical(logits=logits_q[:, mask])
    )
    torch.testing.assert_close(kl, expected)


def test_fit_critic_regresses_the_value_head_and_leaves_the_rest():
    from types import SimpleNamespace

    from textgym.agents.common.optim import fit_critic

    class TwoHeads(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.policy = torch.nn.Linear(3, 2)
            self.value = torch.nn.Linear(3, 1)

        def heads(self, hidden, contexts, ctx_index, obs):
            x = hidden[ctx_index]
            return self.policy(x), self.value(x).squeeze(-1)

    torch.manual_seed(0)
    net = TwoHeads()
    hidden = torch.randn(4, 3)
    targets = hidden @ torch.tensor([1.0, -2.0, 0.5]) + 0.3
    mb = SimpleNamespace(contexts={}, ctx_index=torch.arange(4), obs={}, returns=targets)
    before = net.policy.weight.clone()
    opt = torch.optim.Adam(net.value.parameters(), lr=0.05)
    losses = fit_critic(net, opt, [(hidden, mb)], passes=300, max_grad_norm=10.0)
    assert len(losses) == 300 and losses[-1] < 1e-3 * losses[0]
    assert torch.equal(net.policy.weight, before) and net.policy.weight.grad is None
