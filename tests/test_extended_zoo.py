"""The extended zoo: BAM, DANet, Non-local, GC, GE, SK, Coordinate, SimAM, Triplet and SRM, and the
MobileNetV2, ShuffleNetV2, VGG-16-BN and Inception v3 backbones.

Parameter counts are derived in closed form from each paper's (and official code's) layout, and
checked against timm and torchvision where they have the same model; the quadratic modules'
MACs are checked against their closed form at two input sizes.
"""

from __future__ import annotations

import math
import re

import pytest
import torch
import torchvision
from torch import nn

import senet_cli
from senet_cli import inspect, save_checkpoint
from senet_cli.attention import ATTENTION
from senet_cli.attention.bam import BAM
from senet_cli.attention.base import AttentionModule
from senet_cli.attention.coord import CoordinateAttention
from senet_cli.attention.danet import DualAttention
from senet_cli.attention.gc import GlobalContext
from senet_cli.attention.ge import GatherExcite
from senet_cli.attention.non_local import NonLocal
from senet_cli.attention.simam import SimAM
from senet_cli.attention.sk import SelectiveKernel
from senet_cli.attention.srm import SRM
from senet_cli.attention.triplet import TripletAttention
from senet_cli.backbones.inception import UNITS
from senet_cli.errors import SenetError


def params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def attention_paths(name: str, **options) -> list[str]:
    with torch.device("meta"):
        model = senet_cli.build_model(name, **options)
    return [path for path, m in model.named_modules() if isinstance(m, AttentionModule)]


WIDTHS = (64, 256, 1024)


