"""The ResNet family (ResNet, ResNeXt, Wide ResNet and CIFAR-style ResNets) with an attention slot.

Built on torchvision's `ResNet`, `BasicBlock` and `Bottleneck`: our blocks subclass theirs and only
add the attention module and the forward that places it, so a torchvision state dict loads into
the plain model strictly, and every key of an attention model is a torchvision key plus the
attention's own (`layer1.0.se.fc1.weight`).

Papers: "Deep Residual Learning for Image Recognition", https://arxiv.org/abs/1512.03385;
"Aggregated Residual Transformations for Deep Neural Networks" (ResNeXt), https://arxiv.org/abs/1611.05431;
"Wide Residual Networks", https://arxiv.org/abs/1605.07146;
"Squeeze-and-Excitation Networks" (SENet-154, appendix), https://arxiv.org/abs/1709.01507.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torchvision.models import resnet as tv

from senet_cli.backbones.spec import BlockAttention
from senet_cli.backbones.surgery import replace_conv

STAGE_OF_PLANES = {64: 1, 128: 2, 256: 3, 512: 4}
"""torchvision's `_make_layer` builds stage s with planes 64 * 2**(s-1); this recovers s."""


class _AttentionSlot(nn.Module):
    """Mixin: the forward of a residual block with an optional attention module placed per
    the SENet paper's Fig. 5, or "inner" (on the 3x3 conv's output). Subclasses define
    `residual(x)`, the branch up to its last BN, passing the 3x3 conv's output through
    `after_conv`."""

    stage: int
    placement: str
    attention_attribute: str | None
    downsample: nn.Module | None
    relu: nn.Module

    def _init_attention(
        self, attention: BlockAttention | None, stage: int, position: tuple[int, int], inplanes: int, outplanes: int
    ) -> None:
        """Add the module if `attention` selects this block (`position`: index, blocks in stage)."""
        self.stage = stage
        self.placement = "standard"
        self.attention_attribute = None
        if attention is None or not attention.selects(stage, *position):
            return
        if attention.slot == "conv":
            self._replace_conv(attention, stage)
            return
        inner = self.conv2.out_channels  # the 3x3 conv's width (a basic block's second 3x3)
        channels = {"pre": inplanes, "inner": inner}.get(attention.block_placement, outplanes)
        setattr(self, attention.attribute, attention.build(channels, stage))
        self.attention_attribute = attention.attribute
        self.placement = attention.block_placement

    replaced_conv: tuple[str, str]  # (conv, its BN): the 3x3 a "conv"-slot module (SK) replaces

    def _replace_conv(self, attention: BlockAttention, stage: int) -> None:
        """Swap the block's 3x3 conv and BN for the module (SK), under the conv's name; the ReLU
        after them moves into the module's branches (the block's own ReLU then passes it through)."""
        conv_name, bn_name = self.replaced_conv
        replace_conv(self, conv_name, attention, stage, nn.ReLU, absorbed=(bn_name,))

    @property
    def attention(self) -> nn.Module | None:
        return getattr(self, self.attention_attribute) if self.attention_attribute else None

    # torchvision's blocks set these in __init__ (untyped there); declared so the checker knows them
    conv1: nn.Conv2d
    bn1: nn.Module
    conv2: nn.Conv2d
    bn2: nn.Module

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def after_conv(self, out: torch.Tensor) -> torch.Tensor:
        """The 3x3 conv's output, through the attention module where placement is "inner" (the
        official SimAM ResNets: right after conv2, before its BN)."""
        if self.placement != "inner":
            return out
        attention = self.attention
        assert attention is not None  # _init_attention sets placement "inner" only with the module
        return attention(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        attention = self.attention
        if attention is None:
            out = self.residual(x)
            identity = x if self.downsample is None else self.downsample(x)
            return self.relu(out + identity)
        placement = self.placement
        out = self.residual(attention(x) if placement == "pre" else x)
        if placement == "standard":
            out = attention(out)
        identity = x if self.downsample is None else self.downsample(x)
        if placement == "identity":
            identity = attention(identity)
        out = self.relu(out + identity)
        return attention(out) if placement == "post" else out


class AttentionBasicBlock(_AttentionSlot, tv.BasicBlock):
    """torchvision's two-3x3 block with an attention slot."""

    replaced_conv = ("conv1", "bn1")  # timm's skresnet18/34 make the first 3x3 the SK unit

    def __init__(
        self,
        *args: Any,
        stage: int,
        position: tuple[int, int] = (0, 1),
        attention: BlockAttention | None = None,
        variant: str = "v1.5",
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        del variant  # the stride already sits on the first conv of a basic block in both variants
        self._init_attention(attention, stage, position, self.conv1.in_channels, self.conv2.out_channels)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn2(self.after_conv(self.conv2(self.relu(self.bn1(self.conv1(x))))))


class AttentionBottleneck(_AttentionSlot, tv.Bottleneck):
    """torchvision's 1x1-3x3-1x1 bottleneck with an attention slot and a choice of stride placement.

    torchvision ("ResNet V1.5") strides the 3x3 conv; the original ResNet, the SENet paper's
    SE-ResNet-50 (3.87 GMACs) and CBAM stride the first 1x1 (variant "v1"), which runs the 3x3 at
    the lower resolution: ResNet-50 costs 3.86 GMACs in v1 and 4.09 in v1.5. Keys are the same.
    """

    replaced_conv = ("conv2", "bn2")  # SKNet-50 (timm's skresnext50_32x4d): the grouped 3x3

    def __init__(
        self,
        *args: Any,
        stage: int,
        position: tuple[int, int] = (0, 1),
        attention: BlockAttention | None = None,
        variant: str = "v1.5",
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self._reshape_branch()
        if stride_on_first_1x1(variant) and self.conv2.stride != (1, 1):
            self.conv1.stride, self.conv2.stride = self.conv2.stride, (1, 1)
        self._init_attention(attention, stage, position, self.conv1.in_channels, self.conv3.out_channels)

    conv3: nn.Conv2d
    bn3: nn.Module

    def _reshape_branch(self) -> None:
        """A hook for bottlenecks whose convs differ from torchvision's (SENet-154's): none here."""

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.after_conv(self.conv2(out))))
        return self.bn3(self.conv3(out))


class SENet154Bottleneck(AttentionBottleneck):
    """SENet-154's bottleneck (SENet paper, appendix; Cadene's `SEBottleneck`, timm's
    `block_reduce_first=2`): the first 1x1 conv has half the grouped 3x3's width (planes*2 instead
    of planes*4 for 64x4d), which then widens it back."""

    def _reshape_branch(self) -> None:
        width = self.conv2.out_channels
        half = width // 2
        self.conv1 = nn.Conv2d(self.conv1.in_channels, half, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(half)
        stride_h, stride_w = self.conv2.stride
        self.conv2 = nn.Conv2d(half, width, kernel_size=3, stride=(stride_h, stride_w), padding=1,
                               groups=self.conv2.groups, bias=False)


def stride_on_first_1x1(variant: str) -> bool:
    """Whether `variant` ("v1", "v1-caffe", ...) strides a bottleneck's first 1x1 (else its 3x3)."""
    return variant.split("-")[0] == "v1"


def caffe_stem_pool(variant: str) -> bool:
    """Whether `variant` uses Caffe's stem max-pool (no padding, ceil mode): see options.VARIANTS."""
    return variant.endswith("-caffe")


class _BlockFactory:
    """Stands in for a block class in torchvision's `ResNet(block, layers)`: `_make_layer` reads
    `expansion` and calls it with the block's positional arguments; we add stage and attention."""

    def __init__(self, block: type[_AttentionSlot], layers: list[int], attention: BlockAttention | None,
                 variant: str) -> None:
        self.block = block
        self.expansion = block.expansion  # type: ignore[attr-defined]
        self.layers = layers
        self.attention = attention
        self.variant = variant
        self.built = [0, 0, 0, 0]  # blocks built so far per stage: the next one's index

    def __call__(self, inplanes: int, planes: int, *args: Any, **kwargs: Any) -> nn.Module:
        stage = STAGE_OF_PLANES[planes]
        index = self.built[stage - 1]
        self.built[stage - 1] += 1
        return self.block(
            inplanes, planes, *args, **kwargs,
            stage=stage, position=(index, self.layers[stage - 1]), attention=self.attention, variant=self.variant,
        )


ARCHITECTURES: dict[str, tuple[type[_AttentionSlot], list[int], dict[str, Any]]] = {
    "resnet18": (AttentionBasicBlock, [2, 2, 2, 2], {}),
    "resnet34": (AttentionBasicBlock, [3, 4, 6, 3], {}),
    "resnet50": (AttentionBottleneck, [3, 4, 6, 3], {}),
    "resnet101": (AttentionBottleneck, [3, 4, 23, 3], {}),
    "resnet152": (AttentionBottleneck, [3, 8, 36, 3], {}),
    "resnext50_32x4d": (AttentionBottleneck, [3, 4, 6, 3], {"groups": 32, "width_per_group": 4}),
    "resnext101_32x4d": (AttentionBottleneck, [3, 4, 23, 3], {"groups": 32, "width_per_group": 4}),
    "resnext101_32x8d": (AttentionBottleneck, [3, 4, 23, 3], {"groups": 32, "width_per_group": 8}),
    "resnext152_64x4d_senet": (SENet154Bottleneck, [3, 8, 36, 3], {"groups": 64, "width_per_group": 4}),
    "wide_resnet50_2": (AttentionBottleneck, [3, 4, 6, 3], {"width_per_group": 128}),
}
"""torchvision's configurations: block type, blocks per stage, width options. resnext101_32x4d is
torchvision's builder at the SENet paper's width (SE-ResNeXt-101 32x4d); resnext152_64x4d_senet
is SENet-154's body (see `_senet154_body`)."""

SENET154_STEM = (64, 64, 128)
"""SENet-154's stem: three 3x3 convs (the first of stride 2) of these widths, replacing the 7x7."""
SENET154_DROPOUT = 0.2
"""Dropout before SENet-154's classifier (SENet paper, appendix)."""


def architecture(arch: str) -> tuple[bool, list[int], dict[str, Any], bool]:
    """For `arch`: whether its blocks are bottlenecks, blocks per stage, torchvision's width options,
    and whether it has the CIFAR stem ("resnet18_cifar")."""
    block, layers, tv_kwargs, cifar = _entry(arch)
    return issubclass(block, AttentionBottleneck), layers, tv_kwargs, cifar


def _entry(arch: str) -> tuple[type[_AttentionSlot], list[int], dict[str, Any], bool]:
    """ARCHITECTURES' entry for `arch`, and whether it has the CIFAR stem."""
    depth, _, suffix = arch.partition("_cifar")
    cifar = arch.endswith("_cifar") and not suffix
    block, layers, tv_kwargs = ARCHITECTURES[depth if cifar else arch]
    return block, layers, tv_kwargs, cifar


def build(arch: str, num_classes: int, variant: str, attention: BlockAttention | None) -> nn.Module:
    """Build `arch` ("resnet50", or "resnet50_cifar" for the CIFAR stem) on torchvision's ResNet."""
    block, layers, tv_kwargs, cifar = _entry(arch)
    factory = _BlockFactory(block, layers, attention, variant)
    model = tv.ResNet(factory, layers, num_classes=num_classes, **tv_kwargs)
    if arch == "resnext152_64x4d_senet":
        _senet154_body(model, factory, layers)
    if caffe_stem_pool(variant):
        # Caffe rounds pooled sizes up instead of padding: 112 -> 56 as torchvision's, windows shifted.
        model.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=0, ceil_mode=True)
    if cifar:
        # The CIFAR ResNets (He et al. Sec. 4.2; the seeds' SENet18): a 3x3 stride-1 stem and no
        # max-pool, so 32x32 inputs reach the last stage at 4x4. Same keys as the ImageNet model.
        model.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=1, padding=1, bias=False)
        nn.init.kaiming_normal_(model.conv1.weight, mode="fan_out", nonlinearity="relu")
        model.maxpool = nn.Identity()
    return model


