"""The exceptions a user can fix by changing what they asked for.

The CLI turns a `SenetError` into one line on stderr and exit code 2; the Python API lets it
propagate. Both are `ValueError`s, so callers that already catch bad arguments keep working.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class SenetError(ValueError):
    """A bad name, option or input, described in one line that says what is accepted."""


def first_line(error: BaseException, limit: int | None = None) -> str:
    """The first line of an exception's message (at most `limit` characters), or its type's name
    when it has none: how a library error becomes part of a one-line SenetError."""
    text = str(error).strip().splitlines()
    return (text[0][:limit] if limit is not None else text[0]) if text else type(error).__name__


def close_match_hint(word: str, choices: Iterable[str]) -> str:
    """Return " (did you mean 'x'?)" for the closest of `choices`, or "" when none is close."""
    matches = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{matches[0]}'?)" if matches else ""


def unknown_choice(kind: str, word: str, choices: Iterable[str]) -> SenetError:
    """Build the error for a value outside a closed set, naming the set and the closest match."""
    choices = list(choices)
    accepted = ", ".join(choices) if len(choices) <= 12 else ", ".join(choices[:12]) + ", ..."
    return SenetError(f"unknown {kind} '{word}'{close_match_hint(word, choices)}; accepted: {accepted}")
