"""`senet list`: the attention modules, backbones, options and name grammar."""

from __future__ import annotations

from typing import Annotated, Optional

import typer

from senet_cli.cli.flags import ForceOpt, FormatOpt, OutputPathOpt
from senet_cli.cli.output import OutputFormat, prepare_output, write_text
from senet_cli.errors import SenetError


def list_command(
    pattern: Annotated[
        Optional[str],
        typer.Argument(metavar="PATTERN", show_default=False,
                       help="Only print model names matching this pattern, e.g. 'se_*' or '*cifar'."),
    ] = None,
    fmt: FormatOpt = None,
    output: OutputPathOpt = None,
    force: ForceOpt = False,
) -> None:
    """List attention modules, backbones, options and every model name; with a PATTERN, only the names that match.

    Like timm.list_models('se*'): 'senet list "se_*"' prints one name per line, for scripts.
    """
    from senet_cli.cli import catalogue_view
    from senet_cli.render.tables import console, print_all, render_text, to_csv, to_rich
    from senet_cli.zoo import list_models

    fmt = prepare_output(fmt, output, force)
    if pattern is not None:
        names = list_models(pattern)
        if not names:
            raise SenetError(f"no model matches '{pattern}'; try 'se_*', '*resnet50' or '*cifar'")
        if fmt is OutputFormat.json:
            import json

            text = json.dumps(names) + "\n"
        elif fmt is OutputFormat.csv:
            text = to_csv(["model"], [[n] for n in names])
        else:
            text = "\n".join(names) + "\n"
    elif fmt is OutputFormat.json:
        text = catalogue_view.catalogue_json()
    elif fmt is OutputFormat.csv:
        text = to_csv(["model"], [[n] for n in list_models()])
    elif fmt is OutputFormat.md:
        text = catalogue_view.markdown()
    elif output is None:
        print_all(console(), [to_rich(table) for table in catalogue_view.catalogue_tables()])
        return
    else:
        text = render_text([to_rich(table) for table in catalogue_view.catalogue_tables()])
    if output is not None:
        write_text(output, text)  # renamed into place when the command ends
    else:
        typer.echo(text, nl=False)
