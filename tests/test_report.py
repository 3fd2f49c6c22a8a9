"""The HTML report: runs grouped by experiment, seeds summarised, every picture beside the page."""

import json
import re
import statistics

import numpy as np
import pytest

from keras_ganime.config import experiments
from keras_ganime.engines.tensorflow import Engine
from keras_ganime.evaluation.scorer import Evaluator
from keras_ganime.families import SPECS
from keras_ganime.report import chosen_steps, main, read_run, score_rows, spread, who_says
from keras_ganime.settings import ConfigError
from keras_ganime.training.loop import fit, new_run
from tests.helpers import tiny


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory):
    """Two seeds of the batch16 experiment (tiny), one of which is marked failed."""
    images = np.random.default_rng(0).integers(0, 256, (64, 16, 16, 3), dtype=np.uint8)
    root = tmp_path_factory.mktemp("runs")
    for seed in (0, 1):
        cfg = tiny(**{"train.seed": seed, "output.name": "batch16", "eval.every": 3,
                      "eval.metrics": "swd,checkerboard", "eval.samples": 32,
                      "output.runs_dir": str(root)})
        with new_run(cfg) as run:
            fit(Engine(cfg, images), run, progress=False, evaluator=Evaluator(cfg, images))
    info = json.loads((root / "00001-batch16" / "run.json").read_text())
    info.update(failed_at=5, reason="g_loss above 15 for more than 30 steps in a row",
                eval_failures=2, last_eval_error="ValueError: x", last_eval_error_step=6)
    (root / "00001-batch16" / "run.json").write_text(json.dumps(info))
    return root


def test_report_page_and_its_pictures(runs_dir, tmp_path):
    out = tmp_path / "report"
    assert main(["--runs", str(runs_dir), "--out", str(out)]) == 0
    page = (out / "index.html").read_text()
    assert experiments()["batch16"].paper in page
    assert "2 run(s)" in page and "seeds 0, 1" in page
    assert "g_loss above 15 for more than 30 steps in a row" in page
    assert "2 evaluation(s) failed, the last at step 6: ValueError: x" in page
    # tiny's warm-up: 2 steps without G's update, said once per run.
    assert page.count("G's warm-up held its updates for the first 2 steps (train.warmup_steps):"
                      " its loss starts at step 3.") == 2
    # Every picture the page names is beside it: two loss plots, one metric plot, and the
    # fixed-noise grids of both runs at steps 3 and 6.
    pictures = re.findall(r'src="([^"]+)"', page)
    assert len(pictures) == 2 + 1 + 2 * 2
    assert all((out / p).stat().st_size > 100 for p in pictures)
    runs = [read_run(runs_dir / name) for name in ("00000-batch16", "00001-batch16")]
    swd = [r.scores[-1]["swd"] for r in runs]
    expected = f"{statistics.fmean(swd):.3g} ± {statistics.stdev(swd):.2g}"
    assert f"<td>swd at 6</td><td>{expected}</td>" in page
    assert "<td>failed at step</td><td>5 (1 of 2)</td>" in page

SCORES = SPECS["dcgan"].scores


def test_seed_002s_table_of_losses_and_scores_per_run(runs_dir, tmp_path):
    run = read_run(runs_dir / "00000-batch16")
    rows = score_rows(run.losses, SCORES)
    # Six logged steps (1 to 6) of six at most: all of them, each one step's values.
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5, 6]
    last = run.losses[-1]
    assert rows[-1] == {"step": 6, "g_loss": last["g_loss"],
                        "d_loss": last["d_loss0"] + last["d_loss1"],
                        "real_score": last["real_score"], "fake_score": last["fake_score"]}
    assert main(["--runs", str(runs_dir), "--out", str(tmp_path / "r")]) == 0
    page = (tmp_path / "r" / "index.html").read_text()
    assert page.count('<table class="scores">') == 2  # one per run
    assert (f"<td>6</td><td>{last['g_loss']:.4f}</td><td>{rows[-1]['d_loss']:.4f}</td>"
            f"<td>{last['real_score']:.4f}</td><td>{last['fake_score']:.4f}</td>") in page
    assert "The paper reports:" in page  # batch16 is the paper's; a seed's preset names its seed
    assert score_rows([{"step": s, "g_loss": 1.0, "d_loss0": 0.5, "d_loss1": 0.25,
                        "real_score": 0.9, "fake_score": 0.1} for s in range(1, 101)],
                      SCORES)[-1] == {
        "step": 100, "g_loss": 1.0, "d_loss": 0.75, "real_score": 0.9, "fake_score": 0.1}
    assert [r["step"] for r in score_rows([{"step": s, "g_loss": 1.0, "d_loss0": 0.5,
                                            "d_loss1": 0.25, "real_score": 0.9,
                                            "fake_score": 0.1} for s in range(1, 101)],
                                          SCORES)] == [
        1, 21, 41, 60, 80, 100]


