"""A run's checkpoints as they are on disk: the newest that reads completely.

Two formats, one per engine: TensorFlow's (an index file, `checkpoint`, naming prefixes
ckpt-N.index/.data-*), and the JAX engine's backend-neutral one, a NumPy archive per checkpoint
(ckpt-N.npz: every variable of the family by its place, the engine's counters and random key,
and a JSON manifest), written beside and renamed, so that a kill leaves the last one whole.
A checkpoint cut short (a full disk, a copy interrupted, a file truncated) or garbled would stop
a resume with a traceback from deep inside the reader. Resume, generate and evaluate take instead
the newest checkpoint whose every tensor reads, say in one line each which newer one they skipped
and why, and fail in one line only when none reads.
"""

from __future__ import annotations

import json
import os
import sys
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from keras_ganime.runs import RunError

NPZ = ".npz"
MANIFEST = "manifest.json"  # the archive's entry that describes the rest
BACKEND_NAMES = {"tensorflow": "TensorFlow", "jax": "JAX"}


def misfit(reason: str) -> RunError:
    """A checkpoint whose weights do not fit the networks the run's config.toml describes (an
    edited config.toml), as one line with the way back; `reason` names the file and the
    weight."""
    return RunError(f"{reason}: it does not fit the networks that config.toml describes; put "
                    f"config.toml back as the run wrote it (a resume changes only --steps)")


def _archives(directory: Path) -> list[Path]:
    """The JAX engine's checkpoints, not its temporary files (ckpt-N_temp.npz)."""
    return [p for p in directory.glob(f"ckpt-*{NPZ}")
            if p.name.removeprefix("ckpt-").removesuffix(NPZ).isdigit()]


def format_of(directory: Path) -> str | None:
    """The backend whose engine wrote the directory's checkpoints (`tensorflow` or `jax`), or
    None when it has none."""
    if (directory / "checkpoint").is_file():
        return "tensorflow"
    return "jax" if _archives(directory) else None


def check_backend(directory: Path, backend: str, what: str) -> None:
    """RunError when the checkpoints are the other engine's: `what` says what cannot be done."""
    found = format_of(directory)
    if found is not None and found != backend:
        raise RunError(f"{directory}: its checkpoints were written on the {BACKEND_NAMES[found]} "
                       f"backend, and the {BACKEND_NAMES[backend]} backend cannot {what}; run "
                       f"it with --backend {found} (or KERAS_BACKEND={found})")


def listed(directory: Path) -> list[str]:
    """The checkpoints in the directory, oldest first: the prefixes TensorFlow's index names, or
    the JAX engine's archives; [] for none."""
    if format_of(directory) == "jax":
        return sorted((str(p) for p in _archives(directory)), key=step_of)
    if not (directory / "checkpoint").is_file():
        return []
    import tensorflow as tf

    state = tf.train.get_checkpoint_state(str(directory))
    return list(state.all_model_checkpoint_paths) if state else []


def _first_line(e: Exception) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:160]


def damage(prefix: str) -> str | None:
    """Why the checkpoint does not read completely, in a few words; None when every tensor
    reads."""
    if prefix.endswith(NPZ):
        try:
            read_npz(prefix)
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            return _first_line(e)
        return None
    import tensorflow as tf

    try:
        reader = tf.train.load_checkpoint(prefix)
        for key in reader.get_variable_to_shape_map():
            reader.get_tensor(key)
    except (tf.errors.OpError, IndexError, ValueError, OSError) as e:
        return _first_line(e)
    return None


def step_of(prefix: str) -> int:
    return int(prefix.removesuffix(NPZ).rsplit("-", 1)[1])


# --- the backend-neutral format ---


def variables_of(objects: Mapping[str, Any]) -> dict[str, Any]:
    """name/index -> variable, for a family's checkpoint objects (`Family.checkpoint_objects`,
    or `sampler_objects`, whose names are the same): a network's weights, trainable or not, an
    optimizer's variables, or a variable, each in Keras's own order, which is the same on every
    backend."""
    import keras

    out = {}
    for name, obj in objects.items():
        if isinstance(obj, keras.optimizers.Optimizer):
            variables = obj.variables
        elif isinstance(obj, keras.layers.Layer):
            variables = obj.weights
        else:
            variables = [obj]
        out.update({f"{name}/{i}": v for i, v in enumerate(variables)})
    return out


def write_npz(path: Path, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
    """The arrays and a manifest (`meta`, plus each array's shape) written beside as
    NAME_temp.npz, synced and renamed: a kill leaves the old file or the new one, never half.
    An OSError names `path`."""
    tmp = path.with_name(f"{path.name.removesuffix(NPZ)}_temp{NPZ}")
    manifest = {**meta, "arrays": {k: list(np.shape(v)) for k, v in arrays.items()}}
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays, **{MANIFEST: np.frombuffer(
                json.dumps(manifest).encode(), np.uint8)})
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise OSError(e.errno, e.strerror, str(path)) from None


def read_npz(path: str | Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Every array of an archive, read whole (a damaged one raises), and its manifest."""
    with np.load(path, allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files}
    manifest = json.loads(arrays.pop(MANIFEST).tobytes())
    for key, shape in manifest["arrays"].items():
        if list(arrays[key].shape) != shape:
            raise ValueError(f"{key} has shape {list(arrays[key].shape)}, not {shape}")
    return arrays, manifest


def assign(variables: Mapping[str, Any], arrays: Mapping[str, np.ndarray], source: str) -> None:
    """Each variable its array from a checkpoint; ValueError, one line naming `source`, when
    the two do not fit (another family, other settings)."""
    for key, v in variables.items():
        if key not in arrays or tuple(arrays[key].shape) != tuple(v.shape):
            found = "missing" if key not in arrays else f"of shape {arrays[key].shape}"
            raise ValueError(f"{source}: {key} ({v.path}, shape {tuple(v.shape)}) is {found}")
    for key, v in variables.items():
        v.assign(arrays[key].astype(v.dtype))


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
