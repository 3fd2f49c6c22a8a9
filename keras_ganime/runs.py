"""The run directory: numbered names, a lock against a second writer, and atomic files.

    runs/00007-batch16/
        config.toml      the resolved settings (what --resume reads back)
        run.json         status, step, command line, versions, failure if any
        loss.csv         step, the family's logged values, images/s, wall time
        loss.png         the loss curves, as the paper's figures
        metrics.csv      step, wall time and each metric, every eval.every steps
        metrics.png      the metric curves
        reals.png        a grid of real training images
        samples/NNNNNNN.png   fixed-noise 8x8 grids, one frame per sample_every steps
        checkpoints/     the family's networks and optimizers, the step, the random generator
        tensorboard/     summaries for TensorBoard
        generator.keras  the final generator
        milestones/NNNNNNN.keras   the generator at each of output.milestones
        eval/NNNNNNN/metrics.json   `python -m keras_ganime.evaluate RUN`, per checkpoint
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Self


class RunError(RuntimeError):
    """A run directory that cannot be used; its message is one line naming it."""


class Stop(Exception):
    """Training ended early; the message says why, in one line."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def new_run_dir(runs_dir: str | Path, name: str) -> Path:
    """runs/NNNNN-name, numbered one past the highest run already there."""
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    while True:
        numbers = [int(m.group(1)) for p in runs_dir.iterdir()
                   if (m := re.match(r"(\d{5})-", p.name))]
        path = runs_dir / f"{max(numbers, default=-1) + 1:05d}-{name}"
        try:
            path.mkdir()
            return path
        except FileExistsError:  # another process took that number first
            continue


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
            raise RunError(f"{self.path}: in use by another training process") from None
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
        atomic_write(self.path / name, json.dumps(value, indent=2, default=str) + "\n")

    def read_json(self, name: str) -> dict[str, Any]:
        path = self.path / name
        return json.loads(path.read_text()) if path.exists() else {}

    def write_csv(self, name: str, rows: list[dict[str, float]], columns: Sequence[str]) -> None:
        out = io.StringIO()
        writer = csv.DictWriter(out, columns, lineterminator="\n")
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
