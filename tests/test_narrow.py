"""What a new user sees at 80 columns (issue 24): every table keeps its numbers and names whole,
the default columns fit, `--columns` picks the rest, `senet list` reads, help shows no type a flag
never takes, and the figures keep their legends off the data."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import senet_cli
from senet_cli import build_model
from senet_cli.checkpoint import save_checkpoint
from senet_cli.count.roofline import PRESETS
from senet_cli.profile.results import BatchResult, LatencyStats, Measurement, ProfileReport
from senet_cli.profile.timing import Timing
from senet_cli.render import count_view, profile_view
from senet_cli.render.tables import TableData, needed_width, render_text, select_columns, to_rich
from senet_cli.zoo import make_config

NARROW = 80


def _rendered(table: TableData, width: int = NARROW) -> str:
    return render_text([to_rich(table)], width=width)


def assert_whole(table: TableData, text: str) -> None:
    """Every cell that must never wrap (numbers, names) stands whole on one line of `text`."""
    lines = text.splitlines()
    for row in table.rows + ((table.footer,) if table.footer else ()):
        for index, cell in enumerate(row):
            wraps = index < table.left_columns and table.wrapped_from is not None and index >= table.wrapped_from
            if cell and not wraps:
                assert any(cell in line for line in lines), f"{cell!r} is broken in\n{text}"


def _measurement(name: str, median: float, memory: float = 512.0) -> Measurement:
    return Measurement(name, LatencyStats(median, median * 0.9, median * 1.2, median * 0.8, median), 1000 / median,
                       memory, 5)


def _profile_report(batches: tuple[int, ...] = (1, 4, 16), device: str = "cpu") -> ProfileReport:
    results = tuple(BatchResult(b, _measurement("se_resnet50", 12.3456 * b), _measurement("resnet50", 10.5 * b),
                                17.6, roofline_ms=0.1 * b, baseline_roofline_ms=0.09 * b) for b in batches)
    return ProfileReport(make_config("se_resnet50"), Timing(device=device), (224, 224), 2, "rss", results,
                         roofline=PRESETS["h100"])


@pytest.fixture(scope="module")
def counts() -> dict[str, senet_cli.CountReport]:
    return {name: senet_cli.count(name) for name in ("se_resnet50", "cbam_mobilenet_v2", "se_resnet18_cifar",
                                                     "resnet18_cifar", "eca_resnet18_cifar")}


@pytest.mark.parametrize("name", ["se_resnet50", "cbam_mobilenet_v2", "se_resnet18_cifar"])
def test_per_block_counts_fit_80_columns_with_every_number_whole(counts, name):
    table = select_columns(count_view.per_block_table(counts[name]), None)
    text = _rendered(table)
    assert needed_width(table) <= NARROW and max(map(len, text.splitlines())) <= NARROW
    assert_whole(table, text)
    assert "28,088,024" in text or name != "se_resnet50"  # the total torchvision-derived count, whole


def test_every_column_stays_whole_even_when_the_table_is_wider_than_the_terminal(counts):
    table = select_columns(count_view.per_block_table(counts["se_resnet50"]), "all")
    assert needed_width(table) > NARROW and set(table.keys) >= {"stage", "attention_macs"}
    text = _rendered(table)
    assert_whole(table, text)
    assert f"needs {needed_width(table)} columns" in text


def test_summary_fits_80_columns_and_keeps_model_names_whole(counts):
    reports = [counts[name] for name in ("se_resnet18_cifar", "resnet18_cifar", "eca_resnet18_cifar")]
    table = select_columns(count_view.summary_table(reports), None)
    text = _rendered(table)
    assert needed_width(table) <= NARROW and max(map(len, text.splitlines())) <= NARROW
    assert_whole(table, text)


def test_profile_table_fits_and_hides_the_bound_until_asked():
    report = _profile_report()
    table = select_columns(profile_view.profile_table(report), None)
    text = _rendered(table)
    assert needed_width(table) <= NARROW and "roofline_ms" not in table.keys
    assert_whole(table, text)
    wide = select_columns(profile_view.profile_table(report), "roofline_ms,baseline_throughput")
    assert wide.keys == ("batch", "baseline_throughput", "roofline_ms")


def test_headers_do_not_wrap_at_120_columns(counts):
    """Each header is written as its own lines (name, unit) and no header line is ever folded."""
    for table in (count_view.per_block_table(counts["se_resnet50"]), count_view.summary_table(list(counts.values())),
                  profile_view.profile_table(_profile_report())):
        table = select_columns(table, "all")
        text = _rendered(table, width=120)
        head = text.splitlines()[1:1 + max(header.count("\n") + 1 for header in table.headers)]
        for header in table.headers:
            for part in header.split("\n"):
                assert any(part in line for line in head), f"{part!r} of {header!r} is folded:\n{text}"


def test_columns_flag_picks_by_csv_name_and_refuses_a_typo_before_any_work(cli, monkeypatch):
    code, out, _ = cli(["count", "se_resnet18_cifar", "--columns", "params,attention_macs"])
    header = out.splitlines()[1] + out.splitlines()[2]
    assert code == 0 and "attn MACs" in header and "moved" not in header
    code, out, _ = cli(["count", "se_resnet18_cifar", "--columns", "default,kernels"])  # the default set and more
    header = out.splitlines()[1] + out.splitlines()[2]
    assert code == 0 and "kernels" in header and "moved" in header and "attn MACs" not in header
    import sys

    monkeypatch.setattr(sys.modules["senet_cli.count"], "count",
                        lambda *a, **k: pytest.fail("counted before checking --columns"))
    code, _, err = cli(["count", "se_resnet18_cifar", "--columns", "atention_macs"])
    assert code == 2 and "did you mean 'attention_macs'" in err and len(err.strip().splitlines()) == 1


def test_count_conventions_are_one_line_and_explain_gives_them_in_full(cli):
    _, short, _ = cli(["count", "se_resnet18_cifar"])
    _, full, _ = cli(["count", "se_resnet18_cifar", "--explain"])
    short, full = " ".join(short.split()), " ".join(full.split())
    assert "--explain says more" in short and "buffers excluded" not in short
    assert "buffers excluded" in full and "fused kernels" in full
    _, data, _ = cli(["count", "se_resnet18_cifar", "--format", "json"])
    assert '"convention"' in data and '"bytes_convention"' in data  # the JSON contract keeps both keys


def test_list_shows_every_model_name_and_no_escaped_line_breaks(cli):
    code, out, _ = cli(["list"])
    from senet_cli.zoo import list_models

    names = set(out.split())
    assert code == 0 and "\\n" not in out and set(list_models()) <= names
    titles = [index for index, line in enumerate(out.splitlines()) if line.startswith(("Backbones", "Options",
                                                                                        "Models"))]
    assert len(titles) == 3 and all(out.splitlines()[index - 1].strip() == "" for index in titles)
    code, out, _ = cli(["list", "--format", "md"])
    assert code == 0 and "\\n" not in out and "<br>https://arxiv.org/abs/1709.01507" in out


@pytest.mark.parametrize("command", ["count", "profile", "inspect", "list", "convert"])
def test_help_shows_no_bool_or_list_type(command, capsys):
    from senet_cli.cli.app import main

    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    assert "--force" in out or command == "list"
    assert "<bool>" not in out and "list[str]" not in out


def test_plot_before_the_checkpoint_is_not_taken_for_the_figure(tmp_path, monkeypatch, cli):
    torch.manual_seed(0)
    checkpoint = save_checkpoint(build_model("se_resnet18_cifar"), tmp_path / "ckpt.pth")
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(["inspect", "--plot", str(checkpoint), "--data", "synthetic", "--limit", "4"])
    assert code == 0 and "wrote ckpt.gates.png" in err


def test_a_missing_checkpoint_says_how_to_make_one(tmp_path, cli):
    _, _, err = cli(["inspect", str(tmp_path / "nothing.pth")])
    assert "does not exist" in err and "save_checkpoint" in err and "inspect_digits.py" in err
    code, _, err = cli(["inspect"])
    assert code == 2 and "needs a checkpoint" in err and "save_checkpoint" in err


def test_inspect_explains_only_the_columns_it_shows(tmp_path, monkeypatch, cli):
    torch.manual_seed(0)
    checkpoint = save_checkpoint(build_model("se_resnet18_cifar"), tmp_path / "ckpt.pth")
    code, out, _ = cli(["inspect", str(checkpoint), "--data", "synthetic", "--limit", "4"])
    assert code == 0 and "spread classes" not in out and "spread images:" in out
    assert max(map(len, out.splitlines())) <= 100  # piped: PIPED_WIDTH
    monkeypatch.setenv("COLUMNS", str(NARROW))
    code, out, _ = cli(["inspect", str(checkpoint), "--data", "synthetic", "--limit", "4"])
    assert code == 0 and max(map(len, out.splitlines())) <= NARROW and "needs" not in out
    code, out, _ = cli(["inspect", str(checkpoint), "--data", "synthetic", "--limit", "4", "--format", "md"])
    assert code == 0 and "| layer4.1 | se.gate (channel) | 4 | 512 |" in out  # Markdown: every column


def test_an_outside_models_profile_names_its_baseline_once():
    report = _profile_report()
    outside = ProfileReport(report.config, report.timing, report.input, report.threads, report.memory,
                            report.results, roofline=report.roofline, notes=("attention found by class: 8 SEModule",
                                                   "baseline: timm:seresnet18 with each of them replaced"))
    table = profile_view.profile_table(outside)
    lines = [table.caption or "", *table.notes]
    assert sum(line.startswith("baseline:") for line in lines) == 1


def _captured(monkeypatch) -> list:
    import senet_cli.render.cost_plots as cost_plots

    figures: list = []
    monkeypatch.setattr(cost_plots, "_save", lambda figure, path: figures.append(figure) or path)
    return figures


def test_count_plot_legend_is_below_the_panels(monkeypatch, counts):
    from senet_cli.render.cost_plots import plot_counts

    figures = _captured(monkeypatch)
    plot_counts([counts["se_resnet18_cifar"], counts["eca_resnet18_cifar"]], Path("unused.png"))
    (figure,) = figures
    assert all(axes.get_legend() is None for axes in figure.axes) and len(figure.legends) == 1
    assert "elementwise +34.8%" in figure.legends[0].get_texts()[0].get_text()


def test_profile_plot_at_one_batch_tells_model_from_baseline(monkeypatch):
    from matplotlib.colors import to_hex

    from senet_cli.render.cost_plots import plot_profiles

    figures = _captured(monkeypatch)
    plot_profiles([_profile_report(batches=(1,))], Path("unused.png"))
    (figure,) = figures
    latency, _, memory = figure.axes
    handles, labels = latency.get_legend_handles_labels()
    colours = {to_hex(handle.lines[0].get_color()) for handle, label in zip(handles, labels, strict=True)
               if label in ("se_resnet50 (r=16)", "resnet50 (baseline)")}
    assert len(colours) == 2  # model and baseline in two shades
    figure.canvas.draw()
    ticks = [label.get_text() for label in latency.get_yticklabels()]
    assert ticks and not any(re.search(r"10\^|\\times|mathdefault", tick) for tick in ticks), ticks
    assert len(memory.get_lines()) == 1 and "whole process" in memory.get_title()  # CPU: one shared RSS


def test_progress_lines_agree_on_how_long_a_job_ran(monkeypatch, capsys):
    """The first line a job prints gives its own time, as its "finished in" does; the time since
    the work began (earlier quiet jobs included) stands beside it, named as such."""
    import time

    from senet_cli.cli.output import LazyProgress

    now = [0.0]
    monkeypatch.setattr(time, "perf_counter", lambda: now[0])
    with LazyProgress() as progress:
        first, second = progress.task("timing a"), progress.task("timing b")
        for now[0], done in ((0.0, 0), (4.0, 1), (6.0, 2)):
            first(done, 2)  # quiet: under PLAIN_PROGRESS_AFTER_S
        for now[0], done in ((6.0, 0), (11.0, 1), (14.0, 4)):
            second(done, 4)  # starts at 6 s, speaks at 11 s, ends at 14 s
    assert capsys.readouterr().err.splitlines() == [
        "senet: timing b: running for 5.0 s, 1/4 (the work began 11 s ago)",
        "senet: timing b: finished in 8.0 s",
    ]


def test_inspect_figure_has_one_class_legend_below_the_profiles(tmp_path, image_folder, monkeypatch):
    import matplotlib.pyplot as plt

    from senet_cli.render.gate_plots import plot_gates

    torch.manual_seed(0)
    checkpoint = save_checkpoint(build_model("se_resnet18_cifar"), tmp_path / "ckpt.pth")
    report = senet_cli.inspect(checkpoint, data=str(image_folder))
    kept: list = []
    monkeypatch.setattr(plt, "close", kept.append)
    plot_gates(report, tmp_path / "gates.png")
    (figure,) = kept
    profiles = [axes for axes in figure.axes if "gate per channel" in axes.get_title()]
    assert profiles and all(axes.get_legend() is None for axes in profiles)
    (legend,) = figure.legends
    assert [text.get_text() for text in legend.get_texts()] == ["class cat", "class dog"]


def _calibrated_device():
    """A device file's device: CPU-like rates (0.1 TFLOPS convs, 20 GB/s copies), a long processor name."""
    from senet_cli.count.latency import DeviceCalibration, RatePoint
    from senet_cli.count.roofline import calibrated_device

    points = (RatePoint("conv", "3x3", 10**8, 10**6, 0.0, 0.1, depth=576),
              RatePoint("conv", "depthwise", 10**6, 10**6, 0.0, 0.01, depth=9),
              RatePoint("matmul", "fc", 10**6, 10**6, 0.0, 0.05), RatePoint("memory", "copy", 0, 10**6, 0.0, 20.0))
    return calibrated_device(DeviceCalibration("cpu", "Intel(R) Xeon(R) Processor", "float32", 1, 5.0, points))


