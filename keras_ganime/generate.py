"""Images from a trained generator, or from a run still training; `python -m keras_ganime.generate`.

    python -m keras_ganime.generate runs/00007-batch16 --n 64 --out faces/
    python -m keras_ganime.generate runs/00007-batch16/generator.keras --interpolate --out faces/
    python -m keras_ganime.generate runs/00007-batch16 --walk 3 --steps 9 --out faces/
    python -m keras_ganime.generate runs/00012-seed003 --manipulate --out faces/
    python -m keras_ganime.generate runs/00014-stylegan-lite --truncation 0.7 --out faces/
    python -m keras_ganime.generate runs/00014-stylegan-lite --style-mix coarse --out faces/
    python -m keras_ganime.generate runs/00020-hair-eyes --condition "hair=blue,eyes=red"
    python -m keras_ganime.generate runs/00020-hair-eyes --grid-by hair --out faces/

The source is a run directory (its generator.keras, else its latest checkpoint) or a .keras file.
The latent vectors are drawn as in training, by the run's family, reproducibly from --seed.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tomllib
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from keras_ganime import config as config_lib
from keras_ganime import errors, families
from keras_ganime.config import Config
from keras_ganime.engines import checkpoints
from keras_ganime.engines.common import EXPORT_SETTINGS
from keras_ganime.images import viz
from keras_ganime.runs import atomic_write
from keras_ganime.settings import parse_condition

# TensorFlow and Keras are imported inside the functions that use them, after the arguments and
# paths have passed their checks: TensorFlow's start-up takes seconds and writes log lines to
# stderr, which would bury a one-line error.
if TYPE_CHECKING:
    import keras

    from keras_ganime.families.base import Family

ROWS = 8  # interpolations or walks in one picture, one per row
WALK_SCALE = 3.0  # the walk and the manipulation multiply a component by factors from -3 to 3
MANIPULATE_END = 100  # --manipulate's rows: components 1, 11, ... below this


class GenerateError(errors.Error):
    """A request that cannot be carried out; its message is one line."""


@dataclass(frozen=True)
class Source:
    """Where the generator comes from, found without TensorFlow."""

    path: Path  # as named on the command line
    model_file: Path | None  # a saved generator; None: rebuild it and restore a checkpoint
    # The run's settings (away from its run, as its .keras file recorded them); None for a file
    # that records none, whose family its input shape tells (bare_file_config).
    config: Config | None


def _layers(config: object) -> Iterator[str]:
    """Every class_name in a Keras model's config, nested models' too."""
    if isinstance(config, dict):
        if isinstance(config.get("class_name"), str):
            yield config["class_name"]
        for value in config.values():
            yield from _layers(value)
    elif isinstance(config, list):
        for value in config:
            yield from _layers(value)


def check_model_file(path: Path) -> None:
    """A .keras file read as far as it can be without TensorFlow: a zip with a model's
    config.json and no Lambda layer, whose Python code Keras would refuse to run (or run)."""
    try:
        with zipfile.ZipFile(path) as zf:
            config = json.loads(zf.read("config.json"))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as e:
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise GenerateError(f"{path}: not a Keras model file ({why}); copy it again, or sample "
                            f"from its run directory") from None
    if "Lambda" in _layers(config):
        raise GenerateError(f"{path}: holds a Lambda layer, Python code that is not loaded from "
                            f"a file since it could run anything; sample from a generator.keras "
                            f"that keras_ganime saved, or from its run directory")


def find_source(path: Path) -> Source:
    """A run directory or a .keras file, checked as far as it can be without loading anything."""
    if not path.exists():
        raise GenerateError(f"{path}: no such file or directory")
    if path.is_file():
        if path.suffix != ".keras":
            raise GenerateError(f"{path}: neither a run directory nor a .keras generator")
        check_model_file(path)
        # A generator.keras still in its run directory keeps the run's family and latents;
        # away from it, the settings recorded in the file (None in a file older than that).
        beside = path.parent / "config.toml"
        return Source(path, path, config_lib.read_run_config(path.parent)
                      if beside.is_file() else recorded_settings(path))
    cfg = config_lib.read_run_config(path)
    if (path / "generator.keras").is_file():
        check_model_file(path / "generator.keras")
        return Source(path, path / "generator.keras", cfg)
    if checkpoints.format_of(path / "checkpoints") is None:
        raise GenerateError(f"{path}: no generator.keras and no checkpoint yet")
    return Source(path, None, cfg)


def recorded_settings(path: Path) -> Config | None:
    """The run's settings that the export recorded in the .keras file, or None where it has
    none (an export older than the record, or another program's)."""
    with zipfile.ZipFile(path) as zf:
        comment = zf.comment
    if not comment.startswith(EXPORT_SETTINGS):
        return None
    try:
        table = tomllib.loads(comment[len(EXPORT_SETTINGS):].decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as e:
        raise GenerateError(f"{path}: its recorded settings are not valid TOML ({e}); sample "
                            f"from its run directory") from None
    return config_lib.from_dict(table, f"{path} (its recorded settings)")


def default_out(source: Source) -> Path:
    """generated/ in the run directory: the run's own, or the one its generator.keras is in."""
    if source.path.is_dir():
        return source.path / "generated"
    if not (source.path.parent / "config.toml").is_file():
        raise GenerateError(f"{source.path}: a generator away from its run has no folder of its "
                            f"own for the images; name one with --out")
    return source.path.parent / "generated"


def check_walk(index: int | None, latent_dim: int) -> None:
    if index is not None and not 0 <= index < latent_dim:
        raise GenerateError(f"--walk {index} is outside [0, {latent_dim}): the latent size")


def load_model(path: Path) -> keras.Model:
    import keras

    try:
        return keras.models.load_model(path, compile=False)
    except ValueError as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise GenerateError(f"{path}: cannot be loaded ({first})") from None


def bare_file_config(path: Path, model: keras.Model) -> Config:
    """The family of a .keras generator away from its run that records no settings (an export
    older than the record), told by its input: a DCGAN's takes (1, 1, latent) noise, read as
    the reference's, BEGAN's a flat (latent,) vector."""
    shape = tuple(model.input_shape)
    if len(shape) == 4 and shape[1:3] == (1, 1):
        return config_lib.load(None, [f"model.latent_dim={shape[-1]}"])
    if len(shape) == 2 and len(model.output_shape) == 4:
        return config_lib.load(None, ['model.family="began"', f"model.latent_dim={shape[-1]}",
                                      f"model.image_size={model.output_shape[1]}"])
    raise GenerateError(f"{path}: not a generator: its input shape is {shape}, not (None, 1, 1, "
                        f"latent) as a DCGAN's nor (None, latent) as BEGAN's")


def open_source(source: Source) -> tuple[Family, keras.Model]:
    """The family that draws the latents, and the network that renders them. A .keras file away
    from its run is taken for its family's generator by its input shape (bare_file_config)."""
    from keras_ganime import restore as sampling

    model = load_model(source.model_file) if source.model_file is not None else None
    cfg = source.config
    if cfg is None:
        cfg = bare_file_config(source.path, model)
    family = sampling.build(cfg)
    if model is None:
        sampling.restore(family, sampling.latest_checkpoint(source.path))
        model = family.sampler()
    elif family.condition is not None:  # an export takes (z, labels): packed latents here
        wanted = [tuple(t.shape) for t in family.generator.inputs]
        if [tuple(t.shape) for t in model.inputs] != wanted:
            raise GenerateError(f"{source.path}: not a generator of this run: its inputs are "
                                f"{[tuple(t.shape) for t in model.inputs]}, not (z, labels) "
                                f"{wanted}")
        model = family.condition.sampler(model, cfg.model.latent_dim)
    expected = tuple(family.sampler().input_shape)
    if tuple(model.input_shape) != expected:
        raise GenerateError(f"{source.path}: not a generator of this run: its input shape is "
                            f"{tuple(model.input_shape)}, not {expected}")
    return family, model


def interpolation(a: np.ndarray, b: np.ndarray, steps: int) -> np.ndarray:
    """Row r of the result, `steps` vectors long, blends a[r] linearly into b[r]."""
    t = np.linspace(0.0, 1.0, steps)[None, :, None]
    return ((1.0 - t) * a[:, None] + t * b[:, None]).reshape(-1, a.shape[1])


def walk_scales(steps: int) -> np.ndarray:
    return np.linspace(-WALK_SCALE, WALK_SCALE, steps)


def walk(base: np.ndarray, index: int, steps: int) -> np.ndarray:
    """Row r of the result is base[r] with component `index` multiplied by each walk scale."""
    z = np.repeat(base[:, None, :], steps, axis=1)
    z[:, :, index] *= walk_scales(steps)
    return z.reshape(-1, base.shape[1])


def manipulation(base: np.ndarray, components: list[int], factors: np.ndarray,
                 cumulative: bool = False) -> np.ndarray:
    """The latent-manipulation figure of "GAN Versus: Anime Faces": one row per component, base
    with that component multiplied by each factor. `cumulative` is the report's code, which never
    resets its mask between rows: each earlier row's component stays multiplied by the last
    factor."""
    mask = np.ones_like(base)
    rows = []
    for c in components:
        if not cumulative:
            mask = np.ones_like(base)
        for k in factors:
            mask[c] = k
            rows.append(base * mask)
    return np.stack(rows)


def parse_components(text: str, latent_dim: int) -> list[int]:
    """--components: comma-separated indices of the latent vector."""
    try:
        components = [int(c) for c in text.split(",")]
    except ValueError:
        raise GenerateError(f"--components must be integers separated by commas, got "
                            f"{text!r}") from None
    outside = [c for c in components if not 0 <= c < latent_dim]
    if outside:
        raise GenerateError(f"--components {','.join(map(str, outside))} outside [0, "
                            f"{latent_dim}): the latent size")
    return components


def default_components(latent_dim: int) -> str:
    """The GAN Versus report's: components 1, 11, ..., 91 (0-based; its prose says 1st, 10th,
    ..., 90th)."""
    return ",".join(str(c) for c in range(1, min(latent_dim, MANIPULATE_END), 10))


def write_grid(images: np.ndarray, path: Path, cols: int) -> str:
    """viz.save_grid, saying what it wrote."""
    picture = viz.save_grid(images, path, cols)
    rows = math.ceil(len(images) / cols)
    return f"wrote {path} ({rows} x {cols} images, {picture.width}x{picture.height} pixels)"


def grid_path(out: Path) -> Path:
    """The grid of a folder of samples goes beside it, not in it: the folder holds the samples
    alone, to be scored as a set (`evaluate compare REAL OUT`)."""
    out = out.resolve()
    return out.with_name(f"{out.name}-grid.png")


# Latents are drawn, rendered and written this many at a time, so that memory stays bounded
# whatever --n; the grid beside the folder shows the first GRID_MAX of them.
CHUNK = 1024
GRID_MAX = 1024


def write_samples(images: Callable[[int, int], np.ndarray], n: int, out: Path) -> list[str]:
    """One PNG per image in out, 00000.png on, `images(start, stop)` rendering them a chunk at a
    time, and the first GRID_MAX in a grid beside out. Before any file is written, the space
    all n would take (at the first chunk's size per file, its PNGs encoded in memory) is
    checked against the disk's free space."""
    paths = [out / f"{i:05d}.png" for i in range(n)]
    shown: list[np.ndarray] = []
    for start in range(0, n, CHUNK):
        chunk = images(start, min(start + CHUNK, n))
        shown += list(chunk[:GRID_MAX - len(shown)])
        encoded = [viz.png_bytes(Image.fromarray(image)) for image in chunk]
        if start == 0:
            need = sum(map(len, encoded)) / len(encoded) * n
            free = shutil.disk_usage(out).free
            if need > free:
                raise GenerateError(
                    f"{out}: {n} images would take about {need / 2**30:.1f} GiB, and its disk "
                    f"has {free / 2**30:.1f} GiB free; ask for fewer (--n) or choose another "
                    f"place (--out)")
        for data, path in zip(encoded, paths[start:start + len(chunk)], strict=True):
            atomic_write(path, data)
    grid = np.stack(shown)
    size = f"{grid.shape[2]}x{grid.shape[1]}"
    cols = math.ceil(math.sqrt(len(grid)))  # as viz.grid's default
    first = "" if n <= GRID_MAX else f" (the first {GRID_MAX})"
    return [f"wrote {n} images of {size} pixels: {paths[0]} .. {paths[-1]}",
            write_grid(grid, grid_path(out), cols) + first]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m keras_ganime.generate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    strip = ", ".join(f"{x:g}" for x in families.SPECS["stylegan"].truncation_strip)
    p.add_argument("source", metavar="RUN_OR_MODEL", help="a run directory or a .keras generator")
    p.add_argument("--out", metavar="DIR",
                   help="folder for the PNG files (default: generated/ in the run directory)")
    p.add_argument("--n", type=int, default=64, help="images to sample (default 64)")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent vectors (default 0)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--interpolate", action="store_true",
                      help=f"{ROWS} rows, each blending one latent vector into another")
    mode.add_argument("--walk", type=int, metavar="I",
                      help=f"{ROWS} rows, each scaling latent component I by -{WALK_SCALE:g} "
                           f"to {WALK_SCALE:g}")
    mode.add_argument("--manipulate", action="store_true",
                      help="the GAN Versus report's figure: one fixed z, a row per component "
                           "(--components), "
                           f"each multiplied by -{WALK_SCALE:g} to {WALK_SCALE:g}")
    p.add_argument("--components", metavar="I,J,...",
                   help="--manipulate's components (default 1,11,...,91)")
    p.add_argument("--cumulative", action="store_true",
                   help="--manipulate as the GAN Versus report's code does it: earlier rows' "
                        "components stay "
                        f"multiplied by {WALK_SCALE:g}")
    mode.add_argument("--grid-by", metavar="ATTRIBUTE",
                      help="a conditional run: one row per value of the attribute, the same "
                           f"{ROWS} latents in every row")
    p.add_argument("--condition", metavar="A=V,...",
                   help='a conditional run: the attributes\' values asked for, such as '
                        '"hair=blue,eyes=red" (the others drawn at random, each value alike)')
    p.add_argument("--labels-from", metavar="FILE",
                   help="a conditional run: each image's labels a row of this prepared file's, "
                        "at random (its faces' mix of values, as to compare with them)")
    mode.add_argument("--truncation-strip", action="store_true",
                      help=f"StyleGAN: {ROWS} rows of faces, a column per psi in {strip} "
                           "(the GAN Versus report's Fig. 8)")
    mode.add_argument("--style-mix", metavar="LAYERS",
                      help="StyleGAN: source faces along the top, destination faces down the "
                           "side, each cell the destination with the source's styles at the "
                           "coarse (4-8 px), middle (16-32 px) or fine (64 px) layers, or at w's "
                           "A-B")
    p.add_argument("--steps", type=int,
                   help="images per row of --interpolate or --walk (default 8), of "
                        "--manipulate (default 10)")
    p.add_argument("--truncation", type=float, metavar="PSI",
                   help="StyleGAN: w = w_avg + PSI (w - w_avg) (default 1: none)")
    p.add_argument("--truncation-cutoff", type=int, metavar="N",
                   help="StyleGAN: truncate the first N w's only (default: all)")
    p.add_argument("--noise", choices=["const", "random"],
                   help="StyleGAN: the per-layer noise fixed, as in training's grids (const, "
                        "the default), or drawn anew for each image (random)")
    return p.parse_args(argv)


# Each StyleGAN option and the capability (families.base.FamilySpec) it needs.
NEEDS = {"truncation": "truncation", "truncation_cutoff": "truncation",
         "truncation_strip": "truncation", "style_mix": "style_mixing", "noise": "noise"}


def check_family_options(args: argparse.Namespace, cfg: Config) -> None:
    """Options the run's family cannot honour, and bad StyleGAN option values, as one line."""
    for option, capability in NEEDS.items():
        if getattr(args, option) not in (None, False) and (
                capability not in config_lib.family_spec(cfg.family).capabilities):
            raise GenerateError(f"--{option.replace('_', '-')}: the {cfg.family} family has no "
                                f"{capability.replace('_', ' ')} (StyleGAN has)")
    if args.truncation_strip and args.truncation is not None:
        raise GenerateError("--truncation-strip sets psi itself, a column each: leave out "
                            "--truncation")
    if args.truncation_cutoff is not None and args.truncation is None and not (
            args.truncation_strip):
        raise GenerateError("--truncation-cutoff needs --truncation PSI (or --truncation-strip)")
    if args.truncation_cutoff is not None:
        count = config_lib.family_spec(cfg.family).style_count(cfg)
        if not 1 <= args.truncation_cutoff <= count:
            raise GenerateError(f"--truncation-cutoff {args.truncation_cutoff} is outside [1, "
                                f"{count}]: the w's of {cfg.model.image_size}x"
                                f"{cfg.model.image_size}")
    if args.style_mix is not None:
        if args.noise == "random":
            raise GenerateError("--style-mix keeps the noise fixed, so that only the styles "
                                "differ: leave out --noise random")
        try:
            config_lib.family_spec(cfg.family).style_range(cfg, args.style_mix)
        except ValueError as e:
            raise GenerateError(f"--style-mix: {e}") from None


def check_condition(args: argparse.Namespace, cfg: Config) -> dict[str, int]:
    """--condition's, --grid-by's and --labels-from's run must be conditional; returns
    --condition's {attribute column: value index}; one line for an unknown attribute or value,
    listing those there are, or for a run that is not conditional."""
    if args.condition is None and args.grid_by is None and args.labels_from is None:
        return {}
    option = next(f"--{name.replace('_', '-')}" for name in ("condition", "grid_by", "labels_from")
                  if getattr(args, name) is not None)
    vocabulary = cfg.model.vocabulary()
    if not vocabulary:
        raise GenerateError(f"{option}: this run's generator is not conditional "
                            f"(model.condition is empty)")
    if args.grid_by is not None and args.grid_by not in vocabulary:
        raise GenerateError(f"--grid-by: {args.grid_by!r} is not an attribute of this run: "
                            f"{', '.join(vocabulary)}")
    try:
        chosen = parse_condition(args.condition or "", vocabulary)
    except ValueError as e:
        raise GenerateError(f"--condition: {e}") from None
    if args.grid_by in chosen:
        raise GenerateError(f"--grid-by {args.grid_by} sets {args.grid_by} a row each: leave it "
                            f"out of --condition")
    names = list(vocabulary)
    return {names.index(name): value for name, value in chosen.items()}


def labels_from(args: argparse.Namespace, cfg: Config) -> np.ndarray | None:
    """--labels-from's rows for the --n images: each a row of the file's label table drawn at
    random from --seed; one line for a file without the run's attributes or values."""
    if args.labels_from is None:
        return None
    from keras_ganime.data import DataError, read_labels_of

    # `is not`: --walk 0 is a mode too, though 0 == False.
    if any(getattr(args, mode) is not None and getattr(args, mode) is not False
           for mode in MODES):
        raise GenerateError("--labels-from goes with plain sampling (--n), not with a grid")
    vocabulary = cfg.model.vocabulary()
    try:
        table, values = read_labels_of(args.labels_from, list(vocabulary))
    except DataError as e:
        raise GenerateError(f"--labels-from: {e}") from None
    if values != vocabulary:
        raise GenerateError(f"--labels-from: {args.labels_from}: its values of "
                            f"{', '.join(vocabulary)} are not this run's (model.condition_values)")
    return table[np.random.default_rng(args.seed).integers(0, len(table), args.n)]


# generate's modes other than plain sampling: each writes a grid of its own.
MODES = ("grid_by", "interpolate", "walk", "manipulate", "truncation_strip", "style_mix")


def with_labels(z: np.ndarray, cfg: Config, labels: dict[int, int]) -> np.ndarray:
    """Flattened packed latents (families/condition.py) with these label columns set."""
    z = z.copy()
    for column, value in labels.items():
        z[:, cfg.model.latent_dim + column] = value
    return z


def truncation(args: argparse.Namespace) -> float:
    """--truncation's psi; 1 (none) without it."""
    return 1.0 if args.truncation is None else args.truncation


def sampler(family: Family, args: argparse.Namespace, psi: float | None = None
            ) -> keras.Model:
    """A StyleGAN's sampler with the options asked for (psi: the strip's, else --truncation's)."""
    return family.sampler(truncation(args) if psi is None else psi, args.truncation_cutoff,
                          args.noise or "const")


MIXES = 5  # sources and destinations of a style-mixing grid


def style_mixing(args: argparse.Namespace, family: Family, draw: Any, out: Path) -> list[str]:
    """The first row: a blank, then the sources; each next row: a destination, then it with
    each source's styles in the chosen w's."""
    from keras_ganime.images.convert import to_uint8

    first, last = family.spec.style_range(family.cfg, args.style_mix)
    psi = truncation(args)
    z = draw(2 * MIXES)
    sources, destinations = z[:MIXES], z[MIXES:]
    cutoff = args.truncation_cutoff
    alone = to_uint8(family.mix(z, z, 0, 0, psi, cutoff))
    rows = [np.zeros_like(alone[:1]), alone[:MIXES]]
    for i in range(MIXES):
        mixed = family.mix(np.repeat(destinations[i:i + 1], MIXES, axis=0), sources, first,
                           last, psi, cutoff)
        rows += [alone[MIXES + i:MIXES + i + 1], to_uint8(mixed)]
    name = f"style-mix-{args.style_mix}.png"
    return [write_grid(np.concatenate(rows), out / name, MIXES + 1),
            f"  columns: sources; rows: destinations with the sources' w {first} to {last - 1}"]


def generate(args: argparse.Namespace, family: Family, model: keras.Model, out: Path
             ) -> list[str]:
    """Draws the latent vectors the mode asks for, renders and writes them. Interpolations and
    walks work on the latents flattened, then take the sampler's shape again."""
    from keras_ganime.images.convert import render

    cfg = family.cfg
    labels = check_condition(args, cfg)
    rows = labels_from(args, cfg)

    def draw(n: int) -> np.ndarray:
        return np.concatenate([block(family, args.seed, i)[:n - i * CHUNK]
                               for i in range(math.ceil(n / CHUNK))])

    def images(z: np.ndarray) -> np.ndarray:
        return render(model, with_labels(z, cfg, labels).reshape(len(z), *model.input_shape[1:]))

    if args.grid_by is not None:
        names = list(cfg.model.vocabulary())
        values = cfg.model.vocabulary()[args.grid_by]
        z = np.concatenate([with_labels(draw(ROWS), cfg, {names.index(args.grid_by): v})
                            for v in range(len(values))])
        return [write_grid(images(z), out / f"grid-by-{args.grid_by}.png", ROWS),
                f"  rows: {args.grid_by} {', '.join(values)}"]
    if args.interpolate:
        ends = draw(2 * ROWS)
        if cfg.model.conditions():  # a row keeps its start's labels: a label has no between
            ends[ROWS:, cfg.model.latent_dim:] = ends[:ROWS, cfg.model.latent_dim:]
        z = interpolation(ends[:ROWS], ends[ROWS:], args.steps)
        return [write_grid(images(z), out / "interpolate.png", args.steps)]
    if args.manipulate:
        components = parse_components(
            args.components or default_components(family.cfg.model.latent_dim),
            family.cfg.model.latent_dim)
        z = manipulation(draw(1)[0], components, walk_scales(args.steps), args.cumulative)
        name = "manipulate-cumulative.png" if args.cumulative else "manipulate.png"
        scales = ", ".join(f"{s:.2f}" for s in walk_scales(args.steps))
        return [write_grid(images(z), out / name, args.steps),
                f"  rows: z[{'], z['.join(map(str, components))}]; columns: times {scales}"]
    if args.truncation_strip:
        z = draw(ROWS)
        strip = [render(sampler(family, args, psi), z) for psi in family.spec.truncation_strip]
        return [write_grid(np.stack(strip, axis=1).reshape(-1, *strip[0].shape[1:]),
                           out / "truncation.png", len(family.spec.truncation_strip)),
                f"  columns: psi {', '.join(f'{x:g}' for x in family.spec.truncation_strip)}"]
    if args.style_mix is not None:
        return style_mixing(args, family, draw, out)
    if args.walk is not None:
        z = walk(draw(ROWS), args.walk, args.steps)
        scales = ", ".join(f"{s:.2f}" for s in walk_scales(args.steps))
        return [write_grid(images(z), out / f"walk_{args.walk}.png", args.steps),
                f"  columns: z[{args.walk}] times {scales}"]
    def chunk(start: int, stop: int) -> np.ndarray:
        z = block(family, args.seed, start // CHUNK)[:stop - start]
        if rows is not None:
            z = z.copy()
            z[:, cfg.model.latent_dim:] = rows[start:stop]
        return images(z)

    return write_samples(chunk, args.n, out)


def block(family: Family, seed: int, i: int) -> np.ndarray:
    """The i-th CHUNK of generate's latents for `seed`, flattened: the first drawn from the seed
    itself, each later one from a seed derived from (seed, i), so that a larger --n begins with
    a smaller one's faces and no block of one seed is a block of another."""
    from keras_ganime.engines import latents

    if i:
        seed = int(np.random.SeedSequence([seed % 2**32, i]).generate_state(1)[0])
    return latents(family, seed, CHUNK).reshape(CHUNK, -1)


@errors.command
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.n <= 0:
        raise GenerateError(f"--n must be positive, got {args.n}")
    if args.steps is None:
        args.steps = 10 if args.manipulate else 8
    if args.steps < 2:
        raise GenerateError(f"--steps must be at least 2, got {args.steps}")
    if (args.components or args.cumulative) and not args.manipulate:
        raise GenerateError("--components and --cumulative go with --manipulate")
    source = find_source(Path(args.source))
    if source.config is not None:  # a bare .keras file tells its latent size once loaded
        check_family_options(args, source.config)
        check_condition(args, source.config)
        check_walk(args.walk, source.config.model.latent_dim)
        if args.components:
            parse_components(args.components, source.config.model.latent_dim)
    out = Path(args.out) if args.out else default_out(source)
    made = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise GenerateError(f"{out}: cannot be made a folder ({e.strerror})") from None
    try:
        family, model = open_source(source)
        if source.config is None:  # a bare .keras file: its family is known only now
            check_family_options(args, family.cfg)
            check_condition(args, family.cfg)
        if {"truncation", "noise"} & family.spec.capabilities and (
                args.truncation is not None or args.noise):
            model = sampler(family, args)
        check_walk(args.walk, family.cfg.model.latent_dim)
        written = generate(args, family, model, out)
    except BaseException:
        if made:  # a folder made for this call goes with its failure, whatever it held
            shutil.rmtree(out, ignore_errors=True)
        raise
    print("\n".join(written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
