"""Counting on the CPU, with random weights, a model whose forward cannot run on the meta device.

Why: count runs every model on the meta device (shapes only, no memory, no arithmetic). A forward
that needs the values of its activations cannot run there: `.item()`, `.tolist()`, `bool(t)` in an
`if`, a numpy round trip, a data-dependent shape (`x[x > 0]`, `torch.nonzero`, `torch.unique`).
Such a model is counted once more on real tensors: random weights (seeded, so counts are
deterministic where the forward's path depends on values) and a standard normal input of the same
shape and dtype. The dispatch counter (dispatch.trace_costs) charges ops by their shapes alone, on
any device, so the conventions are the same: MACs, elementwise ops and bytes as on meta. One
difference had to be closed: on meta, scaled_dot_product_attention runs torch's math form (bmm,
softmax), which is counted; on the CPU torch picks a fused kernel of its own, which has no formula;
the fallback therefore asks for the math form (`sdpa_kernel(SDPBackend.MATH)`).

Bounded: the fallback allocates the weights and every activation the forward makes. Before
building anything it estimates the memory it would take, the weights (parameters and buffers times
the dtype's size) plus the activations (every byte the failed meta forward read and wrote, as if
nothing were freed, scaled up by the share of modules it had not reached; at least one input's size
per module where it failed before moving anything): a large over-estimate
under no_grad, where activations are freed as the forward goes. Over the cap (`memory_cap`: 4 GiB,
or half the memory available now where that is less) it refuses in one line; it never starts a
forward that could exhaust the machine.

Torch is imported inside the functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from senet_cli.errors import SenetError, first_line, is_out_of_memory, running_model

if TYPE_CHECKING:
    import torch
    from torch import nn

    from senet_cli.count.dispatch import Trace
    from senet_cli.subject import Subject

CPU_CAP_BYTES = 4 * 2**30
"""The most memory a CPU fallback may take (estimated): 4 GiB, so that counting never competes with
the user's own jobs for a machine's memory; half the available memory where that is less."""

SEED = 0
"""The seed of the fallback's random weights and input (restored afterwards: the caller's RNG state is
not touched)."""

_META_WORDS = ("meta", "device")
"""Words of the errors a forward raises when it needs real data on the meta device: "Tensor.item()
cannot be called on meta tensors", "Cannot copy out of meta tensor; no data!", "can't convert meta
device type tensor to numpy", "The register_meta function for torch.nonzero() raises unimplemented",
"aten::_unique2: attempted to run this operator with Meta tensors", "cannot repeat_interleave a meta
tensor without output_size", and a meta tensor meeting a CPU one ("Tensor on device cpu is not on the
expected device meta!", "expects all tensors to have the same device")."""


def needs_real_data(error: BaseException) -> bool:
    """Whether a forward failed on the meta device because it needs real tensors (see _META_WORDS);
    any other failure (a wrong input size, the caller's own bug) fails on the CPU too, and is reported
    as it is without building the model for real."""
    if isinstance(error, SenetError) or not isinstance(error, Exception) or is_out_of_memory(error):
        return False
    text = str(error).lower()
    return any(word in text for word in _META_WORDS)


def available_memory() -> int | None:
    """Bytes of memory available now (Linux's MemAvailable, else free pages), or None when unknown."""
    import os

    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, AttributeError):
        return None


def memory_cap() -> tuple[int, str]:
    """(bytes, how it was chosen) a CPU fallback may take: CPU_CAP_BYTES, or half the memory available
    now where that is less."""
    available = available_memory()
    if available is not None and available // 2 < CPU_CAP_BYTES:
        return available // 2, "half the memory available now"
    return CPU_CAP_BYTES, "the 4 GiB cap of a CPU fallback"


def estimate_bytes(meta_model: nn.Module, partial: Trace, dtype: torch.dtype, input_bytes: int) -> int:
    """The memory a CPU forward of `meta_model` would take, over-estimated (see the module doc): weights
    and buffers in `dtype`, plus the input, plus the bytes the failed meta forward (`partial`) read and
    wrote, scaled by modules there are over modules it reached; at least the input's size for each module."""
    import torch

    size = torch.empty((), dtype=dtype).element_size()
    weights = sum(t.numel() for t in (*meta_model.parameters(), *meta_model.buffers())) * size
    moved = sum(op.bytes for op in partial.ops)
    modules = sum(1 for path, _ in meta_model.named_modules() if path)
    reached = len(partial.first_call)
    scale = max(1.0, modules / reached) if reached else max(1, modules)
    # a forward that failed before moving anything tells nothing: then each module's output is taken
    # to be as large as the input
    return int(weights + input_bytes + max(moved * scale, input_bytes * modules))


def trace_on_cpu(
    subject: Subject, meta_model: nn.Module, shape: tuple[int, int, int, int], dtype: torch.dtype,
    autocast: torch.dtype | None, partial: Trace, error: BaseException,
) -> tuple[nn.Module, Trace, str]:
    """Count `subject` on the CPU after its meta forward failed with `error` (`partial`: what that forward
    traced before failing): (the model with random weights, its trace, a note saying so). Refused in one
    line, before building, when its estimated memory is over `memory_cap()`."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel

    from senet_cli.count.dispatch import trace_costs

    why = f"{type(error).__name__}: {first_line(error, 100)}"
    input_bytes = torch.Size(shape).numel() * torch.empty((), dtype=dtype).element_size()
    needed = estimate_bytes(meta_model, partial, dtype, input_bytes)
    cap, chosen = memory_cap()
    if needed > cap:
        raise SenetError(
            f"{subject.name} cannot run on the meta device ({why}) and is too big to count on the CPU instead: "
            f"about {needed / 2**30:.1f} GiB of weights and activations (estimated high) over {cap / 2**30:.1f} GiB "
            f"({chosen}); count it with a smaller input or batch")
    with running_model(subject.name, f"run on input {list(shape)} on the CPU"), torch.random.fork_rng(devices=[]):
        torch.manual_seed(SEED)
        model = subject.build()
        if dtype != torch.float32:
            model.to(dtype)
        inputs = torch.randn(shape, dtype=dtype)
        with sdpa_kernel(SDPBackend.MATH):  # what meta runs: a CPU kernel of its own would go uncounted
            trace = trace_costs(model, inputs, autocast=autocast)
    note = (f"counted on the CPU with random weights (seed {SEED}) and a random input: its forward cannot run on "
            f"the meta device ({why}); same counting conventions")
    return model, trace, note


def traced(subject: Subject, model: nn.Module, inputs: Any, autocast: torch.dtype | None
           ) -> tuple[nn.Module, Trace, str | None]:
    """One counted forward of `subject`'s meta `model` on meta `inputs`, else, where that forward needs real
    data (`needs_real_data`), on the CPU (`trace_on_cpu`): (the model traced, its trace, the CPU note or
    None). Any other failure is one SenetError, as `running_model` words it."""
    from senet_cli.count.dispatch import Trace, trace_costs

    partial = Trace()
    shape = tuple(inputs.shape)
    failure: BaseException | None = None
    with running_model(subject.name, f"run on input {list(shape)}"):
        try:
            return model, trace_costs(model, inputs, autocast=autocast, into=partial), None
        except Exception as error:  # noqa: BLE001 (re-raised unless it needs real data)
            if not needs_real_data(error):
                raise
            failure = error
    assert failure is not None  # the forward returned, or raised through running_model, or failed here
    return trace_on_cpu(subject, model, shape, inputs.dtype, autocast, partial, failure)
