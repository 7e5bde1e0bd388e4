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

from senet_cli import vocabulary
from senet_cli.attention.base import AttentionModule
from senet_cli.count.dispatch import Trace
from senet_cli.count.latency import OpPredict
from senet_cli.count.on_cpu import traced
from senet_cli.count.results import BlockCount

if TYPE_CHECKING:
    from senet_cli.outside.build import FoundAttention
    from senet_cli.subject import Subject

OpTime = Callable[[int, int], tuple[float, bool]]
"""(macs, bytes) -> (seconds, memory-bound): roofline.OpTimer.seconds."""


def measure(
    subject: Subject, shape: tuple[int, int, int, int], dtype: str = "float32", amp: bool = False,
    op_time: OpTime | None = None, predict: OpPredict | None = None,
) -> tuple[tuple[int, int, int, int], list[BlockCount], dict[str, int], tuple[FoundAttention, ...], str | None]:
    """Build on the meta device, trace one forward, split the costs into stem, blocks and head (the
    subject's blocks and block members), the share inside its attention modules kept apart. Returns
    the totals, the rows, the ops nobody counted, the attention found, and a note when the forward
    could not run on meta and was counted on the CPU instead (count/on_cpu.py; else None).

    dtype: the weights' and input's dtype (a name in vocabulary.DTYPES); amp: a float32 model
    under float16 autocast, simulated (dispatch._AutocastOnMeta). Only bytes depend on them.
    op_time: when given, each row also gets its roofline bound, summed op by op; predict: its
    predicted time on a calibrated device, likewise."""
    model = subject.build(meta=True)
    torch_dtype = vocabulary.torch_dtype(dtype)
    if torch_dtype != torch.float32:  # the model is built in float32; _apply over every module costs
        model.to(torch_dtype)
    found = subject.attention(model)
    inputs = torch.empty(shape, device="meta", dtype=torch_dtype)
    # a forward that needs real data runs on the CPU instead, bounded (count/on_cpu.py)
    model, trace, cpu_note = traced(subject, model, inputs, torch.float16 if amp else None)
    rows = _split_rows(model, trace, subject.blocks(model), subject.block_members(model), op_time,
                       attention=[item.path for item in found], predict=predict)
    totals = (
        sum(p.numel() for p in model.parameters()),
        sum(op.macs for op in trace.ops),
        sum(op.elementwise_ops for op in trace.ops),
        sum(op.bytes for op in trace.ops),
    )
    assert totals == tuple(sum(getattr(r, k) for r in rows) for k in _MEASURES), "rows must add up to the totals"
    return totals, rows, dict(trace.uncounted), found, cpu_note


_MEASURES = ("params", "macs", "elementwise_ops", "bytes")
_STEM, _HEAD = "\0stem", "\0head"
"""Row keys of what runs before the first block and after the last: no module path has a NUL (a model
outside the zoo may have a top-level block called `stem` or `head`)."""
_SHOWN = {_STEM: "stem", _HEAD: "head"}


def _within(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + ".")


def _split_rows(
    model: nn.Module, trace: Trace, blocks: list[tuple[str, int]], members: dict[str, str] | None = None,
    op_time: OpTime | None = None, attention: list[str] | None = None, predict: OpPredict | None = None,
) -> list[BlockCount]:
    """Charge each op and parameter to one row: its block (or the block a module is a member of,
    see BackboneSpec.block_members), else the stem (before the first block ran) or the head. Within
    a row, the share inside attention modules (`attention`'s paths; default: the zoo's modules) is
    reported separately. Each row counts its kernels (traced ops: each launches work) and, with
    `op_time` and `predict`, sums its ops' roofline bounds and predicted times."""
    members = members or {}
    attention_paths = attention if attention is not None else [
        path for path, m in model.named_modules() if isinstance(m, AttentionModule)
    ]
    names = [_STEM, *(name for name, _ in blocks), _HEAD]  # keys apart from a block's path, which may be "stem"
    index_of_block = {name: i + 1 for i, (name, _) in enumerate(blocks)}
    totals = {name: [0] * 8 for name in names}  # params, macs, elem, and attention's; bytes, attention's
    bounds = {name: [0.0, 0.0] for name in names}  # roofline seconds, of which memory-bound
    kernels = {name: [0, 0] for name in names}  # ops that launch work, attention's
    predicted = {name: [0.0, 0.0] for name in names}  # predicted seconds, attention's

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
        row = block or (_HEAD if block_started else _STEM)
        cell = totals[row]
        cell[1] += op.macs
        cell[2] += op.elementwise_ops
        cell[6] += op.bytes
        if op_time is not None:
            seconds, memory_bound = op_time(op.macs, op.bytes)
            bounds[row][0] += seconds
            bounds[row][1] += seconds if memory_bound else 0.0
        op_seconds = op.predicted_by(predict) if predict is not None else 0.0
        attended = in_attention(op.module)
        kernels[row][0] += 1
        kernels[row][1] += attended
        predicted[row][0] += op_seconds
        predicted[row][1] += op_seconds if attended else 0.0
        if attended:
            cell[4] += op.macs
            cell[5] += op.elementwise_ops
            cell[7] += op.bytes

    first_block_call = trace.first_call.get(first_block, math.inf) if first_block else math.inf
    seen: set[int] = set()
    for path, module in model.named_modules():
        block = block_of(path)
        if block is None:
            called = trace.first_call.get(path, math.inf) if path else math.inf
            row = _STEM if called < first_block_call else _HEAD
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
    rows = []
    for name in names:
        params, macs, elementwise, attention_params, attention_macs, attention_elementwise, traffic, \
            attention_traffic = totals[name]
        rows.append(BlockCount(
            _SHOWN.get(name, name), stage_of.get(name), params, macs, elementwise, attention_params, attention_macs,
            attention_elementwise, bytes=traffic, attention_bytes=attention_traffic,
            roofline_ms=bounds[name][0] * 1e3 if op_time is not None else None,
            memory_bound_ms=bounds[name][1] * 1e3 if op_time is not None else None,
            kernels=kernels[name][0], attention_kernels=kernels[name][1],
            predicted_ms=predicted[name][0] * 1e3 if predict is not None else None,
            attention_predicted_ms=predicted[name][1] * 1e3 if predict is not None else None,
        ))
    return rows
