"""Train any configuration of any family; `python -m keras_ganime.train`.

    python -m keras_ganime.train [--config experiments/NAME.toml] [--set section.key=value ...]
                                 [--steps N] [--data PATH] [--seed N] [--resume RUN_DIR]
                                 [--backend tensorflow|jax] [--dry-run]
    python -m keras_ganime.train --list

The settings are resolved and checked before Keras's backend loads, so a bad one costs one line
and no start-up; then `loop.py` trains in a new numbered run directory, or in the one resumed,
with the engine of the backend (TensorFlow by default; KERAS_BACKEND or --backend).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from keras_ganime import config as config_lib
from keras_ganime import engines
from keras_ganime.checkpoints import check_backend
from keras_ganime.config import Config, ConfigError
from keras_ganime.data import DataError, check_enough
from keras_ganime.evaluate import EvalError
from keras_ganime.features import FeatureError
from keras_ganime.runs import RunError, Stop, check_free


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
    p.add_argument("--backend", choices=engines.BACKENDS,
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


def resumed_step(resume: str | None) -> int:
    """The step a resumed run saved last (run.json; the checkpoint may be a save ahead), or 0."""
    if not resume:
        return 0
    try:
        return int(json.loads((Path(resume) / "run.json").read_text()).get("step", 0))
    except (OSError, ValueError):  # what cannot be read counts as nothing trained
        return 0


def evaluations_due(cfg: Config, after: int) -> bool:
    """Whether a run trained from step `after` to train.steps evaluates: a metric is named, and
    a milestone or an eval.every step lies past `after` and within the steps."""
    if not cfg.eval_metrics() or after >= cfg.train.steps:
        return False
    every = cfg.eval.every
    return (0 < every and (after // every + 1) * every <= cfg.train.steps) or any(
        after < m <= cfg.train.steps for m in cfg.milestones())


def train(cfg: Config, resume: str | None, backend: str | None = None) -> None:
    """Loads the data (no backend yet: a bad file, a run in use, another backend's checkpoints
    or too few images is reported before it starts), builds the engine and trains."""
    backend = engines.choose(backend, cfg)
    if resume:
        check_backend(Path(resume) / "checkpoints", backend, "resume them")
        if cfg.train.distribute != "multiworker":  # there the chief alone takes the lock
            check_free(resume)
    images = cfg.data.images(cfg.model.image_size)
    check_enough(images, cfg.train.batch_size)
    from keras_ganime.evaluate import Evaluator
    from keras_ganime.loop import Loop, open_run

    chief = True
    if backend == "tensorflow" and cfg.train.distribute != "none":
        from keras_ganime import distribute

        # A multi-worker strategy must be made before any other TensorFlow operation.
        chief = distribute.is_chief(distribute.strategy(cfg.train.distribute))
    engine = engines.create(cfg, images)  # bad data fails here, before any run directory
    evaluator = None
    if evaluations_due(cfg, resumed_step(resume)):
        evaluator = Evaluator(cfg, images)
        evaluator.check()  # a missing weights file costs one line now, not every evaluation
    with open_run(cfg, resume, chief) as run:
        print(f"run directory: {run.path}", file=sys.stderr)
        Loop(engine, run, evaluator=evaluator).fit()


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
        train(cfg, args.resume, args.backend)
    except Stop as e:
        print(f"stopped: {e}", file=sys.stderr)
        return e.exit_code
    except (ConfigError, DataError, RunError, EvalError, FeatureError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
