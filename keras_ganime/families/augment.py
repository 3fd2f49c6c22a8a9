"""Differentiable augmentation of every image a discriminator sees (DiffAugment, Zhao et al.
2020; the probability `p` of each operation as in StyleGAN2-ADA, Karras et al. 2020), written
once in Keras ops for every family and both engines.

Images are in [-1, 1], channels last. The operations and their published parameters:
    brightness   x + b,                 b ~ U(-0.5, 0.5)
    saturation   (x - m_c) s + m_c,     s ~ U(0, 2), m_c the pixel's mean over its channels
    contrast     (x - m) c + m,         c ~ U(0.5, 1.5), m the image's mean
    translation  x moved by up to 1/8 of its side each way (whole pixels), zeros where it
                 leaves the image
    cutout       one square of half the side set to 0, its centre anywhere in the image
`color` is the first three, in that order, then `translation`, then `cutout`, as DiffAugment
composes them. Each operation applies to an image with probability p, each image with draws
of its own: the draws are uniforms from the engine's generator (`draw`), so that a resumed run
and a run over replicas draw what one run on one device draws. Translation and cutout are
products with 0/1 matrices and masks, so every output pixel is exactly an input pixel or 0, and
gradients flow to the images through every operation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import keras
from keras import ops

from keras_ganime.settings import AUGMENT_P as P
from keras_ganime.settings import AUGMENT_POLICIES as POLICIES

Tensor = Any

# Per image and operation: the uniforms its parameters take, and one that decides (< p) whether
# it applies. Translation's two are its rows' and columns' shift, cutout's its centre's.
OPERATIONS = {"color": ("brightness", "saturation", "contrast"),
              "translation": ("translation",), "cutout": ("cutout",)}
PARAMETERS = {"brightness": 1, "saturation": 1, "contrast": 1, "translation": 2, "cutout": 2}
SIGN = "augment_sign"  # a step's mean sign of D's logits on the reals (adaptive)
TRANSLATION = 1 / 8  # of the side, each way
CUTOUT = 1 / 2  # the square's side, of the image's


def operations(policy: tuple[str, ...]) -> tuple[str, ...]:
    """The operations of a policy, in the order they apply."""
    return tuple(op for name in POLICIES if name in policy for op in OPERATIONS[name])


def draw(rng: Any, n: int, policy: tuple[str, ...]) -> dict[str, Tensor]:
    """The uniforms of `n` images' augmentation: per operation, (n, parameters + 1), the last
    column deciding whether it applies."""
    return {op: rng.uniform([n, PARAMETERS[op] + 1]) for op in operations(policy)}


def _shift_matrices(u: Tensor, size: int, dtype: str) -> Tensor:
    """(n, size, size) 0/1 matrices M with (M x)[i] = x[i + t], 0 outside the image, for the
    shifts t = floor(u (2 s + 1)) - s, s the largest shift."""
    most = int(size * TRANSLATION + 0.5)
    t = ops.cast(ops.floor(u * (2 * most + 1)), "int32") - most
    rows = ops.arange(size, dtype="int32")
    wanted = rows[None, :, None] + t[:, None, None]
    return ops.cast(ops.equal(wanted, rows[None, None, :]), dtype)


def _cutout_mask(u: Tensor, size: int, dtype: str) -> Tensor:
    """(n, size, size, 1): 0 on each image's square, 1 elsewhere. Its corner is the centre,
    floor(u (size + 1 - side % 2)), less half the side; the square is clipped to the image."""
    side = int(size * CUTOUT + 0.5)
    centre = ops.cast(ops.floor(u * (size + 1 - side % 2)), "int32")
    first = centre - side // 2
    pixels = ops.arange(size, dtype="int32")
    inside = [(pixels[None, :] >= first[:, k:k + 1]) & (pixels[None, :] < first[:, k:k + 1] + side)
              for k in range(2)]
    square = inside[0][:, :, None] & inside[1][:, None, :]
    return ops.cast(ops.logical_not(square), dtype)[..., None]


def _apply_one(op: str, x: Tensor, u: Tensor) -> Tensor:
    """One operation on every image, at its parameters' uniforms u (n, parameters)."""
    dtype = x.dtype
    if op == "brightness":
        return x + ops.cast(u[:, 0] - 0.5, dtype)[:, None, None, None]
    if op == "saturation":
        mean = ops.mean(x, axis=3, keepdims=True)
        return (x - mean) * ops.cast(u[:, 0] * 2.0, dtype)[:, None, None, None] + mean
    if op == "contrast":
        mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
        return (x - mean) * ops.cast(u[:, 0] + 0.5, dtype)[:, None, None, None] + mean
    size = x.shape[1]
    if op == "translation":
        rows, cols = (_shift_matrices(u[:, k], size, dtype) for k in range(2))
        x = ops.einsum("nij,njwc->niwc", rows, x)
        return ops.einsum("nkw,niwc->nikc", cols, x)
    if op == "cutout":
        return x * _cutout_mask(u, size, dtype)
    raise ValueError(f"unknown augmentation {op!r}")


