"""The exceptions a user can fix by changing what they asked for, carrying what went wrong as data.

Every error is one line that says what was wrong and what is accepted. An error that has to name
one of the caller's arguments (`device`, `trust`, `model`, ...) keeps it as a placeholder of its
`template`: a Python caller reads it spelled as a keyword (`trust=True`), and the CLI, through
`render()`, as its flag. Nothing outside `senet_cli.cli` knows a flag.

All are `ValueError`s, so callers that already catch bad arguments keep working. The CLI prints
them on one line and exits with code 2; the Python API lets them propagate.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any


class SenetError(ValueError):
    """A bad name, option or input, described in one line that says what is accepted."""


def first_line(error: BaseException, limit: int | None = None) -> str:
    """The first line of an exception's message (at most `limit` characters), or its type's name
    when it has none: how a library error becomes part of a one-line SenetError."""
    text = str(error).strip().splitlines()
    return (text[0][:limit] if limit is not None else text[0]) if text else type(error).__name__


def closest_match(word: str, choices: Iterable[str]) -> str | None:
    """The choice closest to `word`, or None when none is close. Case is ignored (`SE_ResNet50`
    finds `se_resnet50`, not a name that differs by a letter in the same case); the choice comes
    back as it is spelled."""
    by_folded: dict[str, str] = {}
    for choice in choices:
        by_folded.setdefault(choice.casefold(), choice)
    matches = difflib.get_close_matches(word.casefold(), list(by_folded), n=1, cutoff=0.6)
    return by_folded[matches[0]] if matches else None


def close_match_hint(word: str, choices: Iterable[str]) -> str:
    """Return " (did you mean 'x'?)" for the closest of `choices`, or "" when none is close."""
    match = closest_match(word, choices)
    return f" (did you mean '{match}'?)" if match else ""


def _accepted(choices: tuple[str, ...]) -> str:
    return ", ".join(choices) if len(choices) <= 12 else ", ".join(choices[:12]) + ", ..."


class UnknownChoiceError(SenetError):
    """A value outside a closed set: which kind of value, the value, the accepted ones, the closest."""

    def __init__(self, kind: str, value: str, choices: Iterable[str], where: str = "") -> None:
        self.kind = kind
        self.value = value
        self.choices = tuple(choices)
        self.suggestion = closest_match(value, self.choices)
        hint = f" (did you mean '{self.suggestion}'?)" if self.suggestion else ""
        where = f" in {where}" if where else ""
        super().__init__(f"unknown {kind} '{value}'{where}{hint}; accepted: {_accepted(self.choices)}")


class OptionError(SenetError):
    """A build option with a value it does not accept: the option's name, the value, what it takes."""

    def __init__(self, option: str, value: Any, accepted: str, message: str | None = None) -> None:
        self.option = option
        self.value = value
        self.accepted = accepted
        super().__init__(message or f"{option} must be {accepted}, got {value!r}")


Spelling = Callable[[str, Any], str]
"""How an audience writes an argument: (argument name, value or None) -> text."""


def keyword(name: str, value: Any) -> str:
    """A Python caller's spelling: the bare name when only mentioned (value None), else `trust=True`,
    `num_classes=7`, `device='cpu'`."""
    if value is None:
        return ArgumentError.KEYWORD_FORMS.get(name, name)
    return f"{name}={value!r}"


