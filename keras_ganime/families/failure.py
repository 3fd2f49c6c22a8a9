"""Failure detection, in one place: the loss rules a family watches on the device every step,
and the metric rules checked at each evaluation.

A loss rule is a test of one step's values (`bad`) and a patience: the run has failed once the
test has held for more than `patience` steps in a row. The engine keeps, on the device, how many
steps in a row each rule has held and the first step at which one outlasted its patience, so
that the loop learns the exact step without pulling the values to the host every step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from keras import ops

if TYPE_CHECKING:
    from keras_ganime.config import (
        Config,  # the whole run's settings; config.py builds on the families
    )


@dataclass(frozen=True)
class LossRule:
    reason: str  # what `bad` tests, in words, such as "NAME above 15"
    bad: Callable[[Mapping[str, Any]], Any]  # one step's values -> a boolean scalar
    patience: int


def above(name: str, limit: float, patience: int) -> LossRule:
    """The reference author's signal: a loss staying above `limit`. (A NaN is not above.)"""
    return LossRule(f"{name} above {limit:g}", lambda values: values[name] > limit, patience)


def watch(rules: Sequence[LossRule], values: Mapping[str, Any], streak: Any, failed_at: Any,
          failure: Any, step: Any) -> tuple[Any, Any, Any]:
    """One step of the watch: the new streaks (int64, one per rule), the first failed step (-1:
    none yet) and the index of the rule that failed then."""
    held = ops.stack([rule.bad(values) for rule in rules])
    streak = ops.where(held, streak + 1, ops.zeros_like(streak))
    over = streak > ops.convert_to_tensor([rule.patience for rule in rules], "int64")
    first = ops.logical_and(failed_at < 0, ops.any(over))
    failed_at = ops.where(first, step, failed_at)
    failure = ops.where(first, ops.cast(ops.argmax(ops.cast(over, "int64")), "int64"), failure)
    return streak, failed_at, failure


def describe(rule: LossRule, step: int) -> str:
    return (f"{rule.reason} for more than {rule.patience} steps in a row "
            f"(since step {step - rule.patience})")


def metric_failure(rows: list[dict[str, float]], cfg: Config) -> str | None:
    """Why the latest evaluation says the run has failed, or None. Both rules look for a jump
    from a healthy earlier evaluation, since an untrained generator is collapsed and far off at
    first: a duplicate rate back at failure.duplicate_limit after an evaluation below it, or an
    FID over failure.fid_jump times the best of the earlier ones."""
    fail, last, earlier = cfg.failure, rows[-1], rows[:-1]
    for name, value in last.items():
        if name.startswith("dup_") and value >= fail.duplicate_limit:
            best = min((r[name] for r in earlier), default=value)
            if best < fail.duplicate_limit:
                return (f"{name} jumped to {value:.3f} from {best:.3f}, reaching "
                        f"{fail.duplicate_limit:g}: mode collapse")
        if name.startswith("fid_") and earlier:
            best = min(r[name] for r in earlier)
            if value > fail.fid_jump * best:
                return f"{name} jumped to {value:.1f}, over {fail.fid_jump:g} x its best {best:.1f}"
    return None