@pytest.mark.parametrize("device", ["h100", "calibrated"])
@pytest.mark.parametrize("batch", [1, 64])
def test_count_tables_with_a_bound_or_a_prediction_fit_80_columns(device, batch):
    """With --roofline the time columns take the place of others (issue 22: 87-140 columns before),
    per block and in the summary; --columns all still has every one."""
    roofline = PRESETS[device] if device == "h100" else _calibrated_device()
    reports = [senet_cli.count(name, batch=batch, roofline=roofline)
               for name in ("se_resnet50", "cbam_resnet50", "eca_resnet50")]
    predicted = device == "calibrated"
    per_block = select_columns(count_view.per_block_table(reports[1]), None)
    summary = select_columns(count_view.summary_table(reports), None)
    for table in (per_block, summary):
        text = _rendered(table)
        assert needed_width(table) <= NARROW and max(map(len, text.splitlines())) <= NARROW, text
        assert_whole(table, text)
    assert ("predicted_ms" in per_block.keys) is predicted and "roofline_ms" in per_block.keys
    assert ("predicted_overhead_pct" in summary.keys) is predicted and "roofline_overhead_pct" in summary.keys
    every = select_columns(count_view.summary_table(reports), "all")
    assert {"params", "overhead_params_pct", "baseline_roofline_ms"} <= set(every.keys)
    assert ("baseline_predicted_ms" in every.keys) is predicted
    assert any(note.startswith("predicted: the latency model of the device file") for note in per_block.notes) \
        is predicted


