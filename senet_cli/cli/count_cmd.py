"""`senet count`: parameters, MACs and elementwise ops per block, against the plain backbone."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Optional

import typer

from senet_cli.cli.options import (
    BatchOpt, ForceOpt, FormatOpt, InputOpt, ModelsArg, ModuleOpt, NumClassesOpt, OutputPathOpt,
    Placement, PlacementOpt, StagesOpt, Variant, VariantOpt, build_options, parse_input_size,
)
from senet_cli.options import parse_int_list
from senet_cli.render.output import OutputFormat, check_output_path, choose_format, write_atomic


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
        str, typer.Option(help="Reduction ratio r; a comma list sweeps it (2,4,8,16,32 = SENet Table 10).",
                          rich_help_panel="Build options"),
    ] = "16",
    variant: VariantOpt = Variant.v1_5,
    placement: PlacementOpt = Placement.standard,
    stages: StagesOpt = "1,2,3,4",
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
    ratios = parse_int_list(ratio, "--ratio")
    size = parse_input_size(input_size)
    jobs = _jobs(models, ratios, options, make_config)  # names and options checked before torch loads
    fmt = choose_format(fmt, output)
    if output is not None:
        check_output_path(output, force)

    from senet_cli.analysis.report import count

    reports = _run(jobs, lambda name, opts: count(name, input_size=size, batch=batch,
                                                   references=_REFERENCES[counter], **opts))
    text = _render(reports, fmt, per_block if per_block is not None else len(reports) == 1, output)
    if output is not None:
        write_atomic(output, text)
        typer.echo(f"wrote {output}", err=True)
    elif text:
        typer.echo(text, nl=False)


def _jobs(models, ratios, options, make_config) -> list[tuple[str, dict]]:
    """(model, options) for every model and ratio; a model whose attention has no ratio runs once."""
    from senet_cli.attention import ATTENTION

    jobs: list[tuple[str, dict]] = []
    for name in models:
        config = make_config(name, ratio=ratios[0], **dict(options))
        sweep = ratios if config.attention and ATTENTION.get(config.attention).uses_ratio else ratios[:1]
        for r in sweep:
            make_config(name, ratio=r, **dict(options))
            job = (name, {**options, "ratio": r} if config.attention else {"variant": options["variant"],
                                                                           "num_classes": options["num_classes"]})
            if job not in jobs:
                jobs.append(job)
    return jobs


def _run(jobs, work):
    """Run the jobs, with a transient progress bar on a terminal when there is more than one."""
    if len(jobs) == 1:
        return [work(*jobs[0])]
    from rich.progress import Progress

    results = []
    with Progress(transient=True, console=_stderr_console()) as progress:
        task = progress.add_task("counting", total=len(jobs))
        for name, opts in jobs:
            progress.update(task, description=f"counting {name}")
            results.append(work(name, opts))
            progress.advance(task)
    return results


def _stderr_console():
    from senet_cli.render.tables import console

    return console(stderr=True)


def _render(reports, fmt: OutputFormat, per_block: bool, output) -> str:
    from senet_cli.render import count_view
    from senet_cli.render.tables import render_text, to_csv, to_markdown, to_rich

    if fmt is OutputFormat.json:
        return count_view.to_json(reports)
    if fmt is OutputFormat.csv:
        rows = count_view.per_block_csv_rows(reports) if per_block else count_view.summary_csv_rows(reports)
        return to_csv(*rows)
    tables = [count_view.per_block_table(r) for r in reports] if per_block else [count_view.summary_table(reports)]
    if fmt is OutputFormat.md:
        return "\n".join(to_markdown(t) for t in tables)
    renderables = []
    for table in tables:
        renderables.append(to_rich(table))
        renderables += [f"[dim]{note}[/dim]" for note in table.notes]
    if output is not None:
        return render_text(renderables)
    from senet_cli.render.tables import console

    out = console()
    for item in renderables:
        out.print(item)
    return ""
