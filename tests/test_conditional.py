"""Conditional generation (model.condition; families/condition.py): D's projection term and G's
label embedding by hand, the fakes' labels drawn from the data's rows, the settings and data
checked, and `generate --condition` / `--grid-by` on a trained conditional run, its export
included. Resume, replicas and the JAX engine: test_torture.py, test_distribute.py and
test_jax.py; the learning test: test_learning.py."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_ganime import config as config_lib
from keras_ganime import generate
from keras_ganime.data import DataError, read_labels_of, write_h5
from keras_ganime.families import dcgan
from keras_ganime.families.condition import Condition
from keras_ganime.settings import ConfigError, parse_condition
from keras_ganime.training.fit import fit

VOCABULARY = {"hair": ("red", "blue", "green"), "eyes": ("brown", "grey")}
CONDITIONAL = ['model.condition="hair,eyes"',
               f"model.condition_values='{json.dumps(VOCABULARY)}'"]


def tiny(*extra: str) -> config_lib.Config:
    return config_lib.load(None, ["model.image_size=8", "model.latent_dim=6", "model.filters=4",
                                  *CONDITIONAL, *extra])


def test_ds_projection_term_is_the_labels_embeddings_dotted_with_its_last_features():
    """D(x, y) = sigmoid(w . h + b + e_hair[y_hair] . h + e_eyes[y_eyes] . h), h D's flattened
    last features (the dense head's input), by hand in NumPy; with loss=logits, no sigmoid."""
    cfg = tiny()
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (5, 8, 8, 3)).astype(np.float32)
    y = np.array([[0, 1], [2, 0], [1, 1], [2, 1], [0, 0]], np.int32)
    for logits in (False, True):
        d = dcgan.build_discriminator(cfg.model, logits=logits, condition=Condition(cfg.model))
        head = next(layer for layer in d.layers if isinstance(layer, keras.layers.Dense))
        features = np.asarray(keras.Model(d.inputs, head.input)([x, y], training=False))
        embeddings = {}
        for name in VOCABULARY:
            layer = d.get_layer(f"projection_{name}")
            assert np.all(np.asarray(layer.embeddings) == 0)  # D starts unconditional
            embeddings[name] = rng.normal(0, 0.1, layer.embeddings.shape).astype(np.float32)
            layer.embeddings.assign(embeddings[name])
        w, b = (np.asarray(v) for v in head.weights)
        logit = features @ w[:, 0] + b[0] + sum(
            np.sum(embeddings[name][y[:, j]] * features, axis=1)
            for j, name in enumerate(VOCABULARY))
        want = logit if logits else 1 / (1 + np.exp(-logit))
        got = np.asarray(d([x, y], training=False))[:, 0]
        assert features.shape == (5, 4 * 4 * 4)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_gs_input_is_the_noise_with_each_labels_embedding_beside_it():
    cfg = tiny()
    g = dcgan.build_generator(cfg.model, condition=Condition(cfg.model))
    joined = next(layer for layer in g.layers if isinstance(layer, keras.layers.Concatenate)
                  and any(t.name == "z" for t in layer.input))
    z = np.random.default_rng(1).normal(size=(3, 1, 1, 6)).astype(np.float32)
    y = np.array([[2, 0], [0, 1], [1, 1]], np.int32)
    out = np.asarray(keras.Model(g.inputs, joined.output)([z, y]))
    width = dcgan.LABEL_EMBEDDING
    assert out.shape == (3, 1, 1, 6 + 2 * width)
    hair = np.asarray(g.get_layer("embedding_hair").embeddings)
    eyes = np.asarray(g.get_layer("embedding_eyes").embeddings)
    np.testing.assert_array_equal(out[:, 0, 0, :6], z[:, 0, 0])
    np.testing.assert_array_equal(out[:, 0, 0, 6:6 + width], hair[y[:, 0]])
    np.testing.assert_array_equal(out[:, 0, 0, 6 + width:], eyes[y[:, 1]])
    assert g(([z, y]), training=False).shape == (3, 8, 8, 3)


def test_the_fakes_labels_are_the_datas_rows_as_often_as_the_data_has_them():
    """Rows (red, brown) 3 times for each (blue, grey): no other combination is ever drawn, and
    the first comes 3/4 of the time (4,000 draws: 0.75 +- 0.03 is 4.4 standard errors); without
    the data's rows (a run sampled after training), each value alike."""
    condition = Condition(tiny().model)
    condition.table = np.array([[0, 0]] * 3 + [[1, 1]], np.int32)
    drawn = np.asarray(condition.draw(tf.random.Generator.from_seed(0), 4000))
    rows, counts = np.unique(drawn, axis=0, return_counts=True)
    assert rows.tolist() == [[0, 0], [1, 1]]
    assert abs(counts[0] / 4000 - 0.75) < 0.03
    condition.table = None
    drawn = np.asarray(condition.draw(tf.random.Generator.from_seed(0), 3000))
    for j, size in enumerate((3, 2)):
        shares = np.bincount(drawn[:, j], minlength=size) / 3000
        assert len(shares) == size and np.all(np.abs(shares - 1 / size) < 0.04), shares


