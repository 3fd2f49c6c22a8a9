"""Metrics of a generator or of any two image sets; `python -m keras_ganime.evaluate`.

    python -m keras_ganime.evaluate runs/00007-batch16                    # its latest checkpoint
    python -m keras_ganime.evaluate runs/00007-batch16 --all-checkpoints  # every checkpoint kept
    python -m keras_ganime.evaluate compare faces/ data/anime-faces-64.h5 --metrics fid_anime,swd
    python -m keras_ganime.evaluate compare A B --json                    # one JSON line

A run's checkpoints are scored against a fixed sample of its own training images, and each
result is written to RUN/eval/NNNNNNN/metrics.json. The sets of `compare` are folders of images
or prepared HDF5 files. Metric names say what they were computed on (metric_names.METRICS):
*_anime on the shipped anime-face encoder, *_inception on InceptionV3 from the weights file
given with --inception; the two are not comparable.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from tqdm import tqdm

from keras_ganime import config as config_lib
from keras_ganime import errors
from keras_ganime.data import image_set, run_images, run_labels
from keras_ganime.engines import checkpoints as ckpts
from keras_ganime.evaluation import conditional
from keras_ganime.evaluation.features import anime_colours
from keras_ganime.evaluation.scorer import (
    LATENT_SEED,
    SEED,
    EvalError,
    Evaluator,
    Scorer,
    check_names,
)
from keras_ganime.restore import SamplingError
from keras_ganime.runs import atomic_write

if TYPE_CHECKING:
    from keras_ganime.config import Config
    from keras_ganime.families.base import Family

# --- evaluate RUN ---------------------------------------------------------------------------


def checkpoints(run: Path, all_checkpoints: bool) -> list[tuple[int, str]]:
    """(step, checkpoint prefix) of the newest checkpoint that reads completely, or of every one
    kept that does, oldest first; each damaged one is skipped with a line."""
    from keras_ganime.runs import RunError

    try:
        found = ckpts.readable(run / "checkpoints") if all_checkpoints else [
            p for p in [ckpts.newest_readable(run / "checkpoints")] if p]
    except RunError as e:
        raise EvalError(str(e)) from None
    if not found:
        raise EvalError(f"{run}: no checkpoint reads completely")
    return [(ckpts.step_of(p), p) for p in found]


def evaluate_run(run: Path, all_checkpoints: bool, names: Sequence[str] | None,
                 inception_weights: str, samples: int | None,
                 progress: bool = True) -> list[dict[str, float]]:
    """Scores the run's checkpoints and writes RUN/eval/NNNNNNN/metrics.json for each."""
    from keras_ganime import restore as sampling

    cfg = config_lib.read_run_config(run)
    for key, value in (("eval.metrics", ",".join(names) if names else None),
                       ("eval.inception_weights", inception_weights or None),
                       ("eval.samples", samples)):
        if value is not None:
            config_lib.set_value(cfg, key, value)
    cfg.validate()
    if ckpts.format_of(run / "checkpoints") is None:  # said before the backend starts
        raise EvalError(f"{run}: no checkpoint yet; train it to its first checkpoint "
                        f"(output.checkpoint_every) with python -m keras_ganime.train --resume "
                        f"{run}")
    found = checkpoints(run, all_checkpoints)
    evaluator = Evaluator(cfg, run_images(cfg.data, cfg.model.image_size))
    family = sampling.build(cfg)
    heads = None
    if family.condition is not None:  # its fakes asked for the data's mix of labels, as in training
        family.condition.table = run_labels(cfg.data, cfg.model.image_size,
                                            cfg.model.conditions())[0]
        heads = anime_colours()
    results = []
    for step, path in tqdm(found, desc=f"evaluate {run.name}", unit="ckpt", disable=not progress):
        try:
            sampling.restore(family, path)
        except SamplingError as e:
            raise EvalError(str(e)) from None
        start = time.perf_counter()
        values = evaluator(family)
        if family.condition is not None:
            values.update(conditional_scores(family, cfg, heads))
        result = {"step": step, **values, "samples": cfg.eval.samples,
                  "seconds": round(time.perf_counter() - start, 2)}
        out = run / "eval" / f"{step:07d}"
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(out / "metrics.json", json.dumps(result, indent=2) + "\n")
        results.append(result)
    return results


