"""A sweep of timm and torchvision models (every family with attention, a few without): `count`
runs or refuses in one line, stages are numbered 1..N, and the attention parameters equal the sum
over the attention modules, found here independently of senet (the outermost modules of the
attention classes below, imported from timm and torchvision themselves). benchmarks/outside_sweep.py
sweeps all of them; this sample keeps the suite's time (about a second a model, on meta)."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import torch

import senet_cli
from senet_cli.errors import SenetError

timm = pytest.importorskip("timm")

pytestmark = pytest.mark.slow

ATTENTION_CLASSES = (
    "torchvision.ops.misc:SqueezeExcitation",
    "timm.layers.squeeze_excite:SEModule", "timm.layers.squeeze_excite:EffectiveSEModule",
    "timm.models._efficientnet_blocks:SqueezeExcite", "timm.layers.eca:EcaModule", "timm.layers.eca:CecaModule",
    "timm.layers.cbam:CbamModule", "timm.layers.cbam:LightCbamModule", "timm.layers.gather_excite:GatherExcite",
    "timm.layers.global_context:GlobalContext", "timm.layers.non_local_attn:BatNonLocalAttn",
    "timm.layers.selective_kernel:SelectiveKernel", "timm.layers.split_attn:SplitAttn",
    "timm.layers.lambda_layer:LambdaLayer", "timm.layers.bottleneck_attn:BottleneckAttn",
    "timm.layers.halo_attn:HaloAttn",
    # modules of the models' own files, with no class of the attention table (found by structure)
    "timm.models.senet:SEModule", "timm.models.hgnet:EseModule", "timm.models.rexnet:SEWithNorm",
)
"""The attention classes of timm and torchvision, written out here rather than taken from senet."""

WITH_ATTENTION = (
    # timm ResNet family: SE, ECA, GC, GE, SK, ResNeSt's split attention, legacy SENet
    "timm:seresnet18", "timm:seresnext26d_32x4d", "timm:seresnet50", "timm:ecaresnet26t", "timm:ecaresnet50d",
    "timm:ecaresnetlight", "timm:gcresnet50t", "timm:resnetrs50", "timm:skresnet18", "timm:skresnext50_32x4d",
    "timm:resnest14d", "timm:resnest26d",
    "timm:legacy_seresnet18",
    # timm ByobNet: SE, ECA, GC, bottleneck/halo/lambda self-attention, BAT non-local
    "timm:seresnext26ts", "timm:eca_resnext26ts", "timm:gcresnext26ts", "timm:gcresnet33ts", "timm:botnet26t_256",
    "timm:sebotnet33ts_256", "timm:halonet26t", "timm:sehalonet33ts", "timm:eca_halonext26ts",
    "timm:lambda_resnet26t", "timm:bat_resnext26ts", "timm:haloregnetz_b",
    # timm EfficientNet/MobileNet family: their blocks' SqueezeExcite
    "timm:efficientnet_b0", "timm:tf_efficientnetv2_b0", "timm:mixnet_s", "timm:semnasnet_075",
    "timm:mobilenetv3_small_100", "timm:fbnetv3_b", "timm:lcnet_050", "timm:tinynet_e", "timm:hardcorenas_a",
    "timm:gc_efficientnetv2_rw_t",
    # other timm families with attention
    "timm:regnety_008", "timm:regnetz_b16", "timm:nfnet_l0", "timm:eca_nfnet_l0", "timm:nf_regnet_b0",
    "timm:ese_vovnet19b_dw", "timm:eca_vovnet39b", "timm:tresnet_m", "timm:ghostnet_100", "timm:repghostnet_050",
    "timm:cs3sedarknet_l", "timm:maxvit_tiny_tf_224", "timm:gcvit_xxtiny", "timm:mobileone_s4",
    "timm:rexnet_100", "timm:hgnet_tiny",
    # torchvision: SqueezeExcitation in EfficientNet, MobileNetV3, RegNetY and MaxViT
    "torchvision:efficientnet_b0", "torchvision:efficientnet_v2_s", "torchvision:mobilenet_v3_small",
    "torchvision:mobilenet_v3_large", "torchvision:regnet_y_400mf", "torchvision:maxvit_t",
)

WITHOUT_ATTENTION = (
    "timm:resnet18", "timm:convnext_atto", "timm:vit_tiny_patch16_224", "timm:densenet121", "timm:mobilevit_xxs",
    "timm:cspdarknet53", "torchvision:resnet18", "torchvision:mobilenet_v2", "torchvision:regnet_x_400mf",
    "torchvision:squeezenet1_1", "torchvision:swin_t", "torchvision:shufflenet_v2_x0_5",
)


def _classes() -> tuple[type, ...]:
    found = []
    for reference in ATTENTION_CLASSES:
        module_name, _, name = reference.partition(":")
        cls = getattr(importlib.import_module(module_name), name, None)
        if isinstance(cls, type):
            found.append(cls)
    return tuple(found)


def _attention_params(model: torch.nn.Module) -> tuple[int, int]:
    """(parameters of the outermost attention modules, how many), by isinstance on ATTENTION_CLASSES."""
    classes = _classes()
    outer: list[tuple[str, Any]] = []
    for path, module in model.named_modules():
        if isinstance(module, classes) and not any(path.startswith(f"{p}.") for p, _ in outer):
            outer.append((path, module))
    return sum(p.numel() for _, m in outer for p in m.parameters()), len(outer)


def _count(name: str) -> Any:
    """count's report, or None when it refused in one line (a SenetError); anything else fails the test."""
    try:
        return senet_cli.count(name)
    except SenetError as error:
        assert "\n" not in str(error), f"{name}: a refusal of more than one line: {error}"
        return None


