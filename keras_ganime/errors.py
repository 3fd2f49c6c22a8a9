"""The project's one error path. `Error` is every request that cannot be carried out: its message
is one line naming the file or setting at fault and the next step. `command` wraps each
command's `main`, so that such an error, or the operating system's about a file (no permission,
no such file, not a folder, no space, the file size limit), ends the command with that one line
on standard error and exit status 2, never a traceback. Run as a command (`python -m ...`), it
also keeps TensorFlow's C++ start-up lines about oneDNN, and on a machine without a GPU about
CUDA, off standard error (`StartUpFilter`)."""

from __future__ import annotations

import contextlib
import errno
import functools
import glob
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator


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
        # Only where it is the process's command: a test that calls main keeps its stderr.
        command = main.__module__ == "__main__"
        with start_up_filter() if command else contextlib.nullcontext():
            code = _one_line(main, *args, **kwargs)
        if command and code == 2:
            # After the one line, nothing more: TensorFlow warns, as the interpreter tears
            # down, about a checkpoint it could not restore (a resume refused for a misfit);
            # a warning about a request already refused is noise.
            logging.getLogger("tensorflow").setLevel(logging.ERROR)
        return code

    return wrapped


def _one_line(main: Callable[..., int], *args, **kwargs) -> int:
    try:
        return main(*args, **kwargs)
    except Error as e:
        print(f"error: {e}", file=sys.stderr)
    except OSError as e:
        if e.errno not in NEXT_STEP:
            raise
        print(f"error: {file_error(e)}", file=sys.stderr)
    return 2


# What TensorFlow's C++ start-up writes to standard error before its logging honours
# TF_CPP_MIN_LOG_LEVEL (absl's log before its initialisation): that oneDNN is on, and on a
# machine without a GPU, that CUDA is not there. Each line matched whole; any other passes.
_ONEDNN = rb"port\.cc:\d+\] oneDNN custom operations are on\. .*"
_CUDA = (rb"(?:cudart_stub\.cc:\d+\] Could not find cuda drivers on your machine.*"
         rb"|cuda_platform\.cc:\d+\] failed call to cuInit: .*"
         rb"|cuda_(?:dnn|fft|blas)\.cc:\d+\] Unable to register cu\w+ factory: .*"
         rb"|computation_placer\.cc:\d+\] computation placer already registered.*)")
_ABSL = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR"
_PREFIX = rb"[IWE]\d{4} [\d:.]+ +\d+ "


def start_up_noise(gpu: bool) -> re.Pattern[bytes]:
    """The lines start_up_filter drops: the CUDA ones only where there is no GPU, where they
    are noise (on a GPU machine they say why the GPU is not used)."""
    lines = _ONEDNN if gpu else rb"(?:" + _ONEDNN + rb"|" + _CUDA + rb")"
    return re.compile(rb"(?:" + re.escape(_ABSL) + rb"|" + _PREFIX + lines + rb")\r?")


@contextlib.contextmanager
def start_up_filter() -> Iterator[None]:
    """Standard error's file descriptor, where C++ writes, through a pipe whose lines a thread
    passes on but for `start_up_noise`'s; Python's sys.stderr writes to the terminal (or file)
    itself, so that it is still a terminal to a progress bar and nothing of ours waits."""
    noise = start_up_noise(bool(glob.glob("/dev/nvidia[0-9]*")))
    sys.stderr.flush()
    saved = os.dup(2)
    read, write = os.pipe()
    os.dup2(write, 2)
    os.close(write)
    python_stderr = sys.stderr
    sys.stderr = open(saved, "w", buffering=1, encoding=python_stderr.encoding,  # noqa: SIM115
                      errors=python_stderr.errors, closefd=False)

    def forward() -> None:
        pending = b""
        while chunk := os.read(read, 1 << 16):
            *lines, pending = (pending + chunk).split(b"\n")
            out = b"".join(line + b"\n" for line in lines if not noise.fullmatch(line))
            if pending and not _may_become_noise(pending):  # a progress bar's \r, a prompt
                out, pending = out + pending, b""
            _write_all(saved, out)
        if pending and not noise.fullmatch(pending):
            _write_all(saved, pending)
        os.close(read)

    thread = threading.Thread(target=forward, name="start-up filter", daemon=True)
    thread.start()
    try:
        yield
    finally:
        sys.stderr.flush()
        filtered, sys.stderr = sys.stderr, python_stderr
        # A logging handler made meanwhile (TensorFlow's) holds the stream that is closed now:
        # what it logs later, at the interpreter's exit, goes to standard error itself.
        for logger in [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]:
            for handler in getattr(logger, "handlers", []):
                if isinstance(handler, logging.StreamHandler) and handler.stream is filtered:
                    handler.setStream(python_stderr)
        os.dup2(saved, 2)  # the pipe's last writer closes: the thread reads to its end
        thread.join(timeout=5)  # a child process that still holds the pipe is not waited for
        if not thread.is_alive():
            os.close(saved)


def _may_become_noise(partial: bytes) -> bool:
    """Whether a line not yet ended could still be one that start_up_noise matches."""
    return (_ABSL.startswith(partial[:len(_ABSL)])
            or re.fullmatch(rb"[IWE]\d{0,4}", partial[:5]) is not None)


def _write_all(fd: int, data: bytes) -> None:
    while data:
        data = data[os.write(fd, data):]
