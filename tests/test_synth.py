"""Tests for the procedural anime-face generator (keras_ganime.data.synthetic)."""

from __future__ import annotations

import numpy as np
import pytest

from keras_ganime.data.synthetic import ATTRIBUTES, EYE_COLOURS, HAIR_COLOURS, draw_faces

REAL_HAIR_TAGS = {
    "aqua", "black", "blonde", "blue", "brown", "gray",
    "green", "orange", "pink", "purple", "red", "white",
}
REAL_EYE_TAGS = {
    "aqua", "black", "blue", "brown", "green", "orange", "pink", "purple", "red", "yellow",
}


@pytest.fixture(scope="module")
def many() -> tuple[np.ndarray, np.ndarray]:
    # Shared by the statistical tests so the file stays fast.
    return draw_faces(500, size=32, seed=0)


def test_public_constants() -> None:
    assert set(HAIR_COLOURS) == REAL_HAIR_TAGS and len(HAIR_COLOURS) == 12
    assert set(EYE_COLOURS) <= REAL_EYE_TAGS and len(EYE_COLOURS) == 10
    assert ATTRIBUTES["hair"] == HAIR_COLOURS
    assert ATTRIBUTES["eyes"] == EYE_COLOURS
    minimum = {"fringe": 3, "eye_size": 3, "face": 2, "mouth": 3, "skin": 3, "background": 4}
    for name, count in minimum.items():
        assert len(ATTRIBUTES[name]) >= count, name
    for name, values in ATTRIBUTES.items():
        assert len(set(values)) == len(values), f"duplicate value names in {name}"


@pytest.mark.parametrize("size", [16, 32, 64])
def test_shapes_and_dtypes(size: int) -> None:
    images, attrs = draw_faces(3, size=size, seed=1)
    assert images.shape == (3, size, size, 3) and images.dtype == np.uint8
    assert attrs.shape == (3, len(ATTRIBUTES)) and attrs.dtype == np.int32
    # Real pictures use the whole range, not e.g. a constant or a 0..1 float image.
    assert images.max() > 200 and images.min() < 80


def test_odd_sizes_and_empty() -> None:
    assert draw_faces(2, size=8)[0].shape == (2, 8, 8, 3)
    assert draw_faces(1, size=37)[0].shape == (1, 37, 37, 3)
    images, attrs = draw_faces(0)
    assert images.shape == (0, 64, 64, 3) and attrs.shape == (0, len(ATTRIBUTES))


def test_deterministic() -> None:
    a_img, a_att = draw_faces(6, size=32, seed=7)
    b_img, b_att = draw_faces(6, size=32, seed=7)
    assert a_img.tobytes() == b_img.tobytes()
    np.testing.assert_array_equal(a_att, b_att)
    c_img, _ = draw_faces(6, size=32, seed=8)
    assert a_img.tobytes() != c_img.tobytes()
    for i in range(6):
        assert not np.array_equal(a_img[i], c_img[i])


def test_chunks_match_single_draw() -> None:
    whole_img, whole_att = draw_faces(10, size=32, seed=3, start=0)
    img1, att1 = draw_faces(4, size=32, seed=3, start=0)
    img2, att2 = draw_faces(6, size=32, seed=3, start=4)
    assert np.concatenate([img1, img2]).tobytes() == whole_img.tobytes()
    np.testing.assert_array_equal(np.concatenate([att1, att2]), whole_att)


def test_attribute_coverage(many: tuple[np.ndarray, np.ndarray]) -> None:
    _, attrs = many
    for col, (name, values) in enumerate(ATTRIBUTES.items()):
        column = attrs[:, col]
        assert column.min() >= 0 and column.max() < len(values), name
        counts = np.bincount(column, minlength=len(values))
        assert (counts > 0).all(), f"{name}: some values never drawn: {counts}"


def test_variety(many: tuple[np.ndarray, np.ndarray]) -> None:
    images, _ = many
    flat = images[:200].reshape(200, -1)
    assert len({row.tobytes() for row in flat}) == 200, "duplicate faces"
    x = flat.astype(np.float64)
    sq = (x * x).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2.0 * x @ x.T, 0.0)
    rms = np.sqrt(d2 / x.shape[1])[np.triu_indices(200, k=1)]
    # RMS per-pixel difference on the 0..255 scale; collapsed outputs would be near 0.
    assert rms.mean() > 40.0, rms.mean()
    assert rms.min() > 5.0, rms.min()


def test_hair_colour_shows_on_top_of_head(many: tuple[np.ndarray, np.ndarray]) -> None:
    images, attrs = many
    hair = attrs[:, list(ATTRIBUTES).index("hair")]
    # Rows 12-22% down, central columns: always crown hair whatever the pose jitter.
    size = images.shape[1]
    region = images[:, int(0.12 * size):int(0.22 * size), int(0.38 * size):int(0.62 * size)]
    brightness = region.astype(np.float64).mean(axis=(1, 2, 3))
    black = brightness[hair == HAIR_COLOURS.index("black")]
    blonde = brightness[hair == HAIR_COLOURS.index("blonde")]
    assert len(black) >= 10 and len(blonde) >= 10
    assert blonde.mean() - black.mean() > 100.0, (blonde.mean(), black.mean())
    assert blonde.min() > black.max()


def test_eye_colour_label_matches_pixels() -> None:
    # Blue-eyed faces must have more blue than red in the eye band than red-eyed ones.
    images, attrs = draw_faces(300, size=64, seed=5)
    eyes = attrs[:, list(ATTRIBUTES).index("eyes")]
    band = images[:, 30:40, 12:52].astype(np.float64)
    blue_minus_red = (band[..., 2] - band[..., 0]).mean(axis=(1, 2))
    blue = blue_minus_red[eyes == EYE_COLOURS.index("blue")]
    red = blue_minus_red[eyes == EYE_COLOURS.index("red")]
    assert blue.mean() > red.mean() + 5.0, (blue.mean(), red.mean())


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n": -1}, "n"),
        ({"n": 2, "size": 7}, "size"),
        ({"n": 2, "size": 0}, "size"),
        ({"n": 2, "seed": -3}, "seed"),
        ({"n": 2, "start": -1}, "start"),
    ],
)
def test_bad_arguments(kwargs: dict[str, int], name: str) -> None:
    with pytest.raises(ValueError, match=rf"^{name} must"):
        draw_faces(**kwargs)
