"""A latency model: what `senet calibrate` measured on a machine, and the time it predicts op by op.

The roofline bound (roofline.py) charges each op at the datasheet's peak and bandwidth and leaves
out the per-op cost, so it is a floor that a real run never reaches: on this project's CPU and at
batch 1 on a GPU, measured times were 2x to 50x the bound. The prediction here is the same sum
with these corrections, each measured by calibrate on the machine itself:

- compute time at the *achieved* rate of the op's shape class: a conv or matmul is charged at the
  rate calibrate measured for the calibrated shape nearest to it in (log MACs, log depth[, log
  stride, log width, log map]), depth being the MACs per output element (a conv's C_in / groups x
  kernel area, a matmul's K), a conv's width its output channels per group and its map its output
  positions per image (between dense convs, calibrated on one CPU thread: there PyTorch runs an
  unstrided 1x1 conv at batch under 16 as one matrix product per image), so a depthwise 3x3 (depth
  9, width 1) or a 1x1 conv on a 1x1 map (SE's excitation: few MACs) is not credited with the rate
  of a large 3x3 conv (depth 576 and more), nor MobileNet's 1x1 projection to 24 channels with that
  of CBAM's 7x7 conv to one map;
- an activation's time at the rate calibrate measured for that op (`pointwise` points): SiLU,
  sigmoid, GELU, tanh are arithmetic, not bytes, on a CPU;
- bytes time at the bandwidth achieved for tensors of that size (interpolated in log bytes between
  calibrated sizes: within the last-level cache a copy runs faster than from DRAM);
- a fixed cost per op: dispatch, the module call and (on CUDA) the kernel launch, measured from a
  chain of tiny ops; and a cold-op cost for an op when no op of its name ran within `cache_bytes`
  of traffic (its code and the framework's data it needs come back from far caches; measured on
  tiny ops after a conv), with a fraction of the op before it for the op right after a long one
  (forward_predictor);
- a cold-write cost per byte of each new output: calibrate's copies run warm (the allocator hands
  a looped op back the buffer it just wrote), but in a network an op's output lands in memory last
  touched many megabytes of traffic before, and writing there is slower (on this project's CPU a
  copy of 3 MiB took 2.4x as long): the difference, measured at each size, is charged per byte;
- a cold-read cost per byte of each input read from memory the caches no longer hold: looped,
  calibrate's ops read inputs the caches keep (a reduction of 24.5 MiB ran in 1.0 ms on this
  project's CPU), but in a network an op reads what another op wrote once, and this Xeon's shared
  L3 keeps no line it has not seen reused: read right after it was written as a new tensor, the
  same reduction took 2.6 ms, as after a flush of the caches (2.7). An input is read cold when more
  bytes than the caches private to the cores hold (`cache_bytes`) were touched since it was last touched
  (its reuse distance, count's trace); the charge is calibrate's sum over memory not touched lately
  (`cold_read` points) less its looped sum (`read` points), at the input's size.

    predicted(op) = max(2 x MACs / achieved_rate(shape),
                        bytes / achieved_bandwidth(bytes) + cold_write(new output bytes)
                        + cold_read(inputs past the caches)) + op_cost
                 [+ cold_op_us if cold] [+ after_op_fraction x predicted(op before)]

An op that launches work is one of count's traced ops (views and allocations move nothing and are
not traced); `kernels` counts them. The roofline bound of a calibrated device uses the best rate and
bandwidth calibrate measured and no per-op cost, so it never exceeds the prediction (every term
of the prediction is at least the bound's).

Torch-free: only arithmetic on the numbers `count` and `calibrate` produced.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from senet_cli.errors import ArgumentError, SenetError
from senet_cli.vocabulary import DEVICES

SCHEMA = 9
"""The device file's format version: 2 added the bmm, batch_norm and channelwise kinds, 3 the
after-op fraction, 4 the speed probe's time and each point's batch, 5 the cold_write points, 6 the
read and cold_read points and cache_bytes, 7 the pointwise points (with the op each measured), a
conv point's width and the cold-op cost, 8 the fresh-page cost (points timed without their page
faults), 9 a conv point's positions (its output's H x W). A file of an older schema is read as it
is (its per-channel ops then take the memory points' bandwidth, no op pays for the one before it,
no speed is compared, a point's batch is read from its label, no output pays for landing in cold
memory, no input for being read from it, activations take a copy's bandwidth, a conv's nearest
shape is chosen without its width or its map and no op pays for running cold, as before; their
points' times may hold page faults); a file of a newer schema is refused with one line."""
READ_SCHEMAS = (1, 2, 3, 4, 5, 6, 7, 8, 9)
FIGURE_KEYS = ("op_cost_us", "after_op_fraction", "cold_write_us_per_mib", "cold_read_us_per_mib", "cache_bytes",
               "cold_op_us", "cold_op_us_by_group", "fresh_page_us_per_mib")
"""The keys of DeviceCalibration.figures."""
OpPredict = Callable[[str, int, int, int, int, int, Sequence[tuple[int, int]], int, int], float]
"""(op name, macs, bytes, depth, stride, bytes written fresh, (bytes, reuse distance) of each input,
a conv's output channels per group, a conv's output positions per image) -> predicted seconds
(DeviceCalibration.forward_predictor: op_seconds and what the op pays for the ops before it)."""
FIRST_TOUCH = 2**62
"""A read's reuse distance when the pass had not touched its memory before (parameters, the input):
farther than any cache."""
MAX_FILE_BYTES = 8 * 2**20
"""Largest device file read (senet calibrate writes about 30 KiB): bounded before it is read."""
MAX_COUNT = 10**18
"""Largest MACs, bytes, depth or stride a device file's point may hold (whole numbers, checked when read)."""
MIN_PROBE_US = 1.0
"""Smallest speed-probe time read (a 512^3 or 2048^3 matrix product takes far longer on any machine):
below it a ratio against it would be meaningless or infinite."""
RATE_RANGE = (1e-6, 1e6)
"""Rates a device file's point may hold (TFLOPS or GB/s): calibrate measured 0.4 GB/s to 90 GB/s and
0.006 to 0.2 TFLOPS on this project's CPU; a rate of 1e-300 would turn a microsecond into 1e290
seconds, or round to zero inside an interpolation and divide by it."""
MAX_POINTS = 10_000
"""Most points read from a device file (senet calibrate writes about 100)."""

KINDS = ("conv", "matmul", "bmm", "max_pool", "avg_pool", "max_reduce", "sum_reduce", "batch_norm", "channelwise",
         "pointwise", "memory", "in_place", "cold_write", "read", "cold_read")
"""Shape classes' kinds: convolutions, matrix products (mm, addmm: linear layers), batched ones (bmm,
baddbmm: GC's context pooling, a matrix-vector product per image, ran at 0.6 GFLOPS on this
project's CPU where a linear layer of similar MACs ran 20x faster; non-local and DANet affinities), max and
average pooling (windowed kernels that run far below a copy's bandwidth on a CPU: ResNet's 3x3/2
max pool with indices ran at 0.25 GB/s on this project's CPU, a copy at 17), max and sum/mean
reductions (CBAM's and GE's max over the map or over the channels ran at 3-5 GB/s on this CPU where
a mean of the same tensor ran at 12-25 and a copy at 27: how many elements each output reduces and
whether they are contiguous set the rate), batch norm and the other per-channel ops (an elementwise
op with one operand constant over the map, as SE's gating x * s with s of shape N x C x 1 x 1: on
this project's CPU both ran 2.6-3.4x slower than a copy on a 2048-channel 7x7 map, where each
channel's 49 elements are one short loop, and batch norm adds a fixed cost of its own), activations
and other elementwise math whose arithmetic outlasts its bytes (`pointwise`, one set of points per op,
POINTWISE_OPS: on this project's EPYC with one thread, over 4 MiB, SiLU and sigmoid took 3.5x a copy's
time, GELU 4-5x, Mish 32x, ReLU and ReLU6 0.8x), and other
ops without MACs, whose time is their bytes (`in_place` for those writing into a tensor they were
given, as ResNet's ReLU(inplace=True): looped on this project's CPU a 24.5 MiB ReLU in place took
1.2 ms where the copy moving the same bytes into a new output took 4.6); and `cold_write`, the same
copy as the memory points with its output written into memory not touched lately: no op is of that
kind, each op's new output pays the difference (DeviceCalibration.cold_write_seconds); `read` and
`cold_read`, a sum looped over one tensor and over tensors in memory not touched lately: no op is of
those kinds either, each input read past the caches pays the difference
(DeviceCalibration.cold_read_seconds)."""

COLD_OP_GROUPS = {"conv": "compute", "matmul": "compute", "bmm": "compute", "max_reduce": "reduction",
                  "sum_reduce": "reduction", "max_pool": "reduction", "avg_pool": "reduction",
                  "batch_norm": "batch_norm"}
"""Kind (op_kind) -> the group whose cold-op cost an op of that kind pays; every other kind is
`elementwise`. On this project's EPYC, after a conv and an unrelated op, a 1x1 conv on a 1x1 map
paid 23-40 us more than looped, a mean or a max 10-23, a small batch norm 16, a sigmoid 4-5: one
figure for all (the median, 14-28 us) overcharged CBAM's many elementwise ops (its overhead at batch
1 predicted 6.4 points high in one run) and undercharged SE's convs."""
COLD_OP_GROUP_NAMES = ("compute", "reduction", "batch_norm", "elementwise")


def cold_op_group(op: str, macs: int, depth: int = 0) -> str:
    """The group (COLD_OP_GROUP_NAMES) whose cold-op cost a traced op pays."""
    return COLD_OP_GROUPS.get(op_kind(op, macs, depth), "elementwise")


MAX_REDUCTIONS = frozenset({"amax", "amin", "max", "min"})
"""Reductions that keep an extreme (`max` and `min` with a dim return indices too)."""
SUM_REDUCTIONS = frozenset({"mean", "sum", "nansum", "nanmean"})
"""Reductions that accumulate."""
REDUCTIONS = MAX_REDUCTIONS | SUM_REDUCTIONS
BATCH_NORMS = frozenset({"batch_norm", "native_batch_norm", "_native_batch_norm_legit",
                         "_native_batch_norm_legit_no_training", "cudnn_batch_norm", "miopen_batch_norm"})
"""Batch norm as traced (inference: a per-channel affine map)."""
BINARY_OPS = frozenset({"mul", "add", "sub", "div"})
"""Elementwise ops of two tensors: per-channel (`channelwise`) when one is constant over the map
(the trace's depth is then the elements of the map each of its values covers)."""

POINTWISE_OPS = ("sigmoid", "silu", "hardswish", "hardsigmoid", "gelu", "tanh", "exp", "elu", "softplus", "mish",
                 "erf", "_softmax")
"""Ops (as count traces them) that calibrate measures one by one as `pointwise` points: activations
and elementwise math of the zoo's, torchvision's and timm's models whose time on a CPU is their
arithmetic, not their bytes (`_softmax` over rows of 784, a 28x28 map). An op without points of its
own takes the memory points' bandwidth (ReLU, ReLU6, a leaky ReLU run about as fast as a copy)."""
BMM_OPS = frozenset({"bmm", "baddbmm"})
"""Batched matrix products as traced (torch.matmul of 3-d or 4-d tensors dispatches to bmm)."""
CONV_OPS = frozenset({"convolution", "_convolution", "conv2d", "conv1d", "conv3d", "cudnn_convolution",
                      "mkldnn_convolution"})


def op_kind(op: str, macs: int, depth: int = 0) -> str:
    """The kind of a traced op: `conv`, `bmm` or `matmul` for ops with MACs (by name), `max_pool` or
    `avg_pool` for pooling ops, `max_reduce` or `sum_reduce` for reductions (by name), `batch_norm`,
    `channelwise` for an elementwise op of two tensors one of which is constant over the map (a
    `depth`, the map's elements, traced), `pointwise` for POINTWISE_OPS, else `memory`."""
    if not macs:
        if "max_pool" in op or "avg_pool" in op:
            return "max_pool" if "max_pool" in op else "avg_pool"
        if op in BATCH_NORMS:
            return "batch_norm"
        if op in POINTWISE_OPS:
            return "pointwise"
        if op in BINARY_OPS and depth:
            return "channelwise"
        return "max_reduce" if op in MAX_REDUCTIONS else "sum_reduce" if op in SUM_REDUCTIONS else "memory"
    return "conv" if op in CONV_OPS else "bmm" if op in BMM_OPS else "matmul"


BYTES_KINDS = frozenset({"max_pool", "avg_pool", "max_reduce", "sum_reduce", "batch_norm", "channelwise", "pointwise",
                         "memory", "in_place", "cold_write", "read", "cold_read"})
"""Kinds whose rate is a bandwidth (GB/s) looked up by bytes, not a compute rate."""
UNITS = ("op_cost_us, median_us, cold_op_us, cold_op_us_by_group: microseconds (median); rate: TFLOPS (2 x MACs "
         "per second / 1e12) for "
         + ", ".join(kind for kind in KINDS if kind not in BYTES_KINDS) + "; GB/s (1e9 bytes per second) for "
         + ", ".join(kind for kind in KINDS if kind in BYTES_KINDS) + "; macs and bytes as `senet count` counts them; "
         "depth: elements reduced into each output (conv, matmul, bmm, reductions) or covered by each channel's "
         "value (batch_norm, channelwise); width: a conv's output channels per group; positions: a conv's output "
         "positions per image (H_out x W_out); op: the op a pointwise point "
         "measured; stride: a conv's; batch: the batch size a point ran at; after_op_fraction: "
         "seconds an op pays on top per second of the op before it; probe_us: microseconds (median) of the speed "
         "probe; cache_bytes: bytes")
"""The device file's `units`: every kind named with its rate's unit (made from KINDS and BYTES_KINDS)."""
READ_KINDS = frozenset({"read", "cold_read"})
"""Kinds that only price the cold-read term: a sum reads at rates no op is charged at (on this
project's CPU a looped sum of 1 MiB ran at 89-127 GB/s in the L2), so they are not the device's
bandwidth."""
INTENSITY_KINDS = frozenset({"bmm"})
"""Compute kinds whose nearest calibrated shape is also chosen by MACs per byte, beside MACs and
depth: a batched product is a matrix-vector product per image in GC (0.25 MACs per byte, 0.002-0.03
TFLOPS on this project's EPYC) and a matrix-matrix one in a non-local block (7-18 MACs per byte, 0.09
TFLOPS), and a non-local product on a 7x7 map, near a GC shape in MACs and depth, took the GC rate
(nonlocal_resnet18 at batch 1: its products predicted 2,757 us, 573 measured in the network; 465
predicted with this). Not convs or matmuls: their rate follows MACs and depth, and adding MACs per
byte made the validation's worst row 44-46% where it was 25-27%."""
NEAREST_KINDS = frozenset({"max_reduce", "sum_reduce", "batch_norm", "channelwise"})
"""Bytes kinds whose rate is the nearest calibrated point's in (log bytes, log depth[, log stride]):
reductions (depth: elements reduced into each output) and per-channel ops (depth: the map's elements
each channel's value covers)."""


@dataclass(frozen=True)
class RatePoint:
    """One calibrated shape: what it is, its count (count's conventions), its median time per call
    (the per-op cost included) and the rate achieved once the per-op cost is taken off.

    rate: TFLOPS (2 x MACs / s, 10^12) for conv and matmul; GB/s (10^9 bytes / s) for pooling and memory."""

    kind: str
    label: str
    macs: int
    bytes: int
    median_us: float
    rate: float
    depth: int = 0  # MACs per output element (conv, matmul), input elements per output (reductions), elements
    # of the map per channel (batch_norm, channelwise), else 0
    stride: int = 0  # reductions: element stride along the innermost reduced dimension (1: contiguous); convs: the
    # largest spatial stride; else 0 (also: not known, a file from before it was recorded)
    spread: float = 0.0  # (max - min) / median of the medians of calibrate's interleaved rounds
    batch: int = 0  # the batch size the shape ran at (0: none, as the memory points, or not recorded: schema < 4)
    width: int = 0  # a conv's output channels per group (0: not a conv, or not recorded: schema < 7)
    positions: int = 0  # a conv's output positions per image, H_out x W_out (0: not a conv, or not recorded:
    # schema < 9)
    op: str = ""  # the op (as count traces it) a pointwise point measured; else ""


@dataclass(frozen=True)
class _PointIndex:
    """A calibration's points grouped by kind (in file order) and their sorted lookups, built once per
    calibration: count prices every traced op against them (scanning and sorting all the points for
    each op took 30-34 us an op on CBAM-ResNet-50, 11-13 with this; benchmarks/RESULTS.md)."""

    by_kind: dict[str, tuple[RatePoint, ...]]
    compute: tuple[RatePoint, ...]  # every point whose rate is a compute rate
    rates: dict[str, list[tuple[int, float]]]  # kind -> (bytes, rate) sorted by bytes
    per_byte: dict[str, list[tuple[int, float]]]  # kind -> (bytes, median seconds per byte) sorted by bytes: the
    # per-op cost left in (it cancels in a difference of two kinds at one size, where taking it off a sum faster
    # than the cost would not)
    pointwise: dict[str, list[tuple[int, float]]]  # op -> (bytes, rate) of its pointwise points, sorted by bytes

    @classmethod
    def of(cls, points: Sequence[RatePoint]) -> _PointIndex:
        by_kind: dict[str, list[RatePoint]] = {}
        for point in points:
            by_kind.setdefault(point.kind, []).append(point)
        return cls({kind: tuple(found) for kind, found in by_kind.items()},
                   tuple(p for p in points if p.kind not in BYTES_KINDS),
                   {kind: sorted((p.bytes, p.rate) for p in found) for kind, found in by_kind.items()},
                   {kind: sorted((p.bytes, p.median_us * 1e-6 / p.bytes) for p in found if p.bytes > 0)
                    for kind, found in by_kind.items()},
                   {op: sorted((p.bytes, p.rate) for p in by_kind.get("pointwise", ()) if p.op == op)
                    for op in {p.op for p in by_kind.get("pointwise", ())}})


@dataclass(frozen=True)
class DeviceCalibration:
    """What `senet calibrate` measured on one machine, in one precision and thread count.

    op_cost_us: median time of one op in a chain of tiny module calls (a 1-element elementwise op
    each), in microseconds: dispatch, module call and launch, with next to no work. points: the
    calibrated shapes (RatePoint). `to_dict()` is the device file's JSON contract."""

    device: str  # "cpu" or "cuda"
    name: str  # the processor or GPU name
    dtype: str
    threads: int  # torch's CPU threads while calibrating
    op_cost_us: float
    points: tuple[RatePoint, ...]
    torch_version: str = ""
    created: str = ""  # ISO 8601, UTC
    seconds: float = 0.0  # how long calibrating took
    method: str = ""
    load_before: float = -1.0  # the 1-minute load average before calibrating (-1: not known)
    load_after: float = -1.0  # ... and after it
    cpu_count: int = 0  # logical CPUs of the machine (0: not known)
    rounds: int = 0  # interleaved rounds each point's median is over (0: not known, a file from before)
    after_op_fraction: float = 0.0  # what an op pays on top for the op before it, per second of that op's time
    probe_us: float = 0.0  # median microseconds of profile/probe.py's fixed op while calibrating (0: not measured)
    cache_bytes: int = 0  # what the caches private to the threads' cores hold together: an input with a reuse
    # distance past it is read cold (0: not known, no input pays)
    cold_op_us: float = 0.0  # what an op pays on top when no op of its name ran within cache_bytes of traffic
    # (microseconds, over every tiny op calibrate timed; 0: not measured, schema < 7)
    cold_op_us_by_group: tuple[tuple[str, float], ...] = ()  # (COLD_OP_GROUPS' group, microseconds): the same per
    # kind of op, which an op of that group pays instead (empty: every op pays cold_op_us)
    fresh_page_us_per_mib: float = 0.0  # what writing a MiB of freshly mapped memory costs on top of writing it again
    # (microseconds; 0: not measured, a GPU, or schema < 8): calibrate takes its points' page faults off at this
    # cost, and profile prices the faults it counts with it; no op is charged it (see op_seconds)

    @cached_property
    def _index(self) -> _PointIndex:
        return _PointIndex.of(self.points)

    @property
    def setting(self) -> str:
        """Where it was measured, for a message: "cpu, 1 thread", "cpu, 4 threads" or "cuda"."""
        return setting_text(self.device, self.threads)

    @property
    def busy(self) -> bool:
        """True when other work shared the CPU: the load before calibrating, plus the threads it used,
        exceeded the machine's CPUs by more than half of one (a single-threaded job then gets a varying
        share of a core, and the rates measure that share); or the load after it did, once calibrate's
        own share of that one-minute average is taken off (work that began while it ran)."""
        if self.device != "cpu" or self.cpu_count <= 0:
            return False
        others_after = self.load_after - self.own_load_share * self.threads if self.load_after >= 0 else -1.0
        return max(self.load_before, others_after) + self.threads > self.cpu_count + 0.5

    @property
    def own_load_share(self) -> float:
        """How much of each of its threads the calibration itself left in the one-minute load average by
        its end: the average moves toward the load as 1 - exp(-t / 60 s), t the recorded `seconds`
        (CALIBRATE_SECONDS where a file does not say: calibrate's 50 s budget)."""
        return 1 - math.exp(-(self.seconds if self.seconds > 0 else CALIBRATE_SECONDS) / 60)

    @property
    def peak_tflops(self) -> float:
        """The best compute rate measured (TFLOPS): the calibrated device's roofline peak."""
        rates = [p.rate for p in self.points if p.kind not in BYTES_KINDS]
        return max(rates) if rates else math.inf

    @property
    def bandwidth_gbs(self) -> float:
        """The best bandwidth measured (GB/s): the calibrated device's roofline bandwidth (neither the
        read sums nor the activations, whose rate is their arithmetic's)."""
        rates = [p.rate for p in self.points
                 if p.kind in BYTES_KINDS and p.kind not in READ_KINDS and p.kind != "pointwise"]
        return max(rates) if rates else math.inf

    def compute_tflops(self, kind: str, macs: int, moved_bytes: int, depth: int = 0, stride: int = 0,
                       width: int = 0, positions: int = 0) -> float:
        """The achieved rate of the calibrated shape nearest to (macs, depth, stride, width, positions) in log
        space, among points of the same kind (of any compute kind when that kind was not calibrated);
        MACs per byte stand in for depth where either depth is unknown (0), and count beside it for a
        batched product (INTENSITY_KINDS); the stride counts where both know it (a strided 1x1 conv
        reads its input sparsely and ran 1.2-2.2x slower per MAC), and so does a conv's width, its
        output channels per group (without it, on this project's EPYC, MobileNetV3's 1x1 projections
        of 72-288 -> 24-96 channels took the rate of CBAM's 7x7 conv to one map, 0.007 TFLOPS, and
        were predicted at 7-10x their time in the network; its depthwise 5x5 convs took a dense 1x1
        conv's, 0.07, and were predicted at a quarter of theirs). Between two dense convs (both
        widths above 1) their maps count too, their output positions per image: on one CPU thread
        PyTorch runs an unstrided 1x1 conv at batch under 16 as one matrix product per image, whose
        third dimension is the map, so the batch does not make up for a small map (EfficientNet-B0's
        1x1 convs on 7x7 maps at batch 8 took the rate of a 1x1 conv on a 14x14 map, and were
        predicted at 0.65-0.76 of their time in the network; 0.98-1.02 with the map). Only in a
        calibration of one CPU thread (with more, and on a GPU, the same convs run one product over
        the whole batch, through oneDNN or cuDNN, and the batch does make up for the map). Not
        between depthwise convs: with few calibrated ones, the nearest map drew a 5x5 conv to a 3x3
        one's rate and an unstrided one to a strided one's, and the validation's worst row went from
        9% to 28%."""
        candidates = self._index.by_kind.get(kind) or self._index.compute
        if not candidates:
            return math.inf
        size, intensity = math.log10(max(macs, 1)), math.log10(max(macs, 1) / max(moved_bytes, 1))
        per_image = self.device == "cpu" and self.threads == 1  # where PyTorch's THNN path runs 1x1 convs

        def distance(point: RatePoint) -> float:
            reuse = math.log10(max(point.macs, 1) / max(point.bytes, 1)) - intensity  # MACs per byte apart
            if depth and point.depth:
                shape = math.log10(point.depth) - math.log10(depth)
                reuse = reuse if kind in INTENSITY_KINDS else 0.0
            else:
                shape, reuse = reuse, 0.0  # MACs per byte stand in for the depth
            apart = math.log10(point.stride) - math.log10(stride) if stride and point.stride else 0.0
            wide = math.log10(point.width) - math.log10(width) if width and point.width else 0.0
            dense = per_image and width > 1 and point.width > 1  # neither depthwise nor to one map
            mapped = (math.log10(point.positions) - math.log10(positions)
                      if dense and positions and point.positions else 0.0)
            return (math.log10(max(point.macs, 1)) - size) ** 2 + shape**2 + apart**2 + reuse**2 + wide**2 + mapped**2

        return min(candidates, key=distance).rate

    def bandwidth_for(self, moved_bytes: int, kind: str = "memory") -> float:
        """The achieved bandwidth (GB/s) for an op of `kind` (a pooling kind or memory) moving `moved_bytes`:
        linear in log bytes between the two calibrated sizes around it, the nearest one's outside
        their range. A kind without points of its own uses the memory points."""
        points = self._index.rates.get(kind) or self._index.rates.get("memory")
        return _log_interpolated(points, moved_bytes) if points else math.inf

    def reduction_gbs(self, kind: str, moved_bytes: int, depth: int, stride: int = 0) -> float:
        """The achieved bandwidth (GB/s) of a reduction of `kind` moving `moved_bytes`, reducing
        `depth` input elements into each output `stride` elements apart (or of a per-channel op over
        maps of `depth` elements): the calibrated point of that kind nearest in (log bytes, log depth,
        log stride; the stride where both know it: a max over 64 channels 3,136 elements apart is not
        a max over a contiguous 7x7 map of similar size); the memory points' bandwidth for its size
        when none was calibrated (a device file from before that kind was measured) or the depth is
        unknown."""
        candidates = [p for p in self._index.by_kind.get(kind, ()) if p.depth]
        if not candidates or not depth:
            return self.bandwidth_for(moved_bytes, "memory")
        size, reach = math.log10(max(moved_bytes, 1)), math.log10(depth)

        def distance(point: RatePoint) -> float:
            apart = math.log10(point.stride) - math.log10(stride) if stride and point.stride else 0.0
            return (math.log10(max(point.bytes, 1)) - size) ** 2 + (math.log10(point.depth) - reach) ** 2 + apart**2

        return min(candidates, key=distance).rate

    def op_seconds(self, op: str, macs: int, moved_bytes: int, depth: int = 0, stride: int = 0,
                   written: int = 0, reads: Sequence[tuple[int, int]] = (), width: int = 0,
                   positions: int = 0) -> float:
        """Predicted seconds of one traced op: max(compute at its class's rate (an activation with
        pointwise points of its own: its bytes at their rate), bytes at the achieved bandwidth for
        its size (an elementwise op writing nothing new, as one in place, at the `in_place` points'
        where the file has them), or for its size, reach and stride if a reduction, plus the
        cold-write cost of the `written` bytes of its new output and the cold-read cost of its
        `reads`, (bytes, reuse distance) per input) + the per-op cost. An activation's arithmetic
        hides its memory's time (the larger counts, not their sum): in EfficientNet-B0 at batch 1 on
        this project's EPYC its SiLUs took 2.70 ms, predicted 3.17 with the cold terms added to their
        arithmetic, 0.85 at a copy's bandwidth.

        No op pays for page faults: the prediction is for a process whose allocator keeps the memory
        it frees (jemalloc, tcmalloc, or glibc with its trim and mmap thresholds raised). With glibc's
        defaults a CPU forward faults in memory again run after run, and how much depends on what
        the process allocated before, not on the model alone: EfficientNet-B0 at batch 1 took 22.7
        MiB of faults a run in a fresh `senet profile` (40.0 ms, 25.4 with the thresholds raised) and
        none inside a longer benchmark; ResNet-50 at batch 1 none alone and 15 MiB after SE-ResNet-50
        (profile/pages.py). `senet profile` counts them and prices them at `fresh_page_us_per_mib`."""
        kind = op_kind(op, macs, depth)
        compute = (2.0 * macs / (self.compute_tflops(kind, macs, moved_bytes, depth, stride, width, positions)
                                 * 1e12) if macs else 0.0)
        if kind == "pointwise":  # its bytes as any elementwise op's; with points of its own, its arithmetic at
            # their rate as its compute, in place or not (memory's terms then run under it, not after it)
            if own := self._index.pointwise.get(op):
                compute = moved_bytes / (_log_interpolated(own, moved_bytes) * 1e9)
            kind = "memory"
        if kind == "memory" and moved_bytes and not written and "in_place" in self._index.by_kind:
            kind = "in_place"  # writes where it read (or into a tensor it was given): no new output to fetch
        if kind in NEAREST_KINDS:
            bandwidth = self.reduction_gbs(kind, moved_bytes, depth, stride)
        else:
            bandwidth = self.bandwidth_for(moved_bytes, kind if kind in BYTES_KINDS else "memory")
        memory = moved_bytes / (bandwidth * 1e9)
        memory = (memory if moved_bytes else 0.0) + self.cold_write_seconds(written) + self.cold_read_seconds(reads)
        return max(compute, memory) + self.op_cost_us * 1e-6

    def cold_write_seconds(self, written: int) -> float:
        """Seconds an op pays on top of its bytes time for writing `written` bytes into a new output:
        what calibrate's `x * 2.0` of that size took with its output written into memory not touched
        lately (`cold_write` points) less what it took writing where it had just written (the memory
        points), both at their bandwidth for the bytes that copy moves; never below 0, and 0 for a
        device file without cold_write points (schema < 5). Neither copy's page faults count
        (calibrate takes them off, schema 8; op_seconds). In a network an
        op's new output seldom lands where the op before it wrote: on this project's CPU, in
        CBAM-ResNet-50 at batch 1, the gating products' outputs landed in memory last touched a median
        of 6-21 MiB of traffic before (benchmarks/cold_writes.py), and a write past the caches ran
        2.4-6x slower than calibrate's warm copy of the same size."""
        if not written or "cold_write" not in self._index.by_kind:
            return 0.0
        moved = 2 * written  # the calibrated copy reads as many bytes as it writes
        cold = moved / (self.bandwidth_for(moved, "cold_write") * 1e9)
        return max(cold - moved / (self.bandwidth_for(moved, "memory") * 1e9), 0.0)

    @property
    def cold_write_us_per_mib(self) -> float | None:
        """What each MiB of a 1 MiB new output pays for landing in cold memory (microseconds per MiB,
        `cold_write_seconds` at 1 MiB): the cold-write term in one figure; None without cold_write
        points (no output pays), 0 when the cold copy of that size ran no slower than the warm one
        (other sizes may still pay)."""
        if "cold_write" not in self._index.by_kind:
            return None
        return self.cold_write_seconds(2**20) * 1e6

    def cold_read_seconds(self, reads: Sequence[tuple[int, int]]) -> float:
        """Seconds an op pays on top of its bytes time for the inputs it reads from memory the caches
        no longer hold: of `reads`, (bytes, reuse distance) per input, those whose distance (the
        bytes the pass touched since that memory was last touched, its own included; FIRST_TOUCH for
        the parameters and the input) passes `cache_bytes` each pay what calibrate's sum of that
        size took over memory not touched lately (`cold_read` points) less what it took looped
        (`read` points), never below 0: their medians per byte, each interpolated in log bytes (the
        per-op cost in both cancels; a small sum takes less than that cost, so its rate after the
        cost is taken off is no measure). 0 for a device file without both kinds of points or
        cache_bytes (schema < 6).

        Why: calibrate loops each op on one input, which the caches keep; in a network an op reads
        what another op wrote once. On this project's CPU (2 MiB of L2 per core, a shared L3 that
        keeps no line it has not seen reused) a max over the map of a 24.5 MiB tensor took 1.0 ms
        looped and 2.6 ms right after a new tensor was written, 2.7 ms after flushing the
        caches (benchmarks/cold_reads.py); inside CBAM-ResNet-50 at batch 8 its reductions ran at
        0.45-0.8 of the looped prediction."""
        if not self.cache_bytes or not reads:
            return 0.0
        colds, warms = self._index.per_byte.get("cold_read"), self._index.per_byte.get("read")
        if not colds or not warms:
            return 0.0
        seconds = 0.0
        for size, distance in reads:
            if size > 0 and distance > self.cache_bytes:
                seconds += max(_log_interpolated(colds, size) - _log_interpolated(warms, size), 0.0) * size
        return seconds

    @property
    def cold_read_us_per_mib(self) -> float | None:
        """What each MiB of a 1 MiB input read past the caches pays (microseconds per MiB,
        `cold_read_seconds` at 1 MiB): the cold-read term in one figure; None without cold_read
        points or cache_bytes (no input pays)."""
        if not self.cache_bytes or not READ_KINDS <= self._index.by_kind.keys():
            return None
        return self.cold_read_seconds([(2**20, FIRST_TOUCH)]) * 1e6

    def figures(self) -> dict[str, Any]:
        """The figures count's and profile's roofline JSON give beside a prediction (FIGURE_KEYS; each
        is null there without a calibration)."""
        return {"op_cost_us": self.op_cost_us, "after_op_fraction": self.after_op_fraction,
                "cold_write_us_per_mib": self.cold_write_us_per_mib, "cold_read_us_per_mib": self.cold_read_us_per_mib,
                "cache_bytes": self.cache_bytes, "cold_op_us": self.cold_op_us,
                "cold_op_us_by_group": dict(self.cold_op_us_by_group),
                "fresh_page_us_per_mib": self.fresh_page_us_per_mib}

    def forward_predictor(self) -> OpPredict:
        """The predicted seconds of each op of one forward pass, called in the order they ran: its
        `op_seconds`, plus `after_op_fraction` x the op before it's, plus `cold_op_us` when no op of
        its name ran within `cache_bytes` of traffic (its own included: a conv moving 2 MiB leaves no
        code of its own for the next conv).

        An op right after a long one runs slower than looped alone (a batch norm 2.9x after a 3x3
        conv of 256 channels at 28x28 on this project's Xeon, a 1-element x * 2.0 20x: what the conv
        left in the caches and the core is not what the next op needs); calibrate measures this as a
        part of the long op's time. And not only the op right after it: on this project's EPYC, in
        SE-ResNet-18 at batch 1, SE's mean, 1x1 convs, ReLU and sigmoid each took 2-46 us more than
        looped (benchmarks/in_network_ops.py); a tiny op's code and the framework's data it touches
        (dispatch, allocator, kernel selection) come back from far caches after a long op, though
        another op ran in between. calibrate measures that (tiny ops timed after a conv and an
        unrelated 1-element op, less looped: `cold_op_us` over them all, 10-28 us there, and
        `cold_op_us_by_group` per COLD_OP_GROUPS' group, which an op of that group pays instead)
        and nets it out of the after-op fraction, which then charges what the op right after a long
        one pays beyond it."""
        previous = 0.0
        by_group = dict(self.cold_op_us_by_group)
        traffic = 0  # bytes the pass has moved so far
        last_run: dict[str, int] = {}  # op name -> `traffic` when an op of that name last started

        def predict(op: str, macs: int, moved_bytes: int, depth: int = 0, stride: int = 0, written: int = 0,
                    reads: Sequence[tuple[int, int]] = (), width: int = 0, positions: int = 0) -> float:
            nonlocal previous, traffic
            seconds = self.op_seconds(op, macs, moved_bytes, depth, stride, written, reads, width, positions)
            extra, previous = self.after_op_fraction * previous, seconds
            if self.cold_op_us and self.cache_bytes and traffic - last_run.get(op, -self.cache_bytes - 1) > \
                    self.cache_bytes:
                extra += by_group.get(cold_op_group(op, macs, depth), self.cold_op_us) * 1e-6
            last_run[op] = traffic
            traffic += moved_bytes
            return seconds + extra

        return predict

    def check_precision(self, dtype: str, amp: bool) -> None:
        """Refuse (one line, before any work) a prediction in a precision these rates were not
        measured in: another dtype, or autocast, which mixes float16/bfloat16 and float32 ops op by op
        while calibrate measures one dtype."""
        if amp:
            raise ArgumentError("{roofline} holds rates measured in {calibrated} without autocast; a prediction "
                                "under {amp} would mix precisions op by op, which calibrate does not measure: drop "
                                "{amp} for a prediction, or give a preset or PEAK_TFLOPS,BANDWIDTH_GBS for a bound",
                                arguments={"roofline": "roofline", "amp": "amp"}, calibrated=self.dtype)
        if dtype != self.dtype:
            raise ArgumentError("{roofline} was calibrated in {calibrated}, not {asked}: use {same}, or calibrate "
                                "again with {other}", arguments={"roofline": "roofline", "same": ("dtype", self.dtype),
                                                                 "other": ("dtype", dtype)},
                                calibrated=self.dtype, asked=dtype)

    def to_dict(self) -> dict[str, Any]:
        """The device file: what was measured, how, and the roofline figures derived from it."""
        return {
            "schema": SCHEMA, "device": self.device, "name": self.name, "dtype": self.dtype, "threads": self.threads,
            "op_cost_us": self.op_cost_us, "peak_tflops": self.peak_tflops, "bandwidth_gbs": self.bandwidth_gbs,
            "points": [asdict(point) for point in self.points],
            "torch_version": self.torch_version, "created": self.created, "seconds": self.seconds,
            "method": self.method, "load_before": self.load_before, "load_after": self.load_after,
            "cpu_count": self.cpu_count, "busy": self.busy, "rounds": self.rounds,
            "after_op_fraction": self.after_op_fraction, "probe_us": self.probe_us,
            "cache_bytes": self.cache_bytes, "cold_op_us": self.cold_op_us,
            "cold_op_us_by_group": dict(self.cold_op_us_by_group),
            "fresh_page_us_per_mib": self.fresh_page_us_per_mib,
            "units": UNITS,
        }

    @classmethod
    def from_dict(cls, data: Any, where: str = "the device file") -> DeviceCalibration:
        """A calibration from its JSON; one-line SenetError for anything that is not one."""
        if not isinstance(data, dict) or isinstance(data.get("schema"), bool) or data.get("schema") is None:
            raise SenetError(f"{where} is not a `senet calibrate` device file (schema {SCHEMA}); "
                             "write one with `senet calibrate`")
        if type(data.get("schema")) is not int or data.get("schema") not in READ_SCHEMAS:
            readable = f"{', '.join(map(str, READ_SCHEMAS[:-1]))} and {READ_SCHEMAS[-1]}"
            raise SenetError(f"{where} has schema {_shown(data.get('schema'))}; this senet reads schema {readable}: "
                             "calibrate again with this senet (or use the senet that wrote it)")
        raw_points = data.get("points")
        if not isinstance(raw_points, list) or not all(isinstance(p, dict) for p in raw_points):
            raise SenetError(f"{where}: 'points' must be a list of measured points")
        if len(raw_points) > MAX_POINTS:
            raise SenetError(f"{where} has {len(raw_points):,} points; senet calibrate writes about 100 "
                             f"(at most {MAX_POINTS:,} are read)")
        field = "points"
        try:
            points = []
            for index, p in enumerate(raw_points, 1):
                field = f"point {index} of {len(raw_points)}"
                counts = {}
                for name in ("macs", "bytes", "depth", "stride", "batch", "width", "positions"):
                    value = p[name] if name in ("macs", "bytes") else p.get(name, 0)
                    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_COUNT:
                        raise _BadField(f"{where}: {field} ({_shown(p.get('kind'))}, {_shown(p.get('label'))}): "
                                        f"{name} must be a whole number from 0 to 1e18, got {_shown(value)}")
                    counts[name] = value
                measured = {}
                for name in ("median_us", "rate", "spread"):  # numbers, not strings that float() would read
                    value = p[name] if name != "spread" else p.get(name, 0.0)
                    signed = name == "rate"  # checked with the point's other figures below
                    if isinstance(value, bool) or not isinstance(value, (int, float)) or not (
                            signed or 0 <= value < math.inf):
                        raise _BadField(f"{where}: {field} ({_shown(p.get('kind'))}, {_shown(p.get('label'))}): "
                                        f"{name} must be a number{'' if signed else ' from 0'}, got {_shown(value)}")
                    measured[name] = float(value)
                op = p.get("op", "")
                if not isinstance(op, str) or len(op) > 100:
                    raise _BadField(f"{where}: {field} ({_shown(p.get('kind'))}, {_shown(p.get('label'))}): "
                                    f"op must be an op's name (a string of at most 100 characters), got {_shown(op)}")
                points.append(RatePoint(str(p["kind"]), str(p["label"]), counts["macs"], counts["bytes"],
                                        measured["median_us"], measured["rate"], depth=counts["depth"],
                                        stride=counts["stride"], spread=measured["spread"], batch=counts["batch"],
                                        width=counts["width"], positions=counts["positions"], op=op))
            field = ""  # the device's own fields

            def number(name: str, default: float | None = None, whole: bool = False) -> Any:
                value = data[name] if default is None else data.get(name, default)
                if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)):
                    kind = "a whole number" if whole else "a number"
                    raise _BadField(f"{where}: {name} must be {kind}, got {_shown(value)}")
                if whole:
                    return value
                try:
                    return float(value)
                except OverflowError:
                    raise _BadField(f"{where}: {name} is out of range, got {_shown(value)}") from None

            calibration = cls(str(data["device"]), str(data["name"]), str(data["dtype"]), number("threads", whole=True),
                              number("op_cost_us"), tuple(points), str(data.get("torch_version", "")),
                              str(data.get("created", "")), number("seconds", 0.0), str(data.get("method", "")),
                              number("load_before", -1.0), number("load_after", -1.0),
                              number("cpu_count", 0, whole=True), number("rounds", 0, whole=True),
                              number("after_op_fraction", 0.0), number("probe_us", 0.0),
                              number("cache_bytes", 0, whole=True), number("cold_op_us", 0.0),
                              _cold_groups(data.get("cold_op_us_by_group", {}), where),
                              number("fresh_page_us_per_mib", 0.0))
        except _BadField as error:
            raise SenetError(str(error)) from None
        except KeyError as error:
            raise SenetError(f"{where}{': ' + field if field else ''} lacks {_shown(error.args[0])}") from None
        except (TypeError, ValueError, OverflowError):
            raise SenetError(f"{where}{': ' + field if field else ''} has a value of the wrong type") from None
        for index, point in enumerate(points, 1):
            problem = ("its kind is not one of " + ", ".join(KINDS) if point.kind not in KINDS
                       else "its rate is not a finite positive number" if not (math.isfinite(point.rate)
                                                                                 and point.rate > 0)
                       else f"its rate must be from {RATE_RANGE[0]:g} to {RATE_RANGE[1]:g} (TFLOPS or GB/s), "
                            f"got {point.rate:g}" if not RATE_RANGE[0] <= point.rate <= RATE_RANGE[1]
                       else "bytes must be at least 1 (its rate is bytes per second)"
                       if point.kind in BYTES_KINDS and point.bytes < 1
                       else "macs must be at least 1 (its rate is MACs per second)"
                       if point.kind not in BYTES_KINDS and point.macs < 1
                       else "a pointwise point must name its op (op)" if point.kind == "pointwise" and not point.op
                       else "its op must be one of " + ", ".join(POINTWISE_OPS)
                       if point.kind == "pointwise" and point.op not in POINTWISE_OPS
                       else "only a pointwise point names an op" if point.op and point.kind != "pointwise"
                       else "only a conv point has a width" if point.width and point.kind != "conv"
                       else "only a conv point has positions" if point.positions and point.kind != "conv" else "")
            if problem:
                raise SenetError(f"{where}: point {index} of {len(points)} ({_shown(point.kind)}, "
                                 f"{_shown(point.label)}): {problem}")  # as the fields' lines name a point
        if not (math.isfinite(calibration.op_cost_us) and 0 <= calibration.op_cost_us < 1e6):
            raise SenetError(f"{where}: op_cost_us must be a number of microseconds from 0 to 1e6")
        if not (math.isfinite(calibration.after_op_fraction) and 0 <= calibration.after_op_fraction <= 1):
            raise SenetError(f"{where}: after_op_fraction must be a number from 0 to 1")
        if not (math.isfinite(calibration.cold_op_us) and 0 <= calibration.cold_op_us < 1e6):
            raise SenetError(f"{where}: cold_op_us must be a number of microseconds from 0 to 1e6, "
                             f"got {_shown(calibration.cold_op_us)}")
        if not (math.isfinite(calibration.fresh_page_us_per_mib) and 0 <= calibration.fresh_page_us_per_mib < 1e6):
            raise SenetError(f"{where}: fresh_page_us_per_mib must be a number of microseconds from 0 to 1e6, "
                             f"got {_shown(calibration.fresh_page_us_per_mib)}")
        if not (calibration.probe_us == 0 or MIN_PROBE_US <= calibration.probe_us < 1e6):  # NaN fails both
            raise SenetError(f"{where}: probe_us must be 0 (no probe) or a number of microseconds from "
                             f"{MIN_PROBE_US:g} to 1e6, got {_shown(calibration.probe_us)}")
        batched = next((index for index, p in enumerate(points, 1) if p.batch), 0)
        if not 0 <= calibration.cache_bytes <= MAX_COUNT:
            raise SenetError(f"{where}: cache_bytes must be a whole number from 0 to 1e18, "
                             f"got {_shown(calibration.cache_bytes)}")
        cold = next((index for index, p in enumerate(points, 1) if p.kind == "cold_write"), 0)
        read = next((index for index, p in enumerate(points, 1) if p.kind in ("read", "cold_read", "in_place")), 0)
        newer = next((index for index, p in enumerate(points, 1) if p.kind == "pointwise" or p.width), 0)
        mapped = next((index for index, p in enumerate(points, 1) if p.positions), 0)
        newer_name = ("" if not newer else f"a pointwise point (point {newer} of {len(points)})"
                      if points[newer - 1].kind == "pointwise" else f"a conv's width (point {newer} of {len(points)})")
        for name, since, present in (("after_op_fraction", 3, bool(calibration.after_op_fraction)),
                                     (f"a cold_write point (point {cold} of {len(points)})" if cold else "", 5,
                                      bool(cold)),
                                     (f"{_article(points[read - 1].kind)} point (point {read} of {len(points)})" if read
                                      else "", 6, bool(read)),
                                     ("cache_bytes", 6, bool(calibration.cache_bytes)),
                                     (newer_name, 7, bool(newer)),
                                     ("cold_op_us", 7, bool(calibration.cold_op_us)),
                                     ("cold_op_us_by_group", 7, bool(calibration.cold_op_us_by_group)),
                                     ("fresh_page_us_per_mib", 8, bool(calibration.fresh_page_us_per_mib)),
                                     (f"a conv's positions (point {mapped} of {len(points)})" if mapped else "", 9,
                                      bool(mapped)),
                                     ("probe_us", 4, bool(calibration.probe_us)),
                                     (f"a point's batch (point {batched} of {len(points)}, "
                                      f"{_shown(points[batched - 1].label)})" if batched else "", 4, bool(batched))):
            if present and data["schema"] < since:  # a hand-edited older file is not half read
                raise SenetError(f"{where}: {name} came with schema {since}; this file is schema {data['schema']} "
                                 f"(calibrate again, or set its schema to {since})")
        if calibration.threads < 1 or calibration.device not in DEVICES:
            raise SenetError(f"{where}: threads must be at least 1 and device one of {', '.join(DEVICES)}")
        if not any(p.kind == "memory" for p in points) or not any(p.kind not in BYTES_KINDS for p in points):
            raise SenetError(f"{where} needs at least one memory and one compute point")
        return calibration

    @classmethod
    def load(cls, path: str | Path) -> DeviceCalibration:
        """Read a device file written by `senet calibrate` (its size bounded before it is read)."""
        path = Path(path)
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise SenetError(f"device file {path} is {size / 2**20:.1f} MiB; senet calibrate writes about "
                                 f"30 KiB (at most {MAX_FILE_BYTES // 2**20} MiB are read)")
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise SenetError(f"device file {path} does not exist; write one with `senet calibrate`") from None
        except (OSError, UnicodeDecodeError) as error:
            raise SenetError(f"cannot read device file {path}: {error.__class__.__name__}") from None
        try:
            data = json.loads(text)
        except ValueError:
            raise SenetError(f"device file {path} is not JSON") from None
        except RecursionError:
            raise SenetError(f"device file {path} is not a device file: JSON nested too deeply") from None
        return cls.from_dict(data, f"device file {path}")


