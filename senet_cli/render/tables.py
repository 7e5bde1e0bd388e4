"""One format-neutral table, rendered as a rich Table, GitHub Markdown or CSV."""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
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
    """Headers and rows of display strings; `raw_rows` carries unformatted values for CSV.

    `keys` name the columns (the JSON/CSV field each shows, e.g. `attention_macs`) and `shown`
    those a terminal table prints unless asked for more (`select_columns`): at 80 columns a table
    cannot hold every field, which JSON and CSV always keep. Number columns never wrap, so a
    number is never broken across lines."""

    title: str
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    raw_rows: tuple[tuple[Any, ...], ...] = ()
    footer: tuple[str, ...] | None = None
    caption: str | None = None
    left_columns: int = 1  # leading text columns, left-aligned; the rest are numbers
    wrapped_from: int | None = None  # first column rich may wrap (default: none of the text columns)
    notes: tuple[str, ...] = field(default=())
    keys: tuple[str, ...] = ()  # one per header; empty: the columns cannot be selected
    shown: tuple[str, ...] | None = None  # the keys shown by default; None: all
    multiline: bool = False  # cells may hold line breaks ("\n"), kept as breaks, not escaped
    notes_for: Callable[[frozenset[str]], tuple[str, ...]] | None = field(default=None, compare=False)
    """The notes for a given set of shown column keys, where a note explains a column (`notes` then
    holds those for `shown`; `select_columns` remakes them for its choice): a table never explains a
    column it does not show, nor leaves out the note of one it does."""


@dataclass(frozen=True)
class Column:
    """One column of a table made from records: its key (the JSON/CSV field), its header, the
    cell of one record, and whether a terminal table shows it by default. A new field is one more
    `Column` in a view's list."""

    key: str
    header: str
    cell: Callable[[Any], str]
    total: Callable[[Any], str] | None = None  # the footer cell, from the whole report
    default: bool = True


def table_from_columns(
    columns: Sequence[Column], records: Sequence[Any], *, title: str, left_columns: int, total_of: Any = None,
    shown: Sequence[str] | None = None,
    notes: Sequence[str] | Callable[[frozenset[str]], tuple[str, ...]] = (), **extra: Any,
) -> TableData:
    """A `TableData` with one row per record and one column per `Column`; a footer of the
    columns' `total` cells from `total_of` when it is given. `shown`: the keys a terminal shows by
    default, where the table's context decides (more columns than 80 fit); else each `Column.default`.
    `notes`: the notes, or a function of the shown keys that makes them (`TableData.notes_for`)."""
    footer = None if total_of is None else tuple(
        column.total(total_of) if column.total is not None else "" for column in columns)
    keys = tuple(column.key for column in columns)
    shown_keys = tuple(column.key for column in columns if column.default) if shown is None else tuple(shown)
    notes_for = notes if callable(notes) else None
    return TableData(
        title=title, headers=tuple(column.header for column in columns),
        rows=tuple(tuple(column.cell(record) for column in columns) for record in records),
        footer=footer, left_columns=left_columns, keys=keys, shown=shown_keys,
        notes=notes_for(frozenset(shown_keys) & frozenset(keys)) if notes_for else tuple(notes),  # type: ignore[arg-type]
        notes_for=notes_for, **extra,
    )


def milliseconds(value: float | None) -> str:
    """Milliseconds to five significant figures, at most four decimals (0.0067, 52.880, 5,123.4): an
    H100's microseconds and a CPU's seconds at batch 64 both fit a table's column; count and profile
    write every time the same way."""
    if value is None:
        return ""
    decimals = 4 if abs(value) < 10 else 3 if abs(value) < 100 else 2 if abs(value) < 1000 else 1
    return f"{value:,.{decimals}f}"


ALL_COLUMNS = "all"
DEFAULT_COLUMNS = "default"


def check_columns(choice: str | None, known: Sequence[str]) -> None:
    """Raise SenetError unless `choice` is None, 'default', 'all' or comma-separated keys from
    `known` (checked before any work, so a typo never costs a run); the error names the closest
    key and lists them all."""
    from senet_cli.errors import SenetError, close_match_hint

    if choice is None or choice.strip() in (ALL_COLUMNS, DEFAULT_COLUMNS):
        return
    keys = [key.strip() for key in choice.split(",")]
    for key in keys:
        if key not in known and key != DEFAULT_COLUMNS:  # "default,EXTRA": the default set and more
            raise SenetError(f"unknown column '{key}'{close_match_hint(key, known)}; the columns are "
                             f"{', '.join(known)}, or {ALL_COLUMNS}, or {DEFAULT_COLUMNS} (alone, or with more "
                             f"columns: {DEFAULT_COLUMNS},KEY)")


def select_columns(table: TableData, choice: str | None) -> TableData:
    """`table` with the columns `choice` names: None or 'default' the table's default set, 'all'
    every column, else comma-separated keys (`table.keys`: the JSON/CSV field names; those this
    table has not, as roofline_ms without a roofline, are left out; 'default' among them: the default
    set as well), in the table's own order. The leading text columns (block, model) always stay."""
    if not table.keys:
        return table
    defaults = set(table.shown if table.shown is not None else table.keys)
    if choice is None or choice.strip() == DEFAULT_COLUMNS:
        wanted = defaults
    elif choice.strip() == ALL_COLUMNS:
        wanted = set(table.keys)
    else:
        wanted = {key.strip() for key in choice.split(",")}
        wanted |= defaults if DEFAULT_COLUMNS in wanted else set()
    keep = [index for index, key in enumerate(table.keys) if key in wanted or index < table.left_columns]

    def pick(cells: Sequence[Any]) -> tuple[Any, ...]:
        return tuple(cells[index] for index in keep)

    keys = pick(table.keys)
    return replace(
        table, headers=pick(table.headers), rows=tuple(pick(row) for row in table.rows),
        footer=None if table.footer is None else pick(table.footer), keys=keys,
        notes=table.notes if table.notes_for is None else table.notes_for(frozenset(keys)),
        left_columns=sum(1 for index in keep if index < table.left_columns),
        wrapped_from=None if table.wrapped_from is None else sum(1 for index in keep if index < table.wrapped_from),
        shown=None,
    )


