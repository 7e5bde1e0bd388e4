"""The papers' official checkpoint layouts (senet_cli/checkpoint/layouts/official_*.py): each is recognised
from a raw `torch.save(model.state_dict())` in its exact key names and shapes, maps strictly onto
its zoo model, and, where the official module is reproduced here in a few lines of our own (from
the papers' equations and the official key tables), gives the same logits. Also: placement "inner"
(the official SimAM and Coordinate attention positions) and BAM's one gate per module in `inspect`."""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Callable

import pytest
import torch
from torch import nn
from torchvision.models import mobilenetv2, resnet

from senet_cli import build_model, inspect, load_checkpoint, save_checkpoint
from senet_cli.attention.bam import BAM
from senet_cli.checkpoint.convert import convert
from senet_cli.checkpoint.layouts import Mapped, layouts, recognise
from senet_cli.checkpoint.recognise import materialize, resolve
from senet_cli.errors import ArchitectureError, OptionError
from senet_cli.zoo import build_from_config

# --- reference modules, written from the papers and the official key tables ----------------------


def z_pool(x: torch.Tensor) -> torch.Tensor:
    return torch.cat((x.max(1, keepdim=True).values, x.mean(1, keepdim=True)), dim=1)


class RotatedGate(nn.Module):
    """One Triplet attention branch: Z-pool, 7x7 conv 2->1 + BN, sigmoid; its conv+BN pair under `inner`."""

    def __init__(self, inner: str) -> None:
        super().__init__()
        pair = nn.Module()
        pair.conv = nn.Conv2d(2, 1, 7, padding=3, bias=False)
        pair.bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01)
        self.inner = inner
        setattr(self, inner, pair)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pair = getattr(self, self.inner)
        return x * torch.sigmoid(pair.bn(pair.conv(z_pool(x))))


class TripletReference(nn.Module):
    """The official module's three branches, spelled as MODELS/ (ChannelGateH...) or as the root file."""

    def __init__(self, names: tuple[str, str, str], inner: str) -> None:
        super().__init__()
        self.names = names
        for name in names:
            setattr(self, name, RotatedGate(inner))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        over_h, over_w, spatial = (getattr(self, name) for name in self.names)
        first = over_h(x.permute(0, 2, 1, 3)).permute(0, 2, 1, 3)
        second = over_w(x.permute(0, 3, 2, 1)).permute(0, 3, 2, 1)
        return (spatial(x) + first + second) / 3


class SRMReference(nn.Module):
    """SRM (paper eq. 1-5) with the official raw channel-wise FC `cfc` [C, 2] and a BatchNorm2d."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.cfc = nn.Parameter(torch.zeros(channels, 2))
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(2)
        style = torch.stack((flat.mean(2), flat.std(2)), dim=2)  # [B, C, 2]
        z = (style * self.cfc).sum(2)[:, :, None, None]
        return x * torch.sigmoid(self.bn(z))


class SimAMReference(nn.Module):
    """SimAM's closed form: x * sigmoid((x - mu)^2 / (4 (var + lambda)) + 0.5), var over n = HW - 1."""

    def __init__(self, e_lambda: float) -> None:
        super().__init__()
        self.e_lambda = e_lambda

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[2] * x.shape[3] - 1
        d = (x - x.mean((2, 3), keepdim=True)) ** 2
        return x * torch.sigmoid(d / (4 * (d.sum((2, 3), keepdim=True) / n + self.e_lambda)) + 0.5)


