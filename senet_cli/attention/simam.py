"""SimAM: a parameter-free attention module.

Paper: "SimAM: A Simple, Parameter-Free Attention Module for Convolutional Neural Networks",
Yang, Zhang, Li, Xie (ICML 2021), https://proceedings.mlr.press/v139/yang21o.html
(no arXiv version)

Each neuron's importance is the inverse of its minimal energy (paper eq. 5-6), which has the
closed form e* ^-1 = (t - mu)^2 / (4 (sigma^2 + lambda)) + 0.5 with mu and sigma^2 the channel's
mean and variance over the other H*W - 1 positions; the features are scaled by sigmoid(1/e*), a
full 3-D (channel x position) gate with no parameters at all (lambda = 1e-4).

Placement: the official ResNets (ZjjConan/SimAM, networks/imagenet/resnet.py) apply it right
after the 3x3 conv, before its BN, on the block's inner width; the zoo uses the same slot as every
other per-block module (after the residual branch's last BN) by default, so modules compare like
for like; placement "inner" puts it where the official code does (`simam_resnet50`, placement=inner).
Either way it adds no parameters; its elementwise cost scales with the width it sees.
"""

from __future__ import annotations

import torch

from senet_cli.attention.base import AttentionModule, make_gate


class SimAM(AttentionModule):
    """x * sigmoid((x - mu)^2 / (4 (var + lambda)) + 0.5), per channel, var over H*W - 1."""

    def __init__(self, channels: int, *, e_lambda: float = 1e-4) -> None:
        super().__init__()
        del channels  # parameter-free: the width does not matter
        self.e_lambda = e_lambda
        self.gate = make_gate("sigmoid")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        positions = x.shape[2] * x.shape[3] - 1
        squared = (x - x.mean((2, 3), keepdim=True)).pow(2)
        variance = squared.sum((2, 3), keepdim=True) / positions
        return x * self.gate(squared / (4 * (variance + self.e_lambda)) + 0.5)
