"""Forwards that make tensors on the CPU or need real data (issue 21): counted on meta where the meta
trace can run them, else on the CPU with random weights, bounded, with a note; the same numbers as
torch.utils.flop_counter's FlopCounterMode (MACs = its FLOPs / 2) on the same model and input."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import senet_cli
from senet_cli.count import on_cpu
from senet_cli.count.dispatch import ShapeMemo
from senet_cli.errors import SenetError
from senet_cli.subject import subject_for

NETS = '''
import torch
from torch import nn


class ArangeBlock(nn.Module):
    """Adds relative positions made with no device: CPU tensors, as timm's ConViT and SAM ViT make theirs
    (`arange(n)[:, None] - arange(n)[None, :]`)."""

    def __init__(self, width):
        super().__init__()
        self.conv = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x):
        side = x.shape[-1]
        relative = torch.arange(side, dtype=x.dtype)[:, None] - torch.arange(side, dtype=x.dtype)[None, :]
        return self.conv(x) + relative.to(x.device)


class ItemBlock(nn.Module):
    """Scales by a number read from its input (`.item()`), and branches on a value: needs real data."""

    def __init__(self, width):
        super().__init__()
        self.conv = nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x):
        scale = x.abs().mean().item()
        y = self.conv(x) * (1.0 / (1.0 + scale))
        return y if bool(y.sum() > -1e30) else x


class GatedBlock(nn.Module):
    """A conv and a squeeze-and-excitation gate (found by structure): a model with a baseline."""

    def __init__(self, width):
        super().__init__()
        self.conv = nn.Conv2d(width, width, 3, padding=1)
        self.act = nn.SiLU()
        self.gate = Gate(width)

    def forward(self, x):
        return self.gate(self.act(self.conv(x)))


class Gate(nn.Module):
    def __init__(self, width):
        super().__init__()
        self.fc = nn.Conv2d(width, width // 2, 1)
        self.back = nn.Conv2d(width // 2, width, 1)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        return x * self.sigmoid(self.back(torch.relu(self.fc(x.mean((2, 3), keepdim=True)))))


class BadInput(nn.Module):
    def forward(self, x):
        raise ValueError("this model takes 3 x 17 x 17 images only")


def net(block, width):
    return nn.Sequential(nn.Conv2d(3, width, 3, padding=1), block(width), block(width),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, 10))


def arange_net(width=8):
    return net(ArangeBlock, width)


def item_net(width=8):
    return net(ItemBlock, width)


def gated_net(width=8):
    return net(GatedBlock, width)


def bad_net():
    return nn.Sequential(nn.Conv2d(3, 4, 3), BadInput())
'''

WIDTH, SIDE = 8, 16


@pytest.fixture
def nets(tmp_path: Path) -> Path:
    path = tmp_path / "cpunets.py"
    path.write_text(textwrap.dedent(NETS))
    return path


def conv_net_macs(width: int, side: int) -> int:
    """The closed form: the stem conv, two 3x3 convs width -> width, the classifier (same padding)."""
    stem = 3 * width * 9 * side * side
    block = width * width * 9 * side * side
    return stem + 2 * block + width * 10


def conv_net_params(width: int) -> int:
    return (3 * width * 9 + width) + 2 * (width * width * 9 + width) + (width * 10 + 10)


def flop_counter_macs(name: str, shape: tuple[int, ...]) -> int:
    """FlopCounterMode's FLOPs / 2 for one real CPU forward of `name` with random weights."""
    torch.manual_seed(0)
    model = subject_for(name).build().eval()
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(torch.randn(shape))
    return counter.get_total_flops() // 2


def test_a_forward_making_cpu_tensors_counts_on_meta(nets):
    """The second ArangeBlock's `torch.arange` met the memo's meta copy of the first one's CPU output
    ("Tensor on device meta is not on the expected device cpu"): factory outputs are not memoised."""
    name = f"{nets}:arange_net"
    report = senet_cli.count(name, input_size=SIDE)
    assert report.counted_on == "meta"
    assert report.macs == conv_net_macs(WIDTH, SIDE) == flop_counter_macs(name, (1, 3, SIDE, SIDE))
    assert report.params == conv_net_params(WIDTH)
    assert not any("CPU" in note for note in report.notes)


def test_the_memo_keeps_no_cpu_output():
    memo = ShapeMemo()
    memo.put("cpu", torch.arange(3))
    memo.put("meta", torch.empty(2, device="meta"))
    memo.put("mixed", (torch.empty(2, device="meta"), torch.zeros(1)))
    assert memo.get("cpu") is None and memo.get("mixed") is None
    assert memo.get("meta").shape == (2,) and len(memo) == 1


def test_a_forward_needing_real_data_counts_on_the_cpu_with_a_note(nets, cli):
    name = f"{nets}:item_net"
    report = senet_cli.count(name, input_size=SIDE, batch=2)
    assert report.counted_on == "cpu"
    assert report.macs == 2 * conv_net_macs(WIDTH, SIDE)  # a batch of 2
    assert report.macs == flop_counter_macs(name, (2, 3, SIDE, SIDE))
    assert report.params == conv_net_params(WIDTH)
    assert sum(row.macs for row in report.rows) == report.macs
    note = next(note for note in report.notes if "CPU" in note)
    assert "Tensor.item() cannot be called on meta tensors" in note

    code, out, err = cli(["count", name, "--input", str(SIDE), "--batch", "2", "--format", "json"])
    assert code == 0, err
    data = json.loads(out)
    assert data["counted_on"] == "cpu" and data["macs"] == report.macs
    assert any("counted on the CPU" in note for note in data["notes"])


