"""TensorBoard scalars without TensorFlow: the event file written with TensorBoard's own protocol
buffers and record writer (neither loads TensorFlow), so that a run on JAX has them too."""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Self

from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.record_writer import RecordWriter


class ScalarWriter:
    """Appends scalars to a new event file in `directory`, flushed at each write."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        name = f"events.out.tfevents.{time.time():.0f}.{socket.gethostname()}.keras_ganime"
        self._file = open(directory / name, "ab")  # noqa: SIM115 - closed by close()
        self._records = RecordWriter(self._file)
        self._write(event_pb2.Event(file_version="brain.Event:2"))

    def _write(self, event: event_pb2.Event) -> None:
        event.wall_time = time.time()
        self._records.write(event.SerializeToString())

    def write(self, values: Mapping[str, float], step: int) -> None:
        self._write(event_pb2.Event(step=step, summary=summary_pb2.Summary(value=[
            summary_pb2.Summary.Value(tag=k, simple_value=float(v)) for k, v in values.items()])))
        self._records.flush()

    def close(self) -> None:
        self._records.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
