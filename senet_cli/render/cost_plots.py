"""Figures of `senet count` and `senet profile`: where attention's cost sits, and what it takes in time.

count: four panels (params, MACs, elementwise ops, bytes moved), each the per-block overhead of
attention against the block without it (attention_x / (x - attention_x), in %), blocks along the
x axis with the stages marked; one line per model, so a ratio sweep or several modules compare in
one figure. profile: latency per batch size (median, p10-p90 bars) of each model against its
baseline, throughput and peak memory. matplotlib is imported only when drawing (Agg backend).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from senet_cli.atomic import atomic_path
from senet_cli.count.results import CountReport
from senet_cli.profile.results import Measurement, ProfileReport
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
    `path` (format from the extension) in one rename. One legend for the four panels, below them,
    so it covers no data; each entry gives the model's overall overhead in all four measures."""
    plt = _pyplot()
    figure, axes = plt.subplots(2, 2, figsize=(13, 8.6), layout="constrained", sharex=True)
    names = [block.name for block in reports[0].blocks]
    same_blocks = all([b.name for b in r.blocks] == names for r in reports)
    lines = []
    for panel, (measure, title) in zip(axes.flat, COUNT_MEASURES, strict=True):
        lines = [panel.plot(range(len(values)), values, marker="o", markersize=3, linewidth=1.2)[0]
                 for values in (block_overhead_pct(report, measure) for report in reports)]
        panel.set_title(f"{title}: attention's overhead per block")
        panel.set_ylabel("% of the block without attention")
        panel.grid(alpha=0.3)
        _mark_stages(panel, reports[0])
    for panel in axes[1]:
        panel.set_xlabel("block" if same_blocks else f"block of {reports[0].model}")
        panel.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    figure.legend(lines, [_overall(report) for report in reports], loc="outside lower center",
                  ncol=1 if len(reports) > 4 else min(len(reports), 2), fontsize=8, frameon=False)
    shapes = ", ".join(sorted({"x".join(map(str, r.input)) for r in reports}))
    precision = ", ".join(sorted({"float32 + AMP" if r.amp else r.dtype for r in reports}))
    figure.suptitle(f"Attention overhead per block against the plain backbone (input {shapes}; bytes in {precision})",
                    fontsize=12)
    return _save(figure, path)


