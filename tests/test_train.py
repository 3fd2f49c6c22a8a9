"""The engine and the loop: optimizers, one trace, the run directory's outputs, speed settings."""

import os

import keras
import numpy as np
import pytest
from PIL import Image

from keras_ganime import settings
from keras_ganime.engines import common
from keras_ganime.engines.tensorflow import Engine
from keras_ganime.families.optimizers import build_optimizer
from keras_ganime.settings import ConfigError
from keras_ganime.training.loop import fit, new_run
from tests.helpers import changed, random_images, snapshot, tiny

NO_BFLOAT16 = common.NO_BFLOAT16_ISAS


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return random_images()


@pytest.mark.parametrize("name, kind", [("adam", "Adam"), ("adamax", "Adamax"), ("sgd", "SGD")])
def test_optimizers_from_config(name, kind):
    cfg = settings.OptimConfig(name=name, learning_rate=0.003, beta_1=0.4, momentum=0.7,
                                 nesterov=True)
    opt = build_optimizer(cfg)
    assert type(opt).__name__ == kind
    assert float(opt.learning_rate) == pytest.approx(0.003)
    if name == "sgd":
        assert opt.momentum == pytest.approx(0.7) and opt.nesterov
    else:
        assert opt.beta_1 == pytest.approx(0.4)


def test_no_retracing_over_50_steps(images):
    gan = Engine(tiny(**{"train.warmup_steps": 20}), images)
    for _ in range(50):
        gan.train_step()
    assert gan.train_step.experimental_get_tracing_count() == 1


def test_run_writes_its_outputs(tmp_path, images):
    cfg = tiny(**{"output.runs_dir": str(tmp_path)})
    gan = Engine(cfg, images)
    with new_run(cfg) as run:
        fit(gan, run, progress=False)
    path = run.path
    assert path.name == "00000-default"
    rows = run.read_losses()
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    assert list(rows[0]) == ["step", "d_loss0", "d_loss1", "g_loss", "real_score", "fake_score",
                             "images_per_s", "wall_s"]
    assert np.isnan(rows[1]["g_loss"]) and np.isfinite(rows[2]["g_loss"])  # warm-up of 2
    with Image.open(path / "samples" / "0000006.png") as grid:  # 8 x 8 tiles of 16 + 1 px
        assert grid.size == (8 * 17 + 1, 8 * 17 + 1)
    for name in ("loss.csv", "loss.png", "reals.png", "generator.keras", "samples/0000003.png",
                 "samples/0000006.png", "checkpoints/checkpoint"):
        assert (path / name).is_file(), name
    assert list((path / "tensorboard").iterdir())
    assert run.read_json("run.json")["status"] == "done"
    # The saved G is Keras's layers only (the fused BatchNorm is not registered, so loading
    # would fail on it) and is the trained G.
    saved = keras.models.load_model(path / "generator.keras", compile=False)
    z = gan.fixed_latents(4)
    np.testing.assert_allclose(saved(z, training=False), gan.family.generator(z, training=False),
                               atol=1e-6)


@pytest.mark.parametrize("setting", ["train.jit_compile=on", "train.mixed_precision=bfloat16",
                                     "train.mixed_precision=float16"])
def test_speed_settings_train(images, setting):
    key, value = setting.split("=")
    if value == "bfloat16" and os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper() in NO_BFLOAT16:
        pytest.skip("oneDNN capped where it has no bfloat16 convolutions: refused, as "
                    "test_bfloat16_under_a_cap_without_it_is_one_line checks")
    gan = Engine(tiny(**{key: value, "train.warmup_steps": 0}), images)
    g0 = snapshot(gan.family.generator)
    for _ in range(3):
        out = gan.train_step()
    assert all(np.isfinite(float(v)) for v in out.values())
    assert all(changed(g0, gan.family.generator)[:2])
    if value != "on":
        conv = gan.family.generator.layers[1]
        assert conv.compute_dtype == value and conv.variable_dtype == "float32"
        assert gan.family.discriminator.output.dtype == "float32"  # probabilities stay float32



def test_bfloat16_under_a_cap_without_it_is_one_line(images, monkeypatch):
    """With oneDNN capped at AVX2 (as CI's proxy for a processor without AVX-512 caps it),
    bfloat16 is refused before anything is built, rather than failing in its first step."""
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "avx2")
    with pytest.raises(ConfigError, match=r"^train.mixed_precision = bfloat16: oneDNN is capped "
                                          r"at avx2 \(ONEDNN_MAX_CPU_ISA\), where it has no "
                                          r"bfloat16 convolutions; unset the cap, or train in "
                                          r"float32$"):
        Engine(tiny(**{"train.mixed_precision": "bfloat16"}), images)