def _senet154_body(model: tv.ResNet, factory: _BlockFactory, layers: list[int]) -> None:
    """Turn a 64x4d ResNeXt-152 into SENet-154's body (SENet paper, appendix): a stem of three 3x3
    convs (64, 64, 128 wide; torchvision's keys `conv1.{0,3,6}` as timm's deep stem, its last BN
    is `bn1`), so layer1 takes 128 channels (rebuilt); 3x3 stride-2 projection shortcuts in layers
    2-4; dropout before the classifier. The halved first 1x1 is `SENet154Bottleneck`'s."""
    first, second, third = SENET154_STEM
    model.conv1 = nn.Sequential(
        nn.Conv2d(3, first, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(first), nn.ReLU(inplace=True),
        nn.Conv2d(first, second, 3, padding=1, bias=False), nn.BatchNorm2d(second), nn.ReLU(inplace=True),
        nn.Conv2d(second, third, 3, padding=1, bias=False),
    )
    model.bn1 = nn.BatchNorm2d(third)
    model.inplanes = third
    factory.built[0] = 0
    model.layer1 = model._make_layer(factory, 64, layers[0])
    for stage in (2, 3, 4):
        projection = getattr(model, f"layer{stage}")[0].downsample
        conv = projection[0]
        projection[0] = nn.Conv2d(conv.in_channels, conv.out_channels, 3, stride=conv.stride, padding=1, bias=False)
    model.avgpool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Dropout(SENET154_DROPOUT))
    for module in (*model.conv1, *(getattr(model, f"layer{s}")[0].downsample[0] for s in (2, 3, 4))):
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")


def resnet_blocks(model: nn.Module) -> list[tuple[str, int]]:
    """Every residual block as (module path, stage), in forward order."""
    return [
        (f"layer{stage}.{index}", stage)
        for stage in (1, 2, 3, 4)
        for index in range(len(getattr(model, f"layer{stage}")))
    ]
