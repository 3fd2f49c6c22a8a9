"""The GPU check: the reference on Keras's JAX backend, measured and trained in one call;
`python -m keras_ganime.gpu_check --out DIR [--tiny]`.

Made for a GPU machine with JAX but no TensorFlow and no package
registry: `make gpu-wheels` fetches here the pure-Python wheels that Keras needs there
(build/wheels/), and the device runs, from the repository's root,

    python3 -m pip install --quiet --no-deps --target /tmp/site build/wheels/*.whl
    PYTHONPATH=/tmp/site:. KERAS_BACKEND=jax python3 -m keras_ganime.gpu_check --out $OUT

It prints the device, then
    bench   the reference's training step (JaxEngine.train_step) at batch 64 and 128, float32
            and bfloat16: images/s, the median of repeats after a compiled warm-up
    train   the reference for a few thousand steps in a run directory of its own (grids, loss
            plot, checkpoints), scored at the end by fid_anime and SWD
and writes DIR/gpu_check.json with every figure, beside the run's last grid and its loss plot.
`--tiny` is the same on a CPU in about a minute (16 px, a few steps): `make gpu-check`, in CI.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from keras_ganime import config as config_lib
from keras_ganime import errors
from keras_ganime.engines import common

# What each size measures and trains.
SIZES = {
    "gpu": {"image_size": 64, "batches": (64, 128), "steps": 200, "repeats": 5,
            "train_steps": 3000, "eval_samples": 2000, "synth_n": 20000},
    "tiny": {"image_size": 16, "batches": (8, 16), "steps": 3, "repeats": 3,
             "train_steps": 30, "eval_samples": 64, "synth_n": 256},
}
PRECISIONS = ("off", "bfloat16")


def device() -> dict[str, Any]:
    import jax
    import keras

    d = jax.devices()[0]
    return {"platform": d.platform, "device": d.device_kind, "count": jax.device_count(),
            "jax": jax.__version__, "keras": keras.__version__,
            "backend": keras.backend.backend()}


def bench(size: dict[str, Any], images: Any, log: Any) -> list[dict[str, Any]]:
    """images/s of the reference's step for each batch size and precision."""
    import jax

    from keras_ganime.engines.jax import JaxEngine

    rows = []
    for precision in PRECISIONS:
        for batch in size["batches"]:
            cfg = config_lib.load(None, [f"model.image_size={size['image_size']}",
                                         f"train.batch_size={batch}", "train.warmup_steps=0",
                                         f'train.mixed_precision="{precision}"'])
            engine = JaxEngine(cfg, images)
            start = time.perf_counter()
            jax.block_until_ready(engine.train_step())  # compiled on the first call
            compile_s = time.perf_counter() - start
            rates = []
            for _ in range(size["repeats"]):
                start = time.perf_counter()
                for _ in range(size["steps"]):
                    out = engine.train_step()
                jax.block_until_ready(out)
                rates.append(batch * size["steps"] / (time.perf_counter() - start))
            rows.append({"batch": batch, "mixed_precision": precision,
                         "images_per_s": round(statistics.median(rates), 1),
                         "quartiles": [round(q, 1) for q in
                                       statistics.quantiles(rates, n=4)[::2]],
                         "compile_s": round(compile_s, 1), "steps_per_repeat": size["steps"],
                         "repeats": size["repeats"]})
            log(f"bench: {json.dumps(rows[-1])}")
    return rows


def train(size: dict[str, Any], out: Path, log: Any) -> dict[str, Any]:
    """The reference in a run directory under OUT/runs, scored at its last step."""
    from keras_ganime.runs import read_csv
    from keras_ganime.training.fit import fit

    steps = size["train_steps"]
    cfg = config_lib.load(None, [f"model.image_size={size['image_size']}",
                                 f"data.synth_n={size['synth_n']}", f"train.steps={steps}",
                                 f"eval.every={steps}", f"eval.samples={size['eval_samples']}",
                                 'eval.metrics="fid_anime,swd"', 'output.milestones=""',
                                 f"output.sample_every={max(1, steps // 6)}",
                                 f"output.checkpoint_every={steps}",
                                 f'output.runs_dir="{out / "runs"}"']).validate()
    start = time.perf_counter()
    fit(cfg, None, "jax")
    seconds = time.perf_counter() - start
    run = max((out / "runs").iterdir())  # this call's: the newest number
    losses, scores = read_csv(run / "loss.csv"), read_csv(run / "metrics.csv")
    for picture in (run / "loss.png", max((run / "samples").iterdir())):
        shutil.copy(picture, out / f"train-{picture.name}")
    result = {"steps": steps, "batch": cfg.train.batch_size, "image_size": cfg.model.image_size,
              "seconds": round(seconds, 1), "run": str(run), "last": losses[-1],
              "scores": scores[-1]}
    log(f"train: {json.dumps(result)}")
    return result


@errors.command
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m keras_ganime.gpu_check", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="folder for gpu_check.json and the pictures")
    p.add_argument("--tiny", action="store_true", help="the CPU's version: 16 px, a few steps")
    args = p.parse_args(argv)
    size = SIZES["tiny" if args.tiny else "gpu"]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    common.choose("jax", config_lib.Config())

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    from keras_ganime.data import load_images

    result: dict[str, Any] = {"size": "tiny" if args.tiny else "gpu", "device": device()}
    log(f"device: {json.dumps(result['device'])}")
    images = load_images("", size["synth_n"], size["image_size"])
    result["bench"] = bench(size, images, log)
    result["train"] = train(size, out, log)
    (out / "gpu_check.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
