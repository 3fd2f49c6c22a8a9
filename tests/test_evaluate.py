"""Evaluation: metric routing, metrics during training, `evaluate RUN` and `evaluate compare`."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from keras_ganime.data import write_h5
from keras_ganime.engines.tensorflow import Engine
from keras_ganime.evaluate import main as evaluate_main
from keras_ganime.evaluation import encoder, features, metrics
from keras_ganime.evaluation.features import compute_metrics
from keras_ganime.evaluation.scorer import EvalError, Evaluator, Scorer
from keras_ganime.runs import read_csv
from keras_ganime.train import main as train_main
from keras_ganime.training.fit import evaluations_due
from keras_ganime.training.loop import fit, new_run
from tests.helpers import tiny

PIXEL_METRICS = "swd,checkerboard"


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (64, 16, 16, 3), dtype=np.uint8)


def test_scorer_embeds_its_reals_once(images, monkeypatch):
    seen = []

    def extractor(batch, progress=False):
        seen.append(len(batch))
        return batch.reshape(len(batch), -1, 3).mean(axis=1).astype(np.float64)

    monkeypatch.setattr(features, "get_extractor", lambda name, weights=None: extractor)
    scorer = Scorer(images[:32], ["fid_anime", "dup_anime", "swd"])
    first, second = scorer(images[32:48]), scorer(images[48:])
    assert seen == [32, 16, 16]  # the reals once; each set of fakes once, for both metrics
    reals = extractor(images[:32])
    assert first == compute_metrics(images[:32], images[32:48], ["fid_anime", "dup_anime", "swd"],
                                    real_features={"anime": reals})
    assert second["fid_anime"] == pytest.approx(metrics.fid(reals, extractor(images[48:])))


def test_scorer_checks_its_metrics_and_files(images, tmp_path):
    with pytest.raises(EvalError, match="unknown metric 'fid'"):
        Scorer(images, ["fid"])
    with pytest.raises(EvalError, match="needs an InceptionV3 weights file"):
        Scorer(images, ["fid_inception"])
    with pytest.raises(EvalError, match="nope.h5: no such InceptionV3 weights file"):
        Scorer(images, ["fid_inception"], str(tmp_path / "nope.h5"))


def test_scorer_samples_a_fixed_subset_of_reals(images):
    a = Scorer(images, ["swd"], samples=10, seed=3)
    b = Scorer(images, ["swd"], samples=10, seed=3)
    assert a.reals.shape == (10, 16, 16, 3)
    np.testing.assert_array_equal(a.reals, b.reals)


@pytest.fixture(scope="module")
def evaluated_run(tmp_path_factory, images):
    """A tiny run that logged the pixel metrics at steps 3 and 6."""
    cfg = tiny(**{"eval.every": 3, "eval.metrics": PIXEL_METRICS, "eval.samples": 32,
                  "output.runs_dir": str(tmp_path_factory.mktemp("runs"))})
    gan = Engine(cfg, images)
    with new_run(cfg) as run:
        fit(gan, run, progress=False, evaluator=Evaluator(cfg, images))
    return run.path


def test_training_logs_metrics_every_eval_every_steps(evaluated_run):
    rows = read_csv(evaluated_run / "metrics.csv")
    assert [r["step"] for r in rows] == [3, 6]
    assert list(rows[0]) == ["step", "swd", "checkerboard", "swd_patches", "eval_s", "wall_s"]
    assert all(r["swd"] > 0 and r["checkerboard"] > 0 for r in rows)
    # Beside each SWD, its patches per level: 128 from each of the 32 samples' images.
    assert all(r["swd_patches"] == 128 * 32 for r in rows)
    assert (evaluated_run / "metrics.png").stat().st_size > 1000


def test_evaluate_run_reproduces_the_metrics_logged_in_training(evaluated_run, images,
                                                                 monkeypatch, capsys):
    # The run's data is the in-memory images of the fixture: serve them as its dataset.
    monkeypatch.setattr("keras_ganime.data.load_images", lambda *a: images)
    assert evaluate_main([str(evaluated_run), "--all-checkpoints", "--json"]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    logged = read_csv(evaluated_run / "metrics.csv")
    assert [p["step"] for p in printed] == [3, 6]
    for result, row in zip(printed, logged, strict=True):
        saved = json.loads((evaluated_run / "eval" / f"{row['step']:07d}" / "metrics.json")
                           .read_text())
        assert saved == result
        # Same weights (restored from the checkpoint), same latents, same reals: same numbers.
        assert result["swd"] == pytest.approx(row["swd"], rel=1e-6)
        assert result["checkerboard"] == pytest.approx(row["checkerboard"], rel=1e-6)
        assert result["swd_patches"] == row["swd_patches"] == 128 * 32


def write_folder(path, images):
    path.mkdir()
    for i, image in enumerate(images):
        Image.fromarray(image).save(path / f"{i:03d}.png")
    return path


def test_compare_a_folder_with_an_hdf5_file_prints_one_json_line(tmp_path, images):
    folder = write_folder(tmp_path / "a", images[:32])
    h5 = tmp_path / "b.h5"
    write_h5(h5, images[32:], np.zeros(32, np.int32), [], [str(i) for i in range(32)])
    result = subprocess.run(
        [sys.executable, "-m", "keras_ganime.evaluate", "compare", str(folder), str(h5),
         "--metrics", PIXEL_METRICS, "--json"], capture_output=True, text=True, check=True)
    line = json.loads(result.stdout)
    assert line["n_a"] == line["n_b"] == 32
    assert line["swd"] == pytest.approx(metrics.swd(images[:32], images[32:])["swd_mean"])
    assert line["checkerboard"] == pytest.approx(metrics.checkerboard_score(images[32:]))


def test_compare_samples_both_sets_to_one_size(tmp_path, images, capsys):
    write_h5(tmp_path / "a.h5", images[:40], np.zeros(40, np.int32), [], ["a"] * 40)
    write_h5(tmp_path / "b.h5", images[40:], np.zeros(24, np.int32), [], ["b"] * 24)
    assert evaluate_main(["compare", str(tmp_path / "a.h5"), str(tmp_path / "b.h5"),
                          "--metrics", "swd", "--sample", "20", "--json"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["n_a"] == line["n_b"] == 20
    pick = np.sort(np.random.default_rng(0).choice(40, 20, replace=False))
    b = images[40:][np.sort(np.random.default_rng(0).choice(24, 20, replace=False))]
    assert line["swd"] == pytest.approx(metrics.swd(images[:40][pick], b)["swd_mean"])


@pytest.mark.parametrize(("args", "message"), [
    (["compare", "{tmp}/missing", "{tmp}/missing"], "missing: no such file"),
    (["compare", "{tmp}", "{tmp}", "--sample", "1"], "--sample must be at least 2, got 1"),
    (["compare", "{tmp}", "{tmp}", "--metrics", "fid"], "unknown metric 'fid'"),
    (["{tmp}"], "not a run directory (no config.toml)"),
])
def test_bad_requests_get_one_line(tmp_path, capsys, args, message):
    assert evaluate_main([a.format(tmp=tmp_path) for a in args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


# --- what a run's evaluations need, checked before its first step ---------------------------


@pytest.fixture
def no_encoder_weights(tmp_path, monkeypatch):
    """The shipped weights out of reach, as in an install that lost them."""
    monkeypatch.setattr(encoder, "WEIGHTS", tmp_path / "gone" / "anime_encoder.weights.h5")
    features.get_extractor.cache_clear()  # an extractor built by an earlier test is not reused
    yield
    features.get_extractor.cache_clear()


def tiny_run_argv(tmp_path, images, *settings: str) -> list[str]:
    write_h5(tmp_path / "d.h5", images, np.zeros(len(images)), [], ["x"] * len(images))
    base = ("model.image_size=16", "model.latent_dim=8", "train.batch_size=8",
            "train.warmup_steps=2", "output.log_every=1", "eval.samples=16",
            f'output.runs_dir="{tmp_path / "runs"}"')
    return ["--data", str(tmp_path / "d.h5"), "--steps", "4",
            *(x for s in (*base, *settings) for x in ("--set", s))]


@pytest.mark.parametrize("due", ['output.milestones="4"', "eval.every=2"])
def test_a_run_without_the_encoders_weights_stops_before_its_first_step(
        tmp_path, images, no_encoder_weights, capsys, due):
    assert train_main(tiny_run_argv(tmp_path, images, due)) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("error: "), err
    assert "gone/anime_encoder.weights.h5: no such file" in err[0]
    assert "pip install --force-reinstall --no-deps" in err[0]
    assert not (tmp_path / "runs").exists(), "a run directory was made for a run that can't run"


def test_a_run_that_evaluates_nothing_within_its_steps_trains_without_them(
        tmp_path, images, no_encoder_weights):
    """The negative control: the same missing weights, a milestone past the run's steps."""
    assert train_main(tiny_run_argv(tmp_path, images, 'output.milestones="30000"')) == 0
    (run,) = (tmp_path / "runs").iterdir()
    assert json.loads((run / "run.json").read_text())["status"] == "done"


