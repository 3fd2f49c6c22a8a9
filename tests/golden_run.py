"""Golden runs: a short training run through the command line, recorded so that a refactor of the
training code can be checked bit for bit against the code it replaces.

    python -m tests.golden_run one OUT.json   # one CPU device
    python -m tests.golden_run two OUT.json   # MirroredStrategy over two logical CPU devices
    python -m tests.golden_run one OUT.json --broken   # D's two updates swapped, on purpose

Only `keras_ganime.train.main(argv)` is used, the command line that must outlive any refactor.
OUT.json holds the loss.csv rows (less the timing columns), a sha256 of every tensor of the
checkpoints at steps 6 and 12, the instruction set oneDNN ran on and the processor, and the
TensorFlow and Keras versions. `compare` checks a fresh recording against a stored one
(tests/test_golden.py).

Bits across processors: TensorFlow's own (Eigen) kernels are fixed when its wheel is built, but
oneDNN, which runs the convolutions, matrix products and batch normalisations, picks its kernels
by the processor's instruction set when it starts, and the last bits of every float follow. So a
golden run caps oneDNN at AVX2 (ONEDNN_MAX_CPU_ISA; a cap the environment sets wins, as a way
to see the fallback), so that a processor with AVX-512 runs the kernels an AVX2 one does.

The cap is not enough for the same bits everywhere: oneDNN's kernels also size their blocks by
the processor's caches, which changes the order of their sums. Measured on 2026-12-07: the code of
282b381 under the cap gave, on an AMD EPYC with AVX-512 (Zen 4: family 25, model 17, 1 MiB of L2
per core), 193 one-ulp-and-growing differences in one-device mode (196 in two-replica mode) from
its recording on an AMD EPYC with AVX2 only, from loss row 1 on (row 11's d_loss0: 1.3737428
against 1.3692662), while the current code gave that processor's bits exactly in both modes. So
there is a recording per processor (tests/fixtures/golden/dcgan-MODE.PROCESSOR.json, each from
282b381), and `verdict` compares a fresh recording with them:
- a recording from this processor (the same model name and feature flags) under the same
  instruction set: bit for bit against it, every loss row and checkpoint tensor;
- none, but one under the same instruction set whose bits all match: bit for bit, and it says
  which;
- else (another processor whose bits differ, or another instruction set: a processor without
  AVX2, or ONEDNN_MAX_CPU_ISA set lower), what can be compared: the first FOREIGN_ROWS loss rows
  to FOREIGN_RTOL, measured between instruction sets (below), every row's NaNs, and the
  checkpoints' keys, dtypes and shapes. To hold such a processor to every bit, record its own
  from 282b381 (`git worktree add DIR 282b381`, this file copied to DIR/tests, then
  `python -m tests.golden_run MODE OUT.json` in DIR for both modes).

Encodings: every loss.csv value is a float, `step` too; non-finite values (G's loss is NaN during
the warm-up) are the strings "nan", "inf" and "-inf", so that the file is standard JSON. The
checkpoints keep every key but `_CHECKPOINTABLE_OBJECT_GRAPH` (a serialized proto, not a tensor);
`save_counter` is kept: the run is made in one go, so its value (1 at step 6, 2 at step 12) is
fixed, and it pins how many times the loop saved.
"""

from __future__ import annotations

import contextlib
import csv
import ctypes
import hashlib
import json
import math
import os
import platform
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# Its environment defaults (oneDNN on, quiet logs) take effect only before TensorFlow is imported.
import keras_ganime  # noqa: F401

STEPS = 12
CHECKPOINT_STEPS = (6, 12)
SETTINGS = ("model.image_size=16", "model.latent_dim=8", "train.batch_size=8",
            "train.warmup_steps=2", "labels.flip_prob=0.1", "output.log_every=1",
            f"output.checkpoint_every={CHECKPOINT_STEPS[0]}", "output.keep_checkpoints=5",
            "output.sample_every=1000", "train.seed=0")
