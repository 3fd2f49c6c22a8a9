"""Training speed of the project's step against the reference's Keras idiom, side by side in one
run; `python -m keras_ganime.bench [--quick] [--batches 16,64,128] [--json]`.

Each contender lives in its own worker process, because oneDNN can only be switched on or off
before TensorFlow is imported, and Keras's backend before Keras is:
    project           Engine.train_step, with the project's defaults
    project_jax       JaxEngine.train_step, the same step on Keras's JAX backend (where JAX is
                      installed: pip install '.[jax]')
    baseline          (with --baseline DIR) the project's own worker run from another checkout of
                      it, such as a git worktree of an earlier commit: the same measurement of
                      that code, to show what a change costs or gains
    reference         predict() for the fakes, then train_on_batch on D (reals), on D (fakes)
                      and on the stacked G->D model with D frozen; TensorFlow's default settings;
                      the same models, built of Keras's own layers as the reference's were (the
                      project's differ only by its fused BatchNorm kernel)
    reference_onednn  the same with TF_ENABLE_ONEDNN_OPTS=1
The workers take turns, one at a time and in a rotating order, so that every repeat of every
contender sees the same machine; the reported figure is the median of many short repeats, and
the quartiles of the ratio within each repeat say how sure the ratio is (the speed of this shared
machine drifts by 20% within a minute). In the same turns the project's worker measures a large
matmul (the practical peak) and its step with a constant in-memory batch (the cost of drawing real
batches on the device from the images loaded from HDF5); a fresh process per batch size measures
the peak resident memory of training at that size.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from keras_ganime import errors

# Contender -> (TF_ENABLE_ONEDNN_OPTS, Keras's backend); None: the project's default.
CONTENDERS = {"project": (None, "tensorflow"), "reference": ("0", "tensorflow"),
              "reference_onednn": ("1", "tensorflow")}
if importlib.util.find_spec("jax") is not None:
    CONTENDERS["project_jax"] = (None, "jax")
DATASET = 2048  # random images written to HDF5 and loaded, as a run would
MATMUL = 4096


# --- workers -----------------------------------------------------------------------------------


def _images(n: int, size: int) -> Any:
    """Random uint8 faces written to HDF5 and loaded back, as a run gets them."""
    import numpy as np

    from keras_ganime.data import load_images, write_h5

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.h5"
        write_h5(path, rng.integers(0, 256, (n, size, size, 3), np.uint8), np.zeros(n),
                 [], [""] * n)
        return load_images(str(path), 0, size)


def _timed(step: Any, steps: int) -> float:
    """Seconds for `steps` calls, the last result pulled to the host so that all work is done."""
    start = time.perf_counter()
    for _ in range(steps):
        out = step()
    float(next(iter(out.values())) if isinstance(out, dict) else out)
    return time.perf_counter() - start


def _engine(batch: int, images: Any, experiment: str | None = None) -> Any:
    """The project's engine of Keras's backend with an experiment's settings (none: the
    defaults) at `batch`, training G from the first step."""
    from keras_ganime import config as config_lib
    from keras_ganime import engines

    cfg = config_lib.load(experiment, [f"train.batch_size={batch}"])
    for key, value in config_lib.family_spec(cfg.family).bench_settings.items():
        config_lib.set_value(cfg, key, value)
    return engines.create(cfg, images)


def gpu_count() -> int:
    """The GPUs Keras's backend sees."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return sum(d.platform == "gpu" for d in jax.devices())
    import tensorflow as tf

    return len(tf.config.list_logical_devices("GPU"))


def experiment_flops(experiment: str | None = None) -> int | None:
    """FLOPs of one image through one training step of an experiment (none: the reference):
    its family's `step_flops` of its networks' forward FLOPs; None where it counts none."""
    from keras_ganime import config as config_lib
    from keras_ganime import families
    from keras_ganime.families.base import forward_flops

    cfg = config_lib.load(experiment)
    family = families.load(cfg.family)
    networks = family.forward_networks(cfg)
    if networks is None:
        return None
    return family.step_flops(cfg, *(forward_flops(n) for n in networks))


