"""Checkpoint layouts users hold (checkpoint/layouts/): each recognised from a raw `torch.save(state_dict)`
alone, mapped, loaded strictly, and computing what the original code computes.

Weights in each foreign layout are generated from our key tables (`from_senet` of a zoo model with
random weights); the original modules are reproduced here in a few lines of our own, from the public
key names and shapes (Cadene's SENet, the tutorials' CIFAR SENet-18, senet.pytorch's SE-ResNet), and
must load those weights strictly and give the same logits. timm's own models are a second, independent
source where timm is installed (its SK ResNets, its legacy_* Cadene ports, its seresnet/senet154).
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from senet_cli import build_model, load_checkpoint
from senet_cli.checkpoint.convert import CONVERT_TARGETS, convert
from senet_cli.checkpoint.layouts import layouts, recognise
from senet_cli.checkpoint.loading import Checkpoint
from senet_cli.checkpoint.recognise import materialize, resolve
from senet_cli.errors import SenetError
from senet_cli.zoo import build_on_meta, make_config


def _random_stats(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every BN non-trivial statistics and affine terms, so a BN key mixed up changes the logits."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.BatchNorm2d):
                for tensor, low, high in ((module.running_mean, -0.1, 0.1), (module.running_var, 0.5, 1.5),
                                          (module.weight, 0.5, 1.5), (module.bias, -0.1, 0.1)):
                    tensor.copy_(torch.rand(tensor.shape, generator=generator) * (high - low) + low)
    return model.eval()


def _foreign(layout: str, name: str, **options) -> tuple[nn.Module, dict[str, torch.Tensor]]:
    """Our model with random weights, and the same weights in `layout`'s key names (its key table)."""
    torch.manual_seed(0)
    ours = _random_stats(build_model(name, **options))
    return ours, layouts().get(layout).from_senet(ours.senet_config, ours.state_dict())


def _load_raw(state: dict[str, torch.Tensor], tmp_path, name: str = "raw.pth") -> Checkpoint:
    path = tmp_path / name
    torch.save(state, path)  # a raw torch.save(model.state_dict()): no container, no metadata
    return load_checkpoint(path)


def _same_logits(first: nn.Module, second: nn.Module, size: int) -> None:
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        a, b = first.eval()(x), second.eval()(x)
    assert torch.allclose(a, b, rtol=1e-4, atol=1e-5), (a - b).abs().max()


# --- the originals, reproduced from their public key names and shapes ----------------------------------


class TutorialSEBlock(nn.Module):
    """The tutorials' CIFAR SENet block (kuangliu/pytorch-cifar BasicBlock): SE convs held by the block."""

    def __init__(self, inp: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inp, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or inp != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(inp, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
        self.fc1 = nn.Conv2d(planes, planes // 16, 1)
        self.fc2 = nn.Conv2d(planes // 16, planes, 1)

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        gate = torch.sigmoid(self.fc2(F.relu(self.fc1(F.avg_pool2d(out, out.size(2))))))
        return F.relu(out * gate + self.shortcut(x))


class TutorialSENet(nn.Module):
    def __init__(self, blocks=(2, 2, 2, 2), num_classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        inp = 64
        for stage, (planes, count) in enumerate(zip((64, 128, 256, 512), blocks, strict=True), 1):
            units = []
            for index in range(count):
                units.append(TutorialSEBlock(inp, planes, 2 if stage > 1 and index == 0 else 1))
                inp = planes
            setattr(self, f"layer{stage}", nn.Sequential(*units))
        self.linear = nn.Linear(512, num_classes)

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer4(self.layer3(self.layer2(self.layer1(out))))
        return self.linear(F.avg_pool2d(out, 4).flatten(1))


class CadeneSE(nn.Module):
    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1)

    def forward(self, x):
        return x * torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean((2, 3), keepdim=True)))))