DISTRIBUTE = {"one": "none", "two": "mirrored"}
TIMING_COLUMNS = ("images_per_s", "wall_s")  # differ from run to run by nature
ISA_CAP = "AVX2"  # ONEDNN_MAX_CPU_ISA for a golden run, unless the environment sets one
# Against another instruction set: the rows compared, and their relative tolerance. Measured on
# 2026-12-03 (AMD EPYC with AVX2, TensorFlow 2.21.0, oneDNN 3.7.3) by recording both modes
# (ONEDNN_MAX_CPU_ISA=X python -m tests.golden_run one|two OUT.json) with X = AVX2, AVX and
# SSE41, and against uncapped recordings of the same code on an AVX-512 EPYC: the largest
# relative difference of any value, over the seven pairs, was 1.4e-7 in row 0, 3.5e-7 in row 1,
# 1.0e-6 in row 2, then 1.2e-5 in row 3 and more after (the runs part ways). So rows 0 to 2,
# at ten times the largest difference seen in them; the step changed on purpose (`--broken`)
# moves row 0 by 6.6e-3 (d_loss0) to 9.8e-2 (real_score). The two processors' recordings under
# the AVX2 cap (2026-12-07, compared value by value) stay inside it: 6.0e-8 in row 0, 8.8e-8 in
# row 1, 4.5e-7 in row 2, 1.1e-5 in row 3.
FOREIGN_ROWS = 3
FOREIGN_RTOL = 1e-5


