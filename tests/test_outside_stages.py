"""Models from outside the zoo: their blocks and stages (from timm's feature_info, torchvision's
stages, else the spatial reduction along the forward), their default input size (timm's
pretrained_cfg), and raw timm/torchvision state dicts recognised from their keys and shapes by an
index built in a temp cache dir from a few models (the full index takes minutes: the benchmark
builds it). Expected numbers come from the papers' architecture tables, not from the code."""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pytest
import torch
import torchvision

import senet_cli
from senet_cli.checkpoint.loading import load_checkpoint
from senet_cli.errors import ArchitectureError
from senet_cli.outside import index as outside_index
from senet_cli.outside.load import checkpoint_subject
from senet_cli.subject import input_shape, subject_for

timm = pytest.importorskip("timm")


def _blocks(name: str) -> list[tuple[str, int]]:
    subject = subject_for(name)
    return subject.blocks(subject.build(meta=True))


def _per_stage(blocks: list[tuple[str, int]]) -> list[int]:
    stages = [stage for _, stage in blocks]
    assert stages == sorted(stages) and set(stages) == set(range(1, max(stages) + 1))  # 1..N, in order
    return [stages.count(stage) for stage in range(1, max(stages) + 1)]


def test_the_stem_of_gcresnet50t_is_no_block():
    blocks = _blocks("timm:gcresnet50t")
    assert not any(path.startswith("stem") for path, _ in blocks)
    assert _per_stage(blocks) == [3, 4, 6, 3]  # ResNet-50's stages (He et al., table 1)
    assert all(stage == int(path.split(".")[1]) + 1 for path, stage in blocks)


def test_regnety_008_rows_are_named_alike():
    blocks = _blocks("timm:regnety_008")
    assert blocks[0] == ("s1.b1", 1)
    assert _per_stage(blocks) == [1, 3, 8, 2]  # RegNetY-800MF's depths (Radosavovic et al., appendix)
    assert all(path.startswith(f"s{stage}.b") for path, stage in blocks)


def test_rexnet_rows_span_its_stages():
    # ReXNet-1.0: 16 bottlenecks in groups of 1, 2, 2, 3, 3, 5 with strides 1, 2, 2, 2, 1, 2 after a
    # stride-2 stem: output strides 2, 4, 8, 16, 32 hold 1, 2, 2, 6, 5 of them; the final 1x1 conv
    # (features.16) runs at stride 32
    assert _per_stage(_blocks("timm:rexnet_100")) == [1, 2, 2, 6, 5 + 1]


def test_torchvision_mobilenet_v3_stages_are_its_output_strides():
    # MobileNetV3-Small (Howard et al., table 2): bneck strides 2, 2, 1, 2, 1, 1, 1, 1, 2, 1, 1 after
    # a stride-2 stem: strides 4, 8, 16, 32 hold 1, 2, 5, 3 of them
    assert _per_stage(_blocks("torchvision:mobilenet_v3_small")) == [1, 2, 5, 3]
    subject = subject_for("torchvision:mobilenet_v3_small")  # a model with weights (inspect's): the same rows
    assert subject.blocks(subject.build()) == _blocks("torchvision:mobilenet_v3_small")


def test_models_no_container_walk_reaches_get_rows():
    # VGG-16 (Simonyan & Zisserman, table 1, D): 13 convs in groups of 2, 2, 3, 3, 3 between 5 max-pools
    assert _per_stage(_blocks("torchvision:vgg16")) == [2, 2, 3, 3, 3]
    # ViT-B/16 (Dosovitskiy et al., table 1): 12 encoder layers at one resolution
    assert _blocks("torchvision:vit_b_16") == [(f"encoder.layers.encoder_layer_{i}", 1) for i in range(12)]


USER_FILE = '''
import torch
from torch import nn


class Gate(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.fc = nn.Conv2d(channels, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x):
        return x * self.gate(self.fc(x.mean((2, 3), keepdim=True)))


def build():
    def stage(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
                             Gate(cout))
    return nn.Sequential(stage(3, 8), stage(8, 16), stage(16, 32), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(32, 10))
'''


def test_a_nested_sequential_model_gets_rows_holding_its_convs(tmp_path):
    file = tmp_path / "nested_gates.py"
    file.write_text(textwrap.dedent(USER_FILE))
    report = senet_cli.count(f"{file}:build", attention_classes=[f"{file}:Gate"])
    assert [(row.name, row.stage) for row in report.blocks] == [("0", 1), ("1", 2), ("2", 3)]
    # each row holds its conv (3x3, with bias), its BN and its gate's 1x1 conv: all but the classifier
    widths = [(3, 8), (8, 16), (16, 32)]
    expected = [9 * cin * cout + cout + 2 * cout + cout * cout + cout for cin, cout in widths]
    assert [row.params for row in report.blocks] == expected


