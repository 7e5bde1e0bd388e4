"""The schema of the `senet` metadata our checkpoints carry, checked when a checkpoint is loaded.

The metadata comes from the file, so it is untrusted like the weights: it names the architecture
and tells `inspect` how big an image to build. Every field is checked for its type and range:

  model       a string of at most 200 characters (a zoo name: `resolve` checks which)
  options     an object of at most 64 options, names of letters, digits and '_', values a string,
              a boolean, a number (integers within +-2**31) or a list of up to 64 of those
  preprocess  an object; `input` an integer side in 16..1024 or a [height, width] pair of them (the
              bound keeps a file from asking for a 30000 x 30000 image: 43 GB in one batch);
              `mean` and `std` lists of 3 finite numbers, every std above 0; other keys are kept
  version     a string of at most 64 characters
Other top-level keys are kept as they are. The whole value nests at most MAX_DEPTH (16) containers
deep and holds at most MAX_ITEMS (100,000) values: it is walked iteratively before anything recurses
into it (repr, JSON), so a file nesting lists 5,000 deep is one line, not a RecursionError.
A field out of schema is one line naming it:
"metadata field preprocess.input must be an integer in 16..1024 or [height, width], got 30000".
"""

from __future__ import annotations

import math
import re
import reprlib
from collections.abc import Mapping
from typing import Any

from senet_cli.errors import CheckpointError
from senet_cli.options import MAX_INT

INPUT_RANGE = (16, 1024)
"""Sides `preprocess.input` may ask for: from the smallest CIFAR-style input to 4x ImageNet's."""

NAME_CHARS = 200
MAX_OPTIONS = 64
MAX_DEPTH = 16
"""Containers inside containers: our own metadata nests 3 deep ({"preprocess": {"input": [h, w]}})."""
MAX_ITEMS = 100_000

_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxstring, _SHOWN.maxother = 3, 40, 40
OPTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def _show(value: Any) -> str:
    """A short repr that never recurses past a few levels (the value may nest thousands deep)."""
    text = _SHOWN.repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def nesting(value: Any, max_depth: int = MAX_DEPTH, max_items: int = MAX_ITEMS) -> str | None:
    """What is too deep or too big in `value` ("nests more than 16 containers deep"), or None when it
    is within bounds. Walked with an explicit stack, so no input can make it recurse."""
    stack: list[tuple[Any, int]] = [(value, 0)]
    seen = 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if seen > max_items:
            return f"holds more than {max_items:,} values"
        children: Any = item.values() if isinstance(item, Mapping) else item if isinstance(
            item, (list, tuple, set, frozenset)) else ()
        if children and depth >= max_depth:
            return f"nests more than {max_depth} containers deep"
        stack.extend((child, depth + 1) for child in children)
    return None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _side(value: Any) -> bool:
    return type(value) is int and INPUT_RANGE[0] <= value <= INPUT_RANGE[1]


def validate_metadata(raw: Any, where: str, path: object) -> dict[str, Any]:
    """`raw` checked against the schema (module doc): the metadata as a dict, `input` as an int or an
    (height, width) tuple; a CheckpointError naming the field otherwise. `where` is the file as
    messages show it."""

    def refuse(field: str, expected: str, value: Any) -> CheckpointError:
        return CheckpointError(path, f"{where}: metadata field {field} must be {expected}, got {_show(value)}")

    if not isinstance(raw, Mapping):
        raise refuse("senet", "an object", raw)
    excess = nesting(raw)
    if excess is not None:
        raise CheckpointError(path, f"{where}: metadata field senet {excess}; it may nest at most {MAX_DEPTH} deep "
                                    f"and hold {MAX_ITEMS:,} values")
    if not all(isinstance(key, str) for key in raw):
        raise refuse("senet", "an object with string keys", list(raw)[:4])
    metadata = dict(raw)
    if "model" in metadata and not (isinstance(metadata["model"], str) and 0 < len(metadata["model"]) <= NAME_CHARS):
        raise refuse("model", f"a model name of 1 to {NAME_CHARS} characters", metadata["model"])
    if "version" in metadata and not (isinstance(metadata["version"], str) and len(metadata["version"]) <= 64):
        raise refuse("version", "a version string", metadata["version"])
    if metadata.get("options") is not None:
        metadata["options"] = _options(metadata["options"], refuse)
    if metadata.get("preprocess") is not None:
        metadata["preprocess"] = _preprocess(metadata["preprocess"], refuse)
    return metadata


def _options(options: Any, refuse: Any) -> dict[str, Any]:
    if not isinstance(options, Mapping) or len(options) > MAX_OPTIONS:
        raise refuse("options", f"an object of at most {MAX_OPTIONS} build options", options)
    checked: dict[str, Any] = {}
    for name, value in options.items():
        if not isinstance(name, str) or not OPTION_NAME.fullmatch(name):
            raise refuse("options", "an object keyed by option names", name)
        items = value if isinstance(value, list) else [value]
        if len(items) > MAX_OPTIONS or not all(_option_value(item) for item in items):
            raise refuse(f"options.{name}", "a string, boolean, number or a list of them", value)
        checked[name] = value
    return checked


def _option_value(value: Any) -> bool:
    if isinstance(value, (str, bool)) or value is None:
        return not isinstance(value, str) or len(value) <= NAME_CHARS
    return _number(value) and abs(value) <= MAX_INT


def _preprocess(preprocess: Any, refuse: Any) -> dict[str, Any]:
    if not isinstance(preprocess, Mapping) or not all(isinstance(key, str) for key in preprocess):
        raise refuse("preprocess", "an object", preprocess)
    checked = dict(preprocess)
    size = checked.get("input")
    if size is not None:
        low, high = INPUT_RANGE
        if _side(size):
            pass
        elif isinstance(size, (list, tuple)) and len(size) == 2 and all(_side(side) for side in size):
            checked["input"] = (size[0], size[1])
        else:
            raise refuse("preprocess.input", f"an integer in {low}..{high} or [height, width] of them", size)
    for key in ("mean", "std"):
        values = checked.get(key)
        if values is None:
            continue
        if not (isinstance(values, (list, tuple)) and len(values) == 3 and all(_number(v) for v in values)):
            raise refuse(f"preprocess.{key}", "a list of 3 finite numbers (one per RGB channel)", values)
        if key == "std" and min(values) <= 0:
            raise refuse("preprocess.std", "3 numbers above 0 (images are divided by them)", values)
        checked[key] = tuple(float(v) for v in values)
    return checked
