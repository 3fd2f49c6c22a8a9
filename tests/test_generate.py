"""Sampling a run's generator (saved or from a checkpoint), interpolations, latent walks, the
training animation, and the one-line errors of both command lines."""

import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from keras_ganime import animate, evaluate, generate
from keras_ganime import config as config_lib
from keras_ganime.engines.tensorflow import Engine
from keras_ganime.training.loop import fit, new_run

SIZE = 16
LATENT = 8


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    """A finished 6-step run of the 16x16 model, trained once for the module."""
    tmp = tmp_path_factory.mktemp("runs")
    cfg = config_lib.load(None, [
        f"model.image_size={SIZE}", f"model.latent_dim={LATENT}", "train.batch_size=8",
        "train.warmup_steps=2", "train.steps=6", "output.log_every=1", "output.sample_every=3",
        "output.checkpoint_every=3", f'output.runs_dir="{tmp}"'])
    images = np.random.default_rng(0).integers(0, 256, (40, SIZE, SIZE, 3), dtype=np.uint8)
    with new_run(cfg) as run_dir:
        fit(Engine(cfg, images), run_dir, progress=False)
    return run_dir.path


@pytest.fixture(scope="module")
def stopped(run, tmp_path_factory) -> Path:
    """The same run as if it had been stopped at its last checkpoint: no generator.keras."""
    path = tmp_path_factory.mktemp("stopped") / run.name
    shutil.copytree(run, path)
    (path / "generator.keras").unlink()
    return path


def sample(source: Path, out: Path, *args: str) -> list[np.ndarray]:
    assert generate.main([str(source), "--out", str(out), *args]) == 0
    return [np.asarray(Image.open(p)) for p in sorted(out.glob("[0-9]*.png"))]


def picture(path: Path, rows: int, cols: int) -> np.ndarray:
    """A grid PNG, checked to be rows x cols tiles with viz.grid's 1-pixel borders."""
    image = np.asarray(Image.open(path))
    assert image.shape == (rows * (SIZE + 1) + 1, cols * (SIZE + 1) + 1, 3)
    return image


def tile(image: np.ndarray, row: int, col: int) -> np.ndarray:
    top, left = 1 + row * (SIZE + 1), 1 + col * (SIZE + 1)
    return image[top:top + SIZE, left:left + SIZE]


def test_run_and_its_generator_keras_give_the_same_samples(run, tmp_path, capsys):
    images = sample(run, tmp_path / "run", "--n", "10")
    assert len(images) == 10
    assert all(image.shape == (SIZE, SIZE, 3) for image in images)
    grid = picture(tmp_path / "run-grid.png", rows=3, cols=4)
    for i, image in enumerate(images):
        np.testing.assert_array_equal(tile(grid, *divmod(i, 4)), image)
    assert "00009.png" in capsys.readouterr().out
    from_file = sample(run / "generator.keras", tmp_path / "file", "--n", "10")
    np.testing.assert_array_equal(np.stack(from_file), np.stack(images))


def test_the_seed_decides_the_images(run, tmp_path):
    first = np.stack(sample(run, tmp_path / "a", "--n", "4", "--seed", "3"))
    again = np.stack(sample(run, tmp_path / "b", "--n", "4", "--seed", "3"))
    other = np.stack(sample(run, tmp_path / "c", "--n", "4", "--seed", "4"))
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, other)


def test_a_run_with_only_a_checkpoint_samples_as_its_generator_keras(run, stopped, tmp_path):
    assert not (stopped / "generator.keras").exists()
    restored = sample(stopped, tmp_path / "ckpt", "--n", "8", "--seed", "5")
    saved = sample(run / "generator.keras", tmp_path / "saved", "--n", "8", "--seed", "5")
    np.testing.assert_array_equal(np.stack(restored), np.stack(saved))


def test_interpolation_blends_linearly():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(3, LATENT)), rng.normal(size=(3, LATENT))
    z = generate.interpolation(a, b, 5).reshape(3, 5, LATENT)
    np.testing.assert_array_equal(z[:, 0], a)
    np.testing.assert_allclose(z[:, 2], (a + b) / 2)
    np.testing.assert_allclose(z[:, 4], b)


def test_interpolate_writes_one_blend_per_row(run, tmp_path):
    assert generate.main([str(run), "--out", str(tmp_path), "--interpolate", "--steps", "5"]) == 0
    image = picture(tmp_path / "interpolate.png", rows=generate.ROWS, cols=5)
    for row in range(generate.ROWS):
        assert not np.array_equal(tile(image, row, 0), tile(image, row, 4))


