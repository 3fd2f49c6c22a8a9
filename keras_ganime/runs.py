"""The run directory: numbered names, a lock against a second writer, and atomic files.

    runs/00007-batch16/
        config.toml      the resolved settings (what --resume reads back)
        run.json         status, step, command line, versions, failure if any, failed
                         evaluations if any
        loss.csv         step, the family's logged values, images/s, wall time
        loss.png         the loss curves, as the paper's figures
        metrics.csv      step, wall time and each metric, every eval.every steps
        metrics.png      the metric curves
        reals.png        a grid of real training images
        samples/NNNNNNN.png   fixed-noise 8x8 grids, one frame per sample_every steps
        checkpoints/     the family's networks and optimizers, the step, the random generator
        tensorboard/     summaries for TensorBoard
        generator.keras  the final generator (StyleGAN: generator.savedmodel, a SavedModel)
        milestones/NNNNNNN.keras   the generator at each of output.milestones (.savedmodel)
        eval/NNNNNNN/metrics.json   `python -m keras_ganime.evaluate RUN`, per checkpoint
"""

from __future__ import annotations

import csv
import fcntl
import importlib.metadata
import io
import json
import os
import re
import secrets
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Self

from keras_ganime import errors

# The layout of a run directory, in run.json: raised when a version changes it so that an older
# one would misread it. A run without the field predates it and is format 1.
RUN_FORMAT = 1


def package_version() -> str:
    try:
        return importlib.metadata.version("keras_ganime")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout never installed
        return "unknown"


def run_json_problem(run: Path) -> str | None:
    """Why this version cannot use the run, from its run.json, in one line; None if it can
    (or if the run has no run.json yet)."""
    path = run / "run.json"
    if not path.is_file():
        return None
    try:
        info = json.loads(path.read_bytes())
    except (ValueError, OSError) as e:  # UnicodeDecodeError is a ValueError too
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        return (f"{path}: not valid JSON ({why}); copy it again, or delete it to go on without "
                f"the run's record of its status and failure")
    if not isinstance(info, dict):
        return f"{path}: not a run's record (a JSON object); copy it again, or delete it"
    fmt = info.get("run_format", 1)
    if not isinstance(fmt, int) or fmt > RUN_FORMAT:
        return (f"{run}: made by keras_ganime {info.get('keras_ganime', '?')} (run format "
                f"{fmt}), newer than this one ({package_version()}, run format {RUN_FORMAT}); "
                f"upgrade keras_ganime (pip install -U keras_ganime) to use this run")
    return None


class RunError(errors.Error, RuntimeError):
    """A run directory that cannot be used; its message is one line naming it."""


class Stop(Exception):
    """Training ended early; the message says why, in one line."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def new_run_dir(runs_dir: str | Path, name: str,
                files: dict[str, str] | None = None) -> Path:
    """runs/NNNNN-name, numbered one past the highest run already there, holding `files` (name ->
    text) from the moment it has its name: they are written into a hidden folder first, which is
    then renamed, so that a kill leaves a whole run or no numbered folder at all."""
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    # Made as a run folder is (the umask's mode, unlike mkdtemp's 0700), under a hidden name.
    tmp = runs_dir / f".new-run-{os.getpid()}-{secrets.token_hex(4)}"
    tmp.mkdir()
    try:
        for file, text in (files or {}).items():
            atomic_write(tmp / file, text)
        while True:
            numbers = [int(m.group(1)) for p in runs_dir.iterdir()
                       if (m := re.match(r"(\d{5})-", p.name))]
            path = runs_dir / f"{max(numbers, default=-1) + 1:05d}-{name}"
            if path.exists():  # another process took that number first
                continue
            try:
                # An empty folder of that name made meanwhile would be replaced: mkdir it first
                # (the claim), then rename onto it, which fails if the claim was not ours.
                path.mkdir()
            except FileExistsError:
                continue
            try:
                os.replace(tmp, path)
            except BaseException:
                path.rmdir()  # the claim, still empty
                raise
            return path
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def json_text(value: dict[str, Any]) -> str:
    """A run's JSON file as it is written (run.json, metrics.json)."""
    return json.dumps(value, indent=2, default=str) + "\n"


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write then rename, so a kill at any moment leaves the old file or the new one; a write
    that fails (a full disk) leaves the old one and no temporary file, and names the file."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OSError(e.errno, e.strerror, str(path)) from None


