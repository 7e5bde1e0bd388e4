"""The formula table: keyed by real aten op packets, refusing mistakes at registration, agreeing with
torch.utils.flop_counter on the MACs both count, and charging in-place ops as their out-of-place forms."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch._ops import OpOverloadPacket
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

import senet_cli
from senet_cli.count import formulas
from senet_cli.count.dispatch import SHAPE_MEMO, ShapeMemo, trace_costs
from senet_cli.count.formulas import (
    ELEMENTWISE_OPS,
    FORMULAS,
    FREE_OPS,
    MAC_OPS,
    REDUCTION_OPS,
    register_formula,
    register_free,
)

aten = torch.ops.aten
TABLES = {"MAC_OPS": MAC_OPS, "REDUCTION_OPS": REDUCTION_OPS, "ELEMENTWISE_OPS": ELEMENTWISE_OPS, "FREE_OPS": FREE_OPS}


def torch_flops(model: nn.Module, *inputs: torch.Tensor) -> int:
    """FlopCounterMode's total for one real CPU forward (2 FLOPs per multiply-add)."""
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(*inputs)
    return counter.get_total_flops()


def traced_macs(model: nn.Module, shape: tuple[int, ...]) -> int:
    trace = trace_costs(model.to("meta"), torch.empty(shape, device="meta"))
    assert not trace.uncounted
    return sum(op.macs for op in trace.ops)


def test_resnet50_macs_are_half_of_flop_counter_modes_flops():
    torch.manual_seed(0)
    model = senet_cli.build_model("resnet50").eval()
    assert 2 * senet_cli.count("resnet50").macs == torch_flops(model, torch.randn(1, 3, 224, 224))


def test_danet_bmm_macs_are_half_of_flop_counter_modes_flops():
    torch.manual_seed(0)
    model = senet_cli.build_model("danet_resnet18").eval()
    report = senet_cli.count("danet_resnet18", input_size=64, batch=2)
    assert 2 * report.macs == torch_flops(model, torch.randn(2, 3, 64, 64))