class ECAReference(nn.Module):
    """ECA: a k-tap 1-D conv across the pooled channels, sigmoid (key `conv.weight` [1, 1, k])."""

    def __init__(self, k: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 1, k, padding=(k - 1) // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x.mean((2, 3))[:, None, :])[:, 0]  # [B, C]
        return x * torch.sigmoid(y)[:, :, None, None]


class CoordReference(nn.Module):
    """Coordinate attention (paper eq. 4-9) as mbv2_ca.py names it: conv1, bn1, conv2 (h), conv3 (w)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        mid = max(8, channels // 32)
        self.conv1 = nn.Conv2d(channels, mid, 1)
        self.bn1 = nn.BatchNorm2d(mid)
        self.conv2 = nn.Conv2d(mid, channels, 1)
        self.conv3 = nn.Conv2d(mid, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        y = torch.cat((x.mean(3, keepdim=True), x.mean(2, keepdim=True).transpose(2, 3)), dim=2)
        y = self.bn1(self.conv1(y))
        y = y * torch.clamp(y + 3, 0, 6) / 6  # h-swish
        along_h, along_w = torch.split(y, [h, w], dim=2)
        return x * torch.sigmoid(self.conv2(along_h)) * torch.sigmoid(self.conv3(along_w.transpose(2, 3)))


def official_mbv2_ca(num_classes: int = 1000) -> nn.Module:
    """mbv2_ca's structure: flat unit Sequentials, CoordAtt after the depthwise conv of every unit with
    an expansion layer, the last 1x1 conv as `conv` on the model."""
    settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                (6, 320, 1, 1)]

    class Unit(nn.Module):
        def __init__(self, inp: int, out: int, stride: int, t: int) -> None:
            super().__init__()
            hidden = inp * t
            layers: list[nn.Module] = []
            if t != 1:
                layers += [nn.Conv2d(inp, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6()]
            layers += [nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
                       nn.ReLU6()]
            if t != 1:
                layers.append(CoordReference(hidden))
            layers += [nn.Conv2d(hidden, out, 1, bias=False), nn.BatchNorm2d(out)]
            self.conv = nn.Sequential(*layers)
            self.identity = stride == 1 and inp == out

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x + self.conv(x) if self.identity else self.conv(x)

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            units: list[nn.Module] = [nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1, bias=False), nn.BatchNorm2d(32),
                                                    nn.ReLU6())]
            inp = 32
            for t, c, n, s in settings:
                for i in range(n):
                    units.append(Unit(inp, c, s if i == 0 else 1, t))
                    inp = c
            self.features = nn.Sequential(*units)
            self.conv = nn.Sequential(nn.Conv2d(inp, 1280, 1, bias=False), nn.BatchNorm2d(1280), nn.ReLU6())
            self.classifier = nn.Sequential(nn.Dropout(0.1), nn.Linear(1280, num_classes))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.classifier(self.conv(self.features(x)).mean((2, 3)))

    return Net()


# --- official ResNets: torchvision's, with the attention placed where the official code puts it ------


def branch_then(block: nn.Module, module: nn.Module, attribute: str) -> None:
    """The official block: residual branch, then the module, then the add and ReLU."""
    setattr(block, attribute, module)
    bottleneck = hasattr(block, "conv3")

    def forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if bottleneck:
            out = self.bn3(self.conv3(self.relu(out)))
        out = getattr(self, attribute)(out)
        identity = x if self.downsample is None else self.downsample(x)
        return self.relu(out + identity)

    block.forward = types.MethodType(forward, block)


def official_resnet(depth: int, cifar: bool, num_classes: int) -> resnet.ResNet:
    model = getattr(resnet, f"resnet{depth}")(num_classes=num_classes)
    if cifar:  # the official code's CIFAR ResNets: a 3x3 stride-1 stem, no max-pool
        model.conv1 = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        model.maxpool = nn.Identity()
    return model


def blocks(model: resnet.ResNet) -> list[nn.Module]:
    return [block for stage in (model.layer1, model.layer2, model.layer3, model.layer4) for block in stage]


def width(block: nn.Module) -> int:
    return (block.bn3 if hasattr(block, "bn3") else block.bn2).num_features


def triplet_resnet(names: tuple[str, str, str], inner: str) -> nn.Module:
    model = official_resnet(18, cifar=True, num_classes=10)
    for block in blocks(model):
        branch_then(block, TripletReference(names, inner), "triplet_attention")
    return model


def srm_resnet() -> nn.Module:
    model = official_resnet(18, cifar=False, num_classes=1000)
    for block in blocks(model):
        branch_then(block, SRMReference(width(block)), "rclb")
    return model


def bam_resnet() -> nn.Module:
    model = official_resnet(18, cifar=True, num_classes=100)
    model.bam1, model.bam2, model.bam3 = BAM(64), BAM(128), BAM(256)

    def forward(self: nn.Module, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.bam1(self.layer1(x))
        x = self.bam2(self.layer2(x))
        x = self.layer4(self.bam3(self.layer3(x)))
        return self.fc(torch.flatten(self.avgpool(x), 1))

    model.forward = types.MethodType(forward, model)
    return model


def simam_resnet() -> nn.Module:
    model = official_resnet(50, cifar=False, num_classes=1000)
    for block in blocks(model):
        block.conv2 = nn.Sequential(block.conv2, SimAMReference(0.1))
    return model


def eca_mobilenet() -> nn.Module:
    model = mobilenetv2.mobilenet_v2(num_classes=1000)
    for unit in model.features[1:18]:
        unit.conv.append(ECAReference(1 if unit.out_channels <= 96 else 3))
    return model


def triplet_mobilenet() -> nn.Module:
    model = mobilenetv2.mobilenet_v2(num_classes=1000)
    for unit in model.features[1:18]:
        unit.conv.append(TripletReference(("ChannelGateH", "ChannelGateW", "SpatialGate"), "spatial"))
    return model


def randomise(model: nn.Module, seed: int) -> nn.Module:
    """Every weight and BN statistic random (variances positive, weights scaled by fan-in), so a
    misplaced tensor shows in the logits."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.modules():
            tensors = [*module.named_parameters(recurse=False), *module.named_buffers(recurse=False)]
            for name, tensor in tensors:
                if not tensor.is_floating_point():
                    continue
                noise = torch.randn(tensor.shape, generator=generator)
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    value = {"weight": 1 + 0.1 * noise, "running_var": 0.5 + noise.abs()}.get(name, 0.1 * noise)
                elif tensor.dim() >= 2:
                    value = noise / tensor[0].numel() ** 0.5
                else:
                    value = 0.1 * noise
                tensor.copy_(value)
    return model.eval()


# --- the layouts -------------------------------------------------------------------------------------

CASES: dict[str, tuple[Callable[[], nn.Module], str, int, str]] = {
    # case: (official model, layout, input size, zoo model the layout maps to)
    "triplet-models": (lambda: triplet_resnet(("ChannelGateH", "ChannelGateW", "SpatialGate"), "spatial"),
                       "official-triplet", 32, "triplet_resnet18_cifar"),
    "triplet-root": (lambda: triplet_resnet(("cw", "hc", "hw"), "conv"), "official-triplet", 32,
                     "triplet_resnet18_cifar"),
    "srm": (srm_resnet, "official-srm", 64, "srm_resnet18"),
    "bam": (bam_resnet, "official-bam", 32, "bam_resnet18_cifar"),
    "simam": (simam_resnet, "official-simam", 64, "simam_resnet50"),
    "triplet-mobilenet": (triplet_mobilenet, "official-triplet-mobilenet_v2", 64, "triplet_mobilenet_v2"),
    "eca-mobilenet": (eca_mobilenet, "official-eca-mobilenet_v2", 64, "eca_mobilenet_v2"),
    "coord-mobilenet": (official_mbv2_ca, "official-coord-mobilenet_v2", 64, "coord_mobilenet_v2"),
}

KEYS = {  # one key of each layout, as the official code names it, and its shape
    "triplet-models": ("layer1.0.triplet_attention.ChannelGateH.spatial.conv.weight", (1, 2, 7, 7)),
    "triplet-root": ("layer1.0.triplet_attention.cw.conv.conv.weight", (1, 2, 7, 7)),
    "srm": ("layer1.0.rclb.cfc", (64, 2)),
    "bam": ("bam1.channel_att.gate_c.gate_c_fc_0.weight", (4, 64)),
    "simam": ("layer1.0.conv2.0.weight", (64, 64, 3, 3)),
    "triplet-mobilenet": ("features.2.conv.4.ChannelGateW.spatial.bn.running_var", (1,)),
    "eca-mobilenet": ("features.1.conv.3.conv.weight", (1, 1, 1)),
    "coord-mobilenet": ("features.2.conv.6.conv2.weight", (96, 8, 1, 1)),
}


@pytest.mark.slow  # the official repositories' full-size models, built and run twice
@pytest.mark.parametrize("case", list(CASES))
def test_official_checkpoint_is_recognised_loads_strictly_and_computes_the_same(case, tmp_path):
    make, layout_name, size, zoo_name = CASES[case]
    torch.manual_seed(0)
    official = randomise(make(), seed=1)
    state = official.state_dict()
    key, shape = KEYS[case]
    assert tuple(state[key].shape) == shape  # the reference really has the official key table
    path = tmp_path / f"{case}.pth"
    torch.save(state, path)

    checkpoint = load_checkpoint(path)
    layout = recognise(checkpoint.shapes)
    assert layout is not None and layout.name == layout_name
    mapped: Mapped = layout.to_senet(checkpoint.state_dict)
    assert mapped.config.name == zoo_name and mapped.notes
    model = build_from_config(mapped.config)
    model.load_state_dict(mapped.state_dict, strict=True)
    model.eval()
    images = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected, got = official(images), model(images)
    assert torch.allclose(got, expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))

    # The same file through inspect's path: resolve() names the layout and maps it, materialize() loads it.
    resolved = resolve(checkpoint)
    assert resolved.layout == layout_name and resolved.config == mapped.config
    assert all(torch.equal(resolved.state[key], value) for key, value in mapped.state_dict.items())
    with torch.no_grad():
        through_inspect = materialize(resolved)(images)
    assert torch.allclose(through_inspect, expected, rtol=1e-4, atol=1e-4 * float(expected.abs().max()))


