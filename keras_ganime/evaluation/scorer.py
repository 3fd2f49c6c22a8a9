"""Scoring generated faces: a Scorer against a fixed set of reals, whose features are computed
once, and an Evaluator that scores a family's generator as it is now, on fixed latents: what
training logs every eval.every steps and `evaluate RUN` per checkpoint."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from keras_ganime import errors, metric_names
from keras_ganime.config import Config
from keras_ganime.evaluation import features

if TYPE_CHECKING:
    from keras_ganime.families.base import Family

SEED = 0
LATENT_SEED = 2_000_003  # eval latents: a stream of their own, apart from training's and grids'


class EvalError(errors.Error):
    """A request that cannot be carried out; its message is one line."""


def check_names(names: Sequence[str], inception_weights: str = "") -> list[str]:
    try:
        return metric_names.check(names, inception_weights)
    except metric_names.MetricNameError as e:
        raise EvalError(str(e)) from None


class Scorer:
    """Scores image sets against one fixed set of reals, whose features are computed once."""

    def __init__(self, reals: np.ndarray, names: Sequence[str], inception_weights: str = "",
                 samples: int | None = None, seed: int = SEED) -> None:
        self.names = check_names(names, inception_weights)
        if inception_weights and not Path(inception_weights).is_file():
            raise EvalError(f"{inception_weights}: no such InceptionV3 weights file")
        if samples is not None and samples < len(reals):
            reals = reals[np.random.default_rng(seed).choice(len(reals), samples, replace=False)]
        self.reals = reals
        self.inception_weights = inception_weights or None
        self._real_features: dict[str, np.ndarray] | None = None

    def extractors(self) -> dict[str, features.Extractor]:
        """The feature extractors the metrics use, built once per process: a missing or damaged
        weights file is a FeatureError of one line."""
        used = {metric_names.parse(n)[1] for n in self.names} - {None}
        return {e: features.get_extractor(e, self.inception_weights if e == "inception" else None)
                for e in sorted(used)}

    def __call__(self, fakes: np.ndarray) -> dict[str, float]:
        if self._real_features is None:
            self._real_features = {e: extract(self.reals)
                                   for e, extract in self.extractors().items()}
        return features.compute_metrics(self.reals, fakes, self.names, self.inception_weights,
                                        real_features=self._real_features)


class Evaluator:
    """Scores a family's sampling network, as it is now, on a fixed batch of its latents
    (BatchNorm in inference mode): what `train` logs every eval.every steps and `evaluate RUN`
    per checkpoint."""

    def __init__(self, cfg: Config, reals: np.ndarray) -> None:
        self.scorer = Scorer(reals, cfg.eval_metrics(), cfg.eval.inception_weights,
                             cfg.eval.samples, cfg.train.seed)
        self.names = self.scorer.names
        self.cfg = cfg
        self._z: np.ndarray | None = None

    def check(self) -> None:
        """What every evaluation will need, before a run's first step rather than hours into it:
        the extractors' weights and at least two reals (the metrics' minimum)."""
        if len(self.scorer.reals) < 2:
            raise EvalError(f"the metrics need at least 2 real images, the data has "
                            f"{len(self.scorer.reals)}; set eval.metrics=\"\" to train without")
        self.scorer.extractors()

    def __call__(self, family: Family) -> dict[str, float]:
        from keras_ganime.engines import latents
        from keras_ganime.images.convert import render

        if self._z is None:
            self._z = latents(family, self.cfg.train.seed + LATENT_SEED, self.cfg.eval.samples)
        return self.scorer(render(family.sampler(), self._z))
