"""`calibrate()`: measure the machine it runs on, for the latency model of count/latency.py.

Every point is timed with torch.utils.benchmark's Timer (`timeit`: about `min_run_time` seconds
of calls, at least one; on CUDA it synchronises before and after, so a time is the work on the GPU,
launch included), in ROUNDS interleaved rounds (every point once, then every point again, ...),
and the median over the rounds is kept. On this project's shared 2-core VM the whole machine runs
about 40% slower for a second or two every ten or so (benchmarks/RESULTS.md); a point timed once,
however long, lands in such a window or not, and two calibrations then disagreed by up to 54% on
one point. Many short interleaved measurements put a minority of each point's rounds in slow
windows, and the median drops them. What is measured:

- the per-op cost: a chain of CHAIN tiny module calls, each an elementwise op on a 1-element tensor,
  timed as one run, / CHAIN, once per round. Dispatch, the module call and the launch, with next to
  no work.
- achieved bandwidth: a module computing `x * 2.0` (read once, write once, out of place as eager
  models do, into an output of its own: no page faults, which `fresh pages` below measures apart)
  on float tensors from 64 KiB (within any last-level cache) to 256 MiB (well past it);
  bandwidth = bytes / (median - per-op cost); and `x.mul_(1.0)` in place on 64 KiB to 64 MiB
  (`in_place`: an op writing where it reads fetches no new output, and ran 3-4x a copy's bandwidth
  on this project's CPU at 24.5 MiB).
- cold writes: the same `x * 2.0` on 64 KiB to 64 MiB, its output written slot after slot round a
  256 MiB pool (each output lands in memory not touched lately, as a network's new outputs do:
  looped alone, an op gets back the buffer it has just written, which is still in the caches), as
  bandwidth; the model charges each op's new output the difference per byte.
- cold reads: a sum over 64 KiB to 64 MiB, looped over one tensor (`read`) and over slot after slot
  of the same pool (`cold_read`): looped, an op reads an input the caches keep; in a network it
  reads what another op wrote once, which this project's Xeon does not keep in its L3: a 25 MiB
  tensor read right after it was written came from memory, as after a flush (from 1 to 8 MiB, part
  of the way: benchmarks/cold_reads.py). The model charges each input read once more than the
  cores' L2 was touched since (count's reuse distance against `cache_bytes`) the difference per
  byte. `cache_bytes` is the L2 of the cores the threads run on (Linux's sysfs; 0, no input charged,
  where it cannot be read) or a GPU's L2.
- pooling (a max pool and adaptive average pools), as bandwidth: these windowed kernels run far
  below a copy's bandwidth on a CPU;
- reductions (max and mean, over the map and over the channels, on each ResNet stage's feature
  map), as bandwidth: a max over the 49 positions of a 7x7 map or over 2048 channels runs at a
  fraction of a copy's bandwidth on a CPU, and CBAM and GE run several per block;
- batch norm (inference) on ResNet's stem and stage maps and on one-channel maps, and the product
  x * s with s constant over the map (SE's gating), as bandwidth: on a CPU both run a short loop per
  channel, several times slower per byte than a copy on a 7x7 map;
- activations and other elementwise math (count/latency.py POINTWISE_OPS: sigmoid, SiLU, hard-swish,
  GELU, tanh, softmax over rows of 784, ...) on 256 KiB and 4 MiB of a normal sample, one op each, as
  bandwidth: their arithmetic, not their bytes, sets their time on a CPU (on this project's EPYC
  SiLU took 3.5x a copy's time, Mish 32x);
- batched matrix products (torch.bmm): GC's context pooling per stage and a non-local block's, as
  compute: a matrix-vector product per image runs far below a linear layer's rate on a CPU;
- achieved compute: convolutions and matmuls of the shapes the zoo's models run at 224x224 (ResNet
  stems, 3x3 and 1x1 convs of each stage, SK's grouped and MobileNet's depthwise and pointwise
  convs, SE's and CBAM's small convs, classifier matmuls), at two batch sizes; rate = 2 x MACs /
  (median - per-op cost), the work's share never below half the median. MACs and bytes are
  count's own (the same module traced on the meta device), so the model charges an op by the
  figures it was calibrated with.
- the cold-op cost and the after-op fraction: five of ResNet-50's convs at batch 1, each followed
  by tiny ops of an attention block (a mean, a 1x1 conv on a 1x1 map, a sigmoid, a small batch
  norm, a max), each after the conv and a 1-element op in between, after every round
  (`cold_op_us`, over all, and `cold_op_us_by_group`, per group of op kinds: what the tiny op then
  takes beyond its time looped, the median over the rounds; on this project's EPYC 10-28 us over
  all, a 1x1 conv 23-40, a sigmoid 4-5, where the ops take 2-10 us looped: their code and the
  framework's data come back from far caches, and how far moves with the VM's neighbours); and,
  after the rounds, each conv followed by its batch norm (`after_op_fraction`: what the batch norm
  right after it takes beyond looped and beyond the cold-op cost, per second of the conv's time).
  The model charges the cold-op cost to each op no op of its name ran within `cache_bytes` of
  traffic before, and the fraction to each op for the op before it.
- fresh pages (profile/pages.py): after every round, a 32 MiB anonymous mapping made, filled and
  unmapped, less the same fill of memory already mapped, per page fault, the median over the rounds
  (`fresh_page_us_per_mib`; 350-520 us per MiB on this project's EPYC, six times a copy's time).
  Every measurement's minor page faults over its timed calls are counted (getrusage), and a point's
  median is over its rounds that took none (fault_free), or, where fewer than MIN_ROUNDS did, over
  every round less its faults at that cost; `senet profile` prices the faults it counts with it.
  `senet calibrate` first makes its process's glibc keep what it frees (pages.keep_freed_memory):
  the process the latency model predicts, where ops stop faulting after their first calls.
- the speed probe (profile/probe.py): a fixed matrix product after each round, its median kept as
  `probe_us`; `senet profile` times it again beside the models, and the ratio says how fast the
  machine ran then against now (a VM's speed moves by 10-25% between minutes).

The whole run takes 20-45 s on a CPU (the largest shapes dominate) and a few seconds on a GPU.
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

from senet_cli.count.latency import BYTES_KINDS, COLD_OP_GROUP_NAMES, POINTWISE_OPS, DeviceCalibration, RatePoint
from senet_cli.errors import ArgumentError, UnknownChoiceError
from senet_cli.profile.pages import FRESH_BYTES, FreshPages, allocator_text, fresh_page_cost, minor_faults
from senet_cli.profile.probe import PROBE_SECONDS, SpeedProbe, probe_text
from senet_cli.vocabulary import DEVICES, DTYPES

ROUNDS = 21
"""Most interleaved rounds per calibration: every point measured this many times, the median kept."""
MIN_ROUNDS = 3
"""Fewest rounds, whatever the time budget."""
CLEAN_SHARE = 0.01
"""A round whose page faults cost less than this share of its time counts as taken without faults
(fault_free)."""
BUDGET_S = 50.0
"""Seconds a calibration aims to finish in (issue 22: under a minute): rounds stop when the next would
pass it (at least MIN_ROUNDS)."""
CHAIN = 64
"""Tiny ops per timed run of the per-op cost."""

MEMORY_BYTES = tuple(2**k for k in (16, 18, 20, 22, 24, 26, 28))
"""Tensor sizes (bytes of the input) of the bandwidth points: 64 KiB to 256 MiB."""
COLD_BYTES = tuple(2**k for k in (16, 18, 20, 22, 24, 26))
"""Tensor sizes (bytes of the input) of the cold-write points: 64 KiB to 64 MiB (a network's outputs)."""
IN_PLACE_MAX_BYTES = 2**26
"""Largest in-place point: the copies' sizes up to 64 MiB (an in-place ReLU of ResNet-50's stem at
batch 8 writes 24.5 MiB)."""
COLD_POOL_BYTES = 2**28
"""Memory the cold-write points write into, slot after slot: 256 MiB, past the caches a write could
land in warm (on this project's CPU a copy's output rotated over 8 MiB ran 1.1-5x slower than warm,
over 64, 128 and 256 MiB alike 2.4-6x: then it comes from memory)."""

ConvShape = tuple[str, int, int, int, int, int, int]
"""(label, in channels, out channels, kernel, stride, groups, input side)."""
CONV_SHAPES: tuple[ConvShape, ...] = (
    ("stem 7x7/2 3->64 @224", 3, 64, 7, 2, 1, 224),
    ("3x3 64->64 @56", 64, 64, 3, 1, 1, 56),
    ("3x3 128->128 @28", 128, 128, 3, 1, 1, 28),
    ("3x3 256->256 @14", 256, 256, 3, 1, 1, 14),
    ("3x3 512->512 @7", 512, 512, 3, 1, 1, 7),
    ("1x1 64->256 @56", 64, 256, 1, 1, 1, 56),
    ("1x1 256->64 @56", 256, 64, 1, 1, 1, 56),
    ("1x1 512->128 @28", 512, 128, 1, 1, 1, 28),
    ("1x1 1024->256 @14", 1024, 256, 1, 1, 1, 14),
    ("1x1 2048->512 @7", 2048, 512, 1, 1, 1, 7),
    ("1x1 128->512 @28", 128, 512, 1, 1, 1, 28),  # the expanding 1x1 (conv3) of each stage
    ("1x1 256->1024 @14", 256, 1024, 1, 1, 1, 14),
    ("1x1 512->2048 @7", 512, 2048, 1, 1, 1, 7),
    ("1x1/2 256->512 @56 (downsample)", 256, 512, 1, 2, 1, 56),  # strided: a sparse read, slower per MAC
    ("1x1/2 512->1024 @28 (downsample)", 512, 1024, 1, 2, 1, 28),
    ("1x1/2 1024->2048 @14 (downsample)", 1024, 2048, 1, 2, 1, 14),
    ("3x3/2 128->128 @56", 128, 128, 3, 2, 1, 56),  # ResNet v1.5's strided 3x3
    ("3x3/2 256->256 @28", 256, 256, 3, 2, 1, 28),
    ("1x1 24->96 @28 (MobileNet)", 24, 96, 1, 1, 1, 28),
    ("1x1 72->24 @28 (MobileNetV3 projection)", 72, 24, 1, 1, 1, 28),  # few output channels: a width of 24
    ("1x1 96->576 @7 (MobileNet)", 96, 576, 1, 1, 1, 7),
    ("3x3 g32 128->128 @56 (SK, ResNeXt)", 128, 128, 3, 1, 32, 56),
    ("dw 3x3 96 @56 (MobileNet)", 96, 96, 3, 1, 96, 56),
    ("dw 5x5 240 @28 (EfficientNet)", 240, 240, 5, 1, 240, 28),
    ("dw 3x3 672 @14", 672, 672, 3, 1, 672, 14),
    ("dw 3x3/2 72 @56 (MobileNetV3)", 72, 72, 3, 2, 72, 56),  # strided depthwise: 2-3x slower per MAC
    ("dw 5x5/2 144 @56 (EfficientNet)", 144, 144, 5, 2, 144, 56),
    ("1x1 256->16 @1 (SE excitation)", 256, 16, 1, 1, 1, 1),  # on a 1x1 map: with a bias, as SE's convs
    ("1x1 2048->128 @1 (SE excitation)", 2048, 128, 1, 1, 1, 1),
    ("1x1 96->24 @1 (MobileNet SE)", 96, 24, 1, 1, 1, 1),
    ("7x7 2->1 @56 (CBAM spatial)", 2, 1, 7, 1, 1, 56),  # at each stage's size: a fixed cost dominates
    ("7x7 2->1 @28 (CBAM spatial)", 2, 1, 7, 1, 1, 28),
    ("7x7 2->1 @14 (CBAM spatial)", 2, 1, 7, 1, 1, 14),
    ("7x7 2->1 @7 (CBAM spatial)", 2, 1, 7, 1, 1, 7),
)
LINEAR_SHAPES: tuple[tuple[str, int, int], ...] = (
    ("linear 512->1000", 512, 1000),
    ("linear 2048->1000", 2048, 1000),
    ("linear 256->16 (SE with nn.Linear)", 256, 16),
    ("linear 1024->1000 (MobileNetV3)", 1024, 1000),
)
POOL_SHAPES: tuple[tuple[str, int, int, str], ...] = (
    ("max pool 3x3/2 64 @112 (ResNet stem)", 64, 112, "max"),
    ("adaptive avg pool 256 @56 -> 1 (SE squeeze)", 256, 56, "avg"),
    ("adaptive avg pool 2048 @7 -> 1 (head)", 2048, 7, "avg"),
)
"""(label, channels, input side, max or avg): pooling, kinds of their own (count/latency.py KINDS)."""
REDUCE_MAPS: tuple[tuple[int, int], ...] = ((256, 56), (512, 28), (1024, 14), (2048, 7))
"""(channels, side) of the feature maps the reductions run on: ResNet-50's four stages."""
REDUCTIONS: tuple[tuple[str, str, tuple[int, ...]], ...] = (
    ("max_reduce", "amax", (2, 3)), ("max_reduce", "amax", (1,)),
    ("sum_reduce", "mean", (2, 3)), ("sum_reduce", "mean", (1,)),
)
"""(kind, torch method, dims): over the map (SE's squeeze, CBAM's channel half) and over the
channels (CBAM's and Triplet's channel pool)."""
BATCH_NORM_MAPS: tuple[tuple[int, int], ...] = ((64, 112), (256, 56), (512, 28), (1024, 14), (2048, 7), (1, 56), (1, 7))
"""(channels, side) of the batch norms timed: ResNet's stem and stage outputs, and the one-channel
maps of CBAM's spatial gate (a fixed cost of its own dominates there)."""
CHANNEL_MAPS: tuple[tuple[int, int], ...] = ((256, 56), (512, 28), (1024, 14), (2048, 7))
"""(channels, side) of the per-channel products timed (x * s, s of shape N x C x 1 x 1: SE's gating)."""
BMM_SHAPES: tuple[tuple[str, int, int, int], ...] = (
    ("GC context 256 @56", 256, 3136, 1), ("GC context 512 @28", 512, 784, 1),
    ("GC context 1024 @14", 1024, 196, 1), ("GC context 2048 @7", 2048, 49, 1),
    ("non-local affinity 196x256 @14", 196, 256, 196), ("non-local output 196x196 @14", 196, 196, 256),
)
"""(label, M, K, N): batched products [batch, M, K] x [batch, K, N]: GC's context pooling (a
matrix-vector product per image, over each ResNet-50 stage's map) and a non-local block's two."""
POINTWISE_BYTES = (2**18, 2**22)
"""Tensor sizes of the pointwise points: 256 KiB (within a core's L2) and 4 MiB (past it)."""
SOFTMAX_ROW = 784
"""Elements per row of the `_softmax` points (a 28x28 map: GC's and a non-local block's softmax run
over a map's positions)."""
AFTER_OP_PAIRS: tuple[tuple[str, int, int, int, int], ...] = (
    ("3x3 64->64 @56", 64, 64, 3, 56), ("3x3 128->128 @28", 128, 128, 3, 28), ("3x3 256->256 @14", 256, 256, 3, 14),
    ("3x3 512->512 @7", 512, 512, 3, 7), ("1x1 256->1024 @14", 256, 1024, 1, 14),
)
"""(label, in, out, kernel, side) of the convs whose batch norm is timed right after them, at batch 1,
as in ResNet-50's blocks: what the batch norm then takes beyond its time looped alone, per second of
the conv's, is the after-op fraction (DeviceCalibration.forward_predictor)."""
AFTER_OP_REPEATS = 15
"""Times each pair runs: the medians of the three times are kept."""
COLD_OP_REPEATS = 3
"""Times each (conv, tiny op) runs in each round for the cold-op cost (cold_op_seconds), whose median
over the rounds is kept (about 0.2 s a round on this project's EPYC): measured once at the end, in
2-3 s, six calibrations gave 13.8-26.9 us there, one op's share moving 14.6 -> 23.0 us within 10 s;
measured after every round, 10.2-28.4 us in five (the VM's neighbours move it)."""
DEFAULT_BATCHES = dict(zip(DEVICES, ((1, 8), (1, 64)), strict=True))  # per device: cpu, cuda


def calibrate(
    device: str = "cpu",
    *,
    threads: int | None = None,
    dtype: str = "float32",
    batches: Sequence[int] | None = None,
    min_run_time: float = 0.01,
    rounds: int = ROUNDS,
    budget_s: float = BUDGET_S,
    conv_shapes: Sequence[ConvShape] = CONV_SHAPES,
    linear_shapes: Sequence[tuple[str, int, int]] = LINEAR_SHAPES,
    memory_bytes: Sequence[int] = MEMORY_BYTES,
    cold_bytes: Sequence[int] = COLD_BYTES,
    read_bytes: Sequence[int] | None = None,
    in_place_bytes: Sequence[int] | None = None,
    cold_pool_bytes: int = COLD_POOL_BYTES,
    reduce_maps: Sequence[tuple[int, int]] = REDUCE_MAPS,
    batch_norm_maps: Sequence[tuple[int, int]] = BATCH_NORM_MAPS,
    channel_maps: Sequence[tuple[int, int]] = CHANNEL_MAPS,
    bmm_shapes: Sequence[tuple[str, int, int, int]] = BMM_SHAPES,
    pointwise_ops: Sequence[str] = POINTWISE_OPS,
    pointwise_bytes: Sequence[int] = POINTWISE_BYTES,
    after_op_pairs: Sequence[tuple[str, int, int, int, int]] = AFTER_OP_PAIRS,
    speed_probe: bool = True,
    on_step: Callable[[int, int], None] | None = None,
) -> DeviceCalibration:
    """Measure this machine's per-op cost, bandwidth by size and compute rate by shape (module doc).

    device: "cpu" or "cuda"; threads: torch's CPU threads (default: torch's); dtype: a DTYPES name
    (the latency model predicts only in the dtype it was calibrated in); batches: the batch sizes
    each compute shape runs at (default 1 and 8 on CPU, 1 and 64 on CUDA); memory_bytes and cold_bytes:
    the input sizes of the warm and the cold-write copies (empty cold_bytes: no cold_write point, no
    output pays for cold memory); read_bytes: the sizes of the read and cold-read sums (default: the
    cold writes' sizes; empty, or empty cold_bytes: none, no input pays for being read cold);
    cold_pool_bytes: the memory the cold writes and reads go round (at least twice the largest);
    in_place_bytes: the sizes of the in-place points, `x.mul_(1.0)` (default: memory_bytes' up to
    64 MiB; empty: none, in-place ops take the copies' bandwidth);
    min_run_time: seconds
    per measurement (at least one call); rounds: the most times every point is measured,
    interleaved (round 1 measures every point, then round 2 ...), its median over the rounds kept;
    budget_s: no round is started that would end past this many seconds from the start (rounds
    then stop early, never below MIN_ROUNDS or `rounds`, whichever is smaller);
    reduce_maps: the (channels, side) feature maps the reductions run on (empty: none, the memory
    points stand in); batch_norm_maps and channel_maps: those batch norm and the per-channel product
    run on (empty: none); bmm_shapes: the batched products (empty: none); pointwise_ops and
    pointwise_bytes: the activations timed one by one (POINTWISE_OPS' names) and their sizes (either
    empty: none, every activation takes a copy's bandwidth); after_op_pairs: the convs
    each followed by its batch norm, for the after-op fraction (empty: none, 0); speed_probe: time
    profile/probe.py's fixed op after each round (False: none, `probe_us` 0). on_step(done, total)
    reports progress.
    """
    if dtype not in DTYPES:
        raise UnknownChoiceError("dtype", dtype, DTYPES)
    if not min_run_time > 0:
        raise ArgumentError("min_run_time must be positive, got {value}", arguments=(), value=min_run_time)
    if rounds < 1:
        raise ArgumentError("rounds must be at least 1, got {value}", arguments=(), value=rounds)
    from senet_cli.profile.timing import Timing

    Timing(device=device, dtype=dtype, threads=threads)  # refuses a bad device name or thread count
    import torch
    from torch import nn

    from senet_cli.profile import harness

    started = time.perf_counter()
    load_before = _load_average()
    torch_device = harness.prepare(Timing(device=device, dtype=dtype, threads=threads))
    torch_dtype = getattr(torch, dtype)
    batches = tuple(batches or DEFAULT_BATCHES[torch_device.type])
    size = torch.finfo(torch_dtype).bits // 8

    def ones(*shape: int) -> Any:
        return torch.ones(shape, device=torch_device, dtype=torch_dtype)

    def randn(*shape: int) -> Any:
        return torch.randn(shape, device=torch_device, dtype=torch_dtype)

    def ready(module: Any) -> Any:
        return module.to(device=torch_device, dtype=torch_dtype).eval()

    jobs: list[_Job] = [_Job("memory", f"x * 2.0, {nbytes / 2**20:g} MiB", _ScaleInto(ones(max(nbytes // size, 1))),
                             ones(max(nbytes // size, 1)), counted=_Scale()) for nbytes in memory_bytes]
    if in_place_bytes is None:
        in_place_bytes = [nbytes for nbytes in memory_bytes if nbytes <= IN_PLACE_MAX_BYTES]
    jobs += [_Job("in_place", f"x.mul_(1.0), {nbytes / 2**20:g} MiB", _ScaleInPlace(), ones(max(nbytes // size, 1)))
             for nbytes in in_place_bytes]
    read_bytes = tuple(cold_bytes if read_bytes is None else read_bytes) if cold_bytes else ()  # round the same pool
    pool_bytes = max(cold_pool_bytes, 2 * max((*cold_bytes, *read_bytes))) if cold_bytes else 0
    if cold_bytes:
        # touched here, zeroed, so that no timed write is a page's first
        cold_pool = torch.zeros(pool_bytes // size, device=torch_device, dtype=torch_dtype)
        for nbytes in cold_bytes:
            elements = max(nbytes // size, 1)
            jobs.append(_Job("cold_write", f"x * 2.0 into cold memory, {nbytes / 2**20:g} MiB",
                             _ColdScale(cold_pool, elements), ones(elements), counted=_Scale()))
        for nbytes in read_bytes:
            elements = max(nbytes // size, 1)
            jobs.append(_Job("read", f"x.sum(), {nbytes / 2**20:g} MiB", _Sum(), ones(elements)))
            jobs.append(_Job("cold_read", f"x.sum() of cold memory, {nbytes / 2**20:g} MiB",
                             _ColdSum(cold_pool, elements), ones(elements), counted=_Sum()))
    for op in pointwise_ops:
        for nbytes in pointwise_bytes:
            elements = max(nbytes // size, 1)
            shape = (max(elements // SOFTMAX_ROW, 1), SOFTMAX_ROW) if op == "_softmax" else (elements,)
            jobs.append(_Job("pointwise", f"{op}, {nbytes / 2**20:g} MiB", _Pointwise(op), randn(*shape), op=op))
    for batch in batches:
        first = len(jobs)
        for label, cin, cout, kernel, stride, groups, side in conv_shapes:
            conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=side == 1)
            jobs.append(_Job("conv", f"conv {label}, batch {batch}", ready(conv), randn(batch, cin, side, side)))
        for label, channels, side, how in POOL_SHAPES:
            pool = nn.MaxPool2d(3, 2, 1) if how == "max" else nn.AdaptiveAvgPool2d(1)
            jobs.append(_Job(f"{how}_pool", f"{label}, batch {batch}", pool, randn(batch, channels, side, side)))
        for channels, side in reduce_maps:
            x = randn(batch, channels, side, side)
            for kind, method, dims in REDUCTIONS:
                over = "the map" if dims == (2, 3) else "the channels"
                jobs.append(_Job(kind, f"{method} over {over}, {channels} @{side}, batch {batch}",
                                 _Reduce(method, dims), x))
        for label, fin, fout in linear_shapes:
            jobs.append(_Job("matmul", f"{label}, batch {batch}", ready(nn.Linear(fin, fout)), randn(batch, fin)))
        for label, rows, inner, columns in bmm_shapes:
            jobs.append(_Job("bmm", f"bmm {label}, batch {batch}", ready(_FixedOperand("bmm", batch, inner, columns)),
                             randn(batch, rows, inner)))
        for channels, side in batch_norm_maps:
            jobs.append(_Job("batch_norm", f"batch norm {channels} @{side}, batch {batch}",
                             ready(nn.BatchNorm2d(channels)), randn(batch, channels, side, side)))
        for channels, side in channel_maps:
            jobs.append(_Job("channelwise", f"x * s (s: N x {channels} x 1 x 1) @{side}, batch {batch}",
                             ready(_FixedOperand("mul", batch, channels, 1, 1)), randn(batch, channels, side, side)))
        jobs[first:] = [replace(job, batch=batch) for job in jobs[first:]]

    tiny = ones(1)
    chain = nn.Sequential(*(_Scale() for _ in range(CHAIN)))
    timed = [_Job("per-op cost", "chain", chain, tiny), *jobs]
    pairs = [(ready(nn.Conv2d(cin, cout, kernel, 1, kernel // 2, bias=False)), randn(1, cin, side, side),
              ready(nn.BatchNorm2d(cout))) for _, cin, cout, kernel, side in after_op_pairs]
    cold_ops = [(group, ready(module), randn(*shape)) for group, module, shape in _cold_op_modules()]
    total = len(timed) * (1 + rounds) + len(pairs)
    done = 0

    said = (0, 0)  # the last (done, total) reported

    def advance() -> None:
        nonlocal done, said
        done += 1
        said = (done, total)
        if on_step is not None:
            on_step(*said)

    def more(done_rounds: int, round_s: float) -> bool:
        """Whether to run another round; the progress total then counts the rounds the budget leaves
        (so a run the budget stops says "finished" at its true end, not at half of every round)."""
        nonlocal total
        left = budget_s - (time.perf_counter() - started)
        affordable = done_rounds + (int(left // round_s) if round_s > 0 else rounds)
        planned = min(rounds, max(min(MIN_ROUNDS, rounds), affordable))
        total = len(timed) * (1 + planned) + len(pairs)
        return done_rounds < planned

    probe = SpeedProbe(torch_device, torch_dtype) if speed_probe else None
    longs = [(conv, x) for conv, x, _ in pairs]
    cold_samples: list[tuple[float, dict[str, float]]] = []  # one per round: the VM's far caches move with its
    # neighbours

    fresh_samples: list[FreshPages] = []  # what a page fault costs, one per round (CPU only)

    def after_round() -> None:
        if probe is not None:
            probe.measure()
        if torch_device.type == "cpu":
            if (sample := fresh_page_cost(repeats=1)).bytes_per_fault:
                fresh_samples.append(sample)
        if longs and cold_ops:
            cold_samples.append(cold_op_seconds(longs, cold_ops, (_Scale(), tiny), COLD_OP_REPEATS))

    if longs and cold_ops:  # warm-up: the tiny ops' kernels chosen, their buffers allocated
        cold_op_seconds(longs, cold_ops, (_Scale(), tiny), 1)
    faults: list[list[float]] = []
    times = time_interleaved([(job.module, job.x) for job in timed], seconds=min_run_time, rounds=rounds,
                             on_call=advance, more=more, after_round=after_round, faults=faults)
    done_rounds = len(times[0])
    fresh = FreshPages(statistics.median(s.seconds_per_fault for s in fresh_samples),
                       statistics.median(s.bytes_per_fault for s in fresh_samples)) if fresh_samples else None
    times = [fault_free(measured, pages, fresh.seconds_per_fault if fresh else 0.0)
             for measured, pages in zip(times, faults, strict=True)]
    total = done + len(pairs)  # what is left: the pairs
    cold_op_s = statistics.median(every for every, _ in cold_samples) if cold_samples else 0.0
    cold_groups = {group: statistics.median(groups[group] for _, groups in cold_samples)
                   for group in COLD_OP_GROUP_NAMES if cold_samples and group in cold_samples[0][1]}
    fraction = after_op_fraction(pairs, AFTER_OP_REPEATS, cold_groups.get("batch_norm", cold_op_s),
                                 on_pair=advance) if pairs else 0.0
    if on_step is not None and said != (done, total):  # the budget stopped the rounds: their end, said once
        on_step(done, total)
    op_costs = [time_us / CHAIN for time_us in times[0]]
    times = times[1:]
    op_cost = statistics.median(op_costs)
    points = [_point(job, measured, op_cost) for job, measured in zip(jobs, times, strict=True)]
    name = torch.cuda.get_device_name(torch_device) if torch_device.type == "cuda" else _cpu_name()
    return DeviceCalibration(
        device=torch_device.type, name=name, dtype=dtype, threads=torch.get_num_threads(), op_cost_us=op_cost,
        points=tuple(points), torch_version=torch.__version__,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        seconds=time.perf_counter() - started, load_before=load_before, load_after=_load_average(),
        cpu_count=os.cpu_count() or 0, rounds=done_rounds, after_op_fraction=fraction, cold_op_us=cold_op_s * 1e6,
        cold_op_us_by_group=tuple((group, seconds * 1e6) for group, seconds in cold_groups.items()),
        cache_bytes=_private_cache_bytes(torch_device, torch.get_num_threads()),
        fresh_page_us_per_mib=fresh.us_per_mib if fresh else 0.0,
        probe_us=0.0 if probe is None else probe.median_us or 0.0,
        method=(f"torch.utils.benchmark Timer.timeit, about {min_run_time} s of calls per measurement, every point "
                f"measured in {done_rounds} interleaved rounds (at most {rounds}, budget {budget_s:g} s), each on a "
                "fresh copy of its module and input, the median over the rounds (spread: (max - min) / median of the "
                "rounds); "
                f"per-op cost: a chain of {CHAIN} module calls x * 2.0 on a 1-element tensor / {CHAIN}, once per "
                f"round; bandwidth: x * 2.0 (read + write) on {len(memory_bytes)} sizes"
                + (f", x.mul_(1.0) in place on {len(in_place_bytes)} (in_place)" if in_place_bytes else "")
                + (f", and on {len(cold_bytes)} with its output written slot after slot round a "
                   f"{pool_bytes / 2**20:g} MiB pool (cold_write)" if cold_bytes else "")
                + (f"; reads: x.sum() on {len(read_bytes)} sizes, looped (read) and over slot after slot of the same "
                   "pool (cold_read); cache_bytes: the L2 of one core (Linux sysfs) x the threads, or the GPU's L2"
                   if read_bytes else "")
                + (f"; pointwise: {len(pointwise_ops)} activations ({', '.join(pointwise_ops)}; _softmax over rows of "
                   f"{SOFTMAX_ROW}) on {len(pointwise_bytes)} sizes of a normal sample, out of place"
                   if pointwise_ops and pointwise_bytes else "")
                + f"; compute: {len(conv_shapes)} "
                f"conv and {len(linear_shapes)} linear shapes of the zoo's models, max and mean over the map and over "
                f"the channels of {len(reduce_maps)} feature maps, batch norm on {len(batch_norm_maps)} and x * s "
                f"(s: N x C x 1 x 1) on {len(channel_maps)}, {len(bmm_shapes)} batched products, at batch "
                f"{', '.join(map(str, batches))}; "
                "rates after the per-op cost is taken off; macs and bytes as senet count counts them; cold-op "
                f"cost: {len(cold_ops) if pairs else 0} tiny ops (a mean, a 1x1 conv on a 1x1 map, a sigmoid, a batch "
                f"norm, a max) each timed {COLD_OP_REPEATS} times after each of the convs below and a 1-element "
                "x * 2.0 and right after itself, after each round: the median over (conv, tiny op) of the median "
                "difference, over all and per group of kinds (compute: the conv; reduction: the mean and the max; "
                "batch_norm; elementwise: the sigmoid), the median over the rounds; after-op "
                f"fraction: {len(pairs)} convs of ResNet-50 at batch 1, each followed by its batch norm, "
                f"{AFTER_OP_REPEATS} times: (median batch norm right after the conv - median batch norm right after "
                "itself - the batch norm's cold-op cost) / median conv, the median over the convs"
                + ("; fresh pages: an anonymous mapping of "
                   f"{FRESH_BYTES / 2**20:g} MiB made, filled and unmapped, less the same fill of mapped memory, "
                   "per fault, after each round, the median over the rounds; every measurement's minor page faults "
                   "over its timed calls (getrusage): a point's median is over its rounds without faults "
                   f"(their cost under {CLEAN_SHARE:.0%} of the time) when at least {MIN_ROUNDS} are, else over "
                   f"every round less its faults at that cost per fault; allocator: {allocator_text()}"
                   if fresh else "")
                + ("" if probe is None else f"; speed probe: {probe_text(torch_device.type)}, about "
                   f"{PROBE_SECONDS} s of calls after each round, the median over the rounds (senet profile times it "
                   "again beside the models: its time then / this one is the machine's speed against the "
                   "calibration's)")),
    )


def time_interleaved(calls: Sequence[tuple[Any, Any]], *, seconds: float, rounds: int,
                     more: Callable[[int, float], bool] | None = None,
                     on_call: Callable[[], None] | None = None,
                     after_round: Callable[[], object] | None = None,
                     faults: list[list[float]] | None = None) -> list[list[float]]:
    """Microseconds per call of each `module(x)` in `calls`, one list per call with one time per round.

    Each call is warmed up once (allocator, kernel choice) and timed once, which fixes how many calls
    one measurement makes (about `seconds` of them, at least one); then round after round every call
    is measured once with torch.utils.benchmark's `Timer.timeit` (interleaved: a slow second on a
    shared machine slows one round of each call, not every round of some). Every round measures a
    fresh copy of the module and of its input (Timer's own warm-up calls it first): where a tensor lands
    in memory moves a point's time for as long as the tensor lives (on this project's VM one mean
    over a 512x28x28 map took 50 us in one calibration and 31 us in the next, steady within each),
    so one placement per run made two runs disagree by up to 2x on a point; a new placement each
    round puts that variation inside the rounds, where the median takes it. Every measurement runs on
    torch's current thread count (Timer's own default is one thread, whatever the caller set).
    `more(rounds done, last round's seconds)` returning False stops before `rounds`; `on_call()`
    follows each warm-up and each measurement; `after_round()` runs after each round (calibrate's
    speed probe and cold-op cost), its time counted in the round's seconds `more` is given, so that a
    budget holds it. `faults`, when given a list, gets one list per call, in step with the times: the
    minor page faults per timed call of each measurement (pages/getrusage, read as Timer's timed loop
    starts and after it: Timer's warm-up calls, which fault a fresh copy's buffers in, are not counted;
    empty lists where the platform counts none). Runs under inference_mode."""
    import copy

    import torch

    from senet_cli.profile.probe import benchmark_timer

    Timer = benchmark_timer()
    threads = torch.get_num_threads()

    marks: list[int] = []  # the fault count as each timed loop starts (Timer runs `setup` before each, warm-up too)
    counted = faults is not None and minor_faults() is not None

    def timer(module: Any, x: Any) -> Any:
        return Timer("module(x)", setup="marks.append(minor_faults())" if counted else "pass", num_threads=threads,
                     globals={"module": module, "x": x, "marks": marks, "minor_faults": minor_faults})

    numbers: list[int] = []
    times: list[list[float]] = [[] for _ in calls]
    if faults is not None:
        faults[:] = [[] for _ in calls]
    with torch.inference_mode():
        for module, x in calls:
            module(x)
            once = timer(module, x).timeit(1).median
            numbers.append(max(1, round(seconds / max(once, 1e-9))))
            if on_call is not None:
                on_call()
        current = list(calls)
        for done_rounds in range(1, rounds + 1):
            round_started = time.perf_counter()
            for index, (number, measured) in enumerate(zip(numbers, times, strict=True)):
                module, x = current[index]
                current[index] = module, x = copy.deepcopy(module), x.clone()  # the old copies are freed here
                measured.append(timer(module, x).timeit(number).median * 1e6)
                if counted and faults is not None:  # the timed calls' faults: since the last loop started
                    faults[index].append(((minor_faults() or 0) - marks[-1]) / number)
                    marks.clear()
                if on_call is not None:
                    on_call()
            if after_round is not None:
                after_round()
            round_s = time.perf_counter() - round_started
            if more is not None and not more(done_rounds, round_s):
                break
    return times


def fault_free(times_us: Sequence[float], faults: Sequence[float], fault_s: float) -> list[float]:
    """A point's round times without what page faults added: the rounds whose faults (`faults`, minor
    faults per call, in step with the times; empty: none counted) cost under CLEAN_SHARE of their time
    at `fault_s` seconds a fault, when at least MIN_ROUNDS of them are (or every round is); else every
    round less its faults' cost, never below a tenth of its time. A fault's cost inside an op is not
    a fresh mapping's: a depthwise conv at batch 8 paid about 1.5x what `fresh_page_cost` measured
    (its oneDNN reorders fault in their buffers too), so the subtraction is the fallback and rounds
    that took no faults are the measure."""
    if not faults or not fault_s:
        return list(times_us)
    costs = [pages * fault_s * 1e6 for pages in faults]
    clean = [time_us for time_us, cost in zip(times_us, costs, strict=True) if cost < CLEAN_SHARE * time_us]
    if len(clean) >= min(MIN_ROUNDS, len(times_us)):
        return clean
    return [max(time_us - cost, time_us * 0.1) for time_us, cost in zip(times_us, costs, strict=True)]


def _timed(module: Any, x: Any) -> tuple[float, Any]:
    """Seconds of one `module(x)` (a CUDA device synchronised before and after) and its output."""
    import torch

    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)
    started = time.perf_counter()
    out = module(x)
    if x.device.type == "cuda":
        torch.cuda.synchronize(x.device)
    return time.perf_counter() - started, out


def cold_op_seconds(longs: Sequence[tuple[Any, Any]], tiny: Sequence[tuple[str, Any, Any]], warm: tuple[Any, Any],
                    repeats: int) -> tuple[float, dict[str, float]]:
    """What an op takes beyond its time looped alone when no op of its kind ran lately: each (group,
    module, input) of `tiny` runs `repeats` times after each (long op, input) of `longs` and `warm`
    (another op, so that what every op runs is warm again), and right after itself. Returns the
    median over every (long op, tiny op) of (the median after the long op - the median after
    itself), and the same median per group (the tiny ops' COLD_OP_GROUP_NAMES), each never below 0."""
    import torch

    extras: dict[str, list[float]] = {}
    with torch.inference_mode():
        for long, x in longs:
            for group, module, y in tiny:
                after, looped = [], []
                for _ in range(repeats):
                    long(x)
                    warm[0](warm[1])
                    after.append(_timed(module, y)[0])
                    looped.append(_timed(module, y)[0])
                extras.setdefault(group, []).append(statistics.median(after) - statistics.median(looped))
    every = [extra for found in extras.values() for extra in found]
    return (max(0.0, statistics.median(every)) if every else 0.0,
            {group: max(0.0, statistics.median(found)) for group, found in extras.items()})


def after_op_fraction(pairs: Sequence[tuple[Any, Any, Any]], repeats: int, cold_op_s: float = 0.0,
                      on_pair: Callable[[], None] | None = None) -> float:
    """What the op right after a long op takes beyond its time looped alone and beyond the cold-op
    cost `cold_op_s` (cold_op_seconds), per second of the long op's time: each (conv, its input,
    batch norm) of `pairs` runs `repeats` times as conv, batch norm of its output, the same batch
    norm again (each timed); per pair, (the median batch norm after the conv - the median batch norm
    after itself - cold_op_s) / the median conv; the median over the pairs, never below 0.
    `on_pair()` follows each pair."""
    import torch

    fractions = []
    with torch.inference_mode():
        for conv, x, norm in pairs:
            norm(conv(x))  # allocator, kernel choice
            long, after, alone = [], [], []
            for _ in range(repeats):
                seconds, out = _timed(conv, x)
                long.append(seconds)
                after.append(_timed(norm, out)[0])
                alone.append(_timed(norm, out)[0])
            fractions.append((statistics.median(after) - statistics.median(alone) - cold_op_s)
                             / statistics.median(long))
            if on_pair is not None:
                on_pair()
    return max(0.0, statistics.median(fractions)) if fractions else 0.0


@dataclass(frozen=True)
class _Job:
    """One point to measure: its kind and label, the module and its input (on the device)."""

    kind: str
    label: str
    module: Any
    x: Any
    batch: int = 0  # the batch the shape runs at (0: none, the memory points)
    counted: Any = None  # the module count traces for the point's MACs and bytes, when not `module` itself
    op: str = ""  # the op a pointwise point measures, as count traces it


class _Scale:
    """A module computing x * 2.0: one elementwise op, out of place (built lazily, so torch loads late)."""

    def __new__(cls) -> Any:
        from torch import nn

        class Scale(nn.Module):
            def forward(self, x: Any) -> Any:
                return x * 2.0

        return Scale()


class _ScaleInto:
    """A module computing x * 2.0 into an output tensor of its own (`out`, touched when made), as an
    op whose allocator hands it back the buffer it freed: on a CPU with glibc an output of 32 MiB
    or more is otherwise mapped fresh on every call, and the copy's time is then mostly page faults
    (64 MiB on this project's EPYC: 30 ms where the copy takes 5.5), which the fresh-page cost
    charges apart (profile/pages.py). Built lazily, as _Scale."""

    def __new__(cls, out: Any) -> Any:
        import torch
        from torch import nn

        class ScaleInto(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.register_buffer("out", out)

            def forward(self, x: Any) -> Any:
                return torch.mul(x, 2.0, out=self.get_buffer("out"))

        return ScaleInto()


class _ColdScale:
    """A module computing x * 2.0 (x of `elements` elements) into the next `elements`-sized slot of
    `pool`, round the pool: each call's output lands in memory last written a pool's worth of writes
    before (COLD_POOL_BYTES), as a network's new outputs land in memory other ops touched since. The
    slots are cut once, here, and the call only picks the next, so that it does no more than the
    warm copy's `x * 2.0` besides writing elsewhere (the charge is the difference: slicing and a
    module attribute set on every call cost 4-8 us, which read as cold memory at 64 KiB). A deep copy
    (calibrate's fresh copy each round) shares the pool and goes on from the slot the last one reached.
    Built lazily, as _Scale."""

    def __new__(cls, pool: Any, elements: int) -> Any:
        import torch
        from torch import nn

        slots = [pool[start:start + elements] for start in range(0, pool.numel() - elements + 1, elements)]
        turn = [0]  # the next slot, shared by the copies

        class ColdScale(nn.Module):
            def forward(self, x: Any) -> Any:
                out = slots[turn[0]]
                turn[0] = (turn[0] + 1) % len(slots)
                return torch.mul(x, 2.0, out=out)

            def __deepcopy__(self, memo: dict[int, Any]) -> Any:
                return type(self)()

        return ColdScale()


class _ScaleInPlace:
    """A module computing x.mul_(1.0): one elementwise op writing where it reads, as an in-place ReLU
    does (built lazily, as _Scale)."""

    def __new__(cls) -> Any:
        from torch import nn

        class ScaleInPlace(nn.Module):
            def forward(self, x: Any) -> Any:
                return x.mul_(1.0)

        return ScaleInPlace()


class _Sum:
    """A module computing x.sum(): a read of x and next to no write (built lazily, as _Scale)."""

    def __new__(cls) -> Any:
        from torch import nn

        class Sum(nn.Module):
            def forward(self, x: Any) -> Any:
                return x.sum()

        return Sum()


class _ColdSum:
    """A module computing the sum of the next `elements`-sized slot of `pool`, round the pool (its
    input x is ignored): each call reads memory last touched a pool's worth of traffic before, as a
    network's ops read what other ops wrote once. Slots cut once, shared by deep copies, as
    _ColdScale's."""

    def __new__(cls, pool: Any, elements: int) -> Any:
        from torch import nn

        slots = [pool[start:start + elements] for start in range(0, pool.numel() - elements + 1, elements)]
        turn = [0]

        class ColdSum(nn.Module):
            def forward(self, x: Any) -> Any:
                slot = slots[turn[0]]
                turn[0] = (turn[0] + 1) % len(slots)
                return slot.sum()

            def __deepcopy__(self, memo: dict[int, Any]) -> Any:
                return type(self)()

        return ColdSum()


def _private_cache_bytes(device: Any, threads: int) -> int:
    """What the caches private to the threads' cores hold together: on a CPU the size of one L2 (Linux
    sysfs, cpu0) x the threads, at most the L2s there are (two threads on one core's SMT siblings
    share its L2); a GPU's L2. 0 where it cannot be read (no input is then charged a cold read)."""
    if device.type == "cuda":
        import torch

        return int(getattr(torch.cuda.get_device_properties(device), "L2_cache_size", 0) or 0)
    root = "/sys/devices/system/cpu"
    try:
        for index in sorted(os.listdir(f"{root}/cpu0/cache")):
            if _read_text(f"{root}/cpu0/cache/{index}/level") != "2":
                continue
            text = _read_text(f"{root}/cpu0/cache/{index}/size").upper()
            size = int(text.rstrip("KMG")) * {"K": 2**10, "M": 2**20, "G": 2**30}.get(text[-1:], 1)
            shared = {_read_text(f"{root}/{cpu}/cache/{index}/shared_cpu_list") for cpu in os.listdir(root)
                      if cpu.startswith("cpu") and cpu[3:].isdigit() and os.path.exists(f"{root}/{cpu}/cache/{index}")}
            return size * max(1, min(threads, len(shared)))
    except (OSError, ValueError):
        pass
    return 0


def _read_text(path: str) -> str:
    with open(path, encoding="ascii") as stream:
        return stream.read().strip()


class _FixedOperand:
    """A module combining its input with a fixed random operand of `shape`, held as a buffer:
    `torch.bmm(x, w)` for "bmm" (GC's context pooling), `x * w` for "mul" (SE's gating, w of shape
    batch x channels x 1 x 1). Built lazily, as _Scale."""

    def __new__(cls, how: str, *shape: int) -> Any:
        import torch
        from torch import nn

        class FixedOperand(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.register_buffer("w", torch.rand(shape))

            def forward(self, x: Any) -> Any:
                w = self.get_buffer("w")
                return torch.bmm(x, w) if how == "bmm" else x * w

        return FixedOperand()


class _Pointwise:
    """A module applying one of POINTWISE_OPS (by the name count traces it under) to its input, out
    of place (`_softmax` over the last dimension). Built lazily, as _Scale."""

    def __new__(cls, op: str) -> Any:
        import torch
        from torch import nn
        from torch.nn import functional

        functions: dict[str, Callable[[Any], Any]] = {
            "sigmoid": torch.sigmoid, "silu": functional.silu, "hardswish": functional.hardswish,
            "hardsigmoid": functional.hardsigmoid, "gelu": functional.gelu, "tanh": torch.tanh, "exp": torch.exp,
            "elu": functional.elu, "softplus": functional.softplus, "mish": functional.mish, "erf": torch.erf,
            "_softmax": lambda x: torch.softmax(x, -1),
        }
        if op not in functions:
            raise ArgumentError("{op} is not an activation calibrate times; it times " + ", ".join(functions),
                                arguments=(), op=op)
        function = functions[op]

        class Pointwise(nn.Module):
            def forward(self, x: Any) -> Any:
                return function(x)

        return Pointwise()


def _cold_op_modules() -> list[tuple[str, Any, tuple[int, ...]]]:
    """The tiny ops the cold-op cost is measured on (their COLD_OP_GROUP_NAMES group, module, input
    shape): an attention block's (SE's squeeze and excitation and gate, CBAM's max, a small batch
    norm)."""
    from torch import nn

    return [("reduction", _Reduce("mean", (2, 3)), (1, 64, 7, 7)), ("compute", nn.Conv2d(64, 16, 1), (1, 64, 1, 1)),
            ("elementwise", nn.Sigmoid(), (1, 64, 1, 1)), ("batch_norm", nn.BatchNorm2d(64), (1, 64, 7, 7)),
            ("reduction", _Reduce("amax", (2, 3)), (1, 64, 7, 7))]


class _Reduce:
    """A module computing `x.<method>(dims, keepdim=True)`: one reduction (built lazily, as _Scale)."""

    def __new__(cls, method: str, dims: tuple[int, ...]) -> Any:
        from torch import nn

        class Reduce(nn.Module):
            def forward(self, x: Any) -> Any:
                return getattr(x, method)(dims, keepdim=True)

        return Reduce()


def _point(job: _Job, medians: Sequence[float], op_cost: float) -> RatePoint:
    """A RatePoint with count's MACs and bytes of `job.module(job.x)`, traced on the meta device, its
    median over the rounds and their spread."""
    import copy

    import torch

    from senet_cli.count.dispatch import trace_costs

    meta = copy.deepcopy(job.module if job.counted is None else job.counted).to("meta")
    trace = trace_costs(meta, torch.empty(job.x.shape, device="meta", dtype=job.x.dtype))
    macs = sum(op.macs for op in trace.ops)
    moved = sum(op.bytes for op in trace.ops)
    depth = max((op.depth for op in trace.ops), default=0)  # MACs or reduced elements per output
    stride = max((op.stride for op in trace.ops), default=0)  # a reduction's between elements, a conv's spatial
    width = max((op.width for op in trace.ops), default=0) if job.kind == "conv" else 0  # output channels per group
    positions = max((op.positions for op in trace.ops), default=0) if job.kind == "conv" else 0  # H_out x W_out
    if job.op and [op.op for op in trace.ops] != [job.op]:  # the model looks a pointwise point up by this name
        raise RuntimeError(f"calibrate's {job.label} traced as {[op.op for op in trace.ops]}, not {job.op}")
    median = statistics.median(medians)
    spread = (max(medians) - min(medians)) / median if median > 0 else 0.0
    return _with_op_cost(RatePoint(job.kind, job.label, macs, moved, median, 0.0, depth=depth, stride=stride,
                                     spread=spread, batch=job.batch, width=width, positions=positions, op=job.op),
                          op_cost)


def _with_op_cost(point: RatePoint, op_cost: float) -> RatePoint:
    """`point` with its rate: its MACs (or bytes) over its median less the per-op cost, the work's
    share never taken below half the median (so noise in the per-op cost cannot credit a tiny op
    with more than twice its raw rate)."""
    work_s = max(point.median_us - op_cost, point.median_us * 0.5) * 1e-6
    rate = point.bytes / work_s / 1e9 if point.kind in BYTES_KINDS else 2.0 * point.macs / work_s / 1e12
    return replace(point, rate=rate)


def _load_average() -> float:
    """The 1-minute load average (-1.0 where the system does not report one)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return -1.0


def _cpu_name() -> str:
    """The processor's model name (Linux /proc/cpuinfo), else platform's description."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"
