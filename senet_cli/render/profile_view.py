"""Views of `ProfileReport`s: a table per report, CSV rows, JSON text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from senet_cli.profile.results import NOISY_DRIFT_PCT, NOISY_SPREAD_PCT, BatchResult, Measurement, ProfileReport
from senet_cli.render.tables import TableData


def _ms(value: float) -> str:
    return f"{value:,.3f}"


def _describe(report: ProfileReport) -> str:
    timing = report.timing
    precision = f"{timing.dtype}{' + autocast' if timing.amp else ''}"
    extras = [x for x, on in (("channels-last", timing.channels_last), ("compiled", timing.compile)) if on]
    threads = f", {report.threads} thread{'s' if report.threads != 1 else ''}" if timing.device == "cpu" else ""
    return (f"{report.model} - {timing.mode} on {timing.device}{threads}, {precision}"
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


def profile_table(report: ProfileReport) -> TableData:
    bound = report.roofline is not None
    predicted = report.roofline is not None and report.roofline.calibration is not None
    headers = ("batch", "median (ms)", "p10-p90 (ms)", "images/s", "peak MiB", "baseline median (ms)",
               "baseline images/s", "overhead", *(("bound (ms)", "median / bound") if bound else ()),
               *(("predicted (ms)", "median / predicted") if predicted else ()))
    rows = []
    for r in report.results:
        if r.error or r.model is None:
            rows.append((str(r.batch), r.error or "failed", "", "", "", "", "", "", *(("", "") if bound else ()),
                         *(("", "") if predicted else ())))
            continue
        m, b = r.model, r.baseline
        overhead = f"{r.overhead_pct:+.1f}%" if r.overhead_pct is not None else ""
        rows.append((
            str(r.batch), _ms(m.latency_ms.median), f"{_ms(m.latency_ms.p10)}-{_ms(m.latency_ms.p90)}",
            f"{m.throughput:,.1f}", "" if m.peak_memory_mb is None else f"{m.peak_memory_mb:,.1f}",
            _ms(b.latency_ms.median) if b else "", f"{b.throughput:,.1f}" if b else "",
            f"{overhead} (noisy)" if r.noisy else overhead,
            *((_ms(r.roofline_ms) if r.roofline_ms is not None else "",
               f"{r.over_bound:,.1f}x" if r.over_bound is not None else "") if bound else ()),
            *((_ms(r.predicted_ms) if r.predicted_ms is not None else "",
               f"{r.over_predicted:,.2f}x" if r.over_predicted is not None else "") if predicted else ()),
        ))
    notes = [caution for r in report.results if (caution := _caution(r))]
    notes += [
        f"latency: wall time per run, median of {_iterations(report)} interleaved runs per model; "
        f"overhead = (median - baseline median) / baseline median",
        f"peak MiB (2^20 bytes; the JSON key is peak_memory_mb): {report.memory}",
        *report.notes,
    ]
    for r in report.results:
        if r.per_stage:
            stages = ", ".join(f"stage {s.stage} {s.attention_ms:+.3f} ms ({s.attention_pct:+.1f}%)"
                               for s in r.per_stage)
            notes.append(f"batch {r.batch}, attention per stage (model minus the model without that stage's "
                         f"attention): {stages}")
    if report.roofline is not None:
        peaks = report.roofline
        bounds = ", ".join(
            f"batch {r.batch}: baseline {_ms(r.baseline_roofline_ms)} ms, measured/bound "
            f"{r.baseline.latency_ms.median / r.baseline_roofline_ms:,.1f}x"
            for r in report.results if r.baseline is not None and r.baseline_roofline_ms
        )
        notes.append(
            f"bound: count's roofline on {peaks.name} ({peaks.peak_tflops(report.timing.dtype, report.timing.amp):g} "
            f"TFLOPS, {peaks.bandwidth_gbs:g} GB/s; {peaks.source}): per op max(2 x MACs / peak, bytes / "
            f"bandwidth), unfused eager bytes; launch overhead, kernel efficiency and caches are not in it"
            + (f"; {bounds}" if bounds else "")
        )
        if peaks.calibration is not None:
            notes += [
                f"batch {r.batch}: predicted overhead {r.predicted_overhead_pct:+.1f}%, measured {r.overhead_pct:+.1f}%"
                for r in report.results if r.predicted_overhead_pct is not None and r.overhead_pct is not None
            ]
            cost = peaks.calibration.op_cost_us
            notes.append(f"predicted: count's latency model on the calibrated device (per op, max(compute at the "
                         f"achieved rate of its shape, bytes at the achieved bandwidth) + {cost:.2f} us per op; "
                         "README 'Why attention costs time')")
    baseline = next((r.baseline.model for r in report.results if r.baseline), None)
    caption = (f"baseline: {baseline}" if baseline else
               "no baseline (see the notes)" if report.notes else "plain backbone: no baseline")
    return TableData(title=_describe(report), headers=headers, rows=tuple(rows), left_columns=1,
                     caption=caption, notes=tuple(notes))


def _iterations(report: ProfileReport) -> str:
    counts = sorted({r.model.iterations for r in report.results if r.model})
    return "/".join(map(str, counts)) or "0"


def csv_rows(reports: Sequence[ProfileReport]) -> tuple[list[str], list[list[Any]]]:
    headers = ["model", "device", "dtype", "amp", "mode", "batch", "median_ms", "p10_ms", "p90_ms", "min_ms",
               "mean_ms", "throughput", "peak_memory_mb", "baseline_model", "baseline_median_ms",
               "baseline_throughput", "overhead_pct", "error", "drift_pct", "noisy", "roofline_ms",
               "baseline_roofline_ms", "measured_over_bound", "predicted_ms", "baseline_predicted_ms",
               "measured_over_predicted"]
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
                                                               r.over_predicted)),
            ])
    return headers, rows