def test_the_cpu_count_leaves_the_callers_random_state_alone(nets):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    senet_cli.count(f"{nets}:item_net", input_size=SIDE)
    assert torch.equal(torch.rand(3), expected)


def test_the_cpu_count_is_the_meta_count_where_both_run(monkeypatch, nets):
    """The same model counted on meta and, forced, on the CPU: every number equal, its baseline's too
    (the conventions are the same). Not compared: a model moving a CPU-made tensor to its device, which
    on meta is a copy (counted, as a host-to-device copy would be) and on the CPU none."""
    name = f"{nets}:gated_net"
    on_meta = senet_cli.count(name, input_size=SIDE)

    from senet_cli.count import dispatch

    real = dispatch.trace_costs

    def failing_on_meta(model, inputs, autocast=None, into=None):
        if inputs.is_meta:
            raise RuntimeError("Tensor.item() cannot be called on meta tensors")
        return real(model, inputs, autocast=autocast, into=into)

    monkeypatch.setattr(dispatch, "trace_costs", failing_on_meta)
    on_host = senet_cli.count(name, input_size=SIDE)
    assert on_host.counted_on == "cpu"
    for key in ("params", "macs", "elementwise_ops", "bytes", "kernels"):
        assert getattr(on_host, key) == getattr(on_meta, key), key
    assert [row.macs for row in on_host.rows] == [row.macs for row in on_meta.rows]
    assert on_meta.attention_total("params") == 2 * (8 * 4 + 4 + 4 * 8 + 8) == on_host.attention_total("params")
    assert on_host.baseline == on_meta.baseline and on_host.overhead == on_meta.overhead


def test_too_big_for_the_cpu_is_refused_in_one_line_before_building(monkeypatch, nets, cli):
    monkeypatch.setattr(on_cpu, "CPU_CAP_BYTES", 1000)
    built: list[bool] = []
    from senet_cli.subject import OutsideSubject

    real_build = OutsideSubject.build

    def build(self, *, meta=False, init=True):
        built.append(meta)
        return real_build(self, meta=meta, init=init)

    monkeypatch.setattr(OutsideSubject, "build", build)
    with pytest.raises(SenetError, match="too big to count on the CPU instead") as error:
        senet_cli.count(f"{nets}:item_net", input_size=SIDE)
    assert "\n" not in str(error.value) and "GiB" in str(error.value)
    assert all(built), "nothing is built on the CPU once the estimate is over the cap"

    code, out, err = cli(["count", f"{nets}:item_net", "--input", str(SIDE)])
    assert code == 2 and "too big to count on the CPU" in err and len(err.strip().splitlines()) == 1


def test_other_failures_are_not_retried_on_the_cpu(monkeypatch, nets):
    called: list[object] = []
    monkeypatch.setattr(on_cpu, "trace_on_cpu", lambda *args: called.append(args))
    with pytest.raises(SenetError, match="cannot run on input .*ValueError: this model takes 3 x 17 x 17"):
        senet_cli.count(f"{nets}:bad_net", input_size=SIDE)
    assert not called


@pytest.mark.parametrize(("message", "needs"), [
    ("Tensor.item() cannot be called on meta tensors", True),
    ("Cannot copy out of meta tensor; no data!", True),
    ("can't convert meta device type tensor to numpy. Use Tensor.cpu()", True),
    ("Tensor on device cpu is not on the expected device meta!", True),
    ("meshgrid expects all tensors to have the same device", True),
    ("Input image height (17) doesn't match model (224).", False),
    ("mat1 and mat2 shapes cannot be multiplied (1x8 and 9x10)", False),
])
def test_which_failures_need_real_data(message, needs):
    assert on_cpu.needs_real_data(RuntimeError(message)) is needs


def test_the_estimate_is_over_what_the_weights_take(nets):
    from senet_cli.count.dispatch import Trace

    model = subject_for(f"{nets}:item_net").build(meta=True)
    image = 4 * 3 * SIDE * SIDE
    modules = sum(1 for path, _ in model.named_modules() if path)
    estimate = on_cpu.estimate_bytes(model, Trace(), torch.float32, image)  # failed before any op
    assert estimate == 4 * conv_net_params(WIDTH) + image + modules * image
    # what a forward moves, extrapolated: the activations of the item_net at this input are
    # 4 x (3 + 4 x WIDTH) x SIDE^2 bytes written at least (the image, each conv's and each scaling's output)
    partial = Trace()
    with pytest.raises(RuntimeError):
        from senet_cli.count.dispatch import trace_costs

        trace_costs(model, torch.empty(1, 3, SIDE, SIDE, device="meta"), into=partial)
    assert partial.ops and partial.first_call
    written = 4 * (3 + 4 * WIDTH) * SIDE * SIDE
    assert on_cpu.estimate_bytes(model, partial, torch.float32, image) >= 4 * conv_net_params(WIDTH) + written
