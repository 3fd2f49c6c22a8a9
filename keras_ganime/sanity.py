"""python -m keras_ganime.sanity: the metrics' sanity check, every metric against faces disturbed
at rising strengths (`evaluation/sanity.py`); `make check-metrics` runs it."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from typing import Any

from keras_ganime import errors
from keras_ganime.data import DataError
from keras_ganime.evaluation import sanity
from keras_ganime.evaluation.sanity import STRENGTHS, run, table


@errors.command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m keras_ganime.sanity",
                                     description=sanity.__doc__,
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
                        help="SWD patches per level and set (default %(default)s, a cap of this "
                             "project's; ProGAN takes 128 per image, uncapped)")
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
