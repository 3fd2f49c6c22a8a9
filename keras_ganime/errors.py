"""The project's one error path. `Error` is every request that cannot be carried out: its message
is one line naming the file or setting at fault and the next step. `command` wraps each
command's `main`, so that such an error, or the operating system's about a file (no permission,
no such file, not a folder, no space, the file size limit), ends the command with that one line
on standard error and exit status 2, never a traceback."""

from __future__ import annotations

import errno
import functools
import os
import sys
from collections.abc import Callable


class Error(Exception):
    """A request that cannot be carried out; its message is one line naming the file or setting
    at fault and the next step."""


# What the operating system said about a file -> what the user can do about it.
NEXT_STEP = {
    errno.EACCES: "give yourself permission to it, or choose another place",
    errno.EPERM: "give yourself permission to it, or choose another place",
    errno.EROFS: "the file system is read-only; choose another place",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "a part of the path is a file, not a folder; check the path",
    errno.EISDIR: "it is a folder; name a file",
    errno.ENOSPC: "free some space on its disk, or choose another place",
    errno.EDQUOT: "free some space within your disk quota, or choose another place",
    errno.EFBIG: "the file size limit (ulimit -f) was reached; raise it",
    errno.ENAMETOOLONG: "choose a shorter name",
}


def file_error(e: OSError) -> str:
    """One line for an operating system's error about a file: the file, what went wrong, and the
    next step."""
    what = e.strerror or os.strerror(e.errno or 0)
    where = f"{os.fsdecode(e.filename)}: " if e.filename is not None else ""
    return f"{where}{what[:1].lower()}{what[1:]}; {NEXT_STEP[e.errno]}"


def command(main: Callable[..., int]) -> Callable[..., int]:
    """`main` with the one error path: an `Error`, or an OSError about a file (NEXT_STEP's), is
    printed as one line `error: ...` on standard error and the exit status is 2. Anything else
    is a fault of the program and keeps its traceback."""

    @functools.wraps(main)
    def wrapped(*args, **kwargs) -> int:
        try:
            return main(*args, **kwargs)
        except Error as e:
            print(f"error: {e}", file=sys.stderr)
        except OSError as e:
            if e.errno not in NEXT_STEP:
                raise
            print(f"error: {file_error(e)}", file=sys.stderr)
        return 2

    return wrapped
