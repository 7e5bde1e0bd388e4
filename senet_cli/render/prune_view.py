"""Views of `PruneReport`s: a table per report (one row per pruned module, the total below), CSV rows.

The table's columns are declared once (`BLOCK_COLUMNS`, `SWEEP_COLUMNS`); the default set reads at
80 columns, a column selection shows the rest, and JSON and CSV always hold every field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from senet_cli.prune.results import BlockPrune, Evaluation, PruneReport
from senet_cli.render.tables import Column, TableData, table_from_columns


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _spread(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.4f}"


def _change(before: float, after: float, unit: str = "", scale: float = 1.0, digits: int = 0) -> str:
    pct = f" ({(after - before) / before * 100:+.2f}%)" if before else ""
    return f"{before / scale:,.{digits}f} -> {after / scale:,.{digits}f}{unit}{pct}"


def _alone(block: BlockPrune) -> str:
    """The accuracy (or agreement, without labels) with only this block pruned."""
    alone = block.alone
    if alone is None:
        return "-"
    return _pct(alone.top1 if alone.top1 is not None else alone.agreement)


BLOCK_COLUMNS: tuple[Column, ...] = (
    Column("block", "block", lambda b: b.block, lambda r: "total"),
    Column("mode", "done", lambda b: b.mode, lambda r: r.mode),
    Column("module", "module", lambda b: b.module, lambda r: f"{len(r.blocks)} module(s)", default=False),
    Column("folded_into", "folded into", lambda b: ", ".join(b.folded_into) or "-", default=False),
    Column("stage", "stage", lambda b: str(b.stage), default=False),
    Column("image_spread", "spread\nimages", lambda b: _spread(b.image_spread)),
    Column("class_spread", "spread\nclasses", lambda b: _spread(b.class_spread), default=False),
    Column("params", "params\nsaved", lambda b: f"{b.params:,}", lambda r: f"{r.saved.params:,}"),
    Column("macs", "MACs\nsaved (M)", lambda b: f"{b.macs / 1e6:,.3f}", lambda r: f"{r.saved.macs / 1e6:,.3f}"),
    Column("elementwise_ops", "elem. ops\nsaved (M)", lambda b: f"{b.elementwise_ops / 1e6:,.3f}",
           lambda r: f"{r.saved.elementwise_ops / 1e6:,.3f}", default=False),
    Column("bytes", "MB\nsaved", lambda b: f"{b.bytes / 1e6:,.2f}", lambda r: f"{r.saved.bytes / 1e6:,.2f}",
           default=False),
    Column("kernels", "kernels\nsaved", lambda b: f"{b.kernels:,}", lambda r: f"{r.saved.kernels:,}"),
    Column("predicted_ms", "predicted\nms saved", lambda b: _ms(b.predicted_ms), lambda r: _ms(r.saved.predicted_ms),
           default=False),
)
"""The table's columns, one per pruned module: a new field is one more entry (`default`: shown at 80
columns; every field is in JSON and CSV)."""

SWEEP_COLUMNS: tuple[Column, ...] = (
    Column("alone", "accuracy\nalone", _alone),
    Column("alone_max_logit_change", "max logit\nchange alone",
           lambda b: "-" if b.alone is None else f"{b.alone.max_logit_change:.3g}", default=False),
    Column("cost_per_kparam", "cost per\n1k params", lambda b: _spread(b.cost_per_kparam)),
    Column("cost_per_ms", "cost per\nms", lambda b: _spread(b.cost_per_ms), default=False),
)
"""... and with a sweep, each block pruned alone: its accuracy (agreement without labels) and cost."""

SWEEP_HIDDEN = ("image_spread", "kernels")
"""Left to a column selection with a sweep, so that the sweep's columns fit 80."""


def column_keys() -> tuple[str, ...]:
    """Every column key a selection may name in the prune table."""
    return tuple(column.key for column in BLOCK_COLUMNS + SWEEP_COLUMNS)


