"""Views of `CountReport`s: per-block and summary tables, CSV rows, JSON text."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from senet_cli.count.results import BYTES_CONVENTION, CONVENTION, BlockCount, CountReport
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
    return f"{report.model}{f' ({options})' if options else ''} - input {shape}{_precision(report)}"


def _precision(report: CountReport) -> str:
    if report.amp:
        return ", bytes at float32 + float16 autocast"
    return "" if report.dtype == "float32" else f", bytes at {report.dtype}"


def _bound_cells(row: BlockCount) -> tuple[str, ...]:
    if row.roofline_ms is None:
        return ()
    return (f"{row.roofline_ms:,.4f}", "memory" if row.memory_bound else "compute")


def _predicts(report: CountReport) -> bool:
    return report.roofline is not None and report.roofline.predicted_ms is not None


def _latency_headers(report: CountReport) -> tuple[str, ...]:
    """Kernels per block (always) and the predicted time on a calibrated device (#22)."""
    return ("kernels", "attn kernels", *(("predicted (ms)", "attn predicted (ms)") if _predicts(report) else ()))


def _latency_cells(row: BlockCount) -> tuple[str, ...]:
    predicted = () if row.predicted_ms is None else (f"{row.predicted_ms:,.4f}", f"{row.attention_predicted_ms:,.4f}")
    return (str(row.kernels), str(row.attention_kernels), *predicted)


def _latency_totals(report: CountReport) -> tuple[str, ...]:
    roof = report.roofline
    predicted: tuple[str, ...] = ()
    if roof is not None and roof.predicted_ms is not None:
        predicted = (f"{roof.predicted_ms:,.4f}", f"{sum(r.attention_predicted_ms or 0.0 for r in report.rows):,.4f}")
    return (str(report.kernels), str(report.attention_total("kernels")), *predicted)


def per_block_table(report: CountReport) -> TableData:
    bound = report.roofline is not None
    headers = (
        "block", "stage", "params", "attn params", "MACs (M)", "attn MACs (M)",
        "elementwise (M)", "attn elementwise (M)", "MB moved", "attn MB",
        *(("bound (ms)", "bound by") if bound else ()),
        *_latency_headers(report),
    )
    rows = tuple(
        (
            row.name, "" if row.stage is None else str(row.stage), _int(row.params),
            _int(row.attention_params), _scaled(row.macs, 1e6, 2), _scaled(row.attention_macs, 1e6, 3),
            _scaled(row.elementwise_ops, 1e6, 3), _scaled(row.attention_elementwise_ops, 1e6, 3),
            _scaled(row.bytes, 1e6, 2), _scaled(row.attention_bytes, 1e6, 2), *_bound_cells(row),
            *_latency_cells(row),
        )
        for row in report.rows
    )
    footer = (
        "total", "", _int(report.params), _int(report.attention_total("params")),
        _scaled(report.macs, 1e6, 2), _scaled(report.attention_total("macs"), 1e6, 3),
        _scaled(report.elementwise_ops, 1e6, 3), _scaled(report.attention_total("elementwise_ops"), 1e6, 3),
        _scaled(report.bytes, 1e6, 2), _scaled(report.attention_total("bytes"), 1e6, 2),
        *((f"{report.roofline.ms:,.4f}", "") if report.roofline is not None else ()),
        *_latency_totals(report),
    )
    return TableData(
        title=_title(report), headers=headers, rows=rows, footer=footer, left_columns=2,
        caption=_overhead_line(report), notes=notes(report),
    )


def _overhead_line(report: CountReport) -> str:
    base, over = report.baseline, report.overhead
    if base is None or over is None:
        return f"{report.model}: no baseline (see the notes)"
    if report.plain:
        if report.notes:  # what was looked for and not found (a model outside the zoo)
            return f"{report.model}: no attention recognised, no overhead (see the notes)"
        return f"{report.model} is a plain backbone: no attention overhead."
    return (
        f"vs {base.model}: params {_int(base.params)} -> {_int(report.params)} "
        f"({_signed_pct(over.params_pct)}), MACs {base.macs / 1e9:.3f} G -> {report.macs / 1e9:.3f} G "
        f"({_signed_pct(over.macs_pct)}), elementwise ops {base.elementwise_ops / 1e6:.2f} M -> "
        f"{report.elementwise_ops / 1e6:.2f} M ({_signed_pct(over.elementwise_ops_pct)}), bytes "
        f"{base.bytes / 1e6:,.1f} MB -> {report.bytes / 1e6:,.1f} MB ({_signed_pct(over.bytes_pct)})"
        + _roofline_overhead(report)
    )


def _roofline_overhead(report: CountReport) -> str:
    roof = report.roofline
    if roof is None or roof.baseline_ms is None or roof.overhead_pct is None:
        return ""
    predicted = "" if roof.predicted_ms is None or roof.predicted_overhead_pct is None else (
        f", predicted {roof.baseline_predicted_ms:,.4f} ms -> {roof.predicted_ms:,.4f} ms "
        f"({_signed_pct(roof.predicted_overhead_pct)})")
    return (f", roofline bound on {roof.device} {roof.baseline_ms:,.4f} ms -> {roof.ms:,.4f} ms "
            f"({_signed_pct(roof.overhead_pct)})" + predicted)


def summary_table(reports: Sequence[CountReport]) -> TableData:
    counters = _reference_names(reports)
    bound = any(report.roofline is not None for report in reports)
    headers = (
        "model", "options", "params", "+params", "MACs (G)", "+MACs", "elementwise (M)",
        "+elementwise", "MB moved", "+bytes", *(("bound (ms)", "+bound") if bound else ()),
        *(f"{name} (G)" for name in counters),
    )
    rows = []
    for report in reports:
        over = report.overhead
        references = {ref.counter: ref.macs for ref in report.references}
        rows.append((
            report.model, short_options(report.config), _int(report.params),
            f"{_int(over.params)} ({_signed_pct(over.params_pct)})" if over else "no baseline",
            _scaled(report.macs, 1e9, 3),
            f"{_scaled(over.macs, 1e6, 2)} M ({_signed_pct(over.macs_pct)})" if over else "",
            _scaled(report.elementwise_ops, 1e6, 2),
            f"{_scaled(over.elementwise_ops, 1e6, 2)} M ({_signed_pct(over.elementwise_ops_pct)})" if over else "",
            _scaled(report.bytes, 1e6, 1),
            f"{_scaled(over.bytes, 1e6, 1)} MB ({_signed_pct(over.bytes_pct)})" if over else "",
            *(_summary_bound(report) if bound else ()),
            *(_scaled(references[name], 1e9, 3) if name in references else "" for name in counters),
        ))
    shapes = sorted({"x".join(map(str, report.input)) for report in reports})
    caption = f"input {', '.join(shapes)}; + columns: overhead against each model's plain backbone"
    all_notes: list[str] = []
    for report in reports:
        all_notes += [note for note in notes(report) if note not in all_notes]
    return TableData(
        title="parameters, multiply-accumulates and bytes moved", headers=headers, rows=tuple(rows),
        left_columns=2, caption=caption, notes=tuple(all_notes),
    )


def _summary_bound(report: CountReport) -> tuple[str, str]:
    roof = report.roofline
    if roof is None:
        return "", ""
    if roof.baseline_ms is None or roof.overhead_pct is None:
        return f"{roof.ms:,.4f}", ""
    return f"{roof.ms:,.4f}", f"{roof.ms - roof.baseline_ms:+,.4f} ms ({_signed_pct(roof.overhead_pct)})"


def _reference_names(reports: Sequence[CountReport]) -> list[str]:
    names: list[str] = []
    for report in reports:
        names += [ref.counter for ref in report.references if ref.counter not in names]
    return names


def notes(report: CountReport) -> tuple[str, ...]:
    """What a reader needs to trust the numbers: the convention, other counters, gaps."""
    lines = [f"convention: {CONVENTION}", BYTES_CONVENTION, *report.notes]
    if report.amp:
        lines.append("AMP (simulated autocast): conv/linear/matmul run in float16, their float32 inputs and "
                     "weights cast first, once per forward, the casts charged as copies")
    roof = report.roofline
    if roof is not None:
        memory_bound = [row.name for row in report.rows if row.memory_bound]
        lines.append(
            f"roofline: per op max(2 x MACs / {roof.peak_tflops:g} TFLOPS, bytes / {roof.bandwidth_gbs:g} GB/s), "
            f"summed; elementwise ops are charged by their bytes only; {roof.device}: {roof.source}; "
            f"rows bound mostly by memory: {len(memory_bound)} of {len(report.rows)}; memory-bound ops make "
            f"{roof.memory_bound_ms / roof.ms * 100 if roof.ms else 0:.0f}% of the bound"
        )
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
        "attention_params", "attention_macs", "attention_elementwise_ops", "bytes", "attention_bytes",
        "dtype", "amp", "roofline_ms", "memory_bound", "kernels", "attention_kernels", "predicted_ms",
        "attention_predicted_ms",
    ]
    rows = [
        [report.model, row.name, "" if row.stage is None else row.stage, row.params, row.macs,
         row.elementwise_ops, row.attention_params, row.attention_macs, row.attention_elementwise_ops,
         row.bytes, row.attention_bytes, report.dtype, report.amp,
         "" if row.roofline_ms is None else row.roofline_ms, "" if row.memory_bound is None else row.memory_bound,
         row.kernels, row.attention_kernels, *("" if value is None else value
                                               for value in (row.predicted_ms, row.attention_predicted_ms))]
        for report in reports
        for row in report.rows
    ]
    return headers, rows