def test_the_default_input_is_the_models_own():
    assert input_shape(subject_for("timm:halonet26t"), None, 1) == (1, 3, 256, 256)
    assert input_shape(subject_for("timm:halonet26t"), 224, 1) == (1, 3, 224, 224)  # given: kept
    assert input_shape(subject_for("timm:resnet18"), None, 1) == (1, 3, 224, 224)
    assert input_shape(subject_for("torchvision:resnet18"), None, 1) == (1, 3, 224, 224)
    notes = subject_for("timm:halonet26t").notes((), False)
    assert any("default input 256x256" in note and "pretrained_cfg" in note for note in notes)
    assert not any("default input" in note for note in subject_for("timm:resnet18").notes((), False))


INDEXED = ["timm:efficientnet_b0", "timm:tf_efficientnet_b0", "timm:regnety_008", "torchvision:mobilenet_v3_small"]


@pytest.fixture
def few_models(tmp_path, monkeypatch) -> Path:
    """An index of a few models in a temp cache dir, used wherever the full one would be."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(outside_index, "all_names", lambda: list(INDEXED))
    return tmp_path


def _shapes(model: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def test_the_index_names_models_from_keys_and_shapes(few_models):
    index = outside_index.load_index(INDEXED, few_models / "cache", progress=False)
    assert index.built_seconds is not None and not index.failed and len(index.signatures) == 4
    assert index.path.parent == few_models / "cache"
    with torch.device("meta"):
        regnet = timm.create_model("regnety_008")
        efficientnet = timm.create_model("efficientnet_b0", num_classes=7)
        vgg = torchvision.models.vgg11()
    assert outside_index.recognise(_shapes(regnet), index) == outside_index.OutsideMatch(("timm:regnety_008",), None)
    # another number of classes: a near match, with the classes; identical keys: both names
    near = outside_index.recognise(_shapes(efficientnet), index)
    assert near == outside_index.OutsideMatch(("timm:efficientnet_b0", "timm:tf_efficientnet_b0"), 7)
    assert outside_index.recognise(_shapes(vgg), index) is None
    shapes = _shapes(regnet)  # without BN step counters (a file may lack them): still the same model
    assert outside_index.recognise({k: v for k, v in shapes.items() if "num_batches" not in k}, index) is not None


def test_the_index_is_cached_rebuilt_when_corrupt_and_bounded(few_models):
    directory = few_models / "cache"
    first = outside_index.load_index(INDEXED[:1], directory, progress=False)
    again = outside_index.load_index(INDEXED[:1], directory, progress=False)
    assert again.built_seconds is None and again.signatures == first.signatures  # read, not rebuilt
    assert json.loads(first.path.read_text())["versions"]["timm"] == timm.__version__
    first.path.write_text("{not json")
    rebuilt = outside_index.load_index(INDEXED[:1], directory, progress=False)
    assert rebuilt.built_seconds is not None and rebuilt.signatures == first.signatures
    for count in range(1, 4):  # other name lists: other files, at most KEEP_FILES kept, no temp file left
        outside_index.load_index(INDEXED[count:count + 1], directory, progress=False)
    left = list(directory.iterdir())
    assert len(left) == outside_index.KEEP_FILES and all(p.name.startswith("outside-index-") for p in left)


def test_a_raw_state_dict_is_recognised_without_naming_it(few_models):
    file = few_models / "raw.pth"
    torch.save(timm.create_model("regnety_008", num_classes=5).state_dict(), file)
    outside_index.load_index(None, progress=False)  # first use builds it; then a look-up is fast
    checkpoint = load_checkpoint(file)
    started = time.perf_counter()
    subject, resolved, state = checkpoint_subject(checkpoint, None, {})
    assert time.perf_counter() - started < 3.0
    assert subject.name == "timm:regnety_008" and resolved.source == "detected"
    assert dict(subject.config.kwargs) == {"num_classes": 5}
    assert any("recognised from its keys and shapes" in note for note in resolved.notes)
    assert set(state) == set(subject.build(meta=True).state_dict())


def test_a_raw_state_dict_nothing_fits_names_the_outside_form(few_models):
    file = few_models / "squeezenet.pth"
    torch.save(torchvision.models.squeezenet1_1(num_classes=3).state_dict(), file)
    with pytest.raises(ArchitectureError, match=r"nor do they fit any of the 4 timm and torchvision.*timm:NAME"):
        checkpoint_subject(load_checkpoint(file), None, {})
