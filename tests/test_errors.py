"""The one error path (keras_ganime/errors.py): every command's main prints the project's errors
and the operating system's errors about files as one line, `error: ...`, naming the file and the
next step, with exit status 2; a fault of the program keeps its traceback. (A run folder the
user cannot write, and generate under a file size limit: cases of tests/test_bad_input.py.)"""

from __future__ import annotations

import configparser
import errno
import importlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from keras_ganime import config as config_lib
from keras_ganime import errors

ROOT = Path(__file__).resolve().parent.parent


def commands() -> list[str]:
    """The command modules: the top layer of setup.cfg's import contract, and `data`'s."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    top = cfg["importlinter:contract:layers"]["layers"].strip().splitlines()[0]
    return [name.strip() for name in top.split("|")] + ["keras_ganime.data.__main__"]


@pytest.mark.parametrize("module", commands())
def test_every_command_has_the_one_error_path(module):
    main = importlib.import_module(module).main
    # errors.command's wrapper, not just any decorator's
    assert main.__code__ is errors.command(lambda: 0).__code__, f"{module}.main"


@pytest.mark.parametrize("code", sorted(errors.NEXT_STEP), ids=errno.errorcode.get)
def test_each_file_error_is_one_line_naming_the_file_and_the_next_step(code, capsys):
    @errors.command
    def main() -> int:
        raise OSError(code, os.strerror(code), "runs/00001-x/loss.csv")

    assert main() == 2
    out = capsys.readouterr()
    assert out.out == ""
    assert out.err == (f"error: runs/00001-x/loss.csv: {os.strerror(code)[0].lower()}"
                       f"{os.strerror(code)[1:]}; {errors.NEXT_STEP[code]}\n")


def test_a_project_error_is_one_line_and_a_fault_keeps_its_traceback(capsys):
    @errors.command
    def refused() -> int:
        raise config_lib.ConfigError("train.steps must be positive, got 0")

    assert refused() == 2
    assert capsys.readouterr().err == "error: train.steps must be positive, got 0\n"

    @errors.command
    def faulty() -> int:
        raise KeyError("a fault of the program")

    with pytest.raises(KeyError):
        faulty()

    @errors.command
    def interrupted() -> int:  # not about a file: not the user's to mend
        raise OSError(errno.EINTR, "Interrupted system call")

    with pytest.raises(OSError):
        interrupted()


def test_a_runs_folder_that_is_a_file_is_one_line_before_tensorflow(tmp_path, capsys):
    from keras_ganime import train

    (tmp_path / "runs").write_text("not a folder\n")
    assert train.main(["--steps", "1", "--set", f'output.runs_dir="{tmp_path / "runs" / "x"}"'
                       ]) == 2
    assert capsys.readouterr().err == (
        f"error: {tmp_path / 'runs'}: a file, where output.runs_dir {tmp_path / 'runs' / 'x'} "
        f"needs a folder; choose another output.runs_dir\n")


# TensorFlow 2.21's C++ start-up lines on a machine without a GPU, as written to standard error.
START_UP = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    ("I0000 00:00:1796659556.348129   31258 port.cc:153] oneDNN custom operations are on. You may "
    "see slightly different numerical results due to floating-point round-off errors from "
    "different computation orders. To turn them off, set the environment variable "
    "`TF_ENABLE_ONEDNN_OPTS=0`."),
    ("I0000 00:00:1796659556.348522   31258 cudart_stub.cc:31] Could not find cuda drivers on "
    "your machine, GPU will not be used."),
    ("E0000 00:00:1796659564.206521   31258 cuda_platform.cc:52] failed call to cuInit: INTERNAL: "
    "CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)"),
]
# What must still show: a real error of TensorFlow's, and a progress bar's unended updates.
KEPT = ("E0000 00:00:1796659570.000001   31258 op_kernel.cc:1857] OP_REQUIRES failed at "
        "conv_ops.cc:12 : RESOURCE_EXHAUSTED: OOM when allocating tensor")
WRITER = """import os, sys
from keras_ganime import errors
lines = sys.argv[1:]
with errors.start_up_filter():
    for line in lines[:-1]:
        os.write(2, line.encode() + b"\\n")  # as C++ writes, past Python's sys.stderr
    for part in ("\\r 10%|#", "\\r 20%|##"):
        os.write(2, part.encode())
    os.write(2, b"\\n")
    print(lines[-1], file=sys.stderr)  # Python's own line: straight through
os.write(2, b"after\\n")  # the descriptor is standard error again
"""


def test_tensorflows_start_up_lines_are_dropped_and_its_errors_kept():
    """Through errors.start_up_filter (every command's, run as one): TensorFlow's oneDNN and
    CUDA start-up lines on a machine without a GPU are dropped; any other line, a TensorFlow
    error's included, passes, and so do a progress bar's updates, which end no line."""
    lines = [*START_UP, KEPT, "error: the one line"]
    done = subprocess.run([sys.executable, "-c", WRITER, *lines], cwd=ROOT, capture_output=True,
                          timeout=60, check=True)
    # Python's own line goes straight to standard error, the others through the filter.
    assert sorted(done.stderr.decode().split("\n")) == sorted(
        [KEPT, "\r 10%|#\r 20%|##", "error: the one line", "after", ""])
    assert done.stderr.endswith(b"after\n")
    on_a_gpu = errors.start_up_noise(gpu=True)  # there, CUDA's lines say why it is not used
    assert [bool(on_a_gpu.fullmatch(line.encode())) for line in START_UP] == [
        True, True, False, False]
    assert not errors.start_up_noise(gpu=False).fullmatch(KEPT.encode())


def test_a_logger_made_inside_a_command_still_writes_after_it():
    """A logging handler made while the start-up filter stands in for sys.stderr (TensorFlow
    makes its own so) writes to standard error itself once the command is over, as at the
    interpreter's exit, not to the filter's closed stream."""
    program = ("import atexit, logging, sys\nfrom keras_ganime import errors\n"
               "log = logging.getLogger('late')\n"
               "@errors.command\ndef main():\n    log.addHandler(logging.StreamHandler())\n"
               "    return 0\n"
               "atexit.register(lambda: log.warning('at exit'))\nsys.exit(main())\n")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          check=False, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert (done.returncode, done.stderr) == (0, "at exit\n")
