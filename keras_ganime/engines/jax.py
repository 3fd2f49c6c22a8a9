"""JAX's training engine: the families' own Keras-ops arithmetic, one `jax.jit` step.

The step is a pure function of the variables' values, the engine's state (random key, step
counter, NaN and failure watch, the last values for gates) and the uint8 images held on the
device: `keras.StatelessScope` lends the family's layers and optimizers those values, and the
step returns the new ones. Its parts are tensorflow.py's, in the same order:
    draw     the family's random inputs, then the real batch's indices, from the step's key
    phases   each phase where due and while its gate holds, else NaN: whether its step is
             due (`start`, `every`) is known on the host, which compiles the step once for
             each pattern of due phases; a gate, read from values, chooses between both
             sides computed. No `jax.lax.cond`: XLA on the CPU runs convolutions inside one
             tens of times slower (the reference's step at 32 px and batch 16, G's phase in
             a cond: 2.0 s; out of it: 0.13 s; 2-core AMD EPYC with AVX-512, JAX 0.10.2,
             2026-12-07)
    count    the step counter
    after    the family's updates after the step
    watch    the first non-finite step, and the family's failure rules
A phase's `update` takes the gradients by `jax.vjp` of its losses, inside a scope that maps
every variable (a nested scope does not read through to the outer one), and steps the optimizer
by `stateless_apply`. Checkpoints are NumPy archives (`checkpoints.py`), written atomically;
nothing here imports TensorFlow. `train.distribute = "mirrored"` is keras.distribution's data
parallelism over this machine's devices: the variables, the state and the images replicated,
each step's real batch and per-sample draws split along the batch, and XLA's partitioner adds
the all-reduces, so that the step is one device's (the global batch's losses, gradients and
BatchNorm statistics).
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import keras
import numpy as np
from keras import StatelessScope
from keras.src.backend.jax import nn as keras_jax_nn
from keras.src.utils import module_utils

from keras_ganime.config import Config
from keras_ganime.data import check_enough
from keras_ganime.engines import checkpoints, common
from keras_ganime.engines.common import (
    GRID_SEED,
    POLICIES,
    Sampling,
    build_family,
    gate_open,
    grid_latents,
    step_conditions,
)
from keras_ganime.families import failure
from keras_ganime.families.base import Build, Draws, Phase
from keras_ganime.families.condition import LABELS
from keras_ganime.images.convert import to_float
from keras_ganime.runs import export_replacing
from keras_ganime.settings import ConfigError

Values = list[jax.Array]
# Keras asks for int64 counters (optimizers' iterations, the failure watch); without JAX's x64
# mode they are int32, which counts 2 billion steps.
warnings.filterwarnings("ignore", "Explicitly requested dtype int64", UserWarning, r"keras\.")
# Keras loads TensorFlow where it is installed, to seed it (keras.utils.set_random_seed) and to
# look for its types when it saves a model. A JAX run has no use for it, and stays free of its
# gigabyte and its seconds of start-up: Keras is told that it is absent.
module_utils.tensorflow._available = False


# XLA's CPU code takes the kernel gradient of a strided transposed convolution (an input dilated
# by the stride) 10 to 16 times as long as a strided convolution's (DCGAN's G at 32 px, batch 16:
# 0.14 s against 0.009 s for 8x8x128 -> 16x16x64), most of a CPU step. The same gradient is the
# kernel gradient of the convolution that the transposed one is the transpose of, taken at the
# output's gradient against the input: that form is a plain strided convolution. The forward
# pass and the input's gradient are Keras's own; the kernel's gradient differs from Keras's by
# the rounding of another order of summation (2e-6 relative). On CPU only: the GPU's path is
# measured as Keras has it (gpu_check.py).
_keras_conv_transpose = keras_jax_nn.conv_transpose


def _conv_transpose(inputs: Any, kernel: Any, *args: Any, **kwargs: Any) -> jax.Array:
    @jax.custom_vjp
    def transposed(x: jax.Array, w: jax.Array) -> jax.Array:
        return _keras_conv_transpose(x, w, *args, **kwargs)

    def adjoint(x: jax.Array, w: jax.Array, dy: jax.Array) -> jax.Array:
        """The transpose of x -> transposed(x, w) at dy: the strided convolution."""
        return jax.vjp(lambda x_: _keras_conv_transpose(x_, w, *args, **kwargs), x)[1](dy)[0]

    def forward(x: jax.Array, w: jax.Array) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        return transposed(x, w), (x, w)

    def backward(saved: tuple[jax.Array, jax.Array], dy: jax.Array) -> tuple[jax.Array, ...]:
        x, w = saved
        # <dy, T(x, w)> = <T*(dy, w), x>: its gradient in w is a strided convolution's
        return adjoint(x, w, dy), jax.grad(lambda w_: jnp.vdot(adjoint(x, w_, dy), x))(w)

    transposed.defvjp(forward, backward)
    return transposed(keras_jax_nn.convert_to_tensor(inputs),
                      keras_jax_nn.convert_to_tensor(kernel))


if jax.default_backend() == "cpu":
    keras_jax_nn.conv_transpose = _conv_transpose


# LeakyReLU's gradient at exactly 0 is its slope on TensorFlow, 1 in JAX's jax.nn.leaky_relu.
# An input exactly 0 comes with augmentation (zeros where a translated image was padded or a
# square cut out, through a bias still 0): there the engines would step apart. The JAX engine
# takes TensorFlow's; elsewhere the two are the same function.
def _leaky_relu(x: Any, negative_slope: float = 0.2) -> jax.Array:
    x = keras_jax_nn.convert_to_tensor(x)
    return jnp.where(x > 0, x, negative_slope * x)


keras_jax_nn.leaky_relu = _leaky_relu


class KeyRng:
    """`tf.random.Generator`'s `uniform` and `normal` (the families' draws) over a JAX key,
    split at every draw; `key` is the key after the draws."""

    def __init__(self, key: jax.Array) -> None:
        self.key = key

    def _next(self) -> jax.Array:
        self.key, sub = jax.random.split(self.key)
        return sub

    def uniform(self, shape: Sequence[int], minval: Any = 0.0, maxval: Any = 1.0,
                dtype: str = "float32") -> jax.Array:
        shape = tuple(shape)
        if "int" in str(dtype):
            return jax.random.randint(self._next(), shape, minval, maxval, dtype)
        return jax.random.uniform(self._next(), shape, dtype, minval, maxval)

    def normal(self, shape: Sequence[int]) -> jax.Array:
        return jax.random.normal(self._next(), tuple(shape))


def generator(seed: int) -> KeyRng:
    return KeyRng(jax.random.PRNGKey(seed))


class StepContext:
    """What a phase's arithmetic borrows from the engine (families/base.py), inside the step's
    scope: `update` moves the scope's values of the variables it steps."""

    replicas = 1

    def __init__(self, variables: Sequence[keras.Variable], frozen: bool = False) -> None:
        self.variables = variables
        self.frozen = frozen

    def update(self, optimizer: keras.optimizers.Optimizer, variables: list[Any],
               loss_fn: Callable[[], tuple[Any, Any]]) -> tuple[Any, Any]:
        def one_loss() -> tuple[tuple[Any], Any]:
            loss, aux = loss_fn()
            return (loss,), aux

        (loss,), aux = self.update_many([(optimizer, variables)], one_loss)
        return loss, aux

    def update_many(self, steps: Sequence[tuple[keras.optimizers.Optimizer, list[Any]]],
                    loss_fn: Callable[[], tuple[Sequence[Any], Any]]
                    ) -> tuple[Sequence[Any], Any]:
        if self.frozen:
            return loss_fn()
        trainable = [v for _, variables in steps for v in variables]
        stepped = {id(v) for v in trainable}
        others = [v for v in self.variables if id(v) not in stepped]
        fixed = [(v, v.value) for v in others]

        def forward(values: Values) -> tuple[tuple[Any, ...], tuple[Any, list[Any]]]:
            with StatelessScope(state_mapping=[*fixed, *zip(trainable, values)]) as inner:
                losses, aux = loss_fn()
                moved = [inner.get_current_value(v) for v in others]  # BatchNorm's statistics
            return tuple(losses), (aux, moved)

        current = [v.value for v in trainable]
        losses, pullback, (aux, moved) = jax.vjp(forward, current, has_aux=True)
        for v, x in zip(others, moved):
            v.assign(x)
        # Every gradient before any update, each of its own loss, from one forward pass.
        start = 0
        for k, (opt, variables) in enumerate(steps):
            seed = tuple(jnp.ones_like(loss) if i == k else jnp.zeros_like(loss)
                         for i, loss in enumerate(losses))
            (grads,) = pullback(seed)
            own = slice(start, start + len(variables))
            start += len(variables)
            new, new_opt = opt.stateless_apply([v.value for v in opt.variables], grads[own],
                                               current[own])
            for v, x in zip([*variables, *opt.variables], [*new, *new_opt]):
                v.assign(x)
        return losses, aux

    def input_gradient(self, fn: Callable[[Any], Any], x: Any) -> tuple[Any, Any]:
        """fn(x) and the gradient of its sum with respect to x, differentiable in turn. `fn`
        must not assign variables (a BatchNorm in training would): what it assigned inside
        jax.vjp would escape it."""
        y, pullback = jax.vjp(fn, x)
        return y, pullback(jnp.ones_like(y))[0]


