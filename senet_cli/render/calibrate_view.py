"""Views of a `DeviceCalibration`: the table of measured points and CSV rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from senet_cli.count.latency import BYTES_KINDS, DeviceCalibration
from senet_cli.render.tables import TableData


def _unit(kind: str) -> str:
    """GB/s for the kinds charged by bytes (memory, pooling, reductions), TFLOPS for conv and matmul."""
    return "GB/s" if kind in BYTES_KINDS else "TFLOPS"


def calibration_table(calibration: DeviceCalibration) -> TableData:
    """One row per measured point: kind, shape, MACs, bytes, median time, its spread over calibrate's
    rounds and the achieved rate."""
    rows = tuple(
        (point.kind, point.label, f"{point.macs / 1e6:,.2f}", f"{point.bytes / 1e6:,.3f}", f"{point.median_us:,.1f}",
         f"{point.spread * 100:.0f}%", f"{point.rate:,.4g} {_unit(point.kind)}")
        for point in calibration.points
    )
    caption = (f"per-op cost {calibration.op_cost_us:.2f} us; best rates: {calibration.peak_tflops:.4g} TFLOPS, "
               f"{calibration.bandwidth_gbs:.4g} GB/s; measured in {calibration.seconds:.1f} s")
    return TableData(
        title=f"{calibration.name} ({calibration.device}, {calibration.dtype}, {calibration.threads} threads)",
        headers=("kind", "shape", "MACs (M)", "MB moved", "median (us)", "spread", "achieved"), rows=rows,
        left_columns=2,
        caption=caption,
        notes=("median: over calibrate's interleaved rounds (each a torch.utils.benchmark timeit); spread: "
               "(max - min) / median of the rounds; achieved rate: 2 x MACs (or bytes) / (median - per-op cost); "
               "give the JSON file to count and profile as their roofline device",),
    )


def csv_rows(calibrations: Sequence[DeviceCalibration]) -> tuple[list[str], list[list[Any]]]:
    """One CSV row per measured point, the device's figures repeated on each."""
    headers = ["device", "name", "dtype", "threads", "op_cost_us", "kind", "label", "macs", "bytes", "median_us",
               "spread", "rate", "rate_unit"]
    rows = [[c.device, c.name, c.dtype, c.threads, c.op_cost_us, p.kind, p.label, p.macs, p.bytes, p.median_us,
             p.spread, p.rate, _unit(p.kind)] for c in calibrations for p in c.points]
    return headers, rows