def _log_interpolated(points: list[tuple[int, float]], size: int) -> float:
    """The value at `size` of (bytes, value) `points` sorted by bytes (at least one): linear in log
    bytes between the two calibrated sizes around it (exactly a calibrated value at either end), the
    nearest one's outside their range."""
    if size <= points[0][0]:
        return points[0][1]
    if size >= points[-1][0]:
        return points[-1][1]
    for (low, low_value), (high, high_value) in zip(points, points[1:], strict=False):
        if low <= size <= high:
            share = (math.log(size) - math.log(low)) / (math.log(high) - math.log(low)) if high > low else 0
            return (1 - share) * low_value + share * high_value
    return points[-1][1]  # unreachable: the sizes are sorted and bracket `size`


def _cold_groups(value: Any, where: str) -> tuple[tuple[str, float], ...]:
    """A device file's cold_op_us_by_group: a JSON object of COLD_OP_GROUP_NAMES' groups to microseconds
    from 0 to 1e6, in that order."""
    if not isinstance(value, dict):
        raise _BadField(f"{where}: cold_op_us_by_group must be an object of {', '.join(COLD_OP_GROUP_NAMES)} to "
                        f"microseconds, got {_shown(value)}")
    for group, us in value.items():
        if group not in COLD_OP_GROUP_NAMES:
            raise _BadField(f"{where}: cold_op_us_by_group has {_shown(group)}; its groups are "
                            + ", ".join(COLD_OP_GROUP_NAMES))
        if isinstance(us, bool) or not isinstance(us, (int, float)) or not (math.isfinite(us) and 0 <= us < 1e6):
            raise _BadField(f"{where}: cold_op_us_by_group's {group} must be a number of microseconds from 0 to 1e6, "
                            f"got {_shown(us)}")
    return tuple((group, float(value[group])) for group in COLD_OP_GROUP_NAMES if group in value)


