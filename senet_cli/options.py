"""Build options: the ones every model takes, and the typed spec of a module-specific option.

Options arrive as Python values from the API or as strings from the CLI ("squeeze=max");
`OptionSpec.coerce` turns both into one checked value, so validation lives in one place. Every
closed set of choices is a tuple here (or beside the code that uses it), and the CLI's Enums, `senet
list` and the README's tables are made from them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from senet_cli.errors import OptionError, UnknownChoiceError

VARIANTS = ("v1.5", "v1", "v1.5-caffe", "v1-caffe")
"""ResNet variants: "v1.5" puts a bottleneck's stride on the 3x3 conv (torchvision, timm);
"v1" puts it on the first 1x1 conv (the original Caffe ResNets, the SENet and CBAM papers).
The difference is about 6% of ResNet-50's MACs (4.09 vs 3.86 GMACs) and no parameters.
"-caffe" adds Caffe's stem max-pool (3x3, stride 2, no padding, rounding up) in place of
torchvision's (padding 1): the same 56x56 output for a 224 input, but its windows sit one pixel
further right and down, so the logits differ. The released SENets (and Cadene's ports of them:
se_resnet* are v1-caffe, se_resnext* and senet154 v1.5-caffe) use it."""

PLACEMENTS = ("standard", "pre", "post", "identity", "inner")
"""Where attention sits in a residual block (SENet paper, Fig. 5 and Table 14):
standard: on the residual branch, after its last BN and before the addition;
pre: on the block's input, before the residual branch (the identity path is untouched);
post: after the addition and its ReLU;
identity: on the identity path, in parallel with the residual branch;
inner: inside the branch, on the output of the unit's spatial conv, at the width it has there
(where each family puts it: `BackboneSpec.inner`). The official SimAM ResNets and Coordinate
attention's official MobileNetV2 place their modules there."""

ALL_STAGES = (1, 2, 3, 4)
"""The stages of a ResNet, the default of a configuration built without a backbone to ask."""



@dataclass(frozen=True)
class CommonOption:
    """An option every model takes: its name (the keyword; the CLI derives its flag), its default as
    shown to users, and its meaning."""

    name: str
    default: str
    help: str


COMMON_OPTIONS = (
    CommonOption("ratio", "per module", "channel reduction r of modules that reduce"),
    CommonOption("variant", VARIANTS[0], f"{' | '.join(VARIANTS)}: stride on the bottleneck's 3x3 (v1.5) or first "
                 "1x1 (v1), ResNets only; -caffe: Caffe's stem max-pool (no padding, ceil mode; Cadene's SENets), "
                 "ImageNet stems only"),
    CommonOption("placement", PLACEMENTS[0], f"{' | '.join(PLACEMENTS)}: where a branch module sits in a block "
                 "(SENet Fig. 5; inner: after the 3x3 or depthwise conv); pre/identity need a ResNet, inner a "
                 "ResNet or MobileNetV2"),
    CommonOption("stages", "per module", "stages that get attention, 1..the backbone's stage count"),
    CommonOption("num_classes", "1000 (10 for _cifar)", "classifier outputs"),
)
COMMON_OPTION_NAMES = tuple(option.name for option in COMMON_OPTIONS)

SQUEEZES = ("avg", "max", "none")
"""SE squeeze choices: global average pooling (paper), global max pooling, none (NoSqueeze)."""
EXCITATIONS = ("mlp", "none", "channelwise", "fc", "group")
"""SE excitation choices: the paper's MLP and the ECA-Net paper's SE-Var1/2/3 and SE-GC."""
GATE_NAMES = ("sigmoid", "tanh", "relu", "hardsigmoid")
"""Gate non-linearities (SENet paper Table 12, plus the hard sigmoid of MobileNetV3)."""


def parse_int_list(text: str | int | Sequence[int], what: str) -> tuple[int, ...]:
    """Read "1,2,3", 3 or [1, 2, 3] as a tuple of ints."""
    if isinstance(text, bool):
        raise OptionError(what, text, "an integer or a comma-separated list of integers")
    if isinstance(text, int):
        return (parse_int(text, what),)
    if isinstance(text, str):
        parts = [p.strip() for p in text.split(",") if p.strip()]
        try:
            if not parts:  # "" or ",": no number at all
                raise ValueError(text)
            numbers = tuple(int(p) for p in parts)
        except ValueError:
            raise OptionError(
                what, text, "an integer or a comma-separated list of integers",
                f"{what} must be an integer or a comma-separated list of integers, got '{text}'",
            ) from None
        return tuple(parse_int(number, what) for number in numbers)
    try:
        values = tuple(int(v) for v in text)
    except (TypeError, ValueError):
        raise OptionError(what, text, "an integer or a list of integers") from None
    return tuple(parse_int(value, what) for value in values)


def parse_bool(value: Any, what: str) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise OptionError(what, value, "true or false", f"{what} must be true or false, got '{value}'")


MAX_INT = 2**31 - 1
"""The largest integer any option takes: a tensor size beyond it fails inside torch (int64
overflow, a traceback) long before it could fit in memory."""


def parse_int(value: Any, what: str) -> int:
    if isinstance(value, bool):
        raise OptionError(what, value, "an integer")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise OptionError(what, value, "an integer", f"{what} must be an integer, got '{value}'") from None
    if abs(number) > MAX_INT:
        raise OptionError(what, number, f"at most {MAX_INT:,}",
                          f"{what} must be at most {MAX_INT:,}, got a {len(str(abs(number)))}-digit number")
    return number