def test_a_training_checkpoint_wrapped_as_the_official_scripts_save_it_is_recognised(tmp_path):
    """SimAM's main_imagenet.py saves {"epoch", "arch", "state_dict", "best_acc", "optimizer"} of a
    DataParallel model ("module." before every key)."""
    state = {f"module.{key}": value for key, value in simam_resnet().state_dict().items()}
    path = tmp_path / "checkpoint.pth.tar"
    torch.save({"epoch": 100, "arch": "resnet50", "state_dict": state, "best_acc": torch.tensor(77.45),
                "optimizer": {"state": {}, "param_groups": []}}, path)
    checkpoint = load_checkpoint(path)
    layout = recognise(checkpoint.shapes)
    assert layout is not None and layout.name == "official-simam"
    mapped = layout.to_senet(checkpoint.state_dict)
    assert mapped.config.placement == "inner" and dict(mapped.config.attention_options)["e_lambda"] == 0.1
    with torch.device("meta"):
        build_from_config(mapped.config).load_state_dict(mapped.state_dict, strict=True, assign=True)


def test_official_mbv2_ca_is_our_coord_mobilenet_at_placement_inner():
    """mbv2_ca's parameter count (3,950,648; the issue's figure) from the reference, against the zoo."""
    official = sum(p.numel() for p in official_mbv2_ca().parameters())
    with torch.device("meta"):
        inner = build_model("coord_mobilenet_v2", placement="inner", stages="2,3,4,5")
        default = build_model("coord_mobilenet_v2")
    assert official == sum(p.numel() for p in inner.parameters()) == 3_950_648
    assert sum(p.numel() for p in default.parameters()) == 3_546_310  # ours: CA on every unit's output


