"""The training code against golden runs recorded from the code before its refactor into an
engine and families (commit 282b381): the same losses and the same checkpoints, bit for bit.

Each run is a process of its own (tests/golden_run.py), since its threads and devices must be
fixed before TensorFlow starts. On another processor only the loss rows are compared, to a
tolerance; the checkpoints' bits depend on the kernels the processor gets.
"""

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from tests.golden_run import compare, same_processor

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "golden"


def fresh_recording(tmp_path: Path, mode: str, *options: str) -> dict:
    out = tmp_path / "fresh.json"
    done = subprocess.run([sys.executable, "-m", "tests.golden_run", mode, str(out), *options],
                          cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    # The code under test is this checkout's, not whichever one the venv's editable install names.
    assert f"keras_ganime from {ROOT / 'keras_ganime'}" in done.stderr, done.stderr[-3000:]
    return json.loads(out.read_text())


@pytest.mark.parametrize("mode, fixture", [("one", "dcgan-one-device.json"),
                                           ("two", "dcgan-two-replicas.json")])
def test_training_matches_the_golden_run(tmp_path, mode, fixture):
    recorded = json.loads((FIXTURES / fixture).read_text())
    fresh = fresh_recording(tmp_path, mode)
    if not same_processor(recorded, fresh):
        note = (f"{fixture}: recorded on {recorded['processor']}, running on "
                f"{fresh['processor']}: loss rows compared to a tolerance, checkpoint hashes "
                "skipped")
        print(note)
        warnings.warn(note, stacklevel=1)
    versions = {k: (recorded[k], fresh[k]) for k in ("tensorflow", "keras")
                if recorded[k] != fresh[k]}
    problems = compare(recorded, fresh)
    assert not problems, (f"{len(problems)} differences (versions recorded, now: {versions}):\n"
                          + "\n".join(problems[:40]))


def test_a_step_changed_on_purpose_fails_the_comparison(tmp_path):
    """D's update on fakes moved before its update on reals: every row from the first differs."""
    recorded = json.loads((FIXTURES / "dcgan-one-device.json").read_text())
    problems = compare(recorded, fresh_recording(tmp_path, "one", "--broken"))
    assert any(p.startswith("loss row 0 (step 1) d_loss") for p in problems), problems[:5]
    assert any(p.startswith("ckpt-12:") for p in problems), problems[-5:]
