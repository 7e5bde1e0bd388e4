"""The input size a model from outside the zoo is made for, when the caller gives none.

timm states it per model (`pretrained_cfg["input_size"]`: 256 for sebotnet33ts_256, halonet26t and
bat_resnext26ts, whose attention layers are sized for that input and fail at 224); an `img_size`
keyword the caller gives the builder wins. torchvision's builders, built without weights, take
ImageNet's 224 (their weights' larger crops, 600 for efficientnet_b7 or 518 for vit_h_14, belong to
those weights); a user's builder gets 224 too. Torch-free; timm is imported only for a timm model.
"""

from __future__ import annotations

from dataclasses import dataclass

from senet_cli.options import ExternalConfig

IMAGENET_SIDE = 224
"""The input side of a model that states none (ImageNet's)."""


@dataclass(frozen=True)
class DefaultInput:
    """A model's default input side (square images), and where it comes from (None: ImageNet's 224)."""

    side: int
    source: str | None


def default_input(config: ExternalConfig) -> DefaultInput:
    """The input side `config`'s model is made for (see the module doc)."""
    given = dict(config.kwargs).get("img_size")
    if isinstance(given, int) and given > 0:
        return DefaultInput(given, f"its img_size keyword ({given})")
    if isinstance(given, tuple) and given and all(isinstance(side, int) and side > 0 for side in given):
        return DefaultInput(int(given[0]), f"its img_size keyword ({given[0]})")
    if config.source != "timm":
        return DefaultInput(IMAGENET_SIDE, None)
    side = _timm_side(config.target)
    if side is None or side == IMAGENET_SIDE:
        return DefaultInput(IMAGENET_SIDE, None)
    return DefaultInput(side, f"timm's pretrained_cfg input_size for {config.target}")


def input_note(config: ExternalConfig) -> tuple[str, ...]:
    """The note reports carry when the default input is the model's own rather than ImageNet's 224."""
    found = default_input(config)
    if found.source is None:
        return ()
    return (f"default input {found.side}x{found.side}: {found.source}, used when no input size is given",)


def _timm_side(name: str) -> int | None:
    """timm's stated input height for `name` (with or without a pretrained tag), or None."""
    try:
        from timm.models import get_pretrained_cfg
    except ImportError:
        return None
    for candidate in (name, name.partition(".")[0]):
        try:
            cfg = get_pretrained_cfg(candidate)
        except Exception:  # noqa: BLE001 (timm raises several kinds for an unknown name)
            cfg = None
        size = getattr(cfg, "input_size", None)
        if isinstance(size, tuple) and len(size) == 3 and isinstance(size[1], int):
            return int(size[1])
    return None
