"""Views of `InspectReport`s: a table of gates, CSV rows, JSON text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from senet_cli.inspect.results import InspectReport
from senet_cli.render.config_text import short_options
from senet_cli.render.tables import TableData

SOURCES = {"given": "as given", "metadata": "from the checkpoint's metadata",
           "detected": "detected from the weights"}


def _f(value: float) -> str:
    return f"{value:.3f}"


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


def gate_table(report: InspectReport) -> TableData:
    labelled = bool(report.classes)
    headers = ("block", "gate", "stage", "channels", "mean", "std", "min", "max", "< 0.1", "> 0.9",
               "spread images", *(("spread classes",) if labelled else ()))
    rows = tuple(
        (
            g.name, f"{g.gate} ({g.kind})", str(g.stage), str(g.channels), _f(g.mean), _f(g.std), _f(g.min),
            _f(g.max), _pct(g.below), _pct(g.above), _f(g.image_spread),
            *((_f(g.class_spread),) if labelled else ()),
        )
        for g in report.blocks
    )
    options = short_options(report.config)
    title = (f"{report.model}{f' ({options})' if options else ''} - gate values over {report.images:,} images, "
             f"input {report.input[0]}x{report.input[1]}, {report.device}")
    loading = report.checkpoint.describe()
    where = f"under '{loading['container']}'" if loading["container"] else "plain state dict"
    stripped = f", stripped {', '.join(loading['stripped_prefixes'])}" if loading["stripped_prefixes"] else ""
    notes = [
        f"checkpoint: {report.checkpoint.path} ({loading['format']}, {where}{stripped}); architecture "
        f"{SOURCES[report.architecture_source]}"
        + (f", keys mapped from {report.layout}'s layout" if report.layout else ""),
        *report.notes,
        f"images: {report.data}" + ("" if labelled else "; no labels"),
        "spread images: mean over channels of each channel's std over images; spread classes: mean over "
        "channels of the std of the class means",
    ]
    if report.skipped_images:
        listed = "; ".join(f"{image.path} ({image.reason})" for image in report.skipped_first)
        more = "; ..." if report.skipped_images > len(report.skipped_first) else ""
        notes.append(f"skipped {report.skipped_images:,} unreadable image(s), not in the statistics: {listed}{more}")
    notes += [f"{g.name} {g.gate}: {g.nonfinite:,} non-finite gate values" for g in report.blocks if g.nonfinite]
    notes += _candidate_notes(report)
    return TableData(title=title, headers=headers, rows=rows, left_columns=2, notes=tuple(notes))


def _candidate_notes(report: InspectReport) -> list[str]:
    if not report.candidates:
        return [f"no block has gates constant within {report.constant_tol} across images"
                + (" and classes" if report.classes else "")]
    total = sum(c.params for c in report.candidates)
    names = ", ".join(c.name for c in report.candidates)
    return [
        f"nearly constant gates (spreads <= {report.constant_tol}) in {len(report.candidates)} block(s): {names}. "
        f"Each applies a fixed per-channel scale the preceding BN can absorb; dropping them saves "
        f"{total:,} parameters ({100 * total / report.params:.2f}% of {report.params:,})"
    ]


def csv_rows(reports: Sequence[InspectReport]) -> tuple[list[str], list[list[Any]]]:
    headers = ["model", "block", "gate", "kind", "stage", "channels", "values", "mean", "std", "min", "max",
               "below_0_1", "above_0_9", "image_spread", "class_spread", "candidate"]
    rows = []
    for report in reports:
        candidates = {c.name for c in report.candidates}
        for g in report.blocks:
            rows.append([report.model, g.name, g.gate, g.kind, g.stage, g.channels, g.values, g.mean, g.std, g.min,
                         g.max, g.below, g.above, g.image_spread, g.class_spread if report.classes else "",
                         g.name in candidates])
    return headers, rows

