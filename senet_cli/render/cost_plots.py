"""Figures of `senet count` and `senet profile`: where attention's cost sits, and what it takes in time.

count: four panels (params, MACs, elementwise ops, bytes moved), each the per-block overhead of
attention against the block without it (attention_x / (x - attention_x), in %), blocks along the
x axis with the stages marked; one line per model, so a ratio sweep or several modules compare in
one figure. profile: latency per batch size (median, p10-p90 band) of each model against its
baseline, throughput and peak memory. matplotlib is imported only when drawing (Agg backend).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from senet_cli.atomic import atomic_path
from senet_cli.count.results import CountReport
from senet_cli.profile.results import ProfileReport
from senet_cli.render.config_text import short_options

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

COUNT_MEASURES = (
    ("params", "parameters"),
    ("macs", "MACs"),
    ("elementwise_ops", "elementwise ops"),
    ("bytes", "bytes moved"),
)


def _label(report: CountReport | ProfileReport) -> str:
    options = short_options(report.config)
    return f"{report.model} ({options})" if options else report.model


def block_overhead_pct(report: CountReport, measure: str) -> list[float]:
    """Per block (stem and head excluded), attention's share against the rest of the block, in %."""
    values = []
    for block in report.blocks:
        attention = getattr(block, f"attention_{measure}")
        rest = getattr(block, measure) - attention
        values.append(attention / rest * 100.0 if rest else 0.0)
    return values


def plot_counts(reports: Sequence[CountReport], path: Path) -> Path:
    """Per-block overhead of params, MACs, elementwise ops and bytes, one line per report; written to
    `path` (format from the extension) in one rename."""
    plt = _pyplot()
    figure, axes = plt.subplots(2, 2, figsize=(13, 8), layout="constrained", sharex=True)
    names = [block.name for block in reports[0].blocks]
    same_blocks = all([b.name for b in r.blocks] == names for r in reports)
    for panel, (measure, title) in zip(axes.flat, COUNT_MEASURES, strict=True):
        for report in reports:
            values = block_overhead_pct(report, measure)
            total = getattr(report.overhead, f"{measure}_pct") if report.overhead is not None else None
            overall = f"{total:+.1f}% overall" if total is not None else "no baseline"
            panel.plot(range(len(values)), values, marker="o", markersize=3, linewidth=1.2,
                       label=f"{_label(report)}: {overall}")
        panel.set_title(f"{title}: attention's overhead per block")
        panel.set_ylabel("% of the block without attention")
        panel.grid(alpha=0.3)
        panel.legend(fontsize=7)
        _mark_stages(panel, reports[0])
    for panel in axes[1]:
        panel.set_xlabel("block" if same_blocks else f"block of {reports[0].model}")
        panel.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    shapes = ", ".join(sorted({"x".join(map(str, r.input)) for r in reports}))
    precision = ", ".join(sorted({"float32 + AMP" if r.amp else r.dtype for r in reports}))
    figure.suptitle(f"Attention overhead per block against the plain backbone (input {shapes}; bytes in {precision})",
                    fontsize=12)
    return _save(figure, path)


def _mark_stages(axes: Axes, report: CountReport) -> None:
    """A dotted line where each stage starts, with the stage's number at the top."""
    previous = None
    for index, block in enumerate(report.blocks):
        if block.stage != previous:
            if index:
                axes.axvline(index - 0.5, color="grey", linestyle=":", linewidth=1)
            axes.annotate(f"stage {block.stage}", (index - 0.4, 1.0), xycoords=("data", "axes fraction"),
                          va="top", fontsize=7, color="grey")
            previous = block.stage


def plot_profiles(reports: Sequence[ProfileReport], path: Path) -> Path:
    """Latency (median, p10-p90 band), throughput and peak memory per batch size, each model (solid)
    against its own baseline run (dashed, same colour: each model's baseline is timed beside it, so
    two models' runs of one backbone are two lines); written to `path` in one rename."""
    plt = _pyplot()
    figure, (latency, throughput, memory) = plt.subplots(1, 3, figsize=(15, 4.6), layout="constrained")
    colours = plt.get_cmap("tab10")
    for index, report in enumerate(reports):
        colour = colours(index % 10)
        runs = [r for r in report.results if r.model is not None]
        _profile_lines(latency, throughput, memory, [(r.batch, r.model) for r in runs], _label(report), colour, "-")
        baselines = [(r.batch, r.baseline) for r in runs if r.baseline is not None]
        if baselines:
            label = f"{baselines[0][1].model} (baseline{f' of {report.model}' if len(reports) > 1 else ''})"
            _profile_lines(latency, throughput, memory, baselines, label, colour, "--")
        bounds = [(r.batch, r.roofline_ms) for r in runs if r.roofline_ms is not None]
        if bounds:
            latency.plot(*zip(*bounds, strict=True), color=colour, linestyle=":", linewidth=1,
                         label=f"{report.model}: roofline bound on {report.roofline.name if report.roofline else ''}")
    on_cpu = reports[0].timing.device == "cpu"
    memory_unit = "MiB, process peak RSS (shared, monotonic)" if on_cpu else "MiB (CUDA allocator peak)"
    batches = sorted({r.batch for report in reports for r in report.results})
    for axes, title, unit in ((latency, "latency per run", "ms (median, p10-p90 band)"),
                              (throughput, "throughput", "images / s"),
                              (memory, "peak memory", memory_unit)):
        axes.set_title(title)
        axes.set_xlabel("batch size")
        axes.set_ylabel(unit)
        axes.set_xscale("log", base=2)
        axes.set_xticks(batches, [str(b) for b in batches])
        axes.minorticks_off()
        axes.grid(alpha=0.3)
    latency.set_yscale("log")
    latency.legend(fontsize=7)
    timing = reports[0].timing
    precision = f"{timing.dtype}{' + AMP' if timing.amp else ''}"
    size = "x".join(map(str, reports[0].input))
    figure.suptitle(f"{timing.mode} on {timing.device}, {precision}, input {size}: model (solid) against its "
                    f"plain backbone (dashed)", fontsize=12)
    return _save(figure, path)


def _profile_lines(latency: Axes, throughput: Axes, memory: Axes, points: list, label: str, colour: object,
                   style: str) -> None:
    batches = [batch for batch, _ in points]
    stats = [m.latency_ms for _, m in points]
    latency.plot(batches, [s.median for s in stats], marker="o", color=colour, linestyle=style, label=label)
    latency.fill_between(batches, [s.p10 for s in stats], [s.p90 for s in stats], color=colour, alpha=0.15)
    throughput.plot(batches, [m.throughput for _, m in points], marker="o", color=colour, linestyle=style,
                    label=label)
    memory_points = [(batch, m.peak_memory_mb) for batch, m in points if m.peak_memory_mb is not None]
    if memory_points:
        memory.plot(*zip(*memory_points, strict=True), marker="o", color=colour, linestyle=style, label=label)


def _pyplot():  # noqa: ANN202  (matplotlib.pyplot, imported on first use)
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(figure: Figure, path: Path) -> Path:
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path) as temporary:
            figure.savefig(temporary, format=path.suffix.lower().lstrip("."), dpi=110)
    finally:
        plt.close(figure)
    return path
