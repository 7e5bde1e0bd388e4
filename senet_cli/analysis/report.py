"""`count()`: parameters, MACs and elementwise ops of a model, per block, against its plain backbone.

Conventions (also in formulas.py): `macs` are multiply-accumulates of conv/linear/matmul (what the
papers call FLOPs); `elementwise_ops` count one op per input element of pooling and reductions and
one per output element of elementwise arithmetic; `params` count every parameter tensor once
(buffers such as BN running statistics are not parameters). All counts are for the whole batch.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from senet_cli.analysis.counting import Trace, paused_gc, skip_weight_init, trace_costs
from senet_cli.attention.base import AttentionModule
from senet_cli.backbones import BACKBONES
from senet_cli.errors import SenetError, first_line
from senet_cli.options import ModelConfig, parse_int
from senet_cli.zoo import baseline_config, build_from_config, make_config

CONVENTION = (
    "macs: multiply-accumulates of conv/linear/matmul (one fused multiply-add = 1; the papers' "
    "'FLOPs'); elementwise_ops: 1 per input element of pooling/reductions, 1 per output element of "
    "elementwise arithmetic (activations, gating, adds, batch norm); params: each tensor once, "
    "buffers excluded; all for the whole batch"
)


@dataclass(frozen=True)
class BlockCount:
    """One row: a residual block (or the stem before the first block, or the head after the last)."""

    name: str
    stage: int | None
    params: int
    macs: int
    elementwise_ops: int
    attention_params: int
    attention_macs: int
    attention_elementwise_ops: int


@dataclass(frozen=True)
class Baseline:
    """The plain backbone, same backbone options, same input."""

    model: str
    params: int
    macs: int
    elementwise_ops: int


@dataclass(frozen=True)
class Overhead:
    """model - baseline, absolute and as a percentage of the baseline."""

    params: int
    macs: int
    elementwise_ops: int
    params_pct: float
    macs_pct: float
    elementwise_ops_pct: float


@dataclass(frozen=True)
class ReferenceCount:
    """Another counter's total for the same model and input, with what it counts."""

    counter: str
    macs: int
    conv_linear_macs: int | None
    note: str


@dataclass(frozen=True)
class CountReport:
    """What `senet count` computes for one model and input. `to_dict()` is the JSON contract."""

    config: ModelConfig
    input: tuple[int, int, int, int]
    params: int
    macs: int
    elementwise_ops: int
    stem: BlockCount
    blocks: tuple[BlockCount, ...]
    head: BlockCount
    baseline: Baseline
    overhead: Overhead
    uncounted_ops: tuple[tuple[str, int], ...] = ()
    references: tuple[ReferenceCount, ...] = ()

    @property
    def model(self) -> str:
        return self.config.name

    @property
    def rows(self) -> tuple[BlockCount, ...]:
        """Stem, blocks, head: the rows that add up to the totals."""
        return (self.stem, *self.blocks, self.head)

    def attention_total(self, measure: str) -> int:
        """Sum of `attention_<measure>` over all rows (measure: params, macs, elementwise_ops)."""
        return sum(getattr(row, f"attention_{measure}") for row in self.rows)

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "options": self.config.as_dict(),
            "input": list(self.input),
            "params": self.params,
            "macs": self.macs,
            "elementwise_ops": self.elementwise_ops,
            "attention": {
                "params": self.attention_total("params"),
                "macs": self.attention_total("macs"),
                "elementwise_ops": self.attention_total("elementwise_ops"),
            },
            "baseline": asdict(self.baseline),
            "overhead": asdict(self.overhead),
            "stem": asdict(self.stem),
            "blocks": [asdict(block) for block in self.blocks],
            "head": asdict(self.head),
            "uncounted_ops": dict(self.uncounted_ops),
            "references": [asdict(reference) for reference in self.references],
            "convention": CONVENTION,
        }


def count(
    model: str,
    *,
    input_size: int | Sequence[int] | None = None,
    batch: int = 1,
    references: Iterable[str] = (),
    **options: Any,
) -> CountReport:
    """Count `model` (a zoo name, with build options) on a [batch, 3, H, W] input.

    input_size: one side or (H, W); default is the backbone's (224, or 32 for CIFAR models).
    references: other counters to run on a real copy of the model ("fvcore", "thop").
    """
    config = make_config(model, **options)
    shape = input_shape(config, input_size, batch)
    with paused_gc():
        totals, rows, uncounted = _measure(config, shape)
        if config.attention is None:
            base_totals = totals
        else:
            base_totals, _, _ = _measure(baseline_config(config), shape)
    params, macs, elementwise = totals
    base_params, base_macs, base_elementwise = base_totals
    stem, *blocks, head = rows
    from senet_cli.analysis.references import reference_counts

    return CountReport(
        config=config,
        input=shape,
        params=params,
        macs=macs,
        elementwise_ops=elementwise,
        stem=stem,
        blocks=tuple(blocks),
        head=head,
        baseline=Baseline(config.baseline_name, base_params, base_macs, base_elementwise),
        overhead=Overhead(
            params=params - base_params,
            macs=macs - base_macs,
            elementwise_ops=elementwise - base_elementwise,
            params_pct=_pct(params, base_params),
            macs_pct=_pct(macs, base_macs),
            elementwise_ops_pct=_pct(elementwise, base_elementwise),
        ),
        uncounted_ops=tuple(sorted(uncounted.items())),
        references=reference_counts(config, shape, references),
    )


