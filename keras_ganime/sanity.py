"""Do the metrics see damage? `python -m keras_ganime.sanity [--n N] [--strengths S,...] [--json]`
(`make check-metrics` runs the full set).

After Heusel et al. (2017, FID's Figure 1): real faces are disturbed at increasing strength by
each of degrade.DISTURBANCES, and fid_anime, kid_anime and swd between them and a disjoint set of
N other real faces must rise strictly with the strength. Strength 0 is the real-vs-real baseline
(two disjoint sets of N faces), shared by every disturbance. Prints one row per disturbance and
metric and exits with status 1 if any row does not rise.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from keras_ganime import degrade, encoder
from keras_ganime.data import DataError

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

    from keras_ganime.features import compute_metrics, get_extractor

    if list(strengths) != sorted(set(strengths)) or len(strengths) < 2:
        raise ValueError(f"strengths must be at least two increasing values, got {strengths}")
    faces = encoder.load_tagged_faces(data, 2 * n, seed).images
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m keras_ganime.sanity", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=4000, help="faces per set (default 4000)")
    parser.add_argument("--strengths", default=",".join(map(str, STRENGTHS)),
                        help="increasing strengths in [0, 1], comma-separated "
                             "(default %(default)s)")
    parser.add_argument("--data", required=True,
                        help="folder with images/ and tags.csv (make check-metrics: the shared "
                             "anime faces beside the checkout)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--swd-patches", type=int, default=65536,
                        help="SWD patches per level and set (default %(default)s, as ProGAN)")
    parser.add_argument("--kid-subsets", type=int, default=100,
                        help="KID subsets (default %(default)s)")
    parser.add_argument("--kid-subset-size", type=int, default=1000,
                        help="faces per KID subset (default %(default)s)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    try:
        try:
            strengths = [float(s) for s in args.strengths.split(",")]
        except ValueError:
            raise ValueError(f"--strengths must be comma-separated numbers, "
                             f"got {args.strengths!r}") from None
        if args.n < 2:
            raise ValueError(f"--n must be at least 2, got {args.n}")
        rows = run(args.data, args.n, strengths, seed=args.seed,
                   progress=sys.stderr.isatty(), swd_patches=args.swd_patches,
                   kid_subsets=args.kid_subsets, kid_subset_size=args.kid_subset_size)
    except (DataError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    ok = all(row.monotonic for row in rows)
    if args.json:
        out: dict[str, Any] = {"n": args.n, "strengths": strengths, "all_monotonic": ok,
                               "rows": [asdict(r) | {"monotonic": r.monotonic} for r in rows]}
        print(json.dumps(out, indent=2))
    else:
        print(f"{args.n} disturbed faces against {args.n} other real faces")
        print(table(rows, strengths))
        print("all rise with strength" if ok else "NOT all rise with strength")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