def test_an_evaluation_failing_mid_run_is_a_line_in_run_json_and_training_goes_on(
        tmp_path, images, monkeypatch, capsys):
    def fail(*args, **kwargs):
        raise ValueError("\nfeatures must be finite\nsecond line of the message")

    monkeypatch.setattr(features, "compute_metrics", fail)
    cfg = tiny(**{"eval.every": 2, "eval.metrics": PIXEL_METRICS, "eval.samples": 16,
                  "output.runs_dir": str(tmp_path / "runs")})
    with new_run(cfg) as run:
        fit(Engine(cfg, images), run, progress=False, evaluator=Evaluator(cfg, images))
    state = json.loads((run.path / "run.json").read_text())
    assert state["status"] == "done" and state["step"] == 6
    assert state["last_eval_error"] == "ValueError: features must be finite"
    assert (state["last_eval_error_step"], state["eval_failures"]) == (6, 3)
    assert [r["step"] for r in run.read_losses()] == [1, 2, 3, 4, 5, 6]
    assert sorted(p.name for p in run.checkpoints.glob("ckpt-*.index")) == [
        "ckpt-3.index", "ckpt-6.index"]
    lines = [line for line in capsys.readouterr().err.splitlines() if "evaluation at" in line]
    assert [line.split()[3] for line in lines] == ["2", "4", "6"]
    assert all("training goes on" in line and "\n" not in line for line in lines)
    assert not (run.path / "metrics.csv").exists()