def _check_stages(name: str, report: Any) -> None:
    stages = [row.stage for row in report.blocks]
    assert stages, f"{name}: no block rows"
    assert stages == sorted(stages) and set(stages) == set(range(1, max(stages) + 1)), f"{name}: stages {stages}"


@pytest.mark.parametrize("name", WITH_ATTENTION)
def test_every_attention_module_is_counted(name):
    report = _count(name)
    assert report is not None, f"{name} was refused"
    _check_stages(name, report)
    params, modules = _attention_params(_build(name))
    assert modules > 0
    assert report.attention_total("params") == params
    assert sum(count for _, count in report.attention_modules) == modules


@pytest.mark.parametrize("name", WITHOUT_ATTENTION)
def test_models_without_attention_count_with_their_stages(name):
    report = _count(name)
    assert report is not None, f"{name} was refused"
    _check_stages(name, report)
    assert _attention_params(_build(name)) == (0, 0)
    assert report.attention_total("params") == 0


def _build(name: str) -> torch.nn.Module:
    from senet_cli.subject import subject_for

    return subject_for(name).build(meta=True)


def test_the_sample_is_wide_enough():
    assert len(WITH_ATTENTION) + len(WITHOUT_ATTENTION) >= 60


FORMERLY_REFUSED = (
    # "cannot run on input" until issue 21's fix: their forwards make tensors on the CPU (no device given)
    # and count's shape memo handed the next identical call a meta copy, which then met the CPU ones.
    # One of each family: ConViT's relative indices, SAM ViT's relative positions, the RoPE grids of the
    # DINOv3, Lingbot and Sapiens2 ViTs (timm.layers.pos_embed_sincos).
    ("timm:convit_tiny", None), ("timm:samvit_base_patch16_224", None), ("timm:vit_tiny_patch16_dinov3_qkvb", None),
    ("timm:vit_small_patch16_lingbot", None), ("timm:vit_base_patch16_sapiens2", 256),
)


@pytest.mark.parametrize(("name", "reference_side"), FORMERLY_REFUSED)
def test_models_making_cpu_tensors_count_on_meta_as_flop_counter_mode_does(name, reference_side):
    """Counted on meta at their default input, parameters equal to timm's own model's; MACs equal to
    FlopCounterMode's FLOPs / 2 on a real CPU forward, attention in torch's math form (as on meta: the
    fused CPU kernel has no formula in FlopCounterMode either). Sapiens2's reference at 1024x1024 takes
    a minute on the CPU: it is compared at `reference_side`."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    report = _count(name)
    assert report is not None, f"{name} was refused"
    assert report.counted_on == "meta"
    _check_stages(name, report)
    model = timm.create_model(name.partition(":")[2]).eval()
    assert report.params == sum(p.numel() for p in model.parameters())
    if reference_side is not None:
        report = senet_cli.count(name, input_size=reference_side)
    side = report.input[-1]
    counter = FlopCounterMode(display=False)
    torch.manual_seed(0)
    with torch.no_grad(), counter, sdpa_kernel(SDPBackend.MATH):
        model(torch.randn(1, 3, side, side))
    assert 2 * report.macs == counter.get_total_flops()
