"""Views of a `DeviceCalibration`: the table of measured points and CSV rows."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from senet_cli.count.latency import BYTES_KINDS, DeviceCalibration, RatePoint
from senet_cli.render.tables import Column, TableData, table_from_columns


def _unit(kind: str) -> str:
    """GB/s for the kinds charged by bytes (memory, pooling, reductions), TFLOPS for conv and matmul."""
    return "GB/s" if kind in BYTES_KINDS else "TFLOPS"


BATCH_SUFFIX = re.compile(r", batch (\d+)$")
"""How calibrate's labels end: the batch the shape ran at (none for the memory and per-op points). A
point records its batch since schema 4; an older file's is read from here."""


def _shape(label: str) -> str:
    """The label without its batch, which has a column of its own (the label stays whole in JSON and CSV)."""
    return BATCH_SUFFIX.sub("", label)


def _batch(point: RatePoint) -> str:
    """The batch a point ran at: its own field (schema 4), else its label's end; "" for none."""
    if point.batch:
        return str(point.batch)
    found = BATCH_SUFFIX.search(point.label)
    return found.group(1) if found else ""


COLUMNS = (
    Column("kind", "kind", lambda p: p.kind),
    Column("label", "shape", lambda p: _shape(p.label)),
    Column("batch", "batch", _batch),
    Column("macs", "MACs\n(M)", lambda p: f"{p.macs / 1e6:,.2f}", default=False),
    Column("bytes", "MB\nmoved", lambda p: f"{p.bytes / 1e6:,.3f}", default=False),
    Column("median_us", "median\n(us)", lambda p: f"{p.median_us:,.1f}"),
    Column("spread", "spread", lambda p: f"{p.spread * 100:.0f}%"),
    Column("rate", "achieved", lambda p: f"{p.rate:,.4g} {_unit(p.kind)}"),
)
"""The table's columns; MACs and bytes shown only when selected (JSON and CSV hold them)."""


def column_keys() -> tuple[str, ...]:
    """Every column key a selection may name in the calibration table."""
    return tuple(column.key for column in COLUMNS)


def calibration_table(calibration: DeviceCalibration) -> TableData:
    """One row per measured point: kind, shape, median time, its spread over calibrate's rounds and
    the achieved rate (MACs and bytes moved shown only when selected)."""
    columns: tuple[Column, ...] = COLUMNS
    notes = ["median: over calibrate's interleaved rounds (each a torch.utils.benchmark timeit of a fresh copy "
             "of the module and input); spread: (max - min) / median of the rounds; achieved rate: 2 x MACs (or "
             "bytes) / (median - per-op cost); give the JSON file to count and profile as their roofline device"]
    if calibration.rounds == 1:  # one round has no spread: not 0%, unknown
        columns = tuple(replace(column, cell=lambda p: "n/a") if column.key == "spread" else column
                        for column in COLUMNS)
        notes.append("spread: n/a with 1 round; calibrate with 3 rounds or more to see how steady each point is")
    if any(p.kind == "in_place" for p in calibration.points):
        notes.append("in_place: x.mul_(1.0), writing where it reads; count and profile charge an elementwise op that "
                     "writes no new output (an in-place ReLU) at its bandwidth, other elementwise ops at the copies'")
    if any(p.kind == "pointwise" for p in calibration.points):
        notes.append("pointwise: an activation (its op in the label) on a normal sample, out of place; count and "
                     "profile charge that op its bytes at this rate, in place or not (its arithmetic, not its "
                     "bytes, is its time on a CPU), other elementwise ops at the copies' bandwidth")
    if (cold := calibration.cold_write_us_per_mib) is not None:
        notes.append("cold_write: the memory points' copy with its output written into memory not touched lately; "
                     "count and profile charge each op's new output the cold copy's time beyond the warm one's "
                     f"for its size ({cold:.3g} us per MiB at 1 MiB: cold_write_us_per_mib)")
    if (cold_read := calibration.cold_read_us_per_mib) is not None:
        notes.append("read, cold_read: a sum looped over one tensor and over memory not touched lately; count and "
                     "profile charge each input read after more bytes than the cores' private caches hold "
                     f"({calibration.cache_bytes / 2**20:g} MiB: cache_bytes) were touched since it was last touched "
                     f"the cold sum's time beyond the looped one's for its size ({cold_read:.3g} us per MiB at 1 MiB: "
                     "cold_read_us_per_mib)")
    elif any(p.kind in ("read", "cold_read") for p in calibration.points):
        notes.append("read, cold_read: unused, no input is charged for a cold read"
                     + (": the cores' cache size could not be read (cache_bytes 0)" if not calibration.cache_bytes
                        else ": the file lacks one of the two kinds"))
    return table_from_columns(
        columns, calibration.points,
        title=f"{calibration.name} ({calibration.setting}, {calibration.dtype})",
        left_columns=2, wrapped_from=1, caption=summary(calibration), notes=tuple(notes),
    )


