"""`senet prune`: fold or remove a checkpoint's attention, measure what it costs, write the smaller one."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from senet_cli.cli.columns import ColumnsOpt, with_columns
from senet_cli.cli.flags import (
    OUTPUT,
    AttentionClassOpt,
    Device,
    ForceOpt,
    FormatOpt,
    InputOpt,
    ModuleOpt,
    NumClassesOpt,
    OutputPathOpt,
    PlacementOpt,
    RatioOpt,
    VariantOpt,
    build_options,
    parse_input_size,
)
from senet_cli.cli.output import LazyProgress, check_output_path, emit, prepare_output, quiet_rank
from senet_cli.errors import SenetError

CHOOSE = "Which blocks"
DATA = "Images"
LOADING = "Loading"


class Mode(str, Enum):
    """What happens to a chosen attention module (senet_cli/prune/api.py)."""

    fold = "fold"
    remove = "remove"

SUFFIXES = (".pth", ".pt", ".ckpt", ".safetensors")


def prune_command(
    checkpoint: Annotated[Path, typer.Argument(help="A .pth/.pt/.ckpt (torch) or .safetensors file.",
                                               show_default=False)],
    out: Annotated[Path, typer.Argument(metavar="OUT", show_default=False,
                                        help="The pruned checkpoint to write: .safetensors, else a torch file.")],
    blocks: Annotated[Optional[str], typer.Option(metavar="NAME,...", rich_help_panel=CHOOSE, show_default=False,
                                                  help="Blocks to prune, as count and inspect name them "
                                                "(layer4.2).")] = None,
    stages: Annotated[Optional[str], typer.Option(metavar="N,...", rich_help_panel=CHOOSE, show_default=False,
                                                  help="Prune every attention module of these stages.")] = None,
    candidates: Annotated[bool, typer.Option("--candidates", rich_help_panel=CHOOSE,
                                             help="Prune inspect's drop candidates (gates constant within "
                                             "--constant-tol).")] = False,
    mode: Annotated[Mode, typer.Option(rich_help_panel=CHOOSE,
                                       help="fold: the gate's mean per channel goes into the weights around it; "
                                       "remove: the module becomes a pass-through, weights unchanged.")] = Mode.fold,
    sweep: Annotated[bool, typer.Option("--sweep", rich_help_panel=CHOOSE,
                                        help="Also prune each chosen block alone, ranked by accuracy cost per "
                                        "parameter saved.")] = False,
    constant_tol: Annotated[float, typer.Option(min=0.0, rich_help_panel=CHOOSE,
                                                help="Spread below which gates count as constant (--candidates)."
                                                )] = 0.05,
    data: Annotated[str, typer.Option(metavar="samples|synthetic|DIR", rich_help_panel=DATA,
                                      help="Images for the gate means and the evaluation, as for inspect; "
                                      "class folders give labels (accuracy).")] = "samples",
    limit: Annotated[Optional[int], typer.Option(min=1, show_default="all; 64 for synthetic", rich_help_panel=DATA,
                                                 help="At most this many images.")] = None,
    batch: Annotated[int, typer.Option(min=1, help="Images per forward pass.", rich_help_panel=DATA)] = 16,
    input_size: InputOpt = None,
    device: Annotated[Device, typer.Option(help="Where to run.", rich_help_panel=DATA)] = Device["cpu"],
    workers: Annotated[int, typer.Option(min=0, help="DataLoader workers for DIR.", rich_help_panel=DATA)] = 0,
    strict: Annotated[bool, typer.Option("--strict", rich_help_panel=DATA,
                                         help="Stop at an unreadable image of DIR instead of skipping it.")] = False,
    roofline: Annotated[Optional[str], typer.Option(
        metavar="DEVICE|PEAK_TFLOPS,BANDWIDTH_GBS|DEVICE.json", show_default=False, rich_help_panel=OUTPUT,
        help="Also report count's roofline bound saved on this device (as count --roofline); a `senet calibrate` "
        "file also gives the predicted time saved.")] = None,
    model: Annotated[Optional[str], typer.Option(
        "--model", "-m", show_default="from the checkpoint's metadata, else detected from its weights",
        help="The architecture, as in 'senet list', or torchvision:NAME, timm:NAME, file.py:callable; build "
        "options below apply to it.", rich_help_panel=LOADING)] = None,
    trust: Annotated[bool, typer.Option("--trust", rich_help_panel=LOADING,
                                        help="Allow arbitrary pickled objects (runs code from the file).")] = False,
    ema: Annotated[bool, typer.Option("--ema", rich_help_panel=LOADING, help="Take the EMA weights.")] = False,
    ratio: RatioOpt = None,
    variant: VariantOpt = None,
    placement: PlacementOpt = None,
    num_classes: NumClassesOpt = None,
    opt: ModuleOpt = None,
    attention_class: AttentionClassOpt = None,
    columns: ColumnsOpt = None,
    fmt: FormatOpt = None,
    output: OutputPathOpt = None,
    force: ForceOpt = False,
) -> None:
    """Fold or remove the attention of chosen blocks, measure the price, and write the smaller checkpoint.

    Accuracy, agreement with the original and logit change on the same images, before and after;
    parameters, MACs, elementwise ops, bytes and kernels saved from count. OUT records what was
    pruned, so 'senet count OUT' and 'senet inspect OUT' rebuild the pruned model with no option.
    """
    if model is None:
        given = (("--ratio", ratio), ("--variant", variant), ("--placement", placement),
                 ("--num-classes", num_classes), ("--opt", opt or None))
        flags = [flag for flag, value in given if value is not None]
        if flags:
            raise SenetError(f"build options given without --model NAME ({', '.join(flags)}): they describe an "
                             f"architecture, which then comes from the checkpoint")
    options = build_options(variant, placement, None, num_classes, opt, ratio)
    chosen = [name.strip() for name in blocks.split(",")] if blocks is not None else None
    if chosen is not None and not all(chosen):
        raise SenetError(f"--blocks takes block names separated by commas (layer1.0,layer4.2), got '{blocks}'")
    stage_numbers = _stage_numbers(stages)
    if sum((chosen is not None, stage_numbers is not None, candidates)) != 1:
        raise SenetError("choose the blocks with exactly one of --blocks NAME,..., --stages N,... or --candidates")
    if out.suffix.lower() not in SUFFIXES:
        raise SenetError(f"OUT takes a path ending in {' '.join(SUFFIXES)}, got '{out.name}'")
    if checkpoint.exists() and out.exists() and out.resolve() == checkpoint.resolve():
        raise SenetError("OUT is the checkpoint being pruned; write the pruned one to another file")
    check_output_path(out, force, flag="OUT")
    if output is not None and output.resolve() == out.resolve():
        raise SenetError("--output and OUT name the same file")
    fmt = prepare_output(fmt, output, force)
    from senet_cli.render import prune_view
    from senet_cli.render.tables import check_columns

    check_columns(columns, prune_view.column_keys())
    if roofline is not None:
        from senet_cli.count.roofline import parse_device

        parse_device(roofline)  # checked before any work
    size = parse_input_size(input_size)

    from senet_cli.prune import prune

    with LazyProgress() as progress:
        report = prune(checkpoint, out, blocks=chosen, stages=stage_numbers, candidates=candidates, mode=mode.value,
                       sweep=sweep, data=data, limit=limit, batch=batch, input_size=size, device=device.value,
                       workers=workers, strict=strict, constant_tol=constant_tol, roofline=roofline, model=model,
                       trust=trust, ema=ema, force=force, on_batch=progress.task(f"evaluating {checkpoint.name}"),
                       attention_classes=attention_class or (), **options)
    if quiet_rank():
        return
    emit([report], fmt, output, csv_view=prune_view.csv_rows,
         tables=with_columns(lambda reports: [prune_view.prune_table(r) for r in reports], columns, fmt))


def _stage_numbers(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        numbers = [int(part) for part in text.split(",")]
    except ValueError:
        raise SenetError(f"--stages takes stage numbers separated by commas (4 or 3,4), got '{text}'") from None
    return numbers
