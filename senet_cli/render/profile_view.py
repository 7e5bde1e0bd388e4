"""Views of `ProfileReport`s: a table per report, CSV rows, JSON text."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from senet_cli.count.latency import cold_op_text, cold_read_text, cold_write_text, setting_text
from senet_cli.profile.pages import GLIBC_KEEP, is_glibc
from senet_cli.profile.results import (
    NOISY_DRIFT_PCT,
    NOISY_SPREAD_PCT,
    SPEED_NOTE,
    BatchResult,
    Measurement,
    ProfileReport,
)
from senet_cli.render.tables import Column, TableData, table_from_columns
from senet_cli.render.tables import milliseconds as _ms


def _describe(report: ProfileReport) -> str:
    timing = report.timing
    precision = f"{timing.dtype}{' + autocast' if timing.amp else ''}"
    extras = [x for x, on in (("channels-last", timing.channels_last), ("compiled", timing.compile),
                              ("denormals flushed", timing.flush_denormal)) if on]
    return (f"{report.model} - {timing.mode} on {setting_text(timing.device, report.threads)}, {precision}"
            f"{', ' + ', '.join(extras) if extras else ''}, input {report.input[0]}x{report.input[1]}")


def _caution(result: BatchResult) -> str | None:
    """One line saying why this batch's figures cannot be trusted, or None when they can."""
    if not result.noisy:
        return None
    parts = []
    for m in (result.model, result.baseline):
        if m is not None and m.latency_ms.noisy:
            parts.append(_noise(m))
    return (f"caution: batch {result.batch} is noisy ({'; '.join(parts)}; thresholds: spread "
            f"{NOISY_SPREAD_PCT:g}%, drift {NOISY_DRIFT_PCT:g}%): its overhead is not reliable; rerun on a quiet "
            f"machine or with more runs")


def _noise(m: Measurement) -> str:
    stats = m.latency_ms
    return f"{m.model}: p10-p90 spread {stats.spread_pct:.0f}% of the median, drift {stats.drift_pct:+.0f}%"


def _ok(cell: Callable[[BatchResult, Measurement], str]) -> Callable[[BatchResult], str]:
    """`cell(result, the model's measurement)` for a batch that ran; an empty cell for one that
    failed (its error is in `median`)."""
    return lambda r: "" if r.error or r.model is None else cell(r, r.model)


def _overhead(r: BatchResult, m: Measurement) -> str:
    overhead = f"{r.overhead_pct:+.1f}%" if r.overhead_pct is not None else ""
    return f"{overhead} (noisy)" if r.noisy else overhead


PROFILE_COLUMNS: tuple[Column, ...] = (
    Column("batch", "batch", lambda r: str(r.batch)),
    Column("median_ms", "median\n(ms)", lambda r: (r.error or "failed") if r.error or r.model is None
           else _ms(r.model.latency_ms.median)),
    Column("p10_p90_ms", "p10-p90\n(ms)",
           _ok(lambda r, m: f"{_ms(m.latency_ms.p10)}-{_ms(m.latency_ms.p90)}")),
    Column("throughput", "images/s", _ok(lambda r, m: f"{m.throughput:,.1f}")),
    Column("peak_memory_mb", "peak\nMiB", _ok(lambda r, m: "" if m.peak_memory_mb is None
                                             else f"{m.peak_memory_mb:,.1f}")),
    Column("baseline_median_ms", "baseline\n(ms)",
           _ok(lambda r, m: _ms(r.baseline.latency_ms.median) if r.baseline else "")),
    Column("baseline_throughput", "baseline\nimages/s", _ok(lambda r, m: f"{r.baseline.throughput:,.1f}" if r.baseline
                                                                else ""), default=False),
    Column("overhead_pct", "overhead", _ok(_overhead)),
)
"""The profile table's columns, one row per batch size (keys as in the CSV, p10_p90_ms for its two); a new field is one
more entry, `default=False` for one the 80-column table shows only when asked for."""

BOUND_COLUMNS: tuple[Column, ...] = (
    Column("roofline_ms", "bound\n(ms)", _ok(lambda r, m: _ms(r.roofline_ms) if r.roofline_ms is not None else ""),
           default=False),
    Column("measured_over_bound", "median\n/ bound", _ok(lambda r, m: f"{r.over_bound:,.1f}x"
                                                          if r.over_bound is not None else ""), default=False),
)
"""... and those shown only with a roofline bound."""

