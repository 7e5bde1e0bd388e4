"""Options shared by the commands, defined once as `Annotated` aliases; choices are Enums made
from the library's own tuples, so a choice is written once.

Torch-free: `senet --help` imports this module.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from senet_cli.cli.errors import flag
from senet_cli.cli.output import OutputFormat, quiet_rank
from senet_cli.errors import SenetError
from senet_cli.options import COMMON_OPTION_NAMES, PLACEMENTS, VARIANTS
from senet_cli.vocabulary import DEVICES

BUILD = "Build options"
OUTPUT = "Output"


def choices(name: str, values: Sequence[str]) -> Any:
    """A str Enum whose members are `values` (named as themselves): what typer offers as choices."""
    return Enum(name, [(value, value) for value in values], type=str)


if TYPE_CHECKING:
    class Choice(str, Enum):
        """What a type checker knows of every Enum `choices` makes: a str Enum. The members come
        from the library's tuples at run time, which no checker can list."""

    class Variant(Choice):
        """options.VARIANTS"""

    class Placement(Choice):
        """options.PLACEMENTS"""

    class Device(Choice):
        """vocabulary.DEVICES"""
else:
    Variant = choices("Variant", VARIANTS)
    Placement = choices("Placement", PLACEMENTS)
    Device = choices("Device", DEVICES)


ModelsArg = Annotated[
    list[str],
    typer.Argument(
        help="Model names: <attention>_<backbone> (se_resnet50, cbam_resnet18_cifar) or a bare "
        "backbone (resnet50), see 'senet list'; or torchvision:NAME, timm:NAME, path/to/file.py:callable, "
        "package.module:callable (README 'Bring your own model').",
        show_default=False,
    ),
]
RatioOpt = Annotated[
    Optional[int],
    typer.Option(min=1, help="Reduction ratio r.", show_default="per module: 16 for se", rich_help_panel=BUILD),
]
VariantOpt = Annotated[
    Optional[Variant],
    typer.Option(help="ResNets: v1.5 puts the stride on the bottleneck's 3x3 (torchvision, timm); v1 on "
                 "its first 1x1 (Caffe ResNets, SENet/CBAM papers); -caffe adds Caffe's ceil-mode stem max-pool "
                 "(Cadene's SENets).", show_default="v1.5", rich_help_panel=BUILD),
]
PlacementOpt = Annotated[
    Optional[Placement],
    typer.Option(help="Where a residual-branch module sits in a block (SENet Fig. 5).", show_default="standard",
                 rich_help_panel=BUILD),
]
StagesOpt = Annotated[
    Optional[str],
    typer.Option(help="Stages that get attention, comma-separated (1 to the backbone's stage count).",
                 show_default="per module, see 'senet list'", rich_help_panel=BUILD, metavar="N[,N...]"),
]
NumClassesOpt = Annotated[
    Optional[int],
    typer.Option("--num-classes", min=1, show_default="1000; 10 for _cifar",
                 help="Classifier outputs.", rich_help_panel=BUILD),
]
ModuleOpt = Annotated[
    Optional[list[str]],
    typer.Option("--opt", "-o", metavar="KEY=VALUE", show_default=False, rich_help_panel=BUILD,
                 help="A module-specific option, repeatable: -o squeeze=max -o gate=tanh, "
                 "-o k_size=3,5,5,7. 'senet list' shows each module's options."),
]
AttentionClassOpt = Annotated[
    Optional[list[str]],
    typer.Option("--attention-class", metavar="PATH_OR_MODULE:Class", show_default=False, rich_help_panel=BUILD,
                 help="Models outside the zoo (torchvision:NAME, timm:NAME, file.py:callable): also count this "
                 "class as attention (a gate on its input), repeatable. Imports, so runs, that code."),
]
InputOpt = Annotated[
    Optional[str],
    typer.Option("--input", metavar="SIZE", show_default="224; 32 for _cifar",
                 help="Input side, or HxW such as 224x320."),
]
BatchOpt = Annotated[int, typer.Option(min=1, help="Batch size; counts cover the whole batch.")]
FormatOpt = Annotated[
    Optional[OutputFormat],
    typer.Option("--format", "-f", show_default="table, or the --output extension",
                 help="Output format.", rich_help_panel=OUTPUT),
]
OutputPathOpt = Annotated[
    Optional[Path],
    typer.Option("--output", metavar="PATH", show_default=False, rich_help_panel=OUTPUT,
                 help="Write the result to a file: .json, .csv, .md or .txt (the table); the format follows "
                 "the extension unless --format."),
]
ForceOpt = Annotated[
    bool, typer.Option("--force", help="Overwrite existing output files.", rich_help_panel=OUTPUT)
]


def build_options(
    variant: Variant | None, placement: Placement | None, stages: str | None, num_classes: int | None,
    module_options: list[str] | None, ratio: int | None = None,
) -> dict[str, Any]:
    """The CLI's build flags as keyword arguments for `make_config`: only those given, so the
    model's own defaults (per-module ratio and stages, per-backbone variant) apply to the rest.
    `count` leaves `ratio` out: it sweeps a list of them itself."""
    given = {"ratio": ratio, "variant": variant, "placement": placement, "stages": stages, "num_classes": num_classes}
    options = {key: getattr(value, "value", value) for key, value in given.items() if value is not None}
    return {**options, **parse_module_options(module_options)}


def parse_module_options(items: list[str] | None) -> dict[str, str]:
    """`--opt KEY=VALUE` items as a dict; the common options must use their own flags."""
    options: dict[str, str] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise SenetError(f"--opt takes KEY=VALUE, got '{item}'")
        if key in COMMON_OPTION_NAMES:
            raise SenetError(f"'{key}' has its own flag: use {flag(key)}")
        options[key] = value.strip()
    return options


def parse_input_size(text: str | None) -> int | tuple[int, int] | None:
    """"224" -> 224, "224x320" -> (224, 320), None -> None (the backbone's default)."""
    if text is None:
        return None
    parts = text.lower().split("x")
    try:
        sides = [int(part) for part in parts]
    except ValueError:
        raise SenetError(f"--input takes a size such as 224 or 224x320, got '{text}'") from None
    if len(sides) not in (1, 2) or min(sides) < 1:
        raise SenetError(f"--input takes a size such as 224 or 224x320, got '{text}'")
    return sides[0] if len(sides) == 1 else (sides[0], sides[1])


def note_ignored_ratio(models: Sequence[str], ratio: object) -> None:
    """With --ratio given, say on stderr (one line) which of `models` take no reduction ratio: a
    plain backbone, or a module such as eca or simam. A note rather than an error: timm's
    `create_attn` likewise accepts and ignores `rd_ratio` for ECA, and a sweep over mixed models
    (`count resnet50 se_resnet50 eca_resnet50 --ratio 4,16`) should still run. Call it after the
    names are checked."""
    if ratio is None or quiet_rank():
        return
    from senet_cli.render.tables import printable
    from senet_cli.subject import ratio_note

    ignored = [note for note in map(ratio_note, dict.fromkeys(models)) if note is not None]
    if ignored:
        sys.stderr.write(printable(f"senet: note: --ratio ignored for {', '.join(ignored)}") + "\n")
