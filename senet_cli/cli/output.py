"""The output step every command shares: pick the format, refuse a bad --output (or --plot) before
any work, render, then print or write in one rename; and the progress bar long work shows."""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Callable, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

import typer

from senet_cli import paths
from senet_cli.atomic import OutputError, atomic_path, check_writable, current
from senet_cli.errors import SenetError
from senet_cli.vocabulary import PLOT_FORMATS, plot_suffixes


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    md = "md"


_BY_SUFFIX = {".json": OutputFormat.json, ".csv": OutputFormat.csv, ".md": OutputFormat.md, ".txt": OutputFormat.table}


def choose_format(requested: OutputFormat | None, output: Path | None) -> OutputFormat:
    """The format asked for, else the one the output file's extension names, else a table."""
    if requested is not None:
        return requested
    if output is not None:
        return _BY_SUFFIX.get(output.suffix.lower(), OutputFormat.table)
    return OutputFormat.table


def check_output_path(path: Path, force: bool, flag: str = "--output") -> None:
    """Fail before any work unless `path` can be written (see atomic.check_writable: its folder, a
    real probe file there, an existing file without --force), and record whether the commit at the
    end may replace a file there: a file that appears meanwhile is only replaced with --force."""
    try:  # an empty path arrives as Path("") == ".": a directory, refused below
        check_writable(path, overwrite=force)
    except OutputError as error:
        if error.reason == "it already exists":
            raise SenetError(f"{path} already exists; pass --force to overwrite it") from None
        if error.reason.startswith("it is a directory"):
            raise SenetError(f"{flag} {path} is a directory; give a file path") from None
        raise
    transaction = current()
    if transaction is not None:
        transaction.allow(path, overwrite=force)


def check_plot_path(path: Path, force: bool) -> None:
    """Fail before any work for an unsupported extension, an existing file or a missing folder."""
    if path.suffix.lower().lstrip(".") not in PLOT_FORMATS:
        raise SenetError(f"--plot takes a {plot_suffixes()} path, got '{path.name}'")
    check_output_path(path, force, flag="--plot")


PLOT_HERE = ":here:"
"""What `--plot` with no path stands for (cli/app.py fills it in): the default figure path."""


def default_plot_path(source: Path | str, kind: str = "gates") -> Path:
    """Where `--plot` without a path writes, in the working directory: `<stem>.<kind>.png`, the stem
    a checkpoint's (ckpt.gates.png for ckpt.pth) or a model name's with anything but letters, digits,
    '.', '_' and '-' made '_' (torchvision_mobilenet_v3_small.count.png)."""
    if isinstance(source, Path):
        stem = source.stem or source.name
    else:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", source).strip("._") or "senet"
    return Path(f"{stem}.{kind}.png")


def prepare_output(fmt: OutputFormat | None, output: Path | None, force: bool) -> OutputFormat:
    """The format to write; raises before any work if --output cannot be written or its extension
    names no format."""
    if output is not None:
        if output.suffix.lower() not in _BY_SUFFIX and not paths.is_dir(output, "--output"):
            accepted = " ".join(_BY_SUFFIX)
            raise SenetError(f"--output takes a path ending in {accepted} (.txt: the table as text), "
                             f"got '{output.name}'")
        named = _BY_SUFFIX.get(output.suffix.lower())
        if fmt is not None and named is not None and named is not OutputFormat.table and named is not fmt:
            suffixes = " or ".join(k for k, v in _BY_SUFFIX.items() if v in (fmt, OutputFormat.table))
            raise SenetError(f"--format {fmt.value} and --output '{output.name}' disagree (that name says "
                             f"{named.value}); drop --format, or give a path ending in {suffixes}")
        check_output_path(output, force)
    return choose_format(fmt, output)


def write_text(path: Path, text: str) -> None:
    """Write to a temporary file beside `path`, then rename it over `path` in one step (at the end
    of the command, with its other outputs)."""
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
    (renamed into place when the command ends, with its other outputs; `main` says "wrote")."""
    from senet_cli.render.tables import (
        console,
        print_all,
        render_text,
        rich_notes,
        to_csv,
        to_json,
        to_markdown,
        to_rich,
    )

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
            renderables += rich_notes(table)
        if output is None:
            print_all(console(), renderables)
            return
        text = render_text(renderables)
    if output is not None:
        write_text(output, text)
    else:
        typer.echo(text, nl=False)


def quiet_rank() -> bool:
    """True in a torchrun process other than rank 0: it works, but prints and writes nothing."""
    return os.environ.get("RANK", "0") != "0"


PLAIN_PROGRESS_AFTER_S = 10.0
"""Without a terminal, progress lines start once the work (from its first reported step) has run
this long: short runs stay quiet (an error stays the only line), long ones are not silence."""
PLAIN_PROGRESS_EVERY_S = 30.0
"""... and a running job's `done/total` line comes at most this often."""


