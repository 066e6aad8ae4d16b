"""Small helpers over ``torch.distributed`` for data-parallel training (docs/distributed.md).

A run is *distributed* when a process group is initialised with more than one rank, e.g. by
:func:`init_from_env` under ``torchrun`` or ``accelerate launch``. Otherwise every helper is a
no-op or the identity (rank 0 of 1), so single-process code calls them unconditionally and
stays exactly what it was. ``import rlhf_gym`` does not import this module (it needs torch).

Example:
    >>> from rlhf_gym import distributed
    >>> distributed.init_from_env()  # not launched by torchrun here: nothing to join
    False
    >>> distributed.world_size(), distributed.rank(), distributed.rank_seed(7)
    (1, 0, 7)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

#: Bytes of gradient flattened into one all-reduce (DDP's default bucket size).
BUCKET_BYTES = 25 * 2**20
#: Environment variables a launcher sets for ``init_process_group(init_method="env://")``.
LAUNCH_VARS = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def is_distributed() -> bool:
    """Whether a process group with more than one rank is initialised."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    """The number of ranks (1 when not distributed)."""
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    """The calling process's rank (0 when not distributed)."""
    return dist.get_rank() if is_distributed() else 0


def is_main_process() -> bool:
    """Whether this is rank 0, the one that logs and writes checkpoints."""
    return rank() == 0


def barrier() -> None:
    """Wait until every rank gets here (no-op when not distributed)."""
    if is_distributed():
        dist.barrier()


def shutdown() -> None:
    """Wait for every rank, then leave the process group (no-op when not distributed).

    A rank that exits while gloo still talks to it can abort the launch (``std::terminate`` in
    the other rank), so a job that ends well ends here on every rank.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


@contextlib.contextmanager
def main_process_first() -> Iterator[None]:
    """Run the block on rank 0 first, then on the others (e.g. to download or cache once)."""
    if not is_main_process():
        barrier()
    try:
        yield
    finally:
        if is_main_process():
            barrier()  # released even when rank 0 failed, so the others do not hang


def init_from_env(backend: str | None = None) -> bool:
    """Join the process group that ``torchrun`` / ``accelerate launch`` describe in the env.

    Does nothing when the group is already initialised, or when ``WORLD_SIZE`` is unset or 1.
    On CUDA it first makes ``cuda:$LOCAL_RANK`` the current device, so ``"cuda"`` means this
    rank's GPU.

    Args:
        backend: ``"gloo"`` or ``"nccl"``; None picks nccl when CUDA is available, else gloo.

    Returns:
        Whether the run is distributed.

    Raises:
        RuntimeError: ``WORLD_SIZE`` > 1 but a launcher variable is missing.
    """
    if not dist.is_available():
        return False
    if dist.is_initialized():
        return is_distributed()
    if int(os.environ.get("WORLD_SIZE", "1")) < 2:
        return False
    missing = [name for name in LAUNCH_VARS if name not in os.environ]
    if missing:
        raise RuntimeError(
            f"WORLD_SIZE is {os.environ['WORLD_SIZE']} but {', '.join(missing)} is not set; "
            "start the job with `torchrun --nproc_per_node K ...` or `accelerate launch`."
        )
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend=backend)
    return is_distributed()


def rank_seed(seed: int | None) -> int | None:
    """The calling rank's seed: ``seed`` on rank 0, a derived independent seed on the others.

    The other ranks' seeds come from ``numpy.random.SeedSequence(seed, spawn_key=(rank,))``,
    numpy's way of deriving independent streams, so shards differ without overlapping the
    seeds of other runs (as ``seed + rank`` would). None stays None.
    """
    if seed is None or rank() == 0:
        return seed
    sequence = np.random.SeedSequence(int(seed), spawn_key=(rank(),))
    return int(sequence.generate_state(1, np.uint32)[0])


# ----------------------------------------------------------------------------- reductions


def _comm_device() -> torch.device:
    """Where tensors must live for a collective: this rank's GPU under nccl, else the CPU."""
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """The mean of ``tensor`` over ranks (a new tensor); ``tensor`` itself when not distributed."""
    if not is_distributed():
        return tensor
    total = tensor.detach().clone()
    dist.all_reduce(total)
    return total / world_size()


def _all_reduce_numbers(values: Iterable[float], op: Any) -> np.ndarray:
    numbers = np.asarray(list(values), dtype=np.float64)
    if not is_distributed():
        return numbers
    tensor = torch.from_numpy(numbers).to(_comm_device())
    dist.all_reduce(tensor, op=op)
    return tensor.cpu().numpy()


