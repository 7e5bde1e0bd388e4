"""`count()`: parameters, MACs and elementwise ops of a model, per block, against its plain backbone.

Conventions are in results.py (CONVENTION) and formulas.py. Torch is imported only when counting.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from senet_cli.count.references import check_counters
from senet_cli.count.results import Baseline, CountReport, Overhead
from senet_cli.count.roofline import DevicePeaks, OpTimer, Roofline, parse_device
from senet_cli.errors import ArgumentError, UnknownChoiceError
from senet_cli.options import ExternalConfig, ModelConfig
from senet_cli.prune.source import subject_of
from senet_cli.subject import Subject, configurations, input_shape
from senet_cli.vocabulary import DTYPES
from senet_cli.zoo import paused_gc


def count(
    model: str | ModelConfig | ExternalConfig | Subject,
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
    """Count `model` (a zoo name with build options, a ModelConfig, a Subject, or a checkpoint file: the
    architecture it records, a pruned one too) on a [batch, 3, H, W] input.

    A model outside the zoo (`torchvision:NAME`, `timm:NAME`, `file.py:callable`,
    `package.module:callable`) takes its builder's keywords as options; its attention is found by
    class (the known ones and `attention_classes`, "PATH_OR_MODULE:Class"), its baseline is the same
    model with each attention module replaced by a pass-through (see senet_cli/outside/build.py).
    Every model goes down one path: its Subject (senet_cli/subject.py) builds it and takes it apart.

    input_size: one side or (H, W); default is the backbone's (224, or 32 for CIFAR models).
    references: other counters to run on a real copy of the model ("fvcore", "thop").
    dtype, amp: the precision bytes are counted in (a DTYPES name; amp: a float32 model under
    float16 autocast, simulated); MACs, elementwise ops and params do not depend on them.
    roofline: a device (a roofline.PRESETS name, "PEAK_TFLOPS,BANDWIDTH_GBS", a `senet calibrate`
    device file DEVICE.json or a DevicePeaks) to bound the time on, op by op (see count/roofline.py);
    a calibrated device also predicts the time (count/latency.py).
    """
    subject = subject_of(model, options, attention_classes)  # `count("OUT.pth")`: the file's (pruned) architecture
    shape = input_shape(subject, input_size, batch)
    counters = check_counters(references)
    if dtype not in DTYPES:
        raise UnknownChoiceError("dtype", dtype, DTYPES)
    if amp and dtype != "float32":
        raise ArgumentError("{amp} runs a float32 model under autocast; do not combine it with {dtype}",
                            arguments={"amp": ("amp", True), "dtype": "dtype"})
    device = parse_device(roofline) if roofline is not None else None
    timer = OpTimer(device.peak_tflops(dtype, amp), device.bandwidth_gbs) if device is not None else None
    predict = _predictor(device, dtype, amp)
    from senet_cli.count.blocks import measure
    from senet_cli.count.references import reference_counts

    op_time = timer.seconds if timer is not None else None
    with paused_gc():
        totals, rows, uncounted, found, cpu_note = measure(subject, shape, dtype, amp, op_time,
                                                           predict() if predict else None)
        without = subject.baseline(found)
        base: tuple[tuple[int, int, int, int], list[Any]] | None = None
        base_name = subject.name
        if not found:  # nothing to remove: the model is its own baseline (a plain backbone)
            base = totals, rows
        elif without is not None:
            base_totals, base_rows, _, _, base_note = measure(without, shape, dtype, amp, op_time,
                                                              predict() if predict else None)
            base, base_name = (base_totals, base_rows), without.name
            cpu_note = cpu_note or base_note
    params, macs, elementwise, moved = totals
    stem, *blocks, head = rows
    return CountReport(
        config=subject.config,
        input=shape,
        params=params,
        macs=macs,
        elementwise_ops=elementwise,
        stem=stem,
        blocks=tuple(blocks),
        head=head,
        baseline=Baseline(base_name, *base[0], kernels=_kernels(base[1])) if base is not None else None,
        overhead=_overhead(totals, base[0], _kernels(rows), _kernels(base[1])) if base is not None else None,
        uncounted_ops=tuple(sorted(uncounted.items())),
        references=reference_counts(subject, shape, counters),
        attention_modules=subject.attention_summary(found),
        notes=subject.notes(found, without is not None) + ((cpu_note,) if cpu_note else ()),
        counted_on="cpu" if cpu_note else "meta",
        attention_found=subject.attention_found(found, without is not None),
        bytes=moved,
        dtype=dtype,
        amp=amp,
        roofline=_roofline(device, timer, rows, base[1] if base is not None else None)
        if device is not None and timer is not None else None,
    )


def _predictor(device: DevicePeaks | None, dtype: str, amp: bool) -> Any:
    """What makes a calibrated device's per-op prediction for one forward pass (a new one for each:
    an op's time depends on the op before it), refused for a precision it was not calibrated in."""
    if device is None or device.calibration is None:
        return None
    device.calibration.check_precision(dtype, amp)
    return device.calibration.forward_predictor