def test_a_run_with_one_real_image_cannot_be_scored_and_stops_before_its_first_step(
        tmp_path, images, capsys):
    assert train_main(tiny_run_argv(tmp_path, images[:1], "train.batch_size=1",
                                    'eval.metrics="swd"', "eval.every=2")) == 2
    err = capsys.readouterr().err.strip()
    assert err == ('error: the metrics need at least 2 real images, the data has 1; set '
                   'eval.metrics="" to train without'), err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(("settings", "after", "due"), [
    ({"output.milestones": "4"}, 0, True),
    ({"output.milestones": "30000"}, 0, False),  # past the run's 6 steps
    ({"output.milestones": "4"}, 4, False),  # resumed at the milestone: behind it
    ({"output.milestones": "2,5"}, 4, True),
    ({"eval.every": 4}, 0, True),
    ({"eval.every": 4}, 4, False),  # the next, 8, is past the steps
    ({"eval.every": 7}, 0, False),
    ({"output.milestones": "4", "eval.metrics": ""}, 0, False),  # nothing to score
    ({"output.milestones": "6"}, 6, False),  # a run already at its end
])
def test_evaluations_are_due_for_what_lies_ahead_of_a_run(settings, after, due):
    cfg = tiny(**{"output.milestones": "", **settings})
    assert evaluations_due(cfg, after) is due


def test_a_column_older_rows_lack_is_written_as_nan_and_read_back(tmp_path):
    """A run logged before swd_patches was recorded, resumed: its older rows lack the column,
    written as NaN (an empty cell would not read back as a float)."""
    from keras_ganime.runs import RunDir

    (tmp_path / "run").mkdir()
    with RunDir(tmp_path / "run") as run:
        run.write_csv("metrics.csv", [{"step": 3, "swd": 1.5},
                                      {"step": 6, "swd": 1.2, "swd_patches": 4096}],
                      ["step", "swd", "swd_patches"])
        rows = run.read_csv("metrics.csv")
    assert [r["step"] for r in rows] == [3, 6] and np.isnan(rows[0]["swd_patches"])
    assert rows[1]["swd_patches"] == 4096
