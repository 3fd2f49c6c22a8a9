"""The JAX engine's checkpoints (checkpoints.py): NumPy archives written atomically, read whole,
skipped with a line when damaged, told apart from TensorFlow's, and the settings that engine
does not have. No JAX here: the format and the checks are backend-neutral."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_ganime import train
from keras_ganime.engines import checkpoints
from keras_ganime.runs import RunError


def write(directory, step, value=1.0):
    checkpoints.write_npz(directory / f"ckpt-{step}.npz",
                          {"net/0": np.full((2, 3), value, np.float32),
                           "engine/step": np.int32(step)}, {"backend": "jax", "step": step})


def test_an_archive_reads_back_whole_with_its_manifest(tmp_path):
    write(tmp_path, 4, 2.5)
    arrays, manifest = checkpoints.read_npz(tmp_path / "ckpt-4.npz")
    assert set(arrays) == {"net/0", "engine/step"}
    np.testing.assert_array_equal(arrays["net/0"], np.full((2, 3), 2.5, np.float32))
    assert manifest == {"backend": "jax", "step": 4,
                        "arrays": {"net/0": [2, 3], "engine/step": []}}
    assert list(tmp_path.iterdir()) == [tmp_path / "ckpt-4.npz"]  # no temporary file left


def test_they_are_listed_by_step_without_temporary_files(tmp_path):
    for step in (10, 9, 100):
        write(tmp_path, step)
    (tmp_path / "ckpt-101_temp.npz").write_bytes(b"half")
    assert [p.rsplit("/", 1)[1] for p in checkpoints.listed(tmp_path)] == [
        "ckpt-9.npz", "ckpt-10.npz", "ckpt-100.npz"]
    assert checkpoints.step_of(checkpoints.listed(tmp_path)[-1]) == 100
    assert checkpoints.format_of(tmp_path) == "jax"


def test_a_damaged_archive_is_skipped_with_a_line_and_all_damaged_is_one_error(tmp_path):
    write(tmp_path, 3)
    write(tmp_path, 6)
    newest = tmp_path / "ckpt-6.npz"
    newest.write_bytes(newest.read_bytes()[:300])  # cut short, as by a full disk
    said = []
    assert checkpoints.newest_readable(tmp_path, said.append) == str(tmp_path / "ckpt-3.npz")
    assert len(said) == 1 and said[0].startswith(f"skipped checkpoint {newest}: it does not "
                                                 f"read completely (")
    (tmp_path / "ckpt-3.npz").write_bytes(b"\0" * 100)
    with pytest.raises(RunError, match=r"none of its 2 checkpoints reads completely \(the "
                                       r"newest, ckpt-6.npz: "):
        checkpoints.newest_readable(tmp_path, said.append)


def test_a_shape_that_differs_from_its_manifest_is_damage(tmp_path):
    path = tmp_path / "ckpt-1.npz"
    write(tmp_path, 1)
    arrays, manifest = checkpoints.read_npz(path)
    manifest_bytes = np.frombuffer(
        repr(manifest).replace("[2, 3]", "[3, 2]").replace("'", '"').encode(), np.uint8)
    np.savez(path, **arrays, **{checkpoints.MANIFEST: manifest_bytes})
    assert checkpoints.damage(str(path)) == "net/0 has shape [2, 3], not [3, 2]"


def test_variables_are_named_by_object_and_place_and_assigned_with_their_shapes_checked():
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2),
                              keras.layers.BatchNormalization()])
    opt = keras.optimizers.SGD(0.1, momentum=0.9)
    opt.build(model.trainable_variables)
    k = keras.Variable(0.5, trainable=False)
    named = checkpoints.variables_of({"net": model, "opt": opt, "k_t": k})
    assert list(named) == [*(f"net/{i}" for i in range(6)), *(f"opt/{i}" for i in range(6)),
                           "k_t/0"]
    assert named["net/0"] is model.weights[0] and named["k_t/0"] is k
    arrays = {key: np.full(v.shape, 7, v.dtype) for key, v in named.items()}
    checkpoints.assign(named, arrays, "x.npz")
    assert float(k.numpy()) == 7.0 and (model.weights[0].numpy() == 7).all()
    arrays["net/0"] = np.zeros((2, 3), np.float32)
    with pytest.raises(ValueError, match=r"^x.npz: net/0 \(.*kernel, shape \(3, 2\)\) is of "
                                         r"shape \(2, 3\)$"):
        checkpoints.assign(named, arrays, "x.npz")


def test_a_resume_on_the_other_backend_is_one_line_before_anything_loads(tmp_path, capsys):
    run = tmp_path / "00000-run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.toml").write_text("")
    write(run / "checkpoints", 2)
    assert train.main(["--resume", str(run), "--backend", "tensorflow"]) == 2
    assert capsys.readouterr().err == (
        f"error: {run / 'checkpoints'}: its checkpoints were written on the JAX backend, and "
        f"the TensorFlow backend cannot resume them; run it with --backend jax (or "
        f"KERAS_BACKEND=jax)\n")


@pytest.mark.parametrize(("setting", "message"), [
    ('train.distribute="multiworker"',
     ("train.distribute = multiworker is tf.distribute's; on the JAX backend use mirrored (this "
     "machine's devices) or none")),
    ('train.mixed_precision="float16"',
     ("train.mixed_precision = float16 needs TensorFlow's loss scaling; on the JAX backend use "
     "bfloat16")),
])
def test_a_setting_the_jax_engine_lacks_is_one_line(setting, message, capsys):
    assert train.main(["--backend", "jax", "--set", setting, "--steps", "1"]) == 2
    assert capsys.readouterr().err == f"error: {message}\n"
