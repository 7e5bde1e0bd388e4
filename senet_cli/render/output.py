"""Output formats and safe file writing: never a half-written file, never an overwrite unasked."""

from __future__ import annotations

from enum import Enum
from pathlib import Path

from senet_cli.atomic import atomic_path
from senet_cli.errors import SenetError


class OutputFormat(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"
    md = "md"


_BY_SUFFIX = {".json": OutputFormat.json, ".csv": OutputFormat.csv, ".md": OutputFormat.md}


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


def write_atomic(path: Path, text: str) -> None:
    """Write to a temporary file beside `path`, then rename it over `path` in one step."""
    with atomic_path(path) as temporary, open(temporary, "w", encoding="utf-8") as stream:
        stream.write(text)
