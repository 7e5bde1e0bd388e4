"""The one place that knows both the library's errors and the command line's flags.

The library raises errors that carry data and name the caller's arguments as placeholders
(`senet_cli.errors.ArgumentError`); here they are spelled as the flags a user types, the way
huggingface_hub's `cli/_errors.py` maps its exceptions to hints.
"""

from __future__ import annotations

from typing import Any

from senet_cli.errors import ArgumentError, SenetError

FLAGS = {
    # library argument -> how the command line spells it (the rest: --name-with-dashes)
    "input_size": "--input",
    "batches": "--batch",
    "per_stage": "--per-block",
    "list_models": "run 'senet list'",
    "attention_classes": "--attention-class",
}


def flag(argument: str) -> str:
    """The flag (or command) a user types for a library argument."""
    return FLAGS.get(argument, "--" + argument.replace("_", "-"))


def spell(argument: str, value: Any) -> str:
    """`--num-classes 7`, `--trust`: an argument as typed on the command line."""
    return flag(argument) if value is None or value is True else f"{flag(argument)} {value}"


def message(error: SenetError) -> str:
    """The one line the CLI prints for `error`."""
    if isinstance(error, ArgumentError):
        return error.render(spell)
    return str(error)