def _overall(report: CountReport) -> str:
    """A legend entry: the model and its whole-model overhead in each measure."""
    over = report.overhead
    if over is None:
        return f"{_label(report)}: no baseline"
    parts = ", ".join(f"{short} {getattr(over, f'{measure}_pct'):+.1f}%" for measure, short in
                      (("params", "params"), ("macs", "MACs"), ("elementwise_ops", "elementwise"),
                       ("bytes", "bytes")))
    return f"{_label(report)} overall: {parts}"


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
    """Latency (median, p10-p90 bars), throughput and peak memory per batch size, each model (dark,
    solid, circles) against its own baseline run (the same hue lighter, dashed, squares: each
    model's baseline is timed beside it, so two models' runs of one backbone are two series);
    written to `path` in one rename. At one batch size the points stand side by side. On CPU the
    memory panel shows the process's peak resident set, which model and baseline share: one grey
    series, said so, not a figure per model."""
    plt = _pyplot()
    figure, (latency, throughput, memory) = plt.subplots(1, 3, figsize=(15, 5.2), layout="constrained")
    pairs = plt.get_cmap("tab20")  # colours 2i and 2i+1 are a dark and a light shade of one hue
    on_cpu = reports[0].timing.device == "cpu"
    series = 2 * len(reports)
    for index, report in enumerate(reports):
        dark, light = pairs((2 * index) % 20), pairs((2 * index + 1) % 20)
        runs = [r for r in report.results if r.model is not None]
        models = [(r.batch, r.model) for r in report.results if r.model is not None]
        _profile_points(latency, throughput, None if on_cpu else memory, models,
                        _label(report), dict(color=dark, linestyle="-", marker="o"), _dodge(2 * index, series))
        baselines = [(r.batch, r.baseline) for r in runs if r.baseline is not None]
        if baselines:
            label = f"{baselines[0][1].model} (baseline{f' of {report.model}' if len(reports) > 1 else ''})"
            _profile_points(latency, throughput, None if on_cpu else memory, baselines, label,
                            dict(color=light, linestyle="--", marker="s"), _dodge(2 * index + 1, series))
        bounds = [(r.batch, r.roofline_ms) for r in runs if r.roofline_ms is not None]
        if bounds:
            latency.plot(*zip(*bounds, strict=True), color=dark, linestyle=":", linewidth=1, marker="_",
                         label=f"{report.model}: roofline bound on {report.roofline.name if report.roofline else ''}")
        if on_cpu:
            shared = [(r.batch, m.peak_memory_mb) for r in runs if (m := r.model) and m.peak_memory_mb is not None]
            if shared:
                memory.plot(*zip(*shared, strict=True), color="grey", marker="os^Dv"[index % 5],
                            linestyle=("-", "--", ":", "-.")[index % 4],
                            label=f"after {report.model} and its baseline" if len(reports) > 1 else None)
    batches = sorted({r.batch for report in reports for r in report.results})
    memory_title = ("peak memory of the whole process\n(CPU: model and baseline together, so far)" if on_cpu
                    else "peak memory per model")
    memory_unit = "MiB, peak resident set size" if on_cpu else "MiB (CUDA allocator peak)"
    for axes, title, unit in ((latency, "latency per run", "ms (median, p10-p90 bars)"),
                              (throughput, "throughput", "images / s"),
                              (memory, memory_title, memory_unit)):
        axes.set_title(title)
        axes.set_xlabel("batch size")
        axes.set_ylabel(unit)
        axes.set_xscale("log", base=2)
        axes.set_xticks(batches, [str(b) for b in batches])
        axes.minorticks_off()
        axes.grid(alpha=0.3)
        if len(batches) == 1:
            axes.set_xlim(batches[0] / 1.5, batches[0] * 1.5)
    _readable_log_scale(latency)
    figure.legend(*latency.get_legend_handles_labels(), loc="outside lower center", fontsize=8, frameon=False,
                  ncol=min(series, 4))
    if on_cpu and len(reports) > 1:
        memory.legend(fontsize=7)
    timing = reports[0].timing
    precision = f"{timing.dtype}{' + AMP' if timing.amp else ''}"
    size = "x".join(map(str, reports[0].input))
    figure.suptitle(f"{timing.mode} on {timing.device}, {precision}, input {size}: each model (dark, solid) against "
                    f"its plain backbone (light, dashed)", fontsize=12)
    return _save(figure, path)


def _dodge(index: int, count: int) -> float:
    """A factor that moves series `index` of `count` a little sideways on the log-2 batch axis, so
    points at the same batch size stand side by side instead of on top of each other."""
    return float(2 ** (0.06 * (index - (count - 1) / 2)))


def _readable_log_scale(axes: Axes) -> None:
    """A log scale only when the values span more than a factor of 10, with ticks as plain numbers
    (40, 60, 100), never 4x10^1."""
    from matplotlib.ticker import FuncFormatter

    low, high = axes.dataLim.y0, axes.dataLim.y1
    if low > 0 and high / low > 10:
        axes.set_yscale("log")
        axes.yaxis.set_minor_formatter(FuncFormatter(lambda value, _: ""))
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))


def _profile_points(latency: Axes, throughput: Axes, memory: Axes | None, points: list[tuple[int, Measurement]],
                    label: str, style: dict[str, Any], dodge: float) -> None:
    """One series: median latency with p10-p90 bars, throughput, and (per model, on CUDA) memory."""
    batches = [batch * dodge for batch, _ in points]
    stats = [m.latency_ms for _, m in points]
    medians = [s.median for s in stats]
    latency.errorbar(batches, medians, yerr=[[m - s.p10 for m, s in zip(medians, stats, strict=True)],
                                             [s.p90 - m for m, s in zip(medians, stats, strict=True)]],
                     capsize=3, label=label, **style)
    throughput.plot(batches, [m.throughput for _, m in points], label=label, **style)
    memory_points = [(batch, m.peak_memory_mb) for batch, (_, m) in zip(batches, points, strict=True)
                     if m.peak_memory_mb is not None]
    if memory is not None and memory_points:
        memory.plot(*zip(*memory_points, strict=True), label=label, **style)


def _pyplot() -> ModuleType:
    """matplotlib.pyplot, imported on first use (with the non-interactive backend)."""
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
