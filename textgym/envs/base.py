"""What the three tasks share: loading a split, choosing episodes, the vector-env plumbing.

Episode choice is counter-based: episode ``k`` of an env whose stream key is ``key`` opens
example ``mix(key, k) % num_examples``. The key is drawn from the env's ``np_random`` when
it is seeded, so ``reset(seed=s)`` makes the whole sequence of episodes a pure function of
``s``, and a native vector env computes every slot's next example with one vectorised call
(slot ``i`` of a vector env reset with seed ``s`` plays exactly what a single env reset with
seed ``s + i`` plays).
"""

from __future__ import annotations

import hashlib
import inspect
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import VectorEnv
from gymnasium.vector.utils import batch_space
from gymnasium.vector.vector_env import AutoresetMode

from textgym.corpora import Corpus, load_corpus
from textgym.corpora.records import normalize_split
from textgym.errors import TextgymError
from textgym.tokenizer import CachedArrays, TextTokenizer, cached_arrays, derived_array

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


class UnexpectedKeywordError(TextgymError, TypeError):
    """A keyword argument the env does not take (or a value it cannot honour, such as
    ``render_mode="rgb_array"``).

    Also a :class:`TypeError` worded like Python's own ("... got an unexpected keyword
    argument 'frameskip'"): libraries probe optional kwargs that way (TorchRL's ``GymEnv``
    passes ``frameskip``, SB3's ``make_vec_env`` passes ``render_mode="rgb_array"``) and
    retry without them on a ``TypeError``.
    """


#: Keywords that ``load_corpus`` names itself; any other extra keyword goes to
#: ``datasets.load_dataset`` and only hub datasets and parquet/arrow files accept it.
_LOADER_KEYWORDS = frozenset(
    name
    for name, param in inspect.signature(load_corpus).parameters.items()
    if param.kind is inspect.Parameter.KEYWORD_ONLY
)


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijective, well-spread hash of uint64 values."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def episode_indices(keys: np.ndarray, counters: np.ndarray, num_examples: int) -> np.ndarray:
    """Example index of episode ``counters[i]`` of the stream ``keys[i]`` (vectorised)."""
    # uint64 array arithmetic wraps around silently, as the hash wants.
    keys = keys.astype(np.uint64, copy=False)
    mixed = _mix64(keys + counters.astype(np.uint64, copy=False) * _GOLDEN)
    return (mixed % np.uint64(num_examples)).astype(np.int64)


def draw_key(rng: np.random.Generator) -> np.uint64:
    """A stream key drawn from a seeded generator."""
    return np.uint64(rng.integers(0, 2**63, dtype=np.int64))


@dataclass(frozen=True)
class TaskData:
    """One split of a corpus, tokenized: what an env of that configuration reads.

    Attributes:
        corpus: The whole corpus (all splits, label set, fingerprint).
        split: The split name.
        examples: The split's records (words and gold tags, text and label, ...), for
            rendering and evaluation; agents read observations, never these. A tuple, or
            for a large local file a sequence that decodes an example when it is indexed.
        arrays: Read-only int32 arrays, one row per example, mapped from the on-disk
            cache: shared by every env of the process and every process of the machine.
        tokenizer: The tokenizer that produced ``arrays``.
    """

    corpus: Corpus
    split: str
    examples: tuple
    arrays: CachedArrays
    tokenizer: TextTokenizer


def load_task_data(
    task: str,
    dataset: str | os.PathLike | None,
    split: str,
    tokenizer: str | os.PathLike | None,
    lengths: dict[str, int],
    build: Callable[[TextTokenizer, tuple, tuple[str, ...]], dict[str, np.ndarray]],
    dataset_kwargs: dict[str, Any],
    owner: str = "env",
) -> TaskData:
    """Read the corpus and tokenize one split (cached in memory and on disk)."""
    try:
        corpus = load_corpus(task, dataset, **dataset_kwargs)
    except TextgymError as err:
        extra = sorted(set(dataset_kwargs) - _LOADER_KEYWORDS)
        if extra and "unexpected keyword argument" in str(err):
            raise unexpected_keyword(owner, extra[0], detail=str(err)) from None
        raise
    examples = corpus.split(split)
    split = normalize_split(split)  # "dev", "DEV", "valid" -> "validation" (env.split)
    if len(examples) == 0:
        raise TextgymError(f"split {split!r} of dataset {corpus.name!r} has no examples")
    key = {"task": task, "corpus": corpus.fingerprint, "split": split, **lengths}
    arrays, tok = cached_arrays(
        key,
        tokenizer,
        lambda t, chunk: build(t, chunk, corpus.labels),
        examples=examples,
        max_length=max(lengths.values()),
    )
    return TaskData(corpus, split, examples, arrays, tok)


