"""Images from a trained generator, or from a run still training; `python -m keras_ganime.generate`.

    python -m keras_ganime.generate runs/00007-batch16 --n 64 --out faces/
    python -m keras_ganime.generate runs/00007-batch16/generator.keras --interpolate --out faces/
    python -m keras_ganime.generate runs/00007-batch16 --walk 3 --steps 9 --out faces/

The source is a run directory (its generator.keras, else its latest checkpoint) or a .keras file.
The latent vectors are drawn as in training, from the run's noise kind, reproducibly from --seed.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from keras_ganime import config as config_lib
from keras_ganime import viz
from keras_ganime.config import Config, ConfigError

# TensorFlow and Keras are imported inside the functions that use them, after the arguments and
# paths have passed their checks: TensorFlow's start-up takes seconds and writes log lines to
# stderr, which would bury a one-line error.
if TYPE_CHECKING:
    import keras

ROWS = 8  # interpolations or walks in one picture, one per row
WALK_SCALE = 3.0  # the walk multiplies a component by factors from -3 to 3
BATCH = 256  # latent vectors per generator call: bounds memory for a large --n
BARE_NOISE = "binary"  # the reference's, for a .keras file that comes without its run


class GenerateError(Exception):
    """A request that cannot be carried out; its message is one line."""


@dataclass(frozen=True)
class Source:
    """Where the generator comes from, found without TensorFlow."""

    path: Path  # as named on the command line
    model_file: Path | None  # a saved generator; None: rebuild it and restore a checkpoint
    config: Config | None  # the run's settings; None for a .keras file away from its run

    @property
    def noise(self) -> str:
        return self.config.model.noise if self.config else BARE_NOISE


def read_config(run: Path) -> Config:
    path = run / "config.toml"
    return config_lib.from_dict(config_lib.read_toml(path), str(path))


def find_source(path: Path) -> Source:
    """A run directory or a .keras file, checked as far as it can be without loading anything."""
    if not path.exists():
        raise GenerateError(f"{path}: no such file or directory")
    if path.is_file():
        if path.suffix != ".keras":
            raise GenerateError(f"{path}: neither a run directory nor a .keras generator")
        # A generator.keras still in its run directory keeps the run's noise kind.
        beside = path.parent / "config.toml"
        return Source(path, path, read_config(path.parent) if beside.is_file() else None)
    if not (path / "config.toml").is_file():
        raise GenerateError(f"{path}: not a run directory (no config.toml)")
    cfg = read_config(path)
    if (path / "generator.keras").is_file():
        return Source(path, path / "generator.keras", cfg)
    if not (path / "checkpoints" / "checkpoint").is_file():
        raise GenerateError(f"{path}: no generator.keras and no checkpoint yet")
    return Source(path, None, cfg)


def check_walk(index: int | None, latent_dim: int) -> None:
    if index is not None and not 0 <= index < latent_dim:
        raise GenerateError(f"--walk {index} is outside [0, {latent_dim}): the latent size")


def restore_generator(run: Path, cfg: Config, checkpoint: str | None = None) -> keras.Model:
    """The generator alone, from the run's latest checkpoint (or the one named): a run still
    training or stopped early has no generator.keras yet."""
    import tensorflow as tf

    from keras_ganime.models import build_generator

    latest = checkpoint or tf.train.latest_checkpoint(str(run / "checkpoints"))
    if latest is None:
        raise GenerateError(f"{run}: the checkpoint index names no checkpoint files")
    model = build_generator(cfg.model)
    try:
        # The discriminator, optimizers and step in the checkpoint are not wanted here.
        status = tf.train.Checkpoint(generator=model).restore(latest).expect_partial()
        status.assert_existing_objects_matched()
    except (AssertionError, ValueError):
        raise GenerateError(f"{latest}: does not fit the generator that config.toml "
                            f"describes") from None
    return model


def load_generator(source: Source) -> keras.Model:
    import keras

    if source.model_file is None:
        model = restore_generator(source.path, source.config)
    else:
        try:
            model = keras.models.load_model(source.model_file, compile=False)
        except ValueError as e:
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise GenerateError(f"{source.model_file}: cannot be loaded ({first})") from None
    shape = tuple(model.input_shape)
    if len(shape) != 4 or shape[1:3] != (1, 1):
        raise GenerateError(f"{source.path}: not a generator: its input shape is {shape}, "
                            f"not (None, 1, 1, latent)")
    return model


def latents(seed: int, n: int, latent_dim: int, noise: str) -> np.ndarray:
    """(n, latent_dim) vectors drawn as in training, the same for the same seed."""
    import tensorflow as tf

    from keras_ganime.models import sample_noise

    rng = tf.random.Generator.from_seed(seed)
    return sample_noise(rng, n, latent_dim, noise).numpy().reshape(n, latent_dim)


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


def render(model: keras.Model, z: np.ndarray) -> np.ndarray:
    """(n, latent) vectors -> (n, size, size, 3) uint8 images, with BatchNorm in inference mode."""
    from keras_ganime.batches import to_uint8

    z = z.reshape(len(z), 1, 1, -1).astype(np.float32)
    return np.concatenate([to_uint8(model(z[i:i + BATCH], training=False))
                           for i in range(0, len(z), BATCH)])


def save_grid(images: np.ndarray, cols: int, path: Path) -> str:
    """Writes the grid and says so."""
    picture = viz.grid(images, cols)
    viz.save_png(picture, path)
    rows = math.ceil(len(images) / cols)
    return f"wrote {path} ({rows} x {cols} images, {picture.width}x{picture.height} pixels)"


def write_samples(images: np.ndarray, out: Path) -> list[str]:
    """One PNG per image, 00000.png on, and all of them in grid.png."""
    paths = [out / f"{i:05d}.png" for i in range(len(images))]
    for image, path in zip(images, paths, strict=True):
        viz.save_png(Image.fromarray(image), path)
    size = f"{images.shape[2]}x{images.shape[1]}"
    cols = math.ceil(math.sqrt(len(images)))  # as viz.grid's default
    return [f"wrote {len(paths)} images of {size} pixels: {paths[0]} .. {paths[-1]}",
            save_grid(images, cols, out / "grid.png")]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m keras_ganime.generate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("source", metavar="RUN_OR_MODEL", help="a run directory or a .keras generator")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the PNG files")
    p.add_argument("--n", type=int, default=64, help="images to sample (default 64)")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent vectors (default 0)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--interpolate", action="store_true",
                      help=f"{ROWS} rows, each blending one latent vector into another")
    mode.add_argument("--walk", type=int, metavar="I",
                      help=f"{ROWS} rows, each scaling latent component I by -{WALK_SCALE:g} "
                           f"to {WALK_SCALE:g}")
    p.add_argument("--steps", type=int, default=8,
                   help="images per row of --interpolate or --walk (default 8)")
    return p.parse_args(argv)


def generate(args: argparse.Namespace, model: keras.Model, noise: str, out: Path) -> list[str]:
    """Draws the latent vectors the mode asks for, renders and writes them."""
    latent_dim = model.input_shape[-1]
    if args.interpolate:
        ends = latents(args.seed, 2 * ROWS, latent_dim, noise)
        z = interpolation(ends[:ROWS], ends[ROWS:], args.steps)
        return [save_grid(render(model, z), args.steps, out / "interpolate.png")]
    if args.walk is not None:
        z = walk(latents(args.seed, ROWS, latent_dim, noise), args.walk, args.steps)
        scales = ", ".join(f"{s:.2f}" for s in walk_scales(args.steps))
        return [save_grid(render(model, z), args.steps, out / f"walk_{args.walk}.png"),
                f"  columns: z[{args.walk}] times {scales}"]
    return write_samples(render(model, latents(args.seed, args.n, latent_dim, noise)), out)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.n <= 0:
            raise GenerateError(f"--n must be positive, got {args.n}")
        if args.steps < 2:
            raise GenerateError(f"--steps must be at least 2, got {args.steps}")
        source = find_source(Path(args.source))
        if source.config is not None:  # a bare .keras file tells its latent size once loaded
            check_walk(args.walk, source.config.model.latent_dim)
        out = Path(args.out)
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise GenerateError(f"{out}: cannot be made a folder ({e.strerror})") from None
        model = load_generator(source)
        check_walk(args.walk, model.input_shape[-1])
        written = generate(args, model, source.noise, out)
    except (GenerateError, ConfigError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print("\n".join(written))
    return 0


if __name__ == "__main__":
    sys.exit(main())
