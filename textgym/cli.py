"""The textgym command: list the envs, play one by hand, train and evaluate agents,
run benchmark matrices and render leaderboards."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Callable, Sequence

import gymnasium as gym
import numpy as np

import textgym
from textgym import metrics
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
        return ", ".join(f"{k} {tuple(s.shape)} {s.dtype}" for k, s in space.spaces.items())
    return str(space)


def _tokenizer_label(env) -> str:
    """The tokenizer by name: the packaged default is not shown as its install path."""
    from textgym.tokenizer import default_tokenizer_path

    vocab = f"vocab {env.vocab_size:,}"
    if env.tokenizer_name == default_tokenizer_path():
        return f"all-MiniLM-L6-v2 (packaged WordPiece, uncased; {vocab})"
    return f"{env.tokenizer_name} ({vocab})"


def cmd_list(args: argparse.Namespace) -> int:
    """Print every registered env id with its data, spaces and rewards."""
    for env_id in textgym.ENV_IDS:
        env = gym.make(env_id, **args.env_kwargs).unwrapped
        corpus = env.data.corpus
        sizes = ", ".join(f"{name} {len(examples):,}" for name, examples in corpus.splits.items())
        print(f"{env_id}  (task {env.task})")
        print(f"  dataset      {corpus.name}: {sizes}")
        print(f"  tokenizer    {_tokenizer_label(env)}")
        print(f"  observation  Dict: {_describe_space(env.observation_space)}")
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


def _shorten(text: str, width: int) -> str:
    return textwrap.shorten(text, width=width, placeholder=" ...")


def _label_action(env, text: str) -> int:
    """A tag or label typed by name (any case) or number."""
    if text.isdigit() and int(text) < len(env.labels):
        return int(text)
    for i, label in enumerate(env.labels):
        if label.lower() == text.lower():
            return i
    kind = "tag" if env.task == "ner" else "label"
    raise TextgymError(f"unknown {kind} {text!r} (type ? to list them)")


def _token_actions(env, text: str) -> list[int]:
    """The tokens of what the player typed: one vocabulary entry, or the words' subwords."""
    tok = env.data.tokenizer
    for candidate in (text, text.lower()):
        token_id = tok.token_to_id(candidate)
        if token_id is not None:
            return [token_id]
    ids, mask = tok.encode_texts([text], 64)
    special = set(tok.info.special_ids)
    tokens = [int(i) for i, m in zip(ids[0], mask[0], strict=True) if m and int(i) not in special]
    if not tokens:
        raise TextgymError(f"{text!r} has no token in the vocabulary")
    return tokens


class _Advisor:
    """A trained run's suggestions (``--model runs/x``): its greedy action for a state."""

    def __init__(self, run_dir: str):
        from pathlib import Path

        from textgym.agents import ALGORITHMS

        run = Path(run_dir)
        path = next(
            (p for p in (run / "model", run) if (p / "config.json").is_file()),
            None,
        )
        if path is None:
            raise TextgymError(f"{run}: no model/config.json (not a textgym run directory?)")
        try:
            config = json.loads((path / "config.json").read_text())
        except (OSError, ValueError) as err:
            raise TextgymError(f"{path / 'config.json'}: unreadable ({err})") from None
        if not isinstance(config, dict) or config.get("algorithm") not in ALGORITHMS:
            raise TextgymError(f"{path}: not a textgym agent checkpoint")
        self.env_id = config.get("env_id")
        self.env_kwargs = dict(config.get("env_kwargs") or {})
        self.model = ALGORITHMS[config["algorithm"]].load(path, device="cpu")
        self.name = f"{config['algorithm']} ({run.name})"

    def suggest(self, env, obs: dict) -> int:
        masks = env.action_masks().astype(bool) if hasattr(env, "action_masks") else None
        action, _ = self.model.predict(obs, deterministic=True, action_masks=masks)
        return int(np.asarray(action).reshape(-1)[0])


