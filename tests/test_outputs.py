"""What the command line prints and writes when the input is hostile or the output cannot be written:
escaped text, strict JSON, output files checked first and committed together (or not at all),
signals, one-line errors for sizes too large to run, and the small promises of issue #14."""

from __future__ import annotations

import errno
import importlib
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from senet_cli import build_model
from senet_cli.atomic import OutputError, atomic_path, committed_together
from senet_cli.checkpoint.writing import save_checkpoint

ESC = "\x1b"
HOSTILE = f"se_resnet18_cifar{ESC}[2J{ESC}[32mAll good{ESC}[0m\r"  # clears the screen, prints a fake line
QUICK = ["--data", "synthetic", "--limit", "4", "--batch", "4"]  # inspect over 4 noise images


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "good.pth"
    return save_checkpoint(build_model("se_resnet18_cifar"), path)


def one_error_line(code: int, out: str, err: str) -> str:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("senet: error: "), err
    assert "Traceback" not in out + err
    return lines[0]


def strict_json(text: str) -> object:
    def refuse(token: str) -> None:
        raise AssertionError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


# --- 1. inspect --plot without a path ---------------------------------------------------------


def test_plot_without_a_path_writes_beside_the_checkpoint_name_here(checkpoint, tmp_path, monkeypatch, cli):
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(["inspect", str(checkpoint), *QUICK, "--plot"])
    assert code == 0 and "wrote good.gates.png" in err
    assert (tmp_path / "good.gates.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    line = one_error_line(*cli(["inspect", str(checkpoint), *QUICK, "--plot"]))
    assert "good.gates.png already exists" in line and "--force" in line
    before = (tmp_path / "good.gates.png").stat().st_mtime_ns
    code, out, err = cli(["inspect", str(checkpoint), "--plot", "--force", *QUICK, "--format", "json"])
    assert code == 0 and strict_json(out) and (tmp_path / "good.gates.png").stat().st_mtime_ns != before
    code, _, err = cli(["inspect", str(checkpoint), *QUICK, "--plot", str(tmp_path / "named.svg")])
    assert code == 0 and (tmp_path / "named.svg").read_text().lstrip().startswith("<?xml")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["good.gates.png", "named.svg"]


# --- 2. escaping ------------------------------------------------------------------------------


def test_a_hostile_model_name_in_metadata_is_printed_escaped(checkpoint, tmp_path, cli):
    path = tmp_path / "hostile.pth"
    state = torch.load(checkpoint, weights_only=True)
    state["senet"]["model"] = HOSTILE
    torch.save(state, path)
    code, out, err = cli(["inspect", str(path), *QUICK])
    assert code == 2 and ESC not in out + err and "\r" not in out + err
    assert "\\x1b[2J\\x1b[32mAll good" in err and len(err.strip().splitlines()) == 1


def test_control_characters_in_a_path_are_escaped_in_tables(checkpoint, tmp_path, cli):
    path = tmp_path / f"bad{ESC}[31mname.pth"
    path.write_bytes(checkpoint.read_bytes())
    for fmt in ("table", "md", "csv"):
        code, out, err = cli(["inspect", str(path), *QUICK, "--format", fmt])
        assert code == 0 and ESC not in out + err
    assert "bad\\x1b[31mname.pth" in out + err or fmt == "csv"


@pytest.mark.parametrize("folder", ["exp[red]", "a[/]b", "[bold]x[/bold]"])
def test_rich_markup_in_a_path_is_shown_as_written(checkpoint, tmp_path, folder, cli):
    (tmp_path / folder).mkdir(parents=True)  # a[/]b is the folder a[ holding ]b
    path = tmp_path / folder / "good.pth"
    path.write_bytes(checkpoint.read_bytes())
    code, out, err = cli(["inspect", str(path), *QUICK])
    assert code == 0 and "MarkupError" not in err
    assert f"{folder}/good.pth" in "".join(out.split())  # the table may wrap the note; no character lost


def test_an_error_naming_a_path_with_markup_is_one_literal_line(tmp_path, cli):
    line = one_error_line(*cli(["inspect", str(tmp_path / "a[/]b[red]" / "missing.pth")]))
    assert "a[/]b[red]" in line


# --- 3. output files --------------------------------------------------------------------------


@pytest.fixture
def no_work(monkeypatch):
    """Fail the test if count's work starts: output problems must be found before it."""
    count_package = importlib.import_module("senet_cli.count")  # senet_cli.count is also the function

    def refuse(*args, **kwargs):
        raise AssertionError("the work started before the output path was checked")

    monkeypatch.setattr(count_package, "count", refuse)


def test_unwritable_outputs_are_refused_before_any_work(tmp_path, no_work, cli):
    (tmp_path / "file").write_text("x")
    cases = {
        str(tmp_path / "file" / "out.json"): "is not a folder",
        str(tmp_path / "missing" / "out.json"): "does not exist",
        str(tmp_path / ("n" * 245 + ".json")): "File name too long",  # fits NAME_MAX; its temporary name does not
        str(tmp_path / "out.xlsx"): "accepted",
        str(tmp_path): "is a directory",
    }
    for output, expected in cases.items():
        line = one_error_line(*cli(["count", "se_resnet18", "--output", output]))
        assert expected in line or (expected == "accepted" and ".json .csv .md .txt" in line), line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


@pytest.mark.parametrize(("argv", "said"), [
    (["calibrate", "--budget", "nan"], "'--budget': 'nan' is not a finite number; it should be less than"),
    (["calibrate", "--min-run-time=inf"], "'--min-run-time': 'inf' is not a finite number; it should be less"),
    (["profile", "se_resnet18", "--min-time", "-nan"], "'--min-time': '-nan' is not a finite number; it should be "
                                                       "greater than or equal to 0.001"),
])
def test_nan_or_inf_for_a_number_in_a_range_is_named(argv, said, cli):
    """Click said "should be less than or equal to 3600" of nan: true (nan is no less), but not the problem."""
    assert said in one_error_line(*cli(argv))


def test_a_format_the_output_name_contradicts_is_refused_before_any_work(tmp_path, no_work, cli):
    """`calibrate --format csv --output dev.json` wrote CSV into a .json file, which --roofline then read
    as broken JSON; a .txt path takes any format (it is text)."""
    line = one_error_line(*cli(["count", "se_resnet18", "--format", "csv", "--output", str(tmp_path / "dev.json")]))
    assert line == ("senet: error: --format csv and --output 'dev.json' disagree (that name says json); drop "
                    "--format, or give a path ending in .csv or .txt")
    line = one_error_line(*cli(["count", "se_resnet18", "--format", "table", "--output", str(tmp_path / "a.md")]))
    assert line.endswith("give a path ending in .txt")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_refused_before_any_work(tmp_path, no_work, cli):
    tmp_path.chmod(0o555)
    try:
        line = one_error_line(*cli(["count", "se_resnet18", "--output", str(tmp_path / "out.json")]))
    finally:
        tmp_path.chmod(0o755)
    assert "Permission denied" in line


@pytest.mark.skipif(not os.path.isdir("/sys") or os.access("/sys", os.W_OK) and os.geteuid() != 0,
                    reason="needs /sys, a folder no one can create files in")
def test_a_folder_that_refuses_files_is_found_by_the_probe(no_work, cli):
    line = one_error_line(*cli(["count", "se_resnet18", "--output", "/sys/senet-out.json"]))
    assert line.startswith("senet: error: cannot write /sys/senet-out.json: ")  # as root too: a real file is tried


@pytest.mark.parametrize("argv, filled", [
    (["inspect", "c.pth", "--plot"], ["inspect", "c.pth", "--plot=:here:"]),
    (["inspect", "c.pth", "--plot", "-f", "json"], ["inspect", "c.pth", "--plot=:here:", "-f", "json"]),
    (["inspect", "c.pth", "--plot", "g.png"], ["inspect", "c.pth", "--plot", "g.png"]),
    (["inspect", "c.pth", "--plot=g.png"], ["inspect", "c.pth", "--plot=g.png"]),
    (["inspect", "c.pth", "--", "--plot"], ["inspect", "c.pth", "--", "--plot"]),
    (["list", "--plot"], ["list", "--plot"]),  # only the commands named in OPTIONAL_VALUES
    (["inspect", "--plot", "c.pth"], ["inspect", "--plot=:here:", "c.pth"]),  # not a figure: the checkpoint
    (["count", "--plot", "se_resnet50"], ["count", "--plot=:here:", "se_resnet50"]),
    (["count", "m", "--plot", "f.JPG"], ["count", "m", "--plot", "f.JPG"]),  # a figure, refused by its format
])
def test_plot_takes_an_optional_value(argv, filled):
    from senet_cli.cli.app import _fill_optional_values

    assert _fill_optional_values(argv) == filled


def test_outputs_get_the_umask_mode_and_txt_is_the_table(tmp_path, cli):
    previous = os.umask(0o027)
    try:
        code, _, err = cli(["count", "se_resnet18", "--output", str(tmp_path / "counts.txt")])
    finally:
        os.umask(previous)
    assert code == 0 and f"wrote {tmp_path / 'counts.txt'}" in err
    assert (tmp_path / "counts.txt").stat().st_mode & 0o777 == 0o640
    assert "layer4.1" in (tmp_path / "counts.txt").read_text()


def test_a_file_that_appears_during_the_run_is_not_overwritten(tmp_path, monkeypatch, cli):
    count_package = importlib.import_module("senet_cli.count")
    target = tmp_path / "counts.json"
    real = count_package.count

    def count_while_someone_writes(*args, **kwargs):
        target.write_text("theirs")
        return real(*args, **kwargs)

    monkeypatch.setattr(count_package, "count", count_while_someone_writes)
    line = one_error_line(*cli(["count", "se_resnet18", "--output", str(target)]))
    assert "appeared" in line and target.read_text() == "theirs"
    code, _, _ = cli(["count", "se_resnet18", "--output", str(target), "--force"])
    assert code == 0 and json.loads(target.read_text())["model"] == "se_resnet18"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counts.json"]


def test_a_failed_write_leaves_none_of_the_command_outputs(checkpoint, tmp_path, monkeypatch, cli):
    import senet_cli.cli.output as output

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(output, "open", full_disk, raising=False)  # --output's write; the plot was written before
    line = one_error_line(*cli(["inspect", str(checkpoint), *QUICK, "--plot", str(tmp_path / "gates.png"),
                                "--output", str(tmp_path / "gates.json")]))
    assert "No space left on device" in line
    assert list(tmp_path.iterdir()) == []  # neither the plot nor a temporary file


def test_committed_together_moves_all_files_or_none(tmp_path):
    old, new = tmp_path / "old.txt", tmp_path / "new.txt"
    old.write_text("before")
    with pytest.raises(OutputError, match="appeared"), committed_together() as outputs:
        outputs.allow(old, overwrite=True)
        outputs.allow(new, overwrite=False)
        for path in (old, new):
            with atomic_path(path) as temporary:
                Path(temporary).write_text("ours")
        new.write_text("theirs")  # appears after the checks, before the commit
    assert old.read_text() == "before" and new.read_text() == "theirs"  # the replaced file came back
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new.txt", "old.txt"]
    with committed_together() as outputs:
        with atomic_path(old) as temporary:
            Path(temporary).write_text("after")
        assert old.read_text() == "before"  # nothing moves before the block ends
    assert old.read_text() == "after" and outputs.written == [old]


SLOW_WRITE = """
import signal, sys, time
# A shell that starts a job in the background (CI runners, nohup) hands it SIGINT/SIGHUP ignored, and
# senet rightly keeps an inherited "ignore"; this test is about the handlers, so it starts from defaults.
signal.signal(signal.SIGINT, signal.default_int_handler)
signal.signal(signal.SIGHUP, signal.SIG_DFL)
import senet_cli.cli.output as output
real_open = open
def slow_open(path, *args, **kwargs):
    stream = real_open(path, *args, **kwargs)
    sys.stderr.write("WRITING\\n"); sys.stderr.flush()
    time.sleep(60)
    return stream
output.open = slow_open
from senet_cli.cli.app import main
main(["count", "se_resnet18_cifar", "--output", sys.argv[1]])
"""


@pytest.mark.parametrize("name", ["SIGINT", pytest.param("SIGTERM", marks=pytest.mark.slow),
                                  pytest.param("SIGHUP", marks=pytest.mark.slow)])
def test_a_signal_during_the_write_leaves_no_file_and_one_line(tmp_path, name):
    number = getattr(signal, name)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1]), "OMP_NUM_THREADS": "1"}
    process = subprocess.Popen([sys.executable, "-c", SLOW_WRITE, str(tmp_path / "out.json")], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    seen = []
    for line in process.stderr:  # the temporary file exists once this is printed
        seen.append(line)
        if line == "WRITING\n":
            break
    assert list(tmp_path.iterdir()), seen
    process.send_signal(number)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 128 + number
    assert err.strip().splitlines() == ["senet: interrupted" + ("" if name == "SIGINT" else f" by {name}")]
    assert list(tmp_path.iterdir()) == []


# --- 4. strict JSON ---------------------------------------------------------------------------


def test_every_json_output_is_strict(checkpoint, tmp_path, cli):
    model = build_model("se_resnet18_cifar")
    with torch.no_grad():
        model.layer1[0].se.fc1.weight.fill_(float("nan"))
    nan_checkpoint = save_checkpoint(model, tmp_path / "nan.pth")
    runs = [
        ["count", "se_resnet18", "eca_resnet18"],
        ["profile", "se_resnet18_cifar", "--iters", "2", "--warmup", "0"],
        ["inspect", str(checkpoint), *QUICK],
        ["inspect", str(nan_checkpoint), *QUICK],
        ["list"],
        ["list", "se_*"],
    ]
    for argv in runs:
        code, out, _ = cli([*argv, "--format", "json"])
        assert code == 0, argv
        data = strict_json(out)
    first = data if isinstance(data, dict) else None  # the last run: list se_* -> names
    assert first is None and "se_resnet50" in data
    code, out, _ = cli(["inspect", str(nan_checkpoint), *QUICK, "--format", "json"])
    gates = strict_json(out)["blocks"][0]
    assert gates["mean"] is None and gates["nonfinite"] > 0  # null, and the count of non-finite values kept


# --- 5. one-line errors -------------------------------------------------------------------------


@pytest.mark.parametrize("argv, expected", [
    (["count", "se_resnet18", "--ratio", ","], "--ratio must be an integer"),
    (["count", "se_resnet18", "--input", "100000", "--batch", "1000000000"], "too large"),
    (["count", "se_resnet18", "--input", "10000", "--batch", "100000", "--counter", "thop"], "out of memory"),
    (["count", "se_resnet18", "--input", "10000", "--batch", "100000", "--counter", "fvcore"], "out of memory"),
    (["profile", "se_resnet18", "--threads", "100000"], "--threads must be between 1 and"),
    (["profile", "se_resnet18", "--batch", ","], "--batch must be an integer"),
    (["count", "SE_ResNet50"], "did you mean 'se_resnet50'"),
    (["count", "se_resnet18", "--variant", "v9"], "'v9' is not one of"),
])
def test_too_large_and_malformed_requests_are_one_line(argv, expected, cli):
    line = one_error_line(*cli(argv))
    assert expected in line and "Value error" not in line


@pytest.mark.parametrize("extra, expected", [
    (["--input", "100000"], "use a smaller --input or --batch"),  # the memory budget, before allocating
    (["--bins", "1000000000000"], "--bins must be between 1 and 100,000"),
    (["--bins", "99999999999999999999999"], "--bins must be between 1 and 100,000"),
    (["--workers", "100000"], "--workers must be between 0 and"),
])
def test_inspect_out_of_memory_or_bounds_are_one_line(checkpoint, extra, expected, cli):
    assert expected in one_error_line(*cli(["inspect", str(checkpoint), *QUICK, *extra]))


@pytest.mark.parametrize("argv", [
    ["count", "se_resnet18_cifar", "--batch", "99999999999999999999999"],
    ["count", "se_resnet18_cifar", "--input", "99999999999999999999999"],
    ["count", "se_resnet18_cifar", "--num-classes", "99999999999999999999999"],
    ["count", "eca_resnet18_cifar", "-o", "k_size=99999999999999999999999"],
])
def test_integers_beyond_any_tensor_size_are_one_line(argv, cli):
    """A hostile-input run: numbers past int64 reached torch and ended in a traceback."""
    assert "must be at most 2,147,483,647" in one_error_line(*cli(argv))


def test_an_output_name_longer_than_the_file_system_takes_is_one_line(tmp_path, cli):
    line = one_error_line(*cli(["count", "resnet18_cifar", "--output", str(tmp_path / ("a" * 251 + ".json"))]))
    assert "cannot write" in line or "too long" in line


# --- 6. the small promises --------------------------------------------------------------------


def test_bare_senet_prints_its_help_once(cli):
    code, out, err = cli([])
    assert code == 0 and out.count("Usage: senet") == 1 and err == ""


def test_command_help_paragraphs_have_no_hard_line_breaks():
    from senet_cli.cli.app import app

    for command in app.registered_commands:
        assert command.help and all("\n" not in paragraph for paragraph in command.help.split("\n\n")), command.name


def test_ratio_for_a_module_without_one_is_noted(cli):
    code, out, err = cli(["count", "resnet18", "eca_resnet18", "se_resnet18", "--ratio", "8", "--format", "json"])
    assert code == 0 and [d["model"] for d in strict_json(out)] == ["resnet18", "eca_resnet18", "se_resnet18"]
    notes = [line for line in err.splitlines() if "--ratio" in line]
    assert notes == ["senet: note: --ratio ignored for resnet18 (a plain backbone), eca_resnet18 "
                     "(eca has no reduction ratio)"]


def test_progress_is_plain_lines_without_a_terminal(monkeypatch, cli):
    code, _, err = cli(["count", "se_resnet18", "eca_resnet18", "--format", "csv"])
    assert code == 0 and err == ""  # quick work stays quiet
    import senet_cli.cli.output as output

    monkeypatch.setattr(output, "PLAIN_PROGRESS_AFTER_S", 0.0)  # as if the work had been long
    code, _, err = cli(["profile", "se_resnet18_cifar", "--batch", "1,2", "--iters", "2", "--warmup", "0",
                        "--format", "csv"])
    lines = [re.sub(r"\d+(\.\d+)? s\b", "N s", line) for line in err.splitlines()]
    assert code == 0 and lines == [
        "senet: timing se_resnet18_cifar: running for N s, 1/2",  # batch 1
        "senet: timing se_resnet18_cifar: finished in N s",
        "senet: timing se_resnet18_cifar: started",  # batch 2
        "senet: timing se_resnet18_cifar: finished in N s",
    ], err


def test_summary_csv_has_the_elementwise_overhead(cli):
    import csv
    import io

    code, out, _ = cli(["count", "resnet18", "se_resnet18", "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(out)))
    se = rows[1]
    expected = 100 * (int(se["elementwise_ops"]) - int(se["baseline_elementwise_ops"])) / int(
        se["baseline_elementwise_ops"])
    assert code == 0 and float(se["overhead_elementwise_ops_pct"]) == pytest.approx(expected, abs=1e-5)


def test_list_writes_to_output(tmp_path, cli):
    for name in ("models.json", "models.csv", "models.md", "models.txt"):
        code, out, err = cli(["list", "--output", str(tmp_path / name)])
        assert code == 0 and out == "" and f"wrote {tmp_path / name}" in err
    assert "se_resnet50" in strict_json((tmp_path / "models.json").read_text())["models"]
    assert "Attention modules" in (tmp_path / "models.txt").read_text()
    assert "already exists" in one_error_line(*cli(["list", "--output", str(tmp_path / "models.md")]))


def test_a_cpu_run_larger_than_the_free_memory_fails_at_once_in_one_line(checkpoint, monkeypatch, cli):
    import resource

    import senet_cli.cli.app as app

    before = resource.getrlimit(resource.RLIMIT_DATA)
    monkeypatch.setattr(app, "available_memory", lambda: 512 * 2**20)  # as if 512 MiB were free
    line = one_error_line(*cli(["inspect", str(checkpoint), "--data", "synthetic", "--limit", "2000",
                                "--batch", "2000"]))  # 1.5 GiB planned: under inspect's 4 GiB budget, over 512 MiB
    assert "out of memory" in line and resource.getrlimit(resource.RLIMIT_DATA) == before  # the cap is lifted


@pytest.mark.parametrize("argv, suggestion", [
    (["count", "se_resnet18_cifar", "--variant", "V1"], "did you mean 'v1'?"),
    (["count", "se_resnet18_cifar", "--counter", "fvcor"], "did you mean 'fvcore'?"),
    (["count", "se_resnet18_cifar", "--dtype", "float65"], "did you mean 'float16'?"),
])
def test_a_fixed_choice_flag_suggests_the_closest_choice(argv, suggestion, cli):
    """Click's own refusal of a choice gets the close match our choice errors give (README's table)."""
    assert suggestion in one_error_line(*cli(argv))
