"""Models from outside the zoo: torchvision's, timm's and the user's own, counted, timed and inspected
with their attention found by class. Numbers are checked against torchvision's and timm's own
models (parameter sums of their attention classes, torchvision's published parameter and op counts)
and a closed form for the user's gate."""

from __future__ import annotations

import importlib.util
import json
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

import senet_cli
from senet_cli.zoo import skip_weight_init

USER_FILE = '''
import torch
from torch import nn


class ChannelGate(nn.Module):
    """An SE-like gate: x * sigmoid(W2 relu(W1 mean(x))), the user's own class."""

    def __init__(self, channels, reduction=4):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x):
        return x * self.gate(self.fc2(torch.relu(self.fc1(x.mean((2, 3), keepdim=True)))))


class Block(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(channels)
        self.attn = ChannelGate(channels)

    def forward(self, x):
        return torch.relu(x + self.attn(self.bn(self.conv(x))))


def build(width=16, num_classes=10):
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1), nn.ReLU(), Block(width), Block(width),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes),
    )
'''


def _meta(builder, **kwargs) -> nn.Module:
    with torch.device("meta"), skip_weight_init():
        return builder(**kwargs)


def _params_of(model: nn.Module, cls: type) -> tuple[int, int]:
    """(parameters inside modules of class `cls`, how many such modules)."""
    found = [m for m in model.modules() if isinstance(m, cls)]
    return sum(p.numel() for m in found for p in m.parameters()), len(found)


def _check_rows_and_baseline(report) -> None:
    for measure in ("params", "macs", "elementwise_ops", "bytes"):
        assert sum(getattr(row, measure) for row in report.rows) == getattr(report, measure)
        # the baseline is the same model with each attention module a pass-through, traced on its
        # own: what it lacks is exactly what the attention modules cost
        assert getattr(report.overhead, measure) == report.attention_total(measure)
        assert getattr(report.baseline, measure) == getattr(report, measure) - report.attention_total(measure)


def test_torchvision_efficientnet_b0_counts_its_squeeze_excitation():
    from torchvision.ops import SqueezeExcitation

    report = senet_cli.count("torchvision:efficientnet_b0")
    reference = _meta(torchvision.models.efficientnet_b0)
    se_params, se_modules = _params_of(reference, SqueezeExcitation)
    assert report.params == 5_288_548 == sum(p.numel() for p in reference.parameters())
    assert (se_params, se_modules) == (636_540, 16)
    assert report.attention_total("params") == se_params
    assert report.baseline.params == 5_288_548 - 636_540 and "without attention" in report.baseline.model
    # SE's MACs are its two 1x1 convs on the pooled vector: one per weight (closed form)
    se_macs = sum(m.fc1.weight.numel() + m.fc2.weight.numel() for m in reference.modules()
                  if isinstance(m, SqueezeExcitation))
    assert report.attention_total("macs") == se_macs
    # torchvision's published op count for the model (GFLOPS that are MACs, 3 decimals)
    published = torchvision.models.EfficientNet_B0_Weights.IMAGENET1K_V1.meta["_ops"]
    assert abs(report.macs / 1e9 - published) < 0.0005
    _check_rows_and_baseline(report)
    assert [b.name for b in report.blocks][:3] == ["features.1.0", "features.2.0", "features.2.1"]
    # a stage per output stride: the paper's stage strides 1, 2, 2, 2, 1, 2, 1 put features.1-7 at
    # reductions 2, 4, 8, 16, 16, 32, 32 (the stem halves first)
    stage_of_group = {"1": 1, "2": 2, "3": 3, "4": 4, "5": 4, "6": 5, "7": 5}
    assert len(report.blocks) == 16
    assert all(b.stage == stage_of_group[b.name.split(".")[1]] for b in report.blocks)
    assert report.attention_modules == (("SqueezeExcitation", 16),)
    assert any("nn.Identity" in note for note in report.notes)


