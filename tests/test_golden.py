"""The training code against golden runs recorded from the code before its refactor into an
engine and families (commit 282b381): the same losses and the same checkpoints, bit for bit.

Each run is a process of its own (tests/golden_run.py), since its threads, devices and oneDNN's
instruction set must be fixed before TensorFlow starts. The recordings were made with oneDNN
capped at AVX2, as every golden run is, so that a processor with AVX-512 runs the kernels of one
with only AVX2. On the recording's processor the comparison is bit for bit; on another with the
same instruction set, bit for bit where the bits match. Where they cannot (oneDNN on another
instruction set: a processor without AVX2, or ONEDNN_MAX_CPU_ISA set lower, e.g. AVX) or do not,
the first three loss rows are compared to a tolerance measured between instruction sets, every
row's NaNs and the checkpoints' keys, dtypes and shapes exactly, their bits not at all. Each
test prints the comparison it made (pytest -s shows it; one to a tolerance also warns).
"""

import json
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from tests.golden_run import ISA_CAP, verdict

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


def judged(fixture: str, recorded: dict, fresh: dict) -> tuple[str, list[str]]:
    """`verdict`, with the comparison it made printed, and warned of if it was not exact."""
    said, problems = verdict(recorded, fresh)
    note = f"{fixture}: compared {said}"
    print(note)
    if not said.startswith("bit for bit"):
        warnings.warn(note, stacklevel=2)
    return said, problems


@pytest.mark.parametrize("mode, fixture", [("one", "dcgan-one-device.json"),
                                           ("two", "dcgan-two-replicas.json")])
def test_training_matches_the_golden_run(tmp_path, mode, fixture):
    recorded = json.loads((FIXTURES / fixture).read_text())
    assert recorded["onednn_isa"] == f"Intel {ISA_CAP}", "recorded without the cap"
    fresh = fresh_recording(tmp_path, mode)
    _, problems = judged(fixture, recorded, fresh)
    versions = {k: (recorded[k], fresh[k]) for k in ("tensorflow", "keras")
                if recorded[k] != fresh[k]}
    assert not problems, (f"{len(problems)} differences (versions recorded, now: {versions}):\n"
                          + "\n".join(problems[:40]))


def test_a_step_changed_on_purpose_fails_the_comparison(tmp_path):
    """D's update on fakes moved before its update on reals: every row from the first differs,
    so the first row, compared in every case, fails; compared bit for bit, so do the
    checkpoints."""
    recorded = json.loads((FIXTURES / "dcgan-one-device.json").read_text())
    fresh = fresh_recording(tmp_path, "one", "--broken")
    said, problems = judged("dcgan-one-device.json, step broken", recorded, fresh)
    assert any(p.startswith("loss row 0 (step 1) d_loss") for p in problems), problems[:5]
    if said.startswith("bit for bit"):
        assert any(p.startswith("ckpt-12:") for p in problems), problems[-5:]