def _predicted_csv(report: CountReport) -> tuple[Any, ...]:
    roof = report.roofline
    values = (roof.predicted_ms, roof.baseline_predicted_ms, roof.predicted_overhead_pct) if roof else (None,) * 3
    return tuple("" if value is None else value for value in values)


def summary_csv_rows(reports: Sequence[CountReport]) -> tuple[list[str], list[list[Any]]]:
    counters = _reference_names(reports)
    headers = [
        "model", "options", "batch", "height", "width", "params", "macs", "elementwise_ops",
        "baseline_model", "baseline_params", "baseline_macs", "baseline_elementwise_ops",
        "overhead_params", "overhead_macs", "overhead_elementwise_ops", "overhead_params_pct",
        "overhead_macs_pct", "overhead_elementwise_ops_pct", *(f"{name}_macs" for name in counters),
        "dtype", "amp", "bytes", "baseline_bytes", "overhead_bytes", "overhead_bytes_pct",
        "roofline_device", "roofline_ms", "baseline_roofline_ms", "roofline_overhead_pct",
        "kernels", "baseline_kernels", "overhead_kernels", "predicted_ms", "baseline_predicted_ms",
        "predicted_overhead_pct",
    ]
    rows = []
    for report in reports:
        base, over = report.baseline, report.overhead
        references = {ref.counter: ref.macs for ref in report.references}
        batch, _, height, width = report.input
        no_baseline = [""] * 10
        rows.append([
            report.model, json.dumps(report.config.as_dict(), sort_keys=True), batch, height, width,
            report.params, report.macs, report.elementwise_ops,
            *([base.model, base.params, base.macs, base.elementwise_ops, over.params, over.macs,
               over.elementwise_ops, round(over.params_pct, 6), round(over.macs_pct, 6),
               round(over.elementwise_ops_pct, 6)]
              if base is not None and over is not None else no_baseline),
            *(references.get(name, "") for name in counters),
            report.dtype, report.amp, report.bytes,
            *((base.bytes, over.bytes, round(over.bytes_pct, 6)) if base is not None and over is not None
              else ("", "", "")),
            *((roof.device, roof.ms, "" if roof.baseline_ms is None else roof.baseline_ms,
               "" if roof.overhead_pct is None else round(roof.overhead_pct, 6)) if (roof := report.roofline)
              else ("", "", "", "")),
            report.kernels, *((base.kernels, over.kernels) if base is not None and over is not None else ("", "")),
            *_predicted_csv(report),
        ])
    return headers, rows