def test_timm_seresnext26d_counts_its_se_modules():
    timm = pytest.importorskip("timm")
    from timm.layers import SEModule

    report = senet_cli.count("timm:seresnext26d_32x4d", input_size=64)
    se_params, se_modules = _params_of(_meta(timm.create_model, model_name="seresnext26d_32x4d"), SEModule)
    assert report.params == 16_809_512
    assert (se_params, se_modules) == (1_400_800, 8) and report.attention_total("params") == se_params
    assert report.baseline.params == 16_809_512 - 1_400_800
    _check_rows_and_baseline(report)
    assert [(b.name, b.stage) for b in report.blocks] == [
        (f"layer{stage}.{index}", stage) for stage in range(1, 5) for index in range(2)
    ]


def test_a_builder_that_computes_while_building_still_counts():
    """torchvision's RegNet computes its widths with tensors, which the meta device cannot read."""
    from torchvision.ops import SqueezeExcitation

    report = senet_cli.count("torchvision:regnet_y_400mf", input_size=64)
    real = torchvision.models.regnet_y_400mf()
    assert report.params == sum(p.numel() for p in real.parameters()) == 4_344_144
    assert report.attention_total("params") == _params_of(real, SqueezeExcitation)[0]
    _check_rows_and_baseline(report)


def test_a_module_that_replaces_a_conv_has_no_baseline():
    pytest.importorskip("timm")
    report = senet_cli.count("timm:skresnet18", input_size=64)
    assert report.baseline is None and report.overhead is None
    assert report.attention_modules == (("SelectiveKernel", 8),)
    assert any(note.startswith("no baseline: SelectiveKernel") for note in report.notes)
    assert report.to_dict()["baseline"] is None


def test_bytes_and_the_roofline_bound_follow_the_dtype_outside_the_zoo():
    """count's bytes and roofline (#16) on a torchvision model: float16 moves exactly half of float32
    (no casts without AMP), the bound sums the rows, and the baseline's bound is the pass-through's."""
    fp32 = senet_cli.count("torchvision:mobilenet_v3_small", input_size=64, roofline="h100")
    fp16 = senet_cli.count("torchvision:mobilenet_v3_small", input_size=64, dtype="float16", roofline="h100")
    _check_rows_and_baseline(fp32)
    assert fp16.bytes * 2 == fp32.bytes and fp16.baseline.bytes * 2 == fp32.baseline.bytes
    bound = fp32.roofline
    assert bound is not None and bound.baseline_ms is not None and 0 < bound.baseline_ms < bound.ms
    assert abs(sum(row.roofline_ms for row in fp32.rows) - bound.ms) < 1e-9
    assert abs(bound.overhead_pct - (bound.ms / bound.baseline_ms - 1) * 100) < 1e-9


def test_without_a_baseline_the_bound_has_no_baseline_either(cli):
    pytest.importorskip("timm")
    report = senet_cli.count("timm:skresnet18", input_size=64, roofline="100,1000")
    assert report.roofline is not None and report.roofline.baseline_ms is None and report.roofline.overhead_pct is None
    code, out, err = cli(["count", "timm:skresnet18", "--input", "64", "--roofline", "h100", "--format", "json"])
    assert code == 0, err
    assert json.loads(out)["roofline"]["baseline_ms"] is None


@pytest.fixture
def user_file(tmp_path: Path) -> Path:
    path = tmp_path / "usernet.py"
    path.write_text(textwrap.dedent(USER_FILE))
    return path


def test_a_users_file_counts_with_its_own_gate_class(user_file, cli):
    model = f"{user_file}:build"
    gate = f"{user_file}:ChannelGate"
    width, reduction = 24, 4
    squeezed = width // reduction
    gate_params = 2 * (width * squeezed) + squeezed + width  # two 1x1 convs with biases (closed form)

    report = senet_cli.count(model, input_size=32, attention_classes=[gate], width=width)
    assert report.attention_total("params") == 2 * gate_params
    assert report.attention_modules == (("ChannelGate", 2),)
    assert [(b.name, b.stage) for b in report.blocks] == [("2", 1), ("3", 1)]
    _check_rows_and_baseline(report)

    # unnamed, the same gate is found by what it does: its output is its input times a gate (issue 21)
    unnamed = senet_cli.count(model, input_size=32, width=width)
    assert unnamed.attention_total("params") == 2 * gate_params and not unnamed.plain
    assert unnamed.attention_modules == (("ChannelGate", 2),) and unnamed.baseline.params == report.baseline.params

    code, out, err = cli(["count", model, "--attention-class", gate, "-o", f"width={width}", "--input", "32",
                          "--format", "json"])
    assert code == 0, err
    counted = json.loads(out)
    assert counted["attention"]["params"] == 2 * gate_params
    assert counted["baseline"]["params"] == counted["params"] - 2 * gate_params
    assert counted["options"] == {"source": "file", "width": width, "attention_classes": [gate]}


