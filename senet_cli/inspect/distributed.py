"""`inspect` over several processes or GPUs under torchrun: who takes which images, and how the
per-process gate statistics become one report.

torchrun (README, "Large datasets", has the command lines; several hosts work too)
starts one process per rank and sets RANK, WORLD_SIZE and LOCAL_RANK; the process group is
torch.distributed's, gloo on CPU and nccl on CUDA (each rank on its LOCAL_RANK GPU), with a
timeout so that a rank that dies cannot hang the others forever.

Work split (images.shard_positions): the images are listed in the same order on every rank and
rank r takes positions r, r + N, r + 2N, ...: every image exactly once, no padding duplicates
(unlike DistributedSampler).

Merge (`merge`): counts, histograms, below/above, non-finite, clamped and per-class sums are summed
with all_reduce (exact for the integer counts); minima and maxima reduced with MIN and MAX; per
channel means and centred sums of squares gathered and combined in rank order with the same Chan
et al. update the one-process accumulator uses batch by batch. Every rank ends with the merged
statistics; only rank 0 prints and writes.

Failure: a rank that raises (a bad image, out of memory) stops its own loop and says so in the
agreement every rank reaches at the end (`agree`), so the others finish their share and rank 0
reports the failure in one line instead of the group hanging in a collective.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from senet_cli.errors import ArgumentError, SenetError, first_line

if TYPE_CHECKING:
    from senet_cli.inspect.gates import GateAccumulator

TIMEOUT_S = 600.0
"""How long a rank waits for the others in a collective before the run fails. A rank that dies
outright does not wait this long: torchrun's agent sees its worker exit and stops the others with
SIGTERM within seconds (7 s measured on one loaded 2-core host, rank 1 of 2 killed with SIGKILL),
and gloo's peers see the closed connection. The timeout ends a run whose rank stays alive but
stops answering, or whose host vanishes without closing its connections."""

ENVIRONMENT = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class Group:
    """This process's place in the torchrun group."""

    backend: str
    rank: int
    world_size: int
    local_rank: int
    owned: bool  # whether inspect() created the process group (and so destroys it)


def wanted() -> bool:
    """True in a process torchrun started (its rank variables are set), or inside a process group
    the caller initialised."""
    import torch.distributed as dist

    started = all(name in os.environ for name in ENVIRONMENT)
    return started or (dist.is_available() and dist.is_initialized())


def join(device_type: str) -> Group:
    """This process's group: the one already initialised (by the caller's own script), else one made
    from torchrun's environment, gloo for CPU and nccl for CUDA."""
    import torch
    import torch.distributed as dist

    owned = not dist.is_initialized()
    if owned:
        backend = "nccl" if device_type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=timedelta(seconds=TIMEOUT_S))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device_type == "cuda":
        torch.cuda.set_device(local_rank)
    return Group(dist.get_backend(), dist.get_rank(), dist.get_world_size(), local_rank, owned)


def leave(group: Group) -> None:
    """Destroy the process group if inspect() created it."""
    import torch.distributed as dist

    if group.owned and dist.is_initialized():
        dist.destroy_process_group()


def agree(group: Group, failure: BaseException | None) -> None:
    """Wait for every rank; raise on every rank if any rank failed (the first failing rank's error).

    A collective every rank reaches whatever happened before it, so a failure on one rank becomes
    one error everywhere (rank 0 prints it) instead of a hang in the next collective.
    """
    import torch.distributed as dist

    reports: list[Any] = [None] * group.world_size
    dist.all_gather_object(reports, _report(failure))
    failed = [(rank, report) for rank, report in enumerate(reports) if report is not None]
    if isinstance(failure, SenetError) and not failed[0][0] == group.rank:
        pass  # another rank failed first: every rank raises that one, as rank 0 prints it
    elif isinstance(failure, SenetError):
        raise failure  # this rank's own, with its data (the CLI spells its arguments as flags)
    if failed:
        rank, report = failed[0]
        more = f" (and {len(failed) - 1} more)" if len(failed) > 1 else ""
        prefix = f"rank {rank} of {group.world_size} failed{more}: "
        if isinstance(report, tuple):  # an ArgumentError: rebuilt, so the CLI spells --strict, not strict=True
            template, arguments, fields = report
            raise ArgumentError(prefix.replace("{", "{{").replace("}", "}}") + template, arguments=arguments,
                                **fields)
        raise SenetError(prefix + report)


def _report(failure: BaseException | None) -> str | tuple[str, dict[str, Any], dict[str, Any]] | None:
    """What a rank tells the others of its failure: None, one line, or for an ArgumentError its
    template, arguments and fields as text, which any rank rebuilds into the same error."""
    if failure is None:
        return None
    if isinstance(failure, ArgumentError):
        fields = {key: value if isinstance(value, (int, float, bool)) or value is None else str(value)[:300]
                  for key, value in failure.fields.items()}  # numbers stay numbers: templates format them
        return failure.template, dict(failure.arguments), fields
    if isinstance(failure, SenetError):
        return first_line(failure, 300)
    return f"{type(failure).__name__}: {first_line(failure, 300)}"


def gather_counts(group: Group, count: int) -> list[int]:
    """Every rank's number of images, in rank order."""
    import torch.distributed as dist

    counts: list[Any] = [None] * group.world_size
    dist.all_gather_object(counts, count)
    return [int(c) for c in counts]


def gather_objects(group: Group, value: Any) -> list[Any]:
    """Every rank's `value` (any picklable object), in rank order."""
    import torch.distributed as dist

    values: list[Any] = [None] * group.world_size
    dist.all_gather_object(values, value)
    return values


def merge(group: Group, accumulators: list[GateAccumulator]) -> None:
    """Replace each accumulator's state by the merge over every rank (see the module doc)."""
    import torch
    import torch.distributed as dist

    for accumulator in accumulators:
        state = accumulator.state
        n = torch.tensor([float(accumulator.n)], dtype=torch.float64, device=state["mean"].device)
        gathered = {key: [torch.empty_like(state[key]) for _ in range(group.world_size)] for key in ("mean", "m2")}
        counts = [torch.empty_like(n) for _ in range(group.world_size)]
        dist.all_gather(counts, n)
        dist.all_gather(gathered["mean"], state["mean"])
        dist.all_gather(gathered["m2"], state["m2"])
        total, mean, m2 = 0.0, torch.zeros_like(state["mean"]), torch.zeros_like(state["m2"])
        for count, rank_mean, rank_m2 in zip(counts, gathered["mean"], gathered["m2"], strict=True):
            size = float(count)
            if size == 0:
                continue
            merged = total + size
            delta = rank_mean - mean
            mean = mean + delta * (size / merged)
            m2 = m2 + rank_m2 + delta**2 * (total * size / merged)
            total = merged
        state["mean"], state["m2"] = mean, m2
        accumulator.n = int(total)
        for key in ("below", "above", "nonfinite", "clamped", "histogram", "class_sum", "class_count"):
            dist.all_reduce(state[key], op=dist.ReduceOp.SUM)
        dist.all_reduce(state["min"], op=dist.ReduceOp.MIN)
        dist.all_reduce(state["max"], op=dist.ReduceOp.MAX)