PREDICTED_COLUMNS: tuple[Column, ...] = (
    Column("predicted_ms", "predicted\n(ms)",
           _ok(lambda r, m: _ms(r.predicted_ms) if r.predicted_ms is not None else "")),
    Column("predicted_overhead_pct", "predicted\noverhead",
           _ok(lambda r, m: f"{r.predicted_overhead_pct:+.1f}%" if r.predicted_overhead_pct is not None else "")),
    Column("measured_over_predicted", "median /\npredicted",
           _ok(lambda r, m: f"{r.over_predicted:,.2f}x" if r.over_predicted is not None else "")),
)
"""... and those shown with a calibrated device (a `senet calibrate` device file, issue #22)..."""

PROBE_COLUMNS: tuple[Column, ...] = (
    Column("probe_ratio", "probe /\ncalibr.",
           _ok(lambda r, m: f"{r.probe_ratio:,.2f}x" if r.probe_ratio is not None else ""), default=False),
    Column("predicted_at_probe_speed_ms", "at probe\nspeed (ms)",
           _ok(lambda r, m: _ms(r.predicted_at_probe_speed_ms)), default=False),
    Column("measured_over_predicted_at_probe_speed", "median /\nat probe",
           _ok(lambda r, m: f"{r.over_predicted_at_probe_speed:,.2f}x"
               if r.over_predicted_at_probe_speed is not None else ""), default=False),
)
"""... and the speed probe's, with them (on request: the note on the machine's speed says when it matters)."""

SHOWN_WITH_PREDICTION = ("batch", "median_ms", "baseline_median_ms", "overhead_pct", "predicted_ms",
                         "predicted_overhead_pct", "measured_over_predicted")
"""The columns shown by default with a prediction: measured against predicted, time and overhead,
in 80 columns (spread, throughput and memory stay in JSON, CSV and the selection of all columns)."""


def column_keys() -> tuple[str, ...]:
    """Every column key a selection may name in a profile table."""
    return tuple(column.key for column in PROFILE_COLUMNS + BOUND_COLUMNS + PREDICTED_COLUMNS + PROBE_COLUMNS)


def profile_table(report: ProfileReport) -> TableData:
    bound = report.roofline is not None
    predicted = report.roofline is not None and report.roofline.calibration is not None
    baseline = next((r.baseline.model for r in report.results if r.baseline), None)
    described = any(note.startswith("baseline:") for note in report.notes)  # an outside model's says how it was made
    caption = (None if described else f"baseline: {baseline}" if baseline else
               "no baseline (see the notes)" if report.notes else "plain backbone: no baseline")
    columns = (PROFILE_COLUMNS + (BOUND_COLUMNS if bound else ())
               + (PREDICTED_COLUMNS + PROBE_COLUMNS if predicted else ()))
    return table_from_columns(columns, report.results, title=_describe(report), left_columns=1, caption=caption,
                              notes=lambda keys: _notes(report, keys),
                              shown=SHOWN_WITH_PREDICTION if predicted else None)


PREDICTED_KEYS = frozenset(column.key for column in PREDICTED_COLUMNS + PROBE_COLUMNS)
PROBE_KEYS = frozenset(column.key for column in PROBE_COLUMNS)
"""The speed probe's columns: their note is shown with one of them."""
"""The prediction's columns: its note is shown with one of them."""
BOUND_KEYS = frozenset(column.key for column in BOUND_COLUMNS)
"""... and the bound's: its note names them where they are shown, the JSON keys where they are not."""


