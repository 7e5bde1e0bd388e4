"""Per-stage ablation (`profile --per-block`) of models outside the zoo whose stages hold attention that
replaces a conv (SK, SplitAttn, Lambda, Halo, BottleneckAttn): the stage is timed without its removable
modules and the notes name those kept; a stage holding only such modules gets one line saying why it
has no cost. The modules expected in each stage are found here from the model's own classes and paths,
not from senet."""

from __future__ import annotations

import textwrap

import pytest

import senet_cli
from senet_cli.subject import OutsideSubject, subject_for

timm = pytest.importorskip("timm")

USER_FILE = '''
from torch import nn
from timm.layers import SelectiveKernel


class Gate(nn.Module):
    """x * sigmoid(conv(mean(x))): an SE-like gate on its input (removable)."""

    def __init__(self, channels):
        super().__init__()
        self.fc = nn.Conv2d(channels, channels, 1)
        self.gate = nn.Sigmoid()

    def forward(self, x):
        return x * self.gate(self.fc(x.mean((2, 3), keepdim=True)))


def unit(cin, cout, gate, sk):
    """A stride-2 conv, then a gate and/or a selective-kernel conv (which replaces a conv: kept)."""
    layers = [nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.BatchNorm2d(cout), nn.ReLU()]
    return nn.Sequential(*layers, *([Gate(cout)] if gate else []), *([SelectiveKernel(cout, cout)] if sk else []))


def build():
    return nn.Sequential(unit(3, 8, True, False), unit(8, 16, True, True), unit(16, 16, False, True),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))


def only_sk():
    return nn.Sequential(unit(3, 8, False, True), unit(8, 16, False, True), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(16, 10))
'''


@pytest.fixture
def mixed(tmp_path) -> str:
    """A file model: stage 1 holds a gate, stage 2 a gate and an SK conv, stage 3 an SK conv only."""
    file = tmp_path / "mixed_attention.py"
    file.write_text(textwrap.dedent(USER_FILE))
    return f"{file}:build"


def test_a_stage_with_a_kept_module_is_ablated_without_its_removable_ones(mixed):
    subject = subject_for(mixed)  # the gate found by structure, SelectiveKernel by class
    model = subject.build(meta=True)
    found = subject.attention(model)
    assert [(item.path, item.passes_through) for item in found] == [
        ("0.3", True), ("1.3", True), ("1.4", False), ("2.3", False)]
    assert subject.attention_stages(model, found) == (1, 2, 3)  # units at strides 2, 4, 8
    second = subject.without_stage(2, found, model)
    assert isinstance(second, OutsideSubject) and second.removed == ("1.3",)
    ablated = second.build(meta=True)
    assert type(ablated[1][3]).__name__ == "Identity" and type(ablated[1][4]).__name__ == "SelectiveKernel"
    assert "kept: 1 SelectiveKernel" in (subject.stage_note(2, found, model) or "")
    assert subject.without_stage(3, found, model) is None
    assert "no per-stage cost for stage 3" in (subject.stage_note(3, found, model) or "")
    assert subject.stage_note(1, found, model) is None  # all of it removable: nothing to say


def test_profile_per_stage_gives_the_partial_stage_and_says_why_the_last_has_none(mixed):
    report = senet_cli.profile(mixed, input_size=32, per_stage=True, iters=1, warmup=0, roofline=None)
    (result,) = report.results
    assert [cost.stage for cost in result.per_stage] == [1, 2]
    assert any("stage 2's cost is that of its 1 Gate" in note and "kept: 1 SelectiveKernel" in note
               for note in report.notes)
    assert sum("no per-stage cost for stage 3" in note for note in report.notes) == 1
    assert not any("stage 1" in note for note in report.notes)


def test_a_model_whose_attention_all_replaces_convs_says_it_has_no_stage_costs(mixed):
    report = senet_cli.profile(mixed.replace(":build", ":only_sk"), input_size=32, per_stage=True, iters=1,
                               warmup=0, roofline=None)
    assert report.results[0].baseline is None and report.results[0].per_stage == ()
    assert any("no per-stage cost for any stage" in note for note in report.notes)


def test_sebotnet_stages_keep_their_bottleneck_attention():
    # sebotnet33ts_256: SE in the bottlenecks of stages 1-3, BottleneckAttn (self-attention in place of the
    # 3x3 conv) in the last block of stages 2-3 and both of stage 4; counted on meta
    from timm.layers import SEModule
    from timm.layers.bottleneck_attn import BottleneckAttn

    subject = subject_for("timm:sebotnet33ts_256")
    model = subject.build(meta=True)
    found = subject.attention(model)
    stage_of = {path: int(path.split(".")[1]) + 1 for path, module in model.named_modules()
                if isinstance(module, (SEModule, BottleneckAttn))}  # timm's stages.N: stage N + 1
    se = {path for path, module in model.named_modules() if isinstance(module, SEModule)}
    assert {item.path for item in found} == set(stage_of)
    for stage in (1, 2, 3):
        ablation = subject.without_stage(stage, found, model)
        assert ablation is not None and set(ablation.removed) == {p for p in se if stage_of[p] == stage}
    assert subject.stage_note(1, found, model) is None
    assert "kept: 1 BottleneckAttn" in (subject.stage_note(2, found, model) or "")
    assert subject.without_stage(4, found, model) is None
    assert "stage 4" in (subject.stage_note(4, found, model) or "")
