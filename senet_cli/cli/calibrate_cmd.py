"""`senet calibrate`: measure this machine for the latency model (`--roofline DEVICE.json`)."""

from __future__ import annotations

import sys
from typing import Annotated, Optional

import typer

from senet_cli.cli.columns import ColumnsOpt, with_columns
from senet_cli.cli.flags import Device, ForceOpt, FormatOpt, OutputPathOpt
from senet_cli.cli.output import LazyProgress, OutputFormat, emit, prepare_output
from senet_cli.cli.profile_cmd import Dtype


def calibrate_command(
    device: Annotated[Device, typer.Option(help="Where to measure.")] = Device["cpu"],
    threads: Annotated[Optional[int], typer.Option(min=1, show_default="torch's default",
                                                   help="CPU threads (torch.set_num_threads); use the thread count "
                                                   "profile will run with.")] = None,
    dtype: Annotated[Dtype, typer.Option(help="The dtype predictions will be made in.")] = Dtype["float32"],
    min_run_time: Annotated[float, typer.Option(min=0.001, max=5.0,
                                                help="Seconds of calls per measurement.")] = 0.01,
    rounds: Annotated[int, typer.Option(min=1, max=99, help="Most interleaved rounds; each point's median over "
                                        "them is kept.")] = 21,
    budget: Annotated[float, typer.Option(min=1.0, max=3600.0, help="Seconds to finish in: rounds stop early "
                                          "when the next would pass it (at least 3, or --rounds if fewer).")] = 50.0,
    fmt: FormatOpt = None,
    columns: ColumnsOpt = None,
    output: OutputPathOpt = None,
    force: ForceOpt = False,
) -> None:
    """Measure this machine: the fixed cost of one op (looped, and when its kind has not run lately),
    memory bandwidth by size (warm, and writing into or reading from memory not touched lately), its
    cores' cache size, activations' rates and conv/matmul throughput on the zoo's shapes, in under a
    minute.

    Write the result with --output DEVICE.json and give it to count and profile as --roofline DEVICE.json:
    they then predict the time per block (predicted_ms) beside the roofline bound. See README 'Why
    attention costs time'.
    """
    fmt = prepare_output(fmt, output, force)
    from senet_cli.count.latency import threads_text
    from senet_cli.profile.calibrate import calibrate
    from senet_cli.profile.pages import keep_freed_memory

    keep_freed_memory()  # measure in a process whose allocator keeps what it frees: the one the model predicts
    from senet_cli.render import calibrate_view
    from senet_cli.render.tables import check_columns

    check_columns(columns, calibrate_view.column_keys())

    with LazyProgress() as progress:
        calibration = calibrate(device.value, threads=threads, dtype=dtype.value, min_run_time=min_run_time,
                                rounds=rounds, budget_s=budget, on_step=progress.task("calibrating"))
    if calibration.busy:
        sys.stderr.write(f"senet: caution: the machine was busy (load average {calibration.load_before:.1f} before "
                         f"and {calibration.load_after:.1f} after, on {calibration.cpu_count} CPUs, with "
                         f"{threads_text(calibration.threads)} calibrating): these rates measure that load; "
                         "calibrate again on a quiet machine\n")
    if output is None and fmt is not OutputFormat.json:
        sys.stderr.write("senet: note: nothing was written; add --output DEVICE.json to keep this calibration\n")
    emit([calibration], fmt, output, csv_view=calibrate_view.csv_rows,
         tables=with_columns(lambda cs: [calibrate_view.calibration_table(c) for c in cs], columns, fmt))
    if output is not None:  # the table went to the file: say what was found here
        sys.stderr.write(f"senet: {calibration.name} ({calibration.setting}, {calibration.dtype}): "
                         f"{calibrate_view.summary(calibration)}\n")
