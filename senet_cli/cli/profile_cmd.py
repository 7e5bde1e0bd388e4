"""`senet profile`: latency, throughput and peak memory against the plain backbone."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Optional

import typer

from senet_cli.cli.options import (
    ForceOpt, FormatOpt, InputOpt, ModelsArg, ModuleOpt, NumClassesOpt, OutputPathOpt,
    PlacementOpt, RatioOpt, StagesOpt, VariantOpt, build_options, parse_input_size,
)
from senet_cli.cli.output import emit, prepare_output, progress_bar
from senet_cli.options import parse_int_list

TIMING = "Timing"


class Device(str, Enum):
    cpu = "cpu"
    cuda = "cuda"


class Dtype(str, Enum):
    float32 = "float32"
    float16 = "float16"
    bfloat16 = "bfloat16"


class Mode(str, Enum):
    inference = "inference"
    train = "train"


def profile_command(
    models: ModelsArg,
    device: Annotated[Device, typer.Option(help="Where to run.", rich_help_panel=TIMING)] = Device.cpu,
    batch: Annotated[str, typer.Option(help="Batch size, or a comma list to sweep: 1,8,32.",
                                       rich_help_panel=TIMING)] = "1",
    input_size: InputOpt = None,
    warmup: Annotated[int, typer.Option(min=0, help="Untimed runs per model before timing.",
                                        rich_help_panel=TIMING)] = 10,
    iters: Annotated[Optional[int], typer.Option(min=1, show_default="30", rich_help_panel=TIMING,
                                                 help="Timed runs per model.")] = None,
    min_time: Annotated[Optional[float], typer.Option(min=0.001, show_default=False, rich_help_panel=TIMING,
                                                      help="Instead of --iters: time each model for at least this many seconds.")] = None,
    dtype: Annotated[Dtype, typer.Option(help="Weights and input dtype.", rich_help_panel=TIMING)] = Dtype.float32,
    amp: Annotated[bool, typer.Option("--amp", help="float32 model under autocast (float16 on CUDA, bfloat16 on CPU).",
                                      rich_help_panel=TIMING)] = False,
    channels_last: Annotated[bool, typer.Option("--channels-last", help="NHWC memory format.",
                                                rich_help_panel=TIMING)] = False,
    compile: Annotated[bool, typer.Option("--compile", help="torch.compile both models (3 extra warm-up runs).",
                                          rich_help_panel=TIMING)] = False,
    mode: Annotated[Mode, typer.Option(help="inference, or train: forward, loss, backward, SGD step.",
                                       rich_help_panel=TIMING)] = Mode.inference,
    threads: Annotated[Optional[int], typer.Option(min=1, show_default="torch's default",
                                                   help="CPU threads (torch.set_num_threads).",
                                                   rich_help_panel=TIMING)] = None,
    per_block: Annotated[bool, typer.Option("--per-block", help="Attribute latency to each stage's attention by ablation.",
                                            rich_help_panel=TIMING)] = False,
    ratio: RatioOpt = None,
    variant: VariantOpt = None,
    placement: PlacementOpt = None,
    stages: StagesOpt = None,
    num_classes: NumClassesOpt = None,
    opt: ModuleOpt = None,
    fmt: FormatOpt = None,
    output: OutputPathOpt = None,
    force: ForceOpt = False,
) -> None:
    """Time models against their plain backbones: median latency, throughput and peak memory.

    The model and its backbone run interleaved in one process after a warm-up; medians are over the
    timed runs. See README 'How profiling measures'.
    """
    from senet_cli.zoo import make_config

    options = build_options(variant, placement, stages, num_classes, opt, ratio)
    batches = parse_int_list(batch, "--batch")
    size = parse_input_size(input_size)
    configs = [make_config(name, **options) for name in models]  # checked before torch loads
    fmt = prepare_output(fmt, output, force)

    from senet_cli.analysis.latency import check_timing, profile, resolve_device
    from senet_cli.render import profile_view

    resolve_device(device.value)
    check_timing(batches=batches, warmup=warmup, iters=iters, min_time=min_time, dtype=dtype.value, amp=amp,
                 mode=mode.value, threads=threads)  # before the progress bar opens
    reports = []
    with progress_bar() as progress:
        rounds = None if min_time is not None else (iters or 30) * len(batches)
        for config in configs:
            task = progress.add_task(f"timing {config.name}", total=rounds)
            reports.append(profile(
                config.name, device=device.value, batches=batches, input_size=size, warmup=warmup,
                iters=iters, min_time=min_time, dtype=dtype.value, amp=amp, channels_last=channels_last,
                compile=compile, mode=mode.value, per_stage=per_block, threads=threads,
                on_round=lambda done, total, t=task: progress.advance(t),
                **options,
            ))
            progress.remove_task(task)
    emit(
        reports, fmt, output,
        json_view=profile_view.to_json, csv_view=profile_view.csv_rows,
        tables=lambda rs: [profile_view.profile_table(r) for r in rs],
    )
