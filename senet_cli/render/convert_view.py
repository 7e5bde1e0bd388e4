"""Views of a `ConvertReport`: one summary line (with its notes), or JSON."""

from __future__ import annotations

import json

from senet_cli.checkpoint.convert import ConvertReport
from senet_cli.render.config_text import short_options


def summary(report: ConvertReport) -> list[str]:
    """What was written where, from what, then the notes on how the architecture was found."""
    options = short_options(report.config)
    read = f"{report.read_layout}'s layout" if report.read_layout else "our layout"
    written = "our layout" if report.written_as == "senet" else f"timm's {report.written_as} keys"
    lines = [
        f"converted {report.source} ({read}) -> {report.destination} ({report.format}, as {written}): "
        f"{report.model}{f' ({options})' if options else ''}, {report.tensors:,} tensors, {report.parameters:,} "
        f"parameters, with the metadata that rebuilds it",
    ]
    return lines + [f"- {note}" for note in report.notes]


def to_json(report: ConvertReport) -> str:
    return json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n"  # strict JSON, as every command's