def test_eca_official_kernels_per_stage():
    mapped = layouts().get("official-eca-mobilenet_v2").to_senet(eca_mobilenet().state_dict())
    assert dict(mapped.config.attention_options)["k_size"] == (1, 1, 1, 1, 3)


@pytest.mark.parametrize("name, options", [
    ("bam_resnet18_cifar", {}), ("triplet_resnet18_cifar", {}), ("srm_resnet18", {}),
    ("simam_resnet18", {"placement": "inner"}), ("simam_resnet18", {}), ("eca_mobilenet_v2", {}),
    ("triplet_mobilenet_v2", {}),
    ("coord_mobilenet_v2", {"placement": "inner", "stages": "2,3,4,5"}), ("resnet50", {}),
])
def test_our_own_layout_is_not_claimed(name, options):
    with torch.device("meta"):
        shapes = {key: tuple(t.shape) for key, t in build_model(name, **options).state_dict().items()}
    assert recognise(shapes) is None


def test_a_resnet_the_zoo_lacks_is_refused_in_one_line():
    state = simam_resnet().state_dict()
    state = {key.replace("layer4.", "layer9.") if key.startswith("layer4.") else key: v for key, v in state.items()}
    layout = recognise({key: tuple(v.shape) for key, v in state.items()})
    assert layout is not None and layout.name == "official-simam"
    with pytest.raises(ArchitectureError, match="official-simam checkpoint of a ResNet the zoo does not build"):
        layout.to_senet(state)


