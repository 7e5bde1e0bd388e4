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
from senet_cli.options import ModelConfig
from senet_cli.profile.timing import DTYPES
from senet_cli.zoo import as_config, baseline_config, input_shape, paused_gc


def count(
    model: str | ModelConfig,
    *,
    input_size: int | Sequence[int] | None = None,
    batch: int = 1,
    references: Iterable[str] = (),
    dtype: str = "float32",
    amp: bool = False,
    roofline: str | DevicePeaks | None = None,
    **options: Any,
) -> CountReport:
    """Count `model` (a zoo name with build options, or a ModelConfig) on a [batch, 3, H, W] input.

    input_size: one side or (H, W); default is the backbone's (224, or 32 for CIFAR models).
    references: other counters to run on a real copy of the model ("fvcore", "thop").
    dtype, amp: the precision bytes are counted in (a DTYPES name; amp: a float32 model under
    float16 autocast, simulated); MACs, elementwise ops and params do not depend on them.
    roofline: a device (a roofline.PRESETS name, "PEAK_TFLOPS,BANDWIDTH_GBS" or a DevicePeaks) to
    bound the time on, op by op (see count/roofline.py).
    """
    config = as_config(model, options)
    shape = input_shape(config, input_size, batch)
    counters = check_counters(references)
    if dtype not in DTYPES:
        raise UnknownChoiceError("dtype", dtype, DTYPES)
    if amp and dtype != "float32":
        raise ArgumentError("{amp} runs a float32 model under autocast; do not combine it with {dtype}",
                            arguments={"amp": ("amp", True), "dtype": "dtype"})
    device = parse_device(roofline) if roofline is not None else None
    timer = OpTimer(device.peak_tflops(dtype, amp), device.bandwidth_gbs) if device is not None else None
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
    base_params, base_macs, base_elementwise, base_moved = base_totals
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
        baseline=Baseline(config.backbone, base_params, base_macs, base_elementwise, base_moved),
        overhead=Overhead(
            params=params - base_params,
            macs=macs - base_macs,
            elementwise_ops=elementwise - base_elementwise,
            params_pct=_pct(params, base_params),
            macs_pct=_pct(macs, base_macs),
            elementwise_ops_pct=_pct(elementwise, base_elementwise),
            bytes=moved - base_moved,
            bytes_pct=_pct(moved, base_moved),
        ),
        uncounted_ops=tuple(sorted(uncounted.items())),
        references=reference_counts(config, shape, counters),
        bytes=moved,
        dtype=dtype,
        amp=amp,
        roofline=_roofline(device, timer, rows, base_rows) if device is not None and timer is not None else None,
    )


def _roofline(device: DevicePeaks, timer: OpTimer, rows: Sequence[Any], base_rows: Sequence[Any]) -> Roofline:
    ms = sum(row.roofline_ms for row in rows)
    baseline_ms = sum(row.roofline_ms for row in base_rows)
    return Roofline(
        device=device.name, peak_tflops=timer.peak_tflops, bandwidth_gbs=timer.bandwidth_gbs, ms=ms,
        baseline_ms=baseline_ms, overhead_pct=(ms - baseline_ms) / baseline_ms * 100.0 if baseline_ms else 0.0,
        memory_bound_ms=sum(row.memory_bound_ms for row in rows), source=device.source,
    )


def _pct(value: int, base: int) -> float:
    return (value - base) / base * 100.0 if base else 0.0