class ArgumentError(SenetError):
    """An error whose message names some of the caller's arguments.

    `template` is a str.format template. Its placeholders are the keys of `arguments` and of
    `fields`. An argument placeholder maps to the argument's name (a mention), or to (name, value)
    when the message sets it (True for a switch); each audience spells it its own way
    (`render(spell)`): a Python caller reads `num_classes=7` and `trust=True` (`str(error)`), a CLI
    user the flags (see senet_cli/cli/errors.py). `fields` are data, substituted as they are and
    kept as attributes of the error.
    """

    KEYWORD_FORMS: Mapping[str, str] = {"list_models": "see list_models()"}

    def __init__(self, template: str, *, arguments: Mapping[str, str | tuple[str, Any]] | Iterable[str],
                 **fields: Any) -> None:
        self.template = template
        named = arguments.items() if isinstance(arguments, Mapping) else ((a, a) for a in arguments)
        self.arguments = {key: (spec, None) if isinstance(spec, str) else spec for key, spec in named}
        self.fields = dict(fields)
        for key, value in fields.items():
            setattr(self, key, value)
        super().__init__(self.render(keyword))

    def render(self, spell: Spelling) -> str:
        """The message with every argument spelled by `spell` (the CLI passes its flag names)."""
        spelled = {key: spell(name, value) for key, (name, value) in self.arguments.items()}
        return self.template.format(**self.fields, **spelled)


class UnknownModelError(ArgumentError):
    """A model name that is not `<attention>_<backbone>` nor a backbone: the name and the closest one."""

    def __init__(self, name: str, attentions: Iterable[str], suggestion: str | None) -> None:
        hint = f" (did you mean '{suggestion}'?)" if suggestion else ""
        super().__init__(
            "unknown model '{name}'{hint}; names are <attention>_<backbone>, a bare backbone, or outside the zoo "
            "torchvision:NAME, timm:NAME, file.py:callable; attention in {{{attentions}}} ({list_models})",
            arguments=("list_models",), name=name, hint=hint, attentions=", ".join(attentions),
            suggestion=suggestion,
        )


class DeviceUnavailableError(ArgumentError):
    """The device asked for is not visible to torch."""


class CheckpointError(SenetError):
    """A checkpoint file that cannot be read as one: the file, and what it is not."""

    def __init__(self, path: object, message: str) -> None:
        self.path = str(path)
        super().__init__(message)


class CheckpointSafetyError(ArgumentError):
    """A checkpoint that only arbitrary unpickling could read: the file and the globals it asks for."""


class ArchitectureError(ArgumentError):
    """A checkpoint whose weights fit no model of the zoo, or not the one named (the file, the closest fit)."""


class RatioTooLargeError(OptionError):
    """A reduction ratio that leaves a reducing module no channels: the ratio, the width, the stage."""

    def __init__(self, ratio: int, channels: int, stage: int | None = None) -> None:
        self.channels = channels
        self.stage = stage
        where = f" of stage {stage}" if stage is not None else ""
        super().__init__("ratio", ratio, f"between 1 and {channels}",
                         f"ratio {ratio} is larger than the {channels} channels{where}; "
                         f"use a ratio between 1 and {channels}")


OUT_OF_MEMORY = ("out of memory", "can't allocate memory", "cannot allocate memory")
"""How torch's CUDA and CPU allocators say they ran out: the library keeps such errors as they are, and the
CLI says which flag to lower."""


def is_out_of_memory(error: BaseException) -> bool:
    """Whether `error` is an allocator running out (MemoryError, or an OUT_OF_MEMORY phrase)."""
    return isinstance(error, MemoryError) or any(words in str(error).lower() for words in OUT_OF_MEMORY)


@contextmanager
def running_model(name: str, doing: str) -> Iterator[None]:
    """Run a model's code (its forward, a training step): whatever it raises, a sys.exit or endless
    recursion included, becomes one SenetError "NAME cannot DOING: KIND: first line", the same in
    count, profile and inspect. A SenetError, running out of memory (the caller says which flag to
    lower) and KeyboardInterrupt pass through as they are."""
    try:
        yield
    except SenetError:
        raise
    except (Exception, SystemExit) as error:  # noqa: BLE001 (a model outside the zoo runs the caller's code)
        if is_out_of_memory(error):
            raise
        if isinstance(error, SystemExit):
            raise SenetError(f"{name} cannot {doing}: it called sys.exit({error.code!r})") from None
        raise SenetError(f"{name} cannot {doing}: {type(error).__name__}: {first_line(error, 160)}") from None
