"""Bytes moved: the SE block and a plain convolution against closed forms written out op by op, the
rows adding up to the totals, and the dtype setting the element size."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import senet_cli
from senet_cli.count.dispatch import trace_costs
from senet_cli.count.formulas import distinct_bytes

CIFAR_SIDE = {1: 32, 2: 16, 3: 8, 4: 4}  # ResNet-18 (CIFAR) stage resolution at 32x32


def se_block_bytes(c: int, hw: int, ratio: int, batch: int, size: int) -> int:
    """The SE module's traffic, op by op (reads + writes, `size` bytes an element, biases on both FCs)."""
    r = c // ratio
    pool = batch * c * hw + batch * c  # mean over H, W: reads C*H*W, writes C
    fc1 = batch * c + r * c + r + batch * r  # 1x1 conv: reads the vector, W1, b1; writes C/r
    relu = 2 * batch * r  # in place: reads and writes C/r
    fc2 = batch * r + c * r + c + batch * c  # reads C/r, W2, b2; writes C
    sigmoid = 2 * batch * c
    gate = (batch * c * hw + batch * c) + batch * c * hw  # reads the features and the gate, writes C*H*W
    return size * (pool + fc1 + relu + fc2 + sigmoid + gate)


@pytest.mark.parametrize("ratio", [4, 16])
def test_each_se_block_moves_its_closed_form(ratio):
    batch = 2
    report = senet_cli.count("se_resnet18_cifar", ratio=ratio, batch=batch)
    for block in report.blocks:
        c, hw = 64 * 2 ** (block.stage - 1), CIFAR_SIDE[block.stage] ** 2
        assert block.attention_bytes == se_block_bytes(c, hw, ratio, batch, 4), block.name
    # The SE model runs the baseline's ops plus the SE modules': the overhead is exactly attention's.
    assert report.overhead.bytes == report.attention_total("bytes") > 0
    assert report.overhead.bytes_pct == pytest.approx(report.overhead.bytes / report.baseline.bytes * 100)


@pytest.mark.parametrize("name", ["se_resnet18_cifar", "cbam_resnet18_cifar", "eca_resnet18_cifar", "resnet18_cifar"])
def test_rows_add_up_to_the_totals(name):
    report = senet_cli.count(name)
    assert sum(row.bytes for row in report.rows) == report.bytes > 0
    assert all(row.attention_bytes <= row.bytes for row in report.rows)
    data = report.to_dict()
    assert data["bytes"] == report.bytes and data["attention"]["bytes"] == report.attention_total("bytes")
    assert data["baseline"]["bytes"] == report.baseline.bytes and "bytes" in data["blocks"][0]


@pytest.mark.parametrize("bias", [False, True])
def test_a_plain_convolution_moves_its_closed_form(bias):
    conv = nn.Conv2d(3, 8, 3, padding=1, stride=2, bias=bias).to("meta")
    trace = trace_costs(conv, torch.empty(2, 3, 32, 32, device="meta"))
    (op,) = trace.ops
    elements = 2 * 3 * 32 * 32 + 8 * 3 * 3 * 3 + (8 if bias else 0) + 2 * 8 * 16 * 16  # input, W, b, output
    assert op.bytes == 4 * elements


def test_in_place_and_out_of_place_relu_move_the_same_and_views_move_nothing():
    x = torch.empty(4, 16, device="meta")
    relu = trace_costs(nn.ReLU(), x).ops
    relu_inplace = trace_costs(nn.ReLU(inplace=True), x).ops
    assert [op.bytes for op in relu] == [op.bytes for op in relu_inplace] == [2 * 4 * 16 * 4]
    assert trace_costs(nn.Flatten(0), x).ops == []  # a view: no op charged


def test_a_broadcast_input_is_read_once_per_distinct_element():
    gate = torch.empty(2, 8, 1, 1, device="meta")
    assert distinct_bytes(gate.expand(2, 8, 5, 5)) == distinct_bytes(gate) == 2 * 8 * 4
    assert distinct_bytes(torch.empty(3, 5, dtype=torch.float16, device="meta")) == 30