def test_profile_table_with_a_prediction_fits_80_columns():
    device = _calibrated_device()
    results = tuple(BatchResult(b, _measurement("se_resnet50", 123.456 * b), _measurement("resnet50", 110.5 * b),
                                11.7, roofline_ms=50.0 * b, baseline_roofline_ms=49.0 * b, predicted_ms=120.0 * b,
                                baseline_predicted_ms=112.0 * b) for b in (1, 8, 64))
    report = ProfileReport(make_config("se_resnet50"), Timing(), (224, 224), 1, "rss", results, roofline=device)
    table = select_columns(profile_view.profile_table(report), None)
    text = _rendered(table)
    assert needed_width(table) <= NARROW and max(map(len, text.splitlines())) <= NARROW, text
    assert_whole(table, text)
    assert table.keys == ("batch", "median_ms", "baseline_median_ms", "overhead_pct", "predicted_ms",
                          "predicted_overhead_pct", "measured_over_predicted")
    assert "+7.1%" in text  # (120 - 112) / 112, the predicted overhead beside the measured +11.7%


def test_count_notes_explain_only_the_columns_shown_and_say_the_bound_once():
    """A note explains a column only where it is shown (elementwise ops and the bound's memory
    share are not, with a prediction), a summary of several models on one device says the roofline
    once and each model's memory-bound share on one line, and `--columns all` brings every note back."""
    device = _calibrated_device()
    reports = [senet_cli.count(name, roofline=device) for name in ("se_resnet50", "cbam_resnet50")]
    summary = select_columns(count_view.summary_table(reports), None)
    assert "elementwise_ops" not in " ".join(summary.keys)
    assert not any("elem. ops:" in note for note in summary.notes)
    assert sum(note.startswith("roofline:") for note in summary.notes) == 1
    assert not any("rows bound mostly" in note for note in summary.notes)  # a summary's rows are models
    (shares,) = [note for note in summary.notes if note.startswith("memory-bound ops' share")]
    assert "se_resnet50 " in shares and "cbam_resnet50 " in shares
    every = select_columns(count_view.summary_table(reports), "all")
    assert any("elem. ops:" in note for note in every.notes)
    macs_only = select_columns(count_view.per_block_table(reports[0]), "macs")
    assert not any(note.startswith(("roofline:", "predicted:")) for note in macs_only.notes)
    assert select_columns(count_view.per_block_table(reports[0]), "roofline_ms").notes[1].startswith("roofline:")


