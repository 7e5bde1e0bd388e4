"""What running `inspect` on a model will allocate, checked before anything is allocated.

A checkpoint's legitimate-looking fields decide how big the work is: a classifier's shape sets the
parameter count (a 45 KB file of stride-0 views can declare a 2,000,000-class head: 4.1 GB once
built), and its `preprocess.input` the activations (1024 x 1024 on a CIFAR ResNet, whose first
stage keeps full resolution: 268 MB per image and layer). Both are estimated on the meta device,
where nothing is allocated, and refused in one line when over MAX_RUN_BYTES:

  parameters and buffers   every one as float32 (the loader casts to it; a view is made dense
                           by the first operation that writes or copies it)
  activations              batch x (input + 3 x the largest output of any leaf module): a leaf's
                           input, its output and one more live tensor (a residual branch) at the
                           widest point; inference frees the rest

The estimate is a budget, not a measurement: it is meant to refuse requests tens of gigabytes
over, in one line, before the operating system's out-of-memory killer or a swap storm does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from senet_cli.errors import ArgumentError, SenetError
from senet_cli.options import ExternalConfig, ModelConfig

GIB = 1 << 30
MAX_RUN_BYTES = 4 * GIB
"""The cap on what one inspect process may plan to allocate: parameters plus a batch's activations."""
LIVE_ACTIVATIONS = 3
FLOAT_BYTES = 4


def planned_bytes(config: ModelConfig | ExternalConfig, size: Sequence[int], batch: int) -> tuple[int, int]:
    """(parameter bytes, activation bytes at `batch`) for `config` at input `size` (H, W), from one
    forward pass on the meta device with a hook on every leaf module."""
    import torch

    from senet_cli.subject import subject_for

    model = subject_for(config).build(meta=True)
    tensors = (*model.parameters(), *model.buffers())
    parameters = FLOAT_BYTES * sum(int(t.numel()) for t in tensors)
    largest = [0]

    def record(_module: Any, _inputs: Any, output: Any) -> None:
        for item in output if isinstance(output, (tuple, list)) else (output,):
            if isinstance(item, torch.Tensor):
                largest[0] = max(largest[0], int(item.numel()))

    leaves = [module for module in model.modules() if not any(True for _ in module.children())]
    handles = [module.register_forward_hook(record) for module in leaves]
    height, width = size
    try:
        with torch.no_grad():
            model.eval()(torch.empty(1, 3, height, width, device="meta"))
    except (Exception, SystemExit):  # noqa: BLE001 (a model that cannot run on meta, or the caller's code
        largest[0] = 0                 # failing: the real forward says so in one line, naming the model)
    finally:
        for handle in handles:
            handle.remove()
    per_image = 3 * height * width + LIVE_ACTIVATIONS * largest[0]
    return parameters, FLOAT_BYTES * per_image * batch


def check_budget(config: ModelConfig | ExternalConfig, size: Sequence[int], batch: int,
                 cap: int = MAX_RUN_BYTES) -> None:
    """Refuse, in one line naming what is large and which flag lowers it, a run planned over `cap`."""
    try:
        parameters, activations = planned_bytes(config, size, batch)
    except SenetError:
        raise
    except (Exception, SystemExit):  # noqa: BLE001 (one the meta device cannot build: building it for real will say)
        return
    if parameters + activations <= cap:
        return
    height, width = size
    if parameters > cap // 2:
        raise SenetError(
            f"{config.name} was refused: its parameters alone take {parameters / GIB:.1f} GiB as float32 (the "
            f"checkpoint's shapes ask for {parameters // FLOAT_BYTES:,} values), "
            f"{(parameters + activations) / GIB:.1f} GiB with a batch's activations, over the {cap / GIB:.0f} GiB "
            f"inspect plans for a run")
    raise ArgumentError(
        "{model} was refused: at {height}x{width} input and a batch of {images}, parameters and activations would "
        "take about {planned:.1f} GiB, over the {cap:.0f} GiB inspect plans for a run; use a smaller {input_size} "
        "or {batch}",
        arguments=("input_size", "batch"), model=config.name, height=height, width=width, images=batch,
        planned=(parameters + activations) / GIB, cap=cap / GIB)
