"""A folder of tagged faces, as ../shared/data's, for the tests of `data split` and `make
small-data` (no TensorFlow here: the data tests run without it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def tagged_faces(folder: Path, n: int = 30, size: int = 64) -> Path:
    """n flat faces, face i of red level 8 i (mod 256, its green 8 (i // 32): each differs),
    tagged red hair for odd i, else blue, and brown eyes for i a multiple of 3, else green, as
    ../shared/data's layout."""
    (folder / "images").mkdir(parents=True)
    rows = ["image,hair,eyes"]
    for i in range(n):
        Image.fromarray(np.full((size, size, 3), (i * 8 % 256, i // 32 * 8, 0), np.uint8)).save(
            folder / "images" / f"{i}.png")
        rows.append(f"{i}.png,{'red' if i % 2 else 'blue'},{'green' if i % 3 else 'brown'}")
    (folder / "tags.csv").write_text("\n".join(rows) + "\n")
    return folder