class MatmulZoo(nn.Module):
    """Every MAC op kind: conv with and without bias, grouped and transposed; linear on 2-d (addmm)
    and 3-d (mm) inputs; bmm and baddbmm."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.grouped = nn.Conv2d(8, 8, 3, stride=2, groups=4, bias=False)
        self.up = nn.ConvTranspose2d(8, 6, 4, stride=2, padding=1, groups=2)
        self.fc = nn.Linear(6, 5)
        self.bias = nn.Parameter(torch.zeros(5, 5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.up(self.grouped(self.conv(x)))  # [B, 6, 8, 8]
        tokens = x.flatten(2).transpose(1, 2)  # [B, 64, 6]
        keys = self.fc(tokens)  # [B, 64, 5] via mm
        pooled = self.fc(tokens.mean(1))  # [B, 5] via addmm
        gram = torch.bmm(keys.transpose(1, 2), keys)  # [B, 5, 5]
        return torch.baddbmm(self.bias, gram, gram) + pooled[:, :, None]


def test_every_mac_op_agrees_with_flop_counter_mode():
    torch.manual_seed(0)
    model = MatmulZoo().eval()
    flops = torch_flops(model, torch.randn(2, 3, 16, 16))
    assert flops > 0 and 2 * traced_macs(model, (2, 3, 16, 16)) == flops


def test_conv_macs_keeps_its_closed_form():
    # [C_out, C_in/groups, k, k]: every output element takes C_in/groups * k * k MACs.
    assert formulas.conv_macs((1, 8, 10, 10), (16, 2, 3, 3), (1, 16, 8, 8), False) == 16 * 64 * 2 * 9
    # transposed, [C_in, C_out/groups, k, k]: every input element is spread over C_out/groups * k * k.
    assert formulas.conv_macs((1, 8, 5, 5), (8, 3, 4, 4), (1, 6, 10, 10), True) == 8 * 25 * 3 * 16


@pytest.mark.parametrize("table", TABLES, ids=str)
def test_every_key_is_an_aten_op_packet(table):
    for key in TABLES[table]:
        assert isinstance(key, OpOverloadPacket), key
        assert getattr(aten, key.__name__) is key


def test_tables_are_disjoint_and_formulas_joins_the_costed_ones():
    costed = [*MAC_OPS, *REDUCTION_OPS, *ELEMENTWISE_OPS]
    assert len(costed) == len(set(costed)) == len(FORMULAS)
    assert FORMULAS == {**MAC_OPS, **REDUCTION_OPS, **ELEMENTWISE_OPS}
    assert not FREE_OPS & set(costed)


def test_in_place_forms_are_registered_with_their_op():
    assert FORMULAS[aten.relu_] is FORMULAS[aten.relu]
    assert FORMULAS[aten.add_] is FORMULAS[aten.add]
    assert FORMULAS[aten.addmm_] is FORMULAS[aten.addmm]
    assert aten.fill_ in FREE_OPS and aten.zero_ in FREE_OPS
    assert formulas.op_name(aten.relu_) == "relu" and formulas.op_name(aten.cosh_) == "cosh_"


def registered() -> tuple[dict[str, set[OpOverloadPacket]], dict[OpOverloadPacket, str]]:
    return {name: set(table) for name, table in TABLES.items()}, dict(formulas.OP_NAMES)


@pytest.mark.parametrize(
    "register",
    [
        lambda: register_formula(ELEMENTWISE_OPS, aten.relu)(lambda args, kwargs, out: (0, 0)),
        lambda: register_formula(ELEMENTWISE_OPS, aten.relu_)(lambda args, kwargs, out: (0, 0)),  # came with relu
        lambda: register_formula(MAC_OPS, aten.cosh, aten.cosh)(lambda args, kwargs, out: (0, 0)),
        lambda: register_formula(ELEMENTWISE_OPS, aten.cosh, aten.view)(lambda args, kwargs, out: (0, 0)),
        lambda: register_free(aten.relu),
        lambda: register_free(aten.cosh, aten.mean),
    ],
    ids=["again", "in-place form", "twice in one call", "free op as costed", "costed op as free", "after a new op"],
)
def test_a_duplicate_registration_raises_and_registers_nothing(register):
    snapshot = registered()
    with pytest.raises(ValueError, match="registered twice"):
        register()
    assert registered() == snapshot and aten.cosh not in formulas.OP_NAMES


@pytest.mark.parametrize("key", ["relu", aten.relu.default, torch.relu, None],
                         ids=["a string", "an overload", "a torch function", "None"])
def test_a_key_that_is_not_an_op_packet_raises(key):
    snapshot = registered()
    with pytest.raises(TypeError, match="op overload packet"):
        register_formula(ELEMENTWISE_OPS, aten.cosh, key)(lambda args, kwargs, out: (0, 0))
    with pytest.raises(TypeError, match="op overload packet"):
        register_free(key)
    assert registered() == snapshot


def test_a_misspelt_op_fails_at_lookup():
    with pytest.raises(AttributeError):
        aten.sigmiod  # noqa: B018


def test_register_formula_refuses_other_tables():
    with pytest.raises(ValueError, match="table must be"):
        register_formula({}, aten.cosh)


class Dispatched(TorchDispatchMode):
    """Records the packets of the ops dispatched under it."""

    def __init__(self) -> None:
        super().__init__()
        self.packets: set[OpOverloadPacket] = set()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.packets.add(func.overloadpacket)
        return func(*args, **(kwargs or {}))


class Pointwise(nn.Module):
    """`y.<method>(*operands(y))` on y = 2x (not the input itself, so an in-place op may write to it)."""

    def __init__(self, method: str, operands) -> None:
        super().__init__()
        self.method, self.operands = method, operands

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x * 2
        return getattr(y, self.method)(*self.operands(y))


@pytest.mark.parametrize(
    "method, operands",
    [
        pytest.param("relu", lambda y: (), id="relu"),
        pytest.param("sigmoid", lambda y: (), id="sigmoid"),
        pytest.param("tanh", lambda y: (), id="tanh"),
        pytest.param("clamp_min", lambda y: (0.5,), id="clamp_min"),
        pytest.param("add", lambda y: (y,), id="add"),
        pytest.param("mul", lambda y: (y[:, :1],), id="mul-broadcast"),  # charged per output element
        pytest.param("div", lambda y: (3.0,), id="div-scalar"),
    ],
)
def test_an_in_place_op_costs_its_out_of_place_form(method, operands):
    shape = (2, 4, 6, 6)

    def run(method: str) -> list[tuple[str, str, int, int]]:
        trace = trace_costs(Pointwise(method, operands), torch.empty(shape, device="meta"))
        assert not trace.uncounted
        return [(op.module, op.op, op.macs, op.elementwise_ops) for op in trace.ops]

    with Dispatched() as seen:
        Pointwise(method + "_", operands)(torch.empty(shape, device="meta"))
    assert getattr(aten, method + "_") in seen.packets  # what the counter sees is the in-place op
    out_of_place, in_place = run(method), run(method + "_")
    assert in_place == out_of_place
    assert in_place[-1] == ("", method, 0, 2 * 4 * 6 * 6)


def test_shape_memo_clear_empties_it_and_counting_is_unchanged():
    first = senet_cli.count("se_resnet18", input_size=64)
    assert len(SHAPE_MEMO) > 0
    SHAPE_MEMO.clear()
    assert len(SHAPE_MEMO) == 0
    again = senet_cli.count("se_resnet18", input_size=64)
    assert len(SHAPE_MEMO) > 0
    assert again == first


def test_shape_memo_never_holds_more_than_its_limit():
    memo = ShapeMemo(limit=2)
    for index in range(5):
        memo.put(index, torch.empty(index, device="meta"))
        assert len(memo) <= 2
    assert memo.get(4).shape == (4,) and memo.get(4).device.type == "meta"
    assert memo.get(0) is None
