"""`senet count`: parameters, MACs and elementwise ops per block, against the plain backbone."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Optional

import typer

from senet_cli.cli.options import (
    BUILD, BatchOpt, ForceOpt, FormatOpt, InputOpt, ModelsArg, ModuleOpt, NumClassesOpt, OutputPathOpt,
    PlacementOpt, StagesOpt, VariantOpt, build_options, parse_input_size,
)
from senet_cli.cli.output import emit, prepare_output, progress_bar
from senet_cli.options import parse_int_list


class Counter(str, Enum):
    native = "native"
    fvcore = "fvcore"
    thop = "thop"
    all = "all"


_REFERENCES = {Counter.native: (), Counter.fvcore: ("fvcore",), Counter.thop: ("thop",),
               Counter.all: ("fvcore", "thop")}


def count_command(
    models: ModelsArg,
    ratio: Annotated[
        Optional[str], typer.Option(help="Reduction ratio r; a comma list sweeps it (2,4,8,16,32 = SENet Table 10).",
                                    show_default="per module: 16 for se", rich_help_panel=BUILD),
    ] = None,
    variant: VariantOpt = None,
    placement: PlacementOpt = None,
    stages: StagesOpt = None,
    num_classes: NumClassesOpt = None,
    opt: ModuleOpt = None,
    input_size: InputOpt = None,
    batch: BatchOpt = 1,
    per_block: Annotated[
        Optional[bool],
        typer.Option("--per-block/--summary", show_default="per-block for one model, else summary",
                     help="One row per residual block, or one row per model."),
    ] = None,
    counter: Annotated[
        Counter, typer.Option(help="Also run fvcore and/or thop on a real copy of the model, for comparison."),
    ] = Counter.native,
    fmt: FormatOpt = None,
    output: OutputPathOpt = None,
    force: ForceOpt = False,
) -> None:
    """Count parameters, MACs (multiply-accumulates) and elementwise ops, block by block.

    Runs the model on the meta device (no weights, no arithmetic), charging every op to the module
    that ran it. Overheads are against the same backbone without attention.
    """
    from senet_cli.zoo import make_config

    options = build_options(variant, placement, stages, num_classes, opt)
    ratios: list[int | None] = list(parse_int_list(ratio, "--ratio")) if ratio is not None else [None]
    size = parse_input_size(input_size)
    jobs = _jobs(models, ratios, options, make_config)  # names and options checked before torch loads
    fmt = prepare_output(fmt, output, force)

    from senet_cli.analysis.report import count
    from senet_cli.render import count_view

    reports = _run(jobs, lambda name, opts: count(name, input_size=size, batch=batch,
                                                   references=_REFERENCES[counter], **opts))
    blocks = per_block if per_block is not None else len(reports) == 1
    emit(
        reports, fmt, output,
        json_view=count_view.to_json,
        csv_view=count_view.per_block_csv_rows if blocks else count_view.summary_csv_rows,
        tables=(lambda rs: [count_view.per_block_table(r) for r in rs]) if blocks
        else (lambda rs: [count_view.summary_table(rs)]),
    )


def _jobs(models, ratios, options, make_config) -> list[tuple[str, dict]]:
    """(model, options) for every model and ratio; a model whose attention has no ratio runs once."""
    from senet_cli.attention import ATTENTION

    jobs: list[tuple[str, dict]] = []
    for name in models:
        config = make_config(name, **_with_ratio(options, ratios[0]))
        sweep = ratios if config.attention and ATTENTION.get(config.attention).uses_ratio else ratios[:1]
        for r in sweep:
            make_config(name, **_with_ratio(options, r))
            plain = {key: options[key] for key in ("variant", "num_classes") if key in options}
            job = (name, _with_ratio(options, r) if config.attention else plain)
            if job not in jobs:
                jobs.append(job)
    return jobs


def _with_ratio(options: dict, ratio: int | None) -> dict:
    return options if ratio is None else {**options, "ratio": ratio}


def _run(jobs, work):
    """Run the jobs, with a transient progress bar on a terminal when there is more than one."""
    if len(jobs) == 1:
        return [work(*jobs[0])]
    results = []
    with progress_bar() as progress:
        task = progress.add_task("counting", total=len(jobs))
        for name, opts in jobs:
            progress.update(task, description=f"counting {name}")
            results.append(work(name, opts))
            progress.advance(task)
    return results
