"""The output step every command shares: pick the format, refuse a bad --output (or --plot) before
any work, render, then print or write in one rename; and the progress bar long work shows."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

import typer

from senet_cli.atomic import atomic_path
from senet_cli.errors import SenetError


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    md = "md"


_BY_SUFFIX = {".json": OutputFormat.json, ".csv": OutputFormat.csv, ".md": OutputFormat.md}
PLOT_FORMATS = ("png", "svg", "pdf")  # what matplotlib writes for render.gate_plots


def choose_format(requested: OutputFormat | None, output: Path | None) -> OutputFormat:
    """The format asked for, else the one the output file's extension names, else a table."""
    if requested is not None:
        return requested
    if output is not None:
        return _BY_SUFFIX.get(output.suffix.lower(), OutputFormat.table)
    return OutputFormat.table


def check_output_path(path: Path, force: bool, flag: str = "--output") -> None:
    """Fail before any work if the file exists (without --force) or its folder does not."""
    if path.is_dir():
        raise SenetError(f"{flag} {path} is a directory; give a file path")
    if path.exists() and not force:
        raise SenetError(f"{path} already exists; pass --force to overwrite it")
    if not path.parent.exists():
        raise SenetError(f"cannot write {path}: folder {path.parent} does not exist")


def check_plot_path(path: Path, force: bool) -> None:
    """Fail before any work for an unsupported extension, an existing file or a missing folder."""
    if path.suffix.lower().lstrip(".") not in PLOT_FORMATS:
        raise SenetError(f"--plot takes a .png, .svg or .pdf path, got '{path.name}'")
    check_output_path(path, force, flag="--plot")


def prepare_output(fmt: OutputFormat | None, output: Path | None, force: bool) -> OutputFormat:
    """The format to write; raises before any work if --output cannot be written."""
    if output is not None:
        check_output_path(output, force)
    return choose_format(fmt, output)


def write_text(path: Path, text: str) -> None:
    """Write to a temporary file beside `path`, then rename it over `path` in one step."""
    with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as stream:
        stream.write(text)


def emit(
    results: Sequence[Any],
    fmt: OutputFormat,
    output: Path | None,
    *,
    csv_view: Callable[[Sequence[Any]], tuple[list[str], list[list[Any]]]],
    tables: Callable[[Sequence[Any]], list[Any]],
) -> None:
    """Render `results` (each with a `to_dict()`) in `fmt`; print them, or write them to `output`
    in one rename."""
    from senet_cli.render.tables import console, render_text, to_csv, to_json, to_markdown, to_rich

    if fmt is OutputFormat.json:
        text = to_json(results)
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
        write_text(output, text)
        typer.echo(f"wrote {output}", err=True)
    else:
        typer.echo(text, nl=False)


def quiet_rank() -> bool:
    """True in a torchrun process other than rank 0: it works, but prints and writes nothing."""
    return os.environ.get("RANK", "0") != "0"


class LazyProgress:
    """A transient rich progress bar on stderr that appears only when the first step is reported,
    after the library has checked its arguments (so an error never lands under a bar). Silent
    when stderr is not a terminal: a pipe or a log file gets no bar and no blank line where it was.
    """

    def __init__(self) -> None:
        from rich.progress import Progress

        from senet_cli.render.tables import console

        stream = console(stderr=True)
        self.bar = Progress(transient=True, console=stream, disable=not stream.is_terminal or quiet_rank())

    def task(self, description: str, total: float | None = None) -> Callable[[int, int], None]:
        """A callback `(done, total)` for one job; the bar starts at its first call."""
        task_id = self.bar.add_task(description, total=total, start=False)

        def report(done: int, total: int) -> None:
            if not self.bar.live.is_started:
                self.bar.start()
            self.bar.start_task(task_id)
            self.bar.update(task_id, completed=done, total=total or None)

        return report

    def __enter__(self) -> LazyProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar.live.is_started:
            self.bar.stop()
