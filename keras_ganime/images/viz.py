"""Pictures of a run: image grids, loss and metric curves, and the animation of the samples."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from PIL import Image

from keras_ganime.runs import atomic_write


def grid(images: np.ndarray, cols: int | None = None, pad: int = 1) -> Image.Image:
    """(N, H, W, 3) uint8 -> one image of cols x rows tiles on a white background."""
    n, h, w, _ = images.shape
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, 3), 255, np.uint8)
    for i, image in enumerate(images):
        top, left = (pad + k * (s + pad) for k, s in zip(divmod(i, cols), (h, w)))
        out[top:top + h, left:left + w] = image
    return Image.fromarray(out)


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def save_png(image: Image.Image, path: Path) -> None:
    atomic_write(Path(path), png_bytes(image))


def save_grid(images: np.ndarray, path: Path, cols: int | None = None) -> Image.Image:
    """Writes the grid of `grid`; returns it."""
    picture = grid(images, cols)
    save_png(picture, path)
    return picture


def _pyplot() -> ModuleType:
    # Imported here: matplotlib costs a second or more to import, which the command-line tools
    # that only write grids should not pay.
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers and in tests
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> None:
    plt = _pyplot()
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write(Path(path), buf.getvalue())


def loss_plot(rows: list[dict[str, float]], panels: Sequence[tuple[str, Sequence[str]]],
              path: Path, title: str = "") -> None:
    """A family's logged values against mini-batch, as the paper's loss figures: one panel per
    (axis label, names) of its spec's `plots`, stacked, sharing the mini-batch axis."""
    fig, axes = _pyplot().subplots(len(panels), 1, figsize=(8, 1.5 + 3 * len(panels)), dpi=100,
                                   sharex=True, squeeze=False)
    steps = [r["step"] for r in rows]
    for ax, (label, names) in zip(axes[:, 0], panels, strict=True):
        for name in names:
            ax.plot(steps, [r[name] for r in rows], label=name, linewidth=0.8)
        ax.set_ylabel(label)
        ax.legend(loc="upper left")
        ax.grid(alpha=0.3)
    axes[0, 0].set_title(title)
    axes[-1, 0].set_xlabel("mini-batch")
    _save(fig, path)


def metric_plot(series: dict[str, list[dict[str, float]]], names: list[str], path: Path,
                title: str = "") -> None:
    """One panel per metric against mini-batch, one line per entry of series (a run, a seed)."""
    fig, axes = _pyplot().subplots(1, len(names), figsize=(3.2 * len(names), 3), dpi=100,
                                   squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        for label, rows in series.items():
            rows = [r for r in rows if name in r]
            ax.plot([r["step"] for r in rows], [r[name] for r in rows], marker=".",
                    linewidth=0.8, label=label)
        ax.set_title(name)
        ax.set_xlabel("mini-batch")
        ax.grid(alpha=0.3)
    if len(series) > 1:
        axes[0][0].legend(fontsize="small")
    fig.suptitle(title)
    _save(fig, path)


def confusion_plot(confusion: dict[str, dict[str, Any]], path: Path, title: str = "") -> None:
    """A conditional run's confusion matrices (evaluate's "confusion": attribute -> colours and
    asked_by_read), one panel each: rows the value asked for, columns the value read, each row
    as shares of its faces."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(confusion), figsize=(5 * len(confusion), 4.6), dpi=100,
                             squeeze=False)
    for ax, (name, read) in zip(axes[0], confusion.items(), strict=True):
        counts = np.asarray(read["asked_by_read"], np.float64)
        shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        ticks = range(len(read["colours"]))
        ax.set_xticks(ticks, read["colours"], rotation=90, fontsize="small")
        ax.set_yticks(ticks, read["colours"], fontsize="small")
        ax.set_xlabel(f"{name} read by the encoder")
        ax.set_ylabel(f"{name} asked for")
        diagonal = np.trace(counts) / max(counts.sum(), 1)
        ax.set_title(f"{name}: {diagonal:.0%} read as asked")
    fig.suptitle(title)
    _save(fig, path)


def grids_and_curves(grids: dict[str, np.ndarray], curves: dict[str, list[tuple[int, float]]],
                     ylabel: str, path: Path) -> None:
    """Image grids side by side, each under its title, above one panel of curves against
    mini-batch (runs compared: their last samples and a metric over their training)."""
    plt = _pyplot()
    fig = plt.figure(figsize=(3.4 * len(grids), 7.4), dpi=100)  # each grid near its own pixels
    layout = fig.add_gridspec(2, len(grids), height_ratios=(1, 1.1))
    for i, (title, images) in enumerate(grids.items()):
        ax = fig.add_subplot(layout[0, i])
        ax.imshow(grid(images))
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    ax = fig.add_subplot(layout[1, :])
    for label, points in curves.items():
        ax.plot(*zip(*points, strict=True), marker=".", linewidth=0.8, label=label)
    ax.set_xlabel("mini-batch")
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    _save(fig, path)


def animate(frames: list[Path], out: Path, ms_per_frame: int = 200) -> None:
    """The sample frames, in order, as one looping GIF."""
    images = [Image.open(f).convert("RGB") for f in frames]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:],
                   duration=ms_per_frame, loop=0)
    atomic_write(Path(out), buf.getvalue())
