"""Image data: a folder of images -> one HDF5 file (`prepare`), the built-in synthetic faces
(`synth`), and loading for training (`load_images`; device batches are each engine's).

No TensorFlow here: `prepare` starts worker processes that should not pay for importing it.

HDF5 layout (one file per dataset):
    images       (N, S, S, 3) uint8 RGB
    labels       (N,) int32, index into class_names; -1 where an image has no class
    class_names  (C,) str
    filenames    (N,) str, each image's source path relative to the source folder
    attributes   (N, K) int32, attribute_names (K,) str and the file's attribute
                 `attribute_values` (JSON: each attribute's values): per image the index of its
                 value, -1 where it has none; the synthetic faces' (hair, eyes, ...), a split's
                 tagged faces' (hair, eyes), `prepare --labels`'s (a CSV's columns, or the
                 sub-folders as `character`); absent where a file has none
    attributes of the file: format_version (2; a file without it is of format 1, read alike)
    and `made`, JSON of how it was made (the command, its source and settings, the counts
    kept and skipped, the time and the package's version), which `data info FILE` prints
"""

from __future__ import annotations

import csv
import importlib.metadata
import json
import multiprocessing
import multiprocessing.pool
import os
import re
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np
from PIL import Image, ImageOps
from tqdm import tqdm

from keras_ganime import errors
from keras_ganime.data import synthetic as synth_faces
from keras_ganime.settings import DataConfig

STR = h5py.string_dtype()
# How `prepare` makes a picture square: stretch (squash it) or pad (letterbox it with black bars,
# as the paper fed BEGAN at 128 px); and its resampling: Lanczos, or nearest neighbour as
# carpedm20/BEGAN-tensorflow resized.
FITS = ("stretch", "pad")
RESAMPLES = {"lanczos": Image.Resampling.LANCZOS, "nearest": Image.Resampling.NEAREST}
# The smallest image side `prepare` takes (and the smallest --size): below it a file is no face.
MIN_SIDE = 8
MAKE_H5 = "make one with python -m keras_ganime.data prepare FOLDER OUT.h5"
# The layout's version, in each file's attributes: a reader refuses a newer one in one line.
# 2 added the attributes `format_version` and `made`; version 1's files read the same.
FORMAT_VERSION = 2


class DataError(errors.Error, ValueError):
    """Bad input data; its message is one line naming the file or folder at fault."""


# An attribute's labels: per image the index of its value (-1: none), and the values.
Attribute = tuple[np.ndarray, tuple[str, ...]]


@dataclass
class ImageSet:
    images: np.ndarray  # (N, S, S, 3) uint8
    labels: np.ndarray  # (N,) int32
    class_names: list[str]
    filenames: list[str]
    attributes: dict[str, Attribute] = field(default_factory=dict)


@dataclass
class PrepareSummary:
    count: int
    seconds: float
    out: Path
    megabytes: float
    bad: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    ignored: int = 0  # files whose extension Pillow does not read
    ignored_names: list[str] = field(default_factory=list)  # the first few of them
    notes: list[tuple[str, str]] = field(default_factory=list)  # (file, what was done) kept
    links: list[str] = field(default_factory=list)  # links to folders, not followed
    unlabelled: list[str] = field(default_factory=list)  # images --labels gave no label

    def __str__(self) -> str:
        text = (
            f"wrote {self.count} images to {self.out} ({self.megabytes:.1f} MB) in "
            f"{self.seconds:.1f} s ({self.count / max(self.seconds, 1e-9):.0f} images/s)"
        )
        if self.ignored:
            names = ", ".join(self.ignored_names) + (", ..." if self.ignored > len(
                self.ignored_names) else "")
            text += f"; ignored {self.ignored} files that are not images by name: {names}"
        if self.links:
            text += (f"; did not follow {len(self.links)} links to folders (a link can lead "
                     f"outside the folder or round in a circle): {', '.join(self.links[:5])}")
        if self.unlabelled:
            names = ", ".join(self.unlabelled[:5]) + (", ..." if len(self.unlabelled) > 5 else "")
            text += f"; without a label: {len(self.unlabelled)} ({names})"
        if self.notes:
            shown = "\n".join(f"  {name}: {what}" for name, what in self.notes[:20])
            more = f"\n  ... and {len(self.notes) - 20} more" if len(self.notes) > 20 else ""
            text += f"\nkept {len(self.notes)} image files in part:\n{shown}{more}"
        if self.bad:
            shown = "\n".join(f"  {name}: {why}" for name, why in self.bad[:20])
            more = f"\n  ... and {len(self.bad) - 20} more" if len(self.bad) > 20 else ""
            text += f"\nskipped {len(self.bad)} image files:\n{shown}{more}"
        return text