def test_walk_scales_one_component_through_the_original(run, tmp_path):
    steps = 7  # scales -3, -2, -1, 0, 1, 2, 3
    assert generate.main([str(run), "--out", str(tmp_path), "--walk", "2", "--steps", str(steps),
                          "--seed", "6"]) == 0
    image = picture(tmp_path / "walk_2.png", rows=generate.ROWS, cols=steps)
    original = int(np.argmin(np.abs(generate.walk_scales(steps) - 1.0)))
    plain = sample(run, tmp_path / "plain", "--n", str(generate.ROWS), "--seed", "6")
    for row in range(generate.ROWS):
        middle = tile(image, row, original).astype(int)
        # The unscaled column is the plain sample of the same vector; other batch sizes may
        # round a pixel the other way.
        assert np.abs(middle - plain[row]).max() <= 1
        for end in (0, steps - 1):
            assert np.abs(middle - tile(image, row, end)).max() > 1


def test_walk_changes_only_the_chosen_component():
    base = np.random.default_rng(2).normal(size=(2, LATENT))
    z = generate.walk(base, 3, 4).reshape(2, 4, LATENT)
    np.testing.assert_allclose(z[:, :, 3], base[:, 3:4] * np.linspace(-3, 3, 4))
    others = np.delete(base, 3, axis=1)[:, None].repeat(4, axis=1)
    np.testing.assert_array_equal(np.delete(z, 3, axis=2), others)


def test_manipulation_by_hand():
    base = np.arange(1.0, LATENT + 1)
    factors = np.array([-3.0, 0.5, 3.0])
    clean = generate.manipulation(base, [1, 4], factors).reshape(2, 3, LATENT)
    for row, c in enumerate([1, 4]):
        np.testing.assert_array_equal(clean[row, :, c], base[c] * factors)
        np.testing.assert_array_equal(np.delete(clean[row], c, axis=1),
                                      np.delete(base, c)[None].repeat(3, axis=0))
    # Seed 003's code: the second row still has component 1 at the last factor, 3.
    cumulative = generate.manipulation(base, [1, 4], factors, cumulative=True).reshape(2, 3, -1)
    np.testing.assert_array_equal(cumulative[0], clean[0])
    np.testing.assert_array_equal(cumulative[1, :, 1], [3 * base[1]] * 3)
    np.testing.assert_array_equal(cumulative[1, :, 4], base[4] * factors)
    assert generate.default_components(100) == "1,11,21,31,41,51,61,71,81,91"
    assert generate.default_components(LATENT) == "1"


def test_manipulate_draws_a_row_per_component(run, tmp_path, capsys):
    assert generate.main([str(run), "--out", str(tmp_path), "--manipulate",
                          "--components", "0,3,7"]) == 0
    image = picture(tmp_path / "manipulate.png", rows=3, cols=10)
    assert "rows: z[0], z[3], z[7]; columns: times -3.00, -2.33" in capsys.readouterr().out
    # K = 1 is not among linspace(-3, 3, 10): each row is a sweep through one component.
    for row in range(3):
        assert not np.array_equal(tile(image, row, 0), tile(image, row, 9))
    assert generate.main([str(run), "--out", str(tmp_path), "--manipulate", "--cumulative",
                          "--components", "0,3"]) == 0
    cumulative = picture(tmp_path / "manipulate-cumulative.png", rows=2, cols=10)
    np.testing.assert_array_equal(tile(cumulative, 0, 4), tile(image, 0, 4))  # the first row
    assert not np.array_equal(tile(cumulative, 1, 4), tile(image, 1, 4))


def test_animate_writes_one_frame_per_sample(run, tmp_path):
    assert animate.main([str(run), "--out", str(tmp_path / "t.gif"), "--ms", "120"]) == 0
    assert animate.main([str(run)]) == 0
    frames = list((run / "samples").glob("*.png"))
    assert len(frames) == 2  # steps 3 and 6
    for path in (tmp_path / "t.gif", run / "training.gif"):
        with Image.open(path) as gif:
            assert gif.n_frames == len(frames)
            assert gif.info["loop"] == 0
    with Image.open(tmp_path / "t.gif") as gif:
        assert gif.info["duration"] == 120


def test_frames_are_in_step_order(tmp_path):
    (tmp_path / "samples").mkdir()
    for name in ("10000000.png", "0000500.png", "0001000.png", "notes.png"):
        (tmp_path / "samples" / name).touch()
    names = [p.name for p in animate.sample_frames(tmp_path)]
    assert names == ["0000500.png", "0001000.png", "10000000.png"]


