"""`count()`: parameters, MACs and elementwise ops of a model, per block, against its plain backbone.

Conventions are in results.py (CONVENTION) and formulas.py. Torch is imported only when counting.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from senet_cli.count.references import check_counters
from senet_cli.count.results import Baseline, CountReport, Overhead
from senet_cli.options import ModelConfig
from senet_cli.zoo import as_config, baseline_config, input_shape, paused_gc


def count(
    model: str | ModelConfig,
    *,
    input_size: int | Sequence[int] | None = None,
    batch: int = 1,
    references: Iterable[str] = (),
    **options: Any,
) -> CountReport:
    """Count `model` (a zoo name with build options, or a ModelConfig) on a [batch, 3, H, W] input.

    input_size: one side or (H, W); default is the backbone's (224, or 32 for CIFAR models).
    references: other counters to run on a real copy of the model ("fvcore", "thop").
    """
    config = as_config(model, options)
    shape = input_shape(config, input_size, batch)
    counters = check_counters(references)
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


def _pct(value: int, base: int) -> float:
    return (value - base) / base * 100.0 if base else 0.0
