"""`make small-data` end to end at a test's size: subsets drawn, plain, augmented and adaptive
runs of the reference trained and scored, the table and the figure written, and a second call
that resumes with nothing left to do."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from keras_ganime import small_data
from tests.faces import tagged_faces

REPO = Path(__file__).resolve().parents[1]


def command(faces: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "keras_ganime.small_data", "--faces", str(faces), "--out",
         str(out), "--sizes", "16", *extra],
        check=False, capture_output=True, text=True, cwd=REPO)


def trained(result: subprocess.CompletedProcess) -> list[str]:
    """The runs a call trained, in order, as it names them."""
    return [line.split(":")[1].strip() for line in result.stdout.splitlines()
            if ": python -m keras_ganime.train" in line]


@pytest.mark.integration
def test_small_data_trains_scores_and_resumes(tmp_path):
    """Three runs of 24 steps scored at their checkpoint; called again, nothing to do; then to
    30 steps: each run resumed and only its new checkpoint scored."""
    faces = tagged_faces(tmp_path / "faces", n=200)
    out = tmp_path / "out"
    # 24 steps: G's first updates come after the reference's 20 warm-up steps.
    first = command(faces, out, "--steps", "24")
    assert first.returncode == 0, first.stderr[-3000:]
    assert trained(first) == ["n16-plain", "n16-augment", "n16-adaptive"]
    rows = {name: json.loads((out / "scores" / f"n16-{name}.json").read_text())
            for name in ("plain", "augment", "adaptive")}
    assert {name: [r["step"] for r in v] for name, v in rows.items()} == {
        "plain": [24], "augment": [24], "adaptive": [24]}
    # The augmentation reached the runs (D's updates from the first step): their faces differ.
    assert rows["augment"][0]["fid_anime"] != rows["plain"][0]["fid_anime"]
    for row in (r[0] for r in rows.values()):
        assert math.isfinite(row["fid_anime"]) and math.isfinite(row["kid_anime"])
        # 20 held-out faces, as many generated: each rate a whole number of twentieths.
        for rate in (row["copy_rate"], row["zero_marks"]):
            assert 0 <= rate <= 1 and math.isclose(rate * 20, round(rate * 20))
    config = next((out / "runs").glob("*-n16-adaptive/config.toml")).read_text()
    assert "adaptive = true" in config and "speed_images = 100000" in config
    table = (out / "small-data.md").read_text()
    assert table.count("\n| 16 |") == 3 and "20 generated faces" in table
    assert Image.open(out / "small-data.png").size[0] > 3 * 200

    again = command(faces, out, "--steps", "24")
    assert again.returncode == 0, again.stderr[-3000:]
    assert trained(again) == [] and " step 24: fid_anime" not in again.stdout
    assert (out / "small-data.md").read_text() == table

    longer = command(faces, out, "--steps", "30")
    assert longer.returncode == 0, longer.stderr[-3000:]
    assert trained(longer) == ["n16-plain", "n16-augment", "n16-adaptive"]
    assert longer.stdout.count("--resume") == 3 and " step 24: fid_anime" not in longer.stdout
    scored = json.loads((out / "scores" / "n16-plain.json").read_text())
    assert [r["step"] for r in scored] == [24, 30] and scored[0] == rows["plain"][0]
    assert "| 16 | plain | 30 |" in (out / "small-data.md").read_text()


def test_small_data_bad_input_is_one_line(tmp_path):
    result = command(tmp_path / "nowhere", tmp_path / "out")
    assert result.returncode == 2
    line = (f"error: {tmp_path / 'nowhere'}: no tags.csv; name a folder of tagged faces "
            f"(make small-data FACES=DIR)")
    assert result.stderr.strip().splitlines() == [line]
    assert not (tmp_path / "out").exists()


def test_plan_runs_adaptive_on_the_smallest_subset_only():
    assert [r.name for r in small_data.plan([500, 2000])] == [
        "n500-plain", "n500-augment", "n500-adaptive", "n2000-plain", "n2000-augment"]
