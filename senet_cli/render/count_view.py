"""Views of `CountReport`s: per-block and summary tables, CSV rows, JSON text."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

from senet_cli.count.latency import cold_op_text, cold_read_text, cold_write_text
from senet_cli.count.results import BYTES_CONVENTION, CONVENTION, KERNELS_CONVENTION, BlockCount, CountReport
from senet_cli.render.config_text import short_options
from senet_cli.render.tables import Column, TableData, table_from_columns
from senet_cli.render.tables import milliseconds as _ms


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


def _value(item: BlockCount | CountReport, field: str) -> int:
    """`field` of a row, or the report's total of it (attention totals summed over the rows)."""
    if isinstance(item, CountReport) and field.startswith("attention_"):
        return item.attention_total(field[len("attention_"):])
    return int(getattr(item, field))


def _millions(value: int, digits: int) -> str:
    """`value` in millions (10^6): `digits` decimals, fewer past six significant figures (4,091.70
    but 261,869 at batch 64), so large batches fit a column; the caption's figures are the table's."""
    millions = value / 1e6
    whole = len(str(int(abs(millions))))
    return f"{millions:,.{min(digits, max(0, 6 - whole))}f}"


def _m(digits: int, field: str) -> Callable[[Any], str]:
    """A cell of `field` in millions (`_millions`), for a row or for the total."""
    return lambda item: _millions(_value(item, field), digits)


def _count(field: str) -> Callable[[Any], str]:
    """A cell of `field` as a whole number, for a row or for the total."""
    return lambda item: _int(_value(item, field))


BLOCK_COLUMNS: tuple[Column, ...] = (
    Column("block", "block", lambda row: row.name, lambda report: "total"),
    Column("stage", "stage", lambda row: "" if row.stage is None else str(row.stage), default=False),
    Column("params", "params", _count("params"), _count("params")),
    Column("attention_params", "attn\nparams", _count("attention_params"), _count("attention_params")),
    Column("macs", "MACs\n(M)", _m(2, "macs"), _m(2, "macs")),
    Column("attention_macs", "attn MACs\n(M)", _m(3, "attention_macs"), _m(3, "attention_macs"), default=False),
    Column("elementwise_ops", "elem. ops\n(M)", _m(3, "elementwise_ops"), _m(3, "elementwise_ops")),
    Column("attention_elementwise_ops", "attn elem.\nops (M)", _m(3, "attention_elementwise_ops"),
           _m(3, "attention_elementwise_ops"), default=False),
    Column("bytes", "moved\n(MB)", _m(2, "bytes"), _m(2, "bytes")),
    Column("attention_bytes", "attn\nMB", _m(2, "attention_bytes"), _m(2, "attention_bytes")),
)
"""The per-block table's columns, in order: a new per-block field is one more entry (`default`:
shown by default; every field is in JSON and CSV whatever is shown)."""

BOUND_COLUMNS: tuple[Column, ...] = (
    Column("roofline_ms", "bound\n(ms)", lambda row: _ms(row.roofline_ms), lambda report: _ms(report.roofline.ms)),
    Column("memory_bound", "bound\nby", lambda row: "" if row.memory_bound is None else
           "memory" if row.memory_bound else "compute", default=False),
)
"""... and those shown only with a roofline (a device to bound the time on)."""


LATENCY_COLUMNS: tuple[Column, ...] = (
    Column("kernels", "kernels", _count("kernels"), _count("kernels"), default=False),  # the caption has the total
    Column("attention_kernels", "attn\nkernels", _count("attention_kernels"), _count("attention_kernels")),
)
"""... kernels per block (ops that launch work, issue #22), always counted ..."""


def _predicted_total(report: CountReport) -> str:
    roof = report.roofline
    return _ms(None if roof is None else roof.predicted_ms)


PREDICTED_COLUMNS: tuple[Column, ...] = (
    Column("predicted_ms", "predicted\n(ms)",
           lambda row: _ms(row.predicted_ms), _predicted_total),
    Column("attention_predicted_ms", "attn pred.\n(ms)",
           lambda row: _ms(row.attention_predicted_ms),
           lambda report: _ms(sum(r.attention_predicted_ms or 0.0 for r in report.rows))),
)
"""... and the predicted time, shown with a calibrated device (a `senet calibrate` device file)."""