class _BadField(Exception):
    """A device-file field of the wrong type or out of range: a point's count, a device's number (its
    message is the one line shown)."""


CALIBRATE_SECONDS = 50.0
"""A calibration's length where its file does not record one (calibrate's default budget)."""


def _article(kind: str) -> str:
    """ "a read", "an in_place": a point's kind with its article, for a message."""
    return f"{'an' if kind[:1] in 'aeiou' else 'a'} {kind}"


def _shown(value: object) -> str:
    """A value from a device file, for a message: its repr, cut at 60 characters (the CLI escapes it)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def threads_text(threads: int) -> str:
    """ "1 thread", "2 threads"."""
    return f"{threads} thread{'' if threads == 1 else 's'}"


def setting_text(device: str, threads: int) -> str:
    """A device and thread count, for a message: "cpu, 1 thread", "cpu, 4 threads"; a GPU by its name alone."""
    return f"{device}, {threads_text(threads)}" if device == "cpu" else device


def cold_write_text(us_per_mib: float | None) -> str:
    """The cold-write term, for the notes of count and profile ("" when the device file measured none)."""
    return ("" if us_per_mib is None else
            f", plus its new output's write into memory not touched lately ({us_per_mib:.3g} us per MiB at 1 MiB)")


def cold_op_text(cold_op_us: float | None, cache_bytes: int | None,
                 by_group: Sequence[tuple[str, float]] = ()) -> str:
    """The cold-op term, for the notes of count and profile ("" when the device file measured none)."""
    if not cold_op_us or not cache_bytes:
        return ""
    cost = (" / ".join(f"{us:.3g}" for _, us in by_group) + f" us ({', '.join(group for group, _ in by_group)})"
            if by_group else f"{cold_op_us:.3g} us")
    return f" + {cost} per op when no op of its name ran within {cache_bytes / 2**20:g} MiB of traffic"


def cold_read_text(us_per_mib: float | None, cache_bytes: int | None) -> str:
    """The cold-read term, for the notes of count and profile ("" when the device file measured none)."""
    return ("" if us_per_mib is None or not cache_bytes else
            f", plus each input read after more than {cache_bytes / 2**20:g} MiB of traffic since it was last "
            f"touched, past the caches ({us_per_mib:.3g} us per MiB at 1 MiB)")


def is_device_file(spec: str) -> bool:
    """True when a roofline device names a device file rather than a preset or PEAK,BW: a path
    ending in .json, or any file that exists (calibrate's JSON saved under another name)."""
    text = spec.strip()
    if text.lower().endswith(".json"):
        return True
    try:
        return Path(text).is_file()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return False
