"""The gates `senet inspect` should report for a model, derived here without senet's code (issue 21).

Imported by tests/test_inspect_outside_sweep.py as `from gate_oracle import ...` (tests/ is on sys.path
under pytest's default import mode, as for conftest.py) and by benchmarks/inspect_sweep.py.

How: one real forward on the CPU (real tensors, eval mode) under a `TorchFunctionMode` that sees every
torch function call, with a pre-hook and a hook on every module that is not a torch.nn built-in nor a
container. Each running module is a frame holding the ids of the tensors it made from its input:

- FEATURES: its first tensor argument, a view of it (view, expand, permute, ...), or a product of
  features and a gate (CBAM's channel-gated features, then gated again);
- DERIVED: anything computed from the input; REDUCED: derived through a tensor with fewer elements
  than the input per sample (a mean, a pooling), or from one.

A product `features * g` in the innermost frame holding those features is a gate when `g` is derived
and not features, and either broadcasts over the features (fewer values per sample) or was reduced
(timm's SimpleCoordAttn: `sigmoid(a_h + a_w)` has the features' shape, summed from strip pools). The
branch form of SK and ResNeSt's split attention, `sum_m(branch_m * w_m)`, is a product of two derived
tensors summed over dimension 1 at once: its `w` is the gate. `x * sigmoid(x)` (SiLU; nothing reduced),
LayerScale's `x * gamma` (a parameter) and a residual `x + f(x)` are no gates.

Not seen here: a gate on features the module made itself rather than on its input. timm's SplitAttn with
radix 1 (resnest50d_1s4x24d) is a conv followed by `x * sigmoid(...)` of its output: inspect reports its
`rsoftmax` as C channel gates, rightly, and the all-models sweep lists them as "extra" (the one model
with mismatches, 16 entries, in benchmarks/inspect_sweep.py's run of 2026-12-05).

Each gate is named by the module whose output it is (through views only): the innermost module that
returned it, by full path. None where the gate was computed by a function, not a module.

Kind and channels come from how the gate broadcasts over the features, as the brief of issue 21 puts it:
features [B, C, H, W]; a gate varying over C only is "channel" (C channels, 1 position); one constant over
C is "spatial" (1 channel, the positions it varies over); one varying over both is "channel x position"
(C channels). Branch gates ([B, M, C, 1, 1] over [B, M, C, H, W] branches) are M*C channel gates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

FEATURES, DERIVED, REDUCED, PRODUCT = 1, 2, 4, 8

MULS = frozenset({"mul", "mul_", "__mul__", "__rmul__", "__imul__"})
VIEWS = frozenset({"view", "reshape", "expand", "expand_as", "unsqueeze", "squeeze", "permute", "transpose",
                   "flatten", "contiguous", "view_as", "reshape_as", "unflatten", "movedim", "float", "type_as",
                   "to", "clone", "detach"})
SUMS = frozenset({"sum"})


@dataclass(frozen=True)
class ExpectedGate:
    """One gate the model's forward multiplies its features by: the path of the module returning it
    (None: computed by a function), the path of the module whose input it gates, its kind, channels
    and positions (per image, as inspect counts them), and its mean over the forward (all calls)."""

    path: str | None
    owner: str
    kind: str
    channels: int
    positions: int
    mean: float


@dataclass
class _Frame:
    path: str
    size: int  # input elements per sample
    flags: dict[int, int] = field(default_factory=dict)


def _tensors(value: Any) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for item in value for t in _tensors(item)]
    if isinstance(value, dict):
        return [t for item in value.values() for t in _tensors(item)]
    return []


def _per_sample(tensor: torch.Tensor) -> int:
    return tensor[0].numel() if tensor.ndim else 1


def _varies(features: tuple[int, ...], gate: torch.Tensor) -> list[int]:
    """The non-batch dimensions of `features` over which `gate` (broadcast to them) takes different places."""
    pad = len(features) - gate.ndim
    shape = (1,) * pad + tuple(gate.shape)
    strides = (0,) * pad + tuple(gate.stride())
    return [d for d in range(1, len(features)) if shape[d] > 1 and strides[d] != 0]


def kind_of(features: tuple[int, ...], gate: torch.Tensor, branches: bool = False) -> tuple[str, int, int]:
    """(kind, channels, positions) of `gate` multiplying `features` (see the module doc)."""
    varies = _varies(features, gate)
    channel_dims = [1, 2] if branches else [1]
    channels = math.prod(features[d] for d in channel_dims if d in varies)
    positions = math.prod(features[d] for d in varies if d not in channel_dims)
    if not any(d in varies for d in channel_dims):
        return "spatial", 1, positions
    return ("channel" if positions == 1 else "channel x position"), channels, positions


class GateRecorder(TorchFunctionMode):
    """Records every gate of one forward (see the module doc); `gates()` the result."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.frames: list[_Frame] = []
        self.alive: list[Any] = []  # ids stay unique while the tensors live
        self.origin: dict[int, str] = {}  # tensor id -> the innermost module that returned it (through views)
        self.found: dict[tuple[str | None, str], list[tuple[str, int, int, float, int]]] = {}
        self.pending: dict[int, tuple[str | None, str, tuple[int, ...], torch.Tensor]] = {}  # branch products
        self.handles = []
        for path, module in model.named_modules():
            self.handles.append(module.register_forward_hook(
                lambda _m, _a, out, path=path: self._returned(path, out)))
            if path and _is_candidate(module):
                self.handles.append(module.register_forward_pre_hook(
                    lambda _m, args, kwargs, path=path: self._enter(path, args, kwargs), with_kwargs=True))
                self.handles.append(module.register_forward_hook(
                    lambda _m, _a, _out, path=path: self._leave(path)))

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()

    def _enter(self, path: str, args: Any, kwargs: Any) -> None:
        first = next(iter(_tensors((args, kwargs))), None)
        frame = _Frame(path, _per_sample(first) if first is not None else 0)
        if first is not None and first.ndim >= 3 and first.is_floating_point():
            frame.flags[id(first)] = FEATURES | DERIVED
            self.alive.append(first)
        self.frames.append(frame)

    def _leave(self, path: str) -> None:
        while self.frames:
            if self.frames.pop().path == path:
                break

    def _returned(self, path: str, out: Any) -> None:
        if isinstance(out, torch.Tensor) and id(out) not in self.origin:
            self.origin[id(out)] = path
            self.alive.append(out)

    def __torch_function__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        operands = _tensors((args, kwargs))
        results = _tensors(out)
        if not operands or not results:
            return out
        self.alive += results
        if name in MULS and len(args) >= 2 and all(isinstance(a, torch.Tensor) for a in args[:2]):
            if self._product(args[0], args[1], results[0]):
                return out
        if name in SUMS and id(operands[0]) in self.pending and _sums_dim_1(args, kwargs):
            self._branches(operands[0])
        if name in VIEWS and id(operands[0]) in self.origin:
            for result in results:
                self.origin.setdefault(id(result), self.origin[id(operands[0])])
        for frame in self.frames:
            flags = 0
            for operand in operands:
                flags |= frame.flags.get(id(operand), 0)
            if not flags & (DERIVED | FEATURES):
                continue
            keep = frame.flags.get(id(operands[0]), 0) & (FEATURES | PRODUCT) if name in VIEWS else 0
            for result in results:
                small = result.ndim > 0 and _per_sample(result) < frame.size
                frame.flags[id(result)] = DERIVED | (flags & REDUCED) | (REDUCED if small else 0) | keep
        if name.endswith("_") or name.startswith("__i"):  # in place: the operand holds the result
            for frame in self.frames:
                if id(results[0]) in frame.flags:
                    frame.flags[id(operands[0])] = frame.flags.get(id(operands[0]), 0) | frame.flags[id(results[0])]
        return out

    def _product(self, a: torch.Tensor, b: torch.Tensor, product: torch.Tensor) -> bool:
        """Record `a * b` when it gates a frame's features, or may be a branch form's weighing."""
        for frame in reversed(self.frames):
            for features, gate in ((a, b), (b, a)):
                feature_flags, gate_flags = frame.flags.get(id(features), 0), frame.flags.get(id(gate), 0)
                if not feature_flags & FEATURES or not gate_flags & DERIVED or gate_flags & FEATURES:
                    continue
                shape = tuple(product.shape)
                if _per_sample(gate) >= _per_sample(product) and not _varies_less(shape, gate) \
                        and not gate_flags & REDUCED:
                    continue
                self._record(frame.path, self.origin.get(id(gate)), shape, gate)
                flags = FEATURES | DERIVED | PRODUCT
                frame.flags[id(product)] = flags
                if a is product or product is features:  # in place
                    frame.flags[id(features)] = flags
                for outer in self.frames:
                    if outer is not frame:
                        outer.flags[id(product)] = outer.flags.get(id(product), 0) | (
                            DERIVED if (outer.flags.get(id(a), 0) | outer.flags.get(id(b), 0)) else 0)
                return True
        inner = self.frames[-1] if self.frames else None
        if inner is not None and product.ndim == 5:
            for branches, weight in ((a, b), (b, a)):
                if inner.flags.get(id(branches), 0) & DERIVED and inner.flags.get(id(weight), 0) & DERIVED \
                        and _per_sample(weight) < _per_sample(product) and id(weight) in self.origin:
                    self.pending[id(product)] = (self.origin[id(weight)], inner.path, tuple(product.shape), weight)
        return False

    def _branches(self, product: torch.Tensor) -> None:
        path, owner, shape, weight = self.pending.pop(id(product))
        kind, channels, positions = kind_of(shape, weight, branches=True)
        self.found.setdefault((path, owner), []).append((kind, channels, positions, float(weight.double().sum()),
                                                         weight.numel()))

    def _record(self, owner: str, path: str | None, shape: tuple[int, ...], gate: torch.Tensor) -> None:
        kind, channels, positions = kind_of(shape, gate)
        self.found.setdefault((path, owner), []).append((kind, channels, positions, float(_unique(gate).sum()),
                                                         _unique(gate).numel()))

    def gates(self) -> list[ExpectedGate]:
        expected = []
        for (path, owner), calls in self.found.items():
            kind, channels, positions = calls[0][:3]
            total, count = sum(c[3] for c in calls), sum(c[4] for c in calls)
            expected.append(ExpectedGate(path, owner, kind, channels, positions, total / count))
        return expected