def conditional_scores(family: Family, cfg: Config, heads: Any) -> dict[str, Any]:
    """A conditional run's cond_acc_A for each attribute the anime encoder reads (hair, eyes),
    over eval.samples faces shared equally by the values of A it knows, beside the encoder's own
    accuracy on held-out real faces (ceiling_A); the confusion matrices under "confusion"."""
    found = conditional.accuracy(family, cfg.train.seed + LATENT_SEED, cfg.eval.samples, heads)
    ceiling = conditional.ceiling()
    scores: dict[str, Any] = {}
    for head, read in found.items():
        scores[f"cond_acc_{head}"] = read["cond_acc"]
        scores[f"ceiling_{head}"] = ceiling[head]
    scores["confusion"] = {head: {k: read[k] for k in ("colours", "asked_by_read")}
                           for head, read in found.items()}
    return scores


# --- command line -----------------------------------------------------------------------------


def parse_args(argv: list[str]) -> argparse.Namespace:
    compare = bool(argv) and argv[0] == "compare"
    p = argparse.ArgumentParser(
        prog="python -m keras_ganime.evaluate" + (" compare" if compare else ""),
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    if compare:
        argv = argv[1:]
        p.add_argument("a", metavar="A", help="folder of images or prepared HDF5 file")
        p.add_argument("b", metavar="B", help="folder of images or prepared HDF5 file")
        p.add_argument("--size", type=int,
                       help="image side both sets are read at (default: A's; for a folder, "
                            "its first image's width)")
        p.add_argument("--metrics", default="fid_anime,kid_anime,swd",
                       help="comma-separated (default fid_anime,kid_anime,swd)")
        p.add_argument("--sample", type=int, metavar="N",
                       help="score N images of each set drawn at random (seed 0), so that sets "
                            "of other sizes compare at one size (FID is biased by it)")
    else:
        p.add_argument("run", metavar="RUN", help="a run directory")
        p.add_argument("--all-checkpoints", action="store_true",
                       help="every checkpoint kept, not only the latest")
        p.add_argument("--metrics", help="comma-separated (default: the run's eval.metrics)")
        p.add_argument("--samples", type=int, help="images per set (default: eval.samples)")
    p.add_argument("--inception", default="", metavar="WEIGHTS",
                   help="InceptionV3 weights file for the *_inception metrics")
    p.add_argument("--json", action="store_true", help="one JSON line per result")
    args = p.parse_args(argv)
    args.compare = compare
    return args


def sample(images: np.ndarray, n: int, name: str) -> np.ndarray:
    """n of the images at random, the same ones for the same set."""
    if n > len(images):
        raise EvalError(f"{name}: --sample {n} is more than its {len(images)} images")
    return images[np.sort(np.random.default_rng(SEED).choice(len(images), n, replace=False))]


def show(results: list[dict[str, float]], as_json: bool) -> str:
    if as_json:
        return "\n".join(json.dumps(r) for r in results)
    return "\n".join("  ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                               for k, v in r.items() if not isinstance(v, dict))
                      for r in results)


@errors.command
def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    progress = sys.stderr.isatty()
    if args.compare:
        names = check_names(args.metrics.split(","), args.inception)
        if args.sample is not None and args.sample < 2:
            raise EvalError(f"--sample must be at least 2, got {args.sample}")
        a = image_set(args.a, args.size, progress)
        b = image_set(args.b, args.size or a.shape[1], progress)
        for images, name in ((a, args.a), (b, args.b)):
            if len(images) < 2:  # the metrics' minimum, said before their extractors load
                raise EvalError(f"{name}: holds {len(images)} image; a comparison needs at "
                                f"least 2 on each side (FID and KID are meaningful from "
                                f"hundreds)")
        if args.sample is not None:
            a, b = (sample(x, args.sample, name) for x, name in ((a, args.a), (b, args.b)))
        results = [{**Scorer(a, names, args.inception)(b), "n_a": len(a), "n_b": len(b)}]
    else:
        names = check_names(args.metrics.split(","), args.inception) if args.metrics else None
        results = evaluate_run(Path(args.run), args.all_checkpoints, names, args.inception,
                               args.samples, progress)
    print(show(results, args.json))
    return 0


if __name__ == "__main__":
    sys.exit(main())
