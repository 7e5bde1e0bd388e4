"""The quick subset (`pytest -m "not slow"`): which parametrisations of a sweep stay in it.

Imported by the test modules as `from quick import slow_except` (tests/ is on sys.path under pytest's
default import mode, as for conftest.py). A sweep over every model keeps all its cases in the full suite; the quick
subset keeps a sample that still reaches every branch of the test (each attention module, each family).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import pytest


def slow_except(cases: Iterable[Any], quick: Callable[[Any], bool], ids: Callable[[Any], str] | None = None) -> list:
    """`cases` as pytest params, each marked slow unless `quick(case)`; a tuple case is unpacked."""
    params = []
    for case in cases:
        values = case if isinstance(case, tuple) else (case,)
        marks = () if quick(case) else (pytest.mark.slow,)
        params.append(pytest.param(*values, marks=marks, id=ids(case) if ids else None))
    return params