class ProjectWorker:
    def __init__(self) -> None:
        self.images = _images(DATASET, 64)
        self.steps: dict[tuple[int, bool, str | None], Any] = {}

    def _step(self, batch: int, in_memory: bool, experiment: str | None) -> Any:
        key = (batch, in_memory, experiment)
        if key not in self.steps:
            # The two steps of one batch size stay alive, to be timed in turns; memory is
            # measured apart, in a fresh process per batch size (training_rss).
            if any(k[0] != batch or k[2] != experiment for k in self.steps):
                self.steps.clear()
            from keras_ganime.images.convert import to_float

            engine = _engine(batch, self.images, experiment)
            if in_memory:  # TensorFlow's engine: its step reads the reals through `reals`
                fixed = to_float(self.images[:batch])  # one constant batch
                engine.reals = lambda indices: fixed
            engine.train_step()  # trace and warm up
            self.steps[key] = engine.train_step
        return self.steps[key]

    def measure(self, batch: int, steps: int, in_memory: bool = False,
                experiment: str | None = None) -> float:
        return batch * steps / _timed(self._step(batch, in_memory, experiment), steps)

    def peak(self) -> float:
        import keras
        from keras import ops

        a = keras.random.normal([MATMUL, MATMUL])
        float(ops.sum(ops.matmul(a, a)))
        best = min(_timed(lambda: ops.sum(ops.matmul(a, a)), 1) for _ in range(2))
        return 2 * MATMUL**3 / best / 1e9

    def flops(self, experiment: str | None = None) -> int:
        return experiment_flops(experiment)


class ReferenceWorker:
    """forcecore's loop as Keras users write it, on the same models."""

    def __init__(self) -> None:
        import numpy as np

        from keras_ganime.images.convert import to_float

        self.np = np
        # The reference kept the whole dataset as float32 in host memory.
        self.images = np.asarray(to_float(_images(DATASET, 64)))
        self.rng = np.random.default_rng(0)
        self.built: dict[int, Any] = {}

    def _build(self, batch: int) -> Any:
        import keras

        from keras_ganime import families
        from keras_ganime.config import Config

        g, d = families.load("dcgan").forward_networks(Config("dcgan"))  # the reference's
        d.compile(keras.optimizers.Adam(2e-4, beta_1=0.5), "binary_crossentropy")
        z = keras.Input((1, 1, 100))
        stacked = keras.Model(z, d(g(z)))
        # Keras 3 fixes a model's trainable weights when its train function is first built: D's
        # while D is trainable, the stacked model's once D is frozen.
        x, y = self._batch(batch)
        d.train_on_batch(x, y)
        d.trainable = False
        stacked.compile(keras.optimizers.Adam(1e-4, beta_1=0.5), "binary_crossentropy")
        stacked.train_on_batch(self._noise(batch), y)
        return g, d, stacked

    def _noise(self, n: int) -> Any:
        signs = self.rng.integers(0, 2, (n, 1, 1, 100)) * 2.0 - 1.0
        return (signs + self.rng.uniform(-0.1, 0.1, signs.shape)).astype(self.np.float32)

    def _batch(self, n: int) -> tuple[Any, Any]:
        idx = self.rng.integers(0, len(self.images), n)
        return self.images[idx], 1.0 - 0.1 * self.rng.random(n).astype(self.np.float32)

    def measure(self, batch: int, steps: int) -> float:
        if batch not in self.built:
            self.built[batch] = self._build(batch)
        g, d, stacked = self.built[batch]

        def step() -> float:
            z = self._noise(batch)
            fakes = g.predict(z, verbose=0)
            reals, high = self._batch(batch)
            low = 0.1 * self.rng.random(batch).astype(self.np.float32)
            d.train_on_batch(reals, high)
            d.train_on_batch(fakes, low)
            return stacked.train_on_batch(z, high)

        return batch * steps / _timed(step, steps)