class _Scores:
    """The task's own metric over the episodes played so far."""

    def __init__(self, env):
        self.env = env
        self.gold: list = []
        self.pred: list = []
        self.rouge: list[float] = []

    def add(self, obs: dict, info: dict) -> str:
        """Record a finished episode; returns its score line."""
        env = self.env
        example = env.examples[info["index"]]
        if env.task == "ner":
            kept = len(example.words) - int(info["words_dropped"])
            tags = [env.labels[t] for t in obs["tags"][:kept]] + ["O"] * (len(example.words) - kept)
            gold = list(example.tags)
            self.gold.append(gold)
            self.pred.append(tags)
            one = metrics.entity_scores([gold], [tags])
            has_entities = any(t != "O" for t in gold + tags)
            f1 = one["f1"] if has_entities else 1.0
            total = metrics.entity_scores(self.gold, self.pred)["f1"]
            entities = ", ".join(_entities(example.words, gold)) or "none"
            return (
                f"entity-F1 {f1:.3f} (gold entities: {entities}); "
                f"all {len(self.gold)} sentences: entity-F1 {total:.3f}"
            )
        if env.task == "classification":
            self.gold.append(info["label"])
            self.pred.append(env.labels[info["pred"]])
            right = sum(g == p for g, p in zip(self.gold, self.pred, strict=True))
            return f"accuracy {right}/{len(self.gold)} = {right / len(self.gold):.3f}"
        self.rouge.append(float(info["rouge"]))
        mean = sum(self.rouge) / len(self.rouge)
        return (
            f"reference: {example.target}\n{env.rouge} {info['rouge']:.3f}; "
            f"mean over {len(self.rouge)} summaries {mean:.3f}"
        )


def _entities(words: Sequence[str], tags: Sequence[str]) -> list[str]:
    """``"New York/location"`` for each IOB2 entity of a tagged sentence."""
    out, current, kind = [], [], None
    for word, tag in [*zip(words, tags, strict=True), ("", "O")]:
        if current and not (tag.startswith("I-") and tag[2:] == kind):
            out.append(f"{' '.join(current)}/{kind}")
            current, kind = [], None
        if tag.startswith("B-") or (tag.startswith("I-") and not current):
            current, kind = [word], tag[2:]
        elif tag.startswith("I-"):
            current.append(word)
    return out


def _show_labels(env) -> None:
    print("labels: " + ", ".join(f"{i}={label}" for i, label in enumerate(env.labels)))


def _episode_header(env, index: int) -> None:
    example = env.examples[index]
    where = f"{env.split} ({env.dataset})"
    if env.task == "ner":
        print(f"\nsentence {index} of {where}: {' '.join(example.words)}")
    elif env.task == "classification":
        print(f"\ndocument {index} of {where}:\n{textwrap.fill(_shorten(example.text, 600), 88)}")
    else:
        print(f"\narticle {index} of {where}:\n{textwrap.fill(_shorten(example.source, 700), 88)}")


def _prompt(env, obs: dict, index: int, suggestion: int | None) -> tuple[str, int | None]:
    """The prompt of the next step and the action an empty Enter takes."""
    if env.task == "ner":
        words = env.examples[index].words
        pos = int(obs["word_index"][0])
        default = 0 if suggestion is None else suggestion  # "O" unless a model suggests
        return (
            f"  {pos + 1:>3}/{len(words):<3} {words[pos]:<20} [{env.labels[default]}] > ",
            default,
        )
    if env.task == "classification":
        if suggestion is None:
            return "label > ", None
        return f"label [{env.labels[suggestion]}] > ", suggestion
    length = int(obs["summary_mask"].sum())
    default = env.eos_token_id if suggestion is None else suggestion
    shown = "end" if default == env.eos_token_id else env.data.tokenizer.id_to_token(default)
    return f"  {length:>2}/{env.max_summary_tokens} [{shown}] > ", default


def _step_line(
    env, before: dict, after: dict, actions: list[int], rewards: list[float], info: dict
) -> str:
    """One line that says what the player's entry did."""
    reward = sum(rewards)
    if env.task == "ner":
        example = env.examples[info["index"]]
        pos = int(before["word_index"][0])
        tag = env.labels[actions[0]]
        verdict = "ok" if info["correct"] else f"wrong, gold {example.tags[pos]}"
        return (
            f"  {pos + 1:>3}/{len(example.words):<3} {example.words[pos]:<20} {tag:<16} {verdict}"
        )
    if env.task == "classification":
        verdict = "correct" if info["correct"] else f"wrong, gold {info['label']}"
        return f"  {env.labels[actions[0]]}: {verdict} (reward {reward:+.0f})"
    tok = env.data.tokenizer
    shown = " ".join("<end>" if a == env.eos_token_id else tok.id_to_token(a) for a in actions)
    summary = info.get("summary")
    if summary is None:
        summary = tok.decode(after["summary_ids"][: int(after["summary_mask"].sum())])
    plural = "s" if len(actions) != 1 else ""
    return f"  + {shown} ({len(actions)} token{plural})  summary: {summary!r}"


