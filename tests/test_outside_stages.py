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


@pytest.mark.slow
def test_inception_stages_are_its_three_grids():
    # Inception-v3 (Szegedy et al. 2016, table 1; torchvision's comments: N x 288 x 35 x 35 after Mixed_5d,
    # 768 x 17 x 17 after Mixed_6a-6e, 1280/2048 x 8 x 8 after Mixed_7a-7c): 3 modules at 35x35, 5 at 17x17
    # (the grid reduction first), 3 at 8x8; the stem's convs and the auxiliary head (idle in eval) are no blocks
    expected = [(f"Mixed_{name}", stage) for names, stage in (("5b 5c 5d", 1), ("6a 6b 6c 6d 6e", 2),
                                                              ("7a 7b 7c", 3)) for name in names.split()]
    assert _blocks("torchvision:inception_v3") == expected
    assert _blocks("timm:inception_v3") == expected
    # GoogLeNet (Szegedy et al. 2014, table 1): inception (3a, 3b) at 28x28, (4a-4e) at 14x14, (5a, 5b) at 7x7
    expected = [(f"inception{name}", stage) for names, stage in (("3a 3b", 1), ("4a 4b 4c 4d 4e", 2),
                                                                ("5a 5b", 3)) for name in names.split()]
    assert _blocks("torchvision:googlenet") == expected
    subject = subject_for("torchvision:googlenet")  # the max-pools between stages belong to the next stage
    assert subject.block_members(subject.build(meta=True)) == {"maxpool3": "inception4a", "maxpool4": "inception5a"}


@pytest.mark.slow
def test_inception_v4_and_inception_resnet_v2_stages():
    # Inception-v4 (Szegedy et al. 2017, figures 3 and 9, at 299): the stem's three convs (timm's
    # group_matcher stem), then Mixed_3a and Mixed_4a at 73x73 and 71x71 (stride 4), Mixed_5a and 4 Inception-A
    # at 35x35, Reduction-A and 7 Inception-B at 17x17, Reduction-B and 3 Inception-C at 8x8
    blocks = _blocks("timm:inception_v4")
    assert [path for path, _ in blocks] == [f"features.{i}" for i in range(3, 22)]
    assert _per_stage(blocks) == [2, 5, 8, 4]
    # timm's Inception-ResNet-v2: 10 Block35, 20 Block17, 9 Block8 in its three `repeat` Sequentials (its
    # last Block8 and conv2d_7b are its head in group_matcher); the reduction modules run at the next grid
    blocks = _blocks("timm:inception_resnet_v2")
    assert _per_stage(blocks) == [10, 20, 9]
    subject = subject_for("timm:inception_resnet_v2")
    assert subject.block_members(subject.build(meta=True)) == {"mixed_6a": "repeat_1.0", "mixed_7a": "repeat_2.0"}


def test_densenet_blocks_are_its_dense_layers_and_transitions_join_the_next_stage():
    # DenseNet-121 (Huang et al., table 1): 6, 12, 24, 16 dense layers; a transition (BN, 1x1 conv, 2x2 avg
    # pool) halves the grid: its output runs at the next block's size
    report = senet_cli.count("timm:densenet121")
    rows = [(row.name, row.stage) for row in report.blocks]
    assert not any("transition" in name for name, _ in rows)
    assert _per_stage(rows) == [6, 12, 24, 16]
    by_name = {row.name: row for row in report.blocks}

    def layer(cin: int) -> int:  # BN(cin), 1x1 conv cin -> 128, BN(128), 3x3 conv 128 -> 32 (growth 32, bn_size 4)
        return 2 * cin + cin * 128 + 2 * 128 + 9 * 128 * 32

    def transition(cin: int) -> int:  # BN(cin), 1x1 conv cin -> cin / 2
        return 2 * cin + cin * cin // 2

    for block, cin in ((2, 256), (3, 512), (4, 1024)):  # features in: 64 + 32 x 6 = 256, 128 + 32 x 12 = 512, ...
        assert by_name[f"features.denseblock{block}.denselayer1"].params == layer(cin // 2) + transition(cin)
    assert by_name["features.denseblock1.denselayer1"].params == layer(64)
    assert report.head.params == 2 * 1024 + 1024 * 1000 + 1000  # norm5 and the classifier only
    assert report.stem.params == 3 * 64 * 49 + 2 * 64  # conv0 (7x7, no bias) and norm0


@pytest.mark.slow
def test_hgnet_blocks_are_its_hg_blocks_and_the_downsample_is_part_of_the_stage():
    # timm's hgnet_tiny config: 1, 1, 2, 1 HG blocks per stage; stages 2-4 open with a stride-2 depthwise
    # downsample (a ConvBNAct), which belongs to the stage's first block
    subject = subject_for("timm:hgnet_tiny")
    model = subject.build(meta=True)
    blocks = subject.blocks(model)
    assert [path for path, _ in blocks] == ["stages.0.blocks.0", "stages.1.blocks.0", "stages.2.blocks.0",
                                            "stages.2.blocks.1", "stages.3.blocks.0"]
    assert _per_stage(blocks) == [1, 1, 2, 1]
    members = subject.block_members(model)
    assert {path: block for path, block in members.items() if path.endswith("downsample")} == {
        f"stages.{i}.downsample": f"stages.{i}.blocks.0" for i in range(4)}
    report = senet_cli.count("timm:hgnet_tiny")
    downsample = sum(p.numel() for i in (1, 2, 3) for p in model.stages[i].downsample.parameters())
    own = sum(p.numel() for p in model.stages[1].blocks[0].parameters())
    assert next(row for row in report.blocks if row.name == "stages.1.blocks.0").params == \
        own + sum(p.numel() for p in model.stages[1].downsample.parameters())
    assert downsample > 0 and sum(row.params for row in report.blocks) == \
        sum(p.numel() for p in model.stages.parameters())


FEATURE_INFO_MODELS = ["timm:efficientnet_b0", "timm:convnext_atto", "timm:hgnet_tiny",
                       "timm:densenet121", "timm:regnety_008", "timm:inception_v4", "timm:cs3darknet_focus_l",
                       "timm:repvit_m0_9", "timm:nest_tiny", "timm:pvt_v2_b0", "timm:xception41"]


@pytest.mark.slow
@pytest.mark.parametrize("name", FEATURE_INFO_MODELS)
def test_stages_are_the_strides_timm_states_after_the_stem(name):
    # timm's feature_info lists one entry per output stride it taps; those outside the stem (its
    # group_matcher's `stem` pattern) are the strides the blocks run at: one stage each
    import re

    model = timm.create_model(name.partition(":")[2], pretrained=False).to("meta")
    stem = model.group_matcher()["stem"]
    strides = {entry["reduction"] for entry in model.feature_info if not re.match(stem, entry["module"] + ".")}
    assert max(stage for _, stage in _blocks(name)) == len(strides)


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


def test_torchvisions_init_notice_is_not_printed_above_the_table():
    """torchvision's GoogLeNet and Inception-v3 warn on each build that their default initialisation
    will change (FutureWarning): nothing to do with counting; any other warning still shows."""
    import warnings

    from senet_cli.outside.build import _no_init_notice

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _blocks("torchvision:googlenet")
        with _no_init_notice():
            warnings.warn("another notice", FutureWarning, stacklevel=1)
    assert [str(w.message) for w in caught if issubclass(w.category, FutureWarning)] == ["another notice"]
