"""Bad env use: random seeds, options and action sequences (invalid ones included).

Every env configuration, single and native vector, is driven by hypothesis with episodes
of valid and invalid actions, steps after the end and resets with valid and invalid
options. The contract checked at every step:

- observations lie in the observation space (keys, shapes, the space's signed integer
  dtypes, bounds);
- rewards lie in the documented range of the reward mode; ``terminated`` and
  ``truncated`` are never both true;
- a bad call (invalid action, option, step after the end or before a reset) raises a
  :class:`TextgymError` and leaves the env as it was: a twin env given only the valid
  calls produces exactly the same observations, rewards and flags.
"""

from __future__ import annotations

import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import Error as GymnasiumError
from gymnasium.vector import AutoresetMode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import textgym  # noqa: F401  (registers the env ids)
from textgym.errors import TextgymError

NER = {"max_tokens": 12}
SUMMARY = {"max_source_tokens": 24, "max_summary_tokens": 4}
# (id, kwargs, per-step reward range on the last step, on other steps)
CONFIGS = {
    "ner-token": ("TextNER-v0", {**NER, "reward_mode": "token"}, (0, 1), (0, 1)),
    "ner-f1": ("TextNER-v0", {**NER, "reward_mode": "f1"}, (0, 1), (0, 0)),
    "ner-token+f1": ("TextNER-v0", {**NER, "reward_mode": "token+f1"}, (0, 2), (0, 1)),
    "classification": ("TextClassification-v0", {"max_tokens": 12}, (0, 1), None),
    "summary-final": ("TextSummarization-v0", SUMMARY, (0, 1), (0, 0)),
    "summary-dense-source": (
        "TextSummarization-v0",
        {**SUMMARY, "reward_mode": "dense", "constraint": "source", "rouge": "rouge1"},
        (-1, 1),
        (-1, 1),
    ),
}
EXAMPLES = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_ENVS: dict = {}


def make(name: str, vector: int = 0):
    """Two cached envs of a configuration, in the same state (both reset with seed 0)."""
    key = (name, vector)
    if key not in _ENVS:
        env_id, kwargs, *_ = CONFIGS[name]
        if vector:
            _ENVS[key] = [
                gym.make_vec(
                    env_id, num_envs=vector, autoreset_mode=AutoresetMode.SAME_STEP, **kwargs
                )
                for _ in range(2)
            ]
        else:
            _ENVS[key] = [gym.make(env_id, **kwargs) for _ in range(2)]
    for env in _ENVS[key]:
        env.reset(seed=0)
    return _ENVS[key]


def bad_actions(n: int) -> list:
    """Actions outside Discrete(n), in every form a caller might pass."""
    return [
        -1, n, n + 7, 2**70, np.uint64(2**63), 1.5, np.float32(0.5), float("nan"), None, "1",
        True, np.bool_(False), [0], (0,), np.array([0]), np.array([[0]]), np.array(0.5),
        float("inf"), complex(0, 0), {"action": 0},
    ]  # fmt: skip


BAD_INDEX_KINDS = ["-1", "n", "float", "str", "none", "bool", "array"]


def bad_index(kind: str, n: int):
    return {
        "-1": -1, "n": n, "float": 1.0, "str": "0", "none": None, "bool": True,
        "array": np.array([0]),
    }[kind]  # fmt: skip


def in_range(value: float, bounds: tuple[float, float]) -> bool:
    return bounds[0] - 1e-6 <= value <= bounds[1] + 1e-6


def assert_obs_ok(obs: dict, space: gym.spaces.Dict) -> None:
    assert set(obs) == set(space.spaces)
    for key, sub in space.spaces.items():
        assert np.issubdtype(sub.dtype, np.signedinteger), key
        assert obs[key].dtype == sub.dtype and obs[key].shape == sub.shape, key
    assert obs in space


