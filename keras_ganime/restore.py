"""A run's generator, restored for sampling: the family built as a sampler needs it, and its
networks read from the run's newest readable checkpoint.

Used by evaluate, generate and the tests; the latents are `engines.latents` and the images
`images.convert.render`. TensorFlow is
imported inside the functions, so that the command lines that import this module check their
arguments first. A checkpoint of either engine's format is read on the backend that wrote it; the
JAX engine's archives (`checkpoints.py`) on either.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from keras_ganime import errors
from keras_ganime.config import Config

if TYPE_CHECKING:
    from keras_ganime.families.base import Family

class SamplingError(errors.Error):
    """A generator that cannot be opened; its message is one line naming the file."""


def build(cfg: Config) -> Family:
    """The run's family with Keras's own layers in float32, as a sampler needs it."""
    from keras_ganime.engines.common import build_family

    return build_family(cfg)


def latest_checkpoint(run: Path) -> str:
    """The run's newest checkpoint that reads completely (checkpoints.newest_readable)."""
    from keras_ganime.engines.checkpoints import newest_readable
    from keras_ganime.runs import RunError

    try:
        latest = newest_readable(run / "checkpoints")
    except RunError as e:
        raise SamplingError(str(e)) from None
    if latest is None:
        raise SamplingError(f"{run}: the checkpoint index names no checkpoint files")
    return latest


def restore(family: Family, checkpoint: str) -> None:
    """The family's sampling networks from a checkpoint (the rest of it is not wanted here)."""
    from keras_ganime.engines import checkpoints, common

    if checkpoint.endswith(checkpoints.NPZ):
        arrays, _ = checkpoints.read_npz(checkpoint)
        try:
            checkpoints.assign(checkpoints.variables_of(family.sampler_objects()), arrays,
                               checkpoint)
        except ValueError as e:
            raise SamplingError(f"{e}: it does not fit the {family.spec.name} networks that "
                                f"config.toml describes") from None
        return
    if common.backend() != "tensorflow":
        raise SamplingError(f"{checkpoint}: a TensorFlow checkpoint, which only the "
                            f"TensorFlow backend reads; run with KERAS_BACKEND=tensorflow")
    import tensorflow as tf

    try:
        status = tf.train.Checkpoint(**family.sampler_objects()).restore(checkpoint)
        status.expect_partial().assert_existing_objects_matched()
    except (AssertionError, ValueError):
        raise SamplingError(f"{checkpoint}: does not fit the {family.spec.name} networks that "
                            f"config.toml describes") from None
