"""The contract between the engine (`engines/`) and a model family (`families/<name>.py`).

A family is two things, so that every command line can check its settings before TensorFlow
starts:
- a `FamilySpec`, free of TensorFlow, in `families/<name>_settings.py`: its settings (the
  sections it owns, such as [labels], and its extensions of common ones, such as [model]), their
  checks, and the names it logs, plots and shows in the progress bar;
- a `Family` subclass, in `families/<name>.py`, read top to bottom like a keras-io example: its
  networks and optimizers, the random inputs of a step, the phases of the step and their
  arithmetic in Keras ops, what it updates after the step, its failure rules, its checkpoint,
  its latents, its sampling network and its export.
The engine owns the rest: the step counter, the random generator, the real-image sampler, the
compiled step on one device or under a strategy, the NaN and loss watch, and the checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

# Tensors of whichever backend runs the step; the families' arithmetic is in Keras ops.
Tensor = Any


@dataclass(frozen=True)
class FamilySpec:
    """What the command lines, the run directory and the report know of a family."""

    name: str
    module: str  # the module with the family's `Family` class (it imports TensorFlow)
    description: str
    # Section name -> a factory of its default dataclass: a section only this family has, or its
    # own dataclass for a common section (a subclass that adds keys, or other defaults).
    sections: Mapping[str, Callable[[], Any]]
    validate: Callable[[Any], None]  # raises settings.ConfigError for a bad family setting
    logged: Callable[[Any], tuple[str, ...]]  # cfg -> loss.csv's columns between step and speed
    plots: Callable[[Any], tuple[tuple[str, tuple[str, ...]], ...]]  # cfg -> (axis, names) panels
    progress: Callable[[Any], Mapping[str, str]]  # cfg -> {label in the progress bar: name}
    note: str = ""  # what the report says beside the source's words of every run of the family
    # Sampling options its generator honours (generate checks them): truncation, style_mixing,
    # noise (the per-layer noise fixed or drawn anew); and condition, model.condition
    capabilities: frozenset[str] = frozenset()
    # Without the capability "condition": why model.condition is refused (its one line says).
    condition_note: str = ""
    # With "truncation": the psi of generate's --truncation-strip columns, and how many w's a
    # --truncation-cutoff may name (cfg -> count). With "style_mixing": the [first, last) w's
    # of a named layer range or `A-B` (cfg, name -> range; ValueError for a bad one).
    truncation_strip: tuple[float, ...] = ()
    style_count: Callable[[Any], int] | None = None
    style_range: Callable[[Any, str], tuple[int, int]] | None = None
    # One logged row -> the report's score table's columns (a DCGAN's: Anik et al.'s per-epoch
    # line: G's loss, D's, D's mean outputs), or None where the row lacks them; None: no table.
    scores: Callable[[Mapping[str, float]], dict[str, float] | None] | None = None
    # Settings make bench sets so that every phase runs from the first step that it times
    # (the DCGAN's D-only warm-up off).
    bench_settings: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Phase:
    """One part of a step. It runs from step `start`, every `every` steps after it, and while
    `gate` holds (a function of the values so far: this step's outputs where computed, else the
    last step's); when it does not run its outputs are NaN. A `hold` phase runs at every step
    instead, its updates withheld while its gate is closed (`StepContext.frozen`), so that its
    outputs stay current: D's losses while its update is skipped. Its outputs are scalar means
    over the batch; the engine averages them over replicas."""

    name: str
    outputs: tuple[str, ...]
    start: int = 0
    every: int = 1
    gate: Callable[[Mapping[str, Tensor]], Tensor] | None = None
    hold: bool = False

    def __post_init__(self) -> None:
        if self.hold and (self.gate is None or self.start or self.every != 1):
            raise ValueError(f"phase {self.name}: a held phase has a gate and runs every step")


@dataclass
class Draws:
    """Every random input of one step, drawn for the global batch."""

    per_sample: dict[str, Tensor]  # leading axis the global batch; each replica gets its slice
    per_batch: dict[str, Tensor] = field(default_factory=dict)  # whole, on every replica


@dataclass(frozen=True)
class Build:
    """How the engine asks a family to build its networks and optimizers."""

    policy: str = "float32"  # Keras dtype policy
    sync_bn: bool = False  # BatchNorm statistics over all replicas of a strategy
    fused_bn: bool = False  # BatchNorm by TensorFlow's fused kernel (batchnorm.py)
    loss_scale: bool = False  # dynamic loss scaling, for float16
    replicas: int = 1  # the strategy's; each replica gets batch_size / replicas of a batch


class StepContext(Protocol):
    """What the engine lends a phase's arithmetic."""

    replicas: int
    frozen: bool  # True: `update` and `update_many` compute the losses and step nothing

    def update(self, optimizer: Any, variables: list[Any],
               loss_fn: Callable[[], tuple[Tensor, Any]]) -> tuple[Tensor, Any]:
        """One optimizer step on the global batch's mean of `loss_fn()`'s loss (its first
        value), computed on this replica's slice; returns the loss and `loss_fn`'s second value,
        both from before the step."""

    def update_many(self, steps: Sequence[tuple[Any, list[Any]]],
                    loss_fn: Callable[[], tuple[Sequence[Tensor], Any]]
                    ) -> tuple[Sequence[Tensor], Any]:
        """`update` for several (optimizer, variables), each on its loss, from one forward pass
        (`loss_fn` returns the losses in the same order): every gradient is taken before any
        update, as BEGAN steps D and G."""

    def input_gradient(self, fn: Callable[[Tensor], Tensor], x: Tensor
                       ) -> tuple[Tensor, Tensor]:
        """fn(x) and the gradient of its sum with respect to x, differentiable in turn: for a
        penalty inside a `loss_fn`, such as R1 on D's gradient at the reals."""


class Family:
    """The base of every family; the engine builds one inside its strategy's scope. A family's
    module names its subclass `Family` and sets `spec`; its constructor fills `networks` and
    `optimizers`, whose names are its checkpoint's keys."""

    spec: FamilySpec
    # A conditional run's labels (families/condition.py's Condition) where the family offers
    # them (FamilySpec.capabilities has "condition") and model.condition names some.
    condition: Any = None

    def __init__(self, cfg: Any, build: Build) -> None:
        self.cfg = cfg
        self.build = build
        self.networks: dict[str, Any] = {}  # name -> keras.Model, by checkpoint name
        self.optimizers: dict[str, Any] = {}

    # --- the step ---
    @property
    def phases(self) -> tuple[Phase, ...]:
        raise NotImplementedError

    def draw(self, rng: Any, n: int) -> Draws:
        """Every random input of a step for `n` samples, from the engine's generator `rng`
        (its `uniform(shape, minval, maxval, dtype)` and `normal(shape)`)."""
        raise NotImplementedError

    def run_phase(self, name: str, reals: Tensor, draws: Draws, ctx: StepContext
                  ) -> dict[str, Tensor]:
        raise NotImplementedError

    def after_step(self, values: Mapping[str, Tensor], draws: Draws) -> dict[str, Tensor]:
        """State updated once per step from the global batch's values and draws (k_t, EMA
        weights, w_avg from the step's latents, ...); returns more values to log, named by
        `after_outputs`."""
        return {}

    @property
    def after_outputs(self) -> tuple[str, ...]:
        """The names of `after_step`'s values: with the phases' outputs, what the family's
        spec may log and show (engines.common.build_family checks)."""
        return ()

    def rules(self) -> list[Any]:
        """The failure watch's rules (failure.LossRule), checked on the device every step."""
        return []

    # --- state, sampling and export ---
    def checkpoint_objects(self) -> dict[str, Any]:
        return {**self.networks, **self.optimizers}

    def sampler_objects(self) -> dict[str, Any]:
        """What a checkpoint must give back for sampling alone (generate, evaluate)."""
        raise NotImplementedError

    def sampler(self) -> Any:
        """The network that makes images from `latents`, in inference mode."""
        raise NotImplementedError

    def pictures(self, reals: Tensor) -> dict[str, Tensor]:
        """More pictures of the run, beside each sample grid, from a fixed batch of reals in
        [-1, 1]: folder name -> images in [-1, 1] (BEGAN: D's reconstructions)."""
        return {}

    def latents(self, rng: Any, n: int) -> Tensor:
        raise NotImplementedError

    export_suffix = ".keras"  # of `export`'s file or folder (generator.keras in a run)
    # A SavedModel export needs TensorFlow: on JAX the engine exports the sampling networks'
    # weights instead (jax_engine.JaxEngine.export).
    export_needs_tensorflow = False

    def export(self, path: Path) -> None:
        """The sampling network as a file that plain Keras loads."""
        raise NotImplementedError

    # --- make bench ---
    @classmethod
    def forward_networks(cls, cfg: Any) -> tuple[Any, Any] | None:
        """G and D as plain float32 Keras models, without optimizers: what make bench counts
        the FLOPs of (`step_flops`) and, for the reference, trains in Keras's own idiom; None
        where the family does not offer them."""
        return None

    @classmethod
    def step_flops(cls, cfg: Any, g_forward: int, d_forward: int) -> int | None:
        """FLOPs of one image through one training step, from G's and D's forward FLOPs
        (`forward_flops`), a backward pass costing twice its forward pass; None: not counted."""
        return None


def forward_flops(model: Any) -> int:
    """Multiply-adds x 2 of one image through the model's convolutions and dense layers; norms
    and activations are a fraction of a percent and left out.

    Conv2D: out_h * out_w * k_h * k_w * c_in * c_out. Conv2DTranspose scatters every input pixel
    through the kernel: in_h * in_w * k_h * k_w * c_in * c_out. Dense: n_in * n_out. A model or
    layer of a family's own (StyleGAN's) counts its multiply-adds itself (`CountsItself`).
    """
    import keras

    if isinstance(model, CountsItself):
        return 2 * model.multiply_adds()
    total = 0
    for layer in model.layers:
        if isinstance(layer, CountsItself):
            total += layer.multiply_adds()
        elif isinstance(layer, keras.layers.Conv2DTranspose):
            _, h, w, c_in = layer.input.shape
            total += h * w * layer.kernel_size[0] * layer.kernel_size[1] * c_in * layer.filters
        elif isinstance(layer, keras.layers.Conv2D):
            _, h, w, _ = layer.output.shape
            c_in = layer.input.shape[-1]
            total += h * w * layer.kernel_size[0] * layer.kernel_size[1] * c_in * layer.filters
        elif isinstance(layer, keras.layers.Dense):
            total += layer.input.shape[-1] * layer.units
    return 2 * total


@runtime_checkable
class CountsItself(Protocol):
    """A model or layer of a family's own whose multiply-adds `forward_flops` cannot see."""

    def multiply_adds(self) -> int: ...
