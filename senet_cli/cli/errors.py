"""The one place that knows both the library's errors and the command line's flags.

The library raises errors that carry data and name the caller's arguments as placeholders
(`senet_cli.errors.ArgumentError`); here they are spelled as the flags a user types, the way
huggingface_hub's `cli/_errors.py` maps its exceptions to hints.
"""

from __future__ import annotations

import re
from typing import Any

from senet_cli.errors import OUT_OF_MEMORY, ArgumentError, CheckpointError, SenetError, first_line

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


MAKE_A_CHECKPOINT = ("to make one: senet_cli.save_checkpoint(build_model('se_resnet18_cifar'), 'ckpt.pth') in "
                     "Python, or python examples/inspect_digits.py, which trains one")
"""The hint for a checkpoint that is not there: a new user has none yet."""


def message(error: SenetError) -> str:
    """The one line the CLI prints for `error`."""
    if isinstance(error, ArgumentError):
        return error.render(spell)
    if isinstance(error, CheckpointError) and str(error).endswith("does not exist"):
        return f"{error}; {MAKE_A_CHECKPOINT}"
    return str(error)


def resource_message(error: BaseException) -> str | None:
    """One line for a request too large to run (out of memory, a size that overflows), as profile
    reports its out-of-memory batches; None for any other error (a bug: let it show)."""
    text = str(error)
    lower = text.lower()
    if isinstance(error, MemoryError) or type(error).__name__ == "OutOfMemoryError" or any(
            words in lower for words in OUT_OF_MEMORY):
        asked = re.search(r"tried to allocate (\d+) bytes", text)
        size = f" (it asked for {int(asked.group(1)) / 2**30:,.1f} GiB at once)" if asked else ""
        return f"out of memory{size}: use a smaller --batch or --input (or --bins for inspect)"
    if isinstance(error, OverflowError) or "overflow" in lower:
        return (f"the sizes asked for are too large to compute ({first_line(error, 160)}): use a smaller "
                f"--batch or --input")
    return None
