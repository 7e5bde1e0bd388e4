"""Shared helpers: closed-form ResNet arithmetic used as the independent reference for counts."""

from __future__ import annotations

STAGE_BLOCKS = {
    "resnet18": (2, 2, 2, 2), "resnet34": (3, 4, 6, 3), "resnet50": (3, 4, 6, 3),
    "resnet101": (3, 4, 23, 3), "resnet152": (3, 8, 36, 3),
}
BOTTLENECK_OUT = (256, 512, 1024, 2048)
BASIC_OUT = (64, 128, 256, 512)


def block_channels(depth: str) -> list[tuple[int, int]]:
    """(stage, output channels) of every block of a ResNet depth, in order."""
    widths = BASIC_OUT if depth in ("resnet18", "resnet34") else BOTTLENECK_OUT
    return [
        (stage + 1, widths[stage])
        for stage, count in enumerate(STAGE_BLOCKS[depth])
        for _ in range(count)
    ]


def resnet50_conv_linear_macs(size: int, variant: str) -> int:
    """ResNet-50's conv + fc MACs from its definition (He et al. Table 1), without running it."""
    macs = 0
    h = size // 2  # 7x7/2 stem conv
    macs += h * h * 64 * 3 * 49
    h //= 2  # 3x3/2 max-pool
    inplanes = 64
    for stage, blocks in enumerate((3, 4, 6, 3)):
        width = 64 * 2**stage
        out = width * 4
        for index in range(blocks):
            stride = 2 if (index == 0 and stage > 0) else 1
            h_out = h // stride
            h_mid = h_out if variant == "v1" else h  # v1 strides the first 1x1, v1.5 the 3x3
            macs += h_mid * h_mid * width * inplanes  # 1x1 reduce
            macs += h_out * h_out * width * width * 9  # 3x3
            macs += h_out * h_out * out * width  # 1x1 expand
            if index == 0:
                macs += h_out * h_out * out * inplanes  # projection shortcut
            inplanes, h = out, h_out
    return macs + 2048 * 1000  # fc