@pytest.mark.parametrize("c", WIDTHS)
def test_parameter_counts_in_closed_form(c):
    m = c // 16
    bam_channel = c * m + m + 2 * m + m * c + c  # FC, BN1d, FC
    bam_spatial = (c * m + m + 2 * m) + 2 * (9 * m * m + m + 2 * m) + (m + 1)  # 1x1, two dilated 3x3, 1x1
    assert params(BAM(c)) == bam_channel + bam_spatial
    q = c // 8
    assert params(DualAttention(c)) == 2 * (c * q + q) + (c * c + c) + 2  # query, key, value, two gammas
    i = c // 2
    assert params(NonLocal(c)) == 3 * (c * i + i) + (i * c + c) + 2 * c  # theta, phi, g; W; W's BN
    assert params(NonLocal(c, bn=False)) == 3 * (c * i + i) + (i * c + c)
    transform = c * m + m + 2 * m + m * c + c  # 1x1, LayerNorm, 1x1
    assert params(GlobalContext(c)) == (c + 1) + transform
    assert params(GlobalContext(c, pooling="avg", fusion="add+mul")) == 2 * transform
    assert params(GatherExcite(c)) == 0  # GE-theta-: pooling gather
    assert params(GatherExcite(c, extent=8, parametric=True)) == 3 * (9 * c + 2 * c)  # 3 depthwise convs + BN
    assert params(GatherExcite(c, extent=2, parametric=True, mlp=True)) == (9 * c + 2 * c) + (c * m + m + m * c + c)
    d = max(c // 16, 32)
    assert params(SelectiveKernel(c, groups=32)) == 2 * (9 * c * c // 32 + 2 * c) + (c * d + 2 * d + d * 2 * c)
    mid = max(8, c // 32)
    assert params(CoordinateAttention(c)) == c * mid + mid + 2 * mid + 2 * (mid * c + c)
    assert params(SimAM(c)) == 0
    assert params(TripletAttention(c)) == 3 * (2 * 7 * 7 + 2) == 300
    assert params(TripletAttention(c, spatial=False)) == 200
    assert params(SRM(c)) == 4 * c


@pytest.mark.parametrize("c", WIDTHS)
def test_global_context_matches_timm(c):
    timm_layers = pytest.importorskip("timm.layers")
    ours = GlobalContext(c)
    theirs = timm_layers.GlobalContext(c, use_attn=True, fuse_add=True, fuse_scale=False, rd_ratio=1 / 16)
    assert params(ours) == params(theirs)
    both = timm_layers.GlobalContext(c, use_attn=False, fuse_add=True, fuse_scale=True, rd_ratio=1 / 16)
    assert params(GlobalContext(c, pooling="avg", fusion="add+mul")) == params(both)


def test_whole_models_match_timm_and_the_papers():
    timm = pytest.importorskip("timm")
    count = lambda name, **kw: senet_cli.count(name, **kw).params  # noqa: E731
    # SKNet-50 (paper Table 2: 27.5M) is timm's skresnext50_32x4d, exactly.
    assert count("sk_resnext50_32x4d") == params(timm.create_model("skresnext50_32x4d")) == 27_479_784
    assert round(count("bam_resnet50") / 1e6, 2) == 25.92  # BAM paper Table 4
    assert count("srm_resnet50") == 25_557_032 + 4 * (3 * 256 + 4 * 512 + 6 * 1024 + 3 * 2048)  # SRM: 25.62M
    assert count("triplet_resnet50") == 25_557_032 + 16 * 300  # 25.56M, Triplet paper Table 2
    assert count("simam_resnet50") == count("ge_resnet50") == 25_557_032


@pytest.mark.parametrize("name, expected", [
    ("mobilenet_v2", 3_504_872), ("shufflenet_v2_x1_0", 2_278_604), ("vgg16_bn", 138_365_992), ("inception_v3", 27_161_264),
])
def test_plain_backbones_are_torchvision_models_key_for_key(name, expected):
    with torch.device("meta"):
        ours = senet_cli.build_model(name)
        theirs = getattr(torchvision.models, name)(**({"init_weights": False} if name == "inception_v3" else {}))
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.state_dict().items()}
    assert params(ours) == expected


@pytest.mark.parametrize("name", ["se_mobilenet_v2", "cbam_shufflenet_v2_x1_0", "bam_vgg16_bn", "eca_inception_v3",
                                  "sk_shufflenet_v2_x1_0", "sk_vgg16_bn"])
def test_torchvision_weights_load_into_attention_models(name):
    """Every torchvision key of an untouched layer keeps its name and shape; only attention keys are
    new, and only an SK unit's replaced convs are gone."""
    torch.manual_seed(0)
    config = senet_cli.make_config(name)
    plain = getattr(torchvision.models, config.backbone)(**({"init_weights": False} if "inception" in name else {}))
    model = senet_cli.build_model(name)
    result = model.load_state_dict(plain.state_dict(), strict=False)
    attention = {f"{path}." for path, m in model.named_modules() if isinstance(m, AttentionModule)}
    assert result.missing_keys and all(any(k.startswith(p) for p in attention) for k in result.missing_keys)
    if config.attention == "sk":
        assert result.unexpected_keys and all(".weight" in k or ".bias" in k or "running" in k or "batches" in k
                                              for k in result.unexpected_keys)
    else:
        assert result.unexpected_keys == []
    loaded = dict(model.named_parameters())
    for key, value in plain.state_dict().items():
        if key in loaded:
            assert torch.equal(loaded[key], value)


def test_modules_sit_where_their_papers_put_them():
    assert attention_paths("bam_resnet50") == ["layer1.2.bam", "layer2.3.bam", "layer3.5.bam"]
    assert attention_paths("danet_resnet50") == ["layer4.2.danet"]
    # Non-local, paper Table 2 (ResNet-50): 5 blocks after every other block of res3/res4, 10 with every=1.
    assert attention_paths("nonlocal_resnet50") == [
        "layer2.1.nonlocal", "layer2.3.nonlocal", "layer3.1.nonlocal", "layer3.3.nonlocal", "layer3.5.nonlocal"]
    assert len(attention_paths("nonlocal_resnet50", every=1)) == 10
    assert {p.split(".")[0] for p in attention_paths("gc_resnet50")} == {"layer2", "layer3", "layer4"}
    assert attention_paths("sk_resnet50")[:2] == ["layer1.0.conv2", "layer1.1.conv2"]
    assert attention_paths("sk_resnet18")[0] == "layer1.0.conv1"
    assert len(attention_paths("se_mobilenet_v2")) == 17 and attention_paths("se_mobilenet_v2")[0] == "features.1.se"
    assert attention_paths("bam_mobilenet_v2") == ["features.1.bam", "features.3.bam", "features.6.bam", "features.13.bam"]
    assert attention_paths("se_vgg16_bn")[:3] == ["features.2.se", "features.5.se", "features.9.se"]
    assert len(attention_paths("se_vgg16_bn")) == 13
    assert attention_paths("se_inception_v3") == [f"{unit}.se" for unit in UNITS]
    assert attention_paths("danet_inception_v3") == ["Mixed_7c.danet"]
    assert len(attention_paths("sk_mobilenet_v2")) == 17 and attention_paths("sk_mobilenet_v2")[0] == "features.1.conv.0"


def test_inception_unit_widths_are_what_the_modules_output():
    model = torchvision.models.inception_v3(init_weights=False).eval()
    widths = {}
    for name in UNITS:
        getattr(model, name).register_forward_hook(lambda m, a, out, name=name: widths.__setitem__(name, out.shape[1]))
    with torch.no_grad():
        model(torch.zeros(1, 3, 75, 75))
    assert widths == {name: width for name, (_, width) in UNITS.items()}


@pytest.mark.parametrize("module", [
    NonLocal(32), NonLocal(32, bn=False, sub_sample=False), DualAttention(32), GlobalContext(32),
], ids=["nonlocal", "nonlocal-no-bn", "danet", "gc"])
def test_residual_modules_start_as_the_identity(module):
    x = torch.randn(2, 32, 8, 8)
    with torch.no_grad():
        assert torch.equal(module.eval()(x), x)


def test_identity_initialisation_survives_the_backbone_init():
    """torchvision's ResNet init sets every BN weight to 1; the zoo re-zeroes Non-local's W BN after it."""
    model = senet_cli.build_model("nonlocal_resnet18_cifar")
    block = getattr(model.layer2[1], "nonlocal")  # the registry name, a Python keyword
    assert torch.count_nonzero(block.W[1].weight) == 0 and torch.count_nonzero(block.W[0].weight) > 0


@pytest.mark.parametrize("dimension, shape", [(1, (2, 16, 10)), (2, (2, 16, 8, 6)), (3, (2, 16, 4, 8, 6))])
def test_non_local_runs_on_1d_2d_and_3d_inputs(dimension, shape):
    module = NonLocal(16, dimension=dimension)
    nn.init.ones_(module.W[1].weight)  # leave the identity, so the attention path matters
    out = module.eval()(torch.randn(shape))
    assert out.shape == shape and torch.isfinite(out).all()


def test_quadratic_modules_macs_grow_with_the_square_of_the_positions():
    """DANet on ResNet-50's last stage (C=2048), Non-local (C=512, sub-sampled) in layer2: MACs in
    closed form at 224 and 448 input; doubling the side quadruples N and multiplies the pairwise
    terms by 16."""
    def danet(n: int, c: int = 2048) -> int:
        q = c // 8
        convs = n * c * q * 2 + n * c * c
        position = n * n * q + c * n * n  # Q^T K, then V S^T
        channel = 2 * c * c * n  # A A^T, then X A
        return convs + position + channel

    def nonlocal_(n: int, c: int = 512) -> int:
        i, pooled = c // 2, n // 4
        return 3 * n * c * i + 2 * n * pooled * i + n * i * c  # theta, phi, g; two products; W

    for side in (224, 448):
        report = senet_cli.count("danet_resnet50", input_size=side)
        n = (side // 32) ** 2
        assert report.blocks[-1].attention_macs == danet(n)
        report = senet_cli.count("nonlocal_resnet50", input_size=side)
        n = (side // 8) ** 2
        assert next(b for b in report.blocks if b.name == "layer2.1").attention_macs == nonlocal_(n)
    small, large = (senet_cli.count("danet_resnet50", input_size=s).attention_total("macs") for s in (224, 448))
    pairwise = lambda n: n * n * (2048 // 8 + 2048)  # noqa: E731
    assert large - 4 * small == pairwise(14 * 14) - 4 * pairwise(7 * 7) == 12 * pairwise(7 * 7)


def test_vgg_units_carry_their_conv_and_bn_in_counts():
    report = senet_cli.count("se_vgg16_bn", input_size=32)
    assert [row.name for row in report.blocks][:2] == ["features.2", "features.5"]
    assert report.stem.macs == 0 and report.stem.params == 0  # VGG has no stem: unit 1 starts at the input
    first = report.blocks[0]
    assert first.params - first.attention_params == 3 * 64 * 9 + 64 + 2 * 64  # conv with bias, BN
    assert first.macs - first.attention_macs == 32 * 32 * 64 * 27


def test_bad_options_for_the_extended_zoo_are_one_clear_line():
    cases = [
        (("se_resnet50",), {"stages": "5"}, "among 1, 2, 3, 4"),
        (("se_mobilenet_v2",), {"placement": "pre"}, "needs a residual block"),
        (("bam_resnet50",), {"placement": "post"}, "fixed place"),
        (("se_vgg16_bn",), {"variant": "v1"}, "ResNet bottlenecks only"),
        (("eca_shufflenet_v2_x1_0",), {"k_size": "3,5,7,9"}, "has 3 stages"),
        (("ge_resnet50",), {"parametric": True}, "extent=2, 4 or 8"),
        (("gc_resnet50",), {"fusion": "concat"}, "accepted: add, mul, add+mul"),
        (("nonlocal_resnet50",), {"every": 0}, "at least 1"),
    ]
    for (name,), options, message in cases:
        with pytest.raises(SenetError, match=re.escape(message)):
            with torch.device("meta"):
                senet_cli.build_model(name, **options)
    assert senet_cli.make_config("se_mobilenet_v2", stages="5").stages == (5,)


def test_inspect_reads_the_new_gates(tmp_path):
    torch.manual_seed(0)
    coord = tmp_path / "coord.pth"
    save_checkpoint(senet_cli.build_model("coord_resnet18_cifar"), coord)
    report = inspect(coord, data="synthetic", limit=4)
    gates = {(g.name, g.gate): g for g in report.blocks}
    assert {g for _, g in gates if _ == "layer1.0"} == {"coord.gate_h", "coord.gate_w"}
    assert gates[("layer1.0", "coord.gate_h")].positions == 32 and gates[("layer1.0", "coord.gate_w")].positions == 32
    sk = tmp_path / "sk.pth"
    save_checkpoint(senet_cli.build_model("sk_resnet18_cifar"), sk)
    first = inspect(sk, data="synthetic", limit=4).blocks[0]
    assert (first.gate, first.kind, first.channels) == ("conv1.gate", "channel", 2 * 64)
    assert math.isclose(sum(first.channel_means[:64]) + sum(first.channel_means[64:]), 64, rel_tol=1e-6)
    danet = tmp_path / "danet.pth"
    save_checkpoint(senet_cli.build_model("danet_resnet18_cifar"), danet)
    with pytest.raises(SenetError, match="add a context term"):
        inspect(danet, data="synthetic", limit=2)
