"""Offline GAN-quality metrics: the maths only, apart from any feature extractor.

As pytorch-fid keeps ``calculate_frechet_distance`` apart from its Inception code, every
function here takes plain arrays (features or uint8 images), so that each can be checked
against hand-computed values and any encoder can feed it.

* :func:`frechet_distance` / :func:`fid`: Fréchet distance between Gaussian fits.
* :func:`kid`: unbiased MMD² with the cubic polynomial kernel, over random subsets.
* :func:`swd`: ProGAN's sliced Wasserstein distance on Laplacian-pyramid patches.
* :func:`real_fake_scores`: mean discriminator output on reals and on fakes.
* :func:`duplicate_rate`: a mode-collapse rate from nearest-neighbour distances.
* :func:`checkerboard_score`: spectral energy at Nyquist relative to its neighbourhood.

Only numpy is used: SciPy is not a dependency of the project.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = [
    "checkerboard_score",
    "duplicate_rate",
    "fid",
    "frechet_distance",
    "kid",
    "laplacian_pyramid",
    "real_fake_scores",
    "reconstruct_laplacian_pyramid",
    "swd",
]

# Relative size (to the largest eigenvalue) below which a negative eigenvalue of a
# covariance or of the product is taken as round-off; a larger one means an input that is
# not a covariance, which would make the matrix square root complex.
_NEGATIVE_EIGEN_RTOL = 1e-6

# Rows per block when computing pairwise distances or spectra, so memory stays bounded
# for sets of tens of thousands of samples.
_CHUNK = 512


def _features(x: np.ndarray, name: str) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"{name} must be a 2-D (N, D) array with N >= 2, got shape {x.shape}")
    return x


def _psd_eigvalsh(matrix: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Eigen-decompose a symmetric PSD matrix, setting round-off eigenvalues to exactly zero."""
    if not np.allclose(matrix, matrix.T, rtol=1e-6, atol=1e-12):
        raise ValueError(f"{name} must be symmetric")
    values, vectors = np.linalg.eigh(matrix)
    largest = np.abs(values).max()
    if values.min() < -_NEGATIVE_EIGEN_RTOL * largest:
        raise ValueError(f"{name} is not positive semi-definite "
                         f"(eigenvalue {values.min():.3g}); its square root would be complex")
    # Eigenvalues within round-off of zero (the rank tolerance of np.linalg.matrix_rank)
    # are exactly zero: their square roots would otherwise turn 1e-16 into 1e-8 errors.
    negligible = np.abs(values) <= matrix.shape[0] * np.finfo(np.float64).eps * largest
    return np.where(negligible, 0.0, values), vectors


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray,
                     mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2).

    ``d² = ||mu1 - mu2||² + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^½)``.

    ``Tr (S1 S2)^½`` is the sum of the square roots of the eigenvalues of ``S1 S2``, which
    are those of the symmetric PSD matrix ``S1^½ S2 S1^½``. Working with that symmetric
    form (``eigh`` twice) replaces pytorch-fid's ``scipy.linalg.sqrtm`` of the
    non-symmetric product: its eigenvalues are real by construction, and a singular
    covariance (fewer samples than dimensions) needs no ``eps * I`` offset because a zero
    eigenvalue simply has root zero. Round-off negatives (pytorch-fid's "negligible
    imaginary part") are clipped; a non-negligible one raises :class:`ValueError`.
    """
    mu1 = np.atleast_1d(np.asarray(mu1, dtype=np.float64))
    mu2 = np.atleast_1d(np.asarray(mu2, dtype=np.float64))
    sigma1 = np.atleast_2d(np.asarray(sigma1, dtype=np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, dtype=np.float64))
    dim = mu1.shape[0]
    if mu1.shape != (dim,) or mu2.shape != (dim,):
        raise ValueError(f"means must be vectors of the same length, got {mu1.shape}, {mu2.shape}")
    if sigma1.shape != (dim, dim) or sigma2.shape != (dim, dim):
        raise ValueError(f"covariances must be ({dim}, {dim}), got {sigma1.shape}, {sigma2.shape}")

    values1, vectors1 = _psd_eigvalsh(sigma1, "sigma1")
    sqrt_sigma1 = (vectors1 * np.sqrt(values1)) @ vectors1.T
    _psd_eigvalsh(sigma2, "sigma2")
    product = sqrt_sigma1 @ sigma2 @ sqrt_sigma1
    product_values, _ = _psd_eigvalsh((product + product.T) / 2, "sigma1^½ sigma2 sigma1^½")
    tr_covmean = np.sqrt(product_values).sum()

    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean)


def fid(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two (N, D) feature sets.

    Covariances are unbiased (``ddof=1``), as in pytorch-fid. The value depends on the
    feature extractor; name the metric after it (``fid_anime``, ``fid_inception``).
    """
    a = _features(features_a, "features_a")
    b = _features(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sizes differ: {a.shape[1]} != {b.shape[1]}")
    return frechet_distance(a.mean(axis=0), np.cov(a, rowvar=False, ddof=1),
                            b.mean(axis=0), np.cov(b, rowvar=False, ddof=1))


def _polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    dim = x.shape[1]
    k_xx = (x @ x.T / dim + 1.0) ** 3
    k_yy = (y @ y.T / dim + 1.0) ** 3
    k_xy = (x @ y.T / dim + 1.0) ** 3
    m = x.shape[0]
    # Unbiased: within-set sums leave out the i == j terms; the cross term keeps them
    # because x_i and y_i are independent draws.
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2.0 * k_xy.sum() / (m * m))


def kid(features_a: np.ndarray, features_b: np.ndarray, subsets: int = 100,
        subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance (Bińkowski et al. 2018): ``(mean, std)`` over subsets.

    Each subset draws ``subset_size`` rows without replacement from each set and computes
    the unbiased MMD² with the kernel ``k(x, y) = (x·y / D + 1)³``. ``subset_size`` is
    capped at the smaller set's size, so small sets still give an unbiased estimate (the
    subsets then overlap more and the std shrinks). Being unbiased, the mean can be
    slightly negative when the two distributions are equal.
    """
    a = _features(features_a, "features_a")
    b = _features(features_b, "features_b")
    if a.shape[1] != b.shape[1]:
        raise ValueError(f"feature sizes differ: {a.shape[1]} != {b.shape[1]}")
    if subsets < 1 or subset_size < 2:
        raise ValueError("need subsets >= 1 and subset_size >= 2")
    m = min(subset_size, a.shape[0], b.shape[0])
    rng = np.random.default_rng(seed)
    mmds = np.array([
        _polynomial_mmd2(a[rng.choice(a.shape[0], m, replace=False)],
                         b[rng.choice(b.shape[0], m, replace=False)])
        for _ in range(subsets)
    ])
    return float(mmds.mean()), float(mmds.std())


# Binomial 5-tap filter of cv2.pyrDown / pyrUp, as ProGAN's sliced_wasserstein.py uses.
_BINOMIAL_5 = np.array([1.0, 4.0, 6.0, 4.0, 1.0], dtype=np.float32) / 16.0


def _blur(images: np.ndarray, gain: float = 1.0) -> np.ndarray:
    # Separable 5x5 binomial over (H, W) of (N, H, W, C); "reflect" padding is
    # scipy.ndimage's "mirror" mode, the one ProGAN uses.
    taps = _BINOMIAL_5 * gain
    out = images
    for axis in (1, 2):
        pad = [(0, 0)] * out.ndim
        pad[axis] = (2, 2)
        padded = np.pad(out, pad, mode="reflect")
        size = out.shape[axis]
        out = sum(t * np.take(padded, np.arange(k, k + size), axis=axis)
                  for k, t in enumerate(taps))
    return out.astype(np.float32)


def _pyr_down(images: np.ndarray) -> np.ndarray:
    return _blur(images)[:, ::2, ::2]


def _pyr_up(images: np.ndarray) -> np.ndarray:
    n, h, w, c = images.shape
    up = np.zeros((n, 2 * h, 2 * w, c), dtype=np.float32)
    up[:, ::2, ::2] = images
    # Zero insertion keeps a quarter of the samples: gain 2 per axis restores brightness.
    return _blur(up, gain=2.0)


def laplacian_pyramid(images: np.ndarray, levels: int) -> list[np.ndarray]:
    """Laplacian pyramid of (N, H, W, C) images, finest level first, as float32.

    Level ``k`` has shape ``(N, H / 2^k, W / 2^k, C)``. Every level but the last is the
    band-pass ``g_k - up(g_{k+1})`` with ``g_{k+1} = down(g_k)``; the last is the low-pass
    ``g_{levels-1}``. :func:`reconstruct_laplacian_pyramid` inverts it exactly.
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be (N, H, W, C), got shape {images.shape}")
    if levels < 1:
        raise ValueError(f"levels must be >= 1, got {levels}")
    scale = 2 ** (levels - 1)
    if images.shape[1] % scale or images.shape[2] % scale:
        raise ValueError(f"H and W must be multiples of {scale} for {levels} levels, "
                         f"got {images.shape[1:3]}")
    pyramid = [images.astype(np.float32)]
    for _ in range(levels - 1):
        pyramid.append(_pyr_down(pyramid[-1]))
        pyramid[-2] = pyramid[-2] - _pyr_up(pyramid[-1])
    return pyramid


def reconstruct_laplacian_pyramid(pyramid: list[np.ndarray]) -> np.ndarray:
    """Inverse of :func:`laplacian_pyramid` (float32 images)."""
    images = pyramid[-1]
    for level in pyramid[-2::-1]:
        images = _pyr_up(images) + level
    return images


def _pyramid_patches(images: np.ndarray, levels: int, count: int, patch_size: int,
                     rng: np.random.Generator) -> list[np.ndarray]:
    """``count`` random patches (count, P, P, C) per pyramid level, normalised per channel."""
    n = images.shape[0]
    half = patch_size // 2
    # Patches are spread over the images as evenly as possible (each image gets
    # count // n or one more), as ProGAN takes the same number from every image.
    owner = np.resize(rng.permutation(n), count)
    offsets = np.arange(-half, half + 1)
    rows, cols = [], []
    for level in range(levels):
        h, w = images.shape[1] >> level, images.shape[2] >> level
        rows.append(rng.integers(half, h - half, count)[:, None, None] + offsets[:, None])
        cols.append(rng.integers(half, w - half, count)[:, None, None] + offsets[None, :])
    patches = [np.empty((count, patch_size, patch_size, images.shape[3]), np.float32)
               for _ in range(levels)]
    for start in range(0, n, _CHUNK):
        pyramid = laplacian_pyramid(images[start:start + _CHUNK], levels)
        chosen = np.flatnonzero((owner >= start) & (owner < start + _CHUNK))
        local = (owner[chosen] - start)[:, None, None]
        for level, band in enumerate(pyramid):
            patches[level][chosen] = band[local, rows[level][chosen], cols[level][chosen]]
    for desc in patches:
        desc -= desc.mean(axis=(0, 1, 2))
        std = desc.std(axis=(0, 1, 2))
        # A channel that is flat over the whole set (e.g. the band-pass of constant images)
        # has nothing to normalise; leave it at zero rather than divide by zero.
        desc /= np.where(std > 0, std, 1.0)
    return [p.reshape(count, -1) for p in patches]


def swd_patch_count(n_a: int, n_b: int, patches_per_image: int = 128,
                    max_patches: int = 65536) -> int:
    """The patches `swd` takes per level from each set of n_a and n_b images: its figures are
    comparable only at equal counts (its noise floor falls as the count grows)."""
    return min(patches_per_image * min(n_a, n_b), max_patches)


def swd(images_a: np.ndarray, images_b: np.ndarray, levels: int | None = None,
        patches_per_image: int = 128, max_patches: int = 65536, patch_size: int = 7,
        directions: int = 128, repeats: int = 4, seed: int = 0) -> dict[str, float]:
    """Sliced Wasserstein distance on Laplacian-pyramid patches (Karras et al. 2018), x1e3.

    Follows ProGAN's ``metrics/sliced_wasserstein.py``:

    * ``levels`` pyramid levels; by default one per resolution from the image size down
      to 16 (3 levels for 64x64 images).
    * From each set, ``min(patches_per_image * min(N_a, N_b), max_patches)`` random
      ``patch_size`` x ``patch_size`` patches per level, spread evenly over the images
      (the cap bounds memory: 65536 patches of 7x7x3 floats are 38 MB per level per set).
    * Each set's patches are normalised per channel by that set's own mean and std over
      all its patches and pixels, so the distance compares local structure, not global
      colour or contrast.
    * ``repeats`` times, ``directions`` random unit directions (ProGAN: 4 x 128); the
      projections of both sets are sorted and the mean ``|difference|`` is the 1-D
      Wasserstein-1 distance, averaged over directions and repeats.

    Returns ``{"swd_<resolution>": ..., "swd_mean": ...}``, each multiplied by 1e3 as
    ProGAN reports them. The two sets get independent patch samples, so identical sets
    give a small positive value (the sampling noise), not zero. Deterministic for a seed.
    """
    a = np.asarray(images_a)
    b = np.asarray(images_b)
    if a.ndim != 4 or a.shape[1:] != b.shape[1:]:
        raise ValueError(f"image sets must be (N, H, W, C) of the same size, "
                         f"got {a.shape} and {b.shape}")
    size = min(a.shape[1:3])
    if levels is None:
        levels = int(math.log2(size / 16)) + 1 if size >= 16 else 1
    if (size >> (levels - 1)) < patch_size:
        raise ValueError(f"level {levels - 1} is smaller than a {patch_size}x{patch_size} patch")
    count = swd_patch_count(a.shape[0], b.shape[0], patches_per_image, max_patches)
    rng_a, rng_b, rng_dirs = (np.random.default_rng(s)
                              for s in np.random.SeedSequence(seed).spawn(3))
    desc_a = _pyramid_patches(a, levels, count, patch_size, rng_a)
    desc_b = _pyramid_patches(b, levels, count, patch_size, rng_b)

    result: dict[str, float] = {}
    for level, (da, db) in enumerate(zip(desc_a, desc_b, strict=True)):
        dists = []
        for _ in range(repeats):
            dirs = rng_dirs.standard_normal((da.shape[1], directions)).astype(np.float32)
            dirs /= np.linalg.norm(dirs, axis=0, keepdims=True)
            proj_a = np.sort(da @ dirs, axis=0)
            proj_b = np.sort(db @ dirs, axis=0)
            dists.append(np.abs(proj_a - proj_b).mean())
        result[f"swd_{a.shape[1] >> level}"] = float(np.mean(dists)) * 1e3
    result["swd_mean"] = float(np.mean(list(result.values())))
    return result


def real_fake_scores(p_real: np.ndarray, p_fake: np.ndarray) -> tuple[float, float]:
    """Mean discriminator output (a probability) on real and on generated images.

    Near (0.5, 0.5) when D cannot tell them apart; near (1, 0) when D wins outright.
    Logits are rejected: their mean is a different quantity.
    """
    scores = []
    for name, p in (("p_real", p_real), ("p_fake", p_fake)):
        p = np.asarray(p, dtype=np.float64).ravel()
        if p.size == 0 or p.min() < 0.0 or p.max() > 1.0:
            raise ValueError(f"{name} must be non-empty probabilities in [0, 1]")
        scores.append(float(p.mean()))
    return scores[0], scores[1]


def _nearest_distance(x: np.ndarray, y: np.ndarray, other: bool = False) -> np.ndarray:
    """Euclidean distance from each row of ``x`` to its nearest row of ``y``; ``other``: ``y``
    is ``x`` and a row's nearest is another row."""
    y_sq = np.einsum("ij,ij->i", y, y)
    nearest = np.empty(x.shape[0])
    for start in range(0, x.shape[0], _CHUNK):
        block = x[start:start + _CHUNK]
        sq = np.einsum("ij,ij->i", block, block)[:, None] + y_sq[None, :] - 2.0 * block @ y.T
        if other:
            sq[np.arange(block.shape[0]), np.arange(start, start + block.shape[0])] = np.inf
        nearest[start:start + _CHUNK] = np.sqrt(np.clip(sq.min(axis=1), 0.0, None))
    return nearest


def copy_rate(features_fake: np.ndarray, features_train: np.ndarray,
              features_held_out: np.ndarray, percentile: float = 1.0) -> float:
    """Fraction of generated samples nearer to a training sample than unseen reals come.

    Definition: for every sample, the Euclidean distance in feature space to its nearest
    training sample. The threshold ``t`` is the ``percentile``-th percentile (in percent) of
    those distances among the held-out reals, faces of the same kind the model never saw. The
    rate is the fraction of fakes whose distance is strictly below ``t``.

    About ``percentile / 100`` (0.01 by default) for a generator that comes no nearer to its
    training set than new faces do; near 1 for one that reproduces its training images. Unlike
    ``duplicate_rate`` (fakes against fakes: collapse), this measures memorisation. A distance
    to a set does not depend on how many samples ask it, so the two sets need not be equal.
    """
    fake = _features(features_fake, "features_fake")
    train = _features(features_train, "features_train")
    held_out = _features(features_held_out, "features_held_out")
    if not fake.shape[1] == train.shape[1] == held_out.shape[1]:
        raise ValueError(f"feature sizes differ: {fake.shape[1]}, {train.shape[1]}, "
                         f"{held_out.shape[1]}")
    if not 0.0 <= percentile <= 100.0:
        raise ValueError(f"percentile must be in [0, 100], got {percentile}")
    threshold = np.percentile(_nearest_distance(held_out, train), percentile)
    return float(np.mean(_nearest_distance(fake, train) < threshold))


def zero_marks(images: np.ndarray, tol: float = 4.0, band: int = 2,
               square: int | None = None) -> float:
    """Fraction of uint8 (N, H, W, C) images that carry the marks of the augmentation's zeros.

    Translation pads with zeros and cutout sets a square to zero; 0 in [-1, 1] is 127.5 in
    uint8. An image is marked when a whole border band ``band`` pixels deep, on any side, or a
    ``square`` x ``square`` window (H/8 by default: cutout's square is H/2) lies within ``tol``
    of 127.5 in every channel. A generator that learnt the augmentation instead of the faces
    leaves such marks in its samples (a leak); faces rarely hold a flat mid-grey patch.
    """
    x = np.asarray(images)
    if x.dtype != np.uint8 or x.ndim != 4 or min(x.shape[1:3]) < 2 * band:
        raise ValueError(f"images must be uint8 (N, H, W, C) of at least {2 * band} pixels a "
                         f"side, got {x.dtype} {x.shape}")
    if band < 1 or (square is not None and square < 1):
        raise ValueError(f"band and square must be at least 1, got {band}, {square}")
    grey = np.all(np.abs(x.astype(np.float64) - 127.5) <= tol, axis=-1)  # (N, H, W)
    marked = (grey[:, :band].all(axis=(1, 2)) | grey[:, -band:].all(axis=(1, 2))
              | grey[:, :, :band].all(axis=(1, 2)) | grey[:, :, -band:].all(axis=(1, 2)))
    k = max(1, x.shape[1] // 8) if square is None else square
    # Grey pixels in every k x k window from a summed-area table: a window is all grey when
    # its count is k * k.
    table = np.pad(grey.astype(np.int32).cumsum(1).cumsum(2), ((0, 0), (1, 0), (1, 0)))
    counts = table[:, k:, k:] - table[:, :-k, k:] - table[:, k:, :-k] + table[:, :-k, :-k]
    marked |= (counts == k * k).any(axis=(1, 2))
    return float(marked.mean())


def duplicate_rate(features_fake: np.ndarray, features_real: np.ndarray,
                   percentile: float = 1.0, seed: int = 0) -> float:
    """Fraction of generated samples that are near-duplicates of another generated sample.

    Definition: let ``n = min(N_fake, N_real)`` and draw ``n`` rows from each set without
    replacement (nearest-neighbour distances shrink as a set grows, so both sets must
    have the same size for the comparison to be fair). For every sample take the
    Euclidean distance, in feature space, to its nearest *other* sample of the same set.
    The threshold ``t`` is the ``percentile``-th percentile (in percent) of those
    distances among the reals. The rate is the fraction of fakes whose distance is
    strictly below ``t``.

    When fakes are distributed like the reals the rate is about ``percentile / 100``
    (0.01 by default); a generator collapsed onto a few modes gives a rate near 1.
    """
    fake = _features(features_fake, "features_fake")
    real = _features(features_real, "features_real")
    if fake.shape[1] != real.shape[1]:
        raise ValueError(f"feature sizes differ: {fake.shape[1]} != {real.shape[1]}")
    if not 0.0 <= percentile <= 100.0:
        raise ValueError(f"percentile must be in [0, 100], got {percentile}")
    n = min(fake.shape[0], real.shape[0])
    rng = np.random.default_rng(seed)
    fake = fake[rng.choice(fake.shape[0], n, replace=False)]
    real = real[rng.choice(real.shape[0], n, replace=False)]
    threshold = np.percentile(_nearest_distance(real, real, other=True), percentile)
    return float(np.mean(_nearest_distance(fake, fake, other=True) < threshold))


def checkerboard_score(images: np.ndarray) -> float:
    """Spectral energy at the Nyquist frequencies relative to the adjacent frequencies.

    Definition, for (N, H, W, C) images with even H, W >= 4: ``P(u, v)`` is the power
    ``|FFT2(x)|²`` over (H, W) of every image and channel separately, averaged over images
    and channels. The Nyquist set is ``{(u, v): u = H/2 or v = W/2}`` (the Nyquist row,
    the Nyquist column and, in both, the corner ``(H/2, W/2)``). The neighbourhood is
    ``{(u, v): u = H/2 ± 1 or v = W/2 ± 1}`` minus the Nyquist set. The score is the mean
    of ``P`` over the Nyquist set divided by its mean over the neighbourhood.

    A (-1)^(i+j) pattern puts all its energy at the corner and a period-2 pattern
    modulated by image content spreads it along the Nyquist lines: both are what
    stride-2 transposed convolutions leave. White noise scores 1; smooth images, whose
    spectrum falls with frequency, score about 1 or less; a score well above 1 is a
    Nyquist spike. The mean (DC) lies in neither set, so no mean removal is needed.
    """
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be (N, H, W, C), got shape {images.shape}")
    h, w = images.shape[1:3]
    if h % 2 or w % 2 or h < 4 or w < 4:
        raise ValueError(f"H and W must be even and >= 4, got {h}x{w}")
    power = np.zeros((h, w))
    for start in range(0, images.shape[0], _CHUNK):
        spectrum = np.fft.fft2(images[start:start + _CHUNK].astype(np.float64), axes=(1, 2))
        power += (np.abs(spectrum) ** 2).sum(axis=(0, 3))
    u = np.arange(h)[:, None]
    v = np.arange(w)[None, :]
    nyquist = (u == h // 2) | (v == w // 2)
    neighbours = ((np.abs(u - h // 2) == 1) | (np.abs(v - w // 2) == 1)) & ~nyquist
    # Sums of P (not means over images) cancel in the ratio, so no division by N * C.
    return float(power[nyquist].mean() / power[neighbours].mean())
