"""`count()`: parameters, MACs and elementwise ops of a model, per block, against its plain backbone.

Conventions are in results.py (CONVENTION) and formulas.py. Torch is imported only when counting.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from senet_cli.count.references import check_counters
from senet_cli.count.results import Baseline, CountReport, Overhead
from senet_cli.count.roofline import DevicePeaks, OpTimer, Roofline, parse_device
from senet_cli.errors import ArgumentError, UnknownChoiceError
from senet_cli.options import ExternalConfig, ModelConfig
from senet_cli.profile.timing import DTYPES
from senet_cli.zoo import as_config, baseline_config, input_shape, paused_gc


def count(
    model: str | ModelConfig | ExternalConfig,
    *,
    input_size: int | Sequence[int] | None = None,
    batch: int = 1,
    references: Iterable[str] = (),
    attention_classes: Sequence[str] = (),
    dtype: str = "float32",
    amp: bool = False,
    roofline: str | DevicePeaks | None = None,
    **options: Any,
) -> CountReport:
    """Count `model` (a zoo name with build options, or a ModelConfig) on a [batch, 3, H, W] input.

    A model outside the zoo (`torchvision:NAME`, `timm:NAME`, `file.py:callable`,
    `package.module:callable`) takes its builder's keywords as options; its attention is found by
    class (the known ones and `attention_classes`, "PATH_OR_MODULE:Class"), its baseline is the same
    model with each attention module replaced by a pass-through (see senet_cli/outside/build.py).

    input_size: one side or (H, W); default is the backbone's (224, or 32 for CIFAR models).
    references: other counters to run on a real copy of the model ("fvcore", "thop").
    dtype, amp: the precision bytes are counted in (a DTYPES name; amp: a float32 model under
    float16 autocast, simulated); MACs, elementwise ops and params do not depend on them.
    roofline: a device (a roofline.PRESETS name, "PEAK_TFLOPS,BANDWIDTH_GBS" or a DevicePeaks) to
    bound the time on, op by op (see count/roofline.py).
    """
    config = as_config(model, options, attention_classes)
    shape = input_shape(config, input_size, batch)
    counters = check_counters(references)
    if dtype not in DTYPES:
        raise UnknownChoiceError("dtype", dtype, DTYPES)
    if amp and dtype != "float32":
        raise ArgumentError("{amp} runs a float32 model under autocast; do not combine it with {dtype}",
                            arguments={"amp": ("amp", True), "dtype": "dtype"})
    device = parse_device(roofline) if roofline is not None else None
    timer = OpTimer(device.peak_tflops(dtype, amp), device.bandwidth_gbs) if device is not None else None
    if isinstance(config, ExternalConfig):
        return _count_external(config, shape, counters, dtype, amp, device, timer)
    from senet_cli.count.blocks import measure
    from senet_cli.count.references import reference_counts

    op_time = timer.seconds if timer is not None else None
    with paused_gc():
        totals, rows, uncounted = measure(config, shape, dtype, amp, op_time)
        if config.attention is None:
            base_totals, base_rows = totals, rows
        else:
            base_totals, base_rows, _ = measure(baseline_config(config), shape, dtype, amp, op_time)
    params, macs, elementwise, moved = totals
    stem, *blocks, head = rows
    return CountReport(
        config=config,
        input=shape,
        params=params,
        macs=macs,
        elementwise_ops=elementwise,
        stem=stem,
        blocks=tuple(blocks),
        head=head,
        baseline=Baseline(config.backbone, *base_totals),
        overhead=_overhead(totals, base_totals),
        uncounted_ops=tuple(sorted(uncounted.items())),
        references=reference_counts(config, shape, counters),
        bytes=moved,
        dtype=dtype,
        amp=amp,
        roofline=_roofline(device, timer, rows, base_rows) if device is not None and timer is not None else None,
    )


def _roofline(device: DevicePeaks, timer: OpTimer, rows: Sequence[Any], base_rows: Sequence[Any] | None) -> Roofline:
    """The model's bound, and its baseline's (None for a model outside the zoo without a pass-through)."""
    ms = sum(row.roofline_ms for row in rows)
    baseline_ms = sum(row.roofline_ms for row in base_rows) if base_rows is not None else None
    return Roofline(
        device=device.name, peak_tflops=timer.peak_tflops, bandwidth_gbs=timer.bandwidth_gbs, ms=ms,
        baseline_ms=baseline_ms,
        overhead_pct=None if baseline_ms is None else (ms - baseline_ms) / baseline_ms * 100.0 if baseline_ms else 0.0,
        memory_bound_ms=sum(row.memory_bound_ms for row in rows), source=device.source,
    )


def _count_external(config: ExternalConfig, shape: tuple[int, int, int, int], counters: tuple[str, ...], dtype: str,
                    amp: bool, device: DevicePeaks | None, timer: OpTimer | None) -> CountReport:
    from senet_cli.count.blocks import measure_external
    from senet_cli.count.references import reference_counts
    from senet_cli.outside.build import baseline_name, notes

    op_time = timer.seconds if timer is not None else None
    with paused_gc():
        totals, rows, uncounted, base, found = measure_external(config, shape, dtype, amp, op_time)
    if not found:
        base = totals, rows  # nothing to remove: the model is its own baseline, as a plain backbone is
    baseline = overhead = None
    if base is not None:
        baseline = Baseline(baseline_name(config) if found else config.name, *base[0])
        overhead = _overhead(totals, base[0])
    classes: dict[str, int] = {}
    for item in found:
        classes[item.class_name] = classes.get(item.class_name, 0) + 1
    stem, *blocks, head = rows
    return CountReport(
        config=config, input=shape, params=totals[0], macs=totals[1], elementwise_ops=totals[2], stem=stem,
        blocks=tuple(blocks), head=head, baseline=baseline, overhead=overhead,
        uncounted_ops=tuple(sorted(uncounted.items())), references=reference_counts(config, shape, counters),
        attention_modules=tuple(classes.items()), notes=notes(config, found, base is not None),
        bytes=totals[3], dtype=dtype, amp=amp,
        roofline=_roofline(device, timer, rows, base[1] if base is not None else None)
        if device is not None and timer is not None else None,
    )


def _overhead(totals: tuple[int, int, int, int], base: tuple[int, int, int, int]) -> Overhead:
    (params, macs, elementwise, moved), (base_params, base_macs, base_elementwise, base_moved) = totals, base
    return Overhead(
        params=params - base_params,
        macs=macs - base_macs,
        elementwise_ops=elementwise - base_elementwise,
        params_pct=_pct(params, base_params),
        macs_pct=_pct(macs, base_macs),
        elementwise_ops_pct=_pct(elementwise, base_elementwise),
        bytes=moved - base_moved,
        bytes_pct=_pct(moved, base_moved),
    )


def _pct(value: int, base: int) -> float:
    return (value - base) / base * 100.0 if base else 0.0