def assert_same(a, b) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            assert_same(a[k], b[k])
    elif isinstance(a, tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same(x, y)
    else:
        np.testing.assert_array_equal(a, b)


# ----- single envs --------------------------------------------------------------------

episodes = st.lists(
    st.tuples(
        st.one_of(st.none(), st.integers(0, 2**32 - 1)),  # seed
        st.one_of(  # options
            st.none(),
            st.just({}),
            st.integers(0, 10**6).map(lambda i: ("index", i)),
            st.sampled_from(BAD_INDEX_KINDS).map(lambda k: ("bad_index", k)),
        ),
        st.lists(  # steps: a valid action (an index into the allowed ones) or a bad one
            st.one_of(
                st.integers(0, 10**6).map(lambda i: ("valid", i)),
                st.integers(0, 19).map(lambda i: ("bad", i)),
            ),
            max_size=14,
        ),
    ),
    min_size=1,
    max_size=4,
)


def _valid_action(env, choice: int):
    allowed = (
        np.flatnonzero(env.unwrapped.action_masks())
        if env.unwrapped.task == "summarization"
        else np.arange(env.action_space.n)
    )
    action = int(allowed[choice % len(allowed)])
    # the forms of a valid action: int, numpy integer, 0-d integer array
    return [action, np.int64(action), np.int32(action), np.array(action)][choice % 4]


def _expect_error(fn, *args, **kwargs) -> TextgymError:
    """``fn`` raises a TextgymError with a message, and no warning on the way."""
    with warnings.catch_warnings(), pytest.raises(TextgymError) as err:
        warnings.simplefilter("error")
        fn(*args, **kwargs)
    assert str(err.value)
    return err.value


@pytest.mark.parametrize("name", list(CONFIGS))
@EXAMPLES
@given(plan=episodes)
def test_single_env_contract_under_random_and_bad_use(name, plan):
    env, twin = make(name)
    _, _, last_range, step_range = CONFIGS[name]
    task = env.unwrapped.task
    n_examples = env.unwrapped.num_examples
    for seed, option, steps in plan:
        if isinstance(option, tuple) and option[0] == "bad_index":
            _expect_error(env.reset, seed=seed, options={"index": bad_index(option[1], n_examples)})
            option = None  # an env whose reset failed is simply reset again
        if isinstance(option, tuple):
            option = {"index": option[1] % n_examples}
        obs, info = env.reset(seed=seed, options=option)
        twin_obs, twin_info = twin.reset(seed=seed, options=option)
        assert_obs_ok(obs, env.observation_space)
        assert_same(obs, twin_obs)
        assert info["index"] == twin_info["index"] and 0 <= info["index"] < n_examples
        if option and "index" in option:
            assert info["index"] == option["index"]
        done, rewards = False, []
        for kind, value in steps:
            if kind == "bad" or done:
                action = bad_actions(env.action_space.n)[value] if kind == "bad" else 0
                _expect_error(env.step, action)
                continue
            if task == "summarization" and env.unwrapped.constraint == "source" and value % 7 == 0:
                banned = np.flatnonzero(env.unwrapped.action_masks() == 0)
                _expect_error(env.step, int(banned[value % len(banned)]))
            action = _valid_action(env, value)
            obs, reward, terminated, truncated, info = env.step(action)
            expected = twin.step(int(action))
            assert_same((obs, reward, terminated, truncated), expected[:4])
            assert_obs_ok(obs, env.observation_space)
            assert type(reward) is float and type(terminated) is bool and type(truncated) is bool
            assert not (terminated and truncated)
            done = terminated or truncated
            assert in_range(reward, last_range if done else step_range), (reward, done)
            rewards.append(reward)
            if task == "classification":
                assert terminated and reward in (0.0, 1.0)
            if done and task == "summarization" and env.unwrapped.reward_mode == "dense":
                assert math.isclose(sum(rewards), info["rouge"], abs_tol=1e-5)
            if done and task == "ner":
                assert obs["word_index"][0] == len(rewards) == obs["word_mask"].sum()


def test_single_env_step_before_any_reset_is_refused():
    for env_id, kwargs, *_ in CONFIGS.values():
        env = gym.make(env_id, **kwargs)
        # gym.make's OrderEnforcing wrapper answers first; the bare env answers too
        with pytest.raises((TextgymError, gym.error.ResetNeeded)):
            env.step(0)
        _expect_error(env.unwrapped.step, 0)


@pytest.mark.parametrize("seed", [-1, 1.5, "7"])
def test_single_env_bad_seed_is_a_gymnasium_error(seed):
    env = make("classification")[0]
    with pytest.raises((TextgymError, GymnasiumError)):
        env.reset(seed=seed)
    env.reset(seed=0)


# ----- native vector envs -------------------------------------------------------------

vector_plans = st.lists(
    st.tuples(
        st.one_of(st.none(), st.integers(0, 2**32 - 1)),
        st.sampled_from(
            [
                "none",
                "index",
                "indices",
                "bad_index_shape",
                "bad_index_value",
                "bad_indices",
                "bad_indices_type",
            ]
        ),  # fmt: skip
        st.lists(st.integers(0, 10**6), min_size=1, max_size=12),  # option values
        st.lists(
            st.one_of(
                st.lists(st.integers(0, 10**6), min_size=3, max_size=3).map(lambda v: ("valid", v)),
                st.integers(0, 10).map(lambda i: ("bad", i)),
            ),
            max_size=10,
        ),
    ),
    min_size=1,
    max_size=3,
)


def _bad_vector_actions(env, kind: int):
    n, k = env.single_action_space.n, env.num_envs
    ok = np.zeros(k, np.int64)
    out_of_range = ok.copy()
    out_of_range[-1] = n
    return [
        np.zeros(k + 1, np.int64), np.zeros((k, 1), np.int64), None, out_of_range,
        ok - 1, np.full(k, 0.5), np.full(k, np.nan), np.array(["0"] * k), np.array([None] * k),
        0 if k > 1 else [[0]], np.full(k, np.inf),
    ][kind]  # fmt: skip


def _valid_vector_actions(env, values: list[int], form: int):
    if env.unwrapped.task == "summarization":
        masks = env.unwrapped.action_masks()
        actions = [int(np.flatnonzero(m)[v % m.sum()]) for m, v in zip(masks, values, strict=False)]
    else:
        actions = [v % env.single_action_space.n for v in values[: env.num_envs]]
    # forms: int64 array, int32 array, list of ints, whole floats (SB3's float buffers)
    return [np.array(actions), np.array(actions, np.int32), actions, np.array(actions, float)][
        form % 4
    ]


def _vector_options(kind: str, values: list[int], env):
    k, n = env.num_envs, env.unwrapped.num_examples
    valid = [v % n for v in values]
    return {
        "none": None,
        "index": {"index": np.array((valid * k)[:k])},
        "indices": {"indices": valid},
        "bad_index_shape": {"index": np.array((valid * (k + 1))[: k + 1])},
        "bad_index_value": {"index": np.array([n] * k)},
        "bad_indices": {"indices": [*valid, -1]},
        "bad_indices_type": {"indices": 5},
    }[kind]


@pytest.mark.parametrize("name", list(CONFIGS))
@pytest.mark.parametrize("num_envs", [1, 3])
@EXAMPLES
@given(plan=vector_plans)
def test_vector_env_contract_under_random_and_bad_use(name, num_envs, plan):
    env, twin = make(name, vector=num_envs)
    _, _, last_range, step_range = CONFIGS[name]
    single_space = env.single_observation_space
    for seed, option_kind, values, steps in plan:
        options = _vector_options(option_kind, values, env)
        if option_kind.startswith("bad"):
            _expect_error(env.reset, seed=seed, options=options)
            options = None
        obs, info = env.reset(seed=seed, options=options)
        twin_obs, twin_info = twin.reset(seed=seed, options=options)
        assert_same(obs, twin_obs)
        assert obs in env.observation_space
        np.testing.assert_array_equal(info["index"], twin_info["index"])
        if options and "index" in options:
            np.testing.assert_array_equal(info["index"], options["index"])
        for i, (kind, value) in enumerate(steps):
            if kind == "bad":
                _expect_error(env.step, _bad_vector_actions(env, value))
                continue
            actions = _valid_vector_actions(env, value, i)
            obs, rewards, terminated, truncated, infos = env.step(actions)
            expected = twin.step(np.asarray(actions).astype(np.int64))
            assert_same((obs, rewards, terminated, truncated), expected[:4])
            np.testing.assert_array_equal(infos["index"], expected[4]["index"])
            assert obs in env.observation_space
            for key, sub in single_space.spaces.items():
                assert obs[key].dtype == sub.dtype and obs[key].shape == (num_envs, *sub.shape)
            assert rewards.shape == terminated.shape == truncated.shape == (num_envs,)
            assert terminated.dtype == truncated.dtype == bool
            assert not (terminated & truncated).any()
            done = terminated | truncated
            for slot in range(num_envs):
                bounds = last_range if done[slot] else step_range
                assert in_range(float(rewards[slot]), bounds), (rewards[slot], done[slot])
            if done.any():
                np.testing.assert_array_equal(infos["_final_obs"], done)
                for slot in np.flatnonzero(done):
                    final = {k: v[slot] for k, v in infos["final_obs"].items()}
                    assert final in single_space


def test_vector_env_step_before_reset_is_refused():
    env = gym.make_vec("TextClassification-v0", num_envs=2, max_tokens=12)
    _expect_error(env.step, np.zeros(2, np.int64))


@pytest.mark.parametrize("seed", [1.5, "7", [1, 2], [0, 1.5, 2], ["a", "b", "c"], object()])
def test_vector_env_bad_seed_is_refused_clearly(seed):
    env = make("classification", vector=3)[0]
    with pytest.raises((TextgymError, GymnasiumError)):
        env.reset(seed=seed)
    env.reset(seed=0)


# ----- textgym.evaluate with a policy of the wrong output (issue 13, item 13) -------------


class _PredictWithoutState:
    def predict(self, obs, deterministic=True):
        return np.zeros(len(obs["input_ids"]), np.int64)  # SB3's predict returns a pair


@pytest.mark.parametrize(
    ("policy", "said"),
    [
        (lambda obs: 0, "returned int 0; it must return one integer action per env: 8 of them"),
        (lambda obs: None, "returned NoneType None;"),
        (lambda obs: np.zeros(3, np.int64), "returned an array of shape (3,) and dtype int64;"),
        (lambda obs: [[0, 1], [2]], "returned a list of length 2;"),
        (lambda obs: np.array(["a"] * 8), "returned an array of shape (8,) and dtype <U1;"),
        (
            lambda obs: (np.zeros(8, np.int64), None),
            "returned a tuple (a tuple of length 2); a callable policy returns the actions alone",
        ),
        (_PredictWithoutState(), "predict() returned an array of shape (8,) and dtype int64;"),
    ],
)
def test_evaluate_names_a_policy_output_of_the_wrong_shape(policy, said):
    """These were raw numpy reshape errors (or a TypeError unpacking predict's result)."""
    with pytest.raises(TextgymError) as err:
        textgym.evaluate(
            policy, "TextClassification-v0", split="validation", num_envs=8, max_tokens=8
        )
    assert said in str(err.value)
    assert "the policy" in str(err.value)


def test_evaluate_accepts_actions_of_shape_num_envs_by_one():
    result = textgym.evaluate(
        lambda obs: np.zeros((len(obs["input_ids"]), 1), np.int64),
        "TextClassification-v0",
        split="validation",
        num_envs=8,
        max_tokens=8,
    )
    assert result.num_episodes == 226


@pytest.mark.parametrize("alias", ["dev", "DEV", "valid", "val", "Validation"])
def test_split_aliases_are_normalised_on_the_env(alias):
    """split="dev" worked, but env.unwrapped.split then said 'dev' (or 'DEV') (issue 13,
    item 16)."""
    env = gym.make("TextClassification-v0", split=alias, max_tokens=8)
    assert env.unwrapped.split == "validation"
    envs = gym.make_vec("TextClassification-v0", num_envs=2, split=alias, max_tokens=8)
    assert envs.unwrapped.split == "validation"