class CadeneBottleneck(nn.Module):
    """Cadene's three bottlenecks: "resnet" strides the first 1x1; "resnext" and "senet154" the 3x3;
    SENet-154's first 1x1 is half the 3x3's width."""

    def __init__(self, kind: str, inp: int, planes: int, groups: int, stride: int, downsample) -> None:
        super().__init__()
        out = planes * 4
        width = {"resnet": planes, "resnext": math.floor(planes * 4 / 64) * groups, "senet154": planes * 4}[kind]
        first = planes * 2 if kind == "senet154" else width
        stride1, stride3 = (stride, 1) if kind == "resnet" else (1, stride)
        self.conv1 = nn.Conv2d(inp, first, 1, stride1, bias=False)
        self.bn1 = nn.BatchNorm2d(first)
        self.conv2 = nn.Conv2d(first, width, 3, stride3, 1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.se_module = CadeneSE(out)
        self.downsample = downsample

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        residual = x if self.downsample is None else self.downsample(x)
        return F.relu(self.se_module(out) + residual)


class CadeneSENet(nn.Module):
    """Cadene's SENet: `layer0` stem with Caffe's ceil-mode pool, `last_linear`. Its 7x7 average pool
    is taken as the global pool (the same at 224 inputs), so the test can run at 64."""

    def __init__(self, kind: str, blocks, groups: int, num_classes: int = 10) -> None:
        super().__init__()
        deep = kind == "senet154"
        if deep:
            stem = []
            for index, (cin, cout, stride) in enumerate(((3, 64, 2), (64, 64, 1), (64, 128, 1)), 1):
                stem += [(f"conv{index}", nn.Conv2d(cin, cout, 3, stride, 1, bias=False)),
                         (f"bn{index}", nn.BatchNorm2d(cout)), (f"relu{index}", nn.ReLU())]
        else:
            stem = [("conv1", nn.Conv2d(3, 64, 7, 2, 3, bias=False)), ("bn1", nn.BatchNorm2d(64)), ("relu1", nn.ReLU())]
        self.layer0 = nn.Sequential(OrderedDict([*stem, ("pool", nn.MaxPool2d(3, 2, ceil_mode=True))]))
        inp = 128 if deep else 64
        for stage, (planes, count) in enumerate(zip((64, 128, 256, 512), blocks, strict=True), 1):
            stride, kernel = (1, 1) if stage == 1 else (2, 3 if deep else 1)
            units = []
            for index in range(count):
                downsample = None
                if index == 0 and (stride != 1 or inp != planes * 4):
                    downsample = nn.Sequential(nn.Conv2d(inp, planes * 4, kernel, stride, kernel // 2, bias=False),
                                               nn.BatchNorm2d(planes * 4))
                units.append(CadeneBottleneck(kind, inp, planes, groups, stride if index == 0 else 1, downsample))
                inp = planes * 4
            setattr(self, f"layer{stage}", nn.Sequential(*units))
        self.last_linear = nn.Linear(2048, num_classes)

    def forward(self, x):
        x = self.layer4(self.layer3(self.layer2(self.layer1(self.layer0(x)))))
        return self.last_linear(x.mean((2, 3)))  # dropout (SENet-154) is the identity in eval mode


class MoskomuleSE(nn.Module):
    """senet.pytorch's SELayer: Linear layers without bias in a Sequential `fc`."""

    def __init__(self, channels: int, reduction: int = 16) -> None:
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(channels, channels // reduction, bias=False), nn.ReLU(),
                                nn.Linear(channels // reduction, channels, bias=False), nn.Sigmoid())

    def forward(self, x):
        return x * self.fc(x.mean((2, 3)))[:, :, None, None]


def moskomule_se_resnet18(num_classes: int = 10) -> nn.Module:
    """torchvision's ResNet-18 with senet.pytorch's SE after each block's second BN."""
    from torchvision.models import resnet

    class Block(resnet.BasicBlock):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.se = MoskomuleSE(self.conv2.out_channels)

        def forward(self, x):
            out = self.se(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))))
            return self.relu(out + (x if self.downsample is None else self.downsample(x)))

    return resnet.ResNet(Block, [2, 2, 2, 2], num_classes=num_classes)


# --- zoo: the models these layouts need --------------------------------------------------------------


def _closed_form_params(blocks, groups: int, deep: bool, num_classes: int = 1000) -> int:
    """SE-ResNeXt / SENet-154 parameters from the architecture alone (SENet paper, appendix; Cadene)."""
    def conv_bn(cin: int, cout: int, k: int, g: int = 1) -> int:
        return cin // g * cout * k * k + 2 * cout

    total = (conv_bn(3, 64, 3) + conv_bn(64, 64, 3) + conv_bn(64, 128, 3)) if deep else conv_bn(3, 64, 7)
    inp = 128 if deep else 64
    for stage, (planes, count) in enumerate(zip((64, 128, 256, 512), blocks, strict=True), 1):
        out, width = planes * 4, planes * 4 // 64 * groups
        first = width // 2 if deep else width
        for index in range(count):
            total += conv_bn(inp, first, 1) + conv_bn(first, width, 3, groups) + conv_bn(width, out, 1)
            total += 2 * out * (out // 16) + out // 16 + out  # SE: two 1x1 convs with bias
            if index == 0:
                total += conv_bn(inp, out, 3 if deep and stage > 1 else 1)
            inp = out
    return total + 2048 * num_classes + num_classes


@pytest.mark.parametrize("name, blocks, groups, deep, expected", [
    ("se_resnext101_32x4d", (3, 4, 23, 3), 32, False, 48_955_416),
    ("senet154", (3, 8, 36, 3), 64, True, 115_088_984),
    ("se_resnet50", (3, 4, 6, 3), 1, False, 28_088_024),  # groups 1, width 64: the ResNet bottleneck
])
def test_new_zoo_models_have_the_papers_parameter_counts(name, blocks, groups, deep, expected):
    ours = sum(p.numel() for p in build_on_meta(make_config(name)).parameters())
    with torch.device("meta"):
        original = CadeneSENet("senet154" if deep else "resnext" if groups > 1 else "resnet", blocks, groups, 1000)
    reference = sum(p.numel() for p in original.parameters())
    formula = _closed_form_params(blocks, groups, deep) if groups > 1 else expected
    assert ours == reference == formula == expected


def test_senet154_is_timms_senet154_key_for_key():
    timm = pytest.importorskip("timm")
    with torch.device("meta"):
        theirs = timm.create_model("senet154").state_dict()
        ours = build_model("senet154").state_dict()
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in theirs.items()}


def test_the_caffe_stem_pool_keeps_56x56_at_224_but_moves_the_windows():
    torch.manual_seed(0)
    caffe = build_model("resnet50", variant="v1-caffe").maxpool
    torchvision_pool = build_model("resnet50", variant="v1").maxpool
    stem_output = torch.randn(1, 2, 112, 112)  # a 224 input after the stride-2 stem conv
    a, b = caffe(stem_output), torchvision_pool(stem_output)
    assert a.shape == b.shape == (1, 2, 56, 56)
    assert not torch.equal(a, b)  # same size, other windows: the logits differ without the option
    assert torch.equal(a[..., :-1, :-1], F.max_pool2d(stem_output, 3, 2)[..., :55, :55])


# --- each layout: detected from a raw file, strict load, equal logits -----------------------------------


def test_tutorial_cifar_senet18_is_se_resnet18_cifar(tmp_path):
    ours, foreign = _foreign("cifar-tutorial", "se_resnet18_cifar")
    original = TutorialSENet()
    original.load_state_dict(foreign, strict=True)  # our table gives exactly the original's keys and shapes
    assert sum(p.numel() for p in original.parameters()) == 11_263_042
    checkpoint = _load_raw(foreign, tmp_path)
    resolved = resolve(checkpoint)
    assert resolved.layout == "cifar-tutorial" and resolved.config == make_config("se_resnet18_cifar")
    _same_logits(materialize(resolved), original, 32)


def test_tutorial_pre_activation_senet_is_recognised_and_refused(tmp_path):
    state = TutorialSENet().state_dict()
    state["layer2.0.bn1.weight"] = torch.ones(64)  # PreActBlock: the first BN is as wide as the block's input
    del state["layer2.0.shortcut.1.weight"]
    with pytest.raises(SenetError, match="pre-activation"):
        resolve(_load_raw(state, tmp_path))


@pytest.mark.slow  # full-size ResNet-50s, Cadene's and ours, run for real
@pytest.mark.parametrize("name, kind, blocks, groups, variant", [
    ("se_resnet50", "resnet", (3, 4, 6, 3), 1, "v1-caffe"),
    ("se_resnext50_32x4d", "resnext", (3, 4, 6, 3), 32, "v1.5-caffe"),
])
def test_cadene_senets_compute_what_cadenes_code_computes(name, kind, blocks, groups, variant, tmp_path):
    ours, foreign = _foreign("cadene", name, variant=variant, num_classes=10)
    original = CadeneSENet(kind, blocks, groups)
    original.load_state_dict(foreign, strict=True)
    checkpoint = _load_raw(foreign, tmp_path)
    resolved = resolve(checkpoint)
    assert resolved.layout == "cadene" and resolved.config == make_config(name, variant=variant, num_classes=10)
    _same_logits(materialize(resolved), original, 64)


@pytest.mark.parametrize("name, kind, blocks, groups", [
    ("senet154", "senet154", (3, 8, 36, 3), 64),
    ("se_resnext101_32x4d", "resnext", (3, 4, 23, 3), 32),
    ("se_resnet152", "resnet", (3, 8, 36, 3), 1),
])
def test_big_cadene_layouts_match_key_for_key_on_meta(name, kind, blocks, groups):
    variant = "v1-caffe" if kind == "resnet" else "v1.5-caffe"
    config = make_config(name, variant=variant)
    foreign = layouts().get("cadene").from_senet(config, build_on_meta(config).state_dict())
    with torch.device("meta"):
        original = CadeneSENet(kind, blocks, groups, 1000).state_dict()
    assert {k: tuple(v.shape) for k, v in foreign.items()} == {k: tuple(v.shape) for k, v in original.items()}
    resolved = resolve(Checkpoint(path=f"{name}.pth", format="torch", state_dict=original))
    assert resolved.layout == "cadene" and resolved.config == config


def test_senet_pytorch_linear_se_is_se_resnet_without_bias(tmp_path):
    ours, foreign = _foreign("moskomule", "se_resnet18", bias=False, num_classes=10)
    original = moskomule_se_resnet18()
    original.load_state_dict(foreign, strict=True)
    checkpoint = _load_raw(foreign, tmp_path)
    resolved = resolve(checkpoint)
    assert resolved.layout == "moskomule"
    assert resolved.config == make_config("se_resnet18", bias=False, num_classes=10)
    _same_logits(materialize(resolved), original, 64)


@pytest.mark.slow  # timm's SK ResNets and ours, full size, run for real
@pytest.mark.parametrize("timm_name, ours, options", [
    ("skresnet18", "sk_resnet18", {"ratio": 8, "min_channels": 16, "split_input": True}),
    ("skresnext50_32x4d", "sk_resnext50_32x4d", {}),
])
def test_timm_sk_resnets_from_timms_own_models(timm_name, ours, options, tmp_path):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    original = _random_stats(timm.create_model(timm_name, num_classes=10))
    checkpoint = _load_raw(original.state_dict(), tmp_path)
    resolved = resolve(checkpoint)
    assert resolved.layout == "timm-sk" and resolved.config == make_config(ours, num_classes=10, **options)
    _same_logits(materialize(resolved), original, 64)
    # and our table writes back exactly timm's keys
    written = layouts().get("timm-sk").from_senet(resolved.config, resolved.state)
    assert set(written) == set(original.state_dict())


def test_timm_sk34_parameter_count_and_keys_on_meta():
    timm = pytest.importorskip("timm")
    with torch.device("meta"):
        theirs = timm.create_model("skresnet34").state_dict()
    config = make_config("sk_resnet34", ratio=8, min_channels=16, split_input=True)
    ours = layouts().get("timm-sk").from_senet(config, build_on_meta(config).state_dict())
    assert {k: tuple(v.shape) for k, v in ours.items()} == {k: tuple(v.shape) for k, v in theirs.items()}


@pytest.mark.slow  # timm's full-size legacy SENets and ours, run for real
@pytest.mark.parametrize("timm_name", ["legacy_seresnet50", "legacy_seresnext50_32x4d"])
def test_timms_legacy_cadene_ports_are_recognised_with_equal_logits(timm_name, tmp_path):
    timm = pytest.importorskip("timm")
    torch.manual_seed(0)
    original = _random_stats(timm.create_model(timm_name, num_classes=10))
    checkpoint = _load_raw(original.state_dict(), tmp_path)
    resolved = resolve(checkpoint)
    assert resolved.layout == "cadene"
    _same_logits(materialize(resolved), original, 64)


@pytest.mark.parametrize("name", ["se_resnet18_cifar", "se_resnet50", "sk_resnet18", "sk_resnext50_32x4d",
                                  "cbam_resnet50", "senet154", "se_mobilenet_v2"])
def test_no_layout_claims_our_own_keys(name):
    assert recognise({k: tuple(v.shape) for k, v in build_on_meta(make_config(name)).state_dict().items()}) is None


def test_each_foreign_layout_is_claimed_by_exactly_one_layout():
    cases = [("cifar-tutorial", "se_resnet18_cifar", {}), ("moskomule", "se_resnet50", {"bias": False}),
             ("cadene", "se_resnet50", {"variant": "v1-caffe"}),
             ("timm-sk", "sk_resnet18", {"ratio": 8, "min_channels": 16, "split_input": True})]
    for layout, name, options in cases:
        config = make_config(name, **options)
        foreign = layouts().get(layout).from_senet(config, build_on_meta(config).state_dict())
        assert recognise({k: tuple(v.shape) for k, v in foreign.items()}).name == layout  # raises on overlap


# --- senet convert -----------------------------------------------------------------------------------


@pytest.mark.slow  # a full-size SE-ResNeXt-50 converted, loaded into timm's and run
def test_convert_writes_our_layout_with_metadata_and_back_to_timms(tmp_path):
    ours, foreign = _foreign("cadene", "se_resnext50_32x4d", variant="v1.5-caffe", num_classes=10)
    torch.save(foreign, tmp_path / "cadene.pth")
    report = convert(tmp_path / "cadene.pth", tmp_path / "ours.safetensors")
    assert report.read_layout == "cadene" and report.written_as == "senet" and report.format == "safetensors"
    assert report.parameters == sum(p.numel() for p in ours.parameters())
    written = load_checkpoint(tmp_path / "ours.safetensors")
    assert written.metadata["model"] == "se_resnext50_32x4d" and set(written.state_dict) == set(ours.state_dict())
    assert resolve(written).source == "metadata" and resolve(written).layout is None
    with pytest.raises(SenetError, match="already exists"):
        convert(tmp_path / "cadene.pth", tmp_path / "ours.safetensors")
    back = convert(tmp_path / "ours.safetensors", tmp_path / "timm.pth", to="timm")
    assert back.written_as == "legacy_seresnext50_32x4d"
    again = torch.load(tmp_path / "timm.pth", weights_only=True)["state_dict"]
    assert set(again) == set(foreign) and all(torch.equal(again[k], foreign[k]) for k in foreign)
    read_back = resolve(load_checkpoint(tmp_path / "timm.pth"))
    assert read_back.config == back.config and read_back.layout == "cadene"
    _same_logits(materialize(read_back), ours, 64)


def test_convert_to_timm_where_timm_has_the_model_and_refuses_elsewhere(tmp_path):
    timm = pytest.importorskip("timm")
    model = build_model("se_resnet50", num_classes=10)
    torch.save(model.state_dict(), tmp_path / "se50.pth")
    report = convert(tmp_path / "se50.pth", tmp_path / "timm.pth", to="timm")
    with torch.device("meta"):
        theirs = timm.create_model(report.written_as, num_classes=10).state_dict()
    written = torch.load(tmp_path / "timm.pth", weights_only=True)["state_dict"]
    assert report.written_as == "seresnet50" and set(written) == set(theirs)
    torch.save(build_model("se_resnet18_cifar").state_dict(), tmp_path / "cifar.pth")
    with pytest.raises(SenetError, match="no timm model computes se_resnet18_cifar.*skresnet18"):
        convert(tmp_path / "cifar.pth", tmp_path / "x.pth", to="timm")
    assert not (tmp_path / "x.pth").exists()
    from senet_cli.cli.convert_cmd import Target

    assert tuple(member.value for member in Target) == CONVERT_TARGETS == ("senet", "timm")


def test_convert_cli_one_line_errors_and_inspect_of_the_raw_file(tmp_path, cli):
    ours, foreign = _foreign("cifar-tutorial", "se_resnet18_cifar")
    torch.save(foreign, tmp_path / "tutorial.pth")
    source, out = str(tmp_path / "tutorial.pth"), str(tmp_path / "out.pth")
    code, stdout, _ = cli(["convert", source, out])
    assert code == 0 and "cifar-tutorial's layout" in stdout
    code, stdout, _ = cli(["convert", source, str(tmp_path / "out.safetensors"), "--format", "json"])
    assert code == 0 and '"read_layout": "cifar-tutorial"' in stdout and '"format": "safetensors"' in stdout
    code, _, err = cli(["convert", source, out, "--to", "timm"])
    assert code == 2 and len(err.strip().splitlines()) == 1 and "--force" in err
    code, _, err = cli(["convert", source, str(tmp_path / "t.pth"), "--to", "timm"])
    assert code == 2 and "--to timm cannot write it" in err and len(err.strip().splitlines()) == 1
    code, stdout, err = cli(["inspect", source, "--data", "synthetic", "--limit", "2", "--format", "json"])
    assert code == 0, err
    assert '"layout": "cifar-tutorial"' in stdout


@pytest.mark.parametrize("name, options", [
    ("sk_resnet18", {"ratio": 8, "min_channels": 16, "split_input": True}),  # timm's skresnet18, in our keys
    ("sk_resnet50", {"min_channels": 8, "split_input": True}),  # timm's skresnet50
    ("sk_resnext50_32x4d", {}),
])
def test_our_own_sk_checkpoints_are_detected_with_timms_options(name, options):
    from senet_cli.checkpoint.recognise import detect

    config = make_config(name, **options)
    assert detect({k: tuple(v.shape) for k, v in build_on_meta(config).state_dict().items()}).config == config


def test_convert_checks_its_destination_before_reading_and_writes_the_usual_mode(tmp_path, cli):
    """DST is checked as --output is (#14): a known extension, a writable folder, no existing file
    without --force, all before the source is read; the file gets 0o666 less the umask, also when
    safetensors writes it and when --force replaces a file."""
    torch.save(build_model("se_resnet18_cifar").state_dict(), tmp_path / "raw.pth")
    source = str(tmp_path / "raw.pth")
    code, _, err = cli(["convert", source, str(tmp_path / "out.xlsx")])
    assert code == 2 and ".safetensors .pth" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli(["convert", str(tmp_path / "missing.pth"), str(tmp_path / "no" / "out.pth")])
    assert code == 2 and "missing.pth" not in err  # the destination failed first
    mask = os.umask(0o022)
    os.umask(mask)
    for _ in range(2):
        code, _, err = cli(["convert", source, str(tmp_path / "out.safetensors"), "--force"])
        assert code == 0, err
        assert (tmp_path / "out.safetensors").stat().st_mode & 0o777 == 0o666 & ~mask
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.safetensors", "raw.pth"]  # no temporary left