def _predicts(report: CountReport) -> bool:
    return report.roofline is not None and report.roofline.predicted_ms is not None


BLOCK_SHOWN_WITH_BOUND = ("block", "attention_params", "macs", "bytes", "attention_bytes", "attention_kernels",
                          "roofline_ms")
"""The per-block columns shown by default with a roofline bound: the time takes the place of the
block's parameters (the caption has them) and elementwise ops (in the bytes the bound charges), so
the table fits 80 columns at batch 64 too."""
BLOCK_SHOWN_WITH_PREDICTION = ("block", "macs", "bytes", "attention_bytes", "attention_kernels", "roofline_ms",
                               "predicted_ms", "attention_predicted_ms")
"""... and with a prediction (a device file): what sets the time (MACs, bytes, the attention's
kernels), the bound and the prediction; parameters are in the caption."""


def per_block_table(report: CountReport, explain: bool = False, hint: str = "") -> TableData:
    """One row per block and a total; the caption is the overhead against the baseline, the notes
    say how to read the numbers (in full with `explain`; `hint` as in `notes`)."""
    columns = (BLOCK_COLUMNS + LATENCY_COLUMNS + (BOUND_COLUMNS if report.roofline is not None else ())
               + (PREDICTED_COLUMNS if _predicts(report) else ()))
    shown = (BLOCK_SHOWN_WITH_PREDICTION if _predicts(report) else
             BLOCK_SHOWN_WITH_BOUND if report.roofline is not None else None)
    return table_from_columns(
        columns, report.rows, title=_title(report), left_columns=1, total_of=report, shown=shown,
        caption=_overhead_line(report), notes=lambda shown: notes(report, explain, hint, shown),
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
        f"({_signed_pct(over.params_pct)}), MACs {_millions(base.macs, 2)} M -> {_millions(report.macs, 2)} M "
        f"({_signed_pct(over.macs_pct)}), elementwise ops {_millions(base.elementwise_ops, 3)} M -> "
        f"{_millions(report.elementwise_ops, 3)} M ({_signed_pct(over.elementwise_ops_pct)}), bytes "
        f"{_millions(base.bytes, 2)} MB -> {_millions(report.bytes, 2)} MB ({_signed_pct(over.bytes_pct)}), kernels "
        f"{base.kernels:,} -> {report.kernels:,} ({_signed_pct(over.kernels_pct)})"
        + _roofline_overhead(report)
    )


def _roofline_overhead(report: CountReport) -> str:
    roof = report.roofline
    if roof is None or roof.baseline_ms is None or roof.overhead_pct is None:
        return ""
    predicted = "" if roof.predicted_ms is None or roof.predicted_overhead_pct is None else (
        f", predicted {_ms(roof.baseline_predicted_ms)} ms -> {_ms(roof.predicted_ms)} ms "
        f"({_signed_pct(roof.predicted_overhead_pct)})")
    return (f", roofline bound on {roof.device} {_ms(roof.baseline_ms)} ms -> {_ms(roof.ms)} ms "
            f"({_signed_pct(roof.overhead_pct)})" + predicted)


def _over(field: str, scale: float = 1.0, digits: int = 0, unit: str = "") -> Callable[[CountReport], str]:
    """A summary cell of the overhead's `field`: a percentage, or an amount in `unit`."""
    def cell(report: CountReport) -> str:
        over = report.overhead
        if over is None:
            return "no baseline" if field == "params_pct" else ""
        value = getattr(over, field)
        if field.endswith("_pct"):
            return _signed_pct(value)
        return f"{value / scale:+,.{digits}f}{unit}"
    return cell


