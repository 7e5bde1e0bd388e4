"""`count()`: parameters, MACs and elementwise ops of a model, per block, against its plain backbone.

Conventions are in results.py (CONVENTION) and formulas.py. Torch is imported only when counting.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from senet_cli.count.references import check_counters
from senet_cli.count.results import Baseline, CountReport, Overhead
from senet_cli.options import ExternalConfig, ModelConfig
from senet_cli.zoo import as_config, baseline_config, input_shape, paused_gc


def count(
    model: str | ModelConfig | ExternalConfig,
    *,
    input_size: int | Sequence[int] | None = None,
    batch: int = 1,
    references: Iterable[str] = (),
    attention_classes: Sequence[str] = (),
    **options: Any,
) -> CountReport:
    """Count `model` (a zoo name with build options, or a ModelConfig) on a [batch, 3, H, W] input.

    A model outside the zoo (`torchvision:NAME`, `timm:NAME`, `file.py:callable`,
    `package.module:callable`) takes its builder's keywords as options; its attention is found by
    class (the known ones and `attention_classes`, "PATH_OR_MODULE:Class"), its baseline is the same
    model with each attention module replaced by a pass-through (see senet_cli/zoo/foreign.py).

    input_size: one side or (H, W); default is the backbone's (224, or 32 for CIFAR models).
    references: other counters to run on a real copy of the model ("fvcore", "thop").
    """
    config = as_config(model, options, attention_classes)
    shape = input_shape(config, input_size, batch)
    counters = check_counters(references)
    if isinstance(config, ExternalConfig):
        return _count_external(config, shape, counters)
    from senet_cli.count.blocks import measure
    from senet_cli.count.references import reference_counts

    with paused_gc():
        totals, rows, uncounted = measure(config, shape)
        if config.attention is None:
            base_totals = totals
        else:
            base_totals, _, _ = measure(baseline_config(config), shape)
    params, macs, elementwise = totals
    base_params, base_macs, base_elementwise = base_totals
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
        baseline=Baseline(config.backbone, base_params, base_macs, base_elementwise),
        overhead=Overhead(
            params=params - base_params,
            macs=macs - base_macs,
            elementwise_ops=elementwise - base_elementwise,
            params_pct=_pct(params, base_params),
            macs_pct=_pct(macs, base_macs),
            elementwise_ops_pct=_pct(elementwise, base_elementwise),
        ),
        uncounted_ops=tuple(sorted(uncounted.items())),
        references=reference_counts(config, shape, counters),
    )


def _count_external(config: ExternalConfig, shape: tuple[int, int, int, int], counters: tuple[str, ...]) -> CountReport:
    from senet_cli.count.blocks import measure_external
    from senet_cli.count.references import reference_counts
    from senet_cli.zoo.foreign import baseline_name, notes

    with paused_gc():
        totals, rows, uncounted, base_totals, found = measure_external(config, shape)
    if not found:
        base_totals = totals  # nothing to remove: the model is its own baseline, as a plain backbone is
    baseline = overhead = None
    if base_totals is not None:
        baseline = Baseline(baseline_name(config) if found else config.name, *base_totals)
        overhead = _overhead(totals, base_totals)
    classes: dict[str, int] = {}
    for item in found:
        classes[item.class_name] = classes.get(item.class_name, 0) + 1
    stem, *blocks, head = rows
    return CountReport(
        config=config, input=shape, params=totals[0], macs=totals[1], elementwise_ops=totals[2], stem=stem,
        blocks=tuple(blocks), head=head, baseline=baseline, overhead=overhead,
        uncounted_ops=tuple(sorted(uncounted.items())), references=reference_counts(config, shape, counters),
        attention_modules=tuple(classes.items()), notes=notes(config, found, base_totals is not None),
    )


def _overhead(totals: tuple[int, int, int], base: tuple[int, int, int]) -> Overhead:
    (params, macs, elementwise), (base_params, base_macs, base_elementwise) = totals, base
    return Overhead(
        params=params - base_params,
        macs=macs - base_macs,
        elementwise_ops=elementwise - base_elementwise,
        params_pct=_pct(params, base_params),
        macs_pct=_pct(macs, base_macs),
        elementwise_ops_pct=_pct(elementwise, base_elementwise),
    )


def _pct(value: int, base: int) -> float:
    return (value - base) / base * 100.0 if base else 0.0