def summary(calibration: DeviceCalibration) -> str:
    """One line of what calibrate found: the per-op cost, the after-op fraction, the best rates, how
    long it took (the table's caption, and what calibrate prints when it writes the table to a file)."""
    rounds, cold = calibration.rounds, calibration.cold_write_us_per_mib
    return (f"per-op cost {calibration.op_cost_us:.2f} us; after a long op, {calibration.after_op_fraction:.1%} of "
            f"its time; best rates: {calibration.peak_tflops:.4g} TFLOPS, {calibration.bandwidth_gbs:.4g} GB/s; "
            + (f"speed probe {calibration.probe_us:,.1f} us; " if calibration.probe_us else "")
            + (f"cold ops {calibration.cold_op_us:.3g} us"
               + (" (" + ", ".join(f"{group} {us:.3g}" for group, us in calibration.cold_op_us_by_group) + ")"
                  if calibration.cold_op_us_by_group else "") + "; " if calibration.cold_op_us else "")
            + (f"cold writes {cold:.3g} us per MiB; " if cold is not None else "")
            + (f"fresh pages {calibration.fresh_page_us_per_mib:.3g} us per MiB (taken off every point); "
               if calibration.fresh_page_us_per_mib else "")
            + (f"cold reads {cold_read:.3g} us per MiB (inputs touched {calibration.cache_bytes / 2**20:g} MiB of "
               "traffic or more before); " if (cold_read := calibration.cold_read_us_per_mib) is not None else "")
            + f"{calibration.seconds:.1f} s in all, setup included"
            + (f", {rounds} round{'' if rounds == 1 else 's'}" if rounds else ""))


def csv_rows(calibrations: Sequence[DeviceCalibration]) -> tuple[list[str], list[list[Any]]]:
    """One CSV row per measured point, the device's figures repeated on each."""
    headers = ["device", "name", "dtype", "threads", "op_cost_us", "after_op_fraction", "probe_us", "peak_tflops",
               "bandwidth_gbs", "rounds", "busy", "created", "kind", "label", "batch", "macs", "bytes", "depth",
               "stride", "median_us", "spread", "rate", "rate_unit", "cache_bytes", "cold_write_us_per_mib",
               "cold_read_us_per_mib", "width", "op", "cold_op_us", "fresh_page_us_per_mib", "positions"]
    rows = [[c.device, c.name, c.dtype, c.threads, c.op_cost_us, c.after_op_fraction, c.probe_us, c.peak_tflops,
             c.bandwidth_gbs, c.rounds, c.busy, c.created, p.kind, p.label, _batch(p), p.macs, p.bytes, p.depth,
             p.stride, p.median_us, p.spread, p.rate, _unit(p.kind), c.cache_bytes,
             *("" if value is None else value for value in (c.cold_write_us_per_mib, c.cold_read_us_per_mib)),
             p.width, p.op, c.cold_op_us, c.fresh_page_us_per_mib, p.positions]
            for c in calibrations for p in c.points]
    return headers, rows