SUMMARY_COLUMNS: tuple[Column, ...] = (
    Column("model", "model", lambda report: report.model),
    Column("options", "options", lambda report: short_options(report.config)),
    Column("params", "params", lambda report: _int(report.params)),
    Column("overhead_params", "+params", _over("params"), default=False),
    Column("overhead_params_pct", "+params\n%", _over("params_pct")),
    Column("macs", "MACs\n(G)", lambda report: _scaled(report.macs, 1e9, 3)),
    Column("overhead_macs", "+MACs\n(M)", _over("macs", 1e6, 2), default=False),
    Column("overhead_macs_pct", "+MACs\n%", _over("macs_pct")),
    Column("elementwise_ops", "elem. ops\n(M)", lambda report: _scaled(report.elementwise_ops, 1e6, 2),
           default=False),
    Column("overhead_elementwise_ops", "+elem.\nops (M)", _over("elementwise_ops", 1e6, 2), default=False),
    Column("overhead_elementwise_ops_pct", "+elem.\nops %", _over("elementwise_ops_pct")),
    Column("bytes", "moved\n(MB)", lambda report: _scaled(report.bytes, 1e6, 1), default=False),
    Column("overhead_bytes", "+moved\n(MB)", _over("bytes", 1e6, 1), default=False),
    Column("overhead_bytes_pct", "+moved\n%", _over("bytes_pct")),
    Column("kernels", "kernels", lambda report: _int(report.kernels), default=False),
    Column("overhead_kernels_pct", "+kernels\n%", _over("kernels_pct"), default=False),
)
"""The summary table's columns, one row per model (keys as in the summary CSV); a new field is
one more entry."""


def _roof(field: str, show: Callable[[float | None], str]) -> Callable[[CountReport], str]:
    """A summary cell of the report's roofline `field` (empty without a roofline or that figure)."""
    return lambda report: show(None if report.roofline is None else getattr(report.roofline, field))


def _summary_bound_columns() -> tuple[Column, ...]:
    return (
        Column("roofline_ms", "bound\n(ms)", _roof("ms", _ms)),
        Column("baseline_roofline_ms", "baseline\nbound (ms)", _roof("baseline_ms", _ms), default=False),
        Column("roofline_overhead_pct", "+bound\n%", _roof("overhead_pct", _pct)),
    )


def _summary_predicted_columns() -> tuple[Column, ...]:
    return (
        Column("predicted_ms", "predicted\n(ms)", _roof("predicted_ms", _ms)),
        Column("baseline_predicted_ms", "baseline\npred. (ms)", _roof("baseline_predicted_ms", _ms), default=False),
        Column("predicted_overhead_pct", "+predicted\n%", _roof("predicted_overhead_pct", _pct)),
    )


def _pct(value: float | None) -> str:
    return "" if value is None else _signed_pct(value)


SUMMARY_SHOWN_WITH_BOUND = ("model", "options", "overhead_params_pct", "macs", "overhead_macs_pct",
                            "overhead_bytes_pct", "roofline_ms", "roofline_overhead_pct")
"""The summary columns shown by default with a roofline bound (80 columns: the bound takes the
parameters' and elementwise ops' place; their overheads stay in JSON, CSV and the selection of all columns)."""
SUMMARY_SHOWN_WITH_PREDICTION = ("model", "options", "macs", "overhead_macs_pct", "overhead_kernels_pct",
                                 "roofline_overhead_pct", "predicted_ms", "predicted_overhead_pct")
"""... and with a prediction: the MACs and kernels the attention adds, the bound's overhead and the
predicted time and overhead (FLOPs do not predict latency: the columns show by how much)."""


def _reference_columns(counters: Sequence[str]) -> tuple[Column, ...]:
    def cell(name: str) -> Callable[[CountReport], str]:
        def value(report: CountReport) -> str:
            macs = {ref.counter: ref.macs for ref in report.references}.get(name)
            return "" if macs is None else _scaled(macs, 1e9, 3)
        return value
    return tuple(Column(f"{name}_macs", f"{name}\n(GMACs)", cell(name)) for name in counters)


