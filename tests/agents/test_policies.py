"""Policy shapes and the encode-once path, on synthetic observations shaped as the envs' are."""

import math

import numpy as np
import pytest
import torch
from lm_fixtures import save_tiny_gpt2
from textgym.agents.common.policies import (
    ActorCritic,
    length_buckets,
    make_policy,
    obs_to_tensors,
    policy_from_config,
)

VOCAB, L, T, LABELS = 300, 16, 6, 5


def ner_obs(b, rng):
    ids = rng.integers(5, VOCAB, (b, L))
    n_sub = rng.integers(4, L - 1, b)
    mask = np.arange(L)[None] < n_sub[:, None]
    ids[~mask] = 0
    words = n_sub - 2  # one subword per word between [CLS] and [SEP]
    w = np.arange(L - 2)[None]
    word_index = (rng.integers(0, 100, b) % words)[:, None]
    tags = np.where(w < word_index, rng.integers(0, LABELS, (b, L - 2)), LABELS)
    return {
        "input_ids": ids,
        "attention_mask": mask.astype(np.int32),
        "word_starts": np.where(w < words[:, None], w + 1, 0),
        "word_mask": (w < words[:, None]).astype(np.int32),
        "word_index": word_index,
        "tags": tags,
    }


def summ_obs(b, rng):
    ids = rng.integers(5, VOCAB, (b, L))
    ids[:, 0], ids[:, -1] = 1, 2
    summary = rng.integers(5, VOCAB, (b, T))
    n = rng.integers(0, T, b)
    smask = np.arange(T)[None] < n[:, None]
    return {
        "input_ids": ids,
        "attention_mask": np.ones((b, L), np.int32),
        "summary_ids": np.where(smask, summary, 0),
        "summary_mask": smask.astype(np.int32),
    }


INFO = {"vocab_size": VOCAB, "pad_token_id": 0, "eos_token_id": 2, "max_summary_tokens": T}
CASES = {
    "ner": (ner_obs, LABELS),
    "classification": (
        lambda b, rng: {k: ner_obs(b, rng)[k] for k in ("input_ids", "attention_mask")},
        4,
    ),
    "summarization": (summ_obs, VOCAB),
}


@pytest.fixture(params=[*CASES, "causal_lm"])
def case(request, tmp_path_factory):
    """Each task's policy over the tiny encoder, and the causal-LM summarization policy."""
    torch.manual_seed(0)
    if request.param == "causal_lm":
        path = save_tiny_gpt2(tmp_path_factory.mktemp("lm"), VOCAB, eos_token_id=2)
        return lm_policy(path), summ_obs(7, np.random.default_rng(0))
    make_obs, n_actions = CASES[request.param]
    policy = make_policy("tiny", INFO | {"task": request.param, "n_actions": n_actions})
    return policy.eval(), make_obs(7, np.random.default_rng(0))


def test_forward_shapes(case):
    policy, obs = case
    dist, values = policy(obs_to_tensors(obs, "cpu"))
    assert dist.logits.shape == (7, policy.n_actions)
    assert values.shape == (7,)
    assert torch.isfinite(dist.log_prob(dist.sample())).all()


def test_encoding_each_context_once_gives_the_per_step_result(case):
    policy, obs = case
    t = obs_to_tensors(obs, "cpu")
    # steps 0..6 drawn from 3 contexts: rows 0, 0, 1, 1, 1, 2, 2 share their context keys
    index = torch.tensor([0, 0, 1, 1, 1, 2, 2])
    steps = {k: v.clone() for k, v in t.items()}
    for k in policy.context_keys:
        steps[k] = t[k][index]
    dist, values = policy(steps)
    contexts = {k: t[k][:3] for k in policy.context_keys}
    actions = dist.sample()
    log_prob, entropy, v2, _ = policy.evaluate_actions(contexts, index, steps, actions)
    torch.testing.assert_close(log_prob, dist.log_prob(actions), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(v2, values, atol=1e-5, rtol=1e-5)
    assert entropy.shape == (7,)


def test_length_buckets_partition_the_rows_and_cover_their_lengths():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 120, 60).tolist()
    buckets = length_buckets(lengths)
    rows = sorted(r for bucket, _ in buckets for r in bucket)
    assert rows == list(range(60))
    assert all(max(lengths[r] for r in bucket) == padded for bucket, padded in buckets)
    assert len(buckets) > 1  # lengths 1..120: one padded call would waste most of it
    padded = sum(len(bucket) * size for bucket, size in buckets)
    assert padded < 0.7 * max(lengths) * len(lengths)
    assert length_buckets([9, 9, 10, 9]) == [([0, 1, 2, 3], 10)]  # one call, in order
    assert length_buckets([]) == [([], 1)]


