"""Split one counted forward pass into rows: the stem, each block of the backbone, the head.

Every op and every parameter is charged to exactly one row, so the rows add up to the model's
totals; within a row, the share spent inside attention modules is kept apart.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from senet_cli.attention.base import AttentionModule
from senet_cli.backbones import BACKBONES
from senet_cli.count.dispatch import Trace, trace_costs
from senet_cli.count.results import BlockCount
from senet_cli.errors import SenetError, first_line
from senet_cli.options import ExternalConfig, ModelConfig
from senet_cli.zoo import build_on_meta

if TYPE_CHECKING:
    from senet_cli.zoo.foreign import FoundAttention


def measure(
    config: ModelConfig, shape: tuple[int, int, int, int]
) -> tuple[tuple[int, int, int], list[BlockCount], dict[str, int]]:
    """Build on the meta device, trace one forward, split the costs into stem, blocks and head."""
    model = build_on_meta(config)
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
    model: nn.Module, trace: Trace, blocks: list[tuple[str, int]], members: dict[str, str] | None = None,
    attention: list[str] | None = None,
) -> list[BlockCount]:
    """Charge each op and parameter to one row: its block (or the block a module is a member of,
    see BackboneSpec.block_members), else the stem (before the first block ran) or the head. Within
    a row, the share inside attention modules (`attention`'s paths; default: the zoo's modules) is
    reported separately."""
    members = members or {}
    attention_paths = attention if attention is not None else [
        path for path, m in model.named_modules() if isinstance(m, AttentionModule)
    ]
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


def measure_external(
    config: ExternalConfig, shape: tuple[int, int, int, int]
) -> tuple[tuple[int, int, int], list[BlockCount], dict[str, int], tuple[int, int, int] | None,
           tuple[FoundAttention, ...]]:
    """`measure()` for a model outside the zoo, its blocks and attention found by
    senet_cli/zoo/foreign.py, plus the totals of the same model with its attention replaced by a
    pass-through (None where a module has no pass-through) and the attention found."""
    from senet_cli.zoo.foreign import build_external, external_blocks, find_attention, without_attention

    model = build_external(config, meta=True)
    found = find_attention(model, config.attention_classes)
    inputs = torch.empty(shape, device="meta")

    def run(what: str = config.name) -> tuple[Trace, tuple[int, int, int]]:
        try:
            trace = trace_costs(model, inputs)
        except Exception as error:  # noqa: BLE001 (a model outside the zoo may raise anything)
            raise SenetError(f"{what} cannot run on input {list(shape)}: {first_line(error)}") from None
        totals = (sum(p.numel() for p in model.parameters()), sum(op.macs for op in trace.ops),
                  sum(op.elementwise_ops for op in trace.ops))
        return trace, totals

    trace, totals = run()
    paths = [item.path for item in found]
    rows = _split_rows(model, trace, external_blocks(model, paths), attention=paths)
    assert totals == tuple(sum(getattr(r, k) for r in rows) for k in ("params", "macs", "elementwise_ops")), (
        "rows must add up to the totals"
    )
    passes_through = bool(found) and without_attention(model, found)
    what = f"{config.name} with its attention replaced by nn.Identity (a gate returns its input's shape)"
    base_totals = run(what)[1] if passes_through else None
    return totals, rows, dict(trace.uncounted), base_totals, found