def test_the_settings_and_a_condition_string_are_checked():
    for extra, message in [
        (['model.family="began"', 'model.condition="hair"'],
         "the began family has no conditional form"),
        (['model.condition="hair,hair"'], "names an attribute twice"),
        (['model.condition="hair"', """model.condition_values='{"eyes": ["red"]}'"""],
         "does not list the values of hair"),
        (['model.condition="hair"', "model.condition_values='not json'"],
         "does not list the values of hair"),
        (['model.condition="hair"', """model.condition_values='{"hair": "red"}'"""],
         "does not list the values of hair"),
        (['model.condition="hair"', """model.condition_values='{"hair": ["red", "red"]}'"""],
         "does not list the values of hair"),
    ]:
        with pytest.raises(ConfigError, match=message):
            config_lib.load(None, extra)
    assert config_lib.load(None, CONDITIONAL).model.vocabulary() == VOCABULARY
    assert parse_condition(" hair=blue , eyes=grey", VOCABULARY) == {"hair": 1, "eyes": 1}
    for text, message in [("hair=teal", "hair=teal is not a value of hair: red, blue, green"),
                          ("nose=red", "'nose=red' is not ATTRIBUTE=VALUE"),
                          ("blue", "'blue' is not ATTRIBUTE=VALUE")]:
        with pytest.raises(ValueError, match=message):
            parse_condition(text, VOCABULARY)


def labelled(path, n: int = 40, missing: int = 0):
    """n random 16 px faces, hair red, blue, green in turn (the first `missing` unlabelled),
    eyes brown and grey in turn."""
    hair = np.arange(n) % 3
    hair[:missing] = -1
    write_h5(path, np.random.default_rng(0).integers(0, 256, (n, 16, 16, 3), np.uint8),
             np.zeros(n), [], [f"{i}.png" for i in range(n)],
             {"hair": (hair, VOCABULARY["hair"]), "eyes": (np.arange(n) % 2, VOCABULARY["eyes"])})
    return path