def training_rss(batch: int) -> float:
    """Peak resident MB of a process that loads the data and trains a few steps at `batch`:
    what a run at that batch needs, apart from any other measurement."""
    engine = _engine(batch, _images(DATASET, 64))
    _timed(engine.train_step, 3)
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def resident_mb() -> float:
    """This process's resident memory now (not its peak), from /proc."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def soak(steps: int, block: int = 1000, log: Any = None) -> dict[str, Any]:
    """A long run holds: the reference at 32 px, batch 16, for `steps` steps in one process,
    with the resident memory and the images/s of every block of `block` steps. It holds when
    the memory at the end is within 3% or 30 MB of that after the first block, and the last
    block's speed within 10% of the second block's (the first includes tracing)."""
    from keras_ganime import config as config_lib
    from keras_ganime.engines.tensorflow import Engine

    cfg = config_lib.load(None, ["model.image_size=32", "train.batch_size=16",
                                 "train.warmup_steps=0"])
    engine = Engine(cfg, _images(DATASET, 32))
    blocks = []
    for b in range(steps // block):
        seconds = _timed(engine.train_step, block)
        blocks.append({"step": (b + 1) * block, "rss_mb": round(resident_mb(), 1),
                       "images_per_s": round(block * cfg.train.batch_size / seconds, 1)})
        if log:
            log(f"soak: {blocks[-1]}")
    first, second, last = blocks[0], blocks[min(1, len(blocks) - 1)], blocks[-1]
    growth = last["rss_mb"] - first["rss_mb"]
    drift = last["images_per_s"] / second["images_per_s"] - 1
    return {"blocks": blocks, "rss_growth_mb": round(growth, 1),
            "rss_growth": round(growth / first["rss_mb"], 4), "speed_change": round(drift, 4),
            "holds": bool((growth <= 30 or growth <= 0.03 * first["rss_mb"])
                          and abs(drift) <= 0.10)}


def op_profile(batch: int, steps: int = 3) -> list[tuple[str, float]]:
    """(op type, share of the kernel time) over `steps` training steps, from the TensorFlow
    profiler's trace of the compute threads: where the time of the step goes."""
    import collections
    import glob

    import tensorflow as tf
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    engine = _engine(batch, _images(DATASET, 64))
    _timed(engine.train_step, 2)
    with tempfile.TemporaryDirectory() as logdir:
        options = tf.profiler.experimental.ProfilerOptions(host_tracer_level=3)
        tf.profiler.experimental.start(logdir, options=options)
        _timed(engine.train_step, steps)
        tf.profiler.experimental.stop()
        space = xplane_pb2.XSpace()
        trace = glob.glob(f"{logdir}/**/*.xplane.pb", recursive=True)[0]
        space.ParseFromString(Path(trace).read_bytes())
    per_op: collections.Counter[str] = collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            if not line.name.startswith("tf_Compute"):
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name  # "node/path:OpType"
                if not name.endswith("Process"):  # the executor's wrapper around the kernels
                    per_op[name.rsplit(":", 1)[-1]] += event.duration_ps
    total = sum(per_op.values())
    return [(name, ps / total) for name, ps in per_op.most_common()]


def worker(kind: str) -> None:
    """Answer one JSON request per stdin line with one JSON line on stdout."""
    impl = ProjectWorker() if kind == "project" else ReferenceWorker()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        if req["op"] == "measure":
            out: Any = impl.measure(req["batch"], req["steps"], **req.get("options", {}))
        elif req["op"] == "peak":
            out = impl.peak()
        elif req["op"] == "gpus":
            out = gpu_count()
        else:
            out = impl.flops(**req.get("options", {}))
        print(json.dumps({"value": out}), flush=True)


class Worker:
    def __init__(self, kind: str, onednn: str | None, checkout: Path | None = None,
                 backend: str = "tensorflow") -> None:
        """A worker process of `kind` on Keras's `backend`; `checkout`: run the project worker
        of that checkout, its code first on the import path."""
        env = dict(os.environ, PYTHONUNBUFFERED="1", KERAS_BACKEND=backend)
        if onednn is not None:
            env["TF_ENABLE_ONEDNN_OPTS"] = onednn
        if checkout is not None:
            env["PYTHONPATH"] = str(checkout)
        contender = "reference" if kind.startswith("reference") else "project"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "keras_ganime.bench", "--worker", contender],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            text=True, env=env, cwd=checkout)

    def wait_ready(self) -> None:
        self._read()

    def _read(self) -> Any:
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("a benchmark worker died; run it alone to see why: "
                               "python -m keras_ganime.bench --worker project")
        return json.loads(line).get("value")

    def ask(self, op: str, **args: Any) -> Any:
        self.proc.stdin.write(json.dumps({"op": op, **args}) + "\n")
        self.proc.stdin.flush()
        return self._read()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=60)


# --- the run -----------------------------------------------------------------------------------


