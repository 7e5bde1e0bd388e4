"""One format-neutral table, rendered as a rich Table, GitHub Markdown or CSV."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class TableData:
    """Headers and rows of display strings; `raw_rows` carries unformatted values for CSV."""

    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    raw_rows: tuple[tuple[Any, ...], ...] = ()
    footer: tuple[str, ...] | None = None
    caption: str | None = None
    left_columns: int = 1  # leading text columns, left-aligned; the rest are numbers
    wrapped_from: int | None = None  # first column rich may wrap (default: none of the text columns)
    notes: tuple[str, ...] = field(default=())


def to_rich(table: TableData) -> Any:
    from rich.table import Table

    rich_table = Table(
        title=table.title, caption=table.caption, show_footer=table.footer is not None,
        header_style="bold", title_justify="left", caption_justify="left",
    )
    for index, header in enumerate(table.headers):
        rich_table.add_column(
            header,
            justify="left" if index < table.left_columns else "right",
            footer=table.footer[index] if table.footer else "",
            no_wrap=index < (table.left_columns if table.wrapped_from is None else table.wrapped_from),
            overflow="fold",  # a number is never cut to an ellipsis
        )
    for row in table.rows:
        rich_table.add_row(*row)
    return rich_table


def to_markdown(table: TableData) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    align = ["---" if i < table.left_columns else "---:" for i in range(len(table.headers))]
    lines = [f"**{table.title}**", "", line(table.headers), line(align)]
    lines += [line(row) for row in table.rows]
    if table.footer:
        lines.append(line([f"**{cell}**" if cell else "" for cell in table.footer]))
    if table.caption:
        lines += ["", table.caption]
    lines += ["", *(f"- {note}" for note in table.notes)] if table.notes else []
    return "\n".join(lines) + "\n"


def to_json(reports: Sequence[Any]) -> str:
    """Reports as JSON text: one object for one report, a list for several (each report's
    `to_dict()` is its JSON contract)."""
    payload: Any = [report.to_dict() for report in reports]
    return json.dumps(payload[0] if len(payload) == 1 else payload, indent=2) + "\n"


def to_csv(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows(rows)
    return buffer.getvalue()


def console(stderr: bool = False) -> Any:
    """The terminal's console; when writing to a pipe or file, one wide enough that tables keep
    their natural width (rich would fold them at 80 columns), so captured output stays readable."""
    from rich.console import Console

    probe = Console(stderr=stderr)
    return probe if probe.is_terminal else Console(stderr=stderr, width=240)


def render_text(renderables: Sequence[Any], width: int = 240) -> str:
    """Rich renderables as plain text, for a table written to a file."""
    from rich.console import Console

    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    for renderable in renderables:
        console.print(renderable)
    return console.file.getvalue()  # type: ignore[attr-defined]