@pytest.mark.parametrize("task", ["ner", "classification", "summarization"])
def test_bucketed_encoding_matches_one_padded_call(task):
    torch.manual_seed(0)
    make_obs, n_actions = CASES[task]
    policy = make_policy("tiny", INFO | {"task": task, "n_actions": n_actions}).eval()
    t = obs_to_tensors(make_obs(7, np.random.default_rng(1)), "cpu")
    # very different lengths, so encode() splits the batch into several calls
    keep = torch.tensor([2, 16, 3, 15, 2, 9, 16])[:, None]
    t["attention_mask"] = (torch.arange(L)[None] < keep).to(t["attention_mask"].dtype)
    contexts = {k: t[k] for k in policy.context_keys}
    assert len(length_buckets(keep[:, 0].tolist(), overhead=0)) > 1
    hidden = policy.encode(contexts)
    for row, n in enumerate(keep[:, 0].tolist()):
        alone = policy.encoder(
            input_ids=t["input_ids"][row : row + 1, :n],
            attention_mask=t["attention_mask"][row : row + 1, :n],
        ).last_hidden_state[0]
        torch.testing.assert_close(hidden[row, :n], alone, atol=1e-5, rtol=1e-5)


def test_config_round_trip_rebuilds_same_function(case):
    policy, obs = case
    clone = policy_from_config(policy.config())
    clone.load_state_dict(policy.state_dict())
    t = obs_to_tensors(obs, "cpu")
    torch.testing.assert_close(clone.eval()(t)[0].logits, policy(t)[0].logits)


def test_pointer_generator_emits_only_source_tokens_and_eos():
    torch.manual_seed(0)
    policy = make_policy("tiny", INFO | {"task": "summarization", "n_actions": VOCAB})
    obs = summ_obs(4, np.random.default_rng(1))
    dist, _ = policy(obs_to_tensors(obs, "cpu"))
    support = dist.probs > 0
    for row in range(4):
        allowed = set(obs["input_ids"][row, 1:-1].tolist()) | {2}
        assert set(torch.nonzero(support[row]).flatten().tolist()) <= allowed
    dist.entropy().sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in policy.parameters() if p.grad is not None)


def test_action_masks_are_respected_and_never_nan():
    logits = torch.tensor([[0.0, 5.0, -math.inf], [0.0, 1.0, 2.0]])
    masks = torch.tensor([[True, False, False], [False, False, False]])
    masks[1, 2] = True
    dist = ActorCritic.distribution(logits, masks)
    assert dist.probs[0].tolist() == [1.0, 0.0, 0.0]
    assert dist.probs[1].tolist() == [0.0, 0.0, 1.0]
    dead = ActorCritic.distribution(torch.tensor([[0.0, -math.inf]]), torch.tensor([[False, True]]))
    assert dead.probs.tolist() == [[0.0, 1.0]]


def test_pointer_copy_features_mark_span_continuations_and_repeats():
    torch.manual_seed(0)
    policy = make_policy("tiny", INFO | {"task": "summarization", "n_actions": VOCAB})
    src = torch.tensor([[1, 7, 8, 9, 7, 5, 2]])
    summary = torch.tensor([[7, 0, 0]])
    feats = policy.copy_features(src, summary, torch.tensor([1]))  # (1, 7, 4)
    # after emitting 7 (at positions 1 and 4): continue at 2 and 5, skip one to 3 and 6
    assert feats[0, :, 0].tolist() == [0, 0, 1, 0, 0, 1, 0]
    assert feats[0, :, 1].tolist() == [0, 0, 0, 1, 0, 0, 1]
    assert feats[0, :, 3].tolist() == [0, 1, 0, 0, 1, 0, 0]  # 7 is already in the summary
    nothing_yet = policy.copy_features(src, summary, torch.tensor([0]))
    assert nothing_yet.sum() == 0


@pytest.mark.parametrize("heads", [1, 2])
def test_pointer_decoder_step_equals_the_full_decoder_layer_at_the_next_position(heads):
    """decode_next computes nn.TransformerDecoderLayer's output at position n alone, without
    projecting the source: the same function, and the same gradients."""
    torch.manual_seed(0)
    policy = make_policy("tiny", INFO | {"task": "summarization", "n_actions": VOCAB})
    h = policy.hidden
    policy.decoder = torch.nn.TransformerDecoderLayer(
        h, heads, dim_feedforward=2 * h, dropout=0.0, batch_first=True
    )
    for p in policy.decoder.parameters():  # biases too: none may be silently dropped
        torch.nn.init.normal_(p, std=0.3)
    b, s = 5, 9
    x = torch.randn(b, T + 1, h)
    src = torch.randn(b, s, h)
    src_mask = torch.arange(s)[None] < torch.tensor([9, 4, 1, 7, 9])[:, None]
    n = torch.tensor([0, 3, T, 1, 5])
    causal = torch.triu(torch.ones(T + 1, T + 1, dtype=torch.bool), 1)
    future = torch.arange(T + 1)[None] > n[:, None]
    full = policy.decoder(
        x, src, tgt_mask=causal, tgt_key_padding_mask=future, memory_key_padding_mask=~src_mask
    )[torch.arange(b), n]
    fast = policy.decode_next(x, n, src, src_mask)
    torch.testing.assert_close(fast, full, atol=1e-5, rtol=1e-4)
    weights = torch.randn(b, h)
    grads = [
        torch.autograd.grad((y * weights).sum(), list(policy.decoder.parameters()))
        for y in (full, fast)
    ]
    for g_full, g_fast in zip(*grads, strict=True):
        torch.testing.assert_close(g_fast, g_full, atol=1e-4, rtol=1e-4)


