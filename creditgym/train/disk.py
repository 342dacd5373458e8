"""A full disk, named as such: one line with the path, whichever write ran out of space."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["DiskFullError", "disk_full_guard"]


class DiskFullError(OSError):
    """A write failed for lack of disk space; the message names the path and what to do."""


@contextmanager
def disk_full_guard(path: Path | str) -> Iterator[None]:
    """Turn ``ENOSPC`` (or ``EDQUOT``) inside the block into a `DiskFullError` naming `path`
    (or the file the error names); any other error passes through unchanged."""
    try:
        yield
    except DiskFullError:
        raise
    except OSError as error:
        if error.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        where = error.filename or path
        raise DiskFullError(
            f"the disk is full: could not write {where}; free some space and run again "
            "(training resumes from the last complete checkpoint)"
        ) from None
