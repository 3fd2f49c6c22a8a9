"""Training on a few hundred faces, with and without augmentation, measured: `make small-data`.

    python -m keras_ganime.small_data --faces FACES [--out small-data] [--sizes 500 2000]
        [--steps 5000]

From the faces' train split (`data split FACES OUT/data --subset SIZES`), the reference DCGAN
at batch 16 trains on each subset without augmentation ("plain"), with DiffAugment's three
operations ("augment") and, on the smallest subset, with the adaptive p starting at 0
("adaptive"), all with the same seed and steps, one run after the other. Every checkpoint kept
is then scored on the generated faces of the run's fixed evaluation latents: fid_anime and
kid_anime against the held-out faces, and how many of them copy the training subset
(metrics.copy_rate) or carry the augmentation's zeros (metrics.zero_marks). OUT/small-data.md
holds the table, OUT/small-data.png the grids side by side and fid_anime over steps.

Everything resumes where it stopped: a run that has not reached --steps continues from its
newest checkpoint, and a checkpoint already scored (OUT/scores/RUN.json) is not scored again.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from keras_ganime import config as config_lib
from keras_ganime import errors
from keras_ganime.engines import checkpoints as ckpts
from keras_ganime.runs import atomic_write

POLICY = "color,translation,cutout"
# Variant -> its settings beyond the runs' common ones. The adaptive p at ADA's speed (500,000
# images from 0 to 1) could reach 0.16 in 5,000 steps at batch 16; at 100,000 it can reach 0.8.
VARIANTS = {"plain": (), "augment": (f'augment.policy="{POLICY}"',),
            "adaptive": (f'augment.policy="{POLICY}"', "augment.adaptive=true", "augment.p=0",
                         "augment.speed_images=100000")}
COMMON = ("train.batch_size=16", 'output.milestones=""')
GRID = 36  # faces of each run's grid in the figure


@dataclass(frozen=True)
class Run:
    size: int
    variant: str

    @property
    def name(self) -> str:
        return f"n{self.size}-{self.variant}"


def plan(sizes: list[int]) -> list[Run]:
    """Plain and augmented on every subset, the adaptive form on the smallest."""
    return [Run(n, v) for n in sizes for v in VARIANTS if v != "adaptive" or n == min(sizes)]


def run_dir(out: Path, run: Run) -> Path | None:
    """The run's folder under OUT/runs, if training ever got as far as writing its settings."""
    found = sorted(p for p in (out / "runs").glob(f"*-{run.name}") if (p / "config.toml").is_file())
    return found[-1] if found else None


def newest_step(directory: Path) -> int:
    if ckpts.format_of(directory / "checkpoints") is None:
        return 0
    newest = ckpts.newest_readable(directory / "checkpoints")
    return ckpts.step_of(newest) if newest else 0


# --- training ----------------------------------------------------------------------------------


def split(faces: Path, out: Path, sizes: list[int]) -> None:
    data = out / "data"
    if all((data / f"train-{n}.h5").is_file() for n in sizes) and (data / "held-out.h5").is_file():
        return
    command = [sys.executable, "-m", "keras_ganime.data", "split", str(faces), str(data),
               "--subset", *map(str, sizes)]
    _call(command, f"the split of {faces}")


def train(out: Path, run: Run, steps: int) -> Path:
    """Trains the run to `steps` (resuming it if it has a folder) and returns its folder."""
    found = run_dir(out, run)
    if found is not None and newest_step(found) >= steps:
        return found
    command = [sys.executable, "-m", "keras_ganime.train", "--steps", str(steps)]
    if found is not None:  # from its newest checkpoint, or from the start if it has none
        command += ["--resume", str(found)]
    else:
        settings = (*COMMON, f'output.runs_dir="{out / "runs"}"', f'output.name="{run.name}"',
                    *VARIANTS[run.variant])
        command += ["--data", str(out / "data" / f"train-{run.size}.h5"),
                    *[a for s in settings for a in ("--set", s)]]
    print(f"small-data: {run.name}: python {' '.join(command[1:])}", flush=True)
    _call(command, f"training {run.name}")
    found = run_dir(out, run)
    assert found is not None, f"{run.name}: training ended without its folder"
    return found


def _call(command: list[str], what: str) -> None:
    # Its own standard error, the real one: a progress bar where this command has one.
    process = subprocess.Popen(command, stderr=sys.stderr)
    try:
        code = process.wait()
    except KeyboardInterrupt:
        # The terminal's Ctrl-C reached the training process too, which saves a checkpoint
        # before it ends: wait for that rather than kill it.
        process.wait()
        raise errors.Error(f"stopped during {what}; run the same command again: it resumes "
                           f"where it stopped") from None
    if code:
        raise errors.Error(f"{what} ended with exit status {code} (its message is above); put "
                           f"it right and run the same command again: it resumes")


# --- scoring -----------------------------------------------------------------------------------