def _unique(gate: torch.Tensor) -> torch.Tensor:
    """The gate's own values, without the copies an expand (stride 0) shows."""
    index = tuple(slice(0, 1) if stride == 0 else slice(None) for stride in gate.stride())
    return gate[index].double() if gate.ndim else gate.double().reshape(1)


def _varies_less(shape: tuple[int, ...], gate: torch.Tensor) -> bool:
    return len(_varies(shape, gate)) < len(shape) - 1


def _sums_dim_1(args: Any, kwargs: Any) -> bool:
    dim = kwargs.get("dim", args[1] if len(args) > 1 else None)
    return dim == 1 or dim == (1,) or dim == [1]


def _is_candidate(module: nn.Module) -> bool:
    if isinstance(module, (nn.Sequential, nn.ModuleList, nn.ModuleDict)):
        return False
    return not type(module).__module__.startswith("torch.nn.")


def expected_gates(model: nn.Module, images: torch.Tensor) -> list[ExpectedGate]:
    """The gates of `model` (eval mode, on the CPU) over one forward of `images`, in the order first seen."""
    recorder = GateRecorder(model)
    try:
        with torch.inference_mode(), recorder:
            model(images)
    finally:
        recorder.remove()
    return recorder.gates()


SMALL_SIDE = 64
"""The input side tried first (fast); a model that refuses it runs at its own default."""