def test_count_caption_gives_the_tables_figures():
    """The caption's totals are written as the table's total row writes them (no 55.6979 under 55.698)."""
    report = senet_cli.count("se_resnet50", batch=64, roofline=_calibrated_device())
    table = select_columns(count_view.per_block_table(report), None)
    total = dict(zip(table.keys, table.footer or (), strict=True))
    assert f"-> {total['bytes']} MB" in (table.caption or "")
    assert f"-> {total['roofline_ms']} ms" in (table.caption or "")
    assert f"-> {total['predicted_ms']} ms" in (table.caption or "")
    assert re.search(r"elementwise ops [\d,]+\.\d+ M -> [\d,]+\.\d+ M", table.caption or "")
    assert "2,445.89 M" in (table.caption or "")  # thousands separated, as in the table's column


def test_profile_notes_explain_only_the_columns_shown():
    device = _calibrated_device()
    results = tuple(BatchResult(b, _measurement("se_resnet50", 123.456 * b), _measurement("resnet50", 110.5 * b),
                                11.7, roofline_ms=50.0 * b, baseline_roofline_ms=49.0 * b, predicted_ms=120.0 * b,
                                baseline_predicted_ms=112.0 * b) for b in (1, 8))
    report = ProfileReport(make_config("se_resnet50"), Timing(), (224, 224), 1, "rss", results, roofline=device)
    shown = select_columns(profile_view.profile_table(report), None)
    assert not any(note.startswith("peak MiB") for note in shown.notes)
    (bound,) = [note for note in shown.notes if note.startswith("bound:")]
    assert "in JSON and CSV (roofline_ms, measured_over_bound)" in bound
    assert any(note.startswith("predicted:") for note in shown.notes)
    every = select_columns(profile_view.profile_table(report), "all")
    assert any(note.startswith("peak MiB") for note in every.notes)
    assert any("in the columns bound and median / bound" in note for note in every.notes)
    just_median = select_columns(profile_view.profile_table(report), "median_ms")
    assert not any(note.startswith("predicted:") for note in just_median.notes)
