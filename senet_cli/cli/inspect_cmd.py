"""`senet inspect`: gate statistics of a checkpoint, loaded safely, over real or synthetic images."""

from __future__ import annotations

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
    StagesOpt,
    VariantOpt,
    build_options,
    note_ignored_ratio,
    parse_input_size,
)
from senet_cli.cli.output import (
    PLOT_HERE,
    LazyProgress,
    check_plot_path,
    default_plot_path,
    emit,
    prepare_output,
    quiet_rank,
)
from senet_cli.errors import SenetError

LOADING = "Loading"
DATA = "Images"


def inspect_command(
    checkpoint: Annotated[Path, typer.Argument(help="A .pth/.pt/.ckpt (torch) or .safetensors file.",
                                               show_default=False)],
    model: Annotated[Optional[str], typer.Option(
        "--model", "-m", show_default="from the checkpoint's metadata, else detected from its weights",
        help="The architecture, as in 'senet list', or torchvision:NAME, timm:NAME, file.py:callable; build "
        "options below apply to it.", rich_help_panel=LOADING)] = None,
    trust: Annotated[bool, typer.Option("--trust", rich_help_panel=LOADING,
                                        help="Allow arbitrary pickled objects. Unpickling can run code from the "
                                        "file: only for checkpoints from a source you trust.")] = False,
    ema: Annotated[bool, typer.Option("--ema", rich_help_panel=LOADING,
                                      help="Take the EMA weights (state_dict_ema / model_ema).")] = False,
    data: Annotated[str, typer.Option(metavar="samples|synthetic|DIR", rich_help_panel=DATA,
                                      help="Images: matplotlib's sample photograph (30 views), random noise, "
                                      "or an ImageFolder tree whose class folders give labels.")] = "samples",
    limit: Annotated[Optional[int], typer.Option(min=1, show_default="all; 64 for synthetic", rich_help_panel=DATA,
                                                 help="At most this many images (a seeded random subset of "
                                                 "DIR).")] = None,
    batch: Annotated[int, typer.Option(min=1, help="Images per forward pass.", rich_help_panel=DATA)] = 16,
    input_size: InputOpt = None,
    device: Annotated[Device, typer.Option(help="Where to run.", rich_help_panel=DATA)] = Device["cpu"],
    workers: Annotated[int, typer.Option(min=0, help="DataLoader workers for DIR.", rich_help_panel=DATA)] = 0,
    strict: Annotated[bool, typer.Option("--strict", rich_help_panel=DATA,
                                         help="Stop at an unreadable image of DIR instead of skipping it (skipped "
                                         "images are counted in the report).")] = False,
    bins: Annotated[int, typer.Option(min=1, help="Histogram bins over the gate's range.",
                                      rich_help_panel=OUTPUT)] = 50,
    constant_tol: Annotated[float, typer.Option(min=0.0, rich_help_panel=OUTPUT,
                                                help="Spread below which a block's gates count as constant "
                                                "(a candidate to drop).")] = 0.05,
    plot: Annotated[Optional[Path], typer.Option(
        metavar="[PATH]", show_default=False, rich_help_panel=OUTPUT,
        help="Write the figure (.png, .svg or .pdf). With no path: ckpt.gates.png here, for ckpt.pth.")] = None,
    ratio: RatioOpt = None,
    variant: VariantOpt = None,
    placement: PlacementOpt = None,
    stages: StagesOpt = None,
    num_classes: NumClassesOpt = None,
    opt: ModuleOpt = None,
    attention_class: AttentionClassOpt = None,
    columns: ColumnsOpt = None,
    fmt: FormatOpt = None,
    output: OutputPathOpt = None,
    force: ForceOpt = False,
) -> None:
    """Load a checkpoint safely and show what its attention gates do: per block mean, spread, histograms.

    The SENet paper's 'role of excitation' analysis for any checkpoint: which gates depend on the
    image or the class, which saturate, and which blocks could be dropped.
    """
    if model is None:  # said here in flag names, before the flags are parsed; inspect() refuses the same
        given = (("--ratio", ratio), ("--variant", variant), ("--placement", placement), ("--stages", stages),
                 ("--num-classes", num_classes), ("--opt", opt or None))
        flags = [flag for flag, value in given if value is not None]
        if flags:
            raise SenetError(f"build options given without --model NAME ({', '.join(flags)}): they describe an "
                             f"architecture, which then comes from the checkpoint")
    options = build_options(variant, placement, stages, num_classes, opt, ratio)
    if model is not None:
        note_ignored_ratio([model], ratio)
    size = parse_input_size(input_size)
    fmt = prepare_output(fmt, output, force)
    from senet_cli.render import inspect_view
    from senet_cli.render.tables import check_columns

    check_columns(columns, inspect_view.column_keys())
    if plot is not None:
        plot = default_plot_path(checkpoint) if str(plot) == PLOT_HERE else plot
        check_plot_path(plot, force)
        if output is not None and plot.resolve() == output.resolve():
            raise SenetError("--plot and --output name the same file")

    from senet_cli.inspect import inspect

    with LazyProgress() as progress:  # inspect() reports 0 done once everything is checked
        report = inspect(checkpoint, model=model, trust=trust, ema=ema, data=data, limit=limit, batch=batch,
                         input_size=size, device=device.value, bins=bins, workers=workers,
                         constant_tol=constant_tol, on_batch=progress.task(f"inspecting {checkpoint.name}"),
                         attention_classes=attention_class or (), strict=strict, **options)
    if quiet_rank():  # under torchrun every rank holds the merged report; rank 0 shows and writes it
        return
    if plot is not None:
        from senet_cli.render.gate_plots import plot_gates

        plot_gates(report, plot)  # renamed into place with --output's file when the command ends
    emit([report], fmt, output, csv_view=inspect_view.csv_rows,
         tables=with_columns(lambda reports: [inspect_view.gate_table(r) for r in reports], columns, fmt))