def _cell(text: str, multiline: bool) -> Any:
    """A cell as rich `Text`: escaped, and in a multi-line table its line breaks kept."""
    if not multiline or "\n" not in text:
        return plain(text)
    from rich.text import Text

    return Text("\n").join(plain(line) for line in text.split("\n"))


COLUMN_GAP = 2
"""Spaces between two columns of a terminal table (rich's padding of 1, collapsed, and a blank rule)."""


def _wraps(table: TableData, index: int) -> bool:
    """Whether column `index` may wrap: only text columns from `wrapped_from` on; numbers and the
    leading names never do."""
    return index < table.left_columns and index >= (
        table.left_columns if table.wrapped_from is None else table.wrapped_from)


def needed_width(table: TableData) -> int:
    """The narrowest width at which `table` shows every number and name whole: each column that
    never wraps at its widest cell (header lines and footer included), each wrapping column at its
    longest word."""
    widths = []
    for index, header in enumerate(table.headers):
        cells = [row[index] for row in table.rows] + ([table.footer[index]] if table.footer else [])
        lines = header.split("\n") + [line for cell in cells for line in
                                        (cell.split("\n") if table.multiline else [cell])]
        if _wraps(table, index):
            lines = [word for line in lines for word in line.split()]
        widths.append(max((len(printable(line)) for line in lines), default=0))
    return sum(widths) + COLUMN_GAP * max(len(widths) - 1, 0)


def to_rich(table: TableData) -> Any:
    """The title, a rich Table and the caption, as one rich Group. The table has no vertical
    rules (at 80 columns every character counts), text columns that wrap only from
    `wrapped_from`, number columns that never wrap. The group's `needed_width` attribute is
    `needed_width(table)`, for `print_all`."""
    from rich import box
    from rich.console import Group
    from rich.table import Table

    rich_table = Table(
        show_footer=table.footer is not None, box=box.SIMPLE, show_edge=False, pad_edge=False,
        collapse_padding=True, header_style="bold",
    )
    for index, header in enumerate(table.headers):
        rich_table.add_column(
            _cell(header, multiline=True),
            justify="left" if index < table.left_columns else "right",
            footer=plain(table.footer[index]) if table.footer else "",
            no_wrap=not _wraps(table, index),
            overflow="fold",  # a number is never cut to an ellipsis
        )
    for row in table.rows:
        rich_table.add_row(*(_cell(cell, table.multiline) for cell in row))
    if table.multiline:
        rich_table.leading = 1  # a blank line between rows that take several lines each
    parts = [plain(table.title, style="bold"), rich_table, *([plain(table.caption)] if table.caption else [])]
    shown = Group(*parts)  # title and caption wrap at the terminal's width, not the table's
    shown.needed_width = needed_width(table)  # type: ignore[attr-defined]
    return shown


def rich_notes(table: TableData) -> list[Any]:
    """The table's notes as dim rich `Text` lines (escaped, never read as markup)."""
    return [plain(note, style="dim") for note in table.notes]


def to_markdown(table: TableData) -> str:
    def line(cells: Sequence[str], breaks: str = "<br>") -> str:
        return "| " + " | ".join(
            breaks.join(printable(part).replace("|", "\\|") for part in cell.split("\n")) for cell in cells) + " |"

    align = ["---" if i < table.left_columns else "---:" for i in range(len(table.headers))]
    lines = [f"**{printable(table.title)}**", "", line(table.headers, breaks=" "), line(align)]
    lines += [line(row) if table.multiline else line([cell.replace("\n", "\\n") for cell in row])
              for row in table.rows]
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


PIPED_WIDTH = 100
"""Columns of text written to a pipe or file when COLUMNS does not say: as wide as a code block
on GitHub shows, and what the README's console examples use."""


def console(stderr: bool = False) -> Any:
    """The terminal's console; writing to a pipe or file, one COLUMNS wide, else PIPED_WIDTH
    (rich would take 80)."""
    import os

    from rich.console import Console

    probe = Console(stderr=stderr)
    if probe.is_terminal or os.environ.get("COLUMNS", "").strip().isdigit():
        return probe
    return Console(stderr=stderr, width=PIPED_WIDTH)


def print_all(out: Any, renderables: Sequence[Any]) -> None:
    """Print `renderables` on the rich console `out`; a table that cannot fit its width without
    breaking a number is printed at its own width (the terminal wraps the long lines, the numbers
    stay whole), and says so."""
    tables = 0
    for item in renderables:
        needed = getattr(item, "needed_width", None)
        if needed is not None:
            if tables:
                out.print()  # a blank line between tables: a caption never runs into the next title
            tables += 1
            if needed > out.width:
                width = out.width
                out.width = needed  # Console.print(width=) would only narrow it
                try:
                    out.print(item)
                finally:
                    out.width = width
                out.print(plain(f"(this table needs {needed} columns to keep its numbers whole; the terminal "
                                f"has {width})", style="dim"))
                continue
        out.print(item)


def render_text(renderables: Sequence[Any], width: int = PIPED_WIDTH) -> str:
    """Rich renderables as plain text, for a table written to a file."""
    from rich.console import Console

    console = Console(file=io.StringIO(), width=width, color_system=None, force_terminal=False)
    print_all(console, renderables)
    return console.file.getvalue()  # type: ignore[attr-defined]