def summary_table(reports: Sequence[CountReport], explain: bool = False, hint: str = "") -> TableData:
    """One row per model against its plain backbone; the notes of every model, once each."""
    bound = any(report.roofline is not None for report in reports)
    columns = (SUMMARY_COLUMNS + (_summary_bound_columns() if bound else ())
               + (_summary_predicted_columns() if any(_predicts(report) for report in reports) else ())
               + _reference_columns(_reference_names(reports)))
    shapes = sorted({"x".join(map(str, report.input)) for report in reports})
    caption = f"input {', '.join(shapes)}; + columns: overhead against each model's plain backbone"
    def all_notes(keys: frozenset[str]) -> tuple[str, ...]:
        lines: list[str] = []
        for report in reports:
            lines += [note for note in notes(report, explain, hint, keys, per_block=False) if note not in lines]
        return (*lines, *_memory_bound_shares(reports, keys))

    references = tuple(column.key for column in _reference_columns(_reference_names(reports)))
    shown = (SUMMARY_SHOWN_WITH_PREDICTION + references if any(_predicts(report) for report in reports) else
             SUMMARY_SHOWN_WITH_BOUND + references if bound else None)
    return table_from_columns(
        columns, reports, title="cost against each model's plain backbone", left_columns=2,
        wrapped_from=1, caption=caption, notes=all_notes, shown=shown,
    )


def column_keys() -> tuple[str, ...]:
    """Every column key a selection may name in a count table (per-block or summary, with a roofline and
    with fvcore/thop): what is checked before any counting."""
    from senet_cli.count.references import COUNTERS

    columns = (BLOCK_COLUMNS + LATENCY_COLUMNS + BOUND_COLUMNS + PREDICTED_COLUMNS + SUMMARY_COLUMNS
               + _summary_bound_columns() + _summary_predicted_columns() + _reference_columns(COUNTERS))
    return tuple(dict.fromkeys(column.key for column in columns))


def _reference_names(reports: Sequence[CountReport]) -> list[str]:
    names: list[str] = []
    for report in reports:
        names += [ref.counter for ref in report.references if ref.counter not in names]
    return names


ELEMENTWISE_KEYS = frozenset(c.key for c in BLOCK_COLUMNS + SUMMARY_COLUMNS if "elementwise_ops" in c.key)
"""The columns of elementwise ops: the convention line explains them only when one is shown."""
BYTES_KEYS = frozenset(c.key for c in BLOCK_COLUMNS + SUMMARY_COLUMNS if "bytes" in c.key)
"""... and those of bytes moved."""
BOUND_KEYS = frozenset(c.key for c in BOUND_COLUMNS + _summary_bound_columns())
"""... and those of the roofline bound: its note is shown with one of them."""
KERNELS_KEYS = frozenset(c.key for c in LATENCY_COLUMNS + SUMMARY_COLUMNS if "kernels" in c.key)
"""... and those of kernels."""
SHORT_KERNELS = "kernels: ops that launch work (views and allocations are not counted), each a fixed launch cost"
"""The kernels' line under a table that shows them (KERNELS_CONVENTION in full with `explain` and in JSON)."""
PREDICTED_KEYS = frozenset(c.key for c in PREDICTED_COLUMNS + _summary_predicted_columns())
"""... and those of the predicted time."""


def short_convention(keys: frozenset[str]) -> str:
    """The one line under a count table, for the columns `keys` shown: MACs always; elementwise ops
    and bytes moved when shown. With `explain` the notes hold CONVENTION and BYTES_CONVENTION in full
    instead (the JSON's `convention` and `bytes_convention` always hold them)."""
    parts = ["MACs: multiply-accumulates (the papers' FLOPs)"]
    if keys & ELEMENTWISE_KEYS:
        parts.append("elem. ops: pooling, activations, gating, adds, BN")
    if keys & BYTES_KEYS:
        parts.append("MB moved: unfused eager memory traffic, 10^6 bytes")
    return "; ".join([*parts, "whole batch"])