class Scores:
    """Each checkpoint's scores, against the held-out faces and the run's training subset."""

    def __init__(self, out: Path) -> None:
        from keras_ganime.data import load_images
        from keras_ganime.evaluation import features

        self.out = out
        self.extract = features.get_extractor("anime")
        self.held_out = load_images(str(out / "data" / "held-out.h5"), 0, 64)
        self._held_out_features: np.ndarray | None = None
        self._train_features: dict[int, np.ndarray] = {}

    @property
    def held_out_features(self) -> np.ndarray:
        if self._held_out_features is None:  # only if a checkpoint is to be scored
            self._held_out_features = self.extract(self.held_out)
        return self._held_out_features

    def train_features(self, size: int) -> np.ndarray:
        from keras_ganime.data import load_images

        if size not in self._train_features:
            images = load_images(str(self.out / "data" / f"train-{size}.h5"), 0, 64)
            self._train_features[size] = self.extract(images)
        return self._train_features[size]

    def of_run(self, run: Run, directory: Path) -> list[dict[str, Any]]:
        """Every kept checkpoint's scores, oldest first, those already made read back."""
        from keras_ganime import restore
        from keras_ganime.engines import latents
        from keras_ganime.evaluation import features, metrics
        from keras_ganime.evaluation.scorer import LATENT_SEED
        from keras_ganime.images.convert import render

        path = self.out / "scores" / f"{run.name}.json"
        # A run's scores are its folder's: another folder of the same name starts them again.
        done = {r["step"]: r for r in json.loads(path.read_text()) if r["run"] == directory.name
                } if path.is_file() else {}
        cfg = config_lib.read_run_config(directory)
        family = restore.build(cfg)
        z = None
        for prefix in ckpts.readable(directory / "checkpoints"):
            step = ckpts.step_of(prefix)
            if step in done:
                continue
            restore.restore(family, prefix)
            if z is None:
                # As many as the held-out faces: FID and KID compare equal sets.
                z = latents(family, cfg.train.seed + LATENT_SEED, len(self.held_out))
            fakes = render(family.sampler(), z)
            scores = features.compute_metrics(
                self.held_out, fakes, ["fid_anime", "kid_anime"],
                real_features={"anime": self.held_out_features})
            done[step] = {
                "step": step, "run": directory.name, **scores,
                "copy_rate": metrics.copy_rate(self.extract(fakes), self.train_features(run.size),
                                               self.held_out_features),
                "zero_marks": metrics.zero_marks(fakes)}
            path.parent.mkdir(parents=True, exist_ok=True)
            buf = io.BytesIO()
            np.save(buf, fakes[:GRID])
            atomic_write(self.out / "scores" / f"{run.name}-{step:07d}.npy", buf.getvalue())
            rows = [done[s] for s in sorted(done)]
            atomic_write(path, json.dumps(rows, indent=1) + "\n")
            print(f"small-data: {run.name} step {step}: fid_anime {scores['fid_anime']:.2f}",
                  flush=True)
        return [done[s] for s in sorted(done)]


# --- table and figure --------------------------------------------------------------------------


def last(rows: list[dict[str, Any]], steps: int) -> dict[str, Any]:
    """The scores of the newest checkpoint at or before `steps`."""
    return [r for r in rows if r["step"] <= steps][-1]


def table(results: dict[Run, list[dict[str, Any]]], samples: int, steps: int) -> str:
    """Every run's scores at `steps` (its newest checkpoint up to it), and each augmented run's
    ratio to plain's where both reached the same step."""
    header = ("faces", "training", "step", "fid_anime", "kid_anime (x1000)", "copy rate",
              "zero marks", "fid_anime / plain's")
    lines = ["| " + " | ".join(header) + " |", "| ---: | --- |" + " ---: |" * 6]
    for run, rows in results.items():
        row = last(rows, steps)
        plain = last(results[Run(run.size, "plain")], steps)
        ratio = (f"{row['fid_anime'] / plain['fid_anime']:.2f}"
                 if run.variant != "plain" and plain["step"] == row["step"] else "")
        lines.append(f"| {run.size} | {run.variant} | {row['step']} | {row['fid_anime']:.2f} | "
                     f"{1000 * row['kid_anime']:.2f} | {row['copy_rate']:.3f} | "
                     f"{row['zero_marks']:.3f} | {ratio} |")
    return "\n".join(lines) + (f"\n\n{samples} generated faces of each run against as many "
                               f"held-out ones.\n")


def figure(out: Path, results: dict[Run, list[dict[str, Any]]], steps: int) -> None:
    from keras_ganime.images import viz

    grids = {}
    for run, rows in results.items():
        step = last(rows, steps)["step"]
        grids[f"{run.size} faces, {run.variant}\nstep {step}"] = np.load(
            out / "scores" / f"{run.name}-{step:07d}.npy")
    curves = {run.name: [(r["step"], r["fid_anime"]) for r in rows if r["step"] <= steps]
              for run, rows in results.items()}
    viz.grids_and_curves(grids, curves, "fid_anime against held-out faces",
                         out / "small-data.png")


# --- command line ------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m keras_ganime.small_data", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--faces", required=True, type=Path,
                   help="a folder of tagged faces, as ../shared/data/anime-faces-64")
    p.add_argument("--out", default=Path("small-data"), type=Path,
                   help="where the subsets, runs, scores, table and figure go")
    p.add_argument("--sizes", type=int, nargs="+", default=[500, 2000], metavar="N",
                   help="the subsets' sizes (default: 500 2000)")
    p.add_argument("--steps", type=int, default=5000, help="mini-batches of every run")
    return p.parse_args(argv)


@errors.command
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.steps < 1:
        raise errors.Error(f"--steps must be at least 1, got {args.steps}")
    if not (args.faces / "tags.csv").is_file() and not (args.out / "data").is_dir():
        raise errors.Error(f"{args.faces}: no tags.csv; name a folder of tagged faces "
                           f"(make small-data FACES=DIR)")
    split(args.faces, args.out, args.sizes)
    runs = plan(sorted(set(args.sizes)))
    directories = {run: train(args.out, run, args.steps) for run in runs}
    scores = Scores(args.out)
    results = {run: scores.of_run(run, directories[run]) for run in runs}
    text = table(results, len(scores.held_out), args.steps)
    atomic_write(args.out / "small-data.md", text)
    figure(args.out, results, args.steps)
    print(text, end="")
    print(f"small-data: wrote {args.out / 'small-data.md'} and {args.out / 'small-data.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
