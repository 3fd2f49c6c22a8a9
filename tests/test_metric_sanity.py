"""keras_ganime.evaluation.degrade and keras_ganime.evaluation.sanity: the disturbances, and a
small run of the metric sanity check (fid_anime, kid_anime and swd rise with the strength of
every disturbance).

The disturbances are checked on the built-in synthetic faces; the sanity run needs the real
faces in ../shared/data and skips where they are absent. `make check-metrics` runs the full set.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from keras_ganime.data.synthetic import draw_faces
from keras_ganime.evaluation import degrade, metrics, sanity

REPO = Path(__file__).resolve().parents[1]
FACES = REPO.parent / "shared" / "data" / "anime-faces-64"


@pytest.fixture(scope="module")
def faces() -> np.ndarray:
    return draw_faces(12, seed=5)[0]


@pytest.mark.parametrize("kind", list(degrade.DISTURBANCES))
def test_disturbance_grows_with_strength_and_is_deterministic(kind: str,
                                                              faces: np.ndarray) -> None:
    np.testing.assert_array_equal(degrade.degrade(faces, kind, 0.0, seed=1), faces)
    change = []
    for strength in (0.3, 0.6, 1.0):
        out = degrade.degrade(faces, kind, strength, seed=1)
        assert out.dtype == np.uint8 and out.shape == faces.shape
        np.testing.assert_array_equal(degrade.degrade(faces, kind, strength, seed=1), out)
        change.append(np.abs(out.astype(int) - faces).mean())
    assert 0 < change[0] < change[1] < change[2], change


def test_noise_depends_on_the_seed(faces: np.ndarray) -> None:
    assert not np.array_equal(degrade.degrade(faces, "noise", 0.5, seed=1),
                              degrade.degrade(faces, "noise", 0.5, seed=2))


def _sorted_tiles(images: np.ndarray) -> np.ndarray:
    """Each 64x64 image's 8x8 patches as rows, sorted: equal iff the patches were only moved."""
    n = len(images)
    tiles = images.reshape(n, 8, 8, 8, 8, 3).transpose(0, 1, 3, 2, 4, 5).reshape(n, 64, -1)
    return np.sort(tiles.view(np.dtype((np.void, tiles.shape[-1]))).squeeze(-1), axis=1)


def test_patches_only_move_patches(faces: np.ndarray) -> None:
    out = degrade.degrade(faces, "patches", 0.5, seed=0)
    np.testing.assert_array_equal(_sorted_tiles(out), _sorted_tiles(faces))
    moved = (out != faces).any(axis=-1).reshape(len(faces), 8, 8, 8, 8).any(axis=(2, 4))
    assert moved.sum(axis=(1, 2)).max() <= 32


def test_checkerboard_is_a_nyquist_spike(faces: np.ndarray) -> None:
    assert metrics.checkerboard_score(faces) < 1.5
    assert metrics.checkerboard_score(degrade.degrade(faces, "checkerboard", 0.25)) > 10


def test_synthetic_replaces_a_fraction(faces: np.ndarray) -> None:
    out = degrade.degrade(faces, "synthetic", 0.5, seed=0)
    replaced = (out != faces).any(axis=(1, 2, 3))
    assert replaced.sum() == 6


def test_bad_arguments(faces: np.ndarray) -> None:
    with pytest.raises(ValueError, match="unknown disturbance 'swirl'"):
        degrade.degrade(faces, "swirl", 0.5)
    with pytest.raises(ValueError, match=r"strength must be in \[0, 1\]"):
        degrade.degrade(faces, "blur", 1.5)
    with pytest.raises(ValueError, match="uint8"):
        degrade.degrade(faces.astype(np.float32), "blur", 0.5)


def test_metrics_rise_with_every_disturbance() -> None:
    if not FACES.is_dir():
        pytest.skip(f"{FACES} is absent")
    # Small and quick: 200 faces a set, 3 strengths, 2048 SWD patches, 10 KID subsets of 100.
    # In its own process, to set OPENBLAS_NUM_THREADS before numpy starts: on 2 busy cores
    # OpenBLAS's threads made FID's eigh 15 times slower, most of this test's time.
    result = subprocess.run(
        [sys.executable, "-m", "keras_ganime.sanity", "--n", "200", "--strengths", "0,0.5,1",
         "--swd-patches", "2048", "--kid-subsets", "10", "--kid-subset-size", "100",
         "--data", str(FACES), "--json"],
        capture_output=True, text=True, cwd=REPO, timeout=300, check=False,
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
    )
    assert result.returncode in (0, 1), result.stderr[-2000:]
    report = json.loads(result.stdout)
    rows = report["rows"]
    assert {(r["disturbance"], r["metric"]) for r in rows} == {
        (d, m) for d in degrade.DISTURBANCES for m in sanity.METRICS}
    # Strength 0 is one real-vs-real baseline, shared by every disturbance.
    assert len({(r["metric"], r["values"][0]) for r in rows}) == len(sanity.METRICS)
    failing = [sanity.Row(r["disturbance"], r["metric"], r["values"]) for r in rows
               if not r["monotonic"]]
    assert not failing, "\n" + sanity.table(failing, report["strengths"])
    assert report["all_monotonic"] and result.returncode == 0


def test_cli_names_a_missing_data_folder(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "keras_ganime.sanity", "--n", "10", "--data", str(tmp_path)],
        capture_output=True, text=True, cwd=REPO, timeout=120, check=False,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and str(tmp_path / "tags.csv") in result.stderr
