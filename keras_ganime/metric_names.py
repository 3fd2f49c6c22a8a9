"""The registry of metric names, the one place that knows them: config, evaluate and
`features.compute_metrics` all check names here. No TensorFlow, so that a bad name is reported
before it loads.

A metric's name says what it is computed on: `<metric>_<extractor>` for the feature metrics
(fid, kid, dup on the anime encoder or InceptionV3), and the pixel metrics by their bare names.
"""

from __future__ import annotations

from collections.abc import Iterable

from keras_ganime import errors

EXTRACTORS = ("anime", "inception")
FEATURE_METRICS = ("fid", "kid", "dup")
PIXEL_METRICS = ("swd", "checkerboard")
METRICS = tuple(f"{m}_{e}" for e in EXTRACTORS for m in FEATURE_METRICS) + PIXEL_METRICS


class MetricNameError(errors.Error, ValueError):
    """An unknown metric, or one that needs a file nobody named; one line."""


def parse(name: str) -> tuple[str, str | None]:
    """'fid_anime' -> ('fid', 'anime'); 'swd' -> ('swd', None)."""
    if name in PIXEL_METRICS:
        return name, None
    metric, _, extractor = name.partition("_")
    if metric in FEATURE_METRICS and extractor in EXTRACTORS:
        return metric, extractor
    raise MetricNameError(f"unknown metric {name!r}; known: {', '.join(METRICS)}")


def check(names: Iterable[str], inception_weights: str | None = "") -> list[str]:
    """The names, stripped, each known, and the *_inception ones only with a weights file."""
    names = [n.strip() for n in names if n.strip()]
    for name in names:
        parse(name)
        if name.endswith("_inception") and not inception_weights:
            raise MetricNameError(f"{name} needs an InceptionV3 weights file "
                                  f"(--inception PATH, or eval.inception_weights)")
    if not names:
        raise MetricNameError("no metric named")
    return names
