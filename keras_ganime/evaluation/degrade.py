"""Disturbances of uint8 (N, H, W, 3) images at a strength in [0, 1], deterministic for a seed.

They play two parts: the "degraded" class that the anime encoder learns to tell from real faces
(`encoder.py`: blur, noise, patches, checkerboard), and the disturbances of the metric sanity
checks (`sanity.py`: all five), after Heusel et al. (2017), whose FID had to rise with each.

Strength 0 returns the images unchanged; 1 is the strongest setting:
    blur          Gaussian blur, sigma = 3 px * strength (reflected edges)
    noise         additive Gaussian noise, std = 64 * strength (of 255), clipped
    patches       a grid of 8x8-pixel patches; a fraction `strength` of each image's patches are
                  chosen at random and moved one place along a cycle among themselves
    checkerboard  a (-1)^(i+j) pattern of amplitude 48 * strength added, clipped: the
                  period-2 artifact of stride-2 transposed convolutions
    synthetic     a fraction `strength` of the images (chosen at random) replaced by the
                  built-in synthetic faces (`draw_faces`), as the FID paper's "ImageNet
                  contamination"; replacement rather than an alpha blend, so every image in the
                  set stays a clean face of one kind or the other, as a generator's output would
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from keras_ganime.data.synthetic import draw_faces

__all__ = ["DISTURBANCES", "ENCODER_DISTURBANCES", "degrade"]

MAX_SIGMA = 3.0
MAX_NOISE_STD = 64.0
PATCH = 8
MAX_CHECKER = 48.0
# Rows per block of the blur: bounds the float32 temporaries for sets of thousands of images.
_CHUNK = 512


def _check(images: np.ndarray, strength: float) -> tuple[np.ndarray, float]:
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (N, H, W, 3), got {images.dtype} {images.shape}")
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength}")
    return images, float(strength)


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def blur(images: np.ndarray, strength: float, seed: int = 0) -> np.ndarray:
    """Gaussian blur with sigma = 3 px * strength; `seed` is unused (kept for one signature)."""
    images, strength = _check(images, strength)
    sigma = MAX_SIGMA * strength
    if sigma == 0.0:
        return images.copy()
    radius = max(1, int(np.ceil(3.0 * sigma)))
    taps = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2).astype(np.float32)
    taps /= taps.sum()
    out = np.empty_like(images)
    for start in range(0, len(images), _CHUNK):
        x = images[start:start + _CHUNK].astype(np.float32)
        for axis in (1, 2):
            pad = [(0, 0)] * 4
            pad[axis] = (radius, radius)
            padded = np.pad(x, pad, mode="reflect")
            size = x.shape[axis]
            x = sum(t * np.take(padded, np.arange(k, k + size), axis=axis)
                    for k, t in enumerate(taps))
        out[start:start + _CHUNK] = _to_uint8(x)
    return out


def noise(images: np.ndarray, strength: float, seed: int = 0) -> np.ndarray:
    """Additive Gaussian noise of std 64 * strength (uint8 units), clipped to [0, 255]."""
    images, strength = _check(images, strength)
    if strength == 0.0:
        return images.copy()
    rng = np.random.default_rng(seed)
    return _to_uint8(images + rng.normal(0.0, MAX_NOISE_STD * strength, images.shape))


def patches(images: np.ndarray, strength: float, seed: int = 0) -> np.ndarray:
    """Move a fraction `strength` of each image's 8x8 patches one place along a random cycle.

    A cycle rather than a random permutation, so that every chosen patch leaves its place and
    the number of displaced patches is exactly the fraction asked for.
    """
    images, strength = _check(images, strength)
    n, h, w, c = images.shape
    if h % PATCH or w % PATCH:
        raise ValueError(f"patches needs H and W multiples of {PATCH}, got {h}x{w}")
    gh, gw = h // PATCH, w // PATCH
    count = round(strength * gh * gw)
    out = images.copy()
    if count < 2:
        return out
    grid = out.reshape(n, gh, PATCH, gw, PATCH, c).transpose(0, 1, 3, 2, 4, 5)
    grid = grid.reshape(n, gh * gw, PATCH, PATCH, c)
    rng = np.random.default_rng(seed)
    for i in range(n):
        chosen = rng.choice(gh * gw, count, replace=False)
        grid[i, chosen] = grid[i, np.roll(chosen, 1)]
    return grid.reshape(n, gh, gw, PATCH, PATCH, c).transpose(0, 1, 3, 2, 4, 5).reshape(
        images.shape)


def checkerboard(images: np.ndarray, strength: float, seed: int = 0) -> np.ndarray:
    """Add +-48 * strength in a (-1)^(i+j) pattern; `seed` is unused (kept for one signature)."""
    images, strength = _check(images, strength)
    h, w = images.shape[1:3]
    sign = np.where((np.arange(h)[:, None] + np.arange(w)[None, :]) % 2 == 0, 1.0, -1.0)
    return _to_uint8(images + (MAX_CHECKER * strength) * sign[None, :, :, None])


def synthetic(images: np.ndarray, strength: float, seed: int = 0) -> np.ndarray:
    """Replace a random fraction `strength` of the images by synthetic faces of the same size."""
    images, strength = _check(images, strength)
    n, h, w = images.shape[:3]
    if h != w:
        raise ValueError(f"synthetic needs square images, got {h}x{w}")
    count = round(strength * n)
    out = images.copy()
    if count:
        rng = np.random.default_rng(seed)
        chosen = rng.choice(n, count, replace=False)
        out[chosen] = draw_faces(count, size=h, seed=seed)[0]
    return out


DISTURBANCES: dict[str, Callable[[np.ndarray, float, int], np.ndarray]] = {
    "blur": blur,
    "noise": noise,
    "patches": patches,
    "checkerboard": checkerboard,
    "synthetic": synthetic,
}
# The synthetic faces stay out of the encoder's "degraded" class, so that telling them from
# real faces (a test, and the point of FID) is not something it was trained to do.
ENCODER_DISTURBANCES: tuple[str, ...] = ("blur", "noise", "patches", "checkerboard")


def degrade(images: np.ndarray, kind: str, strength: float, seed: int = 0) -> np.ndarray:
    """`images` disturbed by `kind` (a key of DISTURBANCES) at `strength` in [0, 1]."""
    if kind not in DISTURBANCES:
        raise ValueError(f"unknown disturbance {kind!r}; choose from {', '.join(DISTURBANCES)}")
    return DISTURBANCES[kind](images, float(strength), seed)