@dataclass(frozen=True)
class OptionSpec:
    """One module-specific build option: its name, default, accepted values and meaning.

    kind is one of "str" (with `choices`), "int", "float", "bool", "int_or_list" (one int, or one per
    stage; the zoo checks the count against the backbone's stages) and "optional_int_or_list" (the
    same, or None for "derive it").
    """

    name: str
    kind: str
    default: Any
    help: str
    choices: tuple[str, ...] = ()
    minimum: int | None = None

    def coerce(self, value: Any) -> Any:
        what = f"option '{self.name}'"
        if self.kind == "str":
            text = str(value)
            if self.choices and text not in self.choices:
                raise UnknownChoiceError(f"value for {what}", text, self.choices)
            return text
        if self.kind == "bool":
            return parse_bool(value, what)
        if self.kind == "int":
            number = parse_int(value, what)
            self._check_minimum((number,))
            return number
        if self.kind == "float":
            try:
                return float(value)
            except (TypeError, ValueError):
                raise OptionError(self.name, value, "a number", f"{what} must be a number, got '{value}'") from None
        if self.kind in ("int_or_list", "optional_int_or_list"):
            if value is None or (isinstance(value, str) and value.strip().lower() in ("", "none", "auto")):
                if self.kind == "optional_int_or_list":
                    return None
                raise OptionError(self.name, value, "a value", f"{what} needs a value")
            numbers = parse_int_list(value, what)
            if not numbers:
                raise OptionError(self.name, value, "a value", f"{what} needs a value")
            self._check_minimum(numbers)
            return numbers[0] if len(numbers) == 1 else numbers
        raise AssertionError(f"unknown option kind {self.kind}")  # a registry bug, caught by the tests

    def _check_minimum(self, numbers: Sequence[int]) -> None:
        if self.minimum is not None and any(n < self.minimum for n in numbers):
            raise OptionError(self.name, list(numbers), f"at least {self.minimum}",
                              f"option '{self.name}' must be at least {self.minimum}, got {list(numbers)}")

    def describe(self) -> str:
        """A short "name=default (a|b|c)" line for `senet list`."""
        accepted = "|".join(self.choices) if self.choices else self.kind.replace("_", " ")
        return f"{self.name}={self.default} ({accepted})"


@dataclass(frozen=True)
class ModelConfig:
    """Everything that decides a model's architecture; `build_model` is a pure function of it.

    Stored on every built model as `model.senet_config`, so reports and checkpoints can say exactly
    what was built.
    """

    name: str
    backbone: str
    attention: str | None = None
    ratio: int = 16
    variant: str = "v1.5"
    placement: str = "standard"
    stages: tuple[int, ...] = ALL_STAGES
    num_classes: int = 1000
    attention_options: tuple[tuple[str, Any], ...] = field(default=())
    pruned: tuple[tuple[str, str], ...] = field(default=())
    """(attention module path, "folded" | "removed") of each module `senet prune` took out, built as a
    pass-through (senet_cli/prune/record.py). Not a build option: a checkpoint records it beside them."""

    def as_dict(self) -> dict[str, Any]:
        """The options as a JSON-ready dict (stable keys; module options only when attention is on)."""
        options: dict[str, Any] = {
            "ratio": self.ratio,
            "variant": self.variant,
            "placement": self.placement,
            "stages": list(self.stages),
            "num_classes": self.num_classes,
        }
        if self.attention is None:
            for key in ("ratio", "placement", "stages"):
                options.pop(key)
        for key, value in self.attention_options:
            options[key] = list(value) if isinstance(value, tuple) else value
        return options


EXTERNAL_SOURCES = ("torchvision", "timm", "file", "module")
"""Where a model outside the zoo comes from: `torchvision:NAME`, `timm:NAME`, `path/to/file.py:callable`,
`package.module:callable`."""


@dataclass(frozen=True)
class ExternalConfig:
    """A model from outside the zoo: where its builder lives, the keywords it is called with, and the
    caller's own attention classes (as "PATH_OR_MODULE:Class" references) to find in it besides the
    known ones (senet_cli/outside/known.py). `senet_cli.outside.names` makes it; `senet_cli.outside.build`
    builds its model.
    """

    name: str  # as written: "torchvision:efficientnet_b0", "nets.py:build"
    source: str  # one of EXTERNAL_SOURCES
    location: str  # "torchvision", "timm", the file's path or the module's name
    target: str  # the model's name (torchvision, timm) or the callable's (a file, a module)
    kwargs: tuple[tuple[str, Any], ...] = field(default=())
    attention_classes: tuple[str, ...] = field(default=())
    pruned: tuple[tuple[str, str], ...] = field(default=())
    """As ModelConfig.pruned: the attention modules `senet prune` took out (built as pass-throughs)."""

    def as_dict(self) -> dict[str, Any]:
        """Where the model comes from and its keywords, JSON-ready."""
        options: dict[str, Any] = {"source": self.source}
        for key, value in self.kwargs:
            options[key] = list(value) if isinstance(value, tuple) else value
        if self.attention_classes:
            options["attention_classes"] = list(self.attention_classes)
        return options