def augment(images: Tensor, draws: dict[str, Tensor], p: Tensor | float) -> Tensor:
    """The images with each operation of `draws` applied where its last uniform is below p
    (p = 0: the images themselves, bit for bit)."""
    x = images
    for op, u in draws.items():
        applies = ops.reshape(u[:, -1] < p, (-1, 1, 1, 1))
        x = ops.where(applies, _apply_one(op, x, u[:, :-1]), x)
    return x


class Augmenter:
    """A family's augmentation, by the role of the images in its step (D's reals, D's fakes,
    G's fakes...): the draws of each role under keys of their own in the step's draws, and the
    images of a role augmented with them. Without a policy it draws nothing and returns the
    images themselves, so that a run without augmentation draws and computes what it always
    did.

    Adaptive (StyleGAN2-ADA's rule): p is a variable of the run, checkpointed; each step adds
    the sign of D's logit on the reals, averaged over the batch (`sign`, an output of the phase
    where D sees them), and every `interval` steps p moves by batch x interval / speed_images
    towards more augmentation where the mean of those signs, r_t, is above the target (D too
    sure of the reals), towards less where below, within [0, 1]."""

    def __init__(self, cfg: Any, batch_size: int) -> None:
        self.cfg = cfg
        self.policy = cfg.policies()
        self.adaptive = cfg.adaptive
        self.p: Any = cfg.p
        if self.adaptive:
            self.p = keras.Variable(cfg.p, trainable=False, name="augment_p",
                                    aggregation="only_first_replica")
            # The interval's sum of signs and its count of steps.
            self.signs = keras.Variable([0.0, 0.0], trainable=False, name="augment_signs",
                                        aggregation="only_first_replica")
            self.adjustment = batch_size * cfg.interval / cfg.speed_images

    def draw(self, rng: Any, n: int, roles: tuple[str, ...]) -> dict[str, Tensor]:
        """Each role's uniforms (`draw`), drawn after everything else the family draws."""
        if not self.policy:
            return {}
        return {f"augment_{role}_{op}": u for role in roles
                for op, u in draw(rng, n, self.policy).items()}

    def __call__(self, images: Tensor, draws: Mapping[str, Tensor], role: str) -> Tensor:
        if not self.policy:
            return images
        prefix = f"augment_{role}_"
        mine = {op: draws[prefix + op] for op in operations(self.policy)}
        return augment(images, mine, ops.cast(self.p, "float32"))

    # --- the adaptive p ---
    @property
    def outputs(self) -> tuple[str, ...]:
        """What the phase where D sees the reals adds to its outputs."""
        return (SIGN,) if self.adaptive else ()

    @property
    def after_outputs(self) -> tuple[str, ...]:
        return (P,) if self.adaptive else ()

    def sign(self, real_logits: Tensor) -> dict[str, Tensor]:
        """The phase's output: the batch's mean sign of D's logits on the reals."""
        if not self.adaptive:
            return {}
        return {SIGN: ops.mean(ops.sign(ops.cast(real_logits, "float32")))}

    def after_step(self, values: Mapping[str, Tensor]) -> dict[str, Tensor]:
        if not self.adaptive:
            return {}
        signs = self.signs + ops.stack([values[SIGN], 1.0])
        due = signs[1] >= self.cfg.interval
        moved = ops.sign(signs[0] / signs[1] - self.cfg.target) * self.adjustment
        p = ops.convert_to_tensor(self.p)
        self.p.assign(ops.where(due, ops.clip(p + moved, 0.0, 1.0), p))
        self.signs.assign(ops.where(due, ops.zeros_like(signs), signs))
        return {P: ops.convert_to_tensor(self.p)}

    def checkpoint_objects(self) -> dict[str, Any]:
        return {"augment_p": self.p, "augment_signs": self.signs} if self.adaptive else {}
