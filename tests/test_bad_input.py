"""Every bad input, tried (issue 17, item 4): config files, data, run directories, models and an
absent network, each through the command line a user would type, in a process of its own.

Each row of CASES makes one bad input under in/ of a fresh folder, runs the command there and
checks what the user sees: one line (stderr for an error, exit 2; a skip in `prepare`'s summary
on stdout, exit 0, stderr empty), no traceback, the file or setting named, what to do next, and
every file of the folder byte-identical afterwards (run directories included), with nothing
written but a skip's HDF5 file. Most fail before TensorFlow loads, which is checked too; the
line is matched whole, "…" standing for text that varies (paths, library wording, a port).

The table in docs/errors.md is made from CASES (`python -m tests.test_bad_input` prints it), and
a test keeps the two equal.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import resource
import shlex
import socket
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import matplotlib
import numpy as np
import pytest
from PIL import Image

from keras_ganime import config as config_lib
from keras_ganime.data import read_h5, write_h5

ROOT = Path(__file__).resolve().parent.parent
CATEGORIES = ("config", "data", "run", "model", "network")
# Runs the module as `python -m` does, and records on exit whether TensorFlow was imported.
RUNNER = """import atexit, runpy, sys
mark, module = sys.argv.pop(1), sys.argv.pop(1)
atexit.register(lambda: open(mark, "w").write(str("tensorflow" in sys.modules)))
runpy.run_module(module, run_name="__main__", alter_sys=True)
"""


# --- making the inputs (each under root/in; the commands run in root) -------------------------


def write(path: Path, data: bytes | str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def faces(n: int = 40, size: int = 16) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, size, size, 3), dtype=np.uint8)


def h5_file(path: Path, n: int = 40) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_h5(path, faces(n), np.zeros(n), [], [f"{i}.png" for i in range(n)])
    return path


def h5_images(path: Path, images: np.ndarray) -> None:
    """A file laid out as prepare's, its images as given (write_h5 would cast them to uint8)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f["images"] = images
        f["labels"] = np.zeros(len(images), np.int32)
        f.create_dataset("class_names", data=[], dtype=h5py.string_dtype())
        f.create_dataset("filenames", data=["x"] * len(images), dtype=h5py.string_dtype())


def foreign_h5(path: Path) -> None:
    """An HDF5 file as another program writes one: a network's weights."""
    with h5py.File(path, "w") as f:
        f.create_dataset("dense/kernel", data=np.ones((4, 4), np.float32))


