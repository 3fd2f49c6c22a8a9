"""keras_ganime.evaluation.features and the shipped anime encoder: weights, determinism, what
the features separate, the InceptionV3 path and its one-line errors, and compute_metrics.

Small sets throughout. The test that needs the real faces skips where ../shared/data is absent;
building a random InceptionV3 and saving its weights is behind the `slow` marker
(`make test-slow`), because on 2 shared cores it takes over 20 s.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from keras_ganime.data import DataError, tagged
from keras_ganime.data.synthetic import draw_faces
from keras_ganime.evaluation import degrade, encoder, features, metrics
from keras_ganime.evaluation.features import FeatureError, compute_metrics, get_extractor

REPO = Path(__file__).resolve().parents[1]
FACES = REPO.parent / "shared" / "data" / "anime-faces-64"


def assert_one_line(message: str, *needles: str) -> None:
    assert "\n" not in message.strip() and "Traceback" not in message, message
    for needle in needles:
        assert needle in message, message


@pytest.fixture(scope="module")
def synthetic() -> np.ndarray:
    return draw_faces(48, seed=3)[0]


def test_shipped_weights_and_facts() -> None:
    assert encoder.WEIGHTS.is_file()
    assert encoder.WEIGHTS.stat().st_size < 10 * 2**20
    facts = json.loads(encoder.FACTS.read_text())
    assert facts["feature_dim"] == encoder.FEATURE_DIM
    assert len(facts["hair_names"]) == 12 and len(facts["eye_names"]) == 10
    assert facts["kinds"] == list(encoder.KINDS)
    # Chance is 1/12, 1/10 and 1/2: a trained encoder is well above each.
    accuracy = facts["held_out"]
    assert accuracy["hair"] > 0.4 and accuracy["eyes"] > 0.3
    assert accuracy["real_vs_degraded"] > 0.8


def test_anime_features_are_deterministic_and_sized(synthetic: np.ndarray) -> None:
    extract = get_extractor("anime")
    assert get_extractor("anime") is extract  # loaded once per process
    first = extract(synthetic, batch_size=16)
    assert first.shape == (len(synthetic), encoder.FEATURE_DIM) and first.dtype == np.float32
    assert np.isfinite(first).all() and first.std() > 0
    np.testing.assert_array_equal(extract(synthetic, batch_size=16), first)
    # An image's features do not depend on the batch it is in.
    np.testing.assert_allclose(extract(synthetic[5:6])[0], first[5], rtol=1e-4, atol=1e-5)
    # Any image size is resized to the encoder's 64x64.
    small = synthetic[:, ::2, ::2]
    assert extract(small).shape == (len(synthetic), encoder.FEATURE_DIM)


def test_extractor_rejects_float_images(synthetic: np.ndarray) -> None:
    with pytest.raises(FeatureError, match="uint8"):
        get_extractor("anime")(synthetic.astype(np.float32))


def test_encoder_separates_real_from_synthetic_more_than_real_from_real() -> None:
    if not FACES.is_dir():
        pytest.skip(f"{FACES} is absent")
    real = tagged.load_tagged_faces(FACES, 600, seed=1).images
    fake = draw_faces(300, seed=1)[0]
    extract = get_extractor("anime")
    a, b, f = extract(real[:300]), extract(real[300:]), extract(fake)
    assert 5 * metrics.fid(a, b) < metrics.fid(a, f)
    # One subset of all 300 is the whole sets' unbiased MMD; more subsets would repeat it.
    assert 5 * max(metrics.kid(a, b, subsets=1)[0], 1e-4) < metrics.kid(a, f, subsets=1)[0]


def test_unknown_names_give_one_line_errors() -> None:
    with pytest.raises(FeatureError) as e:
        get_extractor("vgg")
    assert_one_line(str(e.value), "vgg", "anime", "inception")
    with pytest.raises(FeatureError) as e:
        compute_metrics(np.zeros((2, 64, 64, 3), np.uint8), np.zeros((2, 64, 64, 3), np.uint8),
                        ["fid_vgg"])
    assert_one_line(str(e.value), "fid_vgg", "fid_anime")


def test_inception_needs_a_weights_file(tmp_path: Path) -> None:
    images = np.zeros((2, 64, 64, 3), np.uint8)
    with pytest.raises(FeatureError) as e:
        compute_metrics(images, images, ["fid_inception"])
    assert_one_line(str(e.value), "InceptionV3 weights file")
    missing = tmp_path / "inception_notop.h5"
    with pytest.raises(FeatureError) as e:
        get_extractor("inception", str(missing))
    assert_one_line(str(e.value), str(missing))


def test_missing_anime_weights_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(FeatureError) as e:
        features.anime_extractor(tmp_path / "gone.weights.h5")
    assert_one_line(str(e.value), "gone.weights.h5", "pip install --force-reinstall --no-deps")


def test_compute_metrics(synthetic: np.ndarray) -> None:
    real, other = synthetic[:24], synthetic[24:]
    names = ["fid_anime", "kid_anime", "dup_anime", "swd", "checkerboard"]
    clean = compute_metrics(real, other, names)
    # Beside the SWD, its patches per level: 128 from each image of the smaller set.
    assert list(clean) == ["fid_anime", "kid_anime", "dup_anime", "swd", "swd_patches",
                           "checkerboard"] and clean["swd_patches"] == 128 * min(len(real),
                                                                                  len(other))
    assert all(isinstance(clean[n], float) for n in names)
    damaged = compute_metrics(real, degrade.degrade(other, "checkerboard", 1.0), names)
    for name in ("fid_anime", "kid_anime", "swd", "checkerboard"):
        assert damaged[name] > clean[name], name
    assert clean["checkerboard"] < 1.5 and damaged["checkerboard"] > 10
    # Reusing the real set's features gives the same numbers.
    cached = {"anime": get_extractor("anime")(real)}
    assert compute_metrics(real, other, names, real_features=cached) == clean
    # A collapsed generator: every fake the same face.
    collapsed = np.repeat(other[:1], len(other), axis=0)
    assert compute_metrics(real, collapsed, ["dup_anime"])["dup_anime"] == 1.0
    assert clean["dup_anime"] < 0.2


def test_load_tagged_faces_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError) as e:
        tagged.load_tagged_faces(tmp_path)
    assert_one_line(str(e.value), str(tmp_path / "tags.csv"))


def test_split_is_fixed_and_disjoint() -> None:
    train, held = tagged.split(1000)
    assert len(held) == 100 and len(np.intersect1d(train, held)) == 0
    assert len(np.union1d(train, held)) == 1000
    np.testing.assert_array_equal(tagged.split(1000)[1], held)


@pytest.mark.slow
def test_inception_from_a_local_file(tmp_path: Path) -> None:
    import keras

    path = tmp_path / "inception_random.weights.h5"
    keras.applications.InceptionV3(weights=None, include_top=False, pooling="avg").save_weights(
        path)
    extract = get_extractor("inception", str(path))
    images = draw_faces(2, seed=0)[0]
    out = extract(images)
    assert out.shape == (2, 2048) and np.isfinite(out).all()
    np.testing.assert_array_equal(extract(images), out)
    result = compute_metrics(images, images, ["fid_inception", "kid_inception"],
                             inception_weights=str(path))
    assert set(result) == {"fid_inception", "kid_inception"}
    bad = tmp_path / "bad.weights.h5"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(FeatureError) as e:
        get_extractor("inception", str(bad))
    assert_one_line(str(e.value), str(bad))
