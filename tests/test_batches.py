"""Real batches drawn on the device, pixel scaling, and the built-in dataset's HDF5 file."""

import subprocess
import sys

import h5py
import numpy as np
import pytest
import tensorflow as tf

from keras_ganime import data
from keras_ganime.data import DataError, read_h5
from keras_ganime.data.synthetic import ATTRIBUTES, draw_faces
from keras_ganime.engines.tensorflow import Sampler
from keras_ganime.images.convert import to_float, to_uint8


def numbered(n: int) -> np.ndarray:
    """Image i is filled with the value i, so a batch tells which images it holds."""
    return np.broadcast_to(np.arange(n, dtype=np.uint8)[:, None, None, None], (n, 2, 2, 3)).copy()


def drawn(sampler: Sampler, step: int, rng: tf.random.Generator) -> list[int]:
    batch = to_uint8(sampler.batch(sampler.indices(tf.constant(step, tf.int64), rng)))
    return batch[:, 0, 0, 0].tolist()


def test_pixel_scaling_round_trips():
    pixels = np.arange(256, dtype=np.uint8)
    scaled = to_float(tf.constant(pixels)).numpy()
    assert scaled[0] == -1.0 and scaled[-1] == 1.0 and scaled.dtype == np.float32
    np.testing.assert_array_equal(to_uint8(scaled), pixels)


def test_epoch_sampling_walks_a_fresh_permutation_each_epoch():
    sampler = Sampler(numbered(20), batch_size=6, sampling="epoch", seed=3)
    rng = tf.random.Generator.from_seed(0)
    epoch0 = [i for s in range(3) for i in drawn(sampler, s, rng)]  # 3 batches of 6 from 20
    epoch1 = [i for s in range(3, 6) for i in drawn(sampler, s, rng)]
    assert len(set(epoch0)) == 18 and len(set(epoch1)) == 18  # no repeat within an epoch
    assert epoch0 != epoch1
    again = Sampler(numbered(20), batch_size=6, sampling="epoch", seed=3)
    assert drawn(again, 4, rng) == epoch1[6:12]  # a function of the step: resumable mid-epoch


def test_uniform_sampling_draws_with_replacement_from_the_generator():
    sampler = Sampler(numbered(50), batch_size=40, sampling="uniform", seed=0)
    rng = tf.random.Generator.from_seed(7)
    first = [i for _ in range(10) for i in drawn(sampler, 0, rng)]
    rng = tf.random.Generator.from_seed(7)
    assert first == [i for _ in range(10) for i in drawn(sampler, 0, rng)]
    assert max(np.bincount(first[:40])) > 1  # with replacement: a batch repeats images
    assert np.bincount(first, minlength=50).min() > 0  # every image reachable


def test_batch_larger_than_the_dataset_is_refused():
    with pytest.raises(DataError, match="train.batch_size 11 is larger than the dataset"):
        Sampler(numbered(10), batch_size=11, sampling="uniform", seed=0)


def test_synth_writes_the_faces_and_their_attributes(tmp_path):
    out = tmp_path / "faces.h5"
    result = subprocess.run(
        [sys.executable, "-m", "keras_ganime.data", "synth", str(out), "--n", "30", "--size", "16"],
        capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    images, attributes = draw_faces(30, 16, seed=0)
    stored = read_h5(out)
    np.testing.assert_array_equal(stored.images, images)
    hair = list(ATTRIBUTES).index("hair")
    np.testing.assert_array_equal(stored.labels, attributes[:, hair])
    assert stored.class_names == list(ATTRIBUTES["hair"])
    with h5py.File(out) as f:
        np.testing.assert_array_equal(f["attributes"][...], attributes)
        assert [s.decode() for s in f["attribute_names"][...]] == list(ATTRIBUTES)


def test_the_default_dataset_is_drawn_once_into_the_cache_and_reused(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    images = data.load_images("", 12, 16)
    path = tmp_path / "keras_ganime" / "synthetic-16px-12.h5"
    assert path.is_file() and images.shape == (12, 16, 16, 3)
    stamp = path.stat().st_mtime_ns
    np.testing.assert_array_equal(data.load_images("", 12, 16), images)
    assert path.stat().st_mtime_ns == stamp
    # The setting data.cache_dir wins over the environment; without either, ~/.cache.
    assert data.cache_dir(str(tmp_path / "mine")) == tmp_path / "mine"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.cache_dir() == tmp_path / "home" / ".cache" / "keras_ganime"


def test_a_run_finds_its_data_as_given_or_where_it_resolved(tmp_path, monkeypatch):
    (tmp_path / "d.h5").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    assert data.dataset_path("d.h5", str(tmp_path / "d.h5")) == "d.h5"
    monkeypatch.chdir("/")
    assert data.dataset_path("d.h5", str(tmp_path / "d.h5")) == str(tmp_path / "d.h5")
    assert data.dataset_path("d.h5", "") == "d.h5"  # the loader names it when it is missing
    assert data.dataset_path("", "") == ""