def test_pointer_generator_starts_as_lead_and_learns_from_zero_without_the_prior():
    torch.manual_seed(0)
    info = INFO | {"task": "summarization", "n_actions": VOCAB}
    policy = make_policy("tiny", info).eval()
    rng = np.random.default_rng(4)
    source = rng.permutation(np.arange(5, VOCAB))[: L - 2]  # distinct tokens
    obs = summ_obs(1, rng)
    obs["input_ids"][0, 1:-1] = source
    obs["summary_ids"][:] = 0
    obs["summary_mask"][:] = 0
    written = []
    for _ in range(T):  # greedy decoding copies the source from its first word on
        dist, _ = policy(obs_to_tensors(obs, "cpu"))
        token = int(dist.probs[0].argmax())
        if token == 2:
            break
        obs["summary_ids"][0, len(written)] = token
        obs["summary_mask"][0, len(written)] = 1
        written.append(token)
    assert len(written) >= 3 and written == source[: len(written)].tolist()
    plain = make_policy("tiny", info | {"lead_prior": False})
    assert plain.copy_weights.bias.abs().sum() == 0 and plain.position_bias.abs().sum() == 0
    assert policy_from_config(plain.config()).lead_prior is False


# ----- causal LM policy ------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    return save_tiny_gpt2(tmp_path_factory.mktemp("tiny_lm"), VOCAB, eos_token_id=2)


def lm_policy(path):
    torch.manual_seed(0)
    return make_policy(path, INFO | {"task": "summarization", "n_actions": VOCAB}, L).eval()


def test_causal_lm_policy_with_cached_source_equals_reading_everything(tiny_lm):
    from textgym.agents.common.policies import CausalLMPolicy

    policy = lm_policy(tiny_lm)
    assert isinstance(policy, CausalLMPolicy)
    obs = summ_obs(5, np.random.default_rng(2))
    obs["attention_mask"][:, 9:] = 0  # ragged sources: padding sits between source and summary
    obs["attention_mask"][0, 5:] = 0
    dist, values = policy(obs_to_tensors(obs, "cpu"))
    assert dist.logits.shape == (5, VOCAB) and values.shape == (5,)
    for row in range(5):
        src = obs["input_ids"][row, : obs["attention_mask"][row].sum()]
        prefix = obs["summary_ids"][row, : obs["summary_mask"][row].sum()]
        ids = torch.as_tensor(np.concatenate([src, [2], prefix]))[None].long()
        full = torch.log_softmax(policy.encoder(input_ids=ids).logits[0, -1], -1)
        torch.testing.assert_close(dist.logits[row], full, atol=1e-5, rtol=1e-5)


def test_causal_lm_policy_caches_the_source_keys_and_values_and_trains_end_to_end(tiny_lm):
    policy = lm_policy(tiny_lm)
    t = obs_to_tensors(summ_obs(3, np.random.default_rng(3)), "cpu")
    contexts = {k: t[k] for k in policy.context_keys}
    # one tensor per context: (C, S', 2 * layers * hidden), keys then values per layer
    assert policy.encode(contexts).shape == (3, L, 2 * 2 * 32)
    dist, values = policy(t)
    (dist.log_prob(dist.sample()).sum() + values.sum()).backward()
    assert policy.encoder.get_input_embeddings().weight.grad is not None


def test_causal_lm_with_a_different_vocabulary_is_refused(tiny_lm):
    from textgym.errors import TextgymError

    with pytest.raises(
        TextgymError, match="vocabulary of 300 tokens but the env's tokenizer has 500"
    ):
        make_policy(tiny_lm, INFO | {"vocab_size": 500, "task": "summarization", "n_actions": 500})


def test_a_model_path_that_does_not_load_fails_clearly(tmp_path):
    from textgym.errors import TextgymError

    with pytest.raises(TextgymError, match="cannot load encoder"):
        make_policy(str(tmp_path / "missing"), INFO | {"task": "summarization", "n_actions": VOCAB})
