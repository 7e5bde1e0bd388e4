"""`senet convert`: rewrite a checkpoint in our key layout (or timm's), with the metadata that rebuilds it.

The source is read as `load_checkpoint` reads any file (safely, containers unwrapped), its
architecture resolved as `inspect` resolves it (a foreign layout recognised from its keys and
mapped, else our metadata, else detected), and the weights written under the zoo's names with the
metadata `save_checkpoint` writes ({"version", "model", "options"}), so `inspect` and
`load_checkpoint` rebuild the model from the file alone. To timm's layout, the weights are renamed
by the registered layout whose `writes(config)` names the timm model computing the same function;
where none does, the conversion is refused in one line naming those that exist.

The file is written by the writer `save_checkpoint` uses (writing.py): its type follows the
destination's extension (`.safetensors`, else a torch file holding {"state_dict": ...,
"senet": metadata}); it is written to a temporary file and renamed, and an existing file is
replaced only when asked (`force`). Tensors keep their dtype.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from senet_cli._version import __version__
from senet_cli.checkpoint.loading import load_checkpoint
from senet_cli.checkpoint.writing import check_destination, write_checkpoint
from senet_cli.errors import ArgumentError, UnknownChoiceError
from senet_cli.options import ModelConfig

if TYPE_CHECKING:
    import torch

CONVERT_TARGETS = ("senet", "timm")
"""Key layouts `convert` writes: ours (every zoo model), or timm's where a timm model is the same."""


@dataclass(frozen=True)
class ConvertReport:
    """What `convert` read and wrote."""

    source: str
    destination: str
    format: str  # "torch" or "safetensors"
    to: str  # a CONVERT_TARGETS entry
    model: str
    config: ModelConfig
    read_layout: str | None  # the foreign layout the source was in, None: ours
    written_as: str  # "senet", or the timm model whose keys were written ("seresnet50")
    architecture_source: str  # "given", "metadata" or "detected", as inspect says
    tensors: int
    parameters: int  # the model's learnable parameters (BN running statistics not included)
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "destination": self.destination, "format": self.format, "to": self.to,
            "model": self.model, "options": self.config.as_dict(), "read_layout": self.read_layout,
            "written_as": self.written_as, "architecture_source": self.architecture_source,
            "tensors": self.tensors, "parameters": self.parameters, "notes": list(self.notes),
        }


def convert(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    *,
    to: str = "senet",
    force: bool = False,
    trust: bool = False,
    ema: bool = False,
    model: str | None = None,
    **options: Any,
) -> ConvertReport:
    """Write `source`'s weights to `destination` in the `to` layout with our metadata. See the module doc.

    `model` and `options` name the architecture as in `inspect`; without them it is resolved from
    the checkpoint. Raises SenetError in one line for a bad target, an existing destination without
    `force`, an unreadable source, or a model no timm layout computes.
    """
    from senet_cli.checkpoint.recognise import resolve
    from senet_cli.zoo import build_on_meta

    if to not in CONVERT_TARGETS:
        raise UnknownChoiceError("conversion target", str(to), CONVERT_TARGETS)
    file = Path(destination)
    check_destination(file, force)
    loaded = load_checkpoint(source, trust=trust, ema=ema)
    resolved = resolve(loaded, model, **options)  # maps a foreign layout, once: resolved.state has our keys
    state, config = resolved.state, cast(ModelConfig, resolved.config)  # resolve() gave a zoo configuration
    written_as = "senet"
    if to == "timm":
        written_as, state = _to_timm(config, state)
    metadata: dict[str, Any] = {
        "version": __version__, "model": config.name, "options": config.as_dict(),
        "layout": written_as, "converted_from": {"path": str(source), "layout": resolved.layout or "senet"},
    }
    if loaded.metadata.get("preprocess"):
        metadata["preprocess"] = loaded.metadata["preprocess"]
    fmt = write_checkpoint(state, metadata, file)
    parameters = sum(p.numel() for p in build_on_meta(config).parameters())  # learnable, not BN statistics
    return ConvertReport(
        source=str(source), destination=str(file), format=fmt, to=to, model=config.name, config=config,
        read_layout=resolved.layout, written_as=written_as, architecture_source=resolved.source,
        tensors=len(state), parameters=parameters, notes=resolved.notes,
    )


def timm_models() -> list[str]:
    """What the timm layouts cover, for the refusal: one entry per registered layout."""
    from senet_cli.checkpoint.layouts import layouts

    return [f"{layout.covers} ({layout.name})" for _, layout in layouts().items() if layout.target == "timm"]


def _to_timm(config: ModelConfig, state: dict[str, torch.Tensor]) -> tuple[str, dict[str, torch.Tensor]]:
    """(timm's model name, the weights under its keys) from the layout that writes `config`."""
    from senet_cli.checkpoint.layouts import layouts

    for _, layout in layouts().items():
        if layout.target != "timm" or layout.writes is None or layout.from_senet is None:
            continue
        name = layout.writes(config)
        if name is not None:
            return name, layout.from_senet(config, state)
    described = f"variant {config.variant}, ratio {config.ratio}" if config.attention else f"variant {config.variant}"
    described += "".join(f", {key} {value}" for key, value in config.attention_options)  # e.g. bias False
    raise ArgumentError(
        "no timm model computes {model} ({described}) with the same keys, so {to} cannot write it; timm's "
        "layouts cover: {covered}",
        arguments={"to": ("to", "timm")}, model=config.name, described=described, covered="; ".join(timm_models()),
    )
