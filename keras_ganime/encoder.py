"""python -m keras_ganime.encoder: train the anime encoder whose features the anime metrics use
(`evaluation/encoder.py`), on tagged faces; `make encoder` runs it on the shared faces."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from keras_ganime import errors
from keras_ganime.evaluation import encoder
from keras_ganime.evaluation.encoder import WEIGHTS_DIR, train


@errors.command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m keras_ganime.encoder",
                                     description=encoder.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True,
                        help="folder with images/ and tags.csv (make encoder: the shared "
                             "anime faces beside the checkout)")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--batch", type=int, default=128, help="half real, half degraded")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(WEIGHTS_DIR),
                        help="folder for the weights and facts (default: the package's)")
    args = parser.parse_args(argv)
    facts = train(args.data, args.epochs, args.batch, args.seed, Path(args.out),
                  progress=sys.stderr.isatty())
    print(json.dumps(facts["held_out"]), f"in {facts['train_seconds']} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
