"""Bench YAML: expansion into runs, overrides, and clear errors."""

import json

import pytest
from lb_helpers import TINY_BENCH

from textgym.errors import TextgymError
from textgym.leaderboard.config import load_config, parse_config
from textgym.leaderboard.runner import check_conflicts, select

CONFIG = {
    "seeds": [3, 5],
    "n_timesteps": 1000,
    "policy": "tiny",
    "agents": {"majority": {}, "ppo": {"learning_rate": "1e-4"}},  # as YAML reads 1e-4
    "envs": {
        "ner": {"env_id": "TextNER-v0", "env_kwargs": {"max_tokens": 24}},
        "cls": {
            "env_id": "TextClassification-v0",
            "n_timesteps": 500,
            "agents": {
                "majority": None,
                "ppo": {"n_envs": 8},
                "ppo-fast": {"algo": "ppo", "learning_rate": 1e-3, "n_timesteps": 50},
            },
        },
    },
}


def test_matrix_expands_env_by_agent_by_seed_with_overrides():
    runs = parse_config(CONFIG)
    assert [r.key for r in runs] == [
        "ner/majority/seed3",
        "ner/majority/seed5",
        "ner/ppo/seed3",
        "ner/ppo/seed5",
        "cls/majority/seed3",
        "cls/majority/seed5",
        "cls/ppo/seed3",
        "cls/ppo/seed5",
        "cls/ppo-fast/seed3",
        "cls/ppo-fast/seed5",
    ]
    by_key = {r.key: r for r in runs}
    assert by_key["ner/ppo/seed3"].hyperparameters == {"learning_rate": 1e-4}
    assert by_key["ner/ppo/seed3"].n_timesteps == 1000
    assert by_key["ner/ppo/seed3"].env_kwargs == {"max_tokens": 24}
    # an env's agent entry overlays the top-level one key by key
    assert by_key["cls/ppo/seed5"].hyperparameters == {"learning_rate": 1e-4, "n_envs": 8}
    assert by_key["cls/ppo/seed5"].n_timesteps == 500
    fast = by_key["cls/ppo-fast/seed3"]
    assert (fast.algo, fast.n_timesteps, fast.hyperparameters) == (
        "ppo",
        50,
        {"learning_rate": 1e-3},
    )
    assert by_key["cls/majority/seed3"].policy == "tiny"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"sedes": 2}, "unknown key"),
        ({"seeds": 0}, "seeds must be >= 1"),
        ({"seeds": [1, 1]}, "distinct"),
        ({"envs": {"x": {"env_id": "CartPole-v9"}}}, "not registered"),
        ({"envs": {"x y": {"env_id": "TextNER-v0"}}}, "env name"),
        ({"agents": {"ppo": {"clip_rnage": 0.1}}}, "no setting"),
        ({"agents": {"majority": {"k": 3}}}, "no setting"),
        ({"agents": {"dqn": {}}}, "unknown agent"),
        ({"envs": {"n": {"env_id": "TextNER-v0", "env_kwargs": {"split": "test"}}}}, "eval_split"),
        ({"envs": {}}, "no envs"),
    ],
)
def test_mistakes_fail_before_anything_runs(change, message):
    with pytest.raises(TextgymError, match=message):
        parse_config({**CONFIG, **change}, "bench.yaml")


def test_shipped_configs_parse():
    root = TINY_BENCH.parents[2] / "benchmarks"
    for name in ("leaderboard.yaml", "conll2003.yaml"):
        runs = load_config(root / name)
        assert len({r.seed for r in runs}) == 3
        assert {r.env_id for r in runs} <= {
            "TextNER-v0",
            "TextClassification-v0",
            "TextSummarization-v0",
        }
    agents = {(r.env_id, r.algo) for r in load_config(root / "leaderboard.yaml")}
    for env_id in ("TextNER-v0", "TextClassification-v0"):
        for algo in (
            "random",
            "majority",
            "supervised",
            "reinforce",
            "trpo",
            "ppo",
            "rloo",
            "grpo",
        ):
            assert (env_id, algo) in agents
    for algo in ("random", "lead", "reinforce", "trpo", "ppo", "rloo", "grpo"):
        assert ("TextSummarization-v0", algo) in agents


def test_select_filters_by_glob():
    runs = parse_config(CONFIG)
    assert [r.key for r in select(runs, ["cls/ppo/*"])] == ["cls/ppo/seed3", "cls/ppo/seed5"]
    with pytest.raises(TextgymError, match="no run matches"):
        select(runs, ["nothing/*"])


def test_a_run_dir_started_with_other_settings_is_refused(tmp_path):
    runs = parse_config(CONFIG)
    spec = runs[2]
    path = spec.run_dir(tmp_path) / "run.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({**spec.to_json(), "n_timesteps": 7}))
    with pytest.raises(TextgymError, match="n_timesteps: 7 -> 1000"):
        check_conflicts(runs, tmp_path)
    path.write_text(json.dumps(spec.to_json()))  # the same settings: fine
    check_conflicts(runs, tmp_path)


def test_a_key_given_twice_in_a_bench_yaml_is_refused(tmp_path):
    """PyYAML keeps the last of two equal keys: the first agent's settings vanished."""
    path = tmp_path / "bench.yaml"
    path.write_text(
        "envs:\n  TextNER-v0: {}\nseeds: [0]\nagents:\n  ppo: {learning_rate: 0.001}\n"
        "  majority: {}\n  ppo: {learning_rate: 0.1}\n"
    )
    with pytest.raises(TextgymError) as err:
        load_config(path)
    assert str(err.value) == (
        f"{path}, line 7: the key 'ppo' is given twice in one mapping (first on line 5); "
        "remove one (YAML readers would silently keep the last)"
    )