def _evaluation(label: str, e: Evaluation) -> str:
    parts = [f"{label}: top-1 {_pct(e.top1)}"] if e.top1 is not None else [f"{label}:"]
    if e.top5 is not None:
        parts.append(f"top-5 {_pct(e.top5)}")
    parts.append(f"agreement with the original {_pct(e.agreement)}")
    parts.append(f"logit change max {e.max_logit_change:.3g}, mean {e.mean_logit_change:.3g}")
    return ", ".join(parts).replace(":,", ":")


def prune_table(report: PruneReport) -> TableData:
    sweep = report.sweep
    columns = list(BLOCK_COLUMNS)
    if sweep:
        columns = [Column(c.key, c.header, c.cell, c.total, default=False) if c.key in SWEEP_HIDDEN else c
                   for c in columns] + list(SWEEP_COLUMNS)
    before, after = report.cost_before, report.cost_after
    notes = [
        _evaluation("before", report.before) + f" ({report.before.images:,} images: {report.data})",
        _evaluation("after", report.after),
        f"params {_change(before.params, after.params)}; MACs {_change(before.macs, after.macs)}; elementwise ops "
        f"{_change(before.elementwise_ops, after.elementwise_ops)}; bytes "
        f"{_change(before.bytes, after.bytes, ' MB', 1e6, 2)}; kernels {_change(before.kernels, after.kernels)} "
        f"(count, one {report.input[0]}x{report.input[1]} image)",
    ]
    if before.roofline_ms is not None and after.roofline_ms is not None:
        bound = _change(before.roofline_ms, after.roofline_ms, " ms", 1, 4)
        notes.append(f"roofline bound on {report.roofline_device}: {bound}, a bound, not a measurement")
    if before.predicted_ms is not None and after.predicted_ms is not None:
        notes.append(f"predicted time on {report.roofline_device} (calibrated): "
                     f"{_change(before.predicted_ms, after.predicted_ms, ' ms', 1, 4)}")
    if sweep:
        per = "predicted ms" if report.blocks and all(b.cost_per_ms is not None for b in report.blocks) \
            else "1,000 parameters"
        notes.append(f"rows ranked by accuracy cost per {per} saved (top-1 points lost, or disagreement without "
                     f"labels), each block pruned alone")
    notes += list(report.notes)
    notes.append(f"wrote {report.output}: count and inspect rebuild the pruned model from it" if report.output
                 else "no checkpoint written")
    title = (f"{report.model} - {report.mode} attention of {report.selection}, {report.device}"
             + (f", {report.world_size} processes" if report.world_size > 1 else ""))
    blocks = report.ranked() if sweep else report.blocks
    return table_from_columns(columns, blocks, title=title, left_columns=2, total_of=report, notes=tuple(notes))


CSV_FIELDS = ("block", "stage", "module", "mode", "folded_into", "image_spread", "class_spread", "params", "macs",
              "elementwise_ops", "bytes", "kernels", "predicted_ms")


def csv_rows(reports: Sequence[PruneReport]) -> tuple[list[str], list[list[Any]]]:
    headers = ["model", *CSV_FIELDS, "alone_top1", "alone_agreement", "alone_max_logit_change", "cost_per_kparam",
               "cost_per_ms"]
    rows = []
    for report in reports:
        for b in report.ranked() if report.sweep else report.blocks:
            values = b.to_dict()
            alone = b.alone
            rows.append([report.model, *("" if values[f] is None else
                                         " ".join(values[f]) if isinstance(values[f], list) else values[f]
                                         for f in CSV_FIELDS),
                         "" if alone is None or alone.top1 is None else alone.top1,
                         "" if alone is None else alone.agreement, "" if alone is None else alone.max_logit_change,
                         "" if b.cost_per_kparam is None else b.cost_per_kparam,
                         "" if b.cost_per_ms is None else b.cost_per_ms])
    return headers, rows
