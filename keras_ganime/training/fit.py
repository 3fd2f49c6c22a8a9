"""One training run from checked settings: the data loaded and checked before any backend
starts (a bad file, a run in use, another backend's checkpoints or too few images cost one line),
the engine of Keras's backend built, what the evaluations will need checked, then the loop in a
new numbered run directory or the one resumed. `python -m keras_ganime.train` is its command."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from keras_ganime import config as config_lib
from keras_ganime import engines
from keras_ganime.config import Config
from keras_ganime.data import DataError, check_enough, dataset_path, run_images, run_labels
from keras_ganime.engines import common
from keras_ganime.engines.checkpoints import check_backend
from keras_ganime.runs import check_free


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


def conditional_labels(cfg: Config) -> np.ndarray | None:
    """A conditional run's labels of its data, their values recorded in its settings
    (model.condition_values) for its networks; a resume's data must have the values it had."""
    names = cfg.model.conditions()
    if not names:
        return None
    table, vocabulary = run_labels(cfg.data, cfg.model.image_size, names)
    recorded = cfg.model.vocabulary()
    if recorded and recorded != vocabulary:
        raise DataError(f"{dataset_path(cfg.data.path, cfg.data.resolved_path) or 'the data'}: "
                        f"its labels' values are not model.condition_values; leave that setting "
                        f"empty for a new run (the run fills it from its data), or resume on the "
                        f"data the run was made with")
    config_lib.set_value(cfg, "model.condition_values", json.dumps(vocabulary))
    return table


def fit(cfg: Config, resume: str | None = None, backend: str | None = None) -> None:
    """Loads the data (no backend yet: a bad file, a run in use, another backend's checkpoints
    or too few images is reported before it starts), builds the engine and trains."""
    backend = common.choose(backend, cfg)
    if resume:
        check_backend(Path(resume) / "checkpoints", backend, "resume them")
        if cfg.train.distribute != "multiworker":  # there the chief alone takes the lock
            check_free(resume)
    images = run_images(cfg.data, cfg.model.image_size)
    check_enough(images, cfg.train.batch_size)
    labels = conditional_labels(cfg)
    # Keras and the backend load from here on, once the data and the run are known to be good.
    from keras_ganime.evaluation.scorer import Evaluator
    from keras_ganime.training.loop import Loop, open_run

    chief = True
    if backend == "tensorflow" and cfg.train.distribute != "none":
        from keras_ganime.engines import distribute

        # A multi-worker strategy must be made before any other TensorFlow operation.
        chief = distribute.is_chief(distribute.strategy(cfg.train.distribute))
    engine = engines.create(cfg, images, labels)  # bad data fails here, before any run folder
    evaluator = None
    if evaluations_due(cfg, resumed_step(resume)):
        evaluator = Evaluator(cfg, images)
        evaluator.check()  # a missing weights file costs one line now, not every evaluation
    with open_run(cfg, resume, chief) as run:
        loop = Loop(engine, run, evaluator=evaluator)  # a resume's checkpoint restored, or one line
        print(f"run directory: {run.path}", file=sys.stderr)
        loop.fit()
