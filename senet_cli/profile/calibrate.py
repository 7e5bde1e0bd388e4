"""`calibrate()`: measure the machine it runs on, for the latency model of count/latency.py.

Three things are measured, each with torch.utils.benchmark's Timer (`blocked_autorange`: blocks of
runs until `min_run_time` has passed, the median over blocks; on CUDA it synchronises around each
block, so a time is the work on the GPU, launch included):

- the per-op cost: a chain of CHAIN tiny module calls, each an elementwise op on a 1-element tensor,
  timed as one run; its median / CHAIN, measured at the start, halfway and at the end, the median of
  the three kept. Dispatch, the module call and the launch, with next to no work.
- achieved bandwidth: a module computing `x * 2.0` (read once, write once, out of place as eager
  models do) on float tensors from 64 KiB (within any last-level cache) to 256 MiB (well past it);
  bandwidth = bytes / (median - per-op cost).
- pooling (a max pool and adaptive average pools), as bandwidth: these windowed kernels run far
  below a copy's bandwidth on a CPU;
- reductions (max and mean, over the map and over the channels, on each ResNet stage's feature
  map), as bandwidth: a max over the 49 positions of a 7x7 map or over 2048 channels runs at a
  fraction of a copy's bandwidth on a CPU, and CBAM and GE run several per block;
- achieved compute: convolutions and matmuls of the shapes the zoo's models run at 224x224 (ResNet
  stems, 3x3 and 1x1 convs of each stage, SK's grouped and MobileNet's depthwise and pointwise
  convs, SE's and CBAM's small convs, classifier matmuls), at two batch sizes; rate = 2 x MACs /
  (median - per-op cost), the work's share never below half the median. MACs and bytes are
  count's own (the same module traced on the meta device), so the model charges an op by the
  figures it was calibrated with.

The whole run takes 10-40 s on a CPU (the largest shapes dominate) and a few seconds on a GPU.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime, timezone
from typing import Any

from senet_cli.count.latency import BYTES_KINDS, DeviceCalibration, RatePoint
from senet_cli.errors import ArgumentError, UnknownChoiceError
from senet_cli.vocabulary import DEVICES, DTYPES

CHAIN = 64
"""Tiny ops per timed run of the per-op cost."""

MEMORY_BYTES = tuple(2**k for k in (16, 18, 20, 22, 24, 26, 28))
"""Tensor sizes (bytes of the input) of the bandwidth points: 64 KiB to 256 MiB."""

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
    ("1x1 24->96 @28 (MobileNet)", 24, 96, 1, 1, 1, 28),
    ("1x1 96->576 @7 (MobileNet)", 96, 576, 1, 1, 1, 7),
    ("3x3 g32 128->128 @56 (SK, ResNeXt)", 128, 128, 3, 1, 32, 56),
    ("dw 3x3 96 @56 (MobileNet)", 96, 96, 3, 1, 96, 56),
    ("dw 5x5 240 @28 (EfficientNet)", 240, 240, 5, 1, 240, 28),
    ("dw 3x3 672 @14", 672, 672, 3, 1, 672, 14),
    ("1x1 256->16 @1 (SE excitation)", 256, 16, 1, 1, 1, 1),  # on a 1x1 map: with a bias, as SE's convs
    ("1x1 2048->128 @1 (SE excitation)", 2048, 128, 1, 1, 1, 1),
    ("1x1 96->24 @1 (MobileNet SE)", 96, 24, 1, 1, 1, 1),
    ("7x7 2->1 @56 (CBAM spatial)", 2, 1, 7, 1, 1, 56),
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
DEFAULT_BATCHES = dict(zip(DEVICES, ((1, 8), (1, 64)), strict=True))  # per device: cpu, cuda


def calibrate(
    device: str = "cpu",
    *,
    threads: int | None = None,
    dtype: str = "float32",
    batches: Sequence[int] | None = None,
    min_run_time: float = 0.1,
    conv_shapes: Sequence[ConvShape] = CONV_SHAPES,
    linear_shapes: Sequence[tuple[str, int, int]] = LINEAR_SHAPES,
    memory_bytes: Sequence[int] = MEMORY_BYTES,
    reduce_maps: Sequence[tuple[int, int]] = REDUCE_MAPS,
    on_step: Callable[[int, int], None] | None = None,
) -> DeviceCalibration:
    """Measure this machine's per-op cost, bandwidth by size and compute rate by shape (module doc).

    device: "cpu" or "cuda"; threads: torch's CPU threads (default: torch's); dtype: a DTYPES name
    (the latency model predicts only in the dtype it was calibrated in); batches: the batch sizes
    each compute shape runs at (default 1 and 8 on CPU, 1 and 64 on CUDA); min_run_time: seconds
    per measured point (torch.utils.benchmark's blocked_autorange); reduce_maps: the (channels,
    side) feature maps the reductions run on (empty: none, the memory points stand in). on_step(done, total) reports
    progress.
    """
    if dtype not in DTYPES:
        raise UnknownChoiceError("dtype", dtype, DTYPES)
    if not min_run_time > 0:
        raise ArgumentError("min_run_time must be positive, got {value}", arguments=(), value=min_run_time)
    from senet_cli.profile.timing import Timing

    Timing(device=device, dtype=dtype, threads=threads)  # refuses a bad device name or thread count
    import torch
    from torch import nn

    from senet_cli.profile import harness

    started = time.perf_counter()
    torch_device = harness.prepare(Timing(device=device, dtype=dtype, threads=threads))
    torch_dtype = getattr(torch, dtype)
    batches = tuple(batches or DEFAULT_BATCHES[torch_device.type])
    total = 1 + len(memory_bytes) + len(batches) * (len(conv_shapes) + len(linear_shapes) + len(POOL_SHAPES)
                                                    + len(reduce_maps) * len(REDUCTIONS))
    done = 0

    def step() -> None:
        nonlocal done
        done += 1
        if on_step is not None:
            on_step(done, total)

    def median_us(module: Any, x: Any) -> float:
        from torch.utils.benchmark import Timer

        with torch.inference_mode():
            module(x)  # warm-up: allocator, kernel choice
            timer = Timer("module(x)", globals={"module": module, "x": x})
            return timer.blocked_autorange(min_run_time=min_run_time).median * 1e6

    tiny = torch.ones(1, device=torch_device, dtype=torch_dtype)
    chain = nn.Sequential(*(_Scale() for _ in range(CHAIN)))
    op_costs = [median_us(chain, tiny) / CHAIN]  # measured again halfway and at the end: the median of three
    op_cost = op_costs[0]
    step()
    points: list[RatePoint] = []
    size = torch.finfo(torch_dtype).bits // 8
    for nbytes in memory_bytes:
        x = torch.ones(max(nbytes // size, 1), device=torch_device, dtype=torch_dtype)
        points.append(_point("memory", f"x * 2.0, {nbytes / 2**20:g} MiB", _Scale(), x, median_us(_Scale(), x),
                             op_cost))
        step()
    op_costs.append(median_us(chain, tiny) / CHAIN)
    for batch in batches:
        for label, cin, cout, kernel, stride, groups, side in conv_shapes:
            conv = nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=side == 1)
            shape = (batch, cin, side, side)
            points.append(_compute_point(f"conv {label}, batch {batch}", conv, shape, torch_device, torch_dtype,
                                         median_us, op_cost))
            step()
        for label, channels, side, how in POOL_SHAPES:
            pool = nn.MaxPool2d(3, 2, 1) if how == "max" else nn.AdaptiveAvgPool2d(1)
            x = torch.randn(batch, channels, side, side, device=torch_device, dtype=torch_dtype)
            points.append(_point(f"{how}_pool", f"{label}, batch {batch}", pool, x, median_us(pool, x), op_cost))
            step()
        for channels, side in reduce_maps:
            x = torch.randn(batch, channels, side, side, device=torch_device, dtype=torch_dtype)
            for kind, method, dims in REDUCTIONS:
                reduce = _Reduce(method, dims)
                over = "the map" if dims == (2, 3) else "the channels"
                points.append(_point(kind, f"{method} over {over}, {channels} @{side}, batch {batch}", reduce, x,
                                     median_us(reduce, x), op_cost))
                step()
        for label, fin, fout in linear_shapes:
            points.append(_compute_point(f"{label}, batch {batch}", nn.Linear(fin, fout), (batch, fin), torch_device,
                                         torch_dtype, median_us, op_cost))
            step()
    op_costs.append(median_us(chain, tiny) / CHAIN)
    op_cost = sorted(op_costs)[1]
    points = [_with_op_cost(point, op_cost) for point in points]
    name = torch.cuda.get_device_name(torch_device) if torch_device.type == "cuda" else _cpu_name()
    return DeviceCalibration(
        device=torch_device.type, name=name, dtype=dtype, threads=torch.get_num_threads(), op_cost_us=op_cost,
        points=tuple(points), torch_version=torch.__version__,
        created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        seconds=time.perf_counter() - started,
        method=(f"torch.utils.benchmark Timer.blocked_autorange(min_run_time={min_run_time}), medians; per-op cost: "
                f"a chain of {CHAIN} module calls x * 2.0 on a 1-element tensor / {CHAIN}; bandwidth: x * 2.0 "
                f"(read + write) on {len(memory_bytes)} sizes; compute: {len(conv_shapes)} conv and "
                f"{len(linear_shapes)} linear shapes of the zoo's models, max and mean over the map and over the "
                f"channels of {len(reduce_maps)} feature maps, at batch {', '.join(map(str, batches))}; "
                "rates after the per-op cost is taken off; macs and bytes as senet count counts them"),
    )


class _Scale:
    """A module computing x * 2.0: one elementwise op, out of place (built lazily, so torch loads late)."""

    def __new__(cls) -> Any:
        from torch import nn

        class Scale(nn.Module):
            def forward(self, x: Any) -> Any:
                return x * 2.0

        return Scale()


class _Reduce:
    """A module computing `x.<method>(dims, keepdim=True)`: one reduction (built lazily, as _Scale)."""

    def __new__(cls, method: str, dims: tuple[int, ...]) -> Any:
        from torch import nn

        class Reduce(nn.Module):
            def forward(self, x: Any) -> Any:
                return getattr(x, method)(dims, keepdim=True)

        return Reduce()


def _compute_point(label: str, module: Any, shape: tuple[int, ...], device: Any, dtype: Any,
                   median_us: Callable[[Any, Any], float], op_cost: float) -> RatePoint:
    import torch

    module = module.to(device=device, dtype=dtype).eval()
    x = torch.randn(shape, device=device, dtype=dtype)
    kind = "conv" if isinstance(module, torch.nn.Conv2d) else "matmul"
    return _point(kind, label, module, x, median_us(module, x), op_cost)


def _point(kind: str, label: str, module: Any, x: Any, median: float, op_cost: float) -> RatePoint:
    """A RatePoint with count's MACs and bytes of `module(x)`, traced on the meta device."""
    import copy

    import torch

    from senet_cli.count.dispatch import trace_costs

    meta = copy.deepcopy(module).to("meta")
    trace = trace_costs(meta, torch.empty(x.shape, device="meta", dtype=x.dtype))
    macs = sum(op.macs for op in trace.ops)
    moved = sum(op.bytes for op in trace.ops)
    depth = max((op.depth for op in trace.ops), default=0)  # MACs or reduced elements per output
    return _with_op_cost(RatePoint(kind, label, macs, moved, median, 0.0, depth), op_cost)


def _with_op_cost(point: RatePoint, op_cost: float) -> RatePoint:
    """`point` with its rate: its MACs (or bytes) over its median less the per-op cost, the work's
    share never taken below half the median (so noise in the per-op cost cannot credit a tiny op
    with more than twice its raw rate)."""
    work_s = max(point.median_us - op_cost, point.median_us * 0.5) * 1e-6
    rate = point.bytes / work_s / 1e9 if point.kind in BYTES_KINDS else 2.0 * point.macs / work_s / 1e12
    return replace(point, rate=rate)


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
