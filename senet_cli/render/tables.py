"""One format-neutral table, rendered as a rich Table, GitHub Markdown or CSV."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


def printable(text: object) -> str:
    """`text` safe to show on a terminal: what Python calls unprintable (control and format
    characters: ESC, CR, newlines, bidi overrides; separators other than the space) is written as
    its Python escape (`\\x1b`, `\\n`, `\\u202e`), so a name or path read from a file can neither
    move the cursor, recolour the screen nor break a line. Rich markup is not touched here:
    `to_rich` hands rich `Text` objects, which rich never parses for markup."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def plain(text: object, style: str = "") -> Any:
    """A rich `Text` of `text`, escaped with `printable` and never read as markup (a path such as
    `exp[red]/a.pth` shows as written, `a[/]b` raises no MarkupError)."""
    from rich.text import Text

    return Text(printable(text), style=style)


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
        title=plain(table.title), caption=None if table.caption is None else plain(table.caption),
        show_footer=table.footer is not None,
        header_style="bold", title_justify="left", caption_justify="left",
    )
    for index, header in enumerate(table.headers):
        rich_table.add_column(
            plain(header),
            justify="left" if index < table.left_columns else "right",
            footer=plain(table.footer[index]) if table.footer else "",
            no_wrap=index < (table.left_columns if table.wrapped_from is None else table.wrapped_from),
            overflow="fold",  # a number is never cut to an ellipsis
        )
    for row in table.rows:
        rich_table.add_row(*(plain(cell) for cell in row))
    return rich_table


def rich_notes(table: TableData) -> list[Any]:
    """The table's notes as dim rich `Text` lines (escaped, never read as markup)."""
    return [plain(note, style="dim") for note in table.notes]


def to_markdown(table: TableData) -> str:
    def line(cells: Sequence[str]) -> str:
        return "| " + " | ".join(printable(cell).replace("|", "\\|") for cell in cells) + " |"

    align = ["---" if i < table.left_columns else "---:" for i in range(len(table.headers))]
    lines = [f"**{printable(table.title)}**", "", line(table.headers), line(align)]
    lines += [line(row) for row in table.rows]
    if table.footer:
        lines.append(line([f"**{cell}**" if cell else "" for cell in table.footer]))
    if table.caption:
        lines += ["", printable(table.caption)]
    lines += ["", *(f"- {printable(note)}" for note in table.notes)] if table.notes else []
    return "\n".join(lines) + "\n"


def to_json(reports: Sequence[Any]) -> str:
    """Reports as JSON text: one object for one report, a list for several (each report's
    `to_dict()` is its JSON contract). Strict JSON: a non-finite float (NaN, +-Infinity, which
    Python would write as bare tokens most parsers refuse) becomes null; reports that can hold
    them keep a count of them beside (e.g. inspect's `nonfinite`)."""
    payload: Any = [finite_or_none(report.to_dict()) for report in reports]
    return json.dumps(payload[0] if len(payload) == 1 else payload, indent=2, allow_nan=False) + "\n"


def finite_or_none(value: Any) -> Any:
    """`value` (dicts, lists, tuples, scalars) with every non-finite float replaced by None."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(item) for item in value]
    return value


def to_csv(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(headers)
    writer.writerows([printable(cell) if isinstance(cell, str) else cell for cell in row] for row in rows)
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