def build(name: str) -> nn.Module:
    """`timm:NAME` or `torchvision:NAME` with random weights (seed 0), built by the library itself."""
    torch.manual_seed(0)
    source, _, target = name.partition(":")
    if source == "timm":
        import timm

        return timm.create_model(target).eval()
    import torchvision

    return torchvision.models.get_model(target).eval()


def default_side(name: str) -> int:
    source, _, target = name.partition(":")
    if source == "timm":
        import timm

        return int(timm.models.get_pretrained_cfg(target).input_size[-1]) if timm.models.get_pretrained_cfg(
            target) else 224
    return 224


def synthetic(side: int, count: int = 2) -> torch.Tensor:
    """The images `inspect(data="synthetic", limit=count, batch=count)` runs: standard normal, seed 0."""
    return torch.randn(count, 3, side, side, generator=torch.Generator().manual_seed(0))


def derive(name: str, model: nn.Module) -> tuple[int, list[ExpectedGate]]:
    """(input side, expected gates): at SMALL_SIDE where the model runs there, else at its default."""
    try:
        return SMALL_SIDE, expected_gates(model, synthetic(SMALL_SIDE))
    except Exception:  # noqa: BLE001 (too small for it: its own size)
        side = default_side(name)
        return side, expected_gates(model, synthetic(side))


def compare(name: str, folder: Any) -> tuple[int, int, list[str]]:
    """(gates expected, inspect's entries matching one, mismatches) of `senet_cli.inspect` on `name` with
    random weights, against the gates derived here; each mismatch one line starting with its cause
    (missing, extra, kind/channels, values, functional gate, refused)."""
    from pathlib import Path

    import senet_cli
    from senet_cli.errors import SenetError

    model = build(name)
    side, expected = derive(name, model)
    checkpoint = Path(folder) / f"{name.replace(':', '_')}.pth"
    torch.save(model.state_dict(), checkpoint)
    del model
    problems: list[str] = []
    matched = 0
    try:
        report = senet_cli.inspect(checkpoint, model=name, data="synthetic", limit=2, batch=2, input_size=side)
        entries = {f"{g.name}.{g.gate}" if g.gate else g.name: g for g in report.blocks}
    except SenetError as error:
        text = str(error)
        if "\n" in text:
            problems.append(f"refusal of more than one line: {text!r}")
        if "no attention gates to inspect" not in text or expected:
            problems.append(f"refused: {text.splitlines()[0][:200]}")
        entries = {}
    finally:
        checkpoint.unlink(missing_ok=True)
    for gate in expected:
        if gate.path is None:
            problems.append(f"functional gate: {gate.owner} multiplies by a gate no module returns")
            continue
        entry = entries.pop(gate.path, None)
        if entry is None:
            problems.append(f"missing: {gate.path} ({gate.kind}, {gate.channels})")
            continue
        got = (entry.kind, entry.channels, entry.positions)
        if got != (gate.kind, gate.channels, gate.positions):
            problems.append(f"kind/channels: {gate.path}: inspect {got}, expected "
                            f"{(gate.kind, gate.channels, gate.positions)}")
        elif not math.isclose(entry.mean, gate.mean, rel_tol=1e-4, abs_tol=1e-5):
            problems.append(f"values: {gate.path}: inspect mean {entry.mean:.6g}, expected {gate.mean:.6g}")
        else:
            matched += 1
    problems += [f"extra: {path} ({entry.kind}, {entry.channels})" for path, entry in entries.items()]
    return len(expected), matched, problems
