"""`senet list`: the attention modules, backbones, options and name grammar."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from senet_cli.cli.options import FormatOpt
from senet_cli.cli.output import OutputFormat
from senet_cli.errors import SenetError


def list_command(
    pattern: Annotated[
        Optional[str],
        typer.Argument(help="Only print model names matching this pattern, e.g. 'se_*' or '*cifar'.",
                       show_default=False),
    ] = None,
    fmt: FormatOpt = None,
) -> None:
    """List attention modules, backbones and the model-name grammar (torch is not imported)."""
    from senet_cli.cli import catalogue_view
    from senet_cli.render.tables import console, to_csv, to_rich
    from senet_cli.zoo import list_models

    fmt = fmt or OutputFormat.table
    if pattern is not None:
        names = list_models(pattern)
        if not names:
            raise SenetError(f"no model matches '{pattern}'; try 'se_*', '*resnet50' or '*cifar'")
        if fmt is OutputFormat.json:
            import json

            typer.echo(json.dumps(names))
        elif fmt is OutputFormat.csv:
            typer.echo(to_csv(["model"], [[n] for n in names]), nl=False)
        else:
            typer.echo("\n".join(names))
        return
    if fmt is OutputFormat.json:
        typer.echo(catalogue_view.catalogue_json(), nl=False)
    elif fmt is OutputFormat.csv:
        typer.echo(to_csv(["model"], [[n] for n in list_models()]), nl=False)
    elif fmt is OutputFormat.md:
        typer.echo(catalogue_view.markdown(), nl=False)
    else:
        out = console()
        for table in catalogue_view.catalogue_tables():
            out.print(to_rich(table))