def in_use(path: Path) -> str:
    return (f"{path}: in use by another training process; wait for it to end, or stop it "
            f"(Ctrl-C saves a checkpoint), then resume")


def check_free(path: str | Path) -> None:
    """RunError if another process holds the run directory now: said before TensorFlow starts.
    `RunDir` takes the lock itself later; this only looks, and creates nothing."""
    lock = Path(path) / ".lock"
    if not lock.is_file():  # every holder makes it: none, no holder
        return
    with open(lock) as f:
        try:
            fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunError(in_use(Path(path))) from None


class RunDir:
    """A run directory held by this process alone (an advisory lock) until `close`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_dir():
            raise RunError(f"{self.path}: no such run directory")
        # Held open until close(): the lock lives as long as the file descriptor.
        self._lock = open(self.path / ".lock", "a+")  # noqa: SIM115
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock.close()
            raise RunError(in_use(self.path)) from None
        (self.path / "samples").mkdir(exist_ok=True)

    def close(self) -> None:
        self._lock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def checkpoints(self) -> Path:
        return self.path / "checkpoints"

    @property
    def milestones(self) -> Path:
        path = self.path / "milestones"
        path.mkdir(exist_ok=True)
        return path

    def write_json(self, name: str, value: dict[str, Any]) -> None:
        atomic_write(self.path / name, json_text(value))

    def read_json(self, name: str) -> dict[str, Any]:
        path = self.path / name
        return json.loads(path.read_text()) if path.exists() else {}

    def write_csv(self, name: str, rows: list[dict[str, float]], columns: Sequence[str]) -> None:
        out = io.StringIO()
        # A column a row lacks (an older run's metrics.csv had no swd_patches) is NaN, which
        # read_csv reads back, not an empty cell, which it could not.
        writer = csv.DictWriter(out, columns, restval="nan", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write(self.path / name, out.getvalue())

    def read_csv(self, name: str) -> list[dict[str, float]]:
        return read_csv(self.path / name)

    def write_losses(self, rows: list[dict[str, float]], logged: Sequence[str]) -> None:
        """loss.csv: the step, the family's logged values, the speed and the wall time."""
        self.write_csv("loss.csv", rows, ("step", *logged, "images_per_s", "wall_s"))

    def read_losses(self) -> list[dict[str, float]]:
        return self.read_csv("loss.csv")


def read_csv(path: Path) -> list[dict[str, float]]:
    """Rows of a run's CSV file, `step` as int and every other column as float; [] if none."""
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return [{k: int(v) if k == "step" else float(v) for k, v in row.items()}
                for row in csv.DictReader(f)]


def remove(path: Path) -> None:
    """A file or a folder, if there."""
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def export_replacing(path: Path, write: Callable[[Path], None]) -> None:
    """`write(tmp)` beside `path`, then renamed: never half a file under the name. A folder (a
    SavedModel) replaces an older one whole: the old is renamed aside first."""
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")
    old = path.with_name(f".{path.stem}.old{path.suffix}")
    try:
        if old.exists() and not path.exists():  # a kill between the two renames below
            os.replace(old, path)
        for leftover in (tmp, old):
            remove(leftover)
        write(tmp)
        if path.is_dir():
            os.replace(path, old)
        os.replace(tmp, path)
        remove(old)
    except OSError as e:
        remove(tmp)
        if old.exists() and not path.exists():
            os.replace(old, path)
        raise OSError(e.errno, e.strerror, str(path)) from None