def _faults_note(report: ProfileReport) -> str:
    """One line for the batches whose runs took page faults (JSON page_faults_mib): MiB of memory
    first touched per run, model and baseline, and what they cost at the device file's fresh-page
    cost where it has one; "" when none did (or none were counted: a GPU)."""
    calibration = report.roofline.calibration if report.roofline is not None else None
    cost = calibration.fresh_page_us_per_mib if calibration is not None else 0.0
    parts = []
    for r in report.results:
        pairs = [(m.model, m.page_faults_mib) for m in (r.model, r.baseline) if m is not None and m.page_faults_mib]
        if pairs:
            parts.append(f"batch {r.batch}: " + ", ".join(
                f"{name} {mib:,.1f} MiB" + (f" (at least {mib * cost / 1000:,.2f} ms)" if cost else "")
                for name, mib in pairs))
    if not parts:
        return ""
    left_out = "which the prediction leaves out; " if calibration is not None else ""
    advice = (f"glibc hands freed memory back to the kernel and maps it again on the next run, {left_out}jemalloc, "
              f"tcmalloc or {GLIBC_KEEP} keep it" if is_glibc() else
              f"the allocator handed freed memory back to the system and mapped it again, {left_out}an allocator "
              "that keeps it does not")
    return ("page faults per run (memory first touched: faults x the page size, the median over the runs; JSON "
            "page_faults_mib; the time at the device file's cost of a fresh mapping's fault, which a fault inside "
            "an op exceeds): " + "; ".join(parts) + "; " + advice)


def _notes(report: ProfileReport, keys: frozenset[str]) -> tuple[str, ...]:
    """The notes for the columns `keys` shown: cautions, how latency is taken, peak memory (when
    its column is shown), per-stage attention, the bound (its figures per batch are not in the table
    by default) and the prediction (when one of its columns is shown)."""
    notes = [caution for r in report.results if (caution := _caution(r))]
    notes.append(f"latency: wall time per run, median of {_iterations(report)} interleaved runs per model; "
                 f"overhead = (median - baseline median) / baseline median")
    if "peak_memory_mb" in keys:
        notes.append(f"peak MiB (2^20 bytes; the JSON key is peak_memory_mb): {report.memory}")
    if faults := _faults_note(report):
        notes.append(faults)
    speed = [note for note in report.notes if note.startswith(SPEED_NOTE)]  # it speaks of "the predictions":
    notes += [note for note in report.notes if note not in speed]  # after the note that says what they are
    for r in report.results:
        if r.per_stage:
            stages = ", ".join(f"stage {s.stage} {s.attention_ms:+.3f} ms ({s.attention_pct:+.1f}%)"
                               for s in r.per_stage)
            notes.append(f"batch {r.batch}, attention per stage (model minus the model without that stage's "
                         f"attention): {stages}")
    peaks = report.roofline
    if peaks is not None:
        bounds = ", ".join(
            f"batch {r.batch}: baseline {r.baseline.model}'s bound {_ms(r.baseline_roofline_ms)} ms, its median / "
            f"bound {r.baseline.latency_ms.median / r.baseline_roofline_ms:,.1f}x"
            for r in report.results if r.baseline is not None and r.baseline_roofline_ms
        )
        where = ("in the columns bound and median / bound" if keys & BOUND_KEYS else
                 "in JSON and CSV (roofline_ms, measured_over_bound)")
        notes.append(
            f"bound: count's roofline on {peaks.name} ({peaks.peak_tflops(report.timing.dtype, report.timing.amp):.4g} "
            f"TFLOPS, {peaks.bandwidth_gbs:.4g} GB/s; {peaks.source}): per op max(2 x MACs / peak, bytes / "
            f"bandwidth), unfused eager bytes; launch overhead, kernel efficiency and caches are not in it; per "
            f"batch {where}" + (f"; {bounds}" if bounds else "")
        )
        if (calibration := peaks.calibration) is not None and keys & PREDICTED_KEYS:
            cost = calibration.op_cost_us
            notes.append(f"predicted: count's latency model on the calibrated device (per op, max(compute at the "
                         f"achieved rate of its shape, bytes at the achieved bandwidth"
                         f"{cold_write_text(calibration.cold_write_us_per_mib)}"
                         f"{cold_read_text(calibration.cold_read_us_per_mib, calibration.cache_bytes)}) + "
                         f"{cost:.2f} us per op"
                         + cold_op_text(calibration.cold_op_us, calibration.cache_bytes,
                                        calibration.cold_op_us_by_group)
                         + (f" + {after:.1%} of the op before it" if (after := calibration.after_op_fraction)
                            else "") + "; no page faults (an allocator keeping its memory); "
                         "README 'Why attention costs time')")
        if peaks.calibration is not None and keys & PROBE_KEYS:
            probe_us = peaks.calibration.probe_us
            notes.append("probe / calibr. (probe_ratio): the speed probe's median over each batch's rounds / its "
                         f"{probe_us:,.1f} us while calibrating (above 1: the machine ran slower than then); at "
                         "probe speed: the prediction x that ratio; median / at probe: the median over it"
                         + ("" if probe_us else "; empty here: this device file has no speed probe (schema 3 or "
                            "older: calibrate again to get one)"))
    return (*notes, *speed)


