"""Tests for the GAN-quality metric maths (keras_ganime.evaluation.metrics), against
hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from keras_ganime.evaluation.metrics import (
    checkerboard_score,
    copy_rate,
    duplicate_rate,
    fid,
    frechet_distance,
    kid,
    laplacian_pyramid,
    real_fake_scores,
    reconstruct_laplacian_pyramid,
    swd,
    zero_marks,
)


def _smooth_images(n: int, size: int, seed: int) -> np.ndarray:
    """Low-pass random colour images, uint8 (n, size, size, 3)."""
    rng = np.random.default_rng(seed)
    x = np.kron(rng.standard_normal((n, size // 4, size // 4, 3)), np.ones((1, 4, 4, 1)))
    for _ in range(3):  # circular [1, 2, 1] / 4 blur, so the spectrum falls towards Nyquist
        for axis in (1, 2):
            x = (np.roll(x, 1, axis) + 2 * x + np.roll(x, -1, axis)) / 4
    return np.clip(np.round(128 + 25 * x), 0, 255).astype(np.uint8)


def _denman_beavers_sqrtm(a: np.ndarray, steps: int = 60) -> np.ndarray:
    # An algorithm independent of the eigen-decomposition the module uses.
    y, z = a.copy(), np.eye(a.shape[0])
    for _ in range(steps):
        y, z = (y + np.linalg.inv(z)) / 2, (z + np.linalg.inv(y)) / 2
    return y


# --- FID -----------------------------------------------------------------------------------

def test_fid_identical_sets_is_zero() -> None:
    a = np.random.default_rng(0).standard_normal((300, 16))
    assert abs(fid(a, a)) < 1e-8


def test_fid_hand_computed_1d_samples() -> None:
    # a: mean 1, unbiased var 2; b: mean 3, var 8 -> 2² + 2 + 8 - 2 * sqrt(16) = 6.
    assert fid(np.array([[0.0], [2.0]]), np.array([[1.0], [5.0]])) == pytest.approx(6.0, abs=1e-9)


def test_frechet_distance_diagonal_gaussians_closed_form() -> None:
    mu1, s1 = np.array([1.0, 2.0, 3.0]), np.array([1.0, 4.0, 9.0])
    mu2, s2 = np.array([0.0, 0.0, 1.0]), np.array([4.0, 1.0, 9.0])
    # (1 + 4 + 4) + (1 + 4 - 2*2) + (4 + 1 - 2*2) + (9 + 9 - 2*9) = 11
    expected = sum((m1 - m2) ** 2 + v1 + v2 - 2 * math.sqrt(v1 * v2)
                   for m1, m2, v1, v2 in zip(mu1, mu2, s1, s2, strict=True))
    assert expected == 11.0
    got = frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2))
    assert got == pytest.approx(11.0, abs=1e-6)


def test_frechet_distance_1d_scalars() -> None:
    # N(0, 1) vs N(3, 4): 9 + 1 + 4 - 2 * 2 = 10.
    assert frechet_distance(0.0, 1.0, 3.0, 4.0) == pytest.approx(10.0, abs=1e-9)


@pytest.mark.parametrize(
    ("sigma1", "sigma2", "expected"),
    [
        # S1 S2 = [[2, 3], [1, 6]] != S2 S1: tr 8, det 9, so Tr sqrt = sqrt(8 + 2*3).
        ([[2.0, 1.0], [1.0, 2.0]], [[1.0, 0.0], [0.0, 3.0]], 4.0 + 4.0 - 2 * math.sqrt(14.0)),
        # Singular S1 (rank 1): S1 S2 has eigenvalues 0 and 2, so Tr sqrt = sqrt(2).
        ([[1.0, 1.0], [1.0, 1.0]], [[1.0, 0.0], [0.0, 1.0]], 2.0 + 2.0 - 2 * math.sqrt(2.0)),
    ],
)
def test_frechet_distance_2x2_closed_form(sigma1: list, sigma2: list, expected: float) -> None:
    # For a 2x2 M with eigenvalues l1, l2 >= 0: Tr M^½ = sqrt(l1) + sqrt(l2)
    # = sqrt(tr M + 2 sqrt(det M)); the expected values above apply it by hand.
    got = frechet_distance([0.0, 0.0], np.array(sigma1), [0.0, 0.0], np.array(sigma2))
    assert got == pytest.approx(expected, abs=1e-6)


def test_frechet_distance_non_commuting_matches_independent_sqrtm() -> None:
    rng = np.random.default_rng(1)
    mu1, mu2 = rng.standard_normal(6), rng.standard_normal(6)
    a, b = rng.standard_normal((6, 6)), rng.standard_normal((6, 6))
    sigma1, sigma2 = a @ a.T + 0.5 * np.eye(6), b @ b.T + 0.5 * np.eye(6)
    assert not np.allclose(sigma1 @ sigma2, sigma2 @ sigma1)
    references = [_denman_beavers_sqrtm(sigma1 @ sigma2)]
    try:
        import scipy.linalg
    except ImportError:
        pass
    else:
        references.append(scipy.linalg.sqrtm(sigma1 @ sigma2).real)
    got = frechet_distance(mu1, sigma1, mu2, sigma2)
    for covmean in references:
        expected = (np.sum((mu1 - mu2) ** 2) + np.trace(sigma1) + np.trace(sigma2)
                    - 2 * np.trace(covmean))
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-6)


def test_fid_is_symmetric_and_handles_fewer_samples_than_dims() -> None:
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((200, 8)), 0.5 + 2 * rng.standard_normal((150, 8))
    assert fid(a, b) == pytest.approx(fid(b, a), rel=1e-9)
    assert fid(a, b) > 8 * 0.5**2  # at least the mean term
    small = rng.standard_normal((5, 20))  # rank-4 covariance in 20-D
    assert abs(fid(small, small)) < 1e-8
    assert fid(small, small + 1.0) == pytest.approx(20.0, abs=1e-6)


def test_frechet_distance_rejects_non_psd_covariance() -> None:
    with pytest.raises(ValueError, match="positive semi-definite"):
        frechet_distance([0.0, 0.0], np.diag([1.0, -1.0]), [0.0, 0.0], np.eye(2))
    with pytest.raises(ValueError, match="symmetric"):
        frechet_distance([0.0, 0.0], [[1.0, 0.5], [0.0, 1.0]], [0.0, 0.0], np.eye(2))


# --- KID -----------------------------------------------------------------------------------

def test_kid_hand_computed_three_vs_three() -> None:
    x = np.array([[0.0, 1.0], [1.0, 2.0], [-1.0, 0.5]])
    y = np.array([[2.0, 0.0], [0.5, -1.0], [1.0, 1.0]])

    def k(p: np.ndarray, q: np.ndarray) -> float:
        return (sum(pi * qi for pi, qi in zip(p, q, strict=True)) / 2 + 1) ** 3

    m = 3
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    expected = (xx + yy) / (m * (m - 1)) - 2 * xy / (m * m)
    # The default subset_size of 1000 is capped at 3: the one subset is every point.
    mean, std = kid(x, y, subsets=1)
    assert mean == pytest.approx(expected, rel=1e-12)
    assert std == 0.0


def test_kid_same_distribution_is_near_zero_and_shift_is_positive() -> None:
    rng = np.random.default_rng(3)
    a, b = rng.standard_normal((300, 16)), rng.standard_normal((300, 16))
    mean, std = kid(a, b, subsets=50, subset_size=100)
    assert std > 0 and abs(mean) < 3 * std
    shifted_mean, shifted_std = kid(a, b + 0.5, subsets=50, subset_size=100)
    assert shifted_mean > 3 * shifted_std and shifted_mean > 10 * abs(mean)


def test_kid_is_deterministic_for_a_seed() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.standard_normal((60, 4)), rng.standard_normal((80, 4))
    assert kid(a, b, subsets=10, subset_size=20, seed=7) == kid(a, b, subsets=10,
                                                                subset_size=20, seed=7)
    assert kid(a, b, subsets=10, subset_size=20, seed=7) != kid(a, b, subsets=10,
                                                                subset_size=20, seed=8)


# --- Laplacian pyramid and SWD -------------------------------------------------------------

def test_laplacian_pyramid_shapes_and_reconstruction() -> None:
    images = _smooth_images(2, 32, seed=5)
    pyramid = laplacian_pyramid(images, 3)
    assert [p.shape for p in pyramid] == [(2, 32, 32, 3), (2, 16, 16, 3), (2, 8, 8, 3)]
    assert all(p.dtype == np.float32 for p in pyramid)
    np.testing.assert_allclose(reconstruct_laplacian_pyramid(pyramid), images, atol=1e-3)
    # The low-pass level keeps the mean brightness.
    assert pyramid[-1].mean() == pytest.approx(images.mean(), rel=0.02)


def test_laplacian_pyramid_of_constant_image_has_empty_band_pass() -> None:
    # Fails if pyrUp's gain or the border handling is wrong: up(down(c)) must equal c.
    pyramid = laplacian_pyramid(np.full((1, 16, 16, 3), 100, np.uint8), 3)
    np.testing.assert_allclose(pyramid[0], 0.0, atol=1e-4)
    np.testing.assert_allclose(pyramid[1], 0.0, atol=1e-4)
    np.testing.assert_allclose(pyramid[2], 100.0, atol=1e-4)


def test_laplacian_pyramid_rejects_indivisible_size() -> None:
    with pytest.raises(ValueError, match="multiples of 4"):
        laplacian_pyramid(np.zeros((1, 30, 30, 3), np.uint8), 3)


def test_swd_identical_small_noised_larger_and_deterministic() -> None:
    images = _smooth_images(24, 32, seed=6)
    other = _smooth_images(24, 32, seed=7)  # a second draw of the same distribution
    noise = np.random.default_rng(8).normal(0, 1, images.shape)
    noised = [np.clip(images + sd * noise, 0, 255).astype(np.uint8) for sd in (12, 25)]

    same = swd(images, images, seed=0)
    assert set(same) == {"swd_32", "swd_16", "swd_mean"}
    assert same["swd_mean"] == pytest.approx((same["swd_32"] + same["swd_16"]) / 2)
    light, heavy = (swd(images, x, seed=0) for x in noised)
    # Noise lives in the finest band; the 16x16 low-pass level barely sees it, and with
    # 24 images its sampling spread dominates, so only the finest level is compared there.
    assert light["swd_32"] > 2 * same["swd_32"]
    assert light["swd_32"] > 2 * swd(images, other, seed=0)["swd_32"]
    assert heavy["swd_32"] > light["swd_32"]
    assert light["swd_mean"] > 1.5 * same["swd_mean"]
    assert swd(images, noised[0], seed=0) == light
    assert swd(images, noised[0], seed=1) != light
    # The two sets get independent patch samples: identical sets show the sampling floor.
    assert same["swd_32"] > 0


def test_swd_ignores_global_contrast_and_brightness_per_channel() -> None:
    # ProGAN normalises each set's patches per channel, so an affine change of every
    # channel (pyramid levels are linear in the image) leaves the distance unchanged.
    images = _smooth_images(8, 16, seed=13)
    changed = images * np.array([0.5, 2.0, 1.0]) + np.array([64.0, -100.0, 10.0])
    assert swd(images, changed, seed=3) == pytest.approx(swd(images, images, seed=3), rel=1e-4)


# --- real / fake score ---------------------------------------------------------------------

def test_real_fake_scores_hand_example() -> None:
    real, fake = real_fake_scores(np.array([0.9, 0.6, 1.0]), np.array([[0.1], [0.3], [0.8]]))
    assert real == pytest.approx(2.5 / 3) and fake == pytest.approx(0.4)
    with pytest.raises(ValueError, match="probabilities"):
        real_fake_scores(np.array([2.5, -1.0]), np.array([0.5]))


# --- duplicate rate ------------------------------------------------------------------------

def test_duplicate_rate_hand_computed() -> None:
    real = np.array([[0.0], [1.0], [3.0], [6.0]])  # nearest-other distances 1, 1, 2, 3
    fake = np.array([[0.0], [0.5], [10.0], [20.0]])  # 0.5, 0.5, 10, 10
    # Median of (1, 1, 2, 3) is 1.5: two of the four fakes are closer than that.
    assert duplicate_rate(fake, real, percentile=50.0) == 0.5


def test_duplicate_rate_collapsed_generator_vs_healthy_one() -> None:
    rng = np.random.default_rng(9)
    real = rng.standard_normal((400, 8))
    centres = rng.standard_normal((3, 8))
    collapsed = centres[rng.integers(0, 3, 400)] + 1e-3 * rng.standard_normal((400, 8))
    healthy = rng.standard_normal((400, 8))
    assert duplicate_rate(collapsed, real) > 0.95
    assert duplicate_rate(healthy, real) <= 0.05


def test_duplicate_rate_compares_sets_of_equal_size() -> None:
    # Without the subsampling, 1000 fakes sit ~10x denser than 100 reals in 2-D and
    # about half would fall under the reals' 5th-percentile distance.
    rng = np.random.default_rng(10)
    real, fake = rng.standard_normal((100, 2)), rng.standard_normal((1000, 2))
    assert duplicate_rate(fake, real, percentile=5.0) < 0.15


# --- copy rate (memorisation) -------------------------------------------------------------

def test_copy_rate_hand_computed() -> None:
    train = np.array([[0.0], [10.0]])
    held_out = np.array([[1.0], [2.0], [7.0], [14.0]])  # nearest training: 1, 2, 3, 4
    fake = np.array([[0.0], [9.0], [5.0], [20.0], [10.5]])  # 0, 1, 5, 10, 0.5
    # The held-out faces' median distance is 2.5: three of the five fakes come nearer.
    assert copy_rate(fake, train, held_out, percentile=50.0) == 0.6
    # At the 0th percentile, the nearest held-out face's 1: the fakes at 0 and 0.5 come nearer.
    assert copy_rate(fake, train, held_out, percentile=0.0) == 0.4
    assert copy_rate(held_out, train, held_out, percentile=50.0) == 0.5


def test_copy_rate_copier_vs_new_faces() -> None:
    rng = np.random.default_rng(12)
    train = rng.standard_normal((300, 8))
    held_out = rng.standard_normal((300, 8))
    copier = train[rng.integers(0, 300, 500)] + 1e-3 * rng.standard_normal((500, 8))
    new = rng.standard_normal((500, 8))
    assert copy_rate(copier, train, held_out) > 0.95
    assert copy_rate(new, train, held_out) <= 0.05
    with pytest.raises(ValueError, match="feature sizes differ"):
        copy_rate(new[:, :4], train, held_out)


def test_zero_marks_counts_grey_bands_and_squares() -> None:
    rng = np.random.default_rng(13)
    images = rng.integers(0, 256, (5, 16, 16, 3)).astype(np.uint8)
    assert zero_marks(images) == 0.0
    images[1, :, -2:] = 128  # a translation's padding: the right band
    images[2, 5:7, 3:5] = 127  # a 2 x 2 grey square, the window at 16 px (16 // 8)
    images[3, 0, :] = 128  # one row deep only: no mark with band 2
    images[4, 3:6, 3:5] = 126  # 3 x 2 at 1.5 from 127.5, within tol: a mark too
    assert zero_marks(images) == 0.6
    images[4, 4, 4] = 120  # 7.5 from 127.5, beyond tol: the 2 x 2 windows there break
    assert zero_marks(images) == 0.4
    assert zero_marks(images, band=1) == 0.6
    for bad in (images[:, :1], images.astype(np.float32)):
        with pytest.raises(ValueError, match="images must be uint8"):
            zero_marks(bad)
    with pytest.raises(ValueError, match="at least 1"):
        zero_marks(images, band=0)


# --- checkerboard score --------------------------------------------------------------------

def test_checkerboard_score_smooth_images_and_overlay() -> None:
    images = _smooth_images(16, 32, seed=11).astype(np.float64)
    i, j = np.indices((32, 32))
    board = ((-1.0) ** (i + j))[None, :, :, None]
    smooth = checkerboard_score(images)
    assert smooth <= 1.1
    scores = [checkerboard_score(np.clip(images + a * board, 0, 255)) for a in (1, 4, 16)]
    assert scores[0] > 5 * smooth
    assert scores[0] < scores[1] < scores[2]


def test_checkerboard_score_hand_computed() -> None:
    # 8x8, Nyquist index 4. A (-1)^(i+j) board of amplitude a puts power (64 a)² at the
    # corner (4, 4); b cos(2π 3i / 8) puts (32 b)² at each of (3, 0) and (5, 0), which are
    # neighbours. The Nyquist set has 8 + 8 - 1 = 15 bins; the neighbourhood (rows 3, 5 and
    # columns 3, 5: 16 + 16 - 4 shared, less the 4 lying on the Nyquist lines) has 24.
    a, b = 1.5, 2.0
    i, j = np.indices((8, 8))
    image = a * (-1.0) ** (i + j) + b * np.cos(2 * np.pi * 3 * i / 8)
    expected = ((64 * a) ** 2 / 15) / (2 * (32 * b) ** 2 / 24)
    assert checkerboard_score(image[None, :, :, None]) == pytest.approx(expected, rel=1e-9)


def test_checkerboard_score_white_noise_is_about_one() -> None:
    noise = np.random.default_rng(12).standard_normal((16, 32, 32, 3))
    assert checkerboard_score(noise) == pytest.approx(1.0, abs=0.1)


def test_checkerboard_score_rejects_odd_size() -> None:
    with pytest.raises(ValueError, match="even"):
        checkerboard_score(np.zeros((1, 31, 32, 3)))
