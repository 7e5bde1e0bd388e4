"""The output step every command shares: pick the format, refuse a bad --output before any work,
render, then print or write atomically."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import typer

from senet_cli.render.output import OutputFormat, check_output_path, choose_format, write_atomic


def prepare_output(fmt: OutputFormat | None, output: Path | None, force: bool) -> OutputFormat:
    """The format to write; raises before any work if --output cannot be written."""
    if output is not None:
        check_output_path(output, force)
    return choose_format(fmt, output)


def emit(
    results: Sequence[Any],
    fmt: OutputFormat,
    output: Path | None,
    *,
    json_view: Callable[[Sequence[Any]], str],
    csv_view: Callable[[Sequence[Any]], tuple[list[str], list[list[Any]]]],
    tables: Callable[[Sequence[Any]], list[Any]],
) -> None:
    """Render `results` in `fmt`; print them, or write them to `output` in one rename."""
    from senet_cli.render.tables import console, render_text, to_csv, to_markdown, to_rich

    if fmt is OutputFormat.json:
        text = json_view(results)
    elif fmt is OutputFormat.csv:
        text = to_csv(*csv_view(results))
    elif fmt is OutputFormat.md:
        text = "\n".join(to_markdown(t) for t in tables(results))
    else:
        renderables: list[Any] = []
        for table in tables(results):
            renderables.append(to_rich(table))
            renderables += [f"[dim]{note}[/dim]" for note in table.notes]
        if output is None:
            out = console()
            for item in renderables:
                out.print(item)
            return
        text = render_text(renderables)
    if output is not None:
        write_atomic(output, text)
        typer.echo(f"wrote {output}", err=True)
    else:
        typer.echo(text, nl=False)


def progress_bar() -> Any:
    """A transient rich progress bar on stderr; silent when stderr is not a terminal (a pipe or a
    log file gets no bar and no blank line where it was)."""
    from rich.progress import Progress

    from senet_cli.render.tables import console

    stream = console(stderr=True)
    return Progress(transient=True, console=stream, disable=not stream.is_terminal)
