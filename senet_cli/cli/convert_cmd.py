"""`senet convert`: a checkpoint in any recognised layout, rewritten in ours (or timm's) with metadata."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from senet_cli.checkpoint.convert import CONVERT_TARGETS
from senet_cli.cli.flags import choices
from senet_cli.cli.output import check_output_path
from senet_cli.errors import SenetError

if TYPE_CHECKING:
    from senet_cli.cli.flags import Choice

    class Target(Choice):
        """CONVERT_TARGETS"""

    class ReportFormat(Choice):
        """table or json"""
else:
    Target = choices("Target", CONVERT_TARGETS)
    ReportFormat = choices("ReportFormat", ("table", "json"))  # one summary line, or the report as JSON
DESTINATION_SUFFIXES = (".safetensors", ".pth", ".pt", ".ckpt", ".bin", ".tar")
"""What a converted checkpoint may be named (`.pth.tar`, as the papers' training scripts save, ends in .tar)."""


def convert_command(
    source: Annotated[Path, typer.Argument(
        metavar="SRC", show_default=False,
        help="The checkpoint: .pth/.pt/.ckpt (torch) or .safetensors, in our layout or one 'senet inspect' recognises.",
    )],
    destination: Annotated[Path, typer.Argument(metavar="DST", help="Where to write: .safetensors, else a torch file.",
                                                show_default=False)],
    to: Annotated[Target, typer.Option("--to", help="Key layout to write: ours, or timm's where a timm model "
                                       "computes the same function.")] = Target["senet"],
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing destination.")] = False,
    model: Annotated[Optional[str], typer.Option(
        "--model", "-m", show_default="from the checkpoint's metadata, else detected from its weights",
        help="The architecture, as in 'senet list'.")] = None,
    trust: Annotated[bool, typer.Option("--trust", help="Allow arbitrary pickled objects (only for a source you "
                                        "trust: unpickling can run code).")] = False,
    ema: Annotated[bool, typer.Option("--ema", help="Take the EMA weights (state_dict_ema / model_ema).")] = False,
    fmt: Annotated[ReportFormat, typer.Option("--format", "-f", help="How to report: a summary line (table) "
                                              "or JSON.")] = ReportFormat["table"],
) -> None:
    """Rewrite a checkpoint's weights in our key layout (or timm's) with the metadata that rebuilds the model.

    Cadene's pretrainedmodels SENets, the tutorials' CIFAR SENet-18, senet.pytorch, timm's SK
    ResNets and the papers' official BAM, Triplet, SRM, SimAM, ECA and Coordinate attention models
    are recognised from their keys; the README lists the layouts.
    """
    if destination.suffix.lower() not in DESTINATION_SUFFIXES:
        raise SenetError(f"DST takes a path ending in {' '.join(DESTINATION_SUFFIXES)} (.safetensors: safetensors, "
                         f"the others: a torch file), got '{destination.name}'")
    check_output_path(destination, force, flag="DST")  # before the checkpoint is read

    from senet_cli.checkpoint.convert import convert
    from senet_cli.render import convert_view

    report = convert(source, destination, to=to.value, force=force, trust=trust, ema=ema, model=model)
    if fmt.value == "json":
        typer.echo(convert_view.to_json(report), nl=False)
    else:
        from senet_cli.render.tables import console, plain, printable

        out = console()
        for line in convert_view.summary(report):  # escaped: names come from files
            if out.is_terminal:
                out.print(plain(line))  # wrapped at spaces, so a number never breaks across lines
            else:
                typer.echo(printable(line))  # piped: one line each, for grep
