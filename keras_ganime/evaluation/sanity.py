"""Do the metrics see damage? `python -m keras_ganime.sanity [--n N] [--strengths S,...] [--json]`
(`make check-metrics` runs the full set).

After Heusel et al. (2017, FID's Figure 1): real faces are disturbed at increasing strength by
each of degrade.DISTURBANCES, and fid_anime, kid_anime and swd between them and a disjoint set of
N other real faces must rise strictly with the strength. Strength 0 is the real-vs-real baseline
(two disjoint sets of N faces), shared by every disturbance. Prints one row per disturbance and
metric and exits with status 1 if any row does not rise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from keras_ganime.data.tagged import load_tagged_faces
from keras_ganime.evaluation import degrade

METRICS = ("fid_anime", "kid_anime", "swd")
STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0)


@dataclass
class Row:
    disturbance: str
    metric: str
    values: list[float]  # one per strength

    @property
    def monotonic(self) -> bool:
        return all(a < b for a, b in zip(self.values, self.values[1:]))


def run(data: str | Path, n: int = 4000, strengths: Sequence[float] = STRENGTHS,
        disturbances: Sequence[str] = tuple(degrade.DISTURBANCES), seed: int = 0,
        progress: bool = False,
        **metric_options: int) -> list[Row]:
    """The sanity table: `2 n` faces of `data` drawn at random, the first n the reference, the
    other n disturbed at each strength (the disturbance's own seed is `seed`).
    `metric_options` go to compute_metrics (swd_patches, kid_subsets, kid_subset_size)."""
    from tqdm import tqdm

    from keras_ganime.evaluation.features import compute_metrics, get_extractor

    if list(strengths) != sorted(set(strengths)) or len(strengths) < 2:
        raise ValueError(f"strengths must be at least two increasing values, got {strengths}")
    faces = load_tagged_faces(data, 2 * n, seed).images
    reference, other = faces[:n], faces[n:]
    real_features = {"anime": get_extractor("anime")(reference)}
    cache: dict[float, dict[str, float]] = {}
    jobs = [(d, s) for d in disturbances for s in strengths]
    rows = {(d, m): Row(d, m, []) for d in disturbances for m in METRICS}
    for d, s in tqdm(jobs, desc="sanity", unit="set", disable=not progress):
        if s == 0.0 and 0.0 in cache:  # undisturbed: the same for every disturbance
            values = cache[0.0]
        else:
            disturbed = degrade.degrade(other, d, s, seed)
            values = compute_metrics(reference, disturbed, METRICS, real_features=real_features,
                                     seed=seed, **metric_options)
            if s == 0.0:
                cache[0.0] = values
        for m in METRICS:
            rows[d, m].values.append(values[m])
    return list(rows.values())


def table(rows: list[Row], strengths: Sequence[float]) -> str:
    """Plain-text table, one row per disturbance and metric."""
    head = f"{'disturbance':<13} {'metric':<10}" + "".join(f"{s:>10.2f}" for s in strengths)
    lines = [head + "  rises"]
    for row in rows:
        cells = "".join(f"{v:>10.4g}" for v in row.values)
        lines.append(f"{row.disturbance:<13} {row.metric:<10}{cells}  "
                     f"{'yes' if row.monotonic else 'NO'}")
    return "\n".join(lines)
