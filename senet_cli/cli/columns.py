"""`--columns`: which of a table's columns a terminal (or Markdown) table shows.

At 80 columns a table cannot hold every field a report has, so each view marks a default set
(render/tables.py `Column.default`); `--columns all` shows every one, `--columns KEY,KEY` picks
them by their JSON/CSV names. JSON and CSV always hold every field. Torch-free.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any, Optional

import typer

from senet_cli.cli.output import OutputFormat

COLUMNS_PANEL = "Output"

ColumnsOpt = Annotated[
    Optional[str],
    typer.Option(
        "--columns", metavar="all|[default,]KEY,...", show_default="a set that fits 80 columns",
        rich_help_panel=COLUMNS_PANEL,
        help="Table columns: all, or field names as in the CSV (params,macs,...), default,KEY,... for the "
        "default set and more; a wrong name lists them. JSON and CSV always hold every field.",
    ),
]


def with_columns(tables: Callable[[Sequence[Any]], list[Any]], choice: str | None,
                 fmt: OutputFormat | None = None) -> Callable[[Sequence[Any]], list[Any]]:
    """`tables` (reports -> TableData list) with each table narrowed to the `--columns` choice
    (checked beforehand with `render.tables.check_columns`). Markdown, which no terminal wraps,
    has every column unless --columns says otherwise."""
    from senet_cli.render.tables import ALL_COLUMNS, select_columns

    if choice is None and fmt is OutputFormat.md:
        choice = ALL_COLUMNS
    return lambda reports: [select_columns(table, choice) for table in tables(reports)]