def _kernels(rows: Sequence[Any]) -> int:
    return sum(row.kernels for row in rows)


def count_sweep(
    models: str | Sequence[str],
    *,
    ratios: Sequence[int | None] = (None,),
    attention_classes: Sequence[str] = (),
    on_model: Callable[[int, int], None] | None = None,
    **kwargs: Any,
) -> list[CountReport]:
    """`count()` of every model x ratio: one report per configuration, in order (see
    `senet_cli.subject.configurations`: a model that takes no reduction ratio, such as a plain
    backbone or eca, is counted once; so is a model outside the zoo). The other keywords are
    `count()`'s (input_size, batch, references, dtype, amp, roofline) and build options.
    on_model(done, total) reports progress before each configuration.

        >>> reports = senet_cli.count_sweep(["se_resnet50", "eca_resnet50"], ratios=[4, 8, 16])
        >>> [(r.config.name, r.config.as_dict().get("ratio"), r.params) for r in reports]
    """
    job = {key: kwargs.pop(key) for key in _COUNT_KEYWORDS if key in kwargs}
    names = [models] if isinstance(models, str) else list(models)
    subjects = configurations(names, ratios, kwargs, attention_classes)
    reports = []
    for done, subject in enumerate(subjects):
        if on_model is not None:
            on_model(done, len(subjects))
        reports.append(count(subject, **job))
    return reports


_COUNT_KEYWORDS = ("input_size", "batch", "references", "dtype", "amp", "roofline")


def _roofline(device: DevicePeaks, timer: OpTimer, rows: Sequence[Any], base_rows: Sequence[Any] | None) -> Roofline:
    """The model's bound, and its baseline's (None for a model outside the zoo without a pass-through);
    with a calibrated device, the same for the predicted time."""
    ms = sum(row.roofline_ms for row in rows)
    baseline_ms = sum(row.roofline_ms for row in base_rows) if base_rows is not None else None
    predicted = baseline_predicted = predicted_overhead = None
    measured = {} if device.calibration is None else device.calibration.figures()  # else the Roofline's Nones
    if device.calibration is not None:
        predicted = sum(row.predicted_ms for row in rows)
        baseline_predicted = sum(row.predicted_ms for row in base_rows) if base_rows is not None else None
        predicted_overhead = None if baseline_predicted is None else _pct(predicted, baseline_predicted)
    return Roofline(
        device=device.name, peak_tflops=timer.peak_tflops, bandwidth_gbs=timer.bandwidth_gbs, ms=ms,
        baseline_ms=baseline_ms,
        overhead_pct=None if baseline_ms is None else (ms - baseline_ms) / baseline_ms * 100.0 if baseline_ms else 0.0,
        memory_bound_ms=sum(row.memory_bound_ms for row in rows), source=device.source,
        predicted_ms=predicted, baseline_predicted_ms=baseline_predicted, predicted_overhead_pct=predicted_overhead,
        **measured,
    )


def _overhead(totals: tuple[int, int, int, int], base: tuple[int, int, int, int], kernels: int = 0,
              base_kernels: int = 0) -> Overhead:
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
        kernels=kernels - base_kernels,
        kernels_pct=_pct(kernels, base_kernels),
    )


def _pct(value: float, base: float) -> float:
    return (value - base) / base * 100.0 if base else 0.0
