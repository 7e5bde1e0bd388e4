"""`senet count`: parameters, MACs and elementwise ops per block, against the plain backbone."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from senet_cli.cli.columns import ColumnsOpt, with_columns
from senet_cli.cli.flags import (
    BUILD,
    AttentionClassOpt,
    BatchOpt,
    ForceOpt,
    FormatOpt,
    InputOpt,
    ModelsArg,
    ModuleOpt,
    NumClassesOpt,
    OutputPathOpt,
    PlacementOpt,
    StagesOpt,
    VariantOpt,
    build_options,
    choices,
    note_ignored_ratio,
    parse_input_size,
)
from senet_cli.cli.output import PLOT_HERE, LazyProgress, check_plot_path, default_plot_path, emit, prepare_output
from senet_cli.cli.profile_cmd import Dtype
from senet_cli.count.references import COUNTERS
from senet_cli.count.roofline import PRESETS
from senet_cli.errors import SenetError
from senet_cli.options import parse_int_list

if TYPE_CHECKING:
    from senet_cli.cli.flags import Choice

    class Counter(Choice):
        """native, references.COUNTERS or all"""
else:
    Counter = choices("Counter", ("native", *COUNTERS, "all"))
EXPLAIN_HINT = ". --explain says more"
_REFERENCES = {"native": (), **{name: (name,) for name in COUNTERS}, "all": COUNTERS}


def count_command(
    models: ModelsArg,
    ratio: Annotated[
        Optional[str], typer.Option(metavar="R[,R...]",
                                    help="Reduction ratio r; a comma list sweeps it (2,4,8,16,32 = SENet Table 10).",
                                    show_default="per module: 16 for se", rich_help_panel=BUILD),
    ] = None,
    variant: VariantOpt = None,
    placement: PlacementOpt = None,
    stages: StagesOpt = None,
    num_classes: NumClassesOpt = None,
    opt: ModuleOpt = None,
    attention_class: AttentionClassOpt = None,
    input_size: InputOpt = None,
    batch: BatchOpt = 1,
    per_block: Annotated[
        Optional[bool],
        typer.Option("--per-block/--summary", show_default="per-block for one model, else summary",
                     help="One row per residual block, or one row per model."),
    ] = None,
    counter: Annotated[
        Counter, typer.Option(help="Also run fvcore and/or thop on a real copy of the model, for comparison."),
    ] = Counter["native"],
    dtype: Annotated[Dtype, typer.Option(help="Weights and input dtype that bytes are counted in.")] = Dtype["float32"],
    amp: Annotated[bool, typer.Option("--amp", help="Bytes of a float32 model under float16 autocast (simulated: "
                                      "conv/linear/matmul in float16).")] = False,
    roofline: Annotated[Optional[str], typer.Option(
        metavar="DEVICE|PEAK_TFLOPS,BANDWIDTH_GBS|DEVICE.json", show_default=False,
        help=f"Bound the time op by op on a device: {', '.join(PRESETS)}, or its peak TFLOPS and "
        "memory GB/s (989,3350); a `senet calibrate` file also predicts the time (predicted_ms).")] = None,
    plot: Annotated[Optional[Path], typer.Option(metavar="[PATH]", show_default=False,
                                                 help="Write a figure of the per-block overhead (.png, .svg or .pdf). "
                                                 "With no path: MODEL.count.png here.")] = None,
    columns: ColumnsOpt = None,
    explain: Annotated[bool, typer.Option("--explain", rich_help_panel="Output",
                                          help="Under the table, the counting conventions in full (what a MAC, an "
                                          "elementwise op and a moved byte are) instead of one line.")] = False,
    fmt: FormatOpt = None,
    output: OutputPathOpt = None,
    force: ForceOpt = False,
) -> None:
    """Count parameters, MACs (multiply-accumulates), elementwise ops and bytes moved, block by block.

    Runs the model on the meta device (no weights, no arithmetic), charging every op to the module
    that ran it. Overheads are against the same backbone without attention.
    """
    options = build_options(variant, placement, stages, num_classes, opt)
    ratios: list[int | None] = list(parse_int_list(ratio, "--ratio")) if ratio is not None else [None]
    size = parse_input_size(input_size)
    # names and options checked once, before torch loads (models outside the zoo import theirs)
    from senet_cli.subject import configurations

    configs = configurations(models, ratios, options, attention_class or [])
    note_ignored_ratio(models, ratio)
    fmt = prepare_output(fmt, output, force)
    from senet_cli.render import count_view
    from senet_cli.render.tables import check_columns

    check_columns(columns, count_view.column_keys())
    if plot is not None:
        plot = default_plot_path(models[0], "count") if str(plot) == PLOT_HERE else plot
        check_plot_path(plot, force)
        if output is not None and plot.resolve() == output.resolve():
            raise SenetError("--plot and --output name the same file")

    from senet_cli.count import count
    from senet_cli.count.roofline import parse_device

    device = parse_device(roofline) if roofline is not None else None  # checked before any counting
    reports = _run(configs, lambda config: count(config, input_size=size, batch=batch,
                                                 references=_REFERENCES[counter.value], dtype=dtype.value,
                                                 amp=amp, roofline=device))
    if plot is not None:
        from senet_cli.render.cost_plots import plot_counts

        plot_counts(reports, plot)
    blocks = per_block if per_block is not None else len(reports) == 1
    emit(
        reports, fmt, output,
        csv_view=count_view.per_block_csv_rows if blocks else count_view.summary_csv_rows,
        tables=with_columns((lambda rs: [count_view.per_block_table(r, explain, EXPLAIN_HINT) for r in rs]) if blocks
                            else (lambda rs: [count_view.summary_table(rs, explain, EXPLAIN_HINT)]), columns, fmt),
    )


def _run(configs: list[Any], work: Callable[[Any], Any]) -> list[Any]:
    """Count each configuration, with a transient progress bar on a terminal when there are several."""
    if len(configs) == 1:
        return [work(configs[0])]
    results = []
    with LazyProgress() as progress:
        report = progress.task("counting", total=len(configs))
        for done, config in enumerate(configs):
            report(done, len(configs))
            results.append(work(config))
    return results
