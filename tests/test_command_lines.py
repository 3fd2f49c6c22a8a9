"""Every command line checks its arguments and settings before TensorFlow loads: a bad one is one
line on stderr, exit status 2, and no TensorFlow imported (its start-up costs seconds and writes
log lines that would bury the error)."""

import re
import subprocess
import sys

import pytest

CASES = [
    ("train", ["--steps", "-3", "--dry-run"], "error: train.steps must be positive, got -3"),
    ("train", ["--set", "labels.soft=2"], r"error: labels.soft must be in \[0, 1\], got 2.0"),
    ("train", ["--set", 'model.family="nosuch"'], "error: --set: model.family must be one of"),
    ("train", ["--config", "nosuch"], ("error: nosuch: no such config file or experiment; "
                                      "experiments: default, adamax, batch128")),
    ("generate", ["RUN", "--n", "0", "--out", "OUT"], "error: --n must be positive, got 0"),
    ("generate", ["RUN", "--out", "OUT"], "error: RUN: no such file or directory"),
    ("generate", ["BAD", "--out", "OUT"], "error: BAD/config.toml: train.batch_size must be"),
    ("evaluate", ["compare", "A", "B", "--metrics", "fid"], "error: unknown metric 'fid'"),
    ("evaluate", ["RUN"], "error: RUN: not a run directory"),
    ("evaluate", ["BAD"], "error: BAD/config.toml: train.batch_size must be positive"),
    ("train", ["--data", "missing.h5"], "error: missing.h5: no such file"),
    ("data", ["synth", "OUT.h5", "--n", "-1"], "error: --n must be positive, got -1"),
    ("report", ["--steps", "x"], "error: --steps must be comma-separated integers"),
    ("animate", ["RUN", "--ms", "0"], "error: --ms must be positive, got 0"),
    ("bench", ["--batches", "-1"], "error: --batches must be positive integers"),
    ("sanity", ["--data", "A", "--strengths", "x"],
     "error: --strengths must be comma-separated numbers"),
]


@pytest.mark.parametrize("tool, argv, message", CASES, ids=[f"{c[0]}:{c[1][-1]}" for c in CASES])
def test_a_bad_argument_is_one_line_before_tensorflow(tmp_path, tool, argv, message):
    # BAD: a run directory whose config.toml holds a bad setting. Bad files of every other kind
    # (configs, data, runs, models): tests/test_bad_input.py.
    (tmp_path / "BAD").mkdir()
    (tmp_path / "BAD" / "config.toml").write_text("[train]\nbatch_size = -3\n")
    paths = ("RUN", "BAD", "OUT", "A", "B", "OUT.h5")
    argv = [str(tmp_path / a) if a in paths else a for a in argv]
    for name in ("RUN", "BAD"):
        message = message.replace(name, str(tmp_path / name))
    module = "keras_ganime.data.__main__" if tool == "data" else f"keras_ganime.{tool}"
    code = (f"import importlib, sys\nstatus = importlib.import_module({module!r}).main({argv!r})\n"
            f"print('tensorflow' in sys.modules)\nsys.exit(status)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120, check=False)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert re.match(message, lines[0]), lines[0]
    assert done.stdout.strip() == "False", "TensorFlow was imported"
