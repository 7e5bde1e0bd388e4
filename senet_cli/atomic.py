"""Write files in one step: never a half-written output, whatever the writer (text, torch, matplotlib).

`atomic_path(path)` yields a temporary name beside `path` (same folder, so the rename cannot cross
file systems); the writer fills it and it is renamed over `path`, or deleted on any failure.

Inside `committed_together()` (what the CLI wraps each command in) the renames wait for the end of
the block, so all the files of one command appear together or none does:

- the temporary files are written first; nothing is renamed while any writer can still fail;
- then each is moved into place. A path that may not be replaced (no overwrite) is claimed with
  `os.link`, which fails if a file appeared there meanwhile, instead of a rename that would clobber
  it; a file that is replaced is first kept under a backup name;
- if a move fails, the files already moved are taken back (new ones removed, replaced ones
  restored from their backups) and every temporary file is removed.

Temporary files alive at any moment are listed in `PENDING`, so a signal handler can remove them
(`remove_pending()`) even when the exception it raises never reaches the writer's cleanup.
Files get the mode a plain `open()` would give (0o666 less the umask), not mkstemp's 0600.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import signal
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from senet_cli.errors import SenetError

PENDING: set[str] = set()
"""Temporary files written now and not yet renamed: removed on a signal by `remove_pending()`."""

HELD_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))
"""Held while a commit moves files: a signal between moving a replaced file aside and putting the new
one in place would otherwise leave neither (its handler removes pending files, the backup among them)."""


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    if not hasattr(signal, "pthread_sigmask"):  # Windows: no signal masks
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, HELD_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)  # a held signal is delivered now


class OutputError(SenetError):
    """An output file that cannot be written: the path and why (a missing folder, no permission,
    a name too long, a file that appeared there, a full disk)."""

    def __init__(self, path: object, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"cannot write {path}: {reason}")


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _temporary(path: Path) -> str:
    """A new empty file beside `path`, with the mode a plain open() would give it, registered in PENDING."""
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    PENDING.add(temporary)
    try:
        os.fchmod(handle, 0o666 & ~_umask())
    finally:
        os.close(handle)
    return temporary


def _discard(temporary: str) -> None:
    Path(temporary).unlink(missing_ok=True)
    PENDING.discard(temporary)


def remove_pending() -> None:
    """Remove every temporary file not yet renamed (for signal handlers; safe to call twice)."""
    for temporary in list(PENDING):
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        PENDING.discard(temporary)


def reason(error: OSError) -> str:
    """An OSError as the few words a user acts on: 'No space left on device', 'Permission denied'."""
    return error.strerror or type(error).__name__


_WRITE_FAILURES = {
    # what a writer's own error says -> the OS error it stands for (torch and safetensors do not raise OSError)
    "no space left": "No space left on device",
    "file too large": "File too large (a file-size limit, ulimit -f)",
    "disk quota": "Disk quota exceeded",
    "read-only file system": "Read-only file system",
    "input/output error": "Input/output error",
}


def write_failure(error: BaseException) -> str | None:
    """The OS reason behind a writer's failure that is not an OSError, or None for any other error.

    torch.save reports a full disk or a file-size limit as "RuntimeError: [enforce fail at
    inline_container.cc:672] . unexpected pos 25728 vs 25624" (its writer checks only how far it
    got), safetensors as "SafetensorError: ... I/O error: File too large (os error 27)": both mean
    the file could not be written, which the user fixes on their side, not a bug to show."""
    if isinstance(error, OSError):
        return reason(error)
    if type(error).__name__ not in ("RuntimeError", "SafetensorError"):
        return None
    text = str(error).lower()
    for words, meaning in _WRITE_FAILURES.items():
        if words in text:
            return meaning
    if "inline_container" in text and ("unexpected pos" in text or "write" in text):
        return "the file stopped growing while torch wrote it (a full disk or a file-size limit)"
    return None


def check_writable(path: Path, overwrite: bool) -> None:
    """Raise OutputError unless `path` can be written: its folder exists and is a folder, a
    temporary file can be created there (permissions, read-only file systems and the temporary
    name's length are all tried for real, with a probe that is removed at once), and it is not an
    existing file unless `overwrite`."""
    try:
        _check_writable(path, overwrite)
    except OSError as error:  # the path itself cannot be looked at (a name over NAME_MAX, a loop of links)
        raise OutputError(path, reason(error)) from None


def _check_writable(path: Path, overwrite: bool) -> None:
    if path.is_dir():
        raise OutputError(path, "it is a directory; give a file path")
    if path.exists() and not overwrite:
        raise OutputError(path, "it already exists")
    if path.is_symlink() and not path.exists():  # refused now, not at the commit after all the work
        raise OutputError(path, f"it is a link to {os.readlink(path)}, which does not exist; remove the link or "
                                f"give another path")
    folder = path.parent
    if not folder.exists():
        raise OutputError(path, f"folder {folder} does not exist")
    if not folder.is_dir():
        raise OutputError(path, f"{folder} is not a folder")
    try:
        _discard(_temporary(path))
    except OSError as error:
        raise OutputError(path, reason(error)) from None


@dataclass
class Transaction:
    """Temporary files waiting to be renamed into place together (see the module's docstring)."""

    overwrite: dict[Path, bool] = field(default_factory=dict)  # path -> may replace an existing file
    staged: list[tuple[str, Path]] = field(default_factory=list)  # (temporary, final path), in order
    written: list[Path] = field(default_factory=list)  # after commit(): the paths now in place

    def allow(self, path: Path, overwrite: bool) -> None:
        """Record whether `path` (checked before the work) may replace a file there at commit."""
        self.overwrite[path.absolute()] = overwrite

    def commit(self) -> list[Path]:
        """Move every staged file into place, or none; returns the paths written. Signals wait until
        it is done (see HELD_SIGNALS)."""
        with _signals_held():
            return self._commit()

    def _commit(self) -> list[Path]:
        done: list[tuple[Path, str | None]] = []  # (final path, backup of the file it replaced)
        try:
            for temporary, path in self.staged:
                done.append((path, self._move(temporary, path)))
        except OSError as error:
            for path, backup in reversed(done):
                with contextlib.suppress(OSError):
                    if backup is None:
                        path.unlink()
                    else:
                        os.replace(backup, path)
                        PENDING.discard(backup)
            self.discard()
            failed = self.staged[len(done)][1]
            raise OutputError(failed, "a file appeared there while the command ran; nothing was written"
                              if isinstance(error, FileExistsError) else f"{reason(error)}; nothing was written"
                              ) from None
        for _, backup in done:
            if backup is not None:
                _discard(backup)
        for temporary, _ in self.staged:
            _discard(temporary)
        self.written = [path for path, _ in done]
        self.staged = []
        return self.written

    def _move(self, temporary: str, path: Path) -> str | None:
        """Put `temporary` at `path`; returns the backup name of a replaced file, if any."""
        if not self.overwrite.get(path.absolute(), True):
            try:
                os.link(temporary, path)  # fails if the path exists, unlike a rename
            except FileExistsError:
                raise
            except OSError:  # a file system without hard links: check, then rename (a short race)
                if os.path.lexists(path):
                    raise FileExistsError(path) from None
                os.replace(temporary, path)
                return None
            os.unlink(temporary)
            return None
        backup = None
        if os.path.lexists(path):
            backup = _temporary(path)
            os.replace(path, backup)  # keep the old file until every new one is in place
        os.replace(temporary, path)
        return backup

    def discard(self) -> None:
        """Remove every staged temporary file (they stay listed; `abandon` also forgets them)."""
        for temporary, _ in self.staged:
            _discard(temporary)

    def abandon(self) -> None:
        """Write nothing: remove the staged files and forget them, so the commit has nothing to do."""
        self.discard()
        self.staged = []


_CURRENT: contextvars.ContextVar[Transaction | None] = contextvars.ContextVar("senet_outputs", default=None)


@contextlib.contextmanager
def committed_together() -> Iterator[Transaction]:
    """Stage every `atomic_path` write inside the block; rename them all at its end, or none if it
    raises. A nested block joins the outer one."""
    outer = _CURRENT.get()
    if outer is not None:
        yield outer
        return
    transaction = Transaction()
    token = _CURRENT.set(transaction)
    try:
        yield transaction
    except BaseException:
        transaction.discard()
        raise
    finally:
        _CURRENT.reset(token)
    transaction.commit()


def current() -> Transaction | None:
    """The transaction open now, if any."""
    return _CURRENT.get()


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[str]:
    """Yield a temporary file name beside `path`; on success rename it over `path` (or, inside
    `committed_together`, when the block ends), on failure delete it."""
    path = Path(path)
    transaction = _CURRENT.get()
    try:
        temporary = _temporary(path)
    except OSError as error:
        if transaction is None:
            raise
        raise OutputError(path, reason(error)) from None
    try:
        yield temporary
        if os.path.exists(temporary):  # a writer that recreated the file (safetensors) gave it its own mode
            os.chmod(temporary, 0o666 & ~_umask())
        if transaction is None:
            os.replace(temporary, path)
            PENDING.discard(temporary)
        else:
            transaction.staged.append((temporary, path))
    except OSError as error:
        _discard(temporary)
        if transaction is None:
            raise
        raise OutputError(path, reason(error)) from None
    except BaseException as error:
        _discard(temporary)
        disguised = write_failure(error)
        if disguised is not None:
            raise OutputError(path, disguised) from None
        raise
