"""Faces with tags (FOLDER/images and FOLDER/tags.csv, columns image, hair, eyes, as the shared
anime faces), and the fixed split of them into training and held-out faces that the anime
encoder was trained and tested on, and that `python -m keras_ganime.data split` writes."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from keras_ganime.data import DataError

TAGGED_SIZE = 64
HELD_OUT = 0.1
SPLIT_SEED = 0


@dataclass
class TaggedFaces:
    images: np.ndarray  # (N, 64, 64, 3) uint8
    hair: np.ndarray  # (N,) int32 index into hair_names
    eyes: np.ndarray  # (N,) int32 index into eye_names
    hair_names: list[str]
    eye_names: list[str]
    filenames: list[str]


def load_tagged_faces(folder: str | Path, n: int | None = None, seed: int = 0) -> TaggedFaces:
    """The faces listed in FOLDER/tags.csv (columns image, hair, eyes), read from FOLDER/images:
    all in the order of the file, or `n` of them drawn at random (for `seed`), in random order.
    The file is sorted by tag, so its first rows would not be a fair sample."""
    folder = Path(folder)
    tags = folder / "tags.csv"
    if not tags.is_file():
        raise DataError(f"{tags}: no such file (expected a folder with images/ and tags.csv)")
    with tags.open(newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"image", "hair", "eyes"} <= set(rows[0]):
        raise DataError(f"{tags}: needs the columns image, hair, eyes")
    hair_names = sorted({r["hair"] for r in rows})
    eye_names = sorted({r["eyes"] for r in rows})
    if n is not None:
        if not 0 < n <= len(rows):
            raise DataError(f"{tags}: asked for {n} faces, it lists {len(rows)}")
        rows = [rows[i] for i in np.random.default_rng(seed).permutation(len(rows))[:n]]
    images = np.empty((len(rows), TAGGED_SIZE, TAGGED_SIZE, 3), np.uint8)
    for i, row in enumerate(rows):
        path = folder / "images" / row["image"]
        try:
            with Image.open(path) as img:
                img = img.convert("RGB")
                if img.size != (TAGGED_SIZE, TAGGED_SIZE):
                    img = img.resize((TAGGED_SIZE, TAGGED_SIZE), Image.Resampling.LANCZOS)
                images[i] = np.asarray(img)
        except OSError as e:
            raise DataError(f"{path}: cannot be read ({type(e).__name__})") from None
    return TaggedFaces(
        images,
        np.array([hair_names.index(r["hair"]) for r in rows], np.int32),
        np.array([eye_names.index(r["eyes"]) for r in rows], np.int32),
        hair_names, eye_names, [r["image"] for r in rows],
    )


def split(n: int, held_out: float = HELD_OUT, seed: int = SPLIT_SEED) -> tuple[np.ndarray,
                                                                                np.ndarray]:
    """Indices (train, held-out) of n faces, a fixed random fraction held out."""
    order = np.random.default_rng(seed).permutation(n)
    cut = round(n * float(held_out))
    return np.sort(order[cut:]), np.sort(order[:cut])