def write_h5(
    out: Path,
    images: np.ndarray,
    labels: np.ndarray,
    class_names: list[str],
    filenames: list[str],
    attributes: dict[str, Attribute] | None = None,
    made: dict[str, Any] | None = None,
) -> None:
    """Write atomically: a killed write never leaves a half file under the final name. `made`:
    how the file was made (the command as "by", its settings and counts), recorded with the
    time and the package's version."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")  # two writers never share one
    with h5py.File(tmp, "w") as f:
        f.attrs["format_version"] = FORMAT_VERSION
        if made is not None:
            f.attrs["made"] = json.dumps({
                **made, "at": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                "keras_ganime": package_version()})
        f.create_dataset("images", data=images, dtype=np.uint8)
        f.create_dataset("labels", data=np.asarray(labels, np.int32))
        f.create_dataset("class_names", data=class_names, dtype=STR)
        f.create_dataset("filenames", data=filenames, dtype=STR)
        if attributes:
            f.create_dataset(
                "attributes", data=np.stack([v for v, _ in attributes.values()], 1).astype(np.int32)
            )
            f.create_dataset("attribute_names", data=list(attributes), dtype=STR)
            f.attrs["attribute_values"] = json.dumps(
                {k: list(n) for k, (_, n) in attributes.items()})
    os.replace(tmp, out)


def package_version() -> str:
    try:
        return importlib.metadata.version("keras_ganime")
    except importlib.metadata.PackageNotFoundError:  # run from a source tree not installed
        return "not installed"


def check_file(path: str | Path) -> Path:
    """The path of an HDF5 file of faces, checked as far as it can be without reading it: a
    folder given for it is named as one, with the command that makes the file from it."""
    path = Path(path)
    if path.is_dir():
        out = path.with_suffix(".h5") if path.name not in ("", ".", "..") else Path("faces.h5")
        raise DataError(f"{path}: a folder, where an HDF5 file of faces is needed; make one from "
                        f"its images with python -m keras_ganime.data prepare {path} {out}")
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if not os.access(path, os.R_OK):
        raise DataError(f"{path}: cannot be read (permission denied); give yourself permission "
                        f"to read it")
    return path


def read_h5(path: str | Path) -> ImageSet:
    path = check_file(path)
    names = ("images", "labels", "class_names", "filenames")
    try:
        with h5py.File(path, "r") as f:
            check_version(path, f)
            if missing := [n for n in names if n not in f]:
                raise DataError(f"{path}: not a keras_ganime HDF5 file (it has no "
                                f"{', '.join(map(repr, missing))}); {MAKE_H5}")
            images = f["images"][...]
            labels = f["labels"][...]
            class_names = [s.decode() for s in f["class_names"][...]]
            filenames = [s.decode() for s in f["filenames"][...]]
            attributes = _attributes(f)
    except DataError:
        raise
    except (OSError, KeyError, AttributeError, ValueError) as e:  # h5py's, JSON's errors
        raise DataError(f"{path}: not a keras_ganime HDF5 file ({e}); {MAKE_H5}") from None
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8 or not len(images):
        raise DataError(f"{path}: 'images' must be a non-empty (N, S, S, 3) uint8 array, got "
                        f"{images.dtype} {images.shape}; {MAKE_H5}")
    return ImageSet(images, labels, class_names, filenames, attributes)


def _attributes(f: h5py.File) -> dict[str, Attribute]:
    if "attribute_names" not in f:
        return {}
    values = json.loads(f.attrs["attribute_values"])
    table = f["attributes"][...].astype(np.int32)
    return {name.decode(): (table[:, j], tuple(values[name.decode()]))
            for j, name in enumerate(f["attribute_names"][...])}


def read_labels_of(path: str | Path, names: Sequence[str]) -> tuple[np.ndarray,
                                                                      dict[str, tuple[str, ...]]]:
    """The labels of the attributes `names` in a prepared file, without its images: an
    (N, len(names)) int32 table of value indices and each attribute's values. One line for an
    attribute the file lacks or an image without a label."""
    path = check_file(path)
    try:
        with h5py.File(path, "r") as f:
            check_version(path, f)
            attributes = _attributes(f)
    except DataError:
        raise
    except (OSError, KeyError, AttributeError, ValueError) as e:
        raise DataError(f"{path}: not a keras_ganime HDF5 file ({e}); {MAKE_H5}") from None
    if missing := [n for n in names if n not in attributes]:
        has = ", ".join(attributes) or "none"
        raise DataError(f"{path}: has no {missing[0]!r} labels for model.condition (its "
                        f"attributes: {has}); name one it has, or prepare the data with labels "
                        f"(python -m keras_ganime.data prepare DIR OUT --labels "
                        f"tags.csv|folders)")
    table = np.stack([attributes[n][0] for n in names], 1).astype(np.int32)
    for j, name in enumerate(names):
        if (unlabelled := int((table[:, j] < 0).sum())):
            raise DataError(f"{path}: {unlabelled} of its {len(table)} images have no {name!r} "
                            f"label, and a conditional run needs every one; prepare it from "
                            f"the labelled images alone")
    return table, {n: attributes[n][1] for n in names}


def check_version(path: Path, f: h5py.File) -> int:
    """The file's format version (1 where it has none), refused in one line if newer than this
    package reads."""
    version = int(f.attrs.get("format_version", 1))
    if version > FORMAT_VERSION:
        raise DataError(f"{path}: an HDF5 file of format {version}, made by a newer keras_ganime "
                        f"(this one reads up to {FORMAT_VERSION}); upgrade keras_ganime")
    return version


def info(path: str | Path) -> str:
    """What `data info FILE` prints: the file's images, classes and format, and how it was made
    as far as the file records it; the images themselves are not read."""
    path = check_file(path)
    try:
        with h5py.File(path, "r") as f:
            version = check_version(path, f)
            shape = f["images"].shape
            classes = [s.decode() for s in f["class_names"][...]]
            labelled = int(np.count_nonzero(f["labels"][...] >= 0))
            attributes = json.loads(f.attrs["attribute_values"]) if "attribute_names" in f else {}
            made = json.loads(f.attrs["made"]) if "made" in f.attrs else None
    except DataError:
        raise
    except (OSError, KeyError, ValueError) as e:  # h5py's errors, JSON's
        raise DataError(f"{path}: not a keras_ganime HDF5 file ({e}); {MAKE_H5}") from None
    shown = ", ".join(classes[:8]) + (", ..." if len(classes) > 8 else "")
    lines = [(f"{path}: {shape[0]:,} images of {shape[2]}x{shape[1]} pixels, HDF5 format "
              f"{version}"),
             (f"  classes: {len(classes)} ({shown}), {labelled:,} images labelled" if classes
              else "  classes: none")]
    if attributes:
        lines.append("  attributes: " + ", ".join(f"{name} ({len(values)} values)"
                                                   for name, values in attributes.items()))
    if made is None:
        lines.append("  how it was made: not recorded (files made before format 2 do not say)")
    else:
        by, at, version_made = made.pop("by"), made.pop("at"), made.pop("keras_ganime")
        lines.append(f"  made by `data {by}` on {at} (keras_ganime {version_made})")
        lines += [f"  {key}: {value}" for key, value in made.items()]
    return "\n".join(lines)


# --- prepare: folder -> HDF5 ---------------------------------------------------------------


def to_rgb(img: Image.Image) -> Image.Image:
    """Any Pillow image as 8-bit RGB: transparency over white, 16-bit scaled, CMYK converted."""
    img = ImageOps.exif_transpose(img)
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(img, np.float64)
        # I;16* is 16-bit by definition (a dark one too); a 32-bit I may hold 8- or 16-bit data.
        sixteen = img.mode.startswith("I;16") or (img.mode == "I" and a.max() > 255)
        top = 65535.0 if sixteen else 255.0
        img = Image.fromarray(np.clip(a * (255.0 / top) + 0.5, 0, 255).astype(np.uint8))
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    if img.mode in ("LA", "PA", "La") or (img.mode in ("L", "RGB") and "transparency" in img.info):
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "RGBa"):
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, img.convert("RGBA")).convert("RGB")
    return img.convert("RGB")


def fit_square(img: Image.Image, size: int, fit: str = "stretch",
               resample: str = "lanczos") -> Image.Image:
    """img (RGB) as size x size. stretch: resized to the square, aspect ratio lost. pad: scaled
    so that its longer side is size (the shorter one rounded half up, at least 1 pixel), then
    centred on black; of an odd bar total the top (left) bar gets the floor of half, the bottom
    (right) one the rest: 100x60 to 128 is 128x77 content, 25 black rows above, 26 below."""
    if fit not in FITS:
        raise DataError(f"fit must be one of {', '.join(FITS)}, got {fit!r}")
    if resample not in RESAMPLES:
        raise DataError(f"resample must be one of {', '.join(RESAMPLES)}, got {resample!r}")
    method = RESAMPLES[resample]
    if fit == "stretch":
        return img if img.size == (size, size) else img.resize((size, size), method)
    w, h = img.size
    long = max(w, h)
    # Integer round-half-up, so the bar height never depends on float rounding or on Python's
    # round-half-even.
    short = max(1, (2 * min(w, h) * size + long) // (2 * long))
    scaled = (size, short) if w >= h else (short, size)
    if img.size != scaled:  # an image already fitting is pasted with its pixels untouched
        img = img.resize(scaled, method)
    square = Image.new("RGB", (size, size), (0, 0, 0))
    square.paste(img, ((size - scaled[0]) // 2, (size - scaled[1]) // 2))
    return square


def _decode(job: tuple[str, int, str, str]) -> tuple[np.ndarray | None, str]:
    path, size, fit, resample = job
    try:
        with warnings.catch_warnings():
            # Over 89 M pixels Pillow only warns (on stderr, from every worker) and then decodes
            # the whole picture for a thumbnail: one bad file, like those over its error limit.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(path)
        with img:
            if min(img.size) < MIN_SIDE:
                return None, (f"too small ({img.width}x{img.height} pixels; at least {MIN_SIDE} "
                              f"a side)")
            if resample != "nearest":
                # Let JPEG decode at a reduced scale: much faster. Not for nearest: the DCT's
                # downscale averages, and nearest should pick the source's own pixels.
                img.draft("RGB", (size, size))
            frames = getattr(img, "n_frames", 1)
            note = f"took the first of its {frames} frames" if frames > 1 else ""
            return np.asarray(fit_square(to_rgb(img), size, fit, resample), np.uint8), note
    except Exception as e:  # noqa: BLE001 - any decoder failure means one bad file, never a crash
        return None, f"{type(e).__name__}: {e}".splitlines()[0][:200]


def _find_images(src: Path) -> tuple[list[Path], list[str], list[str], list[str]]:
    """Files under src (flat, or one sub-folder per class), the class names, and what was left
    out: files whose extension is not an image format Pillow reads, and links to folders (not
    followed, so that a link cannot lead a walk outside src or round in a circle)."""
    if not src.is_dir():
        raise DataError(f"{src}: no such folder; name a folder of images (flat, or one "
                        f"sub-folder per class)")
    extensions = set(Image.registered_extensions())
    files, ignored, links = [], [], []
    for root, dirs, names in os.walk(src):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for d in [d for d in dirs if (Path(root) / d).is_symlink()]:
            dirs.remove(d)
            links.append(f"{(Path(root) / d).relative_to(src).as_posix()}/")
        for name in sorted(names):
            if name.startswith("."):
                continue
            if Path(name).suffix.lower() in extensions:
                files.append(Path(root) / name)
            else:
                ignored.append((Path(root) / name).relative_to(src).as_posix())
    if not files:
        raise DataError(f"{src}: no image files found (looked for {len(extensions)} extensions); "
                        f"put images in it (PNG, JPEG, ...), flat or one sub-folder per class")
    class_names = sorted({f.parent.relative_to(src).as_posix() for f in files} - {"."})
    return files, class_names, ignored, links


def _pool(workers: int) -> multiprocessing.pool.Pool:
    # spawn, not fork: the parent may already run TensorFlow's threads, which fork can deadlock.
    return multiprocessing.get_context("spawn").Pool(workers)


def _run(fn: Callable[[Any], Any], jobs: list, workers: int, chunksize: int, bar: tqdm,
         weight: Callable[[Any], int] = lambda r: 1) -> list:
    """[fn(j) for j in jobs], in order, in workers processes (in this one if 1), ticking bar by
    weight(result) for each. (Not `bar.update() or r`: update() returns True when it redraws.)"""
    results = []
    if workers == 1:
        for job in jobs:
            results.append(fn(job))
            bar.update(weight(results[-1]))
        return results
    with _pool(workers) as pool:
        for r in pool.imap(fn, jobs, chunksize=chunksize):
            results.append(r)
            bar.update(weight(r))
    return results


@dataclass
class Folder:
    """The readable images of a folder, and what could not be read."""

    images: np.ndarray  # uint8 (N, size, size, 3)
    files: list[str]  # relative to the folder, one per image
    class_names: list[str]  # its sub-folders; [] for a flat folder
    labels: np.ndarray  # int32 index into class_names per image; -1 for images at the top level
    bad: list[tuple[str, str]]  # (file, why) for each image file that could not be decoded
    ignored: list[str]  # files left out because their extension is not an image format
    notes: list[tuple[str, str]] = field(default_factory=list)  # (file, what was done) kept
    links: list[str] = field(default_factory=list)  # links to folders, not followed


def read_folder(src: str | Path, size: int = 64, workers: int | None = None,
                progress: bool = True, *, fit: str = "stretch",
                resample: str = "lanczos") -> Folder:
    """Every image under src (flat, or one sub-folder per class) as RGB size x size uint8, made
    square as fit_square does."""
    src = Path(src)
    if size < 8:
        raise DataError(f"--size must be at least 8, got {size}")
    fit_square(Image.new("RGB", (1, 1)), 1, fit, resample)  # bad settings fail before any work
    files, class_names, ignored, links = _find_images(src)
    workers = workers or os.cpu_count() or 1
    jobs = [(str(f), size, fit, resample) for f in files]
    chunk = max(1, min(256, len(jobs) // (8 * workers)))
    with tqdm(total=len(jobs), desc=f"read {src.name}", unit="img", disable=not progress) as bar:
        results = _run(_decode, jobs, workers, chunk, bar)
    keep = [i for i, (a, _) in enumerate(results) if a is not None]
    bad = [(files[i].relative_to(src).as_posix(), why) for i, (a, why) in enumerate(results)
           if a is None]
    if not keep:
        raise DataError(f"{src}: none of its {len(files)} image files could be used (such as "
                        f"{bad[0][0]}: {bad[0][1]}); check that they are images Pillow opens, "
                        f"at least {MIN_SIDE} pixels a side")
    index = {name: i for i, name in enumerate(class_names)}
    parents = [files[i].parent.relative_to(src).as_posix() for i in keep]
    notes = [(files[i].relative_to(src).as_posix(), results[i][1]) for i in keep
             if results[i][1]]
    return Folder(np.stack([results[i][0] for i in keep]),
                  [files[i].relative_to(src).as_posix() for i in keep], class_names,
                  np.array([index.get(p, -1) for p in parents], np.int32), bad, ignored, notes,
                  links)


# MLDS 2018's form of a face's tags, one column: "blue hair red eyes".
TAGS = re.compile(r"(\S+) hair (\S+) eyes")
LABELS_FORMS = ("a CSV with a column image (the file's path under the folder) and one column per "
                "attribute (image,hair,eyes), or image,tags with tags such as 'blue hair red "
                "eyes'")


def read_labels(path: str | Path, files: list[str]) -> dict[str, Attribute]:
    """Each attribute of the CSV file at `path` (LABELS_FORMS) for `files`, the images' paths
    under the folder, in their order: -1 for an image without a row. Every value is a string;
    the values of an attribute are sorted. A row naming no image of the folder, a label left
    empty, a row of the wrong width or a header without `image` is a DataError naming the row."""
    path = Path(path)
    try:
        rows = list(csv.reader(path.read_text(encoding="utf-8-sig").splitlines()))
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not a CSV text file ({e.reason} at byte {e.start}); give "
                        f"--labels {LABELS_FORMS}") from None
    header = [h.strip() for h in rows[0]] if rows else []
    if "image" not in header or len(header) < 2 or len(set(header)) < len(header):
        raise DataError(f"{path}: row 1: the header {','.join(header) or '(empty)'} does not "
                        f"name a column image and other columns once each; give --labels "
                        f"{LABELS_FORMS}")
    names = [h for h in header if h != "image"]
    mlds = names == ["tags"]
    index = {f: i for i, f in enumerate(files)}
    found: dict[str, list[str]] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not row:
            continue
        if len(row) != len(header):
            raise DataError(f"{path}: row {number}: {len(row)} fields, the header has "
                            f"{len(header)}; give each row one value per column")
        values = dict(zip(header, (v.strip() for v in row), strict=True))
        name = values.pop("image")
        if name not in index:
            raise DataError(f"{path}: row {number}: {name!r} is not an image of the folder; "
                            f"name each image by its path under the folder (such as "
                            f"{files[0]!r}), or remove the row")
        if name in found:
            raise DataError(f"{path}: row {number}: {name!r} has a row already; give each "
                            f"image one row")
        if empty := [k for k, v in values.items() if not v]:
            raise DataError(f"{path}: row {number}: no {empty[0]} for {name!r}; give every "
                            f"label a value, or remove the row (the image is then counted as "
                            f"unlabelled)")
        if mlds:
            tags = TAGS.fullmatch(values["tags"])
            if not tags:
                raise DataError(f"{path}: row {number}: tags {values['tags']!r} are not of the "
                                f"form 'blue hair red eyes'; write them so")
            values = {"hair": tags[1], "eyes": tags[2]}
        found[name] = list(values.values())
    columns = ["hair", "eyes"] if mlds else names
    attributes = {}
    for j, column in enumerate(columns):
        vocabulary = tuple(sorted({v[j] for v in found.values()}))
        codes = np.full(len(files), -1, np.int32)
        for name, values in found.items():
            codes[index[name]] = vocabulary.index(values[j])
        attributes[column] = (codes, vocabulary)
    return attributes


def prepare(
    src: str | Path, out: str | Path, size: int = 64, workers: int | None = None,
    force: bool = False, progress: bool = True, *, fit: str = "stretch",
    resample: str = "lanczos", labels: str = "",
) -> PrepareSummary:
    """Read every image under src, as RGB size x size uint8 (fit_square's fit and resample),
    into the HDF5 file out; with `labels`, their attributes: "folders" (the sub-folder as
    `character`) or the path of a CSV file (read_labels)."""
    src, out = Path(src), Path(out)
    if out.exists() and not force:
        raise DataError(f"{out}: already exists; pass --force to replace it")
    if labels and labels != "folders" and not Path(labels).is_file():
        raise DataError(f"{labels}: no such file; give --labels folders, or {LABELS_FORMS}")
    start = time.perf_counter()
    folder = read_folder(src, size, workers, progress, fit=fit, resample=resample)
    attributes = {}
    if labels == "folders":
        if not folder.class_names:
            raise DataError(f"{src}: --labels folders needs one sub-folder per character, and "
                            f"its images are all at its top level")
        attributes = {"character": (folder.labels, tuple(folder.class_names))}
    elif labels:
        # Every image found is named, those skipped too: a row for one is no error.
        attributes = read_labels(labels, [*folder.files, *(name for name, _ in folder.bad)])
        attributes = {k: (v[:len(folder.files)], n) for k, (v, n) in attributes.items()}
    unlabelled = [f for i, f in enumerate(folder.files)
                  if any(v[i] < 0 for v, _ in attributes.values())]
    write_h5(out, folder.images, folder.labels, folder.class_names, folder.files, attributes,
             made={"by": "prepare", "source": str(src.resolve()), "size": size, "fit": fit,
                   "resample": resample, **({"labels": labels} if labels else {}),
                   "images kept": len(folder.images),
                   **({"without a label": len(unlabelled)} if labels else {}),
                   "kept in part": len(folder.notes), "skipped": len(folder.bad),
                   "ignored (not images by name)": len(folder.ignored),
                   "links to folders not followed": len(folder.links)})
    return PrepareSummary(len(folder.images), time.perf_counter() - start, out,
                          out.stat().st_size / 2**20, folder.bad, len(folder.ignored),
                          folder.ignored[:5], folder.notes, folder.links, unlabelled)


def resize(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 images at size x size (antialiased), or the same array if they are already."""
    if images.shape[1:3] == (size, size):
        return images
    return np.stack([np.asarray(Image.fromarray(a).resize((size, size), Image.Resampling.LANCZOS))
                     for a in images])


def image_set(path: str | Path, size: int | None = None, progress: bool = True) -> np.ndarray:
    """uint8 images from a prepared HDF5 file or a folder of images, at size x size if given,
    else at the file's size or the width of the folder's first image."""
    path = Path(path)
    if path.is_dir():
        if size is None:
            first = _find_images(path)[0][0]
            try:
                with Image.open(first) as img:
                    size = img.width
            except OSError as e:
                raise DataError(f"{first}: cannot be read ({e})") from None
        return read_folder(path, size, progress=progress).images
    images = read_h5(path).images
    return resize(images, size) if size else images


# --- synth: the built-in dataset -----------------------------------------------------------


def _draw(job: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    n, size, seed, start = job
    return synth_faces.draw_faces(n, size, seed, start)


def synth(
    out: str | Path, n: int = 20000, size: int = 64, seed: int = 0, workers: int | None = None,
    progress: bool = True,
) -> Path:
    """Draw n synthetic faces into the HDF5 file out; the same (n, size, seed) gives the same
    file."""
    out = Path(out)
    if n <= 0:
        raise DataError(f"--n must be positive, got {n}")
    if size < 8:
        raise DataError(f"--size must be at least 8, got {size}")
    step = 500
    jobs = [(min(step, n - s), size, seed, s) for s in range(0, n, step)]
    workers = min(workers or os.cpu_count() or 1, len(jobs))
    with tqdm(total=n, desc="synthetic faces", unit="img", disable=not progress) as bar:
        parts = _run(_draw, jobs, workers, 1, bar, weight=lambda p: len(p[0]))
    images = np.concatenate([p[0] for p in parts])
    attributes = np.concatenate([p[1] for p in parts])
    names = list(synth_faces.ATTRIBUTES)
    hair = names.index("hair")
    write_h5(
        out, images, attributes[:, hair], list(synth_faces.ATTRIBUTES["hair"]),
        [f"synthetic/{seed}/{i}" for i in range(n)],
        {k: (attributes[:, j], v) for j, (k, v) in enumerate(synth_faces.ATTRIBUTES.items())},
        made={"by": "synth", "n": n, "size": size, "seed": seed},
    )
    return out


def cache_dir(setting: str = "") -> Path:
    """Where the package keeps what it makes for itself (the built-in faces): `setting`
    (data.cache_dir) if given, else $XDG_CACHE_HOME/keras_ganime, else ~/.cache/keras_ganime;
    never beside the package, which an install may not let anyone write."""
    if setting:
        return Path(setting).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "keras_ganime"


def default_dataset(n: int, size: int, cache: str = "") -> Path:
    """The built-in synthetic faces, drawn once into the cache and reused."""
    path = cache_dir(cache) / f"synthetic-{size}px-{n}.h5"
    if not path.exists():
        synth(path, n=n, size=size, seed=0)
    return path


# --- loading for training ------------------------------------------------------------------


def dataset_path(path: str, resolved: str = "") -> str:
    """A run's data file: `path` as given, found from the working directory, else the absolute
    path it resolved to when the run began (`resolved`), so that a run resumes and evaluates
    from any directory; '' for the built-in faces."""
    if path and not Path(path).is_file() and resolved and Path(resolved).is_file():
        return resolved
    return path


def load_images(path: str, n_synth: int, image_size: int, cache: str = "") -> np.ndarray:
    """uint8 images at image_size from the HDF5 file at path, or the built-in faces if path is ''.

    A file of another image size is resized once here (antialiased), not per batch.
    """
    return resize(read_h5(path or default_dataset(n_synth, image_size, cache)).images,
                  image_size)


def run_images(settings: DataConfig, image_size: int) -> np.ndarray:
    """A run's images: its [data] settings' file (`path`, else `resolved_path`) or the built-in
    faces, at `image_size`."""
    return load_images(dataset_path(settings.path, settings.resolved_path), settings.synth_n,
                       image_size, settings.cache_dir)


def run_labels(settings: DataConfig, image_size: int, names: Sequence[str]
               ) -> tuple[np.ndarray, dict[str, tuple[str, ...]]]:
    """A conditional run's labels (read_labels_of) from its data: its file or the built-in
    faces at `image_size`."""
    path = dataset_path(settings.path, settings.resolved_path)
    return read_labels_of(path or default_dataset(settings.synth_n, image_size,
                                                  settings.cache_dir), names)


def check_enough(images: np.ndarray, batch_size: int) -> None:
    """DataError unless there are at least batch_size images to draw a batch from."""
    if batch_size > len(images):
        raise DataError(f"train.batch_size {batch_size} is larger than the dataset ({len(images)} "
                        f"images); set a smaller one (--set train.batch_size=N) or prepare more "
                        f"images")
