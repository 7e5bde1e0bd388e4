"""A small name -> object registry, in the spirit of torchvision's `register_model`.

It refuses duplicate names (two modules claiming one name is a bug, not an override) and answers
an unknown name with the accepted names and the closest match.
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Iterator
from typing import Any, Generic, TypeVar

from senet_cli.errors import SenetError, UnknownChoiceError

T = TypeVar("T")


class Registry(Generic[T]):
    """Names mapped to entries of one kind (attention modules, backbones, ...), in insertion order."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._entries: dict[str, T] = {}

    def add(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise SenetError(f"{self.kind} '{name}' is registered twice")
        self._entries[name] = entry
        return entry

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownChoiceError(self.kind, name, self._entries) from None

    def names(self, pattern: str | None = None) -> list[str]:
        """Registered names, optionally filtered by an fnmatch pattern such as 'resnet*'."""
        names = list(self._entries)
        return fnmatch.filter(names, pattern) if pattern else names

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def items(self) -> list[tuple[str, T]]:
        return list(self._entries.items())

    def __len__(self) -> int:
        return len(self._entries)


def load_object(reference: str) -> Any:
    """The object a "package.module:name" reference names, imported on first use: how the torch-free
    registry entries point at their torch code."""
    module_name, _, attribute = reference.partition(":")
    return getattr(importlib.import_module(module_name), attribute)
