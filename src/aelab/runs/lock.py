"""The lock of a run folder: ``<folder>/.lock``, held while a process writes the folder.

The OS releases it if the process dies, so a killed run never leaves a stale lock. The lock
file is opened without following a link and without blocking: a ``.lock`` that someone
replaced by a symbolic link, a folder or a FIFO is refused in one sentence, never followed
(which would create the file it points to) nor waited on.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from ..errors import FolderError

NAME = ".lock"
_FLAGS = os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)


def _open(folder: Path, create: bool) -> int:
    """A file descriptor of the folder's lock file, checked to be a regular file."""
    path = folder / NAME
    try:
        fd = os.open(path, (os.O_RDWR | os.O_CREAT if create else os.O_RDONLY) | _FLAGS, 0o666)
    except OSError as err:
        why = "is a symbolic link" if os.path.islink(path) else (err.strerror or str(err))
        raise FolderError(f"Cannot lock {folder}: {path} {why}; remove it if no aelab process is "
                          "writing the folder.") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise FolderError(f"Cannot lock {folder}: {path} is not a regular file; remove it if no "
                          "aelab process is writing the folder.")
    return fd


class Lock:
    """An exclusive lock on the folder, or one sentence if another process holds it."""

    def __init__(self, folder: Path):
        self.fd = _open(folder, create=True)
        try:
            import fcntl

            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # pragma: no cover - Windows
            import msvcrt

            try:
                msvcrt.locking(self.fd, msvcrt.LK_NBLCK, 1)
            except OSError:
                self._busy(folder)
        except OSError:
            self._busy(folder)

    @staticmethod
    def busy(folder: Path) -> bool:
        """Whether another process holds the lock of ``folder`` (probed, nothing created)."""
        if not os.path.lexists(folder / NAME):
            return False  # no lock file: nobody has held it since the folder was made
        fd = _open(folder, create=False)
        try:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return False
        except ImportError:  # pragma: no cover - Windows: the lock is mandatory there
            return False
        except OSError:
            return True
        finally:
            os.close(fd)

    def _busy(self, folder: Path):
        self.release()
        raise FolderError(f"Another aelab process is writing {folder}; wait for it to finish or "
                          "pass another --out.")

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