def processor() -> dict[str, str]:
    """The CPU's model name and a sha256 of its sorted feature flags: the kernels TensorFlow and
    oneDNN pick (and so the last bits of every float) depend on both."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())  # the first CPU's
    except OSError:  # not Linux: the model string alone
        pass
    model = fields.get("model name") or platform.processor() or platform.machine()
    flags = " ".join(sorted((fields.get("flags") or fields.get("Features", "")).split()))
    return {"model_name": model, "flags_sha256": hashlib.sha256(flags.encode()).hexdigest()}


def _encode(value: float) -> float | str:
    return value if math.isfinite(value) else str(value)


def _decode(value: float | str) -> float:
    return float(value)


def _start_tensorflow(mode: str) -> None:
    """Fix TensorFlow's threads, determinism and devices before it runs any operation.

    One thread each way: the losses' last bits depend on the thread count (2 threads give other
    ones). In mode `two` the CPU is split in two logical devices, as tests/distributed.py does.
    GPUs are hidden: the fixtures are CPU runs, and a visible GPU would change the device and,
    with train.jit_compile = auto, turn on XLA. oneDNN is pinned on (keras_ganime's default,
    which the environment may override): it changes the last bits from the first step. Its
    instruction sets are capped at ISA_CAP, and its verbose mode reports the one it runs on.
    """
    if "tensorflow" in sys.modules:
        raise RuntimeError("TensorFlow was imported before its threads and devices were set")
    os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
    os.environ["TF_ENABLE_ONEDNN_OPTS"] = "1"
    if not (os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")):
        os.environ["ONEDNN_MAX_CPU_ISA"] = ISA_CAP  # oneDNN reads either name; one set wins
    os.environ["ONEDNN_VERBOSE"] = "1"
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    tf.config.experimental.enable_op_determinism()
    if mode == "two":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2)


@contextlib.contextmanager
def _stdout_into(path: Path) -> Iterator[None]:
    """File descriptor 1 into `path` for a while: oneDNN's verbose lines come from C, past
    sys.stdout."""
    sys.stdout.flush()
    saved = os.dup(1)
    with open(path, "wb") as f:
        os.dup2(f.fileno(), 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        ctypes.CDLL(None).fflush(None)  # what C still buffers goes to the file, not after it
        os.dup2(saved, 1)
        os.close(saved)


def _onednn_isa(verbose: Path) -> str:
    """The instruction set oneDNN said it runs on (`...,cpu,isa:Intel AVX2`)."""
    for line in verbose.read_text(errors="replace").splitlines():
        if line.startswith("onednn_verbose,") and ",cpu,isa:" in line:
            return line.partition(",cpu,isa:")[2].strip()
    raise RuntimeError(f"oneDNN reported no instruction set in {verbose}: was it used?")


def _tensor_hashes(prefix: Path) -> dict[str, dict[str, Any]]:
    import numpy as np
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(prefix))
    out = {}
    for key in sorted(reader.get_variable_to_shape_map()):
        if key == "_CHECKPOINTABLE_OBJECT_GRAPH":
            continue
        value = np.asarray(reader.get_tensor(key))
        out[key] = {"sha256": hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest(),
                    "dtype": str(value.dtype), "shape": list(value.shape)}
    return out


def _loss_rows(path: Path) -> list[dict[str, float | str]]:
    with open(path, newline="") as f:
        return [{k: _encode(float(v)) for k, v in row.items() if k not in TIMING_COLUMNS}
                for row in csv.DictReader(f)]


def _break_the_step() -> None:
    """D's update on fakes before its update on reals: the reference's order changed on purpose,
    so that test_golden can show that the comparison is not vacuous."""
    from keras_ganime.families import dcgan

    phases = dcgan.Family.phases.fget

    def swapped(self: dcgan.Family) -> tuple:
        d_real, d_fake, *rest = phases(self)
        return (d_fake, d_real, *rest)

    dcgan.Family.phases = property(swapped)


def record(mode: str, broken: bool = False) -> dict[str, Any]:
    """Train the golden run in a temporary directory and return its recording."""
    if mode not in DISTRIBUTE:
        raise ValueError(f"mode must be one of {', '.join(DISTRIBUTE)}, got {mode!r}")
    _start_tensorflow(mode)
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_ganime import train
    from keras_ganime.data import write_h5

    if broken:
        _break_the_step()

    with tempfile.TemporaryDirectory(prefix="keras_ganime-golden-") as tmp:
        tmp_path = Path(tmp)
        data = tmp_path / "d.h5"
        images = np.random.default_rng(0).integers(0, 256, (40, 16, 16, 3), np.uint8)
        write_h5(data, images, np.zeros(40), [], ["x"] * 40)
        runs = tmp_path / "runs"
        settings = (*SETTINGS, f'train.distribute="{DISTRIBUTE[mode]}"',
                    f'output.runs_dir="{runs}"')
        argv = ["--data", str(data), "--steps", str(STEPS),
                *(x for s in settings for x in ("--set", s))]
        print(f"golden run {mode}: keras_ganime from {Path(train.__file__).parent}",
              file=sys.stderr)
        with _stdout_into(tmp_path / "onednn.txt"):
            code = train.main(argv)
        if code != 0:
            raise RuntimeError(f"keras_ganime.train.main exited with {code}")
        # A split that silently failed would record a one-device run as the two-replica one.
        devices = len(tf.config.list_logical_devices("CPU"))
        if devices != {"one": 1, "two": 2}[mode]:
            raise RuntimeError(f"mode {mode}: {devices} logical CPU devices")
        (run,) = runs.iterdir()
        return {
            "mode": mode,
            "rows": _loss_rows(run / "loss.csv"),
            "checkpoints": {str(s): _tensor_hashes(run / "checkpoints" / f"ckpt-{s}")
                            for s in CHECKPOINT_STEPS},
            "onednn_isa": _onednn_isa(tmp_path / "onednn.txt"),
            "processor": processor(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        }


def verdict(recordings: dict[str, dict[str, Any]],
            fresh: dict[str, Any]) -> tuple[str, list[str]]:
    """The comparison made of a fresh recording with the stored ones (by name), in words, and what
    differs ([] when they agree); see the module's docstring."""
    isa, here = fresh["onednn_isa"], fresh["processor"]
    same_isa = {name: r for name, r in recordings.items() if r["onednn_isa"] == isa}
    for name, recorded in same_isa.items():
        if recorded["processor"] == here:
            return (f"bit for bit with {name} (oneDNN on {isa}, this processor's recording)",
                    compare(recorded, fresh, exact=True))
    differences = {name: compare(r, fresh, exact=True) for name, r in same_isa.items()}
    for name, problems in differences.items():
        if not problems:
            return f"bit for bit with {name} (oneDNN on {isa}, another processor's recording)", []
    if differences:
        name, problems = next(iter(differences.items()))
        why = (f"no recording from this processor ({here['model_name']}, flags "
               f"{here['flags_sha256'][:12]}), and the bits of each differ: this processor or "
               f"the code ({len(problems)} differences from {name}, the first: {problems[0]})")
    else:
        name = next(iter(recordings))
        why = (f"recorded with oneDNN on "
               f"{', '.join(sorted({r['onednn_isa'] for r in recordings.values()}))}, "
               f"running on {isa}")
    said = (f"to a tolerance with {name}: {why}; loss rows 0 to {FOREIGN_ROWS - 1} to a relative "
            f"{FOREIGN_RTOL:g}, every row's NaNs, the checkpoints' keys, dtypes and shapes")
    return said, compare(recordings[name], fresh, exact=False)