class LazyProgress:
    """Progress on stderr, shown only once the first step is reported, after the library has
    checked its arguments (so an error never lands under a bar).

    On a terminal: a transient rich progress bar. Otherwise (CI logs, `nohup`, a pipe) plain
    lines, once the work has run PLAIN_PROGRESS_AFTER_S: `senet: <job>: running for N s, done/total`
    (N the job's own time, as in its "finished in"; the whole work's beside when it began earlier),
    then for every job `senet: <job>: started` and `senet: <job>: finished in N s`, and between
    them a `running for N s, done/total` line at most every PLAIN_PROGRESS_EVERY_S. A job whose count starts again
    (profile's rounds, for each batch size) is finished and started again.
    """

    def __init__(self) -> None:
        from rich.progress import Progress

        from senet_cli.render.tables import console

        stream = console(stderr=True)
        self.plain = not stream.is_terminal and not quiet_rank()
        self.bar = Progress(transient=True, console=stream, disable=not stream.is_terminal or quiet_rank())
        self.began: float | None = None  # plain mode: when the first job reported (setup does not count)
        self.speaking = False  # plain mode: lines are printed once the work has run long enough
        self.open_jobs: dict[int, Callable[[], None]] = {}  # plain mode: how to finish each job still running
        self.job_ids = itertools.count()

    def task(self, description: str, total: float | None = None) -> Callable[[int, int], None]:
        """A callback `(done, total)` for one job; the bar (or the plain lines) start at its first call."""
        from rich.markup import escape

        from senet_cli.render.tables import printable

        description = printable(description)
        if self.plain:
            return self._plain_task(description)
        task_id = self.bar.add_task(escape(description), total=total, start=False)

        def report(done: int, total: int) -> None:
            if not self.bar.live.is_started:
                self.bar.start()
            self.bar.start_task(task_id)
            self.bar.update(task_id, completed=done, total=total or None)

        return report

    def _plain_task(self, description: str) -> Callable[[int, int], None]:
        import sys
        import time

        key = next(self.job_ids)
        state = {"started": 0.0, "printed": 0.0, "done": -1}

        def line(text: str) -> None:
            sys.stderr.write(f"senet: {description}: {text}\n")
            sys.stderr.flush()

        def finish() -> None:
            if self.speaking:
                line(f"finished in {time.perf_counter() - state['started']:.1f} s")
            self.open_jobs.pop(key, None)

        def count(done: int, total: int) -> str:
            return f"{done}/{total}" if total else f"{done} done"

        def report(done: int, total: int) -> None:
            now = time.perf_counter()
            self.began = now if self.began is None else self.began
            if key in self.open_jobs and done < state["done"]:
                finish()  # the count started again: a new round of the same job
            if key not in self.open_jobs:
                state.update(started=now, printed=now)
                self.open_jobs[key] = finish
                if self.speaking:
                    line("started")
            state["done"] = done
            if not self.speaking and now - self.began >= PLAIN_PROGRESS_AFTER_S:
                self.speaking = True
                state["printed"] = now
                # the job's own time, as its "finished in" will be; the whole run's beside when longer
                ran, job = now - self.began, now - state["started"]
                whole = f" (the work began {ran:.0f} s ago)" if f"{ran:.1f}" != f"{job:.1f}" else ""
                line(f"running for {job:.1f} s, {count(done, total)}{whole}")
            if total and done >= total:
                finish()
            elif self.speaking and now - state["printed"] >= PLAIN_PROGRESS_EVERY_S:
                state["printed"] = now
                line(f"running for {now - state['started']:.1f} s, {count(done, total)}")

        return report

    def __enter__(self) -> LazyProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar.live.is_started:
            self.bar.stop()
        if exc[0] is None:
            for finish in list(self.open_jobs.values()):
                finish()
        self.open_jobs.clear()