def test_a_top_level_module_called_stem_or_head_is_a_block_of_its_own(tmp_path):
    """Rows are keyed apart from module paths: a model whose children are `stem`, `body` and `head`
    counts each as a block beside the (empty) rows before and after the blocks (it failed the
    rows-add-up check)."""
    path = tmp_path / "named.py"
    path.write_text(textwrap.dedent("""
        from collections import OrderedDict

        from torch import nn

        def build():
            return nn.Sequential(OrderedDict([("stem", nn.Conv2d(3, 8, 3)), ("body", nn.Conv2d(8, 8, 3)),
                                              ("head", nn.Conv2d(8, 4, 1))]))
    """))
    report = senet_cli.count(f"{path}:build", input_size=16)
    assert [b.name for b in report.blocks] == ["stem", "body", "head"]
    assert [b.params for b in report.blocks] == [3 * 8 * 9 + 8, 8 * 8 * 9 + 8, 8 * 4 + 4]
    assert report.stem.params == report.head.params == 0 and report.stem.macs == report.head.macs == 0
    assert report.params == sum(b.params for b in report.blocks)


def test_a_module_path_names_the_same_model(user_file, monkeypatch):
    monkeypatch.syspath_prepend(str(user_file.parent))
    report = senet_cli.count("usernet:build", input_size=32, attention_classes=["usernet:ChannelGate"])
    assert report.config.source == "module" and report.attention_modules == (("ChannelGate", 2),)
    monkeypatch.delitem(sys.modules, "usernet", raising=False)


def test_profile_times_mobilenet_v3_against_its_pass_through_baseline():
    report = senet_cli.profile("torchvision:mobilenet_v3_small", input_size=64, iters=2, warmup=0)
    result = report.results[0]
    assert result.model.iterations == 2 and result.baseline is not None
    assert result.baseline.model == "torchvision:mobilenet_v3_small without attention"
    assert result.overhead_pct is not None
    assert "attention found by class: 9 SqueezeExcitation" in report.notes
    # stages are output strides 4, 8, 16, 32 (Howard et al., table 2): SE sits in bneck 1 (stride 4) and
    # bnecks 4-11 (strides 16 and 32), none at stride 8: one ablation per stage holding attention
    staged = senet_cli.profile("torchvision:mobilenet_v3_small", input_size=64, per_stage=True, iters=1, warmup=0)
    assert [cost.stage for cost in staged.results[0].per_stage] == [1, 3, 4]


def test_inspect_hooks_the_nine_hardsigmoid_gates_of_mobilenet_v3(tmp_path, cli):
    torch.manual_seed(0)
    path = tmp_path / "mbv3.pth"
    torch.save(torchvision.models.mobilenet_v3_small().state_dict(), path)
    report = senet_cli.inspect(path, model="torchvision:mobilenet_v3_small", data="synthetic", limit=4, batch=4,
                               input_size=64)
    assert len(report.blocks) == 9
    assert all(g.gate.endswith("scale_activation") and 0.0 <= g.min <= g.max <= 1.0 for g in report.blocks)
    assert report.blocks[0].name == "features.1" and report.blocks[0].gate == "block.1.scale_activation"
    widths = [m.fc2.out_channels for m in torchvision.models.mobilenet_v3_small().modules()
              if isinstance(m, torchvision.ops.SqueezeExcitation)]
    assert [g.channels for g in report.blocks] == widths

    code, out, err = cli(["inspect", str(path), "--model", "torchvision:mobilenet_v3_large", "--data", "synthetic",
                          "--limit", "2", "--input", "64"])
    assert code == 2 and err.count("\n") == 1 and "does not fit torchvision:mobilenet_v3_large" in err


