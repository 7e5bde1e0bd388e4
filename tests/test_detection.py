"""Architecture detection from weights alone: every registered configuration is recovered from its
state dict's shapes; parameter-free modules read as their backbone; what weights cannot tell is
said; the wrong architecture and unknown weights are reported."""

from __future__ import annotations

import pytest
import torch
from quick import slow_except

from senet_cli import inspect, load_checkpoint
from senet_cli.attention import ATTENTION
from senet_cli.checkpoint.recognise import detect, resolve, skeleton
from senet_cli.errors import SenetError
from senet_cli.zoo import list_models, make_config

MODEL = "se_resnet18_cifar"  # the model conftest's se_state is built from

PARAMETER_FREE = ("simam", "ge")  # with default options: their models have the plain backbone's weights
DETECTION_CASES = [
    (f"{attention}_{backbone}", {}) for attention in ATTENTION if attention not in PARAMETER_FREE
    for backbone in ("resnet18", "resnet50", "resnext50_32x4d", "resnet34_cifar", "mobilenet_v2",
                     "shufflenet_v2_x1_0", "vgg16_bn", "inception_v3")
] + [(name, {}) for name in list_models("se_*")] + [
    ("ge_resnet50", {"extent": 4, "parametric": True}), ("ge_mobilenet_v2", {"mlp": True}),
    ("nonlocal_resnet50", {"sub_sample": False}), ("gc_resnet50", {"fusion": "add+mul"}),
    ("se_resnet50", {"ratio": 4, "bias": False}), ("se_resnet18_cifar", {"stages": "3,4", "num_classes": 7}),
    ("se_resnet50", {"placement": "pre"}), ("se_resnet50", {"excitation": "channelwise"}),
    ("se_resnet50", {"excitation": "group", "groups": 8}), ("se_resnet50", {"excitation": "fc"}),
    ("eca_resnet50", {"k_size": 3}), ("eca_resnet18", {"k_size": "3,5,7,9"}),
    ("cbam_resnet18", {"spatial": False}), ("cbam_resnet18", {"spatial_kernel": 3, "ratio": 8}),
    ("se_resnet34", {"ratio": 32}), ("se_resnext50_32x4d", {"ratio": 8}),
]


@pytest.mark.parametrize("name,options", slow_except(  # quick: each module's CIFAR ResNet, every option case
    DETECTION_CASES, lambda case: case[0].endswith("resnet34_cifar") or bool(case[1]),
    ids=lambda case: f"{case[0]}-{case[1]}"))
def test_detection_recovers_every_registered_configuration(name, options):
    config = make_config(name, **options)
    assert detect(skeleton(config).shapes).config == config


@pytest.mark.parametrize("name", [f"{a}_{b}" for a in PARAMETER_FREE for b in ("resnet50", "vgg16_bn")])
def test_parameter_free_models_are_detected_as_their_backbone(name):
    config = make_config(name)
    assert detect(skeleton(config).shapes).config == make_config(config.backbone)


@pytest.mark.parametrize("name, kernels", [("eca_mobilenet_v2", (3, 3, 5, 5, 7)),
                                           ("eca_shufflenet_v2_x1_0", (3, 5, 7))])
def test_per_stage_eca_kernels_follow_the_backbones_stage_count(name, kernels):
    """MobileNetV2 has 5 stages and ShuffleNetV2 3: one kernel per stage is described and detected."""
    config = make_config(name, k_size=",".join(map(str, kernels)))
    assert dict(config.attention_options)["k_size"] == kernels
    model = skeleton(config)
    sizes = [shape[-1] for key, shape in model.shapes.items() if key.endswith("eca.conv.weight")]
    assert sorted(set(sizes)) == sorted(set(kernels))
    assert detect(model.shapes).config == config


def test_detection_says_what_weights_cannot_tell():
    notes = " ".join(detect(skeleton(make_config("se_resnet50")).shapes).notes)
    assert "variant v1.5" in notes and "placement standard" in notes and "squeeze avg" in notes


def test_wrong_architecture_is_reported_as_keys_with_the_fitting_model(se_state, tmp_path, cli):
    path = tmp_path / "se.pth"
    torch.save(se_state, path)
    with pytest.raises(SenetError) as error:
        inspect(path, model="cbam_resnet18_cifar", data="synthetic", limit=1)
    message = str(error.value)
    assert "missing (layer1.0.cbam" in message and "unexpected (layer1.0.se" in message
    assert "its weights fit se_resnet18_cifar" in message and message.endswith("drop model to use that")
    assert error.value.fits == "se_resnet18_cifar"  # the data behind the message
    with pytest.raises(SenetError, match="pass num_classes=7") as error:
        inspect(path, model=MODEL, ratio=8, data="synthetic", limit=1)
    assert error.value.arguments["num_classes"] == ("num_classes", 7)
    code, _, err = cli(["inspect", str(path), "--model", MODEL, "--ratio", "8", "--data", "synthetic"])
    assert code == 2 and "pass --num-classes 7" in err


def test_unknown_weights_are_not_detected(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"encoder.weight": torch.zeros(3, 3), "decoder.weight": torch.zeros(3)}, path)
    with pytest.raises(SenetError, match="could not detect the architecture"):
        resolve(load_checkpoint(path))
