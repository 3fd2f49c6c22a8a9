"""What a user outside this checkout gets: the wheel carries every file the package tracks, and,
installed into a folder of its own, trains an experiment by name from an empty directory with a
milestone (so scoring it with the shipped encoder), then evaluates, generates and reports, and
writes nothing into its install; a run made with a relative data path resumes and evaluates from
another directory, with its config.toml kept true; and with standard error sent to a file, a run
still shows its progress."""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from keras_ganime.data import write_h5

ROOT = Path(__file__).resolve().parent.parent


def _run(command: list[str], cwd: Path, env: dict[str, str] | None = None,
         stderr=subprocess.PIPE) -> subprocess.CompletedProcess:
    done = subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=stderr,
                          text=True, timeout=600, check=False)
    assert done.returncode == 0, (done.stderr or "")[-3000:]
    return done


def _files(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*")}


def _tracked() -> list[str]:
    done = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip("not a git checkout: the wheel is built from the files git tracks")
    # Less what the working tree has deleted: the wheel is built from the files that are there.
    return [name for name in done.stdout.decode().split("\0")
            if name and ((ROOT / name).is_file() or (ROOT / name).is_symlink())]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from a copy of the files git tracks, as a clean clone would build it (a
    checkout's build/ folder can hold files that no longer exist)."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    for name in _tracked():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name, follow_symlinks=False)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    # The venv's setuptools builds it: no download, and the same files as an isolated build.
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp), str(source)], tmp)
    (built,) = tmp.glob("keras_ganime-*.whl")
    return built


def test_the_wheel_carries_every_file_the_package_tracks(wheel):
    shipped = {name for name in zipfile.ZipFile(wheel).namelist() if ".dist-info/" not in name}
    tracked = {name for name in _tracked() if name.startswith("keras_ganime/")}
    # What evaluation reads:
    assert "keras_ganime/evaluation/weights/anime_encoder.weights.h5" in tracked
    assert sorted(tracked - shipped) == [], "tracked, but not in the wheel"
    assert sorted(shipped - tracked) == [], "in the wheel, but not tracked"


@pytest.mark.integration
def test_the_installed_wheel_trains_evaluates_generates_and_reports_from_an_empty_directory(
        tmp_path, wheel):
    site, work = tmp_path / "site", tmp_path / "work"
    work.mkdir()
    _run([sys.executable, "-m", "pip", "--disable-pip-version-check", "-q", "install",
          "--no-deps", "--target", str(site), str(wheel)], tmp_path)
    installed = _files(site)
    # Byte code is Python's own cache, not the package's writing: kept out to see the rest.
    env = {**os.environ, "PYTHONPATH": str(site), "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "PYTHONDONTWRITEBYTECODE": "1"}
    where = _run([sys.executable, "-c", "import keras_ganime; print(keras_ganime.__file__)"],
                 work, env).stdout.strip()
    assert Path(where).is_relative_to(site), where
    command = [sys.executable, "-m"]
    # A milestone at the last step: the anime encoder's metrics from the installed weights.
    _run([*command, "keras_ganime.train", "--config", "batch16", "--steps", "5",
          "--set", "model.image_size=32", "--set", "data.synth_n=64",
          "--set", "output.log_every=1", "--set", 'output.milestones="5"',
          "--set", "eval.samples=64"], work, env)
    (run,) = (work / "runs").iterdir()
    assert run.name == "00000-batch16" and (run / "generator.keras").is_file()
    assert (run / "milestones" / "0000005.keras").is_file()
    assert (tmp_path / "cache" / "keras_ganime" / "synthetic-32px-64.h5").is_file()
    state = json.loads((run / "run.json").read_text())
    assert state["status"] == "done" and "eval_failures" not in state, state
    logged = (run / "metrics.csv").read_text().splitlines()
    assert logged[0].startswith("step,swd,fid_anime,kid_anime") and logged[1].startswith("5,")

    scored = json.loads(_run([*command, "keras_ganime.evaluate", "runs/00000-batch16",
                              "--json"], work, env).stdout)
    assert scored["step"] == 5 and scored["fid_anime"] > 0, scored
    _run([*command, "keras_ganime.generate", "runs/00000-batch16", "--n", "4", "--out",
          "faces"], work, env)
    assert len(list((work / "faces").glob("*.png"))) >= 4
    _run([*command, "keras_ganime.report"], work, env)
    assert "00000-batch16" in (work / "report" / "index.html").read_text()
    assert _files(site) == installed, "the run wrote into the installed package"


@pytest.mark.integration
def test_a_relative_data_path_resumes_from_elsewhere_and_progress_shows_in_a_log(tmp_path):
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    images = np.random.default_rng(0).integers(0, 256, (40, 16, 16, 3), np.uint8)
    write_h5(work / "faces.h5", images, np.zeros(40), [], ["x"] * 40)
    settings = ["model.image_size=16", "model.latent_dim=8", "train.batch_size=8",
                "train.warmup_steps=2", "output.log_every=1", "output.checkpoint_every=2",
                "output.progress_s=0", f'output.runs_dir="{tmp_path / "runs"}"']
    train = [sys.executable, "-m", "keras_ganime.train"]
    with open(tmp_path / "log", "w") as log:  # standard error to a file, as under nohup
        _run([*train, "--data", "faces.h5", "--steps", "4",
              *(x for s in settings for x in ("--set", s))], work, stderr=log)
    lines = [line for line in (tmp_path / "log").read_text().splitlines()
             if " step " in line]
    assert [line.split()[2] for line in lines] == ["1/4", "2/4", "3/4", "4/4"], lines
    assert all("images/s" in line and "elapsed" in line and "left" in line and " d0 " in line
               for line in lines)
    # G's warm-up (2 steps) holds its update: its loss shows as '-', and the line says when.
    assert [(" g - " in line, "(g starts at step 3)" in line) for line in lines] == [
        (True, True), (True, True), (False, False), (False, False)], lines
    (run,) = (tmp_path / "runs").iterdir()
    _run([*train, "--resume", str(run), "--steps", "6"], elsewhere)
    from keras_ganime import config as config_lib

    cfg = config_lib.read_run_config(run)
    assert cfg.train.steps == 6, "config.toml still holds the old step count"
    assert (cfg.data.path, cfg.data.resolved_path) == ("faces.h5", str(work / "faces.h5"))
    assert "step" in run.joinpath("loss.csv").read_text().splitlines()[0]
    assert [int(r.split(",")[0]) for r in (run / "loss.csv").read_text().splitlines()[1:]] == [
        1, 2, 3, 4, 5, 6]
    done = _run([sys.executable, "-m", "keras_ganime.evaluate", str(run), "--metrics",
                 "checkerboard", "--samples", "8"], elsewhere)
    assert "step 6" in done.stdout
