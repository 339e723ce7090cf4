"""Training on several processes or GPUs: ``torch.distributed`` with gradient all-reduce.

How a run is split. Every rank (process) builds the same agent with the same seed, so the
weights start identical (and :meth:`Distributed.broadcast_modules` makes sure), and
plays its own vector env of ``n_envs`` slots: ``n_envs`` is *per rank*, and a rollout is
``world_size * n_envs * n_steps`` env steps. Rank ``r`` resets its env with seed
``seed + r * n_envs``, so its slot ``i`` plays what slot ``r * n_envs + i`` of a
single-process run with ``world_size * n_envs`` slots plays. Actions are drawn from the
noise of all ranks' slots (:meth:`Distributed.pad_rows`), so the first rollout of
``R`` ranks x ``n`` slots is the first rollout of one process with ``R * n`` slots.
Group rollouts draw ``world_size * n_envs / G`` examples from one example schedule that
every rank holds identically, and rank ``r`` plays its share: the ranks play distinct
examples. ``num_timesteps`` counts the env steps of all ranks, so ``total_timesteps``,
``eval_freq``, checkpoints and the learning-rate schedule mean what they mean in one
process. ``batch_size`` is per rank too.

Why a manual gradient all-reduce rather than the ``DistributedDataParallel`` wrapper: the
agents do not run one ``forward`` + ``backward`` per step. The rollout and the update
share encodings (the context cache, RLOO's single pass), TRPO runs forward-mode passes and
needs its gradient, its Fisher-vector products and its line-search values averaged over
ranks, and REINFORCE and RLOO accumulate a gradient over minibatches before one step.
One function, :meth:`Distributed.all_reduce_grads`, called once between the last
``backward`` and the gradient clipping, serves them all, and the modules and their caches
stay as they are (each rank caches the encodings of its own slots).

Each rank's gradient is the mean over its own steps; the all-reduce weights it by the
rank's number of steps, so the result is the mean over every rank's steps even where
ranks hold different numbers (group rollouts end when their own episodes do).

What it sends. A transformer's gradient is mostly its word-embedding table's (MiniLM:
11.7M of 22.7M floats), and a batch touches a few hundred of its 30522 rows: the rest
is zeros. A first, small all-reduce carries which parameters have a gradient, the
weights, and for each embedding table which rows are nonzero on this rank; the second
sends the dense gradients and only the rows of the tables that some rank touched (a row
that is zero on every rank is zero in the mean: the result equals that of one
all-reduce of the whole flat gradient, as ``tests/agents/test_distributed.py`` checks).
That second one goes in buckets of 25 MB, as ``DistributedDataParallel``'s, one after
the other, in place in a buffer kept between updates (a fresh 91 MB tensor per update cost
its page faults every time). On 2 gloo ranks of one thread on a 2-core machine, MiniLM's
gradient with 300 tokens per rank took 153 ms against 436 ms for the flat all-reduce
(``python benchmarks/ddp_scaling.py --all-reduce``, load average 2.1-2.4, with each
bucket all-reduced asynchronously while the next was packed; that version aborted a rank
once in CI, "terminate called without an active exception", and is synchronous now). The buckets are not
all-reduced during the backward pass (gradient hooks, as ``DistributedDataParallel``
does): on a CPU with one core per rank, gloo's thread has no free core to run on, and a
44 MB all-reduce started beside a matmul loop finished together with it in 674 ms
against 686 ms one after the other (2 ranks, load average ~2).

Never blocking forever: every collective sits on a path that all ranks take the same
number of times. Decisions that could differ between ranks are agreed first: PPO's
``target_kl`` stop on the KL averaged over ranks, TRPO's line search on the averaged
surrogate and KL, a callback's stop and a signal with :meth:`Distributed.any`, and the
number of minibatches per epoch with :meth:`Distributed.min_int`. Rank 0 alone writes
files; it runs the write and then tells the other ranks whether it worked
(:meth:`Distributed.main_first`), so a full disk is the same error on every rank.
Periodic evaluation runs on rank 0 while the others wait at their next collective; the
process group that ``textgym train`` starts allows ``TEXTGYM_DIST_TIMEOUT`` seconds
(default 7200) for that.

With one process every method here returns its input untouched and runs no
collective, so a single-process run is exactly what it was without this module.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import pickle
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import torch

from textgym.errors import TextgymError

T = TypeVar("T")

ENV_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


class Distributed:
    """The rank's view of the process group (``torch.distributed``), or of one process.

    Built by each agent at construction from the process group the caller initialised
    (``textgym train --nproc N`` or ``torchrun`` do it; a script may call
    ``torch.distributed.init_process_group`` itself). Without one, ``world_size`` is 1.
    """

    bucket_bytes: int = 25 * 2**20
    """The size of one gradient all-reduce (as ``DistributedDataParallel``'s buckets)."""

    def __init__(self) -> None:
        import torch.distributed as dist

        self.enabled = dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1
        self.world_size = dist.get_world_size() if self.enabled else 1
        self.rank = dist.get_rank() if self.enabled else 0
        self.local_rank = int(os.environ.get("LOCAL_RANK", self.rank)) if self.enabled else 0
        backend = dist.get_backend() if self.enabled else "gloo"
        # nccl reduces CUDA tensors only; gloo reduces CPU tensors everywhere
        self.comm_device = (
            torch.device("cuda", torch.cuda.current_device())
            if backend == "nccl"
            else torch.device("cpu")
        )

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes logs, checkpoints and the summary."""
        return self.rank == 0

    def device(self, device: torch.device) -> torch.device:
        """The rank's device: ``cuda`` means ``cuda:LOCAL_RANK`` (one GPU per process)."""
        if not self.enabled or device.type != "cuda":
            return device
        if device.index is not None and device.index != self.local_rank:
            raise TextgymError(
                f"device {device} on rank {self.rank}: with several processes each one uses "
                f"cuda:LOCAL_RANK (here cuda:{self.local_rank}); pass device='cuda'"
            )
        return torch.device("cuda", self.local_rank)

    # ----- reductions -------------------------------------------------------------------

    def _reduce(self, flat: torch.Tensor, op: Any = None) -> torch.Tensor:
        import torch.distributed as dist

        out = flat.to(self.comm_device)
        dist.all_reduce(out, op=dist.ReduceOp.SUM if op is None else op)
        return out.to(flat.device)

    def mean(self, tensor: torch.Tensor, weight: float) -> torch.Tensor:
        """The ``weight``-weighted mean of ``tensor`` over ranks (each rank's own mean over
        ``weight`` steps gives the mean over all ranks' steps)."""
        if not self.enabled:
            return tensor
        flat = torch.cat([tensor.detach().reshape(-1).double() * weight, _scalar(weight)])
        flat = self._reduce(flat)
        return (flat[:-1] / flat[-1]).to(tensor.dtype).reshape(tensor.shape)

    def mean_floats(self, values: Iterable[float], weight: float) -> tuple[float, ...]:
        """:meth:`mean` of a few Python floats; the same tuple on every rank."""
        values = tuple(values)
        if not self.enabled:
            return values
        return tuple(self.mean(torch.tensor(values, dtype=torch.float64), weight).tolist())

    def sum_int(self, value: int) -> int:
        if not self.enabled:
            return value
        return int(self._reduce(torch.tensor([value], dtype=torch.int64))[0])

    def min_int(self, value: int) -> int:
        import torch.distributed as dist

        if not self.enabled:
            return value
        return int(self._reduce(torch.tensor([value], dtype=torch.int64), dist.ReduceOp.MIN)[0])

    def any(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any (a stop that all ranks take)."""
        if not self.enabled:
            return flag
        return self.sum_int(int(bool(flag))) > 0

    def mean_std(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and (unbiased) standard deviation of ``x`` over the elements of all ranks."""
        if not self.enabled:
            return x.mean(), x.std()
        x64 = x.double()
        total = self._reduce(torch.stack([x64.sum(), (x64 * x64).sum(), _scalar(x.numel())[0]]))
        s, sq, n = total.tolist()
        mean = s / n
        var = (sq - n * mean * mean) / max(n - 1, 1)
        as_tensor = lambda v: torch.tensor(v, dtype=x.dtype, device=x.device)  # noqa: E731
        return as_tensor(mean), as_tensor(max(var, 0.0) ** 0.5 if n > 1 else float("nan"))

    def all_reduce_grads(self, params: Iterable[torch.nn.Parameter], weight: float) -> None:
        """Replace each trainable parameter's gradient by its ``weight``-weighted mean over
        ranks. Call between ``backward`` and the gradient clipping. A parameter that no
        rank gave a gradient keeps ``grad=None`` (the optimiser then skips it, as it would
        in one process).

        Two collectives: a small one of which parameters have a gradient, the weights and,
        for embedding tables (:func:`_is_table`), which rows are nonzero on any rank; then
        the gradients, only the rows of the tables that some rank touched, packed into a
        buffer kept between calls and all-reduced in place in buckets of
        :attr:`bucket_bytes`. The result is the one of all-reducing the whole
        flat gradient: a row that is zero on every rank is zero in the mean too.
        """
        if not self.enabled:
            return
        params = [p for p in params if p.requires_grad]
        if not params:
            return
        device = params[0].device
        tables = [i for i, p in enumerate(params) if _is_table(p)]
        masks = [_nonzero_rows(params[i]) for i in tables]
        header = torch.cat(
            [
                torch.tensor([p.grad is not None for p in params], dtype=torch.float32),
                _scalar(weight, torch.float32),
                *[m.float().cpu() for m in masks],
            ]
        )
        header = self._reduce(header)
        n = len(params)
        has, total = header[:n].tolist(), header[n].to(device)
        rows: dict[int, torch.Tensor] = {}
        offset = n + 1
        for i, mask in zip(tables, masks, strict=True):
            used = header[offset : offset + len(mask)].nonzero().reshape(-1)
            rows[i] = used.to(device)
            offset += len(mask)
        # (parameter, rows or None for all, start in the buffer, length)
        layout: list[tuple[torch.nn.Parameter, torch.Tensor | None, int, int]] = []
        size = 0
        for i, p in enumerate(params):
            if not has[i]:
                continue
            sel = rows.get(i)
            length = p.numel() if sel is None else len(sel) * (p.numel() // p.shape[0])
            if length:
                layout.append((p, sel, size, length))
                size += length
            elif p.grad is None:  # a table with a gradient on some rank, all of it zero
                p.grad = torch.zeros_like(p)
        if not layout:
            return
        buffer = self._grad_buffer(size, device)
        for bucket in _buckets(layout, self.bucket_bytes // 4):
            lo, hi = bucket[0][2], bucket[-1][2] + bucket[-1][3]
            for p, sel, start, length in bucket:
                _pack(p, sel, weight, buffer[start : start + length])
            # synchronous: gloo's async work objects kept past a wait could outlive the
            # process group at exit (a rank aborted once in CI: "terminate called without
            # an active exception"), and on a CPU with one core per rank they bought nothing
            flat = self._reduce(buffer[lo:hi])  # in place where the buffer is on comm_device
            for p, sel, start, length in bucket:
                _unpack(p, sel, total, flat[start - lo : start - lo + length])

    def _grad_buffer(self, size: int, device: torch.device) -> torch.Tensor:
        """A float32 buffer of ``size`` elements, kept between updates (a new one of ~50 MB
        every update costs its page faults again)."""
        buffer = getattr(self, "_buffer", None)
        if buffer is None or buffer.numel() < size or buffer.device != device:
            buffer = self._buffer = torch.empty(size, dtype=torch.float32, device=device)
        return buffer[:size]

    # ----- objects ----------------------------------------------------------------------

    def all_gather(self, obj: T) -> list[T]:
        """Every rank's ``obj`` (picklable), in rank order."""
        import torch.distributed as dist

        if not self.enabled:
            return [obj]
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def broadcast(self, obj: T) -> T:
        """Rank 0's ``obj`` on every rank."""
        import torch.distributed as dist

        if not self.enabled:
            return obj
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def main_first(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` on rank 0 alone and return its result on every rank; an exception it
        raises is raised on every rank (on the others as :class:`RankZeroError`, whose
        message rank 0 prints), so no rank goes on while another stopped."""
        if not self.enabled:
            return fn()
        outcome: tuple[bool, Any] = (True, None)
        if self.is_main:
            try:
                outcome = (True, fn())
            except Exception as err:  # sent to the other ranks, then raised here too
                try:
                    pickle.dumps(err)
                    sent: Any = err
                except Exception:
                    sent = TextgymError(f"{type(err).__name__}: {err}")
                self.broadcast((False, sent))
                raise
        ok, value = self.broadcast(outcome)
        if not ok:
            if isinstance(value, OSError):
                raise value  # callers turn a full disk into their own message
            raise RankZeroError(str(value)) from value
        return value

    def check_same(self, what: str, value: Any) -> None:
        """Refuse to go on when ranks hold different ``value`` s: they would take different
        paths through training and wait on each other for ever."""
        if not self.enabled:
            return
        values = self.all_gather(value)
        for rank, other in enumerate(values):
            if other != values[0]:
                raise TextgymError(
                    f"rank {rank} has another {what} than rank 0 ({_short(other)} vs "
                    f"{_short(values[0])}): every rank must train the same agent"
                )

    def broadcast_modules(self, modules: Iterable[torch.nn.Module]) -> None:
        """Rank 0's parameters and buffers on every rank (as DDP does at construction)."""
        import torch.distributed as dist

        if not self.enabled:
            return
        for module in modules:
            for tensor in [*module.parameters(), *module.buffers()]:
                data = tensor.data.to(self.comm_device)
                dist.broadcast(data, src=0)
                tensor.data.copy_(data)

    # ----- rollouts -------------------------------------------------------------------

    def pad_rows(self, rows: torch.Tensor, fill: float = 1.0) -> torch.Tensor:
        """``(n, ...)`` -> ``(world_size * n, ...)``: this rank's rows at ``rank * n``.

        Sampling from the padded probabilities draws the same noise as one process with
        every rank's slots would, and a row's sample depends on its own row alone, so
        this rank's actions are that process's actions for these slots.
        """
        if not self.enabled:
            return rows
        n = rows.shape[0]
        out = torch.full(
            (self.world_size * n, *rows.shape[1:]), fill, dtype=rows.dtype, device=rows.device
        )
        out[self.rank * n : (self.rank + 1) * n] = rows
        return out

    def own_rows(self, padded: torch.Tensor) -> torch.Tensor:
        """The rows of :meth:`pad_rows` that are this rank's."""
        if not self.enabled:
            return padded
        n = padded.shape[0] // self.world_size
        return padded[self.rank * n : (self.rank + 1) * n]


class RankZeroError(TextgymError):
    """Raised on ranks > 0 for an error of rank 0 (which reports it)."""


def _scalar(value: float, dtype: torch.dtype = torch.float64, like: torch.Tensor | None = None):
    return torch.tensor([float(value)], dtype=dtype, device=None if like is None else like.device)


def _is_table(p: torch.nn.Parameter) -> bool:
    """An embedding table: a large matrix of many more rows than columns, whose gradient
    is zero but in the rows of the tokens in the batch (MiniLM's word embeddings: 30522 x
    384, 47 MB, of which a batch touches a few hundred rows)."""
    return p.dim() == 2 and p.shape[0] >= 8 * p.shape[1] and p.numel() >= 2**20


def _nonzero_rows(p: torch.nn.Parameter) -> torch.Tensor:
    if p.grad is None:
        return torch.zeros(p.shape[0], dtype=torch.bool, device=p.device)
    return p.grad.reshape(p.shape[0], -1).any(1)  # one read, no boolean copy


def _buckets(layout: list, elements: int) -> Iterator[list]:
    """``layout`` cut at parameter boundaries into runs of at least ``elements``."""
    bucket: list = []
    filled = 0
    for entry in layout:
        bucket.append(entry)
        filled += entry[3]
        if filled >= elements:
            yield bucket
            bucket, filled = [], 0
    if bucket:
        yield bucket


def _pack(p: torch.nn.Parameter, rows: torch.Tensor | None, weight: float, out: torch.Tensor):
    """``out`` = the gradient (its ``rows``) times ``weight``, in float32."""
    grad = p.grad
    if grad is None:
        out.zero_()
        return
    if rows is not None:
        grad = grad.reshape(p.shape[0], -1).index_select(0, rows)
    if grad.dtype != torch.float32:
        grad = grad.float()
    torch.mul(grad.reshape(-1), weight, out=out)


def _unpack(p: torch.nn.Parameter, rows: torch.Tensor | None, total: torch.Tensor, flat):
    """The gradient (its ``rows``) = ``flat`` / ``total``."""
    if rows is not None:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        elif not p.grad.is_contiguous():  # written through a view below
            p.grad = p.grad.contiguous()
        grad = p.grad.view(p.shape[0], -1)
        grad.index_copy_(0, rows, (flat.view(len(rows), -1) / total).to(p.dtype))
    elif p.grad is None or p.grad.dtype != torch.float32:
        mean = (flat.view(p.shape) / total).to(p.dtype)
        if p.grad is None:
            p.grad = mean
        else:
            p.grad.copy_(mean)
    else:
        torch.div(flat.view(p.shape), total, out=p.grad)


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


# ----- starting a process group --------------------------------------------------------


def launched_world_size() -> int:
    """``WORLD_SIZE`` set by ``torchrun`` or ``textgym train --nproc`` (1 when unset)."""
    value = os.environ.get("WORLD_SIZE")
    if value is None:
        return 1
    try:
        size = int(value)
    except ValueError:
        raise TextgymError(f"WORLD_SIZE={value!r} is not an integer") from None
    if size < 1:
        raise TextgymError(f"WORLD_SIZE={value!r} must be >= 1")
    return size


@contextlib.contextmanager
def process_group(device: str) -> Iterator[Distributed]:
    """Join the process group that ``WORLD_SIZE``/``RANK``/``MASTER_ADDR``/``MASTER_PORT``
    describe (``env://``), for the block: nccl when the rank trains on CUDA, else gloo.

    On CPU with several processes each one runs one torch thread unless
    ``OMP_NUM_THREADS`` says otherwise (``torchrun`` and ``textgym train --nproc`` set it
    to 1): two ranks of two threads each on two cores run slower than one rank.
    With ``WORLD_SIZE`` unset or 1 nothing is started.
    """
    import torch.distributed as dist

    size = launched_world_size()
    if size == 1 or (dist.is_available() and dist.is_initialized()):
        yield Distributed()
        return
    missing = [name for name in ENV_VARS if name not in os.environ and name != "LOCAL_RANK"]
    if missing:
        raise TextgymError(
            f"WORLD_SIZE={size} but {', '.join(missing)} unset: start the processes with "
            "textgym train --nproc N or torchrun"
        )
    local_rank = int(os.environ.get("LOCAL_RANK", os.environ["RANK"]))
    cuda = device != "cpu" and not device.startswith("mps") and torch.cuda.is_available()
    if cuda:
        if local_rank >= torch.cuda.device_count():
            raise TextgymError(
                f"LOCAL_RANK {local_rank}: this machine has {torch.cuda.device_count()} CUDA "
                "device(s); start at most that many processes per machine, or use --device cpu"
            )
        torch.cuda.set_device(local_rank)
    elif "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(1)
    timeout = datetime.timedelta(seconds=float(os.environ.get("TEXTGYM_DIST_TIMEOUT", 7200)))
    dist.init_process_group("nccl" if cuda else "gloo", init_method="env://", timeout=timeout)
    try:
        yield Distributed()
    except BaseException:
        dist.destroy_process_group()
        raise
    # the ranks leave together: a rank that tore its gloo group down while rank 0 was
    # still evaluating the test split sometimes aborted ("terminate called without an
    # active exception", SIGABRT) and failed the whole run
    dist.barrier()
    dist.destroy_process_group()


# ----- launching processes -------------------------------------------------------------


def free_port() -> int:
    """A TCP port free on localhost now (the rendezvous of a one-machine run)."""
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Linux: the rank is killed when the launcher dies, however it dies (SIGKILL too),
    so a killed run leaves no rank holding the run directory's lock."""
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG


def launch(command: list[str], nproc: int, one_thread: bool) -> int:
    """Run ``command`` (argv of a Python program) as ``nproc`` ranks on this machine and
    wait for them, as ``torchrun --standalone`` would.

    Each rank gets ``RANK``, ``LOCAL_RANK``, ``WORLD_SIZE``, ``LOCAL_WORLD_SIZE``,
    ``MASTER_ADDR`` and ``MASTER_PORT`` (a free localhost port), and with ``one_thread``
    ``OMP_NUM_THREADS=1`` unless the caller set it. The ranks run in their own session:
    SIGINT and SIGTERM reach the launcher, which passes each one on to every rank once
    (the first asks for a checkpoint and a stop, a second stops at once). When a rank
    fails the others are killed, and its exit status is returned; otherwise 130 if the
    ranks stopped on a signal, else 0.
    """
    import signal
    import subprocess
    import sys
    import time

    port = str(free_port())
    procs: list[subprocess.Popen] = []
    base = dict(os.environ)
    if one_thread:
        base.setdefault("OMP_NUM_THREADS", "1")
    for rank in range(nproc):
        env = base | {
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": str(nproc),
            "LOCAL_WORLD_SIZE": str(nproc),
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": port,
        }
        preexec = _die_with_parent if sys.platform.startswith("linux") else None
        procs.append(subprocess.Popen(command, env=env, start_new_session=True, preexec_fn=preexec))

    def forward(signum: int, frame: Any) -> None:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signum)

    old = {}
    with contextlib.suppress(ValueError):  # not the main thread: no handlers to set
        old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        codes: list[int | None] = [None] * nproc
        while any(code is None for code in codes):
            for i, proc in enumerate(procs):
                if codes[i] is None:
                    codes[i] = proc.poll()
            failed = [code for code in codes if code not in (None, 0, 130)]
            if failed:
                # the others wait on the failed rank in a collective: end them
                for proc in procs:
                    if proc.poll() is None:
                        proc.kill()
                for proc in procs:
                    proc.wait()
                return failed[0]
            time.sleep(0.05)
        return 130 if 130 in codes else 0
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
