"""`senet profile`: latency, throughput and peak memory against the plain backbone."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from senet_cli.cli.columns import ColumnsOpt, with_columns
from senet_cli.cli.flags import (
    AttentionClassOpt,
    Device,
    ForceOpt,
    FormatOpt,
    InputOpt,
    ModelsArg,
    ModuleOpt,
    NumClassesOpt,
    OutputPathOpt,
    PlacementOpt,
    RatioOpt,
    StagesOpt,
    VariantOpt,
    build_options,
    choices,
    note_ignored_ratio,
    parse_input_size,
)
from senet_cli.cli.output import PLOT_HERE, LazyProgress, check_plot_path, default_plot_path, emit, prepare_output
from senet_cli.count.roofline import PRESETS
from senet_cli.errors import SenetError
from senet_cli.options import parse_int_list
from senet_cli.profile.timing import MODES, Timing
from senet_cli.vocabulary import DTYPES

TIMING = "Timing"
if TYPE_CHECKING:
    from senet_cli.cli.flags import Choice

    class Dtype(Choice):
        """vocabulary.DTYPES"""

    class Mode(Choice):
        """timing.MODES"""
else:
    Dtype = choices("Dtype", DTYPES)
    Mode = choices("Mode", MODES)


def profile_command(
    models: ModelsArg,
    device: Annotated[Device, typer.Option(help="Where to run.", rich_help_panel=TIMING)] = Device["cpu"],
    batch: Annotated[str, typer.Option(metavar="N[,N...]", help="Batch size, or a comma list to sweep: 1,8,32.",
                                       rich_help_panel=TIMING)] = "1",
    input_size: InputOpt = None,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed runs per model before timing.",
                                        rich_help_panel=TIMING)] = 10,
    iters: Annotated[Optional[int], typer.Option(min=1, show_default="30", rich_help_panel=TIMING,
                                                 help="Timed runs per model.")] = None,
    min_time: Annotated[Optional[float], typer.Option(min=0.001, show_default=False, rich_help_panel=TIMING,
                                                      help="Instead of --iters: time each model for at least "
                                                      "this many seconds.")] = None,
    dtype: Annotated[Dtype, typer.Option(help="Weights and input dtype.", rich_help_panel=TIMING)] = Dtype["float32"],
    amp: Annotated[bool, typer.Option("--amp", help="float32 model under autocast (float16 on CUDA, bfloat16 on CPU).",
                                      rich_help_panel=TIMING)] = False,
    channels_last: Annotated[bool, typer.Option("--channels-last", help="NHWC memory format.",
                                                rich_help_panel=TIMING)] = False,
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile both models (3 extra warm-up runs).",
                                          rich_help_panel=TIMING)] = False,
    flush_denormal: Annotated[bool, typer.Option(
        "--flush-denormal", rich_help_panel=TIMING,
        help="CPU: treat denormal floats as zero while timing (torch.set_flush_denormal). Random weights can "
        "make a softmax or sigmoid underflow into denormals, which a CPU computes several times slower; "
        "profile notes it when it finds them.")] = False,
    mode: Annotated[Mode, typer.Option(help="inference, or train: forward, loss, backward, SGD step.",
                                       rich_help_panel=TIMING)] = Mode["inference"],
    threads: Annotated[Optional[int], typer.Option(min=1, show_default="torch's default",
                                                   help="CPU threads (torch.set_num_threads), at most 4 per CPU core.",
                                                   rich_help_panel=TIMING)] = None,
    per_block: Annotated[bool, typer.Option("--per-block",
                                            help="Attribute latency to each stage's attention by ablation.",
                                            rich_help_panel=TIMING)] = False,
    roofline: Annotated[str, typer.Option(
        metavar="auto|none|DEVICE|PEAK_TFLOPS,BANDWIDTH_GBS|DEVICE.json", rich_help_panel=TIMING,
        help=f"Put each median next to count's roofline bound on a device ({', '.join(PRESETS)}, or peak TFLOPS "
        "and GB/s); a `senet calibrate` file also gives the predicted time; auto: the GPU's own preset when its "
        "name is known; none: no bound.")] = "auto",
    plot: Annotated[Optional[Path], typer.Option(metavar="[PATH]", show_default=False,
                                                 help="Write a figure of latency, throughput and memory per batch "
                                                 "(.png, .svg or .pdf). With no path: MODEL.profile.png here.")] = None,
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
    """Time models against their plain backbones: median latency, throughput and peak memory.

    The model and its backbone run interleaved in one process after a warm-up; medians are over the
    timed runs. See README 'How profiling measures'.
    """
    from senet_cli.prune.source import subject_of

    options = build_options(variant, placement, stages, num_classes, opt, ratio)
    batches = parse_int_list(batch, "--batch")
    size = parse_input_size(input_size)
    # checked before timing; a checkpoint file is profiled as the architecture it holds (a pruned one too)
    configs = [subject_of(name, dict(options), attention_class or []) for name in models]
    note_ignored_ratio(models, ratio)
    timing = Timing(device=device.value, dtype=dtype.value, amp=amp, channels_last=channels_last, compile=compile,
                    mode=mode.value, warmup=warmup, iters=iters, min_time=min_time, threads=threads,
                    flush_denormal=flush_denormal)
    fmt = prepare_output(fmt, output, force)
    from senet_cli.render import profile_view
    from senet_cli.render.tables import check_columns

    check_columns(columns, profile_view.column_keys())
    if plot is not None:
        plot = default_plot_path(models[0], "profile") if str(plot) == PLOT_HERE else plot
        check_plot_path(plot, force)
        if output is not None and plot.resolve() == output.resolve():
            raise SenetError("--plot and --output name the same file")
    keyword = roofline.strip().lower()
    device_bound = None if keyword == "none" else "auto" if keyword == "auto" else roofline
    if device_bound is not None and device_bound != "auto":
        from senet_cli.count.roofline import parse_device

        parse_device(device_bound)  # checked before any timing

    from senet_cli.profile import profile

    reports = []
    with LazyProgress() as progress:
        for config in configs:
            reports.append(profile(config, batches=batches, input_size=size, per_stage=per_block, timing=timing,
                                   on_round=progress.task(f"timing {config.name}"), roofline=device_bound))
    if plot is not None:
        from senet_cli.render.cost_plots import plot_profiles

        plot_profiles(reports, plot)
    emit(
        reports, fmt, output,
        csv_view=profile_view.csv_rows,
        tables=with_columns(lambda rs: [profile_view.profile_table(r) for r in rs], columns, fmt),
    )
