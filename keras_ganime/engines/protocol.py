"""The surface an engine gives the training loop, whichever backend it runs on."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from keras_ganime.config import Config
from keras_ganime.families.base import Family, Phase


class Engine(Protocol):
    """A family's networks and optimizers on one backend, with the compiled step, the
    checkpoints and what is drawn from the generator. `images` are the run's uint8 faces."""

    cfg: Config
    family: Family
    images: np.ndarray
    phases: tuple[Phase, ...]  # the family's, in the order each step runs them

    @property
    def export_suffix(self) -> str:
        """The exported generator's suffix (the family's: ".keras", or "" for a folder)."""

    def train_step(self) -> dict[str, Any]:
        """One step of every due phase; the step's values (losses, scores) by name."""

    def step_count(self) -> int: ...

    def first_bad(self) -> int:
        """The first step whose values were not finite, or -1."""

    def loss_failure(self) -> tuple[int, str] | None:
        """The step and rule of the family's loss watch, once it has fired."""

    def open_checkpoints(self, directory: Path, keep: int) -> int:
        """Restore the newest readable checkpoint in `directory`; the step it holds (0: none)."""

    def save(self, step: int) -> None: ...

    def checkpoint_bytes(self) -> int: ...

    def weights_finite(self) -> bool: ...

    def fixed_latents(self, n: int) -> Any: ...

    def generate(self, z: Any) -> np.ndarray:
        """uint8 images of these latents."""

    def pictures(self, reals: np.ndarray) -> dict[str, np.ndarray]: ...

    def export(self, path: Path) -> None: ...
