"""The command line: fast start, one-line errors with exit code 2, safe output files, formats."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import pytest


@pytest.mark.parametrize("argv", [["--help"], ["list"], ["count", "se_resnt50"], ["list", "--format", "json"]])
def test_help_list_and_name_errors_do_not_import_torch(argv):
    code = (
        "import sys\nfrom senet_cli.cli.app import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "sys.stderr.write('TORCH=%s' % ('torch' in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "TORCH=False" in result.stderr


@pytest.mark.parametrize("argv", [
    ["count", "se_resnt50"],
    ["count", "se_resnet50", "--ratio", "0"],
    ["count", "se_resnet50", "--ratio", "512"],
    ["count", "se_resnet50", "--ratio", "a,b"],
    ["count", "se_resnet50", "--input", "16"],
    ["count", "se_resnet50", "--input", "big"],
    ["count", "se_resnet50", "--batch", "0"],
    ["count", "se_resnet50", "--format", "xml"],
    ["count", "se_resnet50", "--variant", "v2"],
    ["count", "se_resnet50", "-o", "sqeeze=max"],
    ["count", "se_resnet50", "-o", "squeeze"],
    ["count", "se_resnet50", "--counter", "ptflops"],
    ["count"],
    ["list", "nothing*"],
    ["frobnicate"],
])
def test_bad_input_gives_one_line_and_exit_code_2(argv, cli):
    code, out, err = cli(argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("senet: error: "), err
    assert "Traceback" not in err + out


def test_misspelled_model_names_the_close_match(cli):
    _, _, err = cli(["count", "se_resnet05"])
    assert "did you mean 'se_resnet50'" in err or "did you mean 'resnet50'" in err


def test_output_is_never_half_written_nor_overwritten(tmp_path, cli):
    target = tmp_path / "counts.json"
    code, _, _ = cli(["count", "se_resnet50", "--ratio", "0", "--output", str(target)])
    assert code == 2 and not target.exists()
    code, _, _ = cli(["count", "se_resnet18", "--output", str(target)])
    assert code == 0 and json.loads(target.read_text())["model"] == "se_resnet18"
    code, _, err = cli(["count", "eca_resnet18", "--output", str(target)])
    assert code == 2 and "--force" in err and json.loads(target.read_text())["model"] == "se_resnet18"
    code, _, _ = cli(["count", "eca_resnet18", "--output", str(target), "--force"])
    assert code == 0 and json.loads(target.read_text())["model"] == "eca_resnet18"
    assert [p.name for p in tmp_path.iterdir()] == ["counts.json"]  # no temporary files left


def test_ratio_sweep_gives_one_json_list(cli):
    code, out, _ = cli(["count", "resnet50", "se_resnet50", "--ratio", "2,4,8,16,32", "--format", "json"])
    data = json.loads(out)
    assert code == 0 and [d["model"] for d in data] == ["resnet50"] + ["se_resnet50"] * 5
    assert [d["options"].get("ratio") for d in data[1:]] == [2, 4, 8, 16, 32]
    assert [round(d["params"] / 1e6, 1) for d in data[1:]] == [45.7, 35.6, 30.6, 28.1, 26.8]


def test_csv_and_markdown(cli):
    code, out, _ = cli(["count", "se_resnet18", "--format", "csv"])
    rows = list(csv.DictReader(io.StringIO(out)))
    assert code == 0 and rows[0]["block"] == "stem" and rows[-1]["block"] == "head" and len(rows) == 10
    assert sum(int(r["params"]) for r in rows) == 11_778_592
    code, out, _ = cli(["count", "se_resnet18", "eca_resnet18", "--format", "md"])
    assert code == 0 and "| se_resnet18 | r=16 |" in out and "| eca_resnet18 |" in out


def test_table_output_and_references(cli):
    code, out, _ = cli(["count", "se_resnet18", "--input", "64", "--counter", "all"])
    assert code == 0
    assert "layer4.1" in out and "vs resnet18" in out and "fvcore:" in out and "thop:" in out


def test_version_and_list(cli):
    code, out, _ = cli(["--version"])
    assert code == 0 and out.startswith("senet ")
    code, out, _ = cli(["list", "--format", "json"])
    data = json.loads(out)
    assert code == 0 and [a["name"] for a in data["attention"]] == [
        "se", "eca", "cbam", "bam", "danet", "nonlocal", "gc", "ge", "sk", "coord", "simam", "triplet", "srm"]
    by_name = {a["name"]: a for a in data["attention"]}
    assert by_name["danet"]["default_stages"] == "last" and "quadratic" in by_name["danet"]["placement"]
    assert by_name["bam"]["slot"] == "after" and by_name["sk"]["slot"] == "conv"
    assert by_name["coord"]["default_ratio"] == 32 and by_name["simam"]["uses_ratio"] is False
    assert all(a["paper"].startswith("https://") for a in data["attention"])
    assert {b["name"]: b["stages"] for b in data["backbones"]}["mobilenet_v2"] == 5
    assert "se_resnet50" in data["models"] and data["grammar"].startswith("<attention>_<backbone>")
    code, out, _ = cli(["list", "se_*cifar"])
    assert out.split() == ["se_resnet18_cifar", "se_resnet34_cifar", "se_resnet50_cifar",
                           "se_resnet101_cifar", "se_resnet152_cifar"]