# --- placement "inner" -------------------------------------------------------------------------------


def test_inner_placement_runs_simam_after_the_3x3_conv():
    """simam_resnet18 at placement inner equals torchvision's ResNet-18 with SimAM wrapped into conv2."""
    torch.manual_seed(0)
    ours = build_model("simam_resnet18", placement="inner", e_lambda=0.1).eval()
    reference = resnet.resnet18().eval()
    reference.load_state_dict(ours.state_dict())
    for block in blocks(reference):
        block.conv2 = nn.Sequential(block.conv2, SimAMReference(0.1))
    images = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(ours(images), reference(images), atol=1e-5)


@pytest.mark.parametrize("name", ["se_shufflenet_v2_x1_0", "se_vgg16_bn", "bam_resnet50"])
def test_inner_placement_is_refused_where_there_is_none(name):
    with pytest.raises(OptionError):
        build_model(name, placement="inner")


# --- BAM's gate ---------------------------------------------------------------------------------------


def test_bam_inspect_reports_one_gate_per_module_in_0_1(tmp_path):
    """BAM's map M(F) = sigmoid(.) is the one gate (the features become F + F * M(F)); its inner ReLUs are not."""
    torch.manual_seed(0)
    model = build_model("bam_resnet18_cifar")
    path = save_checkpoint(model, tmp_path / "bam.pth")
    report = inspect(path, data="synthetic", limit=2, batch=2)
    modules = [name for name, module in model.named_modules() if isinstance(module, BAM)]
    assert len(report.blocks) == len(modules) == 3
    assert all(gate.gate == "bam.gate" and 0.0 <= gate.min and gate.max <= 1.0 for gate in report.blocks)


# --- a layout is mapped once per run ------------------------------------------------------------------


def _count_mappings(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every layout's `to_senet` wrapped by a spy; the list it returns grows by the layout's name per call."""
    calls: list[str] = []
    registry = layouts()
    for name, layout in registry.items():
        def spy(state, _map=layout.to_senet, _name=name):
            calls.append(_name)
            return _map(state)

        monkeypatch.setitem(registry._entries, name, dataclasses.replace(layout, to_senet=spy))
    return calls


@pytest.fixture(scope="module")
def official_bam_file(tmp_path_factory) -> str:
    """A raw torch.save of the official BAM CIFAR ResNet-18 (100 classes), random weights."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("bam") / "bam_official.pth"
    torch.save(randomise(bam_resnet(), seed=3).state_dict(), path)
    return str(path)


def test_one_inspect_of_an_official_layout_maps_it_exactly_once(official_bam_file, monkeypatch):
    calls = _count_mappings(monkeypatch)
    report = inspect(official_bam_file, data="synthetic", limit=2, batch=2)
    assert calls == ["official-bam"]
    assert len(report.blocks) == 3  # the mapped weights did reach the model: one BAM gate per stage 1-3


def test_a_given_model_that_does_not_fit_is_reported_with_one_mapping(official_bam_file, monkeypatch):
    calls = _count_mappings(monkeypatch)
    with pytest.raises(ArchitectureError, match="its weights fit bam_resnet18_cifar"):
        resolve(load_checkpoint(official_bam_file), "se_resnet18_cifar")
    assert calls == ["official-bam"]


def test_converting_an_official_layout_maps_it_once(official_bam_file, tmp_path, monkeypatch):
    calls = _count_mappings(monkeypatch)
    report = convert(official_bam_file, tmp_path / "ours.safetensors")
    assert calls == ["official-bam"] and report.read_layout == "official-bam"
    resolved = resolve(load_checkpoint(tmp_path / "ours.safetensors"))
    assert resolved.layout is None and resolved.config.name == "bam_resnet18_cifar"