def test_float16_halves_every_byte_and_amp_lands_between():
    fp32 = senet_cli.count("se_resnet18_cifar")
    fp16 = senet_cli.count("se_resnet18_cifar", dtype="float16")
    bf16 = senet_cli.count("se_resnet18_cifar", dtype="bfloat16")
    amp = senet_cli.count("se_resnet18_cifar", amp=True)
    assert fp32.bytes == 2 * fp16.bytes == 2 * bf16.bytes
    assert [row.bytes for row in fp32.rows] == [2 * row.bytes for row in fp16.rows]
    assert (fp16.macs, fp16.elementwise_ops, fp16.params) == (fp32.macs, fp32.elementwise_ops, fp32.params)
    assert amp.to_dict()["amp"] is True and fp16.to_dict()["dtype"] == "float16"
    # AMP: activations in float16, but every float32 weight is cast each forward (read 4, write 2 bytes),
    # which at batch 1 outweighs what the activations save (eager autocast at batch 1 moves more)...
    assert amp.bytes > fp32.bytes
    # ...and at batch 64 no longer does
    fp32, fp16, amp = (senet_cli.count("se_resnet18_cifar", batch=64, **kw)
                       for kw in ({}, {"dtype": "float16"}, {"amp": True}))
    assert fp16.bytes < amp.bytes < fp32.bytes


def test_amp_casts_every_conv_and_linear_tensor_once():
    from senet_cli.zoo import build_on_meta, make_config

    model = build_on_meta(make_config("se_resnet18_cifar"))
    trace = trace_costs(model, torch.empty(2, 3, 32, 32, device="meta"), autocast=torch.float16)
    weights = sum(p.numel() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)) for p in m.parameters())
    # the float32 image into the first conv, and the weights and biases of every conv and linear layer
    assert sum(op.bytes for op in trace.ops if op.op == "_to_copy") == 6 * (weights + 2 * 3 * 32 * 32)


def test_amp_casts_each_convolution_weight_once():
    """A float32 conv under simulated autocast: cast the input (read 4, write 2 bytes an element) and
    the weight, then the conv reads and writes float16."""
    conv = nn.Conv2d(3, 8, 1, bias=False).to("meta")
    trace = trace_costs(conv, torch.empty(1, 3, 4, 4, device="meta"), autocast=torch.float16)
    x, w, y = 3 * 16, 8 * 3, 8 * 16
    assert sum(op.bytes for op in trace.ops) == 6 * x + 6 * w + 2 * (x + w + y)
    assert [op.op for op in trace.ops].count("convolution") == 1


@pytest.mark.parametrize("kwargs, message", [
    ({"dtype": "float64"}, "unknown dtype 'float64'"),
    ({"dtype": "float16", "amp": True}, "runs a float32 model under autocast"),
])
def test_bad_precision(kwargs, message):
    with pytest.raises(senet_cli.SenetError, match=message):
        senet_cli.count("se_resnet18_cifar", **kwargs)


@pytest.mark.parametrize("name", ["se_resnet18_cifar", "cbam_resnet18_cifar"])
def test_simulated_autocast_moves_what_real_cpu_autocast_moves(name):
    """The reference: the same model with real weights run on the CPU under torch.autocast (bfloat16),
    its ops costed by the same dispatch mode. Casts, dtypes and the weight cache must all agree."""
    from senet_cli import build_model
    from senet_cli.zoo import build_on_meta, make_config

    real = build_model(name).eval()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        measured = trace_costs(real, torch.randn(2, 3, 32, 32))
    simulated = trace_costs(build_on_meta(make_config(name)), torch.empty(2, 3, 32, 32, device="meta"),
                            autocast=torch.bfloat16)
    def ops(trace):  # the order of the casts before one op differs (weight or input first)
        return sorted((op.module, op.op, op.bytes) for op in trace.ops)

    assert ops(simulated) == ops(measured)
