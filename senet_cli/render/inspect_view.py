"""Views of `InspectReport`s: a table of gates, CSV rows, JSON text."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from senet_cli.inspect.results import InspectReport
from senet_cli.render.config_text import short_options
from senet_cli.render.tables import Column, TableData, table_from_columns

SOURCES = {"given": "as given", "metadata": "from the checkpoint's metadata",
           "detected": "detected from the weights"}


def _f(value: float) -> str:
    return f"{value:.3f}"


def _pct(value: float) -> str:
    return f"{100 * value:.1f}%"


GATE_COLUMNS: tuple[Column, ...] = (
    Column("block", "block", lambda g: g.name),
    Column("gate", "gate", lambda g: f"{g.gate} ({g.kind})"),  # may wrap before its kind, never inside a name
    Column("stage", "stage", lambda g: str(g.stage), default=False),
    Column("channels", "chan.", lambda g: str(g.channels)),
    Column("mean", "mean", lambda g: _f(g.mean)),
    Column("std", "std", lambda g: _f(g.std)),
    Column("min", "min", lambda g: _f(g.min), default=False),
    Column("max", "max", lambda g: _f(g.max), default=False),
    Column("below_0_1", "< 0.1", lambda g: _pct(g.below)),
    Column("above_0_9", "> 0.9", lambda g: _pct(g.above)),
    Column("image_spread", "spread\nimages", lambda g: _f(g.image_spread)),
)
"""The gate table's columns, one row per gate (keys as in the CSV); a new field is one more entry."""

CLASS_COLUMNS: tuple[Column, ...] = (Column("class_spread", "spread\nclasses", lambda g: _f(g.class_spread)),)
"""... and the one shown only when the images have labels."""


def column_keys() -> tuple[str, ...]:
    """Every column key a selection may name in the gate table."""
    return tuple(column.key for column in GATE_COLUMNS + CLASS_COLUMNS)


def gate_table(report: InspectReport) -> TableData:
    labelled = bool(report.classes)
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
        "spread images: mean over channels of each channel's std over images"
        + ("; spread classes: mean over channels of the std of the class means" if labelled else ""),
    ]
    if report.skipped_images:
        listed = "; ".join(f"{image.path} ({image.reason})" for image in report.skipped_first)
        more = "; ..." if report.skipped_images > len(report.skipped_first) else ""
        notes.append(f"skipped {report.skipped_images:,} unreadable image(s), not in the statistics: {listed}{more}")
    notes += [f"{g.name} {g.gate}: {g.nonfinite:,} non-finite gate values" for g in report.blocks if g.nonfinite]
    notes += _candidate_notes(report)
    return table_from_columns(GATE_COLUMNS + (CLASS_COLUMNS if labelled else ()), report.blocks, title=title,
                              left_columns=2, wrapped_from=1, notes=tuple(notes))


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

