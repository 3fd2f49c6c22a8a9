"""A run's checkpoints as they are on disk: the newest that reads completely.

A checkpoint cut short (a full disk, a copy interrupted, a file truncated) or garbled would stop
a resume with a traceback from deep inside TensorFlow. Resume, generate and evaluate take instead
the newest checkpoint whose every tensor reads, say in one line each which newer one they skipped
and why, and fail in one line only when none reads.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import tensorflow as tf

from keras_ganime.runs import RunError


def listed(directory: Path) -> list[str]:
    """The checkpoint prefixes the directory's index names, oldest first; [] for none."""
    state = tf.train.get_checkpoint_state(str(directory))
    return list(state.all_model_checkpoint_paths) if state else []


def damage(prefix: str) -> str | None:
    """Why the checkpoint does not read completely, in a few words; None when every tensor
    reads."""
    try:
        reader = tf.train.load_checkpoint(prefix)
        for key in reader.get_variable_to_shape_map():
            reader.get_tensor(key)
    except (tf.errors.OpError, IndexError, ValueError, OSError) as e:
        text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        return text[:160]
    return None


def step_of(prefix: str) -> int:
    return int(prefix.rsplit("-", 1)[1])


def _stderr(line: str) -> None:
    print(line, file=sys.stderr)


def _skipped(prefix: str, reason: str) -> str:
    return f"skipped checkpoint {prefix}: it does not read completely ({reason})"


def _none_reads(directory: Path, prefixes: list[str], newest_reason: str) -> RunError:
    """One line for a run none of whose checkpoints reads: the skips it would have said are
    summed up in it, the newest's reason shown."""
    return RunError(f"{directory}: none of its {len(prefixes)} checkpoints reads completely "
                    f"(the newest, {Path(prefixes[-1]).name}: {newest_reason}); start a new "
                    f"run, or copy the checkpoint files again")


def readable(directory: Path, say: Callable[[str], None] = _stderr) -> list[str]:
    """The listed checkpoints that read completely, oldest first, and `say` gets one line per
    damaged one; [] when none is listed; RunError when some are and none reads."""
    prefixes = listed(directory)
    reasons = {prefix: damage(prefix) for prefix in prefixes}
    good = [prefix for prefix in prefixes if reasons[prefix] is None]
    if prefixes and not good:
        raise _none_reads(directory, prefixes, str(reasons[prefixes[-1]]))
    for prefix in prefixes:
        if (reason := reasons[prefix]) is not None:
            say(_skipped(prefix, reason))
    return good


def newest_readable(directory: Path, say: Callable[[str], None] = _stderr) -> str | None:
    """The newest checkpoint that reads completely, each newer one skipped with a line; None
    when the directory has none; RunError when it has some and none reads."""
    prefixes = listed(directory)
    reasons = []  # of the newest first, said only once one reads
    for prefix in reversed(prefixes):
        reason = damage(prefix)
        if reason is None:
            for skipped, why in zip(reversed(prefixes), reasons):
                say(_skipped(skipped, why))
            return prefix
        reasons.append(reason)
    if prefixes:
        raise _none_reads(directory, prefixes, reasons[0])
    return None
