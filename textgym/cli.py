"""The ``textgym`` command: list the envs, play one by hand, train and evaluate agents,
run benchmark matrices and render leaderboards."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

import gymnasium as gym

import textgym
from textgym.errors import TextgymError

REWARD_MODES = {
    "TextNER-v0": "reward_mode: token (dense, default) | f1 (sparse sentence entity-F1) | token+f1",
    "TextClassification-v0": "1 if the label is correct, else 0",
    "TextSummarization-v0": "reward_mode: final (default) | dense; rouge: rougeL | rouge1 | rouge2",
}


def _json_kwargs(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"--env-kwargs is not valid JSON: {err}") from err
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("--env-kwargs must be a JSON object")
    return value


def _describe_space(space: gym.Space) -> str:
    if isinstance(space, gym.spaces.Dict):
        return ", ".join(f"{k} {tuple(s.shape)}" for k, s in space.spaces.items())
    return str(space)


def cmd_list(args: argparse.Namespace) -> int:
    """Print every registered env id with its data, spaces and rewards."""
    for env_id in textgym.ENV_IDS:
        env = gym.make(env_id, **args.env_kwargs).unwrapped
        corpus = env.data.corpus
        sizes = ", ".join(f"{name} {len(examples):,}" for name, examples in corpus.splits.items())
        print(f"{env_id}  (task {env.task})")
        print(f"  dataset      {corpus.name}: {sizes}")
        print(f"  tokenizer    {env.tokenizer_name} (vocab {env.vocab_size:,})")
        print(f"  observation  Dict(int32): {_describe_space(env.observation_space)}")
        labels = f" = {', '.join(env.labels)}" if env.labels and len(env.labels) <= 25 else ""
        print(f"  action       {env.action_space}{labels}")
        print(f"  reward       {REWARD_MODES[env_id]}")
        env.close()
    return 0


def _ask(prompt: str, read: Callable[[str], str]) -> str | None:
    try:
        return read(prompt).strip()
    except EOFError:
        return None


def _parse_action(env, text: str) -> list[int]:
    """Turn what the player typed into actions (a tag, a label, or a word's tokens)."""
    if env.task == "summarization":
        if text.lower() in ("", "eos", "<eos>"):
            return [env.eos_token_id]
        tok = env.data.tokenizer
        token_id = tok.token_to_id(text.lower())
        if token_id is not None:
            return [token_id]
        ids, mask = tok.encode_texts([text], 64)
        special = set(tok.info.special_ids)
        return [int(i) for i, m in zip(ids[0], mask[0], strict=True) if m and int(i) not in special]
    if text.isdigit() and int(text) < len(env.labels):
        return [int(text)]
    matches = [i for i, label in enumerate(env.labels) if label.lower() == text.lower()]
    if not matches:
        raise TextgymError(f"{text!r} is not one of: {', '.join(env.labels)}")
    return matches[:1]


def cmd_play(args: argparse.Namespace, read: Callable[[str], str] = input) -> int:
    """Play episodes in the terminal: the state is shown, the player types actions."""
    env = gym.make(args.env_id, render_mode="ansi", split=args.split, **args.env_kwargs)
    base = env.unwrapped
    hint = {
        "ner": "type a tag (name or number)",
        "classification": "type a label (name or number)",
        "summarization": "type a word or token (empty line or 'eos' ends the summary)",
    }[base.task]
    print(f"{args.env_id}: {hint}; 'q' quits.")
    if base.labels and base.task != "summarization":
        print("labels: " + ", ".join(f"{i}={label}" for i, label in enumerate(base.labels)))
    seed = args.seed
    while True:
        env.reset(seed=seed)
        seed = None
        total, done = 0.0, False
        while not done:
            print(env.render())
            text = _ask("> ", read)
            if text is None or text == "q":
                return 0
            try:
                actions = _parse_action(base, text)
                for action in actions:
                    _, reward, terminated, truncated, info = env.step(action)
                    total += reward
                    print(f"reward {reward:+.3f}  (return {total:.3f})")
                    done = terminated or truncated
                    if done:
                        break
            except TextgymError as err:
                print(f"error: {err}")
        print(env.render())
        print(f"episode over: return {total:.3f}")
        if _ask("another episode? [Y/n] ", read) in (None, "n", "q"):
            return 0


#: Subcommands provided by textgym.agents (torch is imported only when one of them runs).
AGENT_COMMANDS = {
    "train": "train an agent on an env and write a run directory",
    "eval": "evaluate a trained run directory on a split",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="textgym", description=__doc__)
    parser.add_argument("--version", action="version", version=f"textgym {textgym.__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "list", help="every registered env id with its dataset, split sizes, spaces and rewards"
    )
    p.add_argument("--env-kwargs", type=_json_kwargs, default={}, help="JSON kwargs for gym.make")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("play", help="play an episode in the terminal")
    p.add_argument("env_id", choices=sorted(textgym.ENV_IDS))
    p.add_argument("--split", default="train")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--env-kwargs", type=_json_kwargs, default={}, help="JSON kwargs for gym.make")
    p.set_defaults(func=cmd_play)

    if command in AGENT_COMMANDS:
        from textgym.agents import cli as agents_cli

        agents_cli.register(sub)
    else:
        for name, help_text in AGENT_COMMANDS.items():
            sub.add_parser(name, help=help_text, add_help=False)
    from textgym.leaderboard import cli as leaderboard_cli

    leaderboard_cli.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(argv[0] if argv else None)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except TextgymError as err:
        print(f"textgym: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
