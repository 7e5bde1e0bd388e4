"""`count()` against the papers' tables, closed-form formulas (the quadratic modules' MACs at two input
sizes included) and fvcore; every row adds up, VGG's units included."""

from __future__ import annotations

import pytest
from closed_forms import (
    cbam_block_elementwise_ops,
    cbam_block_macs,
    danet_macs,
    danet_pairwise_macs,
    nonlocal_macs,
    resnet50_conv_linear_macs,
    se_block_elementwise_ops,
    se_block_macs,
    se_block_params,
)
from quick import slow_except

import senet_cli
from senet_cli.attention import ATTENTION
from senet_cli.count.references import reference_counts
from senet_cli.errors import SenetError
from senet_cli.zoo import input_shape, make_config

SIDE = {1: 56, 2: 28, 3: 14, 4: 7}  # ResNet-50 stage resolution at 224x224


def test_paper_figures():
    assert round(senet_cli.count("resnet50", variant="v1").macs / 1e9, 2) == 3.86  # SENet Table 2
    assert round(senet_cli.count("resnet50").macs / 1e9, 2) == 4.09  # torchvision's docs
    se_v1 = senet_cli.count("se_resnet50", variant="v1").macs / 1e9
    assert 3.86 <= round(se_v1, 2) <= 3.87  # SENet Table 2
    assert round(senet_cli.count("se_resnet50", variant="v1", squeeze="none").macs / 1e9, 2) == 4.27  # Table 16


@pytest.mark.parametrize("variant", ["v1", "v1.5"])
def test_resnet50_macs_equal_the_closed_form(variant):
    assert senet_cli.count("resnet50", variant=variant).macs == resnet50_conv_linear_macs(224, variant)


@pytest.mark.parametrize("ratio", [4, 16])
def test_each_se_block_costs_its_closed_form(ratio):
    batch = 2
    report = senet_cli.count("se_resnet50", ratio=ratio, batch=batch, input_size=224)
    for block in report.blocks:
        c, hw = 256 * 2 ** (block.stage - 1), SIDE[block.stage] ** 2
        assert block.attention_params == se_block_params(c, ratio)
        assert block.attention_macs == se_block_macs(c, ratio, batch=batch)  # W1 and W2
        # pooling reads C*H*W, gating writes C*H*W; bias adds, ReLU and sigmoid on the vectors
        assert block.attention_elementwise_ops == se_block_elementwise_ops(c, hw, ratio, batch=batch)
    assert report.overhead.params == sum(b.attention_params for b in report.blocks)
    assert report.overhead.macs == report.attention_total("macs")
    assert report.overhead.elementwise_ops == report.attention_total("elementwise_ops")


def test_nosqueeze_pays_the_fcs_at_every_position():
    report = senet_cli.count("se_resnet50", variant="v1", squeeze="none")
    for block in report.blocks:
        c, hw = 256 * 2 ** (block.stage - 1), SIDE[block.stage] ** 2
        assert block.attention_macs == se_block_macs(c, 16, positions=hw)


def test_cbam_and_eca_attention_costs():
    eca = senet_cli.count("eca_resnet50")
    assert eca.overhead.params == 86
    first = eca.blocks[0]  # C=256, k=5 over a length-256 vector
    assert first.attention_macs == 256 * 5
    cbam = senet_cli.count("cbam_resnet18", input_size=224)
    block = cbam.blocks[0]  # C=64 at 56x56
    c, hw = 64, 56 * 56
    assert block.attention_macs == cbam_block_macs(c, hw)  # shared MLP twice; 7x7 conv 2->1
    assert block.attention_elementwise_ops == cbam_block_elementwise_ops(c, hw)