def test_chosen_steps(runs_dir):
    runs = [read_run(p) for p in sorted(runs_dir.iterdir())]
    assert chosen_steps(runs, None) == [3, 6]
    assert chosen_steps(runs, [5, 100]) == [3, 6]


def test_another_sources_preset_is_quoted_as_that_source():
    assert who_says("seed002") == ("Anik et al., \"Automatic Anime Characters Creation with GANs\" "
                                   "(Jovian's notebook 06b-anime-dcgan)")
    assert who_says("batch16") == "the paper" == who_says("carpedm20-dskip")
    assert "real score 0.968" in experiments()["seed002"].paper


def test_spread():
    assert spread([1.0, 3.0]) == "2 ± 1.4"
    assert spread([None, None]) == "–"
    assert spread([2.0, None]) == "2 (1 of 2)"


def test_no_runs_is_one_line(tmp_path, capsys):
    assert main(["--runs", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path}: holds no run directory\n"


def test_a_folder_that_is_not_a_readable_run_is_named_with_why(runs_dir, tmp_path, capsys):
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "00000-batch16").symlink_to(runs_dir / "00000-batch16")
    (runs / "00001-broken").mkdir()
    (runs / "00001-broken" / "config.toml").write_text("[train]\nbatch_size = -3\n")
    (runs / "notes").mkdir()
    assert main(["--runs", str(runs), "--out", str(tmp_path / "report")]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err[0] == ("skipped 00001-broken: " + str(runs / "00001-broken" / "config.toml")
                      + ": train.batch_size must be positive, got -3")
    assert err[1].startswith("skipped notes: ") and "not a run directory" in err[1]
    page = (tmp_path / "report" / "index.html").read_text()
    assert "skipped 00001-broken" in page and "1 run(s)" in page


def test_milestones_keep_the_generator_score_it_and_fill_the_report(tmp_path):
    """Milestones scaled down by the setting: the generator kept and scored at steps 2 and 5
    with no other evaluation, a grid there, and the report's columns at those steps."""
    images = np.random.default_rng(0).integers(0, 256, (64, 16, 16, 3), dtype=np.uint8)
    cfg = tiny(**{"train.steps": 8, "output.milestones": "2,5", "output.sample_every": 100,
                  "eval.metrics": "swd,checkerboard", "eval.samples": 32,
                  "output.name": "batch16", "output.runs_dir": str(tmp_path / "runs")})
    with new_run(cfg) as run:
        fit(Engine(cfg, images), run, progress=False, evaluator=Evaluator(cfg, images))
    assert sorted(p.name for p in (run.path / "milestones").iterdir()) == [
        "0000002.keras", "0000005.keras"]
    scores = run.read_csv("metrics.csv")
    assert [r["step"] for r in scores] == [2, 5] and all(r["eval_s"] > 0 for r in scores)
    assert sorted(int(p.stem) for p in (run.path / "samples").glob("*.png")) == [2, 5, 8]
    out = tmp_path / "report"
    assert main(["--runs", str(tmp_path / "runs"), "--out", str(out)]) == 0
    page = (out / "index.html").read_text()
    for step, row in zip((2, 5), scores, strict=True):
        assert f"<td>swd at {step}</td><td>{row['swd']:.3g}</td>" in page
        assert f'src="00000-batch16-{step:07d}.png"' in page
    assert "00000-batch16-0000008.png" not in page


def test_milestones_must_be_steps():
    with pytest.raises(ConfigError, match="output.milestones must be positive steps"):
        tiny(**{"output.milestones": "100,x"})
