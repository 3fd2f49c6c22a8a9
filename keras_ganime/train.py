"""Train any configuration of any family; `python -m keras_ganime.train`.

    python -m keras_ganime.train [--config experiments/NAME.toml] [--set section.key=value ...]
                                 [--steps N] [--data PATH] [--seed N] [--resume RUN_DIR]
                                 [--backend tensorflow|jax] [--dry-run]
    python -m keras_ganime.train --list

The settings are resolved and checked before Keras's backend loads, so a bad one costs one line
and no start-up; then `training/` trains in a new numbered run directory, or in the one resumed,
with the engine of the backend (TensorFlow by default; KERAS_BACKEND or --backend).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from keras_ganime import config as config_lib
from keras_ganime.config import Config
from keras_ganime.data import DataError
from keras_ganime.engines import common
from keras_ganime.evaluation.features import FeatureError
from keras_ganime.evaluation.scorer import EvalError
from keras_ganime.runs import RunError, Stop
from keras_ganime.settings import ConfigError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m keras_ganime.train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", help="experiment TOML (default: the dataclass defaults, which "
                                    "experiments/default.toml states)")
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
    and what the paper reports of it."""
    known = config_lib.experiments()
    width = max(map(len, known))
    return "\n".join(f"{name:<{width}}  {e.description}" + (f" (paper: {e.paper})" if e.paper
                                                             else "")
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
        # Only now: training imports Keras, and a bad setting above cost one line without it.
        from keras_ganime.training.fit import fit

        fit(cfg, args.resume, args.backend)
    except Stop as e:
        print(f"stopped: {e}", file=sys.stderr)
        return e.exit_code
    except (ConfigError, DataError, RunError, EvalError, FeatureError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