class JaxEngine(Sampling):
    """A family, its variables' values and the engine's state: all a checkpoint holds."""

    def __init__(self, cfg: Config, images: np.ndarray, labels: np.ndarray | None = None
                 ) -> None:
        common.check(cfg, "jax")
        check_enough(images, cfg.train.batch_size)
        self.cfg = cfg
        keras.utils.set_random_seed(cfg.train.seed)  # the initial weights
        self.distribution = None
        if cfg.train.distribute == "mirrored":
            devices = keras.distribution.list_devices()
            if cfg.train.batch_size % len(devices):
                raise ConfigError(f"train.batch_size {cfg.train.batch_size} must be divisible "
                                  f"by the {len(devices)} devices of train.distribute",
                                  "train.batch_size")
            self.distribution = keras.distribution.DataParallel(devices=devices)
        scope = self.distribution.scope() if self.distribution else contextlib.nullcontext()
        with scope:
            # Keras's own BatchNormalization: `train.fused_batchnorm` is TensorFlow's kernel.
            self.family = build_family(cfg, Build(POLICIES[cfg.train.mixed_precision]), labels)
        self.phases = self.family.phases
        self.rules = self.family.rules()
        named = checkpoints.variables_of(self.family.checkpoint_objects())
        self.keys, self.variables = list(named), list(named.values())
        self.names = tuple(n for p in self.phases for n in p.outputs)
        self.gated = any(p.gate for p in self.phases)
        self.images = images
        self.labels = labels
        self.device_images = self._everywhere(jnp.asarray(images, jnp.uint8))
        state = {"key": jax.random.PRNGKey(cfg.train.seed), "step": jnp.int32(0),
                 "first_bad_step": jnp.int32(-1),
                 "high_streak": jnp.zeros(len(self.rules), jnp.int32),
                 "loss_failed_at": jnp.int32(-1), "failed_rule": jnp.int32(-1)}
        if self.gated:
            state["last"] = jnp.full(len(self.names), jnp.nan, jnp.float32)
        self.state = {k: self._everywhere(v) for k, v in state.items()}
        # The variables' and the state's old buffers are donated: a step holds one copy of
        # the networks and optimizers, not two (the Keras variables get the new ones at once).
        self._train_step = jax.jit(self._step, donate_argnums=(0, 1), static_argnames="due")
        self._steps_done = 0  # the state's step counter, as the host knows it without a wait
        self.directory: Path | None = None
        self.keep = 1

    # --- the devices ---
    def _everywhere(self, x: jax.Array) -> jax.Array:
        """x on every device of the data parallelism (as is, on one device)."""
        if self.distribution is None:
            return x
        layout = keras.distribution.TensorLayout([None] * np.ndim(x),
                                                 self.distribution.device_mesh)
        return keras.distribution.distribute_tensor(x, layout)

    def _split(self, x: jax.Array) -> jax.Array:
        """x split along its first axis, the batch, over the devices (as is, on one)."""
        if self.distribution is None:
            return x
        layout = self.distribution.get_data_layout(np.shape(x))
        return keras.distribution.distribute_tensor(x, layout)

    # --- the step ---
    @contextlib.contextmanager
    def _scope(self, values: Values) -> Iterator[Values]:
        """The variables read `values`; the list it yields holds their values at the end."""
        out: Values = []
        with StatelessScope(state_mapping=list(zip(self.variables, values))) as scope:
            yield out
            for v, x in zip(self.variables, values):
                new = scope.get_current_value(v)
                out.append(x if new is None else jnp.asarray(new, x.dtype))

    def _indices(self, step: jax.Array, rng: KeyRng) -> jax.Array:
        """The real batch: `uniform` with replacement, or `epoch`'s permutation of each epoch
        (its key from the seed and the epoch alone, as TensorFlow's engine)."""
        n, batch = len(self.images), self.cfg.train.batch_size
        if self.cfg.data.sampling == "uniform":
            return rng.uniform((batch,), 0, n, "int32")
        per_epoch = n // batch
        key = jax.random.fold_in(jax.random.PRNGKey(self.cfg.train.seed), step // per_epoch)
        return jax.lax.dynamic_slice(jax.random.permutation(key, n),
                                     ((step % per_epoch) * batch,), (batch,))

    def _step(self, values: Values, state: dict[str, jax.Array], images: jax.Array,
              given: tuple[dict, dict, jax.Array] | None = None, *, due: tuple[bool, ...]
              ) -> tuple[Values, dict[str, jax.Array], dict[str, jax.Array]]:
        state = dict(state)
        rng = KeyRng(state["key"])
        if given is None:
            with self._scope(values):
                draws = self.family.draw(rng, self.cfg.train.batch_size)
            indices = self._indices(state["step"], rng)
        else:
            draws, indices = Draws(given[0], given[1]), given[2]
        if self.labels is not None:  # the reals' labels, split over the devices with them
            draws = Draws({**draws.per_sample, LABELS: jnp.take(self.labels, indices, axis=0)},
                          draws.per_batch)
        draws = Draws({k: self._split(v) for k, v in draws.per_sample.items()}, draws.per_batch)
        state["key"] = rng.key
        reals = self._split(to_float(jnp.take(images, indices, axis=0)))
        outputs: dict[str, jax.Array] = {}
        finite = jnp.bool_(True)
        last = dict(zip(self.names, state["last"])) if self.gated else {}
        seen = dict(last)  # what a gate reads: this step's outputs where ran, else the last's
        for phase, phase_due in zip(self.phases, due):
            values, out, ran = self._phase(phase, phase_due, values, reals, draws, seen)
            outputs.update(out)
            if self.gated:
                seen.update(out if ran is None else
                            {k: jnp.where(ran, v, last[k]) for k, v in out.items()})
            ok = jnp.all(jnp.stack([jnp.isfinite(v) for v in out.values()]))
            finite &= ok if ran is None else (ok | ~ran)
        state["step"] = step = state["step"] + 1
        with self._scope(values) as after_values:
            after = common.after_step(self.family, outputs, draws)
            after = {k: jnp.asarray(v, jnp.float32) for k, v in after.items()}
            for v in after.values():
                finite &= jnp.isfinite(v)
            outputs.update(after)
            if self.rules:
                streak, failed_at, rule = failure.watch(
                    self.rules, outputs, state["high_streak"], state["loss_failed_at"],
                    state["failed_rule"], step)
                state.update(high_streak=jnp.asarray(streak, jnp.int32),
                             loss_failed_at=jnp.asarray(failed_at, jnp.int32),
                             failed_rule=jnp.asarray(rule, jnp.int32))
        state["first_bad_step"] = jnp.where((state["first_bad_step"] < 0) & ~finite, step,
                                            state["first_bad_step"])
        if self.gated:
            state["last"] = jnp.stack([seen[n] for n in self.names])
        return after_values, state, outputs

    def _phase(self, phase: Phase, due: bool, values: Values, reals: jax.Array, draws: Draws,
               seen: Mapping[str, jax.Array]
               ) -> tuple[Values, dict[str, jax.Array], jax.Array | None]:
        """The phase's new values and float32 outputs, and whether it ran (None: always; a held
        phase always runs, frozen while its gate is closed). `due`: whether this step is one
        of the phase's (`step_conditions`, on the host)."""
        def run(values: Values, frozen: bool = False) -> tuple[Values, dict[str, jax.Array]]:
            with self._scope(values) as new:
                out = self.family.run_phase(phase.name, reals, draws,
                                            StepContext(self.variables, frozen))
            return new, {k: jnp.asarray(v, jnp.float32) for k, v in out.items()}

        skipped = {name: jnp.float32(jnp.nan) for name in phase.outputs}
        if not due:
            return values, skipped, jnp.bool_(False)
        if phase.gate is None:
            return (*run(values), None)
        # Both sides computed and one chosen, not a jax.lax.cond (see the module's docstring):
        # a gated phase costs its step, and a held one its forward pass, once more.
        is_open = gate_open(phase, seen)
        new, out = run(values)
        closed, closed_out = run(values, frozen=True) if phase.hold else (values, skipped)
        new = [jnp.where(is_open, a, b) for a, b in zip(new, closed)]
        out = {k: jnp.where(is_open, v, closed_out[k]) for k, v in out.items()}
        return new, out, None if phase.hold else is_open

    def train_step(self) -> dict[str, jax.Array]:
        return self._run(self._train_step)

    def step_with(self, draws: Draws, indices: np.ndarray) -> dict[str, jax.Array]:
        """One step on given random inputs and real images' indices, in place of the key's:
        for comparing the engines."""
        given = (draws.per_sample, draws.per_batch, jnp.asarray(indices, jnp.int32))
        return self._run(self._train_step, given)

    def _run(self, step: Callable, *given: Any) -> dict[str, jax.Array]:
        """The step from the Keras variables' values, which then hold the new ones (an
        assignment of JAX's immutable arrays, no copy): whatever reads the family between
        steps (sampling, export, a test) sees its state."""
        values, self.state, out = step(self.values(), self.state, self.device_images, *given,
                                       due=self.due())
        self._steps_done += 1
        for v, x in zip(self.variables, values):
            v.assign(x)
        return out

    def due(self) -> tuple[bool, ...]:
        """Whether the next step is one of each phase's (the step's static argument)."""
        return tuple(all(step_conditions(phase, self._steps_done)) for phase in self.phases)

    def values(self) -> Values:
        return [v.value for v in self.variables]

    @property
    def rng(self) -> KeyRng:
        """A generator from the engine's key as it now is; drawing from it leaves the key."""
        return KeyRng(self.state["key"])

    # --- what the loop reads and keeps ---
    def step_count(self) -> int:
        return self._steps_done

    def first_bad(self) -> int:
        return int(self.state["first_bad_step"])

    def loss_failure(self) -> tuple[int, str] | None:
        """(step, reason) once the watch has seen a rule hold past its patience."""
        step = int(self.state["loss_failed_at"])
        if step < 0:
            return None
        return step, failure.describe(self.rules[int(self.state["failed_rule"])], step)

    def open_checkpoints(self, directory: Path, keep: int) -> int:
        """Restores the directory's newest checkpoint that reads completely, if any, keeps the
        newest `keep` of those `save` writes there; returns the step reached."""
        checkpoints.check_backend(directory, "jax", "resume them")
        directory.mkdir(exist_ok=True)
        self.directory, self.keep = directory, keep
        latest = checkpoints.newest_readable(directory)
        if latest:
            arrays, _ = checkpoints.read_npz(latest)
            missing = [k for k in self.state if f"engine/{k}" not in arrays]
            try:
                if missing:
                    raise ValueError(f"{latest}: engine/{missing[0]} is missing")
                checkpoints.assign(dict(zip(self.keys, self.variables)), arrays, latest)
            except ValueError as e:
                raise checkpoints.misfit(str(e)) from None
            self.state = {k: self._everywhere(jnp.asarray(arrays[f"engine/{k}"], v.dtype))
                          for k, v in self.state.items()}
            self._steps_done = int(self.state["step"])
            # Newer archives did not read (newest_readable said which): set aside, so that
            # the ring below, which keeps the highest steps, cannot prefer them to new ones.
            for newer in checkpoints.listed(directory):
                if checkpoints.step_of(newer) > checkpoints.step_of(latest):
                    os.replace(newer, f"{newer}.damaged")
        return self.step_count()

    def save(self, step: int) -> None:
        """ckpt-STEP.npz, atomically, the oldest beyond `keep` then removed; an OSError names
        the file when the disk refuses it."""
        arrays = {k: np.asarray(x) for k, x in zip(self.keys, self.values())}
        arrays.update({f"engine/{k}": np.asarray(x) for k, x in self.state.items()})
        meta = {"backend": "jax", "family": self.cfg.family, "step": step,
                "paths": {k: v.path for k, v in zip(self.keys, self.variables)}}
        checkpoints.write_npz(self.directory / f"ckpt-{step}{checkpoints.NPZ}", arrays, meta)
        for old in checkpoints.listed(self.directory)[:-self.keep]:
            Path(old).unlink(missing_ok=True)

    def fixed_latents(self, n: int) -> jax.Array:
        """The same latent batch for every sample grid of a run (its own seed stream)."""
        return grid_latents(self.family, generator(self.cfg.train.seed + GRID_SEED), n)

    def checkpoint_bytes(self) -> int:
        return sum(x.size * x.dtype.itemsize for x in self.values())

    def weights_finite(self) -> bool:
        return all(bool(jnp.all(jnp.isfinite(x))) for x in self.values()
                   if jnp.issubdtype(x.dtype, jnp.floating))

    @property
    def export_suffix(self) -> str:
        return checkpoints.NPZ if self.family.export_needs_tensorflow else \
            self.family.export_suffix

    def export(self, path: Path) -> None:
        """The family's export; where that needs TensorFlow (a SavedModel), the sampling
        networks' weights as an archive of the checkpoints' format instead."""
        if not self.family.export_needs_tensorflow:
            export_replacing(path, common.with_settings(self.family.export, self.cfg))
            return
        named = checkpoints.variables_of(self.family.sampler_objects())
        export_replacing(path, lambda tmp: checkpoints.write_npz(
            tmp, {k: np.asarray(v.value) for k, v in named.items()},
            {"backend": "jax", "family": self.cfg.family,
             "paths": {k: v.path for k, v in named.items()}}))