def cmd_play(args: argparse.Namespace, read: Callable[[str], str] = input) -> int:
    """Play episodes in the terminal: one line per step, the task's metric at the end."""
    advisor = _Advisor(args.model) if args.model else None
    env_kwargs = dict(args.env_kwargs)
    if advisor is not None:
        if advisor.env_id not in (None, args.env_id):
            raise TextgymError(
                f"--model {args.model} was trained on {advisor.env_id}, not {args.env_id}"
            )
        env_kwargs = {**advisor.env_kwargs, **env_kwargs}
    env_kwargs["split"] = args.split
    env = gym.make(args.env_id, **env_kwargs).unwrapped
    hint = {
        "ner": "type a tag (name or number); Enter takes the one in [brackets]",
        "classification": "type a label (name or number)",
        "summarization": "type words or tokens; Enter takes the one in [brackets], 'end' ends",
    }[env.task]
    shows = "this help" if env.task == "summarization" else "the labels"
    print(f"{args.env_id}: {hint}; '?' shows {shows}, 'q' quits.")
    if advisor is not None:
        print(f"suggestions from {advisor.name} are in [brackets]")
    if env.labels and env.task != "summarization":
        _show_labels(env)
    scores = _Scores(env)
    seed = args.seed
    while True:
        obs, info = env.reset(seed=seed)
        seed = None
        _episode_header(env, info["index"])
        total, done = 0.0, False
        while not done:
            suggestion = advisor.suggest(env, obs) if advisor is not None else None
            prompt, default = _prompt(env, obs, info["index"], suggestion)
            text = _ask(prompt, read)
            if text is None or text == "q":
                return 0
            if text == "?":
                if env.task == "summarization":
                    print(hint)
                else:
                    _show_labels(env)
                continue
            try:
                if text == "":
                    if default is None:
                        raise TextgymError("type a label (name or number)")
                    actions = [default]
                elif env.task == "summarization":
                    if text.lower() in ("end", "eos", "<eos>"):
                        actions = [env.eos_token_id]
                    else:
                        actions = _token_actions(env, text)
                else:
                    actions = [_label_action(env, text)]
                if hasattr(env, "action_masks"):  # refuse before any step is taken
                    allowed = env.action_masks()
                    banned = [a for a in actions if not allowed[a]]
                    if banned:
                        token = env.data.tokenizer.id_to_token(banned[0])
                        raise TextgymError(f"{token!r} is not allowed here (not in the source)")
                before = {k: v.copy() for k, v in obs.items()}
                taken, rewards = [], []
                for action in actions:
                    obs, reward, terminated, truncated, info = env.step(action)
                    taken.append(action)
                    rewards.append(reward)
                    done = terminated or truncated
                    if done:
                        break
            except TextgymError as err:
                print(f"  error: {err}")
                continue
            total += sum(rewards)
            line = _step_line(env, before, obs, taken, rewards, info)
            # In a terminal the result replaces the prompt line: one line per step.
            print(f"\x1b[1A\x1b[2K{line}" if sys.stdout.isatty() else line)
        print(f"episode over: return {total:.3f}; {scores.add(obs, info)}")
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

    p = sub.add_parser(
        "play",
        help="play episodes in the terminal (one line per step, the task's metric at the end)",
    )
    p.add_argument("env_id", choices=sorted(textgym.ENV_IDS))
    p.add_argument("--split", default="train")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--env-kwargs", type=_json_kwargs, default={}, help="JSON kwargs for gym.make")
    p.add_argument(
        "--model",
        default=None,
        metavar="RUN_DIR",
        help="a run directory of textgym train: its suggestion is shown, and Enter takes it",
    )
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