def notes(report: CountReport, explain: bool, hint: str, shown: frozenset[str], per_block: bool = True
          ) -> tuple[str, ...]:
    """What a reader needs to trust the numbers shown (the columns `shown`): the convention (in full
    with `explain`, else one line ending in `hint`, where the caller says how to see it in full), the
    roofline and the prediction, other counters, gaps. `per_block`: the rows are the model's blocks
    (a summary's rows are models: `_memory_bound_shares` says the bound's memory share there, once
    for all)."""
    convention = [f"convention: {CONVENTION}", BYTES_CONVENTION] if explain else [short_convention(shown) + hint]
    if explain or shown & KERNELS_KEYS:
        convention.append(KERNELS_CONVENTION if explain else SHORT_KERNELS)
    lines = [*convention, *report.notes]
    if report.amp:
        lines.append("AMP (simulated autocast): conv/linear/matmul run in float16, their float32 inputs and "
                     "weights cast first, once per forward, the casts charged as copies")
    roof = report.roofline
    if roof is not None and (explain or shown & BOUND_KEYS):
        memory = ""
        if per_block:
            memory_bound = [row.name for row in report.rows if row.memory_bound]
            memory = (f"; rows bound mostly by memory: {len(memory_bound)} of {len(report.rows)}; memory-bound ops "
                      f"make {_memory_share(report):.0f}% of the bound")
        lines.append(
            f"roofline: per op max(2 x MACs / {roof.peak_tflops:.4g} TFLOPS, bytes / {roof.bandwidth_gbs:.4g} "
            f"GB/s), summed; elementwise ops are charged by their bytes only; {roof.device}: {roof.source}{memory}"
        )
    if roof is not None and roof.predicted_ms is not None and roof.op_cost_us is not None and (
            explain or shown & PREDICTED_KEYS):
        lines.append(
            "predicted: the latency model of the device file, per op max(2 x MACs at the rate calibrate measured "
            f"for the nearest shape, bytes at the bandwidth it measured for that size and kind"
            f"{cold_write_text(roof.cold_write_us_per_mib)}"
            f"{cold_read_text(roof.cold_read_us_per_mib, roof.cache_bytes)}) + "
            f"{roof.op_cost_us:.2f} us per op"
            f"{cold_op_text(roof.cold_op_us, roof.cache_bytes, tuple((roof.cold_op_us_by_group or {}).items()))}"
            f"{_after_op(roof.after_op_fraction)}, summed; eager, unfused, "
            "channels-first, no page faults (an allocator keeping its memory); README 'Why attention costs time'"
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


def _after_op(fraction: float | None) -> str:
    return f" + {fraction:.1%} of the op before it" if fraction else ""


def _memory_share(report: CountReport) -> float:
    """The part of the model's roofline bound spent in memory-bound ops, in %."""
    roof = report.roofline
    return roof.memory_bound_ms / roof.ms * 100 if roof is not None and roof.ms else 0.0


def _memory_bound_shares(reports: Sequence[CountReport], keys: frozenset[str]) -> tuple[str, ...]:
    """A summary's one line of each model's memory-bound share of its bound, with a bound column shown."""
    bounded = [report for report in reports if report.roofline is not None]
    if not bounded or not keys & BOUND_KEYS:
        return ()
    shares = ", ".join(f"{report.model} {_memory_share(report):.0f}%" for report in bounded)
    return (f"memory-bound ops' share of the roofline bound: {shares}",)


def per_block_csv_rows(reports: Sequence[CountReport]) -> tuple[list[str], list[list[Any]]]:
    headers = [
        "model", "block", "stage", "params", "macs", "elementwise_ops",
        "attention_params", "attention_macs", "attention_elementwise_ops", "bytes", "attention_bytes",
        "dtype", "amp", "roofline_ms", "memory_bound", "kernels", "attention_kernels", "predicted_ms",
        "attention_predicted_ms", "memory_bound_ms",
    ]
    rows = [
        [report.model, row.name, "" if row.stage is None else row.stage, row.params, row.macs,
         row.elementwise_ops, row.attention_params, row.attention_macs, row.attention_elementwise_ops,
         row.bytes, row.attention_bytes, report.dtype, report.amp,
         "" if row.roofline_ms is None else row.roofline_ms, "" if row.memory_bound is None else row.memory_bound,
         row.kernels, row.attention_kernels, *("" if value is None else value for value in (
             row.predicted_ms, row.attention_predicted_ms, row.memory_bound_ms))]
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