def _iterations(report: ProfileReport) -> str:
    counts = sorted({r.model.iterations for r in report.results if r.model})
    return "/".join(map(str, counts)) or "0"


def _device_csv(report: ProfileReport) -> tuple[Any, ...]:
    """The roofline device's name, per-op cost, after-op fraction and speed probe ("" where they do not
    apply, the probe also where the device file has none)."""
    peaks = report.roofline
    calibration = None if peaks is None else peaks.calibration
    return ("" if peaks is None else peaks.name, "" if calibration is None else calibration.op_cost_us,
            "" if calibration is None else calibration.after_op_fraction,
            "" if calibration is None or not calibration.probe_us else calibration.probe_us)


def _cold_csv(report: ProfileReport) -> tuple[float | str, ...]:
    """The device file's cold-write, cold-read, cold-op and fresh-page figures ("" without a calibrated
    device or its points)."""
    calibration = None if report.roofline is None else report.roofline.calibration
    if calibration is None:
        return "", "", "", ""
    return tuple("" if cold is None else cold
                 for cold in (calibration.cold_write_us_per_mib, calibration.cold_read_us_per_mib,
                              calibration.cold_op_us, calibration.fresh_page_us_per_mib))


def csv_rows(reports: Sequence[ProfileReport]) -> tuple[list[str], list[list[Any]]]:
    headers = ["model", "device", "dtype", "amp", "mode", "batch", "median_ms", "p10_ms", "p90_ms", "min_ms",
               "mean_ms", "throughput", "peak_memory_mb", "baseline_model", "baseline_median_ms",
               "baseline_throughput", "overhead_pct", "error", "drift_pct", "noisy", "roofline_ms",
               "baseline_roofline_ms", "measured_over_bound", "predicted_ms", "baseline_predicted_ms",
               "measured_over_predicted", "predicted_overhead_pct", "roofline_overhead_pct", "threads",
               "roofline_device", "op_cost_us", "after_op_fraction", "probe_us", "probe_ratio",
               "predicted_at_probe_speed_ms",
               "measured_over_predicted_at_probe_speed", "cold_write_us_per_mib",
               "cold_read_us_per_mib", "cold_op_us", "page_faults_mib", "baseline_page_faults_mib",
               "fresh_page_us_per_mib"]
    rows = []
    for report in reports:
        for r in report.results:
            m, b = r.model, r.baseline
            stats = m.latency_ms if m else None
            rows.append([
                report.model, report.timing.device, report.timing.dtype, report.timing.amp, report.timing.mode, r.batch,
                *(getattr(stats, k) if stats else "" for k in ("median", "p10", "p90", "min", "mean")),
                m.throughput if m else "", m.peak_memory_mb if m and m.peak_memory_mb is not None else "",
                b.model if b else "", b.latency_ms.median if b else "", b.throughput if b else "",
                "" if r.overhead_pct is None else r.overhead_pct, r.error or "",
                stats.drift_pct if stats else "", r.noisy,
                *("" if value is None else value for value in (r.roofline_ms, r.baseline_roofline_ms, r.over_bound)),
                *("" if value is None else value for value in (r.predicted_ms, r.baseline_predicted_ms,
                                                               r.over_predicted, r.predicted_overhead_pct,
                                                               r.roofline_overhead_pct)),
                report.threads, *_device_csv(report),
                *("" if value is None else value for value in (r.probe_ratio, r.predicted_at_probe_speed_ms,
                                                               r.over_predicted_at_probe_speed)),
                *(cold := _cold_csv(report))[:3],
                *("" if value is None else value for value in (m.page_faults_mib if m else None,
                                                               b.page_faults_mib if b else None)),
                cold[3],
            ])
    return headers, rows

