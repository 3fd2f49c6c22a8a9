"""Train a GAN on anime faces: the reference DCGAN by default, or an experiment by name.

    python -m keras_ganime.train [--config NAME|FILE.toml] [--set section.key=value ...]
                                 [--steps N] [--data FILE.h5] [--seed N] [--backend jax]
    python -m keras_ganime.train --resume runs/00003-batch16 [--steps N]
    python -m keras_ganime.train --list

Each run goes into a new numbered folder under runs/ (output.runs_dir): its settings, losses,
sample grids, checkpoints and generator. Without --data it trains on the built-in synthetic
faces; `python -m keras_ganime.data prepare` makes a dataset of any folder of images. A bad
setting or file is one line, before anything starts; --dry-run prints every setting as TOML.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from keras_ganime import config as config_lib
from keras_ganime import data, errors
from keras_ganime.config import Config
from keras_ganime.engines import common
from keras_ganime.runs import RunError, Stop
from keras_ganime.settings import ConfigError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m keras_ganime.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", metavar="NAME|FILE.toml",
                   help="an experiment by name (--list shows them) or a TOML file of settings "
                        "(default: the reference, as experiments/default.toml states it)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one setting; repeatable")
    p.add_argument("--steps", type=int, help="total mini-batches (train.steps)")
    p.add_argument("--data", help="prepared HDF5 file (data.path); default: built-in faces")
    p.add_argument("--seed", type=int, help="train.seed")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue this run from its checkpoint")
    p.add_argument("--backend", choices=common.BACKENDS,
                   help="Keras's backend (default: KERAS_BACKEND, else tensorflow)")
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    p.add_argument("--list", action="store_true",
                   help="print the experiment files with what each changes, and exit")
    return p.parse_args(argv)


def experiment_list() -> str:
    """One line per experiment file: its name (for --config and make exp-NAME), what it changes
    and what its source (the paper, unless it names another) reports of it."""
    known = config_lib.experiments()
    width = max(map(len, known))
    return "\n".join(f"{name:<{width}}  {e.description}" + (
        f"\n{'':<{width}}  {e.source or 'the paper'} reports: {e.paper}" if e.paper else "")
                     for name, e in known.items())


def resolve(args: argparse.Namespace) -> Config:
    if args.resume:
        if args.config or args.set or args.seed is not None or args.data is not None:
            raise ConfigError("--resume continues a run with its own settings; only --steps "
                              "may change")
        try:
            cfg = config_lib.read_run_config(args.resume)
        except ConfigError as e:
            raise RunError(str(e)) from None
        if args.steps is not None:
            config_lib.set_value(cfg, "train.steps", args.steps)
        return cfg.validate()
    cfg = config_lib.load(args.config, args.set)
    for key, value in (("train.steps", args.steps), ("train.seed", args.seed),
                       ("data.path", args.data)):
        if value is not None:
            config_lib.set_value(cfg, key, value)
    if cfg.data.path:  # kept as given, and as found from here: the run resumes from anywhere
        config_lib.set_value(cfg, "data.resolved_path", str(Path(cfg.data.path).resolve()))
    return cfg.validate()


def check_before_training(cfg: Config, resume: str | None) -> None:
    """What can be known to fail before TensorFlow loads (seconds), rather than at the run's
    first file: the folder it writes into, and a new run's data file (a resume's is read, still
    before TensorFlow, once its run directory is known to be good: fit.fit)."""
    if resume:
        writable(Path(resume))
        return
    runs = Path(cfg.output.runs_dir)
    nearest = next((p for p in (runs, *runs.absolute().parents) if p.exists()), runs)
    if not nearest.is_dir():
        raise RunError(f"{nearest}: a file, where output.runs_dir {runs} needs a folder; "
                       f"choose another output.runs_dir")
    writable(nearest)
    path = data.dataset_path(cfg.data.path, cfg.data.resolved_path)
    if path:  # the built-in faces need none
        data.check_file(path)


def writable(folder: Path) -> None:
    """A folder the run writes into."""
    if folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
        raise RunError(f"{folder}: cannot be written (permission denied); give yourself write "
                       f"permission to it (chmod -R u+w {folder}), or run as its owner")


@errors.command
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        if args.list:
            print(experiment_list())
            return 0
        cfg = resolve(args)
        if args.dry_run:
            print(config_lib.to_toml(cfg), end="")
            return 0
        check_before_training(cfg, args.resume)
        # Only now: training imports Keras, and a bad setting above cost one line without it.
        from keras_ganime.training.fit import fit

        fit(cfg, args.resume, args.backend)
    except Stop as e:
        print(f"stopped: {e}", file=sys.stderr)
        return e.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
