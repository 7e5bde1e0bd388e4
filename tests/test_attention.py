"""The attention modules on their own: parameters in closed form (checked against timm where it has
the same module), identity initialisation of the residual ones, Non-local on 1-D, 2-D and 3-D
inputs, and SE without the squeeze."""

from __future__ import annotations

import pytest
import torch
from closed_forms import (
    bam_params,
    coord_params,
    danet_params,
    gc_params,
    ge_params,
    nonlocal_params,
    sk_params,
    srm_params,
    triplet_params,
)
from torch import nn

import senet_cli
from senet_cli.attention.bam import BAM
from senet_cli.attention.coord import CoordinateAttention
from senet_cli.attention.danet import DualAttention
from senet_cli.attention.gc import GlobalContext
from senet_cli.attention.ge import GatherExcite
from senet_cli.attention.non_local import NonLocal
from senet_cli.attention.simam import SimAM
from senet_cli.attention.sk import SelectiveKernel
from senet_cli.attention.srm import SRM
from senet_cli.attention.triplet import TripletAttention


def params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


WIDTHS = (64, 256, 1024)


@pytest.mark.parametrize("c", WIDTHS)
def test_parameter_counts_in_closed_form(c):
    assert params(BAM(c)) == bam_params(c)
    assert params(DualAttention(c)) == danet_params(c)
    assert params(NonLocal(c)) == nonlocal_params(c)
    assert params(NonLocal(c, bn=False)) == nonlocal_params(c, bn=False)
    assert params(GlobalContext(c)) == gc_params(c)
    assert params(GlobalContext(c, pooling="avg", fusion="add+mul")) == gc_params(c, pooling="avg", fusion="add+mul")
    assert params(GatherExcite(c)) == ge_params(c) == 0  # GE-theta-: pooling gather
    assert params(GatherExcite(c, extent=8, parametric=True)) == ge_params(c, extent=8, parametric=True)
    assert params(GatherExcite(c, extent=2, parametric=True, mlp=True)) == ge_params(c, extent=2, parametric=True,
                                                                                     mlp=True)
    assert params(SelectiveKernel(c, groups=32)) == sk_params(c, groups=32)
    assert params(CoordinateAttention(c)) == coord_params(c)
    assert params(SimAM(c)) == 0
    assert params(TripletAttention(c)) == triplet_params() == 300
    assert params(TripletAttention(c, spatial=False)) == triplet_params(spatial=False) == 200
    assert params(SRM(c)) == srm_params(c)


@pytest.mark.parametrize("c", WIDTHS)
def test_global_context_matches_timm(c):
    timm_layers = pytest.importorskip("timm.layers")
    ours = GlobalContext(c)
    theirs = timm_layers.GlobalContext(c, use_attn=True, fuse_add=True, fuse_scale=False, rd_ratio=1 / 16)
    assert params(ours) == params(theirs)
    both = timm_layers.GlobalContext(c, use_attn=False, fuse_add=True, fuse_scale=True, rd_ratio=1 / 16)
    assert params(GlobalContext(c, pooling="avg", fusion="add+mul")) == params(both)


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


def test_nosqueeze_gates_every_position():
    block = senet_cli.build_model("se_resnet18", squeeze="none").layer1[0].se
    gates = []
    block.gate.register_forward_hook(lambda m, args, out: gates.append(out))
    block(torch.randn(1, 64, 8, 8))
    assert gates[0].shape == (1, 64, 8, 8)