def config_only(run: Path, tmp_path: Path) -> Path:
    """A run directory made but not yet checkpointed."""
    path = tmp_path / "new-run"
    path.mkdir()
    shutil.copy(run / "config.toml", path)
    return path


@pytest.mark.parametrize("module, make_args, message", [
    pytest.param("generate", lambda run, tmp: [str(tmp / "missing")], "no such file",
                 id="missing-path"),
    pytest.param("generate", lambda run, tmp: [str(tmp)], "not a run directory", id="not-a-run"),
    pytest.param("generate", lambda run, tmp: [str(config_only(run, tmp))], "no checkpoint",
                 id="nothing-to-load"),
    pytest.param("generate", lambda run, tmp: [str(run), "--walk", str(LATENT)],
                 "outside [0, 8)", id="walk-past-latent"),
    pytest.param("generate", lambda run, tmp: [str(run), "--walk", "-1"], "outside [0, 8)",
                 id="walk-negative"),
    pytest.param("generate", lambda run, tmp: [str(run), "--n", "0"], "--n must be positive",
                 id="n-zero"),
    pytest.param("generate", lambda run, tmp: [str(run), "--manipulate", "--components", "1,8"],
                 "--components 8 outside [0, 8)", id="component-past-latent"),
    pytest.param("generate", lambda run, tmp: [str(run), "--cumulative"],
                 "--components and --cumulative go with --manipulate", id="cumulative-alone"),
    pytest.param("animate", lambda run, tmp: [str(config_only(run, tmp))], "no sample frames",
                 id="animate-no-frames"),
])
def test_errors_are_one_line(run, tmp_path, module, make_args, message):
    args = make_args(run, tmp_path)
    if module == "generate":
        args += ["--out", str(tmp_path / "out")]
    result = subprocess.run([sys.executable, "-m", f"keras_ganime.{module}", *args],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr
    assert message in lines[0]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_generated_folder_holds_the_samples_alone(run, tmp_path, capsys):
    out = tmp_path / "gen"
    assert generate.main([str(run), "--n", "7", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [f"{i:05d}.png" for i in range(7)]
    assert (tmp_path / "gen-grid.png").is_file()
    capsys.readouterr()
    reals = tmp_path / "reals"
    reals.mkdir()
    for i in range(3):
        Image.fromarray(np.full((SIZE, SIZE, 3), 40 * i, np.uint8)).save(reals / f"{i}.png")
    assert evaluate.main(["compare", str(reals), str(out), "--metrics", "checkerboard",
                          "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_b"] == 7


def test_the_default_folder_is_generated_in_the_run(run, tmp_path, capsys):
    copy = tmp_path / run.name
    shutil.copytree(run, copy)
    assert generate.main([str(copy), "--n", "3"]) == 0
    assert sorted(p.name for p in (copy / "generated").iterdir()) == [
        "00000.png", "00001.png", "00002.png"]
    assert (copy / "generated-grid.png").is_file()
    alone = tmp_path / "alone.keras"
    shutil.copy(run / "generator.keras", alone)
    capsys.readouterr()
    assert generate.main([str(alone), "--n", "3"]) == 2
    assert capsys.readouterr().err == (
        f"error: {alone}: a generator away from its run has no folder of its own for the "
        f"images; name one with --out\n")


def test_a_file_size_limit_is_one_line_and_leaves_no_folder(run, tmp_path, capsys):
    """The samples (about 800 bytes each) fit under the limit, their grid does not: one line,
    and the folder made for them is gone."""
    import resource

    out = tmp_path / "new" / "faces"
    limits = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (4000, limits[1]))
    try:  # Python ignores SIGXFSZ: a write past the limit fails with EFBIG
        code = generate.main([str(run), "--n", "16", "--out", str(out)])
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, limits)
    assert code == 2
    assert capsys.readouterr().err == (
        f"error: {tmp_path / 'new' / 'faces-grid.png'}: file too large; the file size limit "
        f"(ulimit -f) was reached; raise it\n")
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == []


def test_samples_are_written_a_chunk_at_a_time_and_the_space_checked(run, tmp_path, capsys,
                                                                    monkeypatch):
    """In chunks of 4, ten latents are drawn 4 at a time and their images rendered 4 + 4 + 2;
    a larger --n begins with a smaller one's images, and no two blocks are alike; the grid
    shows the first GRID_MAX (8 here); on a disk with no space free, the first chunk, encoded
    and not written, tells, and the folder goes."""
    from keras_ganime import engines
    from keras_ganime.images import convert

    whole = sample(run, tmp_path / "whole", "--n", "10")
    assert all((a == b).all() for a, b in zip(sample(run, tmp_path / "three", "--n", "3"),
                                              whole, strict=False))
    rendered, drawn = [], []
    real, latents = convert.render, engines.latents
    monkeypatch.setattr(convert, "render", lambda m, z: rendered.append(len(z)) or real(m, z))
    monkeypatch.setattr(engines, "latents",
                        lambda family, seed, n: drawn.append(n) or latents(family, seed, n))
    monkeypatch.setattr(generate, "CHUNK", 4)
    monkeypatch.setattr(generate, "GRID_MAX", 8)
    capsys.readouterr()
    chunked = sample(run, tmp_path / "chunked", "--n", "10")
    assert rendered == [4, 4, 2] and drawn == [4, 4, 4]
    assert len(chunked) == 10 and not (chunked[0] == chunked[4]).all()
    assert capsys.readouterr().out.splitlines()[-1].endswith(" (the first 8)")
    picture(tmp_path / "chunked-grid.png", 3, 3)
    six = sample(run, tmp_path / "six", "--n", "6")
    assert all((a == b).all() for a, b in zip(six, chunked, strict=False))
    usage = shutil.disk_usage
    written = []
    monkeypatch.setattr(generate.shutil, "disk_usage", lambda path: (
        written.extend(path.iterdir()) or usage(path)._replace(free=0)))
    rendered.clear()
    assert generate.main([str(run), "--n", "10", "--out", str(tmp_path / "full")]) == 2
    assert "would take about" in capsys.readouterr().err
    assert rendered == [4] and written == [] and not (tmp_path / "full").exists()


def test_damaged_checkpoints_are_skipped_in_one_line_each(stopped, tmp_path, capsys):
    """generate and evaluate take the newest checkpoint that reads completely; with none, one
    line says so."""
    run = tmp_path / stopped.name
    shutil.copytree(stopped, run)
    newest = run / "checkpoints" / "ckpt-6"
    next(newest.parent.glob("ckpt-6.data-*")).write_bytes(b"\0" * 100)
    assert generate.main([str(run), "--n", "2", "--out", str(tmp_path / "out")]) == 0
    skipped = f"skipped checkpoint {newest}: it does not read completely"
    assert [line[:len(skipped)] for line in capsys.readouterr().err.splitlines()] == [skipped]
    assert evaluate.main([str(run), "--metrics", "checkerboard", "--samples", "8",
                          "--json"]) == 0
    out = capsys.readouterr()
    assert json.loads(out.out)["step"] == 3 and out.err.startswith(skipped)
    (run / "checkpoints" / "ckpt-3.index").write_bytes(b"garbage")
    assert generate.main([str(run), "--n", "2", "--out", str(tmp_path / "out2")]) == 2
    # The skips are summed up in the error's one line: its newest, and why.
    (err,) = capsys.readouterr().err.splitlines()
    assert err.startswith(f"error: {run / 'checkpoints'}: none of its 2 checkpoints reads "
                          f"completely (the newest, ckpt-6: ")
    assert err.endswith("); start a new run, or copy the checkpoint files again")


def test_a_generator_away_from_its_run_samples_as_in_its_run(tmp_path):
    """A .keras export records its run's settings: away from its run, a generator of Gaussian
    noise draws Gaussian latents, as in its run; a file without the record (an older export) is
    still read, by its input shape, as the reference's (binary noise): other faces."""
    cfg = config_lib.load(None, [
        f"model.image_size={SIZE}", f"model.latent_dim={LATENT}", 'model.noise="gaussian"',
        "train.batch_size=8", "train.steps=2", f'output.runs_dir="{tmp_path / "runs"}"'])
    images = np.random.default_rng(0).integers(0, 256, (40, SIZE, SIZE, 3), dtype=np.uint8)
    with new_run(cfg) as run_dir:
        fit(Engine(cfg, images), run_dir, progress=False)
    alone = tmp_path / "alone.keras"
    shutil.copy(run_dir.path / "generator.keras", alone)
    in_run = np.stack(sample(run_dir.path, tmp_path / "a", "--n", "4", "--seed", "2"))
    np.testing.assert_array_equal(np.stack(sample(alone, tmp_path / "b", "--n", "4", "--seed",
                                                  "2")), in_run)
    with zipfile.ZipFile(alone) as archive:  # Keras's own three members, and the record
        assert len(archive.namelist()) == 3 and b"noise = \"gaussian\"" in archive.comment
    older = tmp_path / "older.keras"
    shutil.copy(alone, older)
    with zipfile.ZipFile(older, "a") as archive:
        archive.comment = b""
    assert not (np.stack(sample(older, tmp_path / "c", "--n", "4", "--seed", "2")) ==
                in_run).all()