def test_a_runs_labels_come_from_its_data_or_one_line_says_why_not(tmp_path):
    table, vocabulary = read_labels_of(labelled(tmp_path / "a.h5"), ["eyes", "hair"])
    assert table.dtype == np.int32 and table[:4].tolist() == [[0, 0], [1, 1], [0, 2], [1, 0]]
    assert vocabulary == {"eyes": VOCABULARY["eyes"], "hair": VOCABULARY["hair"]}
    with pytest.raises(DataError, match=r"has no 'nose' labels for model.condition \(its "
                                        r"attributes: hair, eyes\)"):
        read_labels_of(tmp_path / "a.h5", ["nose"])
    with pytest.raises(DataError, match="2 of its 40 images have no 'hair' label"):
        read_labels_of(labelled(tmp_path / "b.h5", missing=2), ["hair"])


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A conditional run of 4 steps on labelled data, from fit (config.toml records the data's
    values)."""
    root = tmp_path_factory.mktemp("conditional")
    data = labelled(root / "faces.h5")
    cfg = config_lib.load(None, ["model.image_size=16", "model.latent_dim=8",
                                 "model.filters=8", "train.batch_size=8", "train.steps=4",
                                 "train.warmup_steps=1", 'model.condition="hair,eyes"',
                                 f'data.path="{data}"', 'output.milestones=""',
                                 f'output.runs_dir="{root / "runs"}"'])
    fit(cfg)
    (path,) = (root / "runs").iterdir()
    return path


def faces_of(folder) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))])


def test_generate_asks_for_a_value_and_draws_a_row_per_value(run, tmp_path):
    """--condition sets the labels of the same latents: each value its own faces; the run's
    export, which takes (z, labels), makes the very faces its checkpoint does; --grid-by hair is
    a row per hair colour of the same 8 latents."""
    saved = config_lib.read_run_config(run).model.vocabulary()
    assert saved == VOCABULARY
    faces = {}
    for source, value in [(run, "red"), (run, "blue"), (run / "generator.keras", "blue")]:
        out = tmp_path / f"{source.name}-{value}"
        generate.main([str(source), "--condition", f"hair={value},eyes=grey", "--n", "8",
                       "--out", str(out)])
        faces[source.name, value] = faces_of(out)
    assert faces[run.name, "red"].shape == (8, 16, 16, 3)
    assert not np.array_equal(faces[run.name, "red"], faces[run.name, "blue"])
    np.testing.assert_array_equal(faces[run.name, "blue"], faces["generator.keras", "blue"])
    generate.main([str(run), "--grid-by", "hair", "--out", str(tmp_path / "grid")])
    grid = Image.open(tmp_path / "grid" / "grid-by-hair.png")
    one = Image.open(tmp_path / f"{run.name}-red-grid.png")  # 3 x 3 of the 8 faces
    assert grid.size[0] > grid.size[1] and grid.size[1] == one.size[1]  # 3 rows of 8


def test_a_conditional_runs_sample_grids_show_a_row_per_value_of_its_first_attribute():
    """The same 8 latents in each row; the row's hair the row's value, the eyes as drawn."""
    from keras_ganime import restore
    from keras_ganime.engines import common

    family = restore.build(tiny())
    grid = np.asarray(common.grid_latents(family, tf.random.Generator.from_seed(0), 64))
    assert grid.shape == (3 * common.GRID_COLUMNS, 1, 1, 6 + 2)
    rows = grid.reshape(3, common.GRID_COLUMNS, 8)
    assert np.all(rows[:, :, :6] == rows[:1, :, :6]) and np.all(rows[:, :, 7] == rows[:1, :, 7])
    assert rows[:, :, 6].tolist() == [[v] * common.GRID_COLUMNS for v in range(3)]


def test_evaluate_reads_the_colours_asked_for_and_the_report_shows_their_confusion(run, tmp_path):
    """evaluate's cond_acc for each attribute the encoder reads (hair; of eyes it knows brown
    alone, not grey), its ceiling, and a confusion matrix of as many faces as asked (48 samples
    per attribute: 16 per hair colour, 48 brown-eyed); the report draws it."""
    from keras_ganime import evaluate, report
    from keras_ganime.evaluation import conditional

    (result,) = evaluate.evaluate_run(run, False, ["fid_anime"], "", 48, progress=False)
    assert 0 <= result["cond_acc_hair"] <= 1
    assert result["ceiling_hair"] == conditional.ceiling()["hair"]
    hair = result["confusion"]["hair"]
    counts = np.array(hair["asked_by_read"])
    asked = [hair["colours"].index(c) for c in VOCABULARY["hair"]]
    assert counts.sum() == 48 // 3 * 3 and set(np.flatnonzero(counts.sum(axis=1))) == set(asked)
    assert np.isclose(np.trace(counts) / counts.sum(), result["cond_acc_hair"], atol=1e-4)
    eyes = result["confusion"]["eyes"]  # grey is no colour of the encoder's: left out
    eyes_counts = np.array(eyes["asked_by_read"])
    assert eyes_counts.sum() == 48 == eyes_counts[eyes["colours"].index("brown")].sum()
    page, _ = report.build(run.parent, tmp_path / "report")
    assert f"{run.name}-confusion.png" in page.read_text()
    assert Image.open(tmp_path / "report" / f"{run.name}-confusion.png").size[0] > 500


def test_generate_takes_its_labels_from_a_files_rows(run, tmp_path, capsys):
    """--labels-from: each face's labels a row of the file's, so that faces asked for with the
    run's own data's rows are the faces of --condition for each row's values; a file whose
    values differ, or with a grid, is one line."""
    data = run.parent.parent / "faces.h5"
    generate.main([str(run), "--labels-from", str(data), "--n", "6", "--out", str(tmp_path / "a")])
    faces = faces_of(tmp_path / "a")
    rows = read_labels_of(data, ["hair", "eyes"])[0][np.random.default_rng(0).integers(0, 40, 6)]
    for i in (0, 5):  # face i is the i-th of --condition's faces for its row's values
        hair, eyes = (VOCABULARY[k][v] for k, v in zip(VOCABULARY, rows[i]))
        out = tmp_path / f"c{i}"
        generate.main([str(run), "--condition", f"hair={hair},eyes={eyes}", "--n", "6",
                       "--out", str(out)])
        np.testing.assert_array_equal(faces_of(out)[i], faces[i])
    other = tmp_path / "other.h5"
    write_h5(other, np.zeros((4, 16, 16, 3), np.uint8), np.zeros(4), [], ["x"] * 4,
             {"hair": (np.zeros(4, int), ("red",)), "eyes": (np.zeros(4, int), ("grey",))})
    capsys.readouterr()
    assert generate.main([str(run), "--labels-from", str(other), "--out", str(tmp_path / "b")]) == 2
    assert generate.main([str(run), "--labels-from", str(data), "--grid-by", "hair"]) == 2
    assert capsys.readouterr().err.splitlines() == [
        (f"error: --labels-from: {other}: its values of hair, eyes are not this run's "
        f"(model.condition_values)"),
        "error: --labels-from goes with plain sampling (--n), not with a grid"]
    assert not (tmp_path / "b").exists()


def test_a_run_whose_data_has_other_values_than_its_settings_is_one_line(tmp_path):
    from keras_ganime.training.fit import conditional_labels

    data = labelled(tmp_path / "faces.h5")
    values = """model.condition_values='{"hair": ["red", "blue", "teal"]}'"""
    cfg = config_lib.load(None, ['model.condition="hair"', values, f'data.path="{data}"'])
    with pytest.raises(DataError, match="its labels' values are not model.condition_values; "
                                        "leave that setting empty for a new run"):
        conditional_labels(cfg)
    cfg = config_lib.load(None, ['model.condition="hair"', f'data.path="{data}"'])
    assert conditional_labels(cfg).tolist() == [[i % 3] for i in range(40)]
    assert cfg.model.vocabulary() == {"hair": VOCABULARY["hair"]}
