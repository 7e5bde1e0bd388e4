"""The figure of `senet inspect`'s plot: gate histograms per stage and per-channel gate profiles.

Top row: one panel per stage, the distribution of gate values of each block in it (fraction of
values per bin). Below: the SENet paper's Fig. 6 view for the blocks it shows (the last block of
every stage but the last, and every block of the last stage): the mean gate per channel, one line
per class when the images are labelled (up to MAX_CLASSES), else the mean with a +-1 std band; the
first MAX_CHANNELS channels, so that the lines stay apart.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

from senet_cli.atomic import atomic_path
from senet_cli.inspect.results import GateStats, InspectReport

if TYPE_CHECKING:
    from matplotlib.axes import Axes

MAX_CLASSES = 10
MAX_CHANNELS = 128  # beyond this the lines merge into a band; the JSON has every channel
PROFILES_PER_ROW = 3


def profile_blocks(report: InspectReport) -> list[GateStats]:
    """Channel gates of the blocks the paper's Fig. 6 shows: last of each stage, all of the last stage."""
    channel = [g for g in report.blocks if g.kind == "channel" and g.channels > 1]
    if not channel:
        return []
    last_stage = max(g.stage for g in channel)
    chosen = []
    for stage in sorted({g.stage for g in channel}):
        in_stage = [g for g in channel if g.stage == stage]
        chosen += in_stage if stage == last_stage else in_stage[-1:]
    return chosen


def plot_gates(report: InspectReport, path: Path) -> Path:
    """Draw the figure and write it to `path` (format from the extension) in one rename."""
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    stages = sorted({g.stage for g in report.blocks})
    profiles = profile_blocks(report)
    profile_rows = math.ceil(len(profiles) / PROFILES_PER_ROW)
    columns = len(stages) * PROFILES_PER_ROW  # a grid both rows divide evenly
    figure = plt.figure(figsize=(4.2 * max(len(stages), PROFILES_PER_ROW), 3.4 * (1 + profile_rows) + 0.6),
                        layout="constrained")
    grid = figure.add_gridspec(1 + profile_rows, columns)
    for index, stage in enumerate(stages):
        span = columns // len(stages)
        _histogram_panel(figure.add_subplot(grid[0, index * span:(index + 1) * span]), report, stage)
    panels = []
    for index, gate in enumerate(profiles):
        row, column = divmod(index, PROFILES_PER_ROW)
        span = columns // PROFILES_PER_ROW
        panels.append(figure.add_subplot(grid[1 + row, column * span:(column + 1) * span]))
        _profile_panel(panels[-1], report, gate)
    if panels:  # the profiles share their lines' meaning: one legend, below them all, over no data
        handles, names = panels[0].get_legend_handles_labels()
        figure.legend(handles, names, loc="outside lower center", ncol=min(len(names), 10), fontsize=8,
                      frameon=False)
    labels = f", {len(report.classes)} classes" if report.classes else ", no labels"
    figure.suptitle(f"{report.model}: attention gate values over {report.images:,} images{labels} "
                    f"({Path(report.checkpoint.path).name})", fontsize=13)
    suffix = path.suffix.lower().lstrip(".")
    try:
        with atomic_path(path) as temporary:
            figure.savefig(temporary, format=suffix, dpi=110)
    finally:
        plt.close(figure)
    return path


def _histogram_panel(axes: Axes, report: InspectReport, stage: int) -> None:
    import matplotlib.pyplot as plt

    gates = [g for g in report.blocks if g.stage == stage]
    kinds = {g.kind for g in gates}
    blocks = list(dict.fromkeys(g.name for g in gates))
    colours = plt.get_cmap("tab10")
    for gate in gates:  # one colour per block; solid for channel gates, dashed for the others
        counts = gate.histogram.counts
        total = sum(counts) or 1
        label = gate.name if len(kinds) == 1 else f"{gate.name} {gate.kind}"
        axes.stairs([c / total for c in counts], gate.histogram.edges, label=label,
                    color=colours(blocks.index(gate.name) % 10),
                    linestyle="-" if gate.kind == "channel" else "--", linewidth=1.4)
    channels = ", ".join(sorted({f"{g.channels} ch" for g in gates if g.kind == "channel"}))
    axes.set_title(f"stage {stage} (layer{stage}{', ' + channels if channels else ''})")
    axes.set_xlabel("gate value")
    axes.set_ylabel("fraction of values")
    axes.legend(fontsize=6.5, ncol=2 if len(gates) > 6 else 1, loc="best")
    axes.grid(alpha=0.3)


def _profile_panel(axes: Axes, report: InspectReport, gate: GateStats) -> None:
    shown_channels = min(gate.channels, MAX_CHANNELS)
    channels = range(shown_channels)
    if gate.class_means:
        import matplotlib.pyplot as plt

        colours = plt.get_cmap("tab10")
        for index, (label, means) in enumerate(gate.class_means[:MAX_CLASSES]):
            axes.plot(channels, means[:shown_channels], linewidth=0.8, color=colours(index % 10),
                      label=f"class {label}")
        shown = min(len(gate.class_means), MAX_CLASSES)
        extra = f" (first {shown} of {len(gate.class_means)} classes)" if len(gate.class_means) > shown else ""
        ylabel = f"mean gate per class{extra}"
    else:
        means = gate.channel_means[:shown_channels]
        low = [m - s for m, s in zip(means, gate.channel_stds[:shown_channels], strict=True)]
        high = [m + s for m, s in zip(means, gate.channel_stds[:shown_channels], strict=True)]
        axes.fill_between(channels, low, high, alpha=0.3, label="+-1 std over images")
        axes.plot(channels, means, linewidth=0.8, label="mean over images")
        ylabel = "gate value"
    subset = f" (first {shown_channels} of {gate.channels})" if shown_channels < gate.channels else ""
    axes.set_title(f"{gate.name} (stage {gate.stage}): gate per channel{subset}")
    axes.set_xlabel("channel index")
    axes.set_ylabel(ylabel)
    axes.set_xlim(0, max(shown_channels - 1, 1))
    axes.grid(alpha=0.3)
