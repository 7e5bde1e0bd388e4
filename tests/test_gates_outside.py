"""Attention of models outside the zoo found by structure (its output is its input times a gate it
computed from that input), gates of the right kind and channels, "nothing to inspect", and partial
baselines (issue 21). Parameter counts are checked against sums over the modules computed here,
independently of senet's own walk."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch
from hand_gates import ExpandedGate, SoftmaxBranches, SqueezeGate  # tests/ is on sys.path: see tests/quick.py
from torch import nn

import senet_cli
from senet_cli.outside.build import find_attention
from senet_cli.outside.structure import probe
from senet_cli.zoo import skip_weight_init


class HandSiLU(nn.Module):
    """x * sigmoid(x): an activation (nothing reduced), not attention."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


class LayerScale(nn.Module):
    """x * gamma: a parameter, not computed from x."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.ones(channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma


class Residual(nn.Module):
    """x + f(x), with a broadcasting term: an add, not a product."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.fc(x.mean((2, 3), keepdim=True))


class BlockWithGate(nn.Module):
    """A block holding a gate on its conv's output: the block is not attention, its gate is."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.attn = SqueezeGate(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.attn(self.conv(x)))


def _meta(build):
    with torch.device("meta"), skip_weight_init():
        return build()


def test_structure_finds_gates_and_leaves_activations_layerscale_and_residuals():
    model = _meta(lambda: nn.Sequential(nn.Conv2d(3, 8, 3), BlockWithGate(8), ExpandedGate(), HandSiLU(),
                                        LayerScale(8), Residual(8), nn.SiLU()))
    found = find_attention(model, (), (1, 3, 16, 16))
    assert [(f.path, f.class_name, f.found_by) for f in found] == [
        ("1.attn", "SqueezeGate", "structure"), ("2", "ExpandedGate", "structure")]
    assert [(u.path, u.kind, u.channels) for f in found for u in f.uses] == [("gate", "channel", 8)] * 2
    assert all(f.role == "gate" and f.passes_through for f in found)


def test_a_spatial_gate_is_spatial_and_a_gate_over_both_is_channel_x_position():
    class Spatial(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.gate = nn.Sigmoid()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.gate(x.mean(1, keepdim=True))

    class Coord(nn.Module):  # CoordAttn's height gate: varies over C and H, constant over W
        def __init__(self) -> None:
            super().__init__()
            self.gate = nn.Sigmoid()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * self.gate(x.mean(3, keepdim=True))

    x = torch.empty(1, 8, 6, 5, device="meta")
    spatial, coord = probe(Spatial(), (x,), {}), probe(Coord(), (x,), {})
    assert spatial is not None and spatial.multiplies and spatial.gates[0].kind == "spatial"
    assert spatial.gates[0].channels == 1
    assert coord is not None and coord.gates[0].kind == "channel x position" and coord.gates[0].channels == 8


timm = pytest.importorskip("timm")


@pytest.mark.parametrize("reference, kwargs, channels", [
    ("timm.layers.squeeze_excite:SEModule", {"channels": 32}, 32),
    ("timm.layers.squeeze_excite:EffectiveSEModule", {"channels": 32}, 32),
    ("timm.layers.eca:EcaModule", {"channels": 32}, 32),
    ("timm.layers.eca:CecaModule", {"channels": 32}, 32),
    # timm 1.0.31's GatherExcite fails to build its mlp (ConvMlp gets act_layer twice): without it
    ("timm.layers.gather_excite:GatherExcite", {"channels": 32, "use_mlp": False}, 32),
    ("timm.layers.cbam:CbamModule", {"channels": 32}, None),
    ("timm.layers.global_context:GlobalContext", {"channels": 32, "fuse_add": False, "fuse_scale": True}, 32),
    ("timm.models._efficientnet_blocks:SqueezeExcite", {"in_chs": 32}, 32),
    ("torchvision.ops.misc:SqueezeExcitation", {"input_channels": 32, "squeeze_channels": 8}, 32),
])
def test_every_gate_class_of_timm_and_torchvision_multiplies_by_structure(reference, kwargs, channels):
    """Each class the table knows is also recognised by what it does, with its gate's kind and channels
    read from how the gate multiplies (ECA's [B, 1, C] gate: C channels)."""
    import importlib

    module_name, _, class_name = reference.partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    module = _meta(lambda: cls(**kwargs))
    seen = probe(module, (torch.empty(2, 32, 7, 7, device="meta"),), {})
    assert seen is not None and seen.multiplies
    if channels is None:  # CBAM: a channel gate, then a spatial one
        assert [(u.path, u.kind, u.channels) for u in seen.gates] == [("channel.gate", "channel", 32),
                                                                       ("spatial.gate", "spatial", 1)]
    else:
        assert [(u.kind, u.channels) for u in seen.gates] == [("channel", channels)]


def test_add_fusion_global_context_does_not_multiply():
    from timm.layers.global_context import GlobalContext

    module = _meta(lambda: GlobalContext(32, fuse_add=True, fuse_scale=False))
    seen = probe(module, (torch.empty(1, 32, 7, 7, device="meta"),), {})
    assert seen is not None and not seen.multiplies and seen.gates == ()


def _sum_params(model: nn.Module, class_name: str) -> tuple[int, int]:
    modules = [m for m in model.modules() if type(m).__name__ == class_name]
    return sum(p.numel() for m in modules for p in m.parameters()), len(modules)


@pytest.mark.slow
@pytest.mark.parametrize("name, class_name, qualified, count, params", [
    ("legacy_seresnet18", "SEModule", "timm.models.senet.SEModule", 8, None),
    ("hgnet_tiny", "EseModule", "timm.models.hgnet.EseModule", 5, 1_367_456),
])
def test_timm_models_outside_the_class_table_are_found_by_structure(name, class_name, qualified, count, params, cli):
    model = _meta(lambda: timm.create_model(name))
    expected, modules = _sum_params(model, class_name)
    assert modules == count and (params is None or expected == params)
    report = senet_cli.count(f"timm:{name}", input_size=64)
    assert report.attention_modules == ((class_name, count),)
    assert report.attention_total("params") == expected
    assert f"attention found by structure: {qualified} x{count}" in report.notes
    assert report.baseline is not None and report.baseline.params == report.params - expected
    code, out, err = cli(["count", f"timm:{name}", "--input", "64", "--format", "json"])
    assert code == 0, err
    found = json.loads(out)["attention_found"]
    assert len(found) == count and {f["found_by"] for f in found} == {"structure"}
    assert {f["class"] for f in found} == {qualified}


USER_FILE = '''
import torch
from torch import nn


class MyGate(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.fc = nn.Conv2d(channels, channels // 2, 1)
        self.fc2 = nn.Conv2d(channels // 2, channels, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.fc2(torch.relu(self.fc(x.mean((2, 3), keepdim=True)))))


def build(width=8, num_classes=10):
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), MyGate(width), nn.ReLU(), MyGate(width),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))
'''


@pytest.fixture
def mynet(tmp_path: Path, monkeypatch) -> Path:
    path = tmp_path / "mynet.py"
    path.write_text(textwrap.dedent(USER_FILE))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield path
    import sys

    sys.modules.pop("mynet", None)


def _gate_params(width: int) -> int:
    half = width // 2
    return width * half + half + half * width + width  # two 1x1 convs with biases (closed form)


def test_a_users_own_gate_is_found_by_structure_with_no_option(mynet):
    report = senet_cli.count(f"{mynet}:build", input_size=16, width=8)
    assert report.attention_modules == (("MyGate", 2),)
    assert report.attention_total("params") == 2 * _gate_params(8)
    assert any(note.startswith("attention found by structure: ") and "MyGate x2" in note for note in report.notes)


def test_a_file_and_a_module_spelling_name_the_same_class(mynet, cli):
    for reference in (f"{mynet}:MyGate", "mynet:MyGate"):
        report = senet_cli.count(f"{mynet}:build", input_size=16, attention_classes=[reference])
        assert report.attention_modules == (("MyGate", 2),), reference
        assert report.attention_found[0]["found_by"] == "class", reference
    code, out, err = cli(["count", f"{mynet}:build", "--attention-class", "torch.nn:Hardswish", "--input", "16"])
    assert code == 2 and err.count("\n") == 1
    assert "attention class torch.nn:Hardswish matches no module of" in err and "2 MyGate" in err


def test_inspect_reads_the_eca_gate_as_channels_not_positions(tmp_path, cli):
    """timm's ECA gate is [B, 1, C] before its view: C channel gates, one position each."""
    torch.manual_seed(0)
    model = timm.create_model("resnet10t", block_args={"attn_layer": "eca"})
    widths = [block.conv3.out_channels if hasattr(block, "conv3") else block.conv2.out_channels
              for block in model.modules() if type(block).__name__ in ("BasicBlock", "Bottleneck")]
    path = tmp_path / "eca.pth"
    torch.save(model.state_dict(), path)
    code, out, err = cli(["inspect", str(path), "--model", "timm:resnet10t", "-o", "block_args={'attn_layer': 'eca'}",
                          "--data", "synthetic", "--limit", "2", "--batch", "2", "--input", "64", "--format", "json"])
    assert code == 0, err
    gates = json.loads(out)["blocks"]
    assert [(g["kind"], g["channels"], g["positions"]) for g in gates] == [("channel", w, 1) for w in widths]


@pytest.mark.slow
def test_add_fusion_global_context_has_nothing_to_inspect_in_one_line(tmp_path, cli):
    torch.manual_seed(0)
    path = tmp_path / "gc.pth"
    torch.save(timm.create_model("gcresnet50t").state_dict(), path)
    code, out, err = cli(["inspect", str(path), "--model", "timm:gcresnet50t", "--data", "synthetic", "--limit", "2",
                          "--input", "64"])
    assert code == 2 and err.count("\n") == 1
    assert "no attention gates to inspect" in err and "16 GlobalContext" in err


@pytest.mark.slow
def test_sebotnet_baseline_removes_its_se_and_keeps_its_self_attention(cli):
    model = _meta(lambda: timm.create_model("sebotnet33ts_256"))
    se, se_count = _sum_params(model, "SEModule")
    attn, attn_count = _sum_params(model, "BottleneckAttn")
    assert (se_count, attn_count) == (6, 4)
    report = senet_cli.count("timm:sebotnet33ts_256", input_size=256)
    assert report.attention_total("params") == se + attn
    assert report.baseline is not None and report.baseline.params == report.params - se
    assert report.baseline.model == "timm:sebotnet33ts_256 without its removable attention"
    assert any("kept: 4 BottleneckAttn" in note for note in report.notes)
    assert any("attention params of BottleneckAttn include the convolution" in note for note in report.notes)
    code, out, err = cli(["count", "timm:sebotnet33ts_256", "--input", "256", "--format", "json"])
    assert code == 0, err
    found = json.loads(out)["attention_found"]
    removed = {f["class"].rpartition(".")[2]: f["removed_in_baseline"] for f in found}
    assert removed == {"SEModule": True, "BottleneckAttn": False}


def test_timms_layerscale_droppath_and_hand_written_activations_are_not_gates():
    from timm.layers import DropPath, LayerScale2d
    from timm.layers import LayerScale as TimmLayerScale

    tokens, maps = torch.empty(2, 16, 32, device="meta"), torch.empty(2, 32, 7, 7, device="meta")
    builds = ((lambda: TimmLayerScale(32), tokens), (lambda: LayerScale2d(32), maps), (HandSiLU, maps),
              (lambda: DropPath(0.2), maps))  # x * a per-sample draw: made from x's shape, not its values
    for build, x in builds:
        module = _meta(build)
        seen = probe(module, (x,), {})
        assert seen is not None and not seen.multiplies and seen.gates == (), type(module).__name__


class HandRmsNorm(nn.Module):
    """x * rsqrt(mean(x ** 2)) * weight: a normalisation's factor, computed from x through a reduction
    but neither learned nor squashed (gemma4's and deepseek's ViTs were counted with 90 of these as
    attention)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight


class ParameterFreeGate(nn.Module):
    """x * sigmoid(mean over the map): gather-excite without parameters (GE-theta-minus), still a gate."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x.mean((2, 3), keepdim=True))


@pytest.mark.slow
def test_a_normalisations_factor_is_no_gate_and_a_parameter_free_squashed_gate_is():
    from timm.layers import RmsNorm

    tokens, maps = torch.empty(2, 16, 32, device="meta"), torch.empty(2, 32, 7, 7, device="meta")
    for build in (lambda: HandRmsNorm(32), lambda: RmsNorm(32)):
        seen = probe(_meta(build), (tokens,), {})
        assert seen is not None and not seen.multiplies and seen.gates == ()
    seen = probe(ParameterFreeGate(), (maps,), {})
    assert seen is not None and seen.multiplies
    report = senet_cli.count("timm:gemma4_vit_167m")
    assert report.attention_total("params") == 0


def test_a_gate_that_changes_the_shape_is_no_pass_through_attention():
    """gMLP's spatial gating unit multiplies half its channels by a map computed from the other half: its
    output has half the input's channels, so nn.Identity cannot stand in for it. Taking it for attention
    made the baseline fail and `senet count timm:gmlp_*` refuse (the all-models sweep caught it)."""
    from timm.models.mlp_mixer import SpatialGatingUnit

    module = _meta(lambda: SpatialGatingUnit(64, 16))
    seen = probe(module, (torch.empty(2, 16, 64, device="meta"),), {})
    assert seen is not None and not seen.multiplies
    report = senet_cli.count("timm:gmlp_ti16_224")
    assert report.params == sum(p.numel() for p in timm.create_model("gmlp_ti16_224").parameters())
    assert report.attention_total("params") == 0


@pytest.mark.slow
@pytest.mark.parametrize("name, class_name, count", [
    ("rexnet_100", "SEModule", 13),
    ("regnety_002", "SEModule", 13),
    ("efficientnet_b0", "SqueezeExcite", 16),
])
def test_the_se_of_timms_rexnet_regnety_and_efficientnet_is_found_whole(name, class_name, count):
    model = _meta(lambda: timm.create_model(name))
    expected, modules = _sum_params(model, class_name)
    report = senet_cli.count(f"timm:{name}", input_size=64)
    assert modules == count and report.attention_modules == ((class_name, count),)
    assert report.attention_total("params") == expected
    assert report.baseline is not None and report.baseline.params == report.params - expected


@pytest.mark.parametrize("class_name", ["CoordAttn", "SimpleCoordAttn", "EfficientLocalAttn", "StripAttn"])
def test_coordinate_gates_vary_over_channels_and_positions(class_name):
    """The coord family's gate multiplies per channel and position; SimpleCoordAttn's and StripAttn's has
    the features' very shape (`gate(a_h + a_w)`) but was computed from strip-pooled maps: a gate still."""
    from timm.layers import coord_attn

    module = _meta(lambda: getattr(coord_attn, class_name)(32))
    seen = probe(module, (torch.empty(1, 32, 8, 6, device="meta"),), {})
    assert seen is not None and seen.multiplies
    assert [(u.path, u.kind, u.channels) for u in seen.gates] == [("gate", "channel x position", 32)]


class Branches(nn.Module):
    """SK written by hand: two branch convs, softmax weights computed from their sum, weighed sum."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.paths = nn.ModuleList([nn.Conv2d(channels, channels, k, padding=k // 2) for k in (1, 3)])
        self.fc = nn.Conv2d(channels, 2 * channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = torch.stack([path(x) for path in self.paths], dim=1)  # [B, 2, C, H, W]
        weights = self.fc(branches.sum(1).mean((2, 3), keepdim=True)).view(x.shape[0], 2, -1, 1, 1).softmax(1)
        return (branches * weights).sum(dim=1)


def test_the_branch_form_is_found_as_replacing_a_conv():
    model = _meta(lambda: nn.Sequential(nn.Conv2d(3, 8, 3), Branches(8), nn.ReLU()))
    (found,) = find_attention(model, (), (2, 3, 16, 16))
    assert (found.path, found.found_by, found.role, found.passes_through) == ("1", "structure", "conv", False)


def test_the_branch_forms_weights_are_its_gates_for_inspect():
    """A module found in the branch form names the submodule returning its weights, so inspect hooks it
    (M*C channel gates); the functional softmax of `Branches` has none to name."""
    model = _meta(lambda: nn.Sequential(nn.Conv2d(3, 8, 3), SoftmaxBranches(8), Branches(8)))
    found = find_attention(model, (), (2, 3, 16, 16))
    assert [(f.path, f.role, f.gates) for f in found] == [("1", "conv", ("attn",)), ("2", "conv", ())]


@pytest.mark.slow
def test_timms_sk_gates_are_its_branch_weights(tmp_path, cli):
    """timm's SelectiveKernel: `attn` returns the softmax over its two branches, [B, 2, C, 1, 1]: each SK
    module is one entry of 2*C channel gates (it was refused as having no gate before the sweep)."""
    torch.manual_seed(0)
    model = timm.create_model("skresnet18")
    widths = [len(m.paths) * m.paths[0].conv.out_channels for m in model.modules()
              if type(m).__name__ == "SelectiveKernel"]
    assert len(widths) == 8
    path = tmp_path / "sk.pth"
    torch.save(model.state_dict(), path)
    code, out, err = cli(["inspect", str(path), "--model", "timm:skresnet18", "--data", "synthetic", "--limit", "2",
                          "--batch", "2", "--input", "64", "--format", "json"])
    assert code == 0, err
    gates = json.loads(out)["blocks"]
    assert [(g["gate"], g["kind"], g["channels"], g["positions"]) for g in gates] == [
        ("conv1.attn", "channel", w, 1) for w in widths]
    assert all(0 <= g["min"] and g["max"] <= 1 for g in gates)  # a softmax: binned over [0, 1]



def test_a_module_holding_a_branch_form_is_not_one_and_its_gate_is_found():
    """A unit of a user's model (conv, a gate, timm's SelectiveKernel) returns the SK's branch sum:
    the unit itself is no conv-replacing module (its SK is, by class), and its gate is found."""
    from timm.layers import SelectiveKernel

    class Unit(nn.Module):
        def __init__(self, channels: int) -> None:
            super().__init__()
            self.conv = nn.Conv2d(channels, 16, 3, padding=1)
            self.gate = SqueezeGate(16)
            self.sk = SelectiveKernel(16, 16)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.sk(self.gate(self.conv(x)))

    model = _meta(lambda: nn.Sequential(Unit(8), Unit(16))).eval()
    found = find_attention(model, (), (1, 8, 16, 16))
    assert [(f.path, f.class_name, f.role, f.found_by) for f in found] == [
        ("0.gate", "SqueezeGate", "gate", "structure"), ("0.sk", "SelectiveKernel", "conv", "class"),
        ("1.gate", "SqueezeGate", "gate", "structure"), ("1.sk", "SelectiveKernel", "conv", "class")]

@pytest.mark.parametrize("build", [lambda: __import__("timm").layers.SplitAttn(32),
                                   lambda: __import__("timm").layers.SelectiveKernel(32, 32)])
def test_timms_sk_and_splitattn_weigh_their_branches(build):
    seen = probe(_meta(build), (torch.empty(2, 32, 8, 8, device="meta"),), {})
    assert seen is not None and seen.branches and not seen.multiplies


@pytest.mark.slow
def test_self_attention_only_has_nothing_to_inspect_and_the_refusal_names_it(tmp_path, cli):
    """botnet26t_256's attention is all BottleneckAttn (self-attention replacing a conv): no gate scales
    its features, so inspect refuses in one line and says which modules it found without one."""
    torch.manual_seed(0)
    model = timm.create_model("botnet26t_256")
    _, count = _sum_params(model, "BottleneckAttn")
    path = tmp_path / "bot.pth"
    torch.save(model.state_dict(), path)
    code, out, err = cli(["inspect", str(path), "--model", "timm:botnet26t_256", "--data", "synthetic", "--limit", "2",
                          "--batch", "2"])
    assert code == 2 and err.count("\n") == 1, err
    assert "no attention gates to inspect" in err and f"its {count} BottleneckAttn replace a conv" in err
