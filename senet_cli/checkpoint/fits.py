"""Cheap tests of whether a checkpoint's {key: shape} can be a backbone, one per family.

Detection builds and compares in full only the backbones that pass their family's test, so each
test looks at a few keys that tell the family's members apart (blocks per stage, stem, widths);
a test never decides alone, it only rules out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from senet_cli.backbones import BackboneSpec

Shapes = Mapping[str, tuple[int, ...]]


def resnet_fits(arch: str, shapes: Shapes) -> bool:
    """Blocks per stage, stem kernel and stage-1 width: tells ResNet-50 from ResNeXt-50 and Wide
    ResNet-50 (the 3x3 conv's width and groups) and the ImageNet stem (7x7) from the CIFAR one (3x3)."""
    from senet_cli.backbones.resnet import architecture

    bottleneck, layers, options, cifar = architecture(arch)
    found = [0, 0, 0, 0]
    for key in shapes:
        head, _, rest = key.partition(".")
        if head.startswith("layer") and head[5:].isdigit() and 1 <= int(head[5:]) <= 4:
            index = rest.partition(".")[0]
            if index.isdigit():
                found[int(head[5:]) - 1] = max(found[int(head[5:]) - 1], int(index) + 1)
    senet154 = arch == "resnext152_64x4d_senet"  # three 3x3 stem convs (conv1.0/3/6), first 1x1 halved
    stem = shapes.get("conv1.0.weight" if senet154 else "conv1.weight")
    if found != layers or stem is None or len(stem) != 4 or stem[-1] != (3 if cifar or senet154 else 7):
        return False
    groups = options.get("groups", 1)
    width = int(64 * options.get("width_per_group", 64) / 64) * groups
    # An SK unit in place of a bottleneck's conv2 (or a basic block's conv1) keeps that conv's
    # shape in each branch, or half its input with split_input.
    plain = shapes.get("layer1.0.conv2.weight")
    mid = plain or shapes.get("layer1.0.conv2.paths.0.conv.weight")
    if mid is None:
        return False
    per_group = width // 2 // groups if senet154 else width // groups
    inputs = (per_group,) if plain else (per_group, per_group // 2)
    if bottleneck:
        return mid[0] == width and mid[1] in inputs and "layer1.0.conv3.weight" in shapes
    return "layer1.0.conv3.weight" not in shapes


def mobilenet_fits(arch: str, shapes: Shapes) -> bool:
    """The stem conv, 17 units and the 1280-wide last conv, untouched by any attention."""
    return (shapes.get("features.0.0.weight") == (32, 3, 3, 3) and "features.18.0.weight" in shapes
            and "features.17.conv.2.weight" in shapes)


def shufflenet_fits(arch: str, shapes: Shapes) -> bool:
    """The 24-wide stem conv and the last unit of stage 4."""
    return shapes.get("conv1.0.weight") == (24, 3, 3, 3) and "stage4.3.branch2.0.weight" in shapes


def vgg_fits(arch: str, shapes: Shapes) -> bool:
    """The classifier's 512*7*7 -> 4096 layer (convs may have become SK units)."""
    return shapes.get("classifier.0.weight") == (4096, 25088) and "classifier.6.weight" in shapes


def inception_fits(arch: str, shapes: Shapes) -> bool:
    """The first Inception module and the stem conv."""
    return "Mixed_5b.branch1x1.conv.weight" in shapes and "Conv2d_1a_3x3.conv.weight" in shapes


FITS: dict[str, Callable[[str, Shapes], bool]] = {
    # BackboneSpec.family -> its test; a family without one is always compared in full.
    "resnet": resnet_fits,
    "mobilenet": mobilenet_fits,
    "shufflenet": shufflenet_fits,
    "vgg": vgg_fits,
    "inception": inception_fits,
}


def may_fit(spec: BackboneSpec, shapes: Shapes) -> bool:
    """False when the weights cannot be this backbone; True when a full comparison is needed."""
    test = FITS.get(spec.family)
    return True if test is None else test(spec.arch, shapes)