def input_shape(
    config: ModelConfig, input_size: int | Sequence[int] | None, batch: int
) -> tuple[int, int, int, int]:
    """[batch, 3, H, W], checked against the backbone's total stride."""
    spec = BACKBONES.get(config.backbone)
    batch = parse_int(batch, "batch")
    if batch < 1:
        raise SenetError(f"batch must be at least 1, got {batch}")
    if input_size is None:
        height = width = spec.default_input
    elif isinstance(input_size, int):
        height = width = input_size
    else:
        height, width = (int(side) for side in input_size)
    if min(height, width) < spec.min_input:
        raise SenetError(
            f"input {height}x{width} is too small for {config.backbone}: it downsamples by "
            f"{spec.min_input}, so each side must be at least {spec.min_input}"
        )
    return batch, 3, height, width


def _pct(value: int, base: int) -> float:
    return (value - base) / base * 100.0 if base else 0.0


def _measure(
    config: ModelConfig, shape: tuple[int, int, int, int]
) -> tuple[tuple[int, int, int], list[BlockCount], dict[str, int]]:
    """Build on the meta device, trace one forward, split the costs into stem, blocks and head."""
    with torch.device("meta"), skip_weight_init():
        model = build_from_config(config)
    inputs = torch.empty(shape, device="meta")
    try:
        trace = trace_costs(model, inputs)
    except RuntimeError as error:
        raise SenetError(f"{config.name} cannot run on input {list(shape)}: {first_line(error)}") from None
    spec = BACKBONES.get(config.backbone)
    rows = _split_rows(model, trace, spec.block_paths(model), spec.block_members(model))
    totals = (
        sum(p.numel() for p in model.parameters()),
        sum(op.macs for op in trace.ops),
        sum(op.elementwise_ops for op in trace.ops),
    )
    assert totals == tuple(sum(getattr(r, k) for r in rows) for k in ("params", "macs", "elementwise_ops")), (
        "rows must add up to the totals"
    )
    return totals, rows, dict(trace.uncounted)


def _within(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + ".")


def _split_rows(
    model: nn.Module, trace: Trace, blocks: list[tuple[str, int]], members: dict[str, str] | None = None
) -> list[BlockCount]:
    """Charge each op and parameter to one row: its block (or the block a module is a member of,
    see BackboneSpec.block_members), else the stem (before the first block ran) or the head. Within
    a row, the share inside attention modules is reported separately."""
    members = members or {}
    attention_paths = [path for path, m in model.named_modules() if isinstance(m, AttentionModule)]
    names = ["stem", *(name for name, _ in blocks), "head"]
    index_of_block = {name: i + 1 for i, (name, _) in enumerate(blocks)}
    totals = {name: [0, 0, 0, 0, 0, 0] for name in names}  # params, macs, elem, and attention's

    def block_of(path: str) -> str | None:
        parts = path.split(".")
        for depth in range(len(parts), 0, -1):
            candidate = ".".join(parts[:depth])
            if candidate in index_of_block:
                return candidate
            if candidate in members:
                return members[candidate]
        return None

    attention_memo: dict[str, bool] = {}

    def in_attention(path: str) -> bool:
        if path not in attention_memo:
            attention_memo[path] = any(_within(path, prefix) for prefix in attention_paths)
        return attention_memo[path]

    first_block = blocks[0][0] if blocks else None
    block_started = False
    for op in trace.ops:
        block = block_of(op.module)
        block_started = block_started or block is not None
        row = block or ("head" if block_started else "stem")
        cell = totals[row]
        cell[1] += op.macs
        cell[2] += op.elementwise_ops
        if in_attention(op.module):
            cell[4] += op.macs
            cell[5] += op.elementwise_ops

    first_block_call = trace.first_call.get(first_block, math.inf) if first_block else math.inf
    seen: set[int] = set()
    for path, module in model.named_modules():
        block = block_of(path)
        if block is None:
            called = trace.first_call.get(path, math.inf) if path else math.inf
            row = "stem" if called < first_block_call else "head"
        else:
            row = block
        for parameter in module.parameters(recurse=False):
            if id(parameter) in seen:
                continue
            seen.add(id(parameter))
            totals[row][0] += parameter.numel()
            if in_attention(path):
                totals[row][3] += parameter.numel()

    stage_of = dict(blocks)
    return [
        BlockCount(name, stage_of.get(name), *totals[name])  # type: ignore[arg-type]
        for name in names
    ]