def bench(batches: list[int], repeats: int, seconds: float, log: Any,
          baseline: Path | None = None) -> list[dict[str, Any]]:
    workers = {name: Worker(name, onednn, backend=backend)
               for name, (onednn, backend) in CONTENDERS.items()}
    if baseline is not None:
        workers["baseline"] = Worker("baseline", None, baseline)
    for w in workers.values():  # started together, waited for together
        w.wait_ready()
    project = workers["project"]
    try:
        flops = project.ask("flops")
        results = []
        for batch in batches:
            # Size each measurement from a first timing so that it lasts about `seconds`.
            rate = project.ask("measure", batch=batch, steps=1)
            steps = max(2, round(seconds * rate / batch))
            runs: dict[str, list[float]] = {name: [] for name in workers}
            for name, w in workers.items():
                w.ask("measure", batch=batch, steps=1)  # warm-up: tracing, first allocations
            project.ask("measure", batch=batch, steps=1, options={"in_memory": True})
            constant: list[float] = []
            peaks: list[float] = []
            turns = list(workers)
            for r in range(repeats):
                # Rotated, so that no contender always follows the same one.
                for name in turns[r % len(turns):] + turns[:r % len(turns)]:
                    runs[name].append(workers[name].ask("measure", batch=batch, steps=steps))
                    log(f"batch {batch} repeat {r + 1}/{repeats} {name}: "
                        f"{runs[name][-1]:.1f} images/s")
                # The same step on one constant batch, in the same turns: the pipeline's cost.
                constant.append(project.ask("measure", batch=batch, steps=steps,
                                            options={"in_memory": True}))
                peaks.append(project.ask("peak"))  # the machine's speed in the same turns
            in_memory = statistics.median(constant)
            peak = statistics.median(peaks)
            ips = {name: statistics.median(v) for name, v in runs.items()}
            gflops = ips["project"] * flops / 1e9
            results.append({
                "batch": batch,
                "images_per_s": round(ips["project"], 2),
                "reference_images_per_s": round(ips["reference"], 2),
                "reference_onednn_images_per_s": round(ips["reference_onednn"], 2),
                "ratio_default": round(ips["project"] / ips["reference"], 3),
                "ratio_onednn": round(ips["project"] / ips["reference_onednn"], 3),
                # How sure the ratios are: the quartiles of the ratio within each repeat.
                "ratio_default_quartiles": quartiles(runs["project"], runs["reference"]),
                "ratio_onednn_quartiles": quartiles(runs["project"], runs["reference_onednn"]),
                "gflops": round(gflops, 1),
                "peak_gflops": round(peak, 1),
                "peak_fraction": round(gflops / peak, 3),
                "in_memory_images_per_s": round(in_memory, 2),
                "pipeline_overhead": round(in_memory / ips["project"] - 1.0, 3),
                **({"jax_images_per_s": round(ips["project_jax"], 2),
                    "ratio_jax": round(ips["project_jax"] / ips["project"], 3),
                    "ratio_jax_quartiles": quartiles(runs["project_jax"], runs["project"])}
                   if "project_jax" in ips else {}),
                **({"baseline_images_per_s": round(ips["baseline"], 2),
                    "ratio_baseline": round(ips["project"] / ips["baseline"], 3),
                    "ratio_baseline_quartiles": quartiles(runs["project"], runs["baseline"])}
                   if "baseline" in ips else {}),
                "rss_mb": round(float(subprocess.run(
                    [sys.executable, "-m", "keras_ganime.bench", "--rss", str(batch)],
                    capture_output=True, text=True, check=True).stdout), 1),
                "gflop_per_image": round(flops / 1e9, 3),
                "repeats": repeats,
                "steps_per_repeat": steps,
            })
        return results
    finally:
        for w in workers.values():
            w.close()


