"""Split one counted forward pass into rows: the stem, each block of the backbone, the head.

Every op and every parameter is charged to exactly one row, so the rows add up to the model's
totals; within a row, the share spent inside attention modules is kept apart.
"""

from __future__ import annotations

import math
from collections.abc import Callable
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
    from senet_cli.outside.build import FoundAttention

OpTime = Callable[[int, int], tuple[float, bool]]
"""(macs, bytes) -> (seconds, memory-bound): roofline.OpTimer.seconds."""


def measure(
    config: ModelConfig, shape: tuple[int, int, int, int], dtype: str = "float32", amp: bool = False,
    op_time: OpTime | None = None,
) -> tuple[tuple[int, int, int, int], list[BlockCount], dict[str, int]]:
    """Build on the meta device, trace one forward, split the costs into stem, blocks and head.

    dtype: the weights' and input's dtype (a name in profile.timing.DTYPES); amp: a float32 model
    under float16 autocast, simulated (dispatch._AutocastOnMeta). Only bytes depend on them.
    op_time: when given, each row also gets its roofline bound, summed op by op."""
    model = build_on_meta(config)
    torch_dtype = getattr(torch, dtype)
    if torch_dtype != torch.float32:  # the model is built in float32; _apply over every module costs
        model.to(torch_dtype)
    inputs = torch.empty(shape, device="meta", dtype=torch_dtype)
    try:
        trace = trace_costs(model, inputs, autocast=torch.float16 if amp else None)
    except RuntimeError as error:
        raise SenetError(f"{config.name} cannot run on input {list(shape)}: {first_line(error)}") from None
    spec = BACKBONES.get(config.backbone)
    rows = _split_rows(model, trace, spec.block_paths(model), spec.block_members(model), op_time)
    totals = (
        sum(p.numel() for p in model.parameters()),
        sum(op.macs for op in trace.ops),
        sum(op.elementwise_ops for op in trace.ops),
        sum(op.bytes for op in trace.ops),
    )
    assert totals == tuple(sum(getattr(r, k) for r in rows) for k in _MEASURES), "rows must add up to the totals"
    return totals, rows, dict(trace.uncounted)


_MEASURES = ("params", "macs", "elementwise_ops", "bytes")


def _within(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + ".")


def _split_rows(
    model: nn.Module, trace: Trace, blocks: list[tuple[str, int]], members: dict[str, str] | None = None,
    op_time: OpTime | None = None, attention: list[str] | None = None,
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
    totals = {name: [0] * 8 for name in names}  # params, macs, elem, and attention's; bytes, attention's
    bounds = {name: [0.0, 0.0] for name in names}  # roofline seconds, of which memory-bound

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
        cell[6] += op.bytes
        if op_time is not None:
            seconds, memory_bound = op_time(op.macs, op.bytes)
            bounds[row][0] += seconds
            bounds[row][1] += seconds if memory_bound else 0.0
        if in_attention(op.module):
            cell[4] += op.macs
            cell[5] += op.elementwise_ops
            cell[7] += op.bytes

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
        BlockCount(name, stage_of.get(name), *totals[name],  # type: ignore[arg-type]
                   *((bounds[name][0] * 1e3, bounds[name][1] * 1e3) if op_time is not None else (None, None)))
        for name in names
    ]


def measure_external(
    config: ExternalConfig, shape: tuple[int, int, int, int], dtype: str = "float32", amp: bool = False,
    op_time: OpTime | None = None,
) -> tuple[tuple[int, int, int, int], list[BlockCount], dict[str, int],
           tuple[tuple[int, int, int, int], list[BlockCount]] | None, tuple[FoundAttention, ...]]:
    """`measure()` for a model outside the zoo, its blocks and attention found by
    senet_cli/outside/build.py, plus the totals and rows of the same model with its attention replaced
    by a pass-through (None where a module has no pass-through) and the attention found."""
    from senet_cli.outside.build import build_external, external_blocks, find_attention, without_attention

    model = build_external(config, meta=True)
    torch_dtype = getattr(torch, dtype)
    if torch_dtype != torch.float32:
        model.to(torch_dtype)
    found = find_attention(model, config.attention_classes)
    inputs = torch.empty(shape, device="meta", dtype=torch_dtype)
    paths = [item.path for item in found]

    def run(what: str = config.name) -> tuple[tuple[int, int, int, int], list[BlockCount], Trace]:
        try:
            trace = trace_costs(model, inputs, autocast=torch.float16 if amp else None)
        except Exception as error:  # noqa: BLE001 (a model outside the zoo may raise anything)
            raise SenetError(f"{what} cannot run on input {list(shape)}: {first_line(error)}") from None
        totals = (sum(p.numel() for p in model.parameters()), sum(op.macs for op in trace.ops),
                  sum(op.elementwise_ops for op in trace.ops), sum(op.bytes for op in trace.ops))
        rows = _split_rows(model, trace, external_blocks(model, paths), op_time=op_time, attention=paths)
        assert totals == tuple(sum(getattr(r, k) for r in rows) for k in _MEASURES), "rows must add up to the totals"
        return totals, rows, trace

    totals, rows, trace = run()
    passes_through = bool(found) and without_attention(model, found)
    what = f"{config.name} with its attention replaced by nn.Identity (a gate returns its input's shape)"
    base = run(what)[:2] if passes_through else None
    return totals, rows, dict(trace.uncounted), base, found
