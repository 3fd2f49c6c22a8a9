"""The training code against golden runs recorded from the code before its refactor into an
engine and families (commit 282b381): the same losses and the same checkpoints, bit for bit.

Each run is a process of its own (tests/golden_run.py), since its threads, devices and oneDNN's
instruction set must be fixed before TensorFlow starts. The recordings were made with oneDNN
capped at AVX2, as every golden run is, one per processor (an AMD EPYC with AVX2 only, one with
AVX-512), since oneDNN's kernels size their blocks by the processor's caches and the last bits
follow. On a processor with a recording of its own the comparison is bit for bit against it; on
another, bit for bit where one recording's bits all match. Where none can (oneDNN on another
instruction set: a processor without AVX2, or ONEDNN_MAX_CPU_ISA set lower, e.g. AVX) or none
does, the first three loss rows are compared to a tolerance measured between instruction sets,
every row's NaNs and the checkpoints' keys, dtypes and shapes exactly, their bits not at all.
Each test prints the comparison it made (pytest -s shows it; one to a tolerance also warns).
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


def recordings(fixture: str) -> dict[str, dict]:
    """Every processor's recording of one mode, by file name."""
    found = {p.name: json.loads(p.read_text())
             for p in sorted(FIXTURES.glob(f"{fixture}.*.json"))}
    assert found, f"no recording of {fixture} in {FIXTURES}"
    for name, recorded in found.items():
        assert recorded["onednn_isa"] == f"Intel {ISA_CAP}", f"{name}: recorded without the cap"
    return found


def judged(fixture: str, recorded: dict[str, dict], fresh: dict) -> tuple[str, list[str]]:
    """`verdict`, with the comparison it made printed, and warned of if it was not exact."""
    said, problems = verdict(recorded, fresh)
    note = f"{fixture}: compared {said}"
    print(note)
    if not said.startswith("bit for bit"):
        warnings.warn(note, stacklevel=2)
    return said, problems


@pytest.mark.parametrize("mode, fixture", [("one", "dcgan-one-device"),
                                           ("two", "dcgan-two-replicas")])
def test_training_matches_the_golden_run(tmp_path, mode, fixture):
    recorded = recordings(fixture)
    fresh = fresh_recording(tmp_path, mode)
    _, problems = judged(fixture, recorded, fresh)
    versions = {k: ({r[k] for r in recorded.values()}, fresh[k]) for k in ("tensorflow", "keras")
                if {r[k] for r in recorded.values()} != {fresh[k]}}
    assert not problems, (f"{len(problems)} differences (versions recorded, now: {versions}):\n"
                          + "\n".join(problems[:40]))


def test_a_step_changed_on_purpose_fails_the_comparison(tmp_path):
    """D's update on fakes moved before its update on reals: every row from the first differs,
    so the first row, compared in every case, fails; compared bit for bit, so do the
    checkpoints."""
    fresh = fresh_recording(tmp_path, "one", "--broken")
    said, problems = judged("dcgan-one-device, step broken", recordings("dcgan-one-device"), fresh)
    assert any(p.startswith("loss row 0 (step 1) d_loss") for p in problems), problems[:5]
    if said.startswith("bit for bit"):
        assert any(p.startswith("ckpt-12:") for p in problems), problems[-5:]


def _as_if(recorded: dict, **changes) -> dict:
    """A copy of a recording, as a fresh one made elsewhere would be."""
    return {**json.loads(json.dumps(recorded)), **changes}


def test_the_verdict_holds_each_processor_to_its_own_recording():
    """How `verdict` chooses, on the stored recordings alone: a processor with a recording of its
    own is held to its bits (the other processor's recording, one ulp apart from step 2, fails
    it); another processor passes bit for bit where one recording matches, and to the tolerance
    where none does; another instruction set gets the tolerance."""
    stored = recordings("dcgan-one-device")
    avx2, avx512 = (stored[f"dcgan-one-device.epyc-{k}.json"] for k in ("avx2", "avx512"))
    elsewhere = {"model_name": "Some CPU", "flags_sha256": "0" * 64}

    said, problems = verdict(stored, _as_if(avx2, processor=avx512["processor"]))
    assert said.startswith("bit for bit with dcgan-one-device.epyc-avx512.json"), said
    assert problems[0].startswith("loss row 1 (step 2) d_loss1"), problems[:3]

    said, problems = verdict(stored, _as_if(avx512, processor=elsewhere))
    assert said == ("bit for bit with dcgan-one-device.epyc-avx512.json (oneDNN on Intel AVX2, "
                    "another processor's recording)") and problems == []

    nudged = _as_if(avx512, processor=elsewhere)
    nudged["rows"][5] = {**nudged["rows"][5], "g_loss": nudged["rows"][5]["g_loss"] * (1 + 1e-7)}
    said, problems = verdict(stored, nudged)
    assert said.startswith("to a tolerance with dcgan-one-device.epyc-avx2.json: no recording "
                           "from this processor"), said
    assert problems == []
    said, problems = verdict(stored, {**nudged, "processor": avx512["processor"]})
    assert problems == [(f"loss row 5 (step 6) g_loss: {avx512['rows'][5]['g_loss']!r} "
                         f"recorded, {nudged['rows'][5]['g_loss']!r} now")], problems

    said, problems = verdict(stored, _as_if(avx2, onednn_isa="Intel AVX"))
    assert "recorded with oneDNN on Intel AVX2, running on Intel AVX;" in said and problems == []
    broken = _as_if(avx2, onednn_isa="Intel AVX")
    broken["rows"][0] = {**broken["rows"][0], "d_loss0": broken["rows"][0]["d_loss0"] * 1.001}
    assert verdict(stored, broken)[1][0].startswith("loss row 0 (step 1) d_loss0"), "not compared"
