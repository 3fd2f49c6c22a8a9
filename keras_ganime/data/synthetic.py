"""Procedural anime-style face images: the project's built-in synthetic dataset.

Lets training, tests and demos run without downloading the real anime-face crops.
Each face is a handful of flat PIL shapes (hair, face, fringe, eyes, mouth) drawn on a
supersampled canvas and downscaled with Lanczos, so edges are antialiased at any size
and the images have the clean, flat look a small DCGAN can learn in a few hundred steps.

Every face is drawn from its own generator seeded with ``(seed, index)``; a face never
depends on its neighbours, so callers may draw chunks in any order or in parallel and
get byte-identical results.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from PIL import Image, ImageDraw

__all__ = ["ATTRIBUTES", "EYE_COLOURS", "HAIR_COLOURS", "draw_faces"]

# Same names (and order) as the hair / eye tags of the real dataset, so conditional
# models can be swapped between the synthetic and the real data without relabelling.
HAIR_COLOURS: tuple[str, ...] = (
    "aqua", "black", "blonde", "blue", "brown", "gray",
    "green", "orange", "pink", "purple", "red", "white",
)
EYE_COLOURS: tuple[str, ...] = (
    "aqua", "black", "blue", "brown", "green",
    "orange", "pink", "purple", "red", "yellow",
)

ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "hair": HAIR_COLOURS,
    "hair_length": ("short", "long"),
    "fringe": ("straight", "parted", "spiky", "side"),
    "eyes": EYE_COLOURS,
    "eye_size": ("small", "medium", "large"),
    "face": ("round", "pointed"),
    "mouth": ("closed", "smile", "open"),
    "skin": ("pale", "peach", "tan", "brown"),
    "background": ("white", "gray", "pink", "blue", "yellow", "green"),
}

_RGB = tuple[int, int, int]

# Saturated, anime-like palette; brightness spread wide so colour is learnable even in
# grayscale summaries (e.g. black vs blonde differ strongly in luminance).
_HAIR_RGB: dict[str, _RGB] = {
    "aqua": (70, 205, 205), "black": (42, 40, 52), "blonde": (246, 222, 128),
    "blue": (62, 96, 206), "brown": (124, 78, 42), "gray": (152, 152, 160),
    "green": (72, 164, 84), "orange": (242, 142, 52), "pink": (246, 156, 196),
    "purple": (142, 82, 184), "red": (204, 44, 54), "white": (240, 240, 246),
}
_EYE_RGB: dict[str, _RGB] = {
    "aqua": (40, 196, 206), "black": (44, 40, 48), "blue": (44, 90, 220),
    "brown": (136, 84, 40), "green": (42, 160, 66), "orange": (236, 124, 32),
    "pink": (236, 104, 168), "purple": (136, 64, 190), "red": (206, 32, 44),
    "yellow": (232, 204, 40),
}
_SKIN_RGB: dict[str, _RGB] = {
    "pale": (255, 238, 228), "peach": (255, 218, 188),
    "tan": (234, 188, 148), "brown": (186, 132, 94),
}
_BACKGROUND_RGB: dict[str, _RGB] = {
    "white": (244, 244, 242), "gray": (168, 170, 176), "pink": (250, 198, 210),
    "blue": (168, 200, 242), "yellow": (250, 236, 166), "green": (184, 226, 178),
}

_N_VALUES = np.array([len(v) for v in ATTRIBUTES.values()])

_EYE_RADII = {"small": (0.062, 0.068), "medium": (0.076, 0.088), "large": (0.090, 0.108)}

# Below ~128 px the eyes' highlight dots and lash flicks are only a few canvas pixels
# wide, so small outputs get a larger supersampling factor to keep their shapes crisp.
_MIN_CANVAS = 128


def _jitter(rgb: _RGB, noise: list[float], amount: float) -> _RGB:
    # Plain Python on three ints: numpy's per-call overhead dominated at ~20k faces.
    return tuple(  # type: ignore[return-value]
        min(255, max(0, round(c + amount * e))) for c, e in zip(rgb, noise)
    )


def _shade(rgb: _RGB, f: float) -> _RGB:
    return tuple(int(min(255, c * f)) for c in rgb)  # type: ignore[return-value]


def _mix(a: _RGB, b: _RGB, t: float) -> _RGB:
    return tuple(int(x + (y - x) * t) for x, y in zip(a, b))  # type: ignore[return-value]


def _lin(a: float, b: float, n: int) -> list[float]:
    # np.linspace costs ~30 us per call; a handful per face adds up over 20k faces.
    return [a + (b - a) * i / (n - 1) for i in range(n)]


@functools.lru_cache(maxsize=64)
def _unit_arc(a0: float, a1: float, n: int) -> tuple[tuple[float, float], ...]:
    # Cached because the same few arcs are needed for every face.
    step = (a1 - a0) / (n - 1)
    return tuple(
        (math.cos(math.radians(a0 + i * step)), math.sin(math.radians(a0 + i * step)))
        for i in range(n)
    )


def _ellipse_arc(
    cx: float, cy: float, rx: float, ry: float, a0: float, a1: float, n: int
) -> list[tuple[float, float]]:
    """Points on an ellipse from angle a0 to a1 (degrees, PIL convention: y down)."""
    return [(cx + rx * c, cy + ry * s) for c, s in _unit_arc(a0, a1, n)]


def _draw_face(rng: np.random.Generator, size: int) -> tuple[np.ndarray, list[int]]:
    # Attributes first, in a fixed order, so the label stream never depends on how much
    # randomness the drawing itself consumes.
    attrs = rng.integers(0, _N_VALUES).tolist()
    hair_i, length_i, fringe_i, eye_i, esize_i, face_i, mouth_i, skin_i, bg_i = attrs
    hair_name = HAIR_COLOURS[hair_i]
    long_hair = ATTRIBUTES["hair_length"][length_i] == "long"
    fringe = ATTRIBUTES["fringe"][fringe_i]
    eye_rx, eye_ry = _EYE_RADII[ATTRIBUTES["eye_size"][esize_i]]
    pointed = ATTRIBUTES["face"][face_i] == "pointed"
    mouth = ATTRIBUTES["mouth"][mouth_i]

    noise = rng.uniform(-1.0, 1.0, 12).tolist()  # one call: 4 colours x RGB
    hair = _jitter(_HAIR_RGB[hair_name], noise[0:3], 10)
    # Black hair needs a *lighter* strand colour to stay visible; everything else darker.
    hair_line = _mix(hair, (150, 150, 175), 0.45) if hair_name == "black" else _shade(hair, 0.55)
    hair_back = _shade(hair, 0.82)
    hair_shine = _mix(hair, (255, 255, 255), 0.45)
    eye = _jitter(_EYE_RGB[EYE_COLOURS[eye_i]], noise[3:6], 10)
    skin = _jitter(_SKIN_RGB[ATTRIBUTES["skin"][skin_i]], noise[6:9], 6)
    skin_line = _shade(skin, 0.72)
    bg = _jitter(_BACKGROUND_RGB[ATTRIBUTES["background"][bg_i]], noise[9:12], 12)

    factor = max(4, -(-_MIN_CANVAS // size))
    w = size * factor
    lw = max(1, round(w * 0.009))

    # Pose: the real crops are roughly centred and face-filling, with a few % of slop;
    # scale is +-10% around a base that lets the hair touch the top edge like the crops.
    cx = 0.5 + rng.uniform(-0.04, 0.04)
    cy = 0.53 + rng.uniform(-0.04, 0.04)
    k = 1.05 * rng.uniform(0.9, 1.1)

    def p(x: float, y: float) -> tuple[float, float]:
        return ((cx + x * k) * w, (cy + y * k) * w)

    def pts(seq: list[tuple[float, float]]) -> list[tuple[float, float]]:
        return [p(x, y) for x, y in seq]

    def box(x0: float, y0: float, x1: float, y1: float) -> list[float]:
        a, b = p(x0, y0)
        c, d = p(x1, y1)
        return [a, b, c, d]

    img = Image.new("RGB", (w, w), bg)
    d = ImageDraw.Draw(img)

    def outlined(seq: list[tuple[float, float]], fill: _RGB, line: _RGB) -> None:
        # A closed wide line instead of polygon(outline=, width>1): Pillow implements the
        # latter with several full-canvas mask images, several times slower per shape.
        xy = pts(seq)
        d.polygon(xy, fill=fill)
        d.line(xy + [xy[0]], fill=line, width=lw, joint="curve")

    # Cranium: the hair silhouette around which fringe and back hair are built.
    hx, hy, hrx, hry = 0.0, -0.1, 0.41 * rng.uniform(0.97, 1.05), 0.40
    a = 0.30 * rng.uniform(0.95, 1.05)  # face half-width

    # --- back hair: the mass behind the head, down to the shoulders or off the frame.
    bottom = rng.uniform(0.62, 0.75) if long_hair else rng.uniform(0.26, 0.34)
    spread = 0.08 if long_hair else 0.02
    back = _ellipse_arc(hx, hy, hrx, hry, 180, 360, 24)
    if fringe == "spiky":
        # Spikes poking out of the silhouette are what reads as "spiky" at 64 px.
        back = []
        for j, t in enumerate(_lin(180, 360, 15)):
            r = 1.0 if j % 2 == 0 else 1.0 + rng.uniform(0.12, 0.22)
            tr = math.radians(t)
            back.append((hx + hrx * r * math.cos(tr), hy + hry * r * math.sin(tr)))
    n_tips = 5
    xs = _lin(hrx + spread, -hrx - spread, 2 * n_tips + 1)
    hem = [
        (x, bottom + (0.0 if j % 2 == 0 else -rng.uniform(0.04, 0.09)))
        for j, x in enumerate(xs)
    ]
    back_poly = back + [(hrx + spread, bottom - 0.1)] + hem + [(-hrx - spread, bottom - 0.1)]
    outlined(back_poly, hair_back, hair_line)

    # --- neck, then face.
    d.rectangle(box(-0.085, 0.2, 0.085, 0.7), fill=_shade(skin, 0.88))
    chin = 0.38 if pointed else 0.34
    face = _ellipse_arc(0.0, 0.08, a, 0.36, 180, 360, 20)
    for u in _lin(0.0, 1.0, 14):
        # Pointed: the width falls off as 1 - u^1.6, giving a V with a sharp chin;
        # round: a plain ellipse.
        x = a * (1.0 - u**1.6) if pointed else a * math.sqrt(max(0.0, 1.0 - u * u))
        face.insert(0, (-x, 0.08 + (chin - 0.08) * u))
        face.append((x, 0.08 + (chin - 0.08) * u))
    outlined(face, skin, skin_line)

    # --- cheeks, nose, mouth.
    blush = _mix(skin, (255, 120, 140), 0.3)
    for s in (-1, 1):
        d.ellipse(box(s * 0.17 - 0.05, 0.155, s * 0.17 + 0.05, 0.19), fill=blush)
    d.line(pts([(0.0, 0.16), (-0.012, 0.178)]), fill=skin_line, width=lw)
    my = 0.255 if pointed else 0.245
    lip = _mix(skin, (110, 30, 40), 0.7)
    if mouth == "closed":
        d.line(pts([(-0.035, my), (0.035, my)]), fill=lip, width=lw + 1)
    elif mouth == "smile":
        d.arc(box(-0.05, my - 0.05, 0.05, my + 0.015), 25, 155, fill=lip, width=lw + 1)
    else:
        d.chord(box(-0.045, my - 0.035, 0.045, my + 0.04), 0, 180, fill=(150, 36, 50))
        d.chord(box(-0.025, my + 0.005, 0.025, my + 0.035), 180, 360, fill=(236, 120, 130))
        d.chord(box(-0.045, my - 0.035, 0.045, my + 0.04), 0, 180, outline=lip, width=lw)

    # --- eyes: sclera, iris, pupil, highlight, heavy upper lash with an outer flick.
    ey = 0.075
    lash = _shade(hair_line, 0.5) if hair_name != "black" else (30, 26, 36)
    lash = _mix(lash, (30, 24, 30), 0.6)
    iris_dark = _shade(eye, 0.55)
    iris_light = _mix(eye, (255, 255, 255), 0.35)
    for s in (-1, 1):
        ex = s * 0.135
        d.ellipse(box(ex - eye_rx, ey - eye_ry, ex + eye_rx, ey + eye_ry), fill=(255, 255, 255))
        irx, iry = 0.66 * eye_rx, 0.9 * eye_ry
        ix, iy = ex - s * 0.08 * eye_rx, ey + 0.08 * eye_ry
        d.ellipse(box(ix - irx, iy - iry, ix + irx, iy + iry), fill=eye, outline=iris_dark,
                  width=lw)
        d.chord(
            box(ix - 0.75 * irx, iy - 0.2 * iry, ix + 0.75 * irx, iy + 0.85 * iry),
            10, 170, fill=iris_light,
        )
        prx, pry = 0.42 * irx, 0.5 * iry
        d.ellipse(box(ix - prx, iy - pry, ix + prx, iy + pry), fill=_shade(eye, 0.3))
        hr = 0.3 * irx
        hxx, hyy = ix - 0.35 * irx, iy - 0.38 * iry
        d.ellipse(box(hxx - hr, hyy - hr, hxx + hr, hyy + hr), fill=(255, 255, 255))
        hr2 = 0.14 * irx
        hxx, hyy = ix + 0.4 * irx, iy + 0.4 * iry
        d.ellipse(box(hxx - hr2, hyy - hr2, hxx + hr2, hyy + hr2), fill=(255, 255, 255))
        # Lash: band between two arcs over the top of the eye; the outer end is pulled
        # out and down into the flick that makes the eye read as "anime" when tiny.
        top = _ellipse_arc(ex, ey, 1.12 * eye_rx, 1.12 * eye_ry, 185, 355, 12)
        inner = _ellipse_arc(ex, ey, 1.0 * eye_rx, 0.78 * eye_ry, 355, 185, 12)
        outer_end = (ex + s * 1.3 * eye_rx, ey - 0.05 * eye_ry)
        band = top + ([outer_end] if s > 0 else []) + inner + ([outer_end] if s < 0 else [])
        d.polygon(pts(band), fill=lash)
        low = _ellipse_arc(ex, ey, 0.95 * eye_rx, 1.0 * eye_ry, 20, 70, 5)
        if s < 0:
            low = [(2 * ex - x, y) for x, y in low]
        d.line(pts(low), fill=lash, width=lw)
        # Brow: usually hidden under the fringe, visible through a part or side sweep.
        by = ey - eye_ry - 0.06
        d.line(pts([(ex - s * 0.05, by + 0.008), (ex + s * 0.05, by)]), fill=hair_line,
               width=lw + 1)

    # --- side locks falling in front of the face edges; drawn before the fringe so
    # their flat tops tuck under it.
    lock_end = bottom + 0.02 if long_hair else rng.uniform(0.22, 0.3)
    for s in (-1, 1):
        lock = [
            (s * (a - 0.1), -0.16), (s * (hrx + 0.01), -0.14),
            (s * (a + 0.08), 0.12), (s * (a + 0.02), lock_end),
            (s * (a - 0.03), 0.1), (s * (a - 0.07), -0.02),
        ]
        outlined(lock, hair, hair_line)

    # --- fringe: cap of the cranium with a bang-shaped lower edge.
    cap = _ellipse_arc(hx, hy, hrx, hry, 180, 360, 24)
    edge: list[tuple[float, float]] = []  # right to left along the bottom of the fringe
    if fringe == "straight":
        n = int(rng.integers(5, 8))
        tips = _lin(0.33, -0.33, n)
        tip_y = rng.uniform(-0.06, -0.03)
        step = tips[0] - tips[1]
        for j, x in enumerate(tips):
            edge.append((x, tip_y + rng.uniform(-0.015, 0.015)))
            if j < n - 1:
                edge.append((x - step / 2, tip_y - rng.uniform(0.06, 0.1)))
    elif fringe == "parted":
        part = rng.uniform(-0.06, 0.06)
        for s in (1, -1):
            side: list[tuple[float, float]] = [
                (s * 0.36, 0.0 + rng.uniform(-0.02, 0.02)),
                (s * 0.27, -0.13),
                (s * 0.23, -0.04 + rng.uniform(-0.02, 0.02)),
                (s * 0.17, -0.16),
                (s * 0.13, -0.07 + rng.uniform(-0.02, 0.02)),
                (s * 0.03, -0.3),
            ]
            side = [(x + part * (1 - abs(x) / 0.36), y) for x, y in side]
            edge += side if s > 0 else side[::-1]
    elif fringe == "spiky":
        n = int(rng.integers(4, 6))
        tips = _lin(0.32, -0.32, n)
        step = tips[0] - tips[1]
        for j, x in enumerate(tips):
            edge.append((x + rng.uniform(-0.03, 0.03), rng.uniform(-0.06, 0.02)))
            if j < n - 1:
                edge.append((x - step / 2, rng.uniform(-0.24, -0.18)))
    else:  # side sweep, direction random (not an attribute: both read as "side")
        s = 1 if rng.random() < 0.5 else -1
        for j, t in enumerate(_lin(0.0, 1.0, 7)):
            x = 0.34 - 0.64 * t
            y = 0.0 - 0.22 * t
            if j % 2 == 0:
                edge.append((x - 0.04, y + 0.02))
            else:
                edge.append((x, y - 0.1))
        edge.append((-0.34, -0.28))
        if s < 0:
            edge = [(-x, y) for x, y in reversed(edge)]
    fringe_poly = cap + [(hrx, hy + 0.05)] + edge + [(-hrx, hy + 0.05)]
    outlined(fringe_poly, hair, hair_line)
    # Strand lines from each notch up toward the crown break the flat mass into locks.
    for j in range(1, len(edge) - 1):
        x, y = edge[j]
        if y < edge[j - 1][1] and y < edge[j + 1][1]:
            d.line(pts([(x, y), (x * 0.6, y - 0.14)]), fill=hair_line, width=lw)

    # Angel-ring shine across the crown, broken into arcs like cel-shaded highlights.
    shine_box = box(hx - 0.8 * hrx, hy - 0.8 * hry, hx + 0.8 * hrx, hy + 0.8 * hry)
    for a0 in (218, 252, 290):
        d.arc(shine_box, a0, a0 + 26, fill=hair_shine, width=max(1, round(w * 0.022)))

    # reducing_gap=2 box-reduces to 2x the target before the Lanczos pass: the same
    # antialiasing for flat shapes at under half the cost of a direct 4x Lanczos.
    small = img.resize((size, size), Image.Resampling.LANCZOS, reducing_gap=2.0)
    return np.asarray(small, dtype=np.uint8), attrs


def draw_faces(
    n: int, size: int = 64, seed: int = 0, start: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Draw faces ``start .. start+n-1`` of the synthetic stream for ``seed``.

    Returns images ``(n, size, size, 3)`` uint8 RGB and attributes
    ``(n, len(ATTRIBUTES))`` int32: the value index of each attribute, columns in
    ``ATTRIBUTES`` order. Face ``i`` depends only on ``(seed, start + i)``.
    """
    if not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    if not isinstance(size, (int, np.integer)) or size < 8:
        raise ValueError(f"size must be an integer >= 8, got {size!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not isinstance(start, (int, np.integer)) or start < 0:
        raise ValueError(f"start must be a non-negative integer, got {start!r}")
    n, size, seed, start = int(n), int(size), int(seed), int(start)
    images = np.empty((n, size, size, 3), dtype=np.uint8)
    attrs = np.empty((n, len(ATTRIBUTES)), dtype=np.int32)
    for i in range(n):
        images[i], attrs[i] = _draw_face(np.random.default_rng([seed, start + i]), size)
    return images, attrs