def bench_experiments(names: list[str], repeats: int, seconds: float, log: Any
                      ) -> list[dict[str, Any]]:
    """Images/s and share of the practical peak of each experiment's step at its own batch size,
    in one worker, at least one step per repeat, the peak measured in the same turns."""
    from keras_ganime import config as config_lib

    project = Worker("project", None)
    project.wait_ready()
    known = config_lib.experiments()
    try:
        results = []
        gpus = project.ask("gpus")
        for name in names:
            if known[name].hardware == "gpu" and not gpus:
                results.append({"experiment": name, "skipped": "made for a GPU ([experiment] "
                                "hardware = \"gpu\"), and there is none here"})
                log(json.dumps(results[-1]))
                continue
            batch = config_lib.load(name).train.batch_size
            flops = project.ask("flops", options={"experiment": name})
            options = {"experiment": name}
            rate = project.ask("measure", batch=batch, steps=1, options=options)  # and warm-up
            steps = max(1, round(seconds * rate / batch))
            runs, peaks = [], []
            for r in range(repeats):
                runs.append(project.ask("measure", batch=batch, steps=steps, options=options))
                peaks.append(project.ask("peak"))
                log(f"{name} (batch {batch}) repeat {r + 1}/{repeats}: {runs[-1]:.1f} images/s")
            ips, peak = statistics.median(runs), statistics.median(peaks)
            counted = flops is not None  # a family may count no FLOPs (Family.step_flops)
            results.append({"experiment": name, "batch": batch, "images_per_s": round(ips, 2),
                            "gflop_per_image": round(flops / 1e9, 3) if counted else None,
                            "gflops": round(ips * flops / 1e9, 1) if counted else None,
                            "peak_gflops": round(peak, 1),
                            "peak_fraction": round(ips * flops / 1e9 / peak, 3) if counted
                            else None, "repeats": repeats, "steps_per_repeat": steps})
            log(json.dumps(results[-1]))  # kept should a later experiment fail
        return results
    finally:
        project.close()


def experiments_table(results: list[dict[str, Any]]) -> str:
    head = "experiment            batch  images/s  GFLOP/image  GFLOP/s  peak GFLOP/s  of peak"
    rows = [head, "-" * len(head)]
    for r in results:
        if "skipped" in r:
            rows.append(f"{r['experiment']:<20}  skipped: {r['skipped']}")
            continue
        if r["gflops"] is None:
            rows.append(f"{r['experiment']:<20}  {r['batch']:>5}  {r['images_per_s']:>8.1f}  "
                        f"{'-':>11}  {'-':>7}  {r['peak_gflops']:>12.1f}  {'-':>7}")
            continue
        rows.append(f"{r['experiment']:<20}  {r['batch']:>5}  {r['images_per_s']:>8.1f}  "
                    f"{r['gflop_per_image']:>11.3f}  {r['gflops']:>7.1f}  "
                    f"{r['peak_gflops']:>12.1f}  {r['peak_fraction']:>7.1%}")
    repeats = next((r["repeats"] for r in results if "repeats" in r), 0)
    if not repeats:
        return "\n".join(rows)
    rows.append(f"each experiment's training step at its own batch size, median of "
                f"{repeats} repeats; practical peak: float32 matmul "
                f"{MATMUL}x{MATMUL}, in the same turns")
    return "\n".join(rows)


def quartiles(a: list[float], b: list[float]) -> list[float]:
    """The first and third quartiles of a[i] / b[i], a and b measured in the same repeat."""
    ratios = [x / y for x, y in zip(a, b)]
    if len(ratios) < 2:
        return [round(ratios[0], 3)] * 2
    q = statistics.quantiles(ratios, n=4)
    return [round(q[0], 3), round(q[2], 3)]


def _ratio(median: float, quartiles: list[float]) -> str:
    return f"{median:.2f} ({quartiles[0]:.2f}-{quartiles[1]:.2f})"


def table(results: list[dict[str, Any]]) -> str:
    head = ("batch  project  reference  ref+oneDNN  x default (quartiles)  x oneDNN (quartiles)  "
            "GFLOP/s  peak GFLOP/s  of peak  pipeline  RSS MB")
    rows = [head, "-" * len(head)]
    for r in results:
        rows.append(
            f"{r['batch']:>5}  {r['images_per_s']:>7.1f}  {r['reference_images_per_s']:>9.1f}  "
            f"{r['reference_onednn_images_per_s']:>10.1f}  "
            f"{_ratio(r['ratio_default'], r['ratio_default_quartiles']):>20}  "
            f"{_ratio(r['ratio_onednn'], r['ratio_onednn_quartiles']):>19}  "
            f"{r['gflops']:>7.1f}  {r['peak_gflops']:>12.1f}  {r['peak_fraction']:>7.0%}  "
            f"{r['pipeline_overhead']:>+8.1%}  {r['rss_mb']:>6.0f}")
    r = results[0]
    if "jax_images_per_s" in r:
        rows.append("JAX (project_jax, the same step on Keras's JAX backend): " + "; ".join(
            f"batch {r['batch']}: {r['jax_images_per_s']:.1f} images/s, x "
            f"{_ratio(r['ratio_jax'], r['ratio_jax_quartiles'])} of TensorFlow's"
            for r in results))
    if "baseline_images_per_s" in r:
        rows.append("baseline (--baseline): " + "; ".join(
            f"batch {r['batch']}: {r['baseline_images_per_s']:.1f} images/s, project x "
            f"{_ratio(r['ratio_baseline'], r['ratio_baseline_quartiles'])}" for r in results))
    rows.append(f"images/s of one training step (D reals + D fakes + G), median of "
                f"{r['repeats']} interleaved repeats; ratios with the quartiles of the ratio "
                f"within a repeat; {r['gflop_per_image']} GFLOP per image; practical peak: "
                f"float32 matmul {MATMUL}x{MATMUL}, in the same turns; "
                f"pipeline: cost of drawing real batches on the device against a constant batch")
    return "\n".join(rows)