def test_quadratic_modules_macs_grow_with_the_square_of_the_positions():
    """DANet on ResNet-50's last stage (C=2048), Non-local (C=512, sub-sampled) in layer2: MACs in
    closed form at 224 and 448 input; doubling the side quadruples N and multiplies the pairwise
    terms by 16."""
    for side in (224, 448):
        report = senet_cli.count("danet_resnet50", input_size=side)
        n = (side // 32) ** 2
        assert report.blocks[-1].attention_macs == danet_macs(n)
        report = senet_cli.count("nonlocal_resnet50", input_size=side)
        n = (side // 8) ** 2
        assert next(b for b in report.blocks if b.name == "layer2.1").attention_macs == nonlocal_macs(n)
    small, large = (senet_cli.count("danet_resnet50", input_size=s).attention_total("macs") for s in (224, 448))
    pairwise = danet_pairwise_macs  # DANet's terms in N^2
    assert large - 4 * small == pairwise(14 * 14) - 4 * pairwise(7 * 7) == 12 * pairwise(7 * 7)


# quick subset: every attention module on one small ResNet, and each other family once
QUICK_FAMILIES = ("se_mobilenet_v2", "se_shufflenet_v2_x1_0", "se_vgg16_bn", "se_inception_v3", "resnet18_cifar")


@pytest.mark.parametrize("name", slow_except(senet_cli.list_models(),
                                             lambda n: n.endswith("_resnet18_cifar") or n in QUICK_FAMILIES))
def test_rows_add_up_and_nothing_is_left_uncounted(name):
    report = senet_cli.count(name)
    for measure in ("params", "macs", "elementwise_ops"):
        assert sum(getattr(row, measure) for row in report.rows) == getattr(report, measure)
    assert report.uncounted_ops == ()
    if report.config.attention is None:
        assert report.baseline.params == report.params and report.overhead.macs == 0
    elif ATTENTION.get(report.config.attention).slot == "conv":
        # SK replaces each block's 3x3 conv: its units hold more than they add.
        assert report.attention_total("params") > report.overhead.params > 0
    else:
        assert report.overhead.params == report.attention_total("params") >= 0
        assert report.overhead.elementwise_ops == report.attention_total("elementwise_ops") > 0


def test_vgg_units_carry_their_conv_and_bn_in_counts():
    report = senet_cli.count("se_vgg16_bn", input_size=32)
    assert [row.name for row in report.blocks][:2] == ["features.2", "features.5"]
    assert report.stem.macs == 0 and report.stem.params == 0  # VGG has no stem: unit 1 starts at the input
    first = report.blocks[0]
    assert first.params - first.attention_params == 3 * 64 * 9 + 64 + 2 * 64  # conv with bias, BN
    assert first.macs - first.attention_macs == 32 * 32 * 64 * 27


@pytest.mark.parametrize("name", slow_except([
    "resnet18", "se_resnet50", "cbam_resnet18", "eca_resnet34", "se_resnext50_32x4d",
    # the extended zoo: matrix products (DANet, Non-local, GC), SK's branches, the other families
    "danet_resnet18", "nonlocal_resnet18", "gc_resnet18", "sk_resnet18", "coord_mobilenet_v2",
    "bam_shufflenet_v2_x1_0", "triplet_inception_v3",
], lambda n: n in ("se_resnet50", "sk_resnet18")))  # quick: the paper's model and a conv-replacing module
def test_conv_and_linear_macs_agree_with_fvcore(name):
    config = make_config(name)
    shape = input_shape(config, 64 if "inception" not in name else 96, 1)
    (fvcore,) = reference_counts(config, shape, ["fvcore"])
    assert senet_cli.count(name, input_size=shape[2:]).macs == fvcore.conv_linear_macs


def test_meta_counting_handles_huge_inputs_and_scales_linearly():
    small = senet_cli.count("se_resnet18", input_size=256, batch=1)
    huge = senet_cli.count("se_resnet18", input_size=1024, batch=64)
    # Convolutions grow with batch x pixels; the SE FCs and the classifier with the batch only.
    def spatial(report):
        return report.macs - report.head.macs - report.attention_total("macs")

    assert spatial(huge) == 64 * 16 * spatial(small)
    assert huge.attention_total("macs") == 64 * small.attention_total("macs")
    assert huge.head.macs == 64 * small.head.macs


@pytest.mark.parametrize("kwargs, message", [
    ({"input_size": 16}, "too small for resnet50"),
    ({"batch": 0}, "batch must be at least 1"),
    ({"references": ["ptflops"]}, "unknown counter"),
])
def test_bad_count_arguments(kwargs, message):
    with pytest.raises(SenetError, match=message):
        senet_cli.count("se_resnet50", **kwargs)


def test_json_contract_keys():
    data = senet_cli.count("se_resnet18").to_dict()
    assert {"model", "options", "input", "params", "macs", "elementwise_ops", "baseline", "overhead",
            "blocks"} <= set(data)
    assert set(data["baseline"]) == {"model", "params", "macs", "elementwise_ops", "bytes", "kernels"}
    assert {"params", "macs", "elementwise_ops", "params_pct", "macs_pct"} <= set(data["overhead"])
    assert set(data["blocks"][0]) == {"name", "stage", "params", "macs", "elementwise_ops", "attention_params",
                                      "attention_macs", "attention_elementwise_ops", "bytes", "attention_bytes",
                                      "kernels", "attention_kernels"}  # predicted_ms only with a calibrated device
    assert data["input"] == [1, 3, 224, 224] and data["blocks"][0]["name"] == "layer1.0"



def test_a_configuration_counts_as_its_name_and_options_do():
    config = make_config("cbam_resnet18", ratio=8, stages="2,3")
    assert senet_cli.count(config) == senet_cli.count("cbam_resnet18", ratio=8, stages="2,3")
    with pytest.raises(SenetError, match="holds every option"):
        senet_cli.count(config, ratio=4)