def all_reduce_sum(values: Iterable[float]) -> np.ndarray:
    """The float64 sum of each value over ranks (the values themselves when not distributed)."""
    return _all_reduce_numbers(values, dist.ReduceOp.SUM)


def all_reduce_max(values: Iterable[float]) -> np.ndarray:
    """The float64 maximum of each value over ranks."""
    return _all_reduce_numbers(values, dist.ReduceOp.MAX)


def global_mean_std(values: np.ndarray) -> tuple[Any, Any]:
    """Mean and (population) std of ``values`` gathered from every rank.

    Not distributed: ``values.mean(), values.std()``, exactly. Distributed: two passes in
    float64 (the mean, then the squared deviations from it), cast to ``values.dtype``.
    """
    if not is_distributed():
        return values.mean(), values.std()
    count, total = all_reduce_sum([values.size, values.sum(dtype=np.float64)])
    mean = total / count
    (squares,) = all_reduce_sum([np.square(values.astype(np.float64) - mean).sum()])
    kind = values.dtype.type
    return kind(mean), kind(np.sqrt(squares / count))


def check_uniform(settings: dict[str, float], hint: str) -> None:
    """Raise when a setting differs between ranks (it would desynchronise their collectives).

    Raises:
        ValueError: naming each differing setting and its range over ranks, then ``hint``.
    """
    if not is_distributed():
        return
    values = list(settings.values())
    low = -all_reduce_max([-v for v in values])
    high = all_reduce_max(values)
    differ = [
        f"{name} ({lo:g}..{hi:g})"
        for name, lo, hi in zip(settings, low, high, strict=True)
        if lo != hi
    ]
    if differ:
        raise ValueError(f"every rank needs the same {', '.join(differ)}; {hint}")


# ----------------------------------------------------------------------------- tensors


def broadcast_tensors(tensors: Iterable[torch.Tensor], src: int = 0) -> None:
    """Overwrite each tensor in place with rank ``src``'s (no-op when not distributed)."""
    if not is_distributed():
        return
    with torch.no_grad():
        for tensor in tensors:
            buffer = tensor.data if tensor.is_contiguous() else tensor.data.contiguous()
            dist.broadcast(buffer, src=src)
            if buffer is not tensor.data:
                tensor.data.copy_(buffer)


def _buckets(params: Sequence[torch.Tensor], size: int) -> Iterator[list[torch.Tensor]]:
    """Consecutive params of one dtype and device, up to ``size`` bytes each (at least one)."""
    bucket: list[torch.Tensor] = []
    used = 0
    for param in params:
        nbytes = param.numel() * param.element_size()
        kind = (param.dtype, param.device)
        if bucket and ((bucket[0].dtype, bucket[0].device) != kind or used + nbytes > size):
            yield bucket
            bucket, used = [], 0
        bucket.append(param)
        used += nbytes
    if bucket:
        yield bucket


def all_reduce_gradients(
    params: Sequence[torch.Tensor], scale: float, bucket_bytes: int = BUCKET_BYTES
) -> None:
    """Replace each ``grad`` by the sum over ranks of ``scale * grad``, bucket by bucket.

    A rank without a gradient for a parameter contributes zeros; a parameter that has no
    gradient on any rank keeps ``grad=None`` (the optimizer skips it, as in one process).
    No-op when not distributed.
    """
    if not is_distributed():
        return
    device = _comm_device()
    flags = [p.grad is not None for p in params]
    present = torch.tensor(flags, dtype=torch.float32, device=device)
    dist.all_reduce(present, op=dist.ReduceOp.MAX)
    kept = [p for p, flag in zip(params, present.tolist(), strict=True) if flag]
    for param in kept:
        if param.grad is None:
            param.grad = torch.zeros_like(param)
    for bucket in _buckets(kept, bucket_bytes):
        flat = torch.cat([p.grad.reshape(-1) for p in bucket]).mul_(scale)
        dist.all_reduce(flat)
        offset = 0
        for param in bucket:
            count = param.numel()
            param.grad.copy_(flat[offset : offset + count].view_as(param.grad))
            offset += count


def gather_to_main(obj: Any) -> list[Any] | None:
    """Every rank's ``obj`` on rank 0 (in rank order); None on the other ranks.

    Objects travel pickled between the job's own processes (``gather_object``); nothing is
    written. Not distributed: ``[obj]``.
    """
    if not is_distributed():
        return [obj]
    gathered: list[Any] | None = [None] * world_size() if is_main_process() else None
    dist.gather_object(obj, gathered, dst=0)
    return gathered
