"""Looking at a path the user named, with every OSError as one line.

`Path.exists()` and `Path.is_dir()` swallow only "no such file"; a name over NAME_MAX (255 bytes on
most file systems), a path over PATH_MAX or a component that is a file raise OSError. Every place
that checks a path it reads (a checkpoint, an image folder, a model file) asks `path_kind` instead, so each
such name is the same one line ("checkpoint '...': File name too long") the writers give
(senet_cli/atomic.py: `reason`).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import Literal

from senet_cli.errors import SenetError

Kind = Literal["missing", "directory", "file", "other"]
_MISSING = (errno.ENOENT, errno.ENOTDIR)


def shown(path: object, limit: int = 120) -> str:
    """A path as messages show it: whole when short, else its head and tail around '...'."""
    text = str(path)
    return text if len(text) <= limit else f"{text[: limit // 2]}...{text[-(limit // 2 - 3):]}"


def path_kind(path: str | os.PathLike[str], what: str) -> Kind:
    """What `path` is (links followed): "missing", "directory", "file" (regular) or "other" (a FIFO,
    device, socket). Any other OSError (a name too long, a loop of links, no permission to look) is
    a SenetError naming `what` ("checkpoint", "data folder") and the system's reason."""
    try:
        info = os.stat(path)
    except OSError as error:
        if error.errno in _MISSING:
            return "missing"
        raise SenetError(f"{what} {shown(path)} cannot be looked at: {error.strerror or type(error).__name__}") \
            from None
    except ValueError as error:  # an embedded NUL byte
        raise SenetError(f"{what} {shown(path)!r} is not a usable path: {error}") from None
    if stat.S_ISDIR(info.st_mode):
        return "directory"
    return "file" if stat.S_ISREG(info.st_mode) else "other"


def exists(path: str | os.PathLike[str], what: str) -> bool:
    """Whether `path` names anything; an OSError other than "missing" is one line (see path_kind)."""
    return path_kind(path, what) != "missing"


def is_dir(path: str | os.PathLike[str], what: str) -> bool:
    """Whether `path` is a directory; an OSError other than "missing" is one line (see path_kind)."""
    return path_kind(Path(path), what) == "directory"