def _rows_equal(a: float, b: float, exact: bool) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if exact or math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= FOREIGN_RTOL * abs(a)


def compare(recorded: dict[str, Any], fresh: dict[str, Any], exact: bool) -> list[str]:
    """What differs between a stored recording and a fresh one; [] when they agree.

    `exact`: the loss rows must be equal exactly (NaN equals NaN) and every checkpoint tensor bit
    for bit. Else the first FOREIGN_ROWS rows are compared to a relative FOREIGN_RTOL, the later
    ones only for where they are NaN, and the checkpoint hashes are skipped; the checkpoints'
    keys, dtypes and shapes, which no processor changes, are compared either way.
    """
    problems = []
    old_rows, new_rows = recorded["rows"], fresh["rows"]
    if len(old_rows) != len(new_rows):
        problems.append(f"loss rows: {len(old_rows)} recorded, {len(new_rows)} now")
    for i, (old, new) in enumerate(zip(old_rows, new_rows)):
        if old.keys() != new.keys():
            problems.append(f"loss row {i}: columns {sorted(old)} recorded, {sorted(new)} now")
            continue
        for column in old:
            a, b = _decode(old[column]), _decode(new[column])
            same = (_rows_equal(a, b, exact) if exact or i < FOREIGN_ROWS
                    else math.isnan(a) == math.isnan(b))
            if not same:
                problems.append(f"loss row {i} (step {_decode(old['step']):g}) {column}: "
                                f"{a!r} recorded, {b!r} now")
    if recorded["checkpoints"].keys() != fresh["checkpoints"].keys():
        problems.append(f"checkpoint steps: {sorted(recorded['checkpoints'])} recorded, "
                        f"{sorted(fresh['checkpoints'])} now")
    for step, old_ckpt in recorded["checkpoints"].items():
        new_ckpt = fresh["checkpoints"].get(step, {})
        for key in sorted(old_ckpt.keys() - new_ckpt.keys()):
            problems.append(f"ckpt-{step}: {key} missing now")
        for key in sorted(new_ckpt.keys() - old_ckpt.keys()):
            problems.append(f"ckpt-{step}: {key} not recorded")
        for key in sorted(old_ckpt.keys() & new_ckpt.keys()):
            old, new = old_ckpt[key], new_ckpt[key]
            for field in ("dtype", "shape") + (("sha256",) if exact else ()):
                if old[field] != new[field]:
                    problems.append(f"ckpt-{step}: {key} {field}: {old[field]} recorded, "
                                    f"{new[field]} now")
    return problems


def main(argv: list[str]) -> None:
    broken = "--broken" in argv
    argv = [a for a in argv if a != "--broken"]
    if len(argv) != 2 or argv[0] not in DISTRIBUTE:
        sys.exit("usage: python -m tests.golden_run {one,two} OUT.json [--broken]")
    result = record(argv[0], broken)
    Path(argv[1]).write_text(json.dumps(result, indent=1, sort_keys=True, allow_nan=False) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