@pytest.mark.parametrize("argv, expected", [
    (["count", "torchvision:efficientnet_b9"], "did you mean 'efficientnet_b"),
    (["count", "missing_file.py:build"], "no file 'missing_file.py'"),
    (["count", "torchvision:resnet18", "--ratio", "8"], "'ratio' is a build option of the zoo's models"),
    (["count", "se_resnet18", "--attention-class", "x.py:Gate"], "--attention-class names attention classes"),
    (["count", "torchvision:resnet18", "--attention-class", "torch.nn:Nope"], "torch.nn has no 'Nope'"),
    (["count", "torchvision:resnet18", "-o", "widht=2"], "torchvision:resnet18 refused its keywords"),
])
def test_bad_external_input_gives_one_line(argv, expected, cli):
    code, out, err = cli(argv)
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err + out, err
    assert expected in err


def test_without_timm_one_line_says_to_install_it(monkeypatch, cli):
    monkeypatch.setitem(sys.modules, "timm", None)  # import timm now raises ImportError
    code, _, err = cli(["count", "timm:resnet18"])
    assert code == 2 and err.strip() == "senet: error: timm is not installed: pip install timm"


def test_fvcore_agrees_on_the_conv_and_linear_macs_of_an_outside_model():
    pytest.importorskip("fvcore")
    report = senet_cli.count("torchvision:mobilenet_v3_small", input_size=64, references=["fvcore"])
    (fvcore,) = report.references
    assert fvcore.conv_linear_macs == report.macs  # all of our MACs are conv/linear; fvcore's share agrees


def test_a_zoo_model_reached_through_its_builder_counts_as_the_zoo_counts_it():
    """Two paths to one model: the zoo's own count (baseline: the plain backbone) and the outside-the-zoo
    count of `build_model` (attention found by class, baseline: pass-throughs) agree row by row."""
    outside = senet_cli.count("senet_cli.zoo:build_model", name="se_resnet18_cifar", input_size=32)
    zoo = senet_cli.count("se_resnet18_cifar")
    assert outside.input == zoo.input == (1, 3, 32, 32)
    assert [(r.name, r.params, r.macs, r.elementwise_ops, r.attention_params) for r in outside.blocks] == [
        (r.name, r.params, r.macs, r.elementwise_ops, r.attention_params) for r in zoo.blocks
    ]
    assert outside.baseline.params == zoo.baseline.params and outside.baseline.macs == zoo.baseline.macs
    assert outside.attention_modules == (("SqueezeExcitation", 8),)


def test_inspect_finds_a_users_gate_by_its_class(user_file, tmp_path, cli):
    spec = {"model": f"{user_file}:build", "attention": f"{user_file}:ChannelGate"}
    loader = importlib.util.spec_from_file_location("user_model_for_the_test", user_file)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    torch.manual_seed(0)
    path = tmp_path / "user.pth"
    torch.save(module.build().state_dict(), path)
    code, out, err = cli(["inspect", str(path), "--model", spec["model"], "--attention-class", spec["attention"],
                          "--data", "synthetic", "--limit", "4", "--input", "32", "--format", "json"])
    assert code == 0, err
    gates = json.loads(out)["blocks"]
    assert [(g["name"], g["gate"], g["channels"]) for g in gates] == [("2", "attn.gate", 16), ("3", "attn.gate", 16)]
    assert all(0.0 <= g["min"] <= g["max"] <= 1.0 for g in gates)


def test_build_model_takes_the_same_names_as_the_commands():
    """senet_cli.build_model builds a name outside the zoo as count() does (torchvision's own model)."""
    with torch.device("meta"):
        model = senet_cli.build_model("torchvision:efficientnet_b0", num_classes=10)
        reference = torchvision.models.efficientnet_b0(num_classes=10)
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in reference.parameters())
    assert model.classifier[1].out_features == 10
    with pytest.raises(senet_cli.SenetError, match="is a zoo model"):
        senet_cli.build_model("se_resnet18_cifar", attention_classes=["nets.py:Gate"])
