"""One subject for every model (senet_cli/subject.py): the jobs take zoo and outside models down one
path, outside models gain the zoo path's per-stage ablation and saved checkpoints, and the
`models x ratios` sweep is a library function. Numbers are checked against closed forms and the
parameter sums of timm's and torchvision's own attention classes."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import torch
from torch import nn

import senet_cli
from senet_cli.count import count_sweep
from senet_cli.subject import OutsideSubject, ZooSubject, configurations, subject_for, takes_ratio
from senet_cli.zoo import skip_weight_init

PACKAGE = Path(__file__).resolve().parents[1] / "senet_cli"
SUBJECT_MODULES = {PACKAGE / "subject.py", *(PACKAGE / "outside").glob("*.py")}
"""The modules that define the two kinds of subject, and may tell them apart."""
KIND_CHECK = re.compile(r"isinstance\([^)]*\b(ExternalConfig|ModelConfig|ZooSubject|OutsideSubject)\b|\bis_external\(")


def _kind_branches(path: Path) -> list[int]:
    """Lines of `path` that branch on the kind of model: an `if`/conditional/comprehension test whose
    source is an isinstance on a configuration type or an is_external call."""
    source = path.read_text()
    if not KIND_CHECK.search(source):  # no such call anywhere: no branch on one (and no parse)
        return []
    tree = ast.parse(source)
    lines = []
    for node in ast.walk(tree):
        tests = []
        if isinstance(node, (ast.If, ast.IfExp, ast.While, ast.Assert)):
            tests.append(node.test)
        elif isinstance(node, ast.comprehension):
            tests += node.ifs
        elif isinstance(node, ast.BoolOp):
            tests += node.values
        lines += [test.lineno for test in tests if KIND_CHECK.search(ast.get_source_segment(source, test) or "")]
    return sorted(set(lines))


def test_no_job_branches_on_the_kind_of_model():
    found = {str(path.relative_to(PACKAGE)): lines for path in sorted(PACKAGE.rglob("*.py"))
             if path not in SUBJECT_MODULES and (lines := _kind_branches(path))}
    assert found == {}


def test_the_branch_scan_sees_a_branch():  # the scan above must be able to fail
    assert _kind_branches(PACKAGE / "subject.py")


def _se_params(channels: list[int], ratio: int) -> int:
    """SE on a basic block with C channels: W1 (C -> C/r) and W2 (C/r -> C) as 1x1 convs with bias."""
    return sum(2 * c * (c // ratio) + c // ratio + c for c in channels)


CIFAR18_BLOCK_CHANNELS = [64, 64, 128, 128, 256, 256, 512, 512]


def test_count_sweep_counts_each_model_at_each_ratio_it_takes():
    reports = count_sweep(["se_resnet18_cifar", "eca_resnet18_cifar", "resnet18_cifar"], ratios=[4, 16])
    assert [(r.config.name, r.config.as_dict().get("ratio")) for r in reports] == [
        ("se_resnet18_cifar", 4), ("se_resnet18_cifar", 16), ("eca_resnet18_cifar", 4), ("resnet18_cifar", None)]
    se4, se16, eca, plain = reports
    assert se4.overhead.params == _se_params(CIFAR18_BLOCK_CHANNELS, 4)
    assert se16.overhead.params == _se_params(CIFAR18_BLOCK_CHANNELS, 16)
    assert plain.params == se4.baseline.params == eca.baseline.params
    assert plain.overhead.params == 0


def test_which_models_take_a_ratio():
    assert takes_ratio("se_resnet50") and takes_ratio("cbam_resnet18")
    assert not takes_ratio("resnet50") and not takes_ratio("eca_resnet50") and not takes_ratio("simam_resnet50")
    assert not takes_ratio("torchvision:mobilenet_v3_small")
    subjects = configurations(["se_resnet18", "eca_resnet18", "se_resnet18"], [8, 16])
    assert [(s.name, s.as_dict().get("ratio")) for s in subjects] == [
        ("se_resnet18", 8), ("se_resnet18", 16), ("eca_resnet18", 8)]
    (outside,) = configurations(["torchvision:mobilenet_v3_small"], [None], {"num_classes": 10})
    assert outside.as_dict() == {"source": "torchvision", "num_classes": 10}
    with pytest.raises(senet_cli.SenetError, match="ratio"):  # its builder's keywords only, as before
        configurations(["torchvision:mobilenet_v3_small"], [8])


def test_subject_for_takes_names_configurations_and_subjects():
    zoo = subject_for("se_resnet18", {"ratio": 8})
    assert isinstance(zoo, ZooSubject) and zoo.config.ratio == 8 and subject_for(zoo) is zoo
    assert isinstance(subject_for(zoo.config), ZooSubject)
    outside = subject_for("torchvision:mobilenet_v3_small", {"num_classes": 10})
    assert isinstance(outside, OutsideSubject) and outside.as_dict() == {"source": "torchvision", "num_classes": 10}
    assert outside.input_sides() == (224, 1, "torchvision:mobilenet_v3_small")
    with pytest.raises(senet_cli.SenetError, match="ModelConfig"):
        subject_for(zoo.config, {"ratio": 4})


def _timm_se_params_by_stage(timm) -> dict[int, int]:
    from timm.layers import SEModule

    with torch.device("meta"), skip_weight_init():
        model = timm.create_model("seresnet18")
    return {stage: sum(p.numel() for m in getattr(model, f"layer{stage}").modules() if isinstance(m, SEModule)
                       for p in m.parameters()) for stage in (1, 2, 3, 4)}


def test_a_timm_model_loses_one_stage_of_attention_at_a_time():
    timm = pytest.importorskip("timm")
    by_stage = _timm_se_params_by_stage(timm)
    subject = subject_for("timm:seresnet18")
    model = subject.build(meta=True)
    found = subject.attention(model)
    total = sum(p.numel() for p in model.parameters())
    assert subject.attention_stages(model, found) == (1, 2, 3, 4)
    for stage, se_params in by_stage.items():
        ablated = subject.without_stage(stage, found, model).build(meta=True)
        assert sum(p.numel() for p in ablated.parameters()) == total - se_params
        kept = [path for path, m in ablated.named_modules() if type(m).__name__ == "SEModule"]
        assert len(kept) == 6 and not any(path.startswith(f"layer{stage}.") for path in kept)  # two blocks a stage


@pytest.mark.slow
def test_profile_per_block_times_each_stage_of_a_timm_model():
    pytest.importorskip("timm")
    report = senet_cli.profile("timm:seresnet18", input_size=32, per_stage=True, iters=1, warmup=0, roofline=None)
    result = report.results[0]
    assert [cost.stage for cost in result.per_stage] == [1, 2, 3, 4]
    assert result.baseline is not None


@pytest.mark.parametrize("name, gates", [("torchvision:mobilenet_v3_small", 9), ("timm:seresnet18", 8)])
def test_a_saved_outside_model_is_inspected_without_naming_it(tmp_path, name, gates):
    if name.startswith("timm:"):
        pytest.importorskip("timm")
    torch.manual_seed(0)
    model = senet_cli.build_model(name, num_classes=10)
    path = senet_cli.save_checkpoint(model, tmp_path / "outside.safetensors")
    report = senet_cli.inspect(path, data="synthetic", limit=2, batch=2, input_size=64)
    assert report.architecture_source == "metadata" and report.model == name
    assert report.config.as_dict()["num_classes"] == 10
    assert len(report.blocks) == gates
    given = senet_cli.inspect(path, model=name, num_classes=10, data="synthetic", limit=2, batch=2, input_size=64)
    assert [g.mean for g in given.blocks] == [g.mean for g in report.blocks]


def test_gate_ranges_live_in_one_table():
    from senet_cli.attention import base
    from senet_cli.inspect import gates

    assert gates.GATE_RANGES is base.GATE_RANGES
    assert base.gate_range(nn.Hardsigmoid()) == (0.0, 1.0) and base.gate_range(nn.ReLU()) == (0.0, None)