def png(path: Path, width: int, height: int) -> None:
    """A PNG of any stated size that costs nothing to write: its header says width x height,
    and its pixel data is a few bytes (Pillow checks the size when it opens the file)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body)))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    write(path, b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
          + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))


def folder_with(root: Path, name: str, make: Callable[[Path], Any]) -> None:
    """in/NAME holding one good image and the file `make` writes into it."""
    folder = root / "in" / name
    folder.mkdir(parents=True)
    Image.fromarray(faces(1, 32)[0]).save(folder / "good.png")
    make(folder)


def run_dir(root: Path, info: dict[str, Any] | None = None, extra: str = "") -> Path:
    """in/run: a run's config.toml and run.json as train writes them (no checkpoint yet). Its
    data file is absent: every case fails before the data would be read."""
    run = root / "in" / "run"
    cfg = config_lib.load(None, ["model.image_size=16", "model.latent_dim=8",
                                 "train.batch_size=8", "train.steps=6", 'data.path="faces.h5"'])
    write(run / "config.toml", config_lib.to_toml(cfg) + extra)
    write(run / "run.json", json.dumps(info or {"status": "interrupted", "step": 0,
                                                "keras_ganime": "0.1.0", "run_format": 1}))
    return run


def damaged_checkpoints(root: Path) -> None:
    """Two checkpoints listed in the index, neither readable: garbage where the files were."""
    ckpts = run_dir(root) / "checkpoints"
    write(ckpts / "checkpoint", 'model_checkpoint_path: "ckpt-6"\n'
          'all_model_checkpoint_paths: "ckpt-3"\nall_model_checkpoint_paths: "ckpt-6"\n')
    for step in (3, 6):
        write(ckpts / f"ckpt-{step}.index", bytes(range(256)))
        write(ckpts / f"ckpt-{step}.data-00000-of-00001", b"\0" * 1000)


def locked_run(root: Path) -> dict[str, Any]:
    """A run whose lock another process holds (this one, as a training process would)."""
    lock = open(run_dir(root) / ".lock", "a+")  # noqa: SIM115 - held until the case ends
    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return {"hold": lock}


def lambda_model(root: Path) -> None:
    """A real .keras file, saved by Keras, with a Lambda layer (Python code) inside."""
    import keras

    z = keras.Input((1, 1, 8))
    x = keras.layers.Lambda(lambda t: t * 2.0)(z)
    keras.Model(z, keras.layers.Conv2DTranspose(3, 4)(x)).save(root / "in" / "lambda.keras")


def read_only_run(root: Path) -> dict[str, Any]:
    """in/run and its files read-only to everyone (restored when the case ends, so that the
    test's folder can be removed)."""
    run = run_dir(root)
    paths = [run / "config.toml", run / "run.json", run]
    for path in paths:
        path.chmod(0o555 if path.is_dir() else 0o444)

    class Restore:
        def close(self) -> None:
            run.chmod(0o755)

    return {"hold": Restore()}


def generator_file(root: Path) -> None:
    """in/generator.keras, a tiny reference generator as a run exports it (its settings kept)."""
    from keras_ganime import restore
    from keras_ganime.engines import common

    cfg = config_lib.load(None, ["model.image_size=16", "model.latent_dim=8", "model.filters=8"])
    common.with_settings(restore.build(cfg).export, cfg)(root / "in" / "generator.keras")


def conditional_generator_file(root: Path) -> None:
    """in/hair.keras, a tiny reference generator conditioned on hair (red, blue), exported."""
    from keras_ganime import restore
    from keras_ganime.engines import common

    cfg = config_lib.load(None, ["model.image_size=16", "model.latent_dim=8", "model.filters=8",
                                 'model.condition="hair"',
                                 """model.condition_values='{"hair": ["red", "blue"]}'"""])
    common.with_settings(restore.build(cfg).export, cfg)(root / "in" / "hair.keras")


def closed_port(root: Path) -> dict[str, Any]:
    """A port on 127.0.0.1 that nothing listens on: to fetch, the network is absent."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return {"port": s.getsockname()[1]}


# --- the cases -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    category: str  # one of CATEGORIES
    input: str  # the bad input, in words (the table in docs/errors.md)
    make: Callable[[Path], Any]  # writes it under root/in; may return {"port": ...}, {"hold": f}
    command: str  # after `python -m keras_ganime.`, run in root
    seen: str  # the one line the user sees, "…" for text that varies
    named: str  # the file or setting named (in `seen`)
    hint: str  # what to do next (in `seen`)
    exit: int = 2
    tensorflow: bool = False  # the command loads TensorFlow before it can tell
    fsize: int = 0  # a file size limit in bytes (ulimit -f), 0 for none
    unprivileged: bool = False  # without root's override of file permissions (setpriv)
    writes: str = ""  # a skip: the HDF5 file prepare writes anyway, with the good image


def _toml(name: str, text: str | bytes) -> Callable[[Path], Any]:
    return lambda root: write(root / "in" / name, text)


CASES = [
    Case("config-missing", "config", "a config file that does not exist", lambda root: None,
         "train --config in/missing.toml",
         "error: in/missing.toml: no such config file or experiment; experiments: default, …",
         "in/missing.toml", "experiments: default"),
    Case("config-empty", "config", "an empty config file", _toml("empty.toml", ""),
         "train --config in/empty.toml",
         "error: in/empty.toml: holds no settings; write the ones to change in it (python -m "
         "keras_ganime.train --dry-run prints every setting as valid TOML), or leave out "
         "--config for the defaults", "in/empty.toml", "leave out --config for the defaults"),
    Case("config-garbage", "config", "a config file of random bytes",
         _toml("garbage.toml", bytes(range(256)) * 4), "train --config in/garbage.toml",
         "error: in/garbage.toml: not valid TOML (not UTF-8 text: byte 0x80 at position 128); "
         "python -m keras_ganime.train --dry-run prints every setting as valid TOML",
         "in/garbage.toml", "--dry-run prints every setting as valid TOML"),
    Case("config-syntax", "config", "a config file that is not TOML (a bracket left open)",
         _toml("syntax.toml", "[train\nbatch_size = 16\n"), "train --config in/syntax.toml",
         "error: in/syntax.toml: not valid TOML (… (at line 1, column 7)); python -m "
         "keras_ganime.train --dry-run prints every setting as valid TOML",
         "at line 1, column 7", "--dry-run prints every setting as valid TOML"),
    Case("config-type", "config", "a setting of the wrong type (a string for an integer)",
         _toml("type.toml", '[train]\nbatch_size = "64"\n'), "train --config in/type.toml",
         "error: in/type.toml: train.batch_size must be int, got '64'",
         "in/type.toml: train.batch_size", "must be int"),
    Case("config-unknown-key", "config", "an unknown key (a typing error)",
         _toml("unknown.toml", "[train]\nbatchsize = 16\n"), "train --config in/unknown.toml",
         "error: in/unknown.toml: unknown setting 'train.batchsize' (did you mean "
         "train.batch_size?); train has batch_size, …",
         "in/unknown.toml: unknown setting 'train.batchsize'", "did you mean train.batch_size?"),
    Case("config-unknown-section", "config", "an unknown section (a typing error)",
         _toml("section.toml", "[trian]\nbatch_size = 16\n"), "train --config in/section.toml",
         "error: in/section.toml: unknown setting 'trian.batch_size' (did you mean "
         "train.batch_size?); sections are …",
         "in/section.toml: unknown setting 'trian.batch_size'", "did you mean train.batch_size?"),
    Case("config-out-of-range", "config", "a value out of range",
         _toml("range.toml", "[labels]\nflip_prob = 1.5\n"), "train --config in/range.toml",
         "error: in/range.toml: labels.flip_prob must be in [0, 1], got 1.5",
         "in/range.toml: labels.flip_prob", "must be in [0, 1]"),
    Case("config-condition-began", "config", "a condition for a family without a conditional "
         "form (BEGAN)", lambda root: None,
         'train --set model.family="began" --set model.condition="hair"',
         "error: model.condition: the began family has no conditional form (BEGAN's D is an "
         "auto-encoder with no logit to project a label on, and no standard conditional BEGAN "
         'exists); set it to ""', "model.condition", 'set it to ""'),

    Case("data-truncated-h5", "data", "an HDF5 file cut short (half copied)",
         lambda root: write(root / "in" / "cut.h5", h5_file(root / "in" / "whole.h5")
                            .read_bytes()[:20000]),
         "train --data in/cut.h5",
         "error: in/cut.h5: not a keras_ganime HDF5 file (…(truncated file: …)); make one with "
         "python -m keras_ganime.data prepare FOLDER OUT.h5", "in/cut.h5",
         "make one with python -m keras_ganime.data prepare"),
    Case("data-foreign-h5", "data", "another program's HDF5 file",
         lambda root: foreign_h5(root / "in" / "weights.h5"),
         "train --data in/weights.h5",
         "error: in/weights.h5: not a keras_ganime HDF5 file (it has no 'images', 'labels', "
         "'class_names', 'filenames'); make one with python -m keras_ganime.data prepare FOLDER "
         "OUT.h5", "in/weights.h5", "make one with python -m keras_ganime.data prepare"),
    Case("data-dtype", "data", "images stored as float32",
         lambda root: h5_images(root / "in" / "float.h5", faces().astype(np.float32)),
         "train --data in/float.h5",
         "error: in/float.h5: 'images' must be a non-empty (N, S, S, 3) uint8 array, got "
         "float32 (40, 16, 16, 3); make one with python -m keras_ganime.data prepare FOLDER "
         "OUT.h5", "in/float.h5", "make one with python -m keras_ganime.data prepare"),
    Case("data-shape", "data", "images stored channels first",
         lambda root: h5_images(root / "in" / "nchw.h5", faces().transpose(0, 3, 1, 2)),
         "train --data in/nchw.h5",
         "error: in/nchw.h5: 'images' must be a non-empty (N, S, S, 3) uint8 array, got uint8 "
         "(40, 3, 16, 16); make one with python -m keras_ganime.data prepare FOLDER OUT.h5",
         "in/nchw.h5", "make one with python -m keras_ganime.data prepare"),
    Case("data-fewer-than-a-batch", "data", "fewer images than a batch",
         lambda root: h5_file(root / "in" / "ten.h5", 10), "train --data in/ten.h5",
         "error: train.batch_size 64 is larger than the dataset (10 images); set a smaller one "
         "(--set train.batch_size=N) or prepare more images", "train.batch_size",
         "set a smaller one (--set train.batch_size=N)"),
    Case("data-folder-to-train-on", "data", "a folder of images given to train as its data",
         lambda root: folder_with(root, "faces", lambda d: None), "train --data in/faces",
         "error: in/faces: a folder, where an HDF5 file of faces is needed; make one from its "
         "images with python -m keras_ganime.data prepare in/faces in/faces.h5",
         "in/faces: a folder", "python -m keras_ganime.data prepare in/faces in/faces.h5"),
    Case("data-one-image-to-compare", "data", "a comparison with one image on a side",
         lambda root: (folder_with(root, "one", lambda d: None),
                       folder_with(root, "two", lambda d: Image.fromarray(
                           faces(1, 32)[0]).save(d / "again.png"))),
         "evaluate compare in/one in/two",
         "error: in/one: holds 1 image; a comparison needs at least 2 on each side (FID and KID "
         "are meaningful from hundreds)", "in/one", "at least 2 on each side"),
    Case("data-missing-folder", "data", "a folder to prepare that does not exist",
         lambda root: None, "data prepare in/nowhere out/faces.h5",
         "error: in/nowhere: no such folder; name a folder of images (flat, or one sub-folder "
         "per class)", "in/nowhere", "name a folder of images"),
    Case("data-empty-folder", "data", "an empty folder to prepare",
         lambda root: (root / "in" / "empty").mkdir(parents=True),
         "data prepare in/empty out/faces.h5",
         "error: in/empty: no image files found (looked for … extensions); put images in it "
         "(PNG, JPEG, ...), flat or one sub-folder per class", "in/empty", "put images in it"),
    Case("data-no-readable-image", "data", "a folder whose every image is corrupt",
         lambda root: (write(root / "in" / "broken" / "a.png", b"\x89PNG\r\n\x1a\n" + bytes(99)),
                       write(root / "in" / "broken" / "b.jpg", "not a JPEG\n")),
         "data prepare in/broken out/faces.h5",
         "error: in/broken: none of its 2 image files could be used (such as a.png: "
         "UnidentifiedImageError: cannot identify image file 'in/broken/a.png'); check that they "
         "are images Pillow opens, at least 8 pixels a side", "in/broken",
         "check that they are images Pillow opens"),
    Case("data-corrupt-image", "data", "a corrupt image among good ones",
         lambda root: folder_with(root, "corrupt", lambda d: write(
             d / "bad.png", b"\x89PNG\r\n\x1a\n" + bytes(range(99)))),
         "data prepare in/corrupt out/corrupt.h5",
         "  bad.png: UnidentifiedImageError: cannot identify image file 'in/corrupt/bad.png'",
         "bad.png", "", exit=0, writes="out/corrupt.h5"),
    Case("data-tiny-image", "data", "a 1x1 image among good ones",
         lambda root: folder_with(root, "tiny", lambda d: Image.new("RGB", (1, 1)).save(
             d / "dot.png")),
         "data prepare in/tiny out/tiny.h5",
         "  dot.png: too small (1x1 pixels; at least 8 a side)", "dot.png", "", exit=0,
         writes="out/tiny.h5"),
    Case("data-huge-image", "data", "a 10000x10000 image among good ones",
         lambda root: folder_with(root, "huge", lambda d: png(d / "poster.png", 10000, 10000)),
         "data prepare in/huge out/huge.h5",
         "  poster.png: DecompressionBombWarning: Image size (100000000 pixels) exceeds limit of "
         "89478485 pixels, could be decompression bomb DOS attack.", "poster.png", "", exit=0,
         writes="out/huge.h5"),
    Case("data-non-image-file", "data", "a file that is not an image among good ones",
         lambda root: folder_with(root, "notes", lambda d: write(d / "notes.txt", "hello\n")),
         "data prepare in/notes out/notes.h5",
         "wrote 1 images to out/notes.h5 (…); ignored 1 files that are not images by name: "
         "notes.txt", "notes.txt", "", exit=0, writes="out/notes.h5"),
    Case("data-condition-unlabelled", "data", "a condition on data without that attribute",
         lambda root: h5_file(root / "in" / "faces.h5"),
         'train --data in/faces.h5 --set train.batch_size=8 --set model.condition="hair"',
         "error: in/faces.h5: has no 'hair' labels for model.condition (its attributes: none); "
         "name one it has, or prepare the data with labels (python -m keras_ganime.data "
         "prepare DIR OUT --labels tags.csv|folders)", "in/faces.h5: has no 'hair' labels",
         "prepare the data with labels"),

    Case("run-another-programs-folder", "run", "another program's folder as a run",
         lambda root: (write(root / "in" / "photos" / "holiday.jpg", b"\xff\xd8\xff"),
                       write(root / "in" / "photos" / "notes.txt", "hello\n")),
         "train --resume in/photos",
         "error: in/photos: not a run directory (no config.toml); name a folder that python -m "
         "keras_ganime.train made, such as runs/00000-default", "in/photos",
         "name a folder that python -m keras_ganime.train made"),
    Case("run-newer-version", "run", "a run made by a newer, unknown version",
         lambda root: run_dir(root, {"status": "done", "step": 6, "keras_ganime": "9.0.0",
                                     "run_format": 2}, "new_setting = 1\n"),  # unknown here
         "train --resume in/run",
         "error: in/run: made by keras_ganime 9.0.0 (run format 2), newer than this one (…, run "
         "format 1); upgrade keras_ganime (pip install -U keras_ganime) to use this run",
         "in/run", "upgrade keras_ganime"),
    Case("run-damaged-run-json", "run", "a run whose run.json was copied in part",
         lambda root: write(run_dir(root) / "run.json", '{"status": "runn'),
         "train --resume in/run",
         "error: in/run/run.json: not valid JSON (Unterminated string …); copy it again, or "
         "delete it to go on without the run's record of its status and failure",
         "in/run/run.json", "copy it again, or delete it"),
    Case("run-locked", "run", "a run that another training process holds", locked_run,
         "train --resume in/run --steps 12",
         "error: in/run: in use by another training process; wait for it to end, or stop it "
         "(Ctrl-C saves a checkpoint), then resume", "in/run", "wait for it to end"),
    Case("run-read-only", "run", "a run folder you cannot write (read-only, and you are not root)",
         read_only_run, "train --resume in/run",
         "error: in/run: cannot be written (permission denied); give yourself write permission "
         "to it (chmod -R u+w in/run), or run as its owner", "in/run", "chmod -R u+w in/run",
         unprivileged=True),
    Case("run-no-checkpoint", "run", "a run stopped before its first checkpoint",
         lambda root: run_dir(root), "evaluate in/run",
         "error: in/run: no checkpoint yet; train it to its first checkpoint "
         "(output.checkpoint_every) with python -m keras_ganime.train --resume in/run",
         "in/run", "python -m keras_ganime.train --resume in/run"),
    Case("run-damaged-checkpoints", "run", "a run whose every checkpoint is garbage",
         damaged_checkpoints, "evaluate in/run",
         "error: in/run/checkpoints: none of its 2 checkpoints reads completely (the newest, "
         "ckpt-6: …); start a new run, or copy the checkpoint files again", "ckpt-6",
         "start a new run, or copy the checkpoint files again", tensorflow=True),

    Case("model-lambda-layer", "model", "a .keras file with a Lambda layer", lambda_model,
         "generate in/lambda.keras --out out/faces",
         "error: in/lambda.keras: holds a Lambda layer, Python code that is not loaded from a "
         "file since it could run anything; sample from a generator.keras that keras_ganime "
         "saved, or from its run directory", "in/lambda.keras",
         "sample from a generator.keras that keras_ganime saved"),
    Case("model-file-size-limit", "model",
         "a file size limit (ulimit -f 4) that the samples' grid exceeds", generator_file,
         "generate in/generator.keras --n 16 --out faces",
         "error: …/faces-grid.png: file too large; the file size limit (ulimit -f) was reached; "
         "raise it", "/faces-grid.png", "raise it", tensorflow=True, fsize=4096),
    Case("model-not-a-zip", "model", "a .keras file that is not one (not a zip)",
         lambda root: write(root / "in" / "broken.keras", "not a model\n"),
         "generate in/broken.keras --out out/faces",
         "error: in/broken.keras: not a Keras model file (File is not a zip file); copy it "
         "again, or sample from its run directory", "in/broken.keras", "copy it again"),
    Case("model-condition-unknown-value", "model",
         "a condition with a value the generator does not know", conditional_generator_file,
         "generate in/hair.keras --condition hair=teal --out out/faces",
         "error: --condition: hair=teal is not a value of hair: red, blue", "--condition",
         "red, blue"),

    Case("network-absent", "network", "no network where the dataset is downloaded",
         closed_port,
         "data fetch animeface --url http://127.0.0.1:{port}/animeface-character-dataset.zip "
         "--out out/animeface.h5",
         "error: cannot download http://127.0.0.1:…/animeface-character-dataset.zip (… "
         "Connection refused); download http://127.0.0.1:…/animeface-character-dataset.zip by "
         "hand (e.g. in a browser), then run: python -m keras_ganime.data fetch animeface "
         "--from-zip PATH", "http://127.0.0.1:", "--from-zip PATH"),
]


# --- checking what the user sees -----------------------------------------------------------


def files(root: Path) -> dict[str, str]:
    """Every file under root, by relative path, with the SHA-256 of its bytes, and every folder
    (a command that fails leaves no folder of its own, not even an empty one)."""
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            if p.is_file() else "folder" for p in sorted(root.rglob("*"))}


def pattern(seen: str) -> re.Pattern[str]:
    return re.compile(".*".join(map(re.escape, seen.split("…"))))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_what_the_user_sees(case: Case, tmp_path: Path) -> None:
    root = tmp_path / "case"
    (root / "in").mkdir(parents=True)
    made = case.make(root)
    made = made if isinstance(made, dict) else {}
    before = files(root)
    mark = tmp_path / "tensorflow-loaded"
    paths = [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    # The cache of the built-in faces is the case's own; matplotlib's (which TensorFlow loads)
    # is this process's, built already: not built again under a case's file size limit.
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "MPLCONFIGDIR": matplotlib.get_cachedir(), "PYTHONPATH": os.pathsep.join(paths)}
    command = shlex.split(case.command.format(**made))
    # Root may write anywhere: the unprivileged cases run without that capability.
    prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] \
        if case.unprivileged else []

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (case.fsize, case.fsize))

    try:
        done = subprocess.run([*prefix, sys.executable, "-c", RUNNER, str(mark),
                               f"keras_ganime.{command[0]}", *command[1:]], cwd=root, env=env,
                              capture_output=True, text=True, timeout=60, check=False,
                              preexec_fn=limit if case.fsize else None)
    finally:
        if "hold" in made:
            made["hold"].close()
    shown = f"{done.stdout}\n{done.stderr}"
    assert "Traceback" not in shown, shown[-3000:]
    assert done.returncode == case.exit, shown[-3000:]
    # TensorFlow's C++ start-up lines (oneDNN, CUDA) never show: errors.start_up_filter.
    err = [line for line in done.stderr.splitlines() if line.strip()]
    if case.exit:
        assert len(err) == 1 and not done.stdout, shown[-3000:]
        line = err[0]
    else:  # a skip: the run goes on, and prepare's summary names the file on stdout
        assert err == [], done.stderr[-3000:]
        (line,) = [line for line in done.stdout.splitlines() if case.named in line]
    assert pattern(case.seen).fullmatch(line), f"\n{line}\n{case.seen}"
    assert case.named in case.seen and case.hint in case.seen
    assert mark.read_text() == str(case.tensorflow), "TensorFlow loaded, or not, unexpectedly"
    after = files(root)
    if case.writes:
        assert read_h5(root / case.writes).filenames == ["good.png"]
        after.pop(case.writes)
        for folder in list(Path(case.writes).parents)[:-1]:  # the folders made for it
            if folder.as_posix() not in before:
                after.pop(folder.as_posix())
    assert after == before, "the command changed, made or removed files"


def test_every_input_the_issue_names_is_tried() -> None:
    ids = [c.id for c in CASES]
    assert len(set(ids)) == len(ids) and {c.category for c in CASES} == set(CATEGORIES)
    assert {"config-missing", "config-empty", "config-garbage", "config-type",
            "config-unknown-key", "config-out-of-range", "data-truncated-h5", "data-foreign-h5",
            "data-dtype", "data-shape", "data-empty-folder", "data-corrupt-image",
            "data-tiny-image", "data-huge-image", "data-non-image-file",
            "run-another-programs-folder", "run-newer-version", "run-locked",
            "run-no-checkpoint", "run-damaged-checkpoints", "model-lambda-layer",
            "network-absent"} <= set(ids)
    assert all(c.exit == 2 and c.hint for c in CASES if c.exit)


def readme_table() -> str:
    """The table of the cases in docs/errors.md, with their count."""
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    rows = [f"| {cell(c.input)} | `{cell(c.command.format(port='PORT'))}` | `{cell(c.seen)}` "
            f"| {c.exit} |" for c in CASES]
    counts = ", ".join(f"{sum(c.category == k for c in CASES)} {k}" for k in CATEGORIES)
    return "\n".join([f"{len(CASES)} cases ({counts}):", "",
                      "| input | command | what the user sees | exit |",
                      "| --- | --- | --- | --- |", *rows])


def test_the_docs_table_is_made_from_the_cases() -> None:
    assert readme_table() in (ROOT / "docs" / "errors.md").read_text()


if __name__ == "__main__":
    print(readme_table())
