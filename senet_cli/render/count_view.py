"""Views of `CountReport`s: per-block and summary tables, CSV rows, JSON text."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from senet_cli.count.results import CONVENTION, CountReport
from senet_cli.render.config_text import short_options
from senet_cli.render.tables import TableData


def _int(value: int) -> str:
    return f"{value:,}"


def _scaled(value: int, scale: float, digits: int) -> str:
    return f"{value / scale:,.{digits}f}"


def _signed_pct(value: float) -> str:
    return f"{value:+.2f}%"


def _title(report: CountReport) -> str:
    options = short_options(report.config)
    shape = "x".join(map(str, report.input))
    return f"{report.model}{f' ({options})' if options else ''} - input {shape}"


def per_block_table(report: CountReport) -> TableData:
    headers = (
        "block", "stage", "params", "attn params", "MACs (M)", "attn MACs (M)",
        "elementwise (M)", "attn elementwise (M)",
    )
    rows = tuple(
        (
            row.name, "" if row.stage is None else str(row.stage), _int(row.params),
            _int(row.attention_params), _scaled(row.macs, 1e6, 2), _scaled(row.attention_macs, 1e6, 3),
            _scaled(row.elementwise_ops, 1e6, 3), _scaled(row.attention_elementwise_ops, 1e6, 3),
        )
        for row in report.rows
    )
    footer = (
        "total", "", _int(report.params), _int(report.attention_total("params")),
        _scaled(report.macs, 1e6, 2), _scaled(report.attention_total("macs"), 1e6, 3),
        _scaled(report.elementwise_ops, 1e6, 3), _scaled(report.attention_total("elementwise_ops"), 1e6, 3),
    )
    return TableData(
        title=_title(report), headers=headers, rows=rows, footer=footer, left_columns=2,
        caption=_overhead_line(report), notes=notes(report),
    )


def _overhead_line(report: CountReport) -> str:
    base, over = report.baseline, report.overhead
    if report.config.attention is None:
        return f"{report.model} is a plain backbone: no attention overhead."
    return (
        f"vs {base.model}: params {_int(base.params)} -> {_int(report.params)} "
        f"({_signed_pct(over.params_pct)}), MACs {base.macs / 1e9:.3f} G -> {report.macs / 1e9:.3f} G "
        f"({_signed_pct(over.macs_pct)}), elementwise ops {base.elementwise_ops / 1e6:.2f} M -> "
        f"{report.elementwise_ops / 1e6:.2f} M ({_signed_pct(over.elementwise_ops_pct)})"
    )


def summary_table(reports: Sequence[CountReport]) -> TableData:
    counters = _reference_names(reports)
    headers = (
        "model", "options", "params", "+params", "MACs (G)", "+MACs", "elementwise (M)",
        "+elementwise", *(f"{name} (G)" for name in counters),
    )
    rows = []
    for report in reports:
        over = report.overhead
        references = {ref.counter: ref.macs for ref in report.references}
        rows.append((
            report.model, short_options(report.config), _int(report.params),
            f"{_int(over.params)} ({_signed_pct(over.params_pct)})",
            _scaled(report.macs, 1e9, 3),
            f"{_scaled(over.macs, 1e6, 2)} M ({_signed_pct(over.macs_pct)})",
            _scaled(report.elementwise_ops, 1e6, 2),
            f"{_scaled(over.elementwise_ops, 1e6, 2)} M ({_signed_pct(over.elementwise_ops_pct)})",
            *(_scaled(references[name], 1e9, 3) if name in references else "" for name in counters),
        ))
    shapes = sorted({"x".join(map(str, report.input)) for report in reports})
    caption = f"input {', '.join(shapes)}; + columns: overhead against each model's plain backbone"
    all_notes: list[str] = []
    for report in reports:
        all_notes += [note for note in notes(report) if note not in all_notes]
    return TableData(
        title="parameters and multiply-accumulates", headers=headers, rows=tuple(rows),
        left_columns=2, caption=caption, notes=tuple(all_notes),
    )


def _reference_names(reports: Sequence[CountReport]) -> list[str]:
    names: list[str] = []
    for report in reports:
        names += [ref.counter for ref in report.references if ref.counter not in names]
    return names


def notes(report: CountReport) -> tuple[str, ...]:
    """What a reader needs to trust the numbers: the convention, other counters, gaps."""
    lines = [f"convention: {CONVENTION}"]
    for ref in report.references:
        conv = (
            f"; its conv+linear part is {ref.conv_linear_macs:,} vs our {report.macs:,} MACs"
            if ref.conv_linear_macs is not None else ""
        )
        lines.append(f"{ref.counter}: {ref.macs:,} for {report.model}{conv}. {ref.note}")
    if report.uncounted_ops:
        uncounted = ", ".join(f"{name} x{calls}" for name, calls in report.uncounted_ops)
        lines.append(f"ops with no cost formula, not counted: {uncounted}")
    return tuple(lines)


def per_block_csv_rows(reports: Sequence[CountReport]) -> tuple[list[str], list[list[Any]]]:
    headers = [
        "model", "block", "stage", "params", "macs", "elementwise_ops",
        "attention_params", "attention_macs", "attention_elementwise_ops",
    ]
    rows = [
        [report.model, row.name, "" if row.stage is None else row.stage, row.params, row.macs,
         row.elementwise_ops, row.attention_params, row.attention_macs, row.attention_elementwise_ops]
        for report in reports
        for row in report.rows
    ]
    return headers, rows


def summary_csv_rows(reports: Sequence[CountReport]) -> tuple[list[str], list[list[Any]]]:
    counters = _reference_names(reports)
    headers = [
        "model", "options", "batch", "height", "width", "params", "macs", "elementwise_ops",
        "baseline_model", "baseline_params", "baseline_macs", "baseline_elementwise_ops",
        "overhead_params", "overhead_macs", "overhead_elementwise_ops", "overhead_params_pct",
        "overhead_macs_pct", "overhead_elementwise_ops_pct", *(f"{name}_macs" for name in counters),
    ]
    rows = []
    for report in reports:
        base, over = report.baseline, report.overhead
        references = {ref.counter: ref.macs for ref in report.references}
        batch, _, height, width = report.input
        rows.append([
            report.model, json.dumps(report.config.as_dict(), sort_keys=True), batch, height, width,
            report.params, report.macs, report.elementwise_ops, base.model, base.params, base.macs,
            base.elementwise_ops, over.params, over.macs, over.elementwise_ops,
            round(over.params_pct, 6), round(over.macs_pct, 6), round(over.elementwise_ops_pct, 6),
            *(references.get(name, "") for name in counters),
        ])
    return headers, rows

