"""`senet inspect` over a sample of timm and torchvision models with attention (issue 21, "done means":
one entry per multiplying gate, of the right kind and channels). Every family with attention in
README's family table, at its smallest variant, with random weights on the CPU at 64x64 (or the
model's own size where 64 is too small), two synthetic images.

The expected gates are derived by tests/gate_oracle.py without senet's code: a real forward under a
TorchFunctionMode that sees each product of a module's input by a tensor computed from it (or SK's
and ResNeSt's weighed branch sum), names the module returning that tensor, and reads its kind and
channels from how it broadcasts over the features. Each of inspect's entries must match one (gate
path, kind, channels, positions, and its mean over the two images), and no entry may be left over;
a model with no multiplying gate must be refused in one line ("no attention gates to inspect").
benchmarks/inspect_sweep.py runs the same check over every model of those families."""

from __future__ import annotations

import pytest
import torch
from torch import nn

pytest.importorskip("timm")

from gate_oracle import compare, expected_gates  # noqa: E402  (tests/ is on sys.path: see tests/quick.py)
from hand_gates import ExpandedGate, SoftmaxBranches, SqueezeGate  # noqa: E402

WITH_GATES = (
    # timm ResNet family: SE, ECA, SK, ResNeSt's split attention, legacy SENet, ResNet-RS
    "timm:seresnet18", "timm:seresnext26d_32x4d", "timm:ecaresnet26t", "timm:ecaresnetlight", "timm:resnetrs50",
    "timm:skresnet18", "timm:skresnext50_32x4d", "timm:resnest14d", "timm:legacy_seresnet18",
    "timm:legacy_seresnext26_32x4d",
    # timm ByobNet / ByoaNet: SE, ECA; SE and ECA beside bottleneck/halo self-attention
    "timm:seresnext26ts", "timm:eca_resnext26ts", "timm:sebotnet33ts_256",
    "timm:sehalonet33ts", "timm:eca_halonext26ts", "timm:seresnet33ts",
    # timm EfficientNet/MobileNet families: their blocks' SqueezeExcite (GlobalContext's scale fusion in gc_)
    "timm:efficientnet_b0", "timm:mixnet_s", "timm:semnasnet_075",
    "timm:mobilenetv3_small_050", "timm:lcnet_050", "timm:tinynet_e", "timm:hardcorenas_a",
    "timm:gc_efficientnetv2_rw_t", "timm:ghostnet_050", "timm:repghostnet_050",
    # other timm families with attention
    "timm:regnety_002", "timm:nf_ecaresnet26", "timm:eca_nfnet_l0",
    "timm:ese_vovnet19b_slim_dw", "timm:eca_vovnet39b", "timm:tresnet_m", "timm:cs3sedarknet_l",
    "timm:cspnext_tiny", "timm:maxvit_nano_rw_256", "timm:gcvit_xxtiny", "timm:rexnet_100",
    "timm:rexnetr_100", "timm:hgnet_tiny", "timm:fastvit_t8", "timm:efficientvit_m0", "timm:repvit_m0_9",
    "timm:shvit_s1", "timm:efficientvim_m1", "timm:lcnetv2_small", "timm:rdnet_tiny",
    # torchvision: SqueezeExcitation in EfficientNet, MobileNetV3, RegNetY and MaxViT
    "torchvision:efficientnet_b0", "torchvision:efficientnet_v2_s", "torchvision:mobilenet_v3_small",
    "torchvision:mobilenet_v3_large", "torchvision:regnet_y_400mf", "torchvision:maxvit_t",
)

NOTHING_TO_INSPECT = (
    # attention that multiplies by no gate: GlobalContext's add fusion, non-local, self-attention only
    "timm:gcresnet50t", "timm:gcresnext26ts", "timm:bat_resnext26ts", "timm:botnet26t_256", "timm:halonet26t",
    "timm:lambda_resnet26t",
    # no attention at all (a plain backbone): the same one-line refusal
    "timm:gernet_s", "torchvision:resnet18",
)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("inspect-sweep")


@pytest.mark.slow
@pytest.mark.parametrize("name", WITH_GATES)
def test_inspect_reports_one_entry_per_multiplying_gate(name, folder):
    expected, matched, problems = compare(name, folder)
    assert expected > 0, f"{name}: no multiplying gate found by the oracle"
    assert matched == expected
    assert not problems, f"{name}: " + "; ".join(problems)


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTHING_TO_INSPECT)
def test_attention_without_a_multiplying_gate_has_nothing_to_inspect(name, folder):
    expected, _, problems = compare(name, folder)
    assert expected == 0, f"{name}: {expected} multiplying gates found by the oracle"
    assert not problems, f"{name}: " + "; ".join(problems)


def test_the_sample_is_wide_enough():
    assert len(set(WITH_GATES + NOTHING_TO_INSPECT)) >= 60


class _Spatial(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gate = nn.Sigmoid()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gate(x.amax(1, keepdim=True)) * x  # the gate first: either operand order


class _NotGates(nn.Module):
    """x * sigmoid(x) (an activation), x * gamma (LayerScale), x + f(mean(x)) (a residual term)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.act = nn.Sigmoid()
        self.gamma = nn.Parameter(torch.full((channels, 1, 1), 0.5))
        self.fc = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * self.act(x)
        x = x * self.gamma.view(1, -1, 1, 1)
        return x + self.fc(x.mean((2, 3), keepdim=True))


def test_the_oracle_finds_gates_of_each_kind_and_leaves_what_is_no_gate():
    """Known by construction: the oracle itself is tested before it judges inspect."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), SqueezeGate(8), _Spatial(), _NotGates(8), ExpandedGate(),
                          SoftmaxBranches(8)).eval()
    images = torch.randn(2, 3, 6, 5)
    found = expected_gates(model, images)
    assert [(g.path, g.owner, g.kind, g.channels, g.positions) for g in found] == [
        ("1.gate", "1", "channel", 8, 1), ("2.gate", "2", "spatial", 1, 30), ("4.gate", "4", "channel", 8, 1),
        ("5.attn", "5", "channel", 16, 1)]
    with torch.no_grad():
        x = model[0](images)
        se = torch.sigmoid(model[1].fc(x.mean((2, 3), keepdim=True)))
    assert found[0].mean == pytest.approx(float(se.mean()), rel=1e-6)


@pytest.mark.slow
def test_the_sweep_catches_a_gate_read_by_its_raw_shape(tmp_path, monkeypatch):
    """Issue 21's ECA defect brought back (a gate's kind from its raw [B, 1, C] shape): the check fails."""
    from senet_cli.inspect import gates

    monkeypatch.setattr(gates, "_as_features", lambda values, channels: (values, values.shape[1]))
    expected, matched, problems = compare("timm:ecaresnet26t", tmp_path)
    assert expected == 8 and matched == 0
    assert all(p.startswith("kind/channels: ") and "inspect ('spatial', 1," in p for p in problems), problems
