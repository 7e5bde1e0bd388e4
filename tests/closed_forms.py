"""Closed-form derivations the tests hold the code to: ResNet layouts and MACs, each attention module's
parameters and costs, written from the papers (and their official code), never from running the code
under test.

Imported by the test modules as `from closed_forms import ...` (tests/ is on sys.path under pytest's
default import mode, as for conftest.py).
"""

from __future__ import annotations

# --- ResNet layouts ---------------------------------------------------------------------------------

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


# --- SE and CBAM ------------------------------------------------------------------------------------


def se_block_params(c: int, ratio: int = 16, bias: bool = True) -> int:
    """SE adds W1 (C x C/r) and W2 (C/r x C) per block, plus C/r + C biases."""
    r = c // ratio
    return 2 * c * r + (r + c if bias else 0)


def se_params(depth: str, ratio: int, bias: bool = True) -> int:
    """SE's parameters over every block of a ResNet depth."""
    return sum(se_block_params(c, ratio, bias) for _, c in block_channels(depth))


def se_block_macs(c: int, ratio: int = 16, *, batch: int = 1, positions: int = 1) -> int:
    """W1 and W2 on each squeezed vector: one per image, or one per position without the squeeze."""
    return batch * positions * 2 * c * (c // ratio)


def se_block_elementwise_ops(c: int, hw: int, ratio: int = 16, *, batch: int = 1) -> int:
    """Pooling reads C*H*W, gating writes C*H*W; bias adds, ReLU and sigmoid on the vectors."""
    r = c // ratio
    return batch * (2 * c * hw + (r + c) + r + c)


def cbam_spatial_params(kernel: int = 7) -> int:
    """CBAM's spatial gate: a 2->1 kxk conv without bias, BN(1) weight and bias."""
    return 2 * kernel * kernel + 2


def cbam_block_macs(c: int, hw: int, ratio: int = 16, kernel: int = 7) -> int:
    """The shared MLP on the avg- and max-pooled vectors; the kxk conv 2->1 at every position."""
    r = c // ratio
    return 2 * (2 * c * r) + 2 * kernel * kernel * hw


def cbam_block_elementwise_ops(c: int, hw: int, ratio: int = 16) -> int:
    r = c // ratio
    channel = 2 * c * hw + 2 * (r + c + r) + c + c + c * hw  # 2 pools; MLP twice; add; sigmoid; gate
    spatial = 2 * c * hw + hw + hw + c * hw  # 2 channel pools; BN; sigmoid; gate
    return channel + spatial


# --- the extended zoo's modules, parameters at C channels ------------------------------------------


def bam_params(c: int, r: int = 16) -> int:
    m = c // r
    channel = c * m + m + 2 * m + m * c + c  # FC, BN1d, FC
    spatial = (c * m + m + 2 * m) + 2 * (9 * m * m + m + 2 * m) + (m + 1)  # 1x1, two dilated 3x3, 1x1
    return channel + spatial


def danet_params(c: int) -> int:
    q = c // 8
    return 2 * (c * q + q) + (c * c + c) + 2  # query, key, value, two gammas


def nonlocal_params(c: int, bn: bool = True) -> int:
    i = c // 2
    return 3 * (c * i + i) + (i * c + c) + (2 * c if bn else 0)  # theta, phi, g; W; W's BN


def gc_params(c: int, r: int = 16, *, pooling: str = "att", fusion: str = "add") -> int:
    """Attention pooling's 1x1 mask conv, then one transform (1x1, LayerNorm, 1x1) per fusion."""
    m = c // r
    transform = c * m + m + 2 * m + m * c + c
    mask = c + 1 if pooling == "att" else 0
    return mask + len(fusion.split("+")) * transform


def ge_params(c: int, r: int = 16, *, extent: int = 0, parametric: bool = False, mlp: bool = False) -> int:
    """GE-theta- (pooling gather) has none; GE-theta gathers with log2(e) depthwise 3x3 convs + BN;
    GE-theta+ adds an SE-like MLP (1x1, ReLU, 1x1)."""
    m = c // r
    gather = (extent.bit_length() - 1) * (9 * c + 2 * c) if parametric else 0
    return gather + (c * m + m + m * c + c if mlp else 0)


def sk_params(c: int, groups: int = 32, r: int = 16, min_dim: int = 32) -> int:
    """Two grouped 3x3 branches (the second dilated) with BN; fuse FC to d, BN, one FC per branch."""
    d = max(c // r, min_dim)
    return 2 * (9 * c * c // groups + 2 * c) + (c * d + 2 * d + d * 2 * c)


def coord_params(c: int, r: int = 32, min_channels: int = 8) -> int:
    """A shared 1x1 to m channels with bias and BN, then a 1x1 with bias per direction."""
    mid = max(min_channels, c // r)
    return c * mid + mid + 2 * mid + 2 * (mid * c + c)


def triplet_params(spatial: bool = True) -> int:
    """A 7x7 conv 2->1 with BN per branch: three branches, two without the spatial one."""
    return (3 if spatial else 2) * (2 * 7 * 7 + 2)


def srm_params(c: int) -> int:
    """A channel-wise fully connected layer over (mean, std), then BN: 2C + 2C."""
    return 4 * c


# --- the quadratic modules' MACs at N positions -----------------------------------------------------


def danet_macs(n: int, c: int = 2048) -> int:
    q = c // 8
    convs = n * c * q * 2 + n * c * c
    position = n * n * q + c * n * n  # Q^T K, then V S^T
    channel = 2 * c * c * n  # A A^T, then X A
    return convs + position + channel


def danet_pairwise_macs(n: int, c: int = 2048) -> int:
    """DANet's terms in N^2: the position module's two products."""
    return n * n * (c // 8 + c)


def nonlocal_macs(n: int, c: int = 512) -> int:
    """Non-local with the sub-sampled (2x2 max-pooled) phi and g."""
    i, pooled = c // 2, n // 4
    return 3 * n * c * i + 2 * n * pooled * i + n * i * c  # theta, phi, g; two products; W
