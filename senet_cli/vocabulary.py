"""The closed sets of names every job shares: devices, dtypes and figure formats.

Below count, profile and inspect (and the CLI), so each of them imports its choices from here and
none imports another for a word. Torch-free to import: a dtype's torch object is made on demand by
`torch_dtype`, the one place a name becomes a `torch.dtype`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from senet_cli.errors import UnknownChoiceError

if TYPE_CHECKING:
    import torch

DEVICES = ("cpu", "cuda")
"""Where a job runs a model: the CPU or the first visible CUDA device."""

DTYPES = ("float32", "float16", "bfloat16")
"""Weights and input dtype, named as torch names them (`torch.float16`). `amp` instead keeps
float32 weights and runs under autocast."""

PLOT_FORMATS = ("png", "svg", "pdf")
"""The figure formats every plot writes (what matplotlib writes without extra packages), chosen
by the path's extension."""


def torch_dtype(name: str) -> torch.dtype:
    """The `torch.dtype` a DTYPES name stands for (`"bfloat16"` -> `torch.bfloat16`); refuses any
    other name, so an attribute of torch that is not a dtype can never come back."""
    if name not in DTYPES:
        raise UnknownChoiceError("dtype", name, DTYPES)
    import torch

    dtype = getattr(torch, name)
    assert isinstance(dtype, torch.dtype), name  # DTYPES holds torch's own names
    return dtype


def plot_suffixes() -> str:
    """PLOT_FORMATS as a reader sees them in a message: ".png, .svg or .pdf"."""
    suffixes = [f".{name}" for name in PLOT_FORMATS]
    return ", ".join(suffixes[:-1]) + f" or {suffixes[-1]}"