def unexpected_keyword(owner: str, name: str, detail: str = "") -> UnexpectedKeywordError:
    """Python's wording for a keyword a constructor does not take, then textgym's detail."""
    message = f"{owner}.__init__() got an unexpected keyword argument {name!r}"
    return UnexpectedKeywordError(f"{message}: {detail}" if detail else message)


def check_length(name: str, value: Any, minimum: int) -> int:
    """Validate an integer length kwarg."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise TextgymError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """Validate a kwarg that takes one of a few strings."""
    if value not in choices:
        raise TextgymError(
            f"unknown {name} {value!r}; valid values: {', '.join(map(repr, choices))}"
        )
    return value


#: Values of the ``obs_dtype`` kwarg every env takes.
OBS_DTYPES = ("compact", "int32")


def int_box(high: int | np.ndarray, shape: tuple[int, ...], low: int = 0) -> gym.spaces.Box:
    """An int32 Box; :func:`observation_space` then gives it its final dtype."""
    return gym.spaces.Box(low=low, high=high, shape=shape, dtype=np.int32)


def compact_dtype(low: int, high: int) -> np.dtype:
    """The smallest signed integer dtype (int8, int16 or int32) holding ``[low, high]``.

    Signed on purpose: ``x - 1`` stays -1 rather than wrapping to 255, and every torch
    version converts int8 and int16 arrays (unsigned 16-bit ones only from torch 2.3).
    """
    for dtype in (np.int8, np.int16):
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return np.dtype(dtype)
    return np.dtype(np.int32)


def observation_space(space: gym.spaces.Dict, obs_dtype: str) -> gym.spaces.Dict:
    """``space`` with each ``Box`` in its ``obs_dtype``: ``"compact"`` (the smallest signed
    dtype holding the Box's bounds, see :func:`compact_dtype`) or ``"int32"`` (all int32)."""
    if obs_dtype == "int32":
        return space
    boxes = {}
    for key, box in space.spaces.items():
        dtype = compact_dtype(int(box.low.min()), int(box.high.max()))
        boxes[key] = gym.spaces.Box(
            low=box.low.astype(dtype), high=box.high.astype(dtype), dtype=dtype
        )
    return gym.spaces.Dict(boxes)


class ObsLayout:
    """Observations packed row-major in one byte block: ``(num_rows, width)`` uint8.

    Key ``k`` is the byte range ``slices[k]`` of each row, viewed as the key's dtype and
    reshaped to its shape, so resetting a slot is one row copy from a table of initial
    observations, and copying a whole batched observation is one ``memcpy`` and one
    allocation (at 1024 envs that is most of the cost of a step, hence the compact
    dtypes). Keys are placed by decreasing item size and the row is padded to a multiple
    of the largest one, so every view is aligned and its row stride is a whole number of
    items (torch needs that to take the array as it is). The per-key arrays are views with
    a row stride of ``width`` bytes; numpy, torch and stable-baselines3 read them as they
    are.
    """

    def __init__(self, space: gym.spaces.Dict):
        #: key -> (first byte, end byte, dtype, shape), in the space's key order
        self.slices: dict[str, tuple[int, int, np.dtype, tuple[int, ...]]] = {}
        offset = 0
        items = list(space.spaces.items())
        for key, sub in sorted(items, key=lambda item: -item[1].dtype.itemsize):
            size = int(np.prod(sub.shape)) * sub.dtype.itemsize
            self.slices[key] = (offset, offset + size, sub.dtype, tuple(sub.shape))
            offset += size
        self.slices = {key: self.slices[key] for key, _ in items}
        align = max(sub.dtype.itemsize for _, sub in items)
        self.width = -(-offset // align) * align
        # The same layout as a structured dtype: a field lookup is one cheap call per key.
        self.row_dtype = np.dtype(
            {
                "names": list(self.slices),
                "formats": [np.dtype((dt, shape)) for _, _, dt, shape in self.slices.values()],
                "offsets": [a for a, _, _, _ in self.slices.values()],
                "itemsize": self.width,
            }
        )

    def empty(self, rows: int) -> np.ndarray:
        return np.zeros((rows, self.width), np.uint8)

    def views(self, block: np.ndarray) -> dict[str, np.ndarray]:
        """Per-key views of a ``(rows, width)`` block (or of one ``(width,)`` row)."""
        rows = block.view(self.row_dtype)[..., 0]
        return {key: rows[key] for key in self.slices}

    def pack(self, columns: dict[str, np.ndarray]) -> np.ndarray:
        """One read-only ``(N, width)`` block from per-key ``(N, *shape)`` arrays (or scalars)."""
        n = max(len(v) for v in columns.values() if np.ndim(v))
        block = self.empty(n)
        for key, view in self.views(block).items():
            value = columns[key]
            view[...] = np.reshape(value, view.shape) if np.ndim(value) else value
        block.setflags(write=False)
        return block


def flat_rows(view: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A 2-D array whose rows are a whole number of items apart, as one 1-D view.

    Returns the view and the flat index of each row's start: ``view[r, c]`` is
    ``flat[starts[r] + c]``. The per-key arrays of an :class:`ObsLayout` block qualify.
    """
    rows, cols = view.shape
    step, rest = divmod(view.strides[0], view.itemsize)
    if rest or view.strides[1] != view.itemsize:
        raise ValueError(f"rows of strides {view.strides} are not whole items apart")
    length = (rows - 1) * step + cols if rows else 0
    flat = np.lib.stride_tricks.as_strided(view, (length,), (view.itemsize,))
    return flat, np.arange(rows, dtype=np.intp) * step


class BlockPool:
    """Recycles large output arrays that nobody references any more.

    A batched observation at 1024 envs is hundreds of kilobytes; allocating a fresh one
    per step makes the allocator map and fault in new pages every time, which costs more
    than the step. The pool hands out a block again only when its reference count shows
    that the caller has dropped every view of it, so a returned observation is never
    overwritten.
    """

    def __init__(self, shape: tuple[int, ...], size: int = 4):
        self.shape = shape
        self.blocks: list[np.ndarray] = []
        self.size = size

    def get(self) -> np.ndarray:
        for block in self.blocks:
            # References: the pool's list, this loop variable and getrefcount's argument.
            if sys.getrefcount(block) <= 3:
                return block
        block = np.empty(self.shape, np.uint8)
        if len(self.blocks) >= self.size:
            self.blocks.pop(0)  # its holder keeps it; the pool forgets it
        self.blocks.append(block)
        return block


class TaskEnvMixin:
    """Attributes every textgym env exposes, single or batched (listed in the README)."""

    task: str
    data: TaskData

    @property
    def labels(self) -> tuple[str, ...]:
        """Label names; action ``i`` of a tagging or classification env means ``labels[i]``."""
        return self.data.corpus.labels

    @property
    def vocab_size(self) -> int:
        return self.data.tokenizer.info.vocab_size

    @property
    def pad_token_id(self) -> int:
        return self.data.tokenizer.info.pad_token_id

    @property
    def eos_token_id(self) -> int:
        return self.data.tokenizer.info.eos_token_id

    @property
    def tokenizer_name(self) -> str:
        return self.data.tokenizer.info.name

    @property
    def num_examples(self) -> int:
        return len(self.data.examples)

    @property
    def split(self) -> str:
        return self.data.split

    @property
    def dataset(self) -> str:
        return self.data.corpus.name

    @property
    def examples(self) -> tuple:
        """The split's records, for rendering and evaluation (gold labels included)."""
        return self.data.examples

    def _check_index(self, index: Any) -> int:
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TextgymError(f"options['index'] must be an integer, got {index!r}")
        if not 0 <= index < self.num_examples:
            raise TextgymError(
                f"options['index']={index} is out of range for split {self.split!r} "
                f"with {self.num_examples} examples"
            )
        return int(index)


class TextEnv(TaskEnvMixin, gym.Env):
    """Base of the single envs: episode choice and the step-after-end guard."""

    metadata = {"render_modes": ["ansi", "human"], "render_fps": 4}

    def __init__(self, render_mode: str | None = None, obs_dtype: str = "compact"):
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            valid = ", ".join(map(repr, self.metadata["render_modes"]))
            raise unexpected_keyword(
                type(self).__name__,
                "render_mode",
                f"render_mode {render_mode!r} is not supported; valid values: {valid}",
            )
        self.render_mode = render_mode
        self.obs_dtype = check_choice("obs_dtype", obs_dtype, OBS_DTYPES)
        self._key: np.uint64 | None = None
        self._counter = 0
        self._index = 0
        self._done = True

    def _init_observations(
        self, space: gym.spaces.Dict, initial: Callable[[], dict[str, Any]], key: tuple
    ) -> None:
        """Set the observation space and the table of each example's first observation.

        Args:
            space: The observation space with int32 ``Box`` es; ``obs_dtype`` decides the
                dtypes of the env's.
            initial: Per-key ``(num_examples, *shape)`` arrays (or scalars) of first
                observations; called once per process for a given ``key``.
            key: What the table depends on besides the data (lengths, label count).
        """
        self.observation_space = observation_space(space, self.obs_dtype)
        self._layout = ObsLayout(self.observation_space)
        memo = self.data.arrays.derived  # one table per process for the arrays and layout
        memo_key = ("initial", self.obs_dtype, *key)
        if memo_key not in memo:
            memo[memo_key] = self._initial_table(initial(), key)
        self._initial = memo[memo_key]
        self._block = self._layout.empty(1)
        self._obs = self._layout.views(self._block)
        self._indices = np.zeros(1, np.int64)

    def _initial_table(self, columns: dict[str, Any], key: tuple) -> np.ndarray:
        """The packed first observations, kept in the arrays' cache entry and mapped like
        them (built chunk by chunk, never as a whole in memory)."""
        layout = self._layout
        scalars = sorted((k, int(v)) for k, v in columns.items() if not np.ndim(v))
        what = repr((self.obs_dtype, key, layout.width, list(layout.slices.items()), scalars))
        name = "initial-" + hashlib.blake2b(what.encode(), digest_size=8).hexdigest()

        def rows(start: int, stop: int) -> np.ndarray:
            return layout.pack({k: v[start:stop] if np.ndim(v) else v for k, v in columns.items()})

        return derived_array(self.data.arrays, name, rows, self.num_examples)

    def _start_episode(self, seed: int | None, options: dict | None) -> int:
        """Call after ``super().reset(seed=seed)``: open the next (or the requested) example."""
        index = self._choose_index(seed, options)
        self._indices[0] = index
        self._block[0] = self._initial[index]
        return index

    def _observation(self) -> dict[str, np.ndarray]:
        return self._layout.views(self._block[0].copy())

    def _choose_index(self, seed: int | None, options: dict | None) -> int:
        """Call after ``super().reset(seed=seed)``: the example the new episode opens."""
        if seed is not None or self._key is None:
            self._key = draw_key(self.np_random)
            self._counter = 0
        if options and "index" in options:
            index = self._check_index(options["index"])
        else:
            index = int(
                episode_indices(
                    np.array([self._key]), np.array([self._counter]), self.num_examples
                )[0]
            )
            self._counter += 1
        self._index = index
        self._done = False
        return index

    def _check_action(self, action: Any) -> int:
        """The action as an int; whole-number floats (``3.0``) count, as in the vector env."""
        if self._done:
            raise TextgymError("step() called after the episode ended: call reset() first")
        if isinstance(action, np.ndarray) and action.shape == () or isinstance(action, np.generic):
            action = action.item()
        if isinstance(action, float) and action.is_integer() and abs(action) < 2**53:
            action = int(action)
        if (
            isinstance(action, bool)
            or not isinstance(action, int)
            or not 0 <= action < self.action_space.n
        ):
            raise TextgymError(f"action {action!r} is not in the action space {self.action_space}")
        return action

    def render(self) -> str | None:
        text = self._render_text()
        if self.render_mode == "human":
            print(text)
            return None
        return text

    def _render_text(self) -> str:
        raise NotImplementedError


def _seed_list(seed: Any, num_envs: int) -> list[int]:
    """The per-slot seeds of ``reset(seed=[...])``, checked."""
    try:
        seeds = list(seed)
    except TypeError:
        raise TextgymError(
            f"seed must be an integer or a sequence of {num_envs} integers, got {seed!r}"
        ) from None
    if len(seeds) != num_envs:
        raise TextgymError(f"reset got {len(seeds)} seeds for {num_envs} envs")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
            raise TextgymError(f"seeds must be integers, got {s!r}")
    return [int(s) for s in seeds]


#: Episodes per slot whose example a native vector env computes at once.
_AHEAD = 32


#: Autoreset modes the native vector envs implement (Gymnasium's names and values).
AUTORESET_MODES = (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP)


def check_autoreset_mode(value: Any) -> AutoresetMode:
    """``AutoresetMode.NEXT_STEP`` / ``SAME_STEP`` or their values ``"NextStep"`` / ``"SameStep"``."""
    try:
        mode = AutoresetMode(value)
    except ValueError:
        mode = None
    if mode not in AUTORESET_MODES:
        valid = ", ".join(f"AutoresetMode.{m.name} ({m.value!r})" for m in AUTORESET_MODES)
        shown = f"AutoresetMode.{value.name}" if isinstance(value, AutoresetMode) else repr(value)
        raise TextgymError(f"unsupported autoreset_mode {shown}; valid values: {valid}")
    return mode


class TextVectorEnv(TaskEnvMixin, VectorEnv):
    """Base of the native batched envs.

    ``autoreset_mode`` is Gymnasium's: ``AutoresetMode.NEXT_STEP`` (the default, as in
    Gymnasium's own vector envs) returns a finished slot's last observation from the step
    that ended it and resets the slot on the next step (which ignores that slot's action
    and gives reward 0); ``AutoresetMode.SAME_STEP`` (what stable-baselines3 and
    textgym's agents use) resets it inside the same step and puts its last observation
    in ``infos["final_obs"]`` and its last info in ``infos["final_info"]``.

    Observations live in preallocated ``(num_envs, ...)`` buffers that ``step`` updates
    in place; with ``copy=True`` (the default, as in Gymnasium's vector envs) a fresh
    copy is returned each call, with ``copy=False`` the buffers themselves (valid until
    the next call). ``infos["final_obs"]`` (same-step mode) is batched like ``obs``: rows
    are valid where ``infos["_final_obs"]`` is True, other rows are unspecified.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": []}

    #: The single env this vector env batches; built once to share its data and core.
    single_env_class: type[TextEnv]
    #: Attributes of the single env (its validated kwargs) exposed on the vector env too.
    shared_attributes: tuple[str, ...] = ()

    def __init__(
        self,
        num_envs: int = 1,
        copy: bool = True,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
        **kwargs: Any,
    ):
        kwargs.pop("max_episode_steps", None)  # gymnasium.make_vec passes the spec's value
        self.autoreset_mode = check_autoreset_mode(autoreset_mode)
        self.metadata = {**type(self).metadata, "autoreset_mode": self.autoreset_mode}
        single_env = self.single_env_class(**kwargs)
        self.data = single_env.data
        self.core = single_env.core
        self.obs_dtype = single_env.obs_dtype
        for name in self.shared_attributes:
            setattr(self, name, getattr(single_env, name))
        self.num_envs = check_length("num_envs", num_envs, 1)
        self.copy = copy
        self.render_mode = None
        self.single_observation_space = single_env.observation_space
        self.single_action_space = single_env.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self._layout = single_env._layout
        self._initial = single_env._initial
        self._block = self._layout.empty(self.num_envs)
        self._obs = self._layout.views(self._block)
        self._obs_pool = BlockPool(self._block.shape)
        self._final_pool = BlockPool(self._block.shape)
        self._keys = np.zeros(self.num_envs, np.uint64)
        # The examples of each slot's next _AHEAD episodes, computed for every slot at once
        # (the hash costs a dozen numpy calls, which each step would otherwise pay for the
        # few slots it resets): column j of row s is episode _counters[s] + j of slot s,
        # and _ahead_pos[s] is the column of its next episode.
        self._counters = np.zeros(self.num_envs, np.uint64)
        self._ahead = np.zeros((self.num_envs, _AHEAD), np.int64)
        self._ahead_pos = np.zeros(self.num_envs, np.int64)
        self._ahead_valid = False
        self._seeded = False
        self._indices = np.zeros(self.num_envs, np.int64)
        self._playlist = np.zeros(0, np.int64)
        self._playlist_pos = 0
        self._all = np.ones(self.num_envs, bool)
        self._all.setflags(write=False)
        # Next-step mode: the slots whose episode ended on the last step (reset on this one).
        self._pending = np.zeros(self.num_envs, bool)
        self._any_pending = False
        self._needs_reset = True

    # -- episode choice -----------------------------------------------------------------
    def _seed(self, seed: int | Sequence[int] | None) -> None:
        if seed is None and self._seeded:
            return
        if seed is None:
            seeds: list[int | None] = [None] * self.num_envs
            rng = self.np_random
            self._keys[:] = [draw_key(rng) for _ in range(self.num_envs)]
        else:
            if isinstance(seed, (int, np.integer)):
                seeds = [int(seed) + i for i in range(self.num_envs)]
                self._np_random, self._np_random_seed = seeding.np_random(int(seed))
            else:
                seeds = _seed_list(seed, self.num_envs)
            self._keys[:] = [draw_key(seeding.np_random(s)[0]) for s in seeds]
        self._counters[:] = 0
        self._ahead_pos[:] = 0
        self._ahead_valid = False
        self._seeded = True

    def _draw(self, slots: np.ndarray) -> np.ndarray:
        """Next example for each slot in ``slots`` (playlist first, then the streams)."""
        out = np.empty(len(slots), np.int64)
        take = min(len(slots), len(self._playlist) - self._playlist_pos)
        if take > 0:
            out[:take] = self._playlist[self._playlist_pos : self._playlist_pos + take]
            self._playlist_pos += take
        rest = slots[take:]
        if len(rest):
            pos = self._ahead_pos[rest]
            if not self._ahead_valid or pos.max() >= _AHEAD:
                self._compute_ahead()
                pos = self._ahead_pos[rest]
            out[take:] = self._ahead[rest, pos]
            self._ahead_pos[rest] = pos + 1
        return out

    def _compute_ahead(self) -> None:
        """Fill ``_ahead`` with every slot's next ``_AHEAD`` episodes."""
        self._counters += self._ahead_pos.astype(np.uint64)
        self._ahead_pos[:] = 0
        counters = self._counters[:, None] + np.arange(_AHEAD, dtype=np.uint64)
        self._ahead[:] = episode_indices(self._keys[:, None], counters, self.num_examples)
        self._ahead_valid = True

    def reset(self, *, seed: int | Sequence[int] | None = None, options: dict | None = None):
        self._seed(seed)
        options = options or {}
        self._playlist = np.zeros(0, np.int64)
        self._playlist_pos = 0
        slots = np.arange(self.num_envs)
        if "index" in options:
            index = np.asarray(options["index"])
            if index.shape != (self.num_envs,):
                raise TextgymError(
                    f"options['index'] must hold one example index per env ({self.num_envs}), "
                    f"got shape {index.shape}"
                )
            indices = np.array([self._check_index(i) for i in index.tolist()], np.int64)
        else:
            if "indices" in options:
                try:
                    playlist = list(options["indices"])
                except TypeError:
                    raise TextgymError(
                        "options['indices'] must be a sequence of example indices, got "
                        f"{options['indices']!r}"
                    ) from None
                self._playlist = np.array([self._check_index(i) for i in playlist], np.int64)
            indices = self._draw(slots)
        self._indices[:] = indices
        self._reset_slots(slots, indices)
        self._pending[:] = False
        self._any_pending = False
        self._needs_reset = False
        return self._observation(), {"index": self._indices.copy(), "_index": self._all}

    def step(self, actions):
        if self._needs_reset:
            raise TextgymError("step() called before reset(): call reset() first")
        actions = self._check_actions(actions)
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            return self._step_next(actions)
        rewards, terminated, truncated, every, final = self._step(actions, None)
        infos: dict[str, Any] = {}
        done = terminated | truncated
        if done.any():
            slots = np.flatnonzero(done)
            final_block = self._final_pool.get()  # rows of unfinished slots are unspecified
            final_block[slots] = self._block[slots]
            final_obs = self._layout.views(final_block)
            final_info = {"index": self._indices.copy(), "_index": done.copy()}
            for key, value in {**every, **final}.items():
                final_info[key] = value
                final_info[f"_{key}"] = done
            infos.update(
                final_obs=final_obs, _final_obs=done, final_info=final_info, _final_info=done
            )
            new = self._draw(slots)
            self._indices[slots] = new
            self._reset_slots(slots, new)
        infos["index"] = self._indices.copy()
        infos["_index"] = self._all
        return self._observation(), rewards, terminated, truncated, infos

    def _step_next(self, actions: np.ndarray):
        """One step in next-step autoreset mode.

        The slots that finished on the previous step start their next episode: they are
        reset, their action is ignored, their reward is 0 and they are neither terminated
        nor truncated (as in Gymnasium's ``SyncVectorEnv``). The others step as usual, and
        a slot that finishes returns its last observation and, in ``infos``, the keys of
        the single env's last info.
        """
        pending = None
        if self._any_pending:
            pending = self._pending.copy()
            slots = np.flatnonzero(pending)
            new = self._draw(slots)
            self._indices[slots] = new
            self._reset_slots(slots, new)
        # Every slot steps (the kernels work on whole batches); the reset slots step from
        # their first observation and are put back to it below.
        rewards, terminated, truncated, every, final = self._step(actions, pending)
        if pending is not None:
            self._reset_slots(slots, new)
            rewards[slots] = 0.0
            terminated[slots] = False
            truncated[slots] = False
        done = terminated | truncated
        self._pending = done
        self._any_pending = bool(done.any())
        infos: dict[str, Any] = {"index": self._indices.copy(), "_index": self._all}
        stepped = self._all if pending is None else ~pending
        for key, value in every.items():
            infos[key] = value
            infos[f"_{key}"] = stepped
        if self._any_pending:
            for key, value in final.items():
                infos[key] = value
                infos[f"_{key}"] = done
        return self._observation(), rewards, terminated, truncated, infos

    def _observation(self) -> dict[str, np.ndarray]:
        if self.copy:
            out = self._obs_pool.get()
            np.copyto(out, self._block)
            return self._layout.views(out)
        return self._obs

    def _check_actions(self, actions) -> np.ndarray:
        actions = np.asarray(actions)
        n = self.single_action_space.n
        if actions.dtype.kind in "iu" and actions.shape == (self.num_envs,):  # the usual case
            # One pass: read as unsigned, a negative action is larger than any valid one.
            if actions.view(actions.dtype.str.replace("i", "u")).max() >= n:
                bad = actions[(actions < 0) | (actions >= n)][0]
                raise TextgymError(f"action {bad} is not in the action space Discrete({n})")
            return actions
        # Whole, finite floats that int64 holds exactly; anything else is refused below.
        whole_floats = np.issubdtype(actions.dtype, np.floating) and bool(
            np.all((actions == np.round(actions)) & (np.abs(actions) < 2**53))
        )
        if actions.shape == (self.num_envs,) and whole_floats:
            actions = actions.astype(np.int64)  # e.g. SB3's float action buffers
        if actions.shape != (self.num_envs,) or not np.issubdtype(actions.dtype, np.integer):
            raise TextgymError(
                f"actions must be {self.num_envs} integers (one per env), got an array "
                f"of shape {actions.shape} and dtype {actions.dtype}"
            )
        if actions.min() < 0 or actions.max() >= n:
            bad = actions[(actions < 0) | (actions >= n)][0]
            raise TextgymError(f"action {bad} is not in the action space Discrete({n})")
        return actions

    def _reset_slots(self, slots: np.ndarray, indices: np.ndarray) -> None:
        self._block[slots] = self._initial[indices]

    # -- implemented per task ----------------------------------------------------------

    def _step(
        self, actions: np.ndarray, ignored: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict, dict]:
        """Step every slot; returns rewards, terminated, truncated, ``every``, ``final``.

        ``ignored`` (None: none) marks slots whose action the caller will discard (their
        step is undone), so it must not be refused. ``every`` holds info arrays valid for
        every slot, ``final`` those valid for the slots that finished; together with
        ``"index"`` they are the keys of the single env's last info.
        """
        raise NotImplementedError
