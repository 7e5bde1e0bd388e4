"""Non-local block, embedded Gaussian version.

Paper: "Non-local Neural Networks", Wang, Girshick, Gupta, He (CVPR 2018),
https://arxiv.org/abs/1711.07971

z = W y + x with y = softmax(theta(x)^T phi(x)) g(x) (paper eq. 1-3): theta, phi and g are 1x1
convolutions to C/2 channels (`ratio` 2), every position attends to every other, and W (a 1x1
conv back to C, followed by BN) is initialised to zero so the block starts as the identity (paper
Sec. 4.1). Sub-sampling (Sec. 3.3) max-pools phi and g by 2 in each spatial dimension (not in
time), which quarters the pairwise cost. Works on 1D [B, C, T], 2D [B, C, H, W] and 3D
[B, C, T, H, W] inputs (`dimension`).

Cost: with N positions and N' = N/4 after sub-sampling, the two matrix products take
2 * N * N' * C/2 MACs, quadratic in the positions. The paper's ResNet-50 setup (5 blocks) puts a
block after every other residual block of res3 and res4 (2 + 3 blocks), which is the zoo's default:
stages 2 and 3, `every` 2.

Parameter layout follows the widely used PyTorch port of the official Caffe2 code
(AlexHex7/Non-local_pytorch): `g`, `theta`, `phi`, `W` (`g.0`/`phi.0` and `W.0`/`W.1` when
sub-sampling and BN wrap them in Sequentials). All convs have biases, as there.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from senet_cli.attention.base import AttentionModule, reduced_channels
from senet_cli.attention.spec import StageKeys, infer_ratio
from senet_cli.errors import OptionError

_LAYERS = {
    1: (nn.Conv1d, nn.BatchNorm1d, lambda: nn.MaxPool1d(kernel_size=2)),
    2: (nn.Conv2d, nn.BatchNorm2d, lambda: nn.MaxPool2d(kernel_size=2)),
    3: (nn.Conv3d, nn.BatchNorm3d, lambda: nn.MaxPool3d(kernel_size=(1, 2, 2))),
}


class NonLocal(AttentionModule):
    """Embedded Gaussian non-local block for 1D, 2D or 3D features."""

    def __init__(
        self, channels: int, ratio: int = 2, *, dimension: int = 2, sub_sample: bool = True, bn: bool = True
    ) -> None:
        super().__init__()
        if dimension not in _LAYERS:
            raise OptionError("dimension", dimension, "1, 2 or 3",
                              f"non-local dimension must be 1, 2 or 3, got {dimension}")
        conv, norm, pool = _LAYERS[dimension]
        inner = reduced_channels(channels, ratio)
        self.inner_channels = inner
        g: nn.Module = conv(channels, inner, kernel_size=1)
        phi: nn.Module = conv(channels, inner, kernel_size=1)
        self.g = nn.Sequential(g, pool()) if sub_sample else g
        self.theta = conv(channels, inner, kernel_size=1)
        self.phi = nn.Sequential(phi, pool()) if sub_sample else phi
        project = conv(inner, channels, kernel_size=1)
        self.W = nn.Sequential(project, norm(channels)) if bn else project
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Zero the last layer of W (BN's scale and shift, or the conv): the block starts as x."""
        last = self.W[1] if isinstance(self.W, nn.Sequential) else self.W
        weight, bias = last.weight, last.bias
        assert isinstance(weight, torch.Tensor) and isinstance(bias, torch.Tensor)  # BN, or a conv with bias
        nn.init.zeros_(weight)
        nn.init.zeros_(bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch = x.shape[0]
        g = self.g(x).view(batch, self.inner_channels, -1).transpose(1, 2)  # [B, N', C/2]
        theta = self.theta(x).view(batch, self.inner_channels, -1).transpose(1, 2)  # [B, N, C/2]
        phi = self.phi(x).view(batch, self.inner_channels, -1)  # [B, C/2, N']
        attention = torch.softmax(torch.matmul(theta, phi), dim=-1)  # [B, N, N']
        y = torch.matmul(attention, g).transpose(1, 2).reshape(batch, self.inner_channels, *x.shape[2:])
        return self.W(y) + x


def infer_options(stage_keys: StageKeys, stage_count: int) -> tuple[list[dict[str, Any]], list[str]]:
    """Sub-sampling and BN from the Sequential wrappers' keys (`g.0`, `W.1`), the ratio from theta."""
    first = next(iter(stage_keys.values()))
    if "theta.weight" not in first:
        return [], []
    ratios = infer_ratio(stage_keys, "theta.weight")
    options = {"sub_sample": "g.0.weight" in first, "bn": "W.1.weight" in first}
    return [{**options, "ratio": r} for r in ratios[:1]], []