@errors.command
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m keras_ganime.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true",
                   help="one short repeat at batch 16 unless --batches: a smoke run, under 2 min")
    p.add_argument("--batches", help="comma-separated batch sizes (default 16,64,128)")
    p.add_argument("--json", action="store_true", help="one JSON line per batch size")
    p.add_argument("--baseline", metavar="DIR",
                   help="another checkout of keras_ganime (e.g. git worktree add DIR COMMIT) "
                        "measured in the same turns as a fourth contender")
    p.add_argument("--experiments", metavar="NAMES",
                   help="only each experiment's step at its own batch size (comma-separated "
                        "names, or `all`): images/s and share of peak")
    p.add_argument("--worker", choices=["project", "reference"], help=argparse.SUPPRESS)
    p.add_argument("--rss", type=int, metavar="BATCH", help=argparse.SUPPRESS)
    p.add_argument("--soak", type=int, metavar="STEPS",
                   help="only train the reference at 32 px for STEPS steps (make soak: 10000) "
                        "and print its memory and speed per 1,000 steps as JSON")
    p.add_argument("--profile", type=int, metavar="BATCH",
                   help="only print the share of the step's kernel time per op type")
    args = p.parse_args(argv)
    if args.worker:
        worker(args.worker)
        return 0
    if args.rss:
        print(training_rss(args.rss))
        return 0
    if args.soak:
        if args.soak < 2000:
            print(f"error: --soak needs at least 2000 steps, got {args.soak}", file=sys.stderr)
            return 2
        result = soak(args.soak, log=lambda text: print(text, file=sys.stderr, flush=True))
        print(json.dumps(result))
        return 0 if result["holds"] else 1
    if args.profile:
        shares = op_profile(args.profile)
        print("\n".join(f"{share:6.1%}  {name}" for name, share in shares if share >= 0.005))
        return 0
    if args.experiments:
        return _experiments_main(args)
    text = args.batches or ("16" if args.quick else "16,64,128")
    try:
        batches = [int(b) for b in text.split(",")]
        if any(b <= 0 for b in batches):
            raise ValueError
    except ValueError:
        print(f"error: --batches must be positive integers separated by commas, got {text!r}",
              file=sys.stderr)
        return 2
    repeats, seconds = (1, 3.0) if args.quick else (15, 4.0)
    baseline = Path(args.baseline).resolve() if args.baseline else None
    if baseline is not None and not (baseline / "keras_ganime" / "bench.py").is_file():
        print(f"error: --baseline {args.baseline}: not a checkout of keras_ganime (no "
              f"keras_ganime/bench.py)", file=sys.stderr)
        return 2

    def log(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    results = bench(batches, repeats, seconds, log, baseline)
    if args.json:
        print("\n".join(json.dumps(r) for r in results))
    else:
        print(table(results))
    return 0


def _experiments_main(args: argparse.Namespace) -> int:
    from keras_ganime import config as config_lib

    known = config_lib.experiments()
    names = list(known) if args.experiments == "all" else args.experiments.split(",")
    unknown = [n for n in names if n not in known]
    if unknown:
        print(f"error: --experiments: no experiment {', '.join(unknown)}; experiments: "
              f"{', '.join(known)}", file=sys.stderr)
        return 2
    repeats, seconds = (1, 1.0) if args.quick else (5, 4.0)
    results = bench_experiments(names, repeats, seconds,
                                lambda text: print(text, file=sys.stderr, flush=True))
    print("\n".join(json.dumps(r) for r in results) if args.json else
          experiments_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
