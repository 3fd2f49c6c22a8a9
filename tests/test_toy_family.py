"""The family contract, proved general by a test-only family (tests/toy_family.py) that uses every
part of it: it trains through the real loop, shows its own names in every output, skips its gated
phase, records its own failure rule, resumes bit for bit after SIGKILL, and generates."""

import dataclasses
import io
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from tqdm import tqdm

from keras_ganime import config as config_lib
from keras_ganime import generate
from keras_ganime.data import load_images, write_h5
from keras_ganime.engines.tensorflow import Engine
from keras_ganime.families.base import Phase
from keras_ganime.images import viz
from keras_ganime.runs import RunDir
from keras_ganime.training import loop
from tests.toy_family import SPEC  # (importing it registers the family)

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = ('model.family="toy"', "train.batch_size=8", "output.log_every=1",
            "output.checkpoint_every=5", "output.sample_every=5")
NAMES = ("d_loss", "g_loss", "reg_l1", "balance")


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "toy.h5"
    images = np.random.default_rng(0).integers(0, 256, (40, 8, 8, 3), np.uint8)
    write_h5(path, images, np.zeros(40), [], ["x"] * 40)
    return path


def toy(tmp_path: Path, data: Path, *overrides: str) -> config_lib.Config:
    return config_lib.load(None, [*SETTINGS, "model.penalty=l1", "train.steps=10",
                                  f'data.path="{data}"', f'output.runs_dir="{tmp_path}"',
                                  *overrides])


def train(cfg: config_lib.Config, monkeypatch) -> tuple[RunDir, str, list[str]]:
    """Ten steps through the loop; what its progress bar printed and its loss plot's legends."""
    bar = io.StringIO()
    # Shown as on a terminal (without one the bar turns itself off), every update.
    monkeypatch.setattr(loop, "tqdm", lambda *args, **kwargs: tqdm(
        *args, **{**kwargs, "file": bar, "disable": False, "mininterval": 0}))
    legends: list[str] = []
    save = viz._save

    def keep_legends(fig, path):
        legends.extend(t.get_text() for ax in fig.axes if ax.get_legend()
                       for t in ax.get_legend().get_texts())
        save(fig, path)

    monkeypatch.setattr(viz, "_save", keep_legends)
    engine = Engine(cfg, load_images(cfg.data.path, 0, cfg.model.image_size))
    with loop.new_run(cfg) as run:
        loop.Loop(engine, run).fit()
    return run, bar.getvalue(), legends


def test_trains_with_its_own_names_everywhere(tmp_path, data, monkeypatch):
    run, bar, legends = train(toy(tmp_path, data), monkeypatch)
    rows = run.read_losses()
    assert list(rows[0]) == ["step", *NAMES, "images_per_s", "wall_s"]
    assert [r["step"] for r in rows] == list(range(1, 11))
    assert set(legends) >= set(NAMES)  # the two panels of its spec: losses, balance and reg
    assert "dl=" in bar and "bal=" in bar and "d0=" not in bar
    tags = {v.tag for f in (run.path / "tensorboard").iterdir()
            for e in tf.compat.v1.train.summary_iterator(str(f)) for v in e.summary.value}
    assert tags >= set(NAMES)
    # Every second step (1, 3, ...) runs the `reg` phase; the others log NaN for it.
    assert [np.isnan(r["reg_l1"]) for r in rows] == [False, True] * 5
    # The balance is the average the family updates after each step, from its first value of 1.
    m, balance = 0.9, 1.0
    for r in rows:
        balance = m * balance + (1 - m) * r["d_loss"] / r["g_loss"]
        assert r["balance"] == pytest.approx(balance, rel=1e-5)


def test_the_gate_skips_d_on_the_last_values_and_the_balance_holds(tmp_path, data,
                                                                    monkeypatch):
    run, _, _ = train(toy(tmp_path, data, "toy.gate_ratio=0.1"), monkeypatch)
    rows = run.read_losses()
    # Step 1 has no last values: D runs. From then on G's last loss (about 0.7) is over 0.1 x D's
    # last one (about 1.3, kept from step 1), so D is skipped and the balance stays put.
    assert np.isfinite(rows[0]["d_loss"]) and all(np.isnan(r["d_loss"]) for r in rows[1:])
    assert len({r["balance"] for r in rows}) == 1
    assert rows[0]["g_loss"] > 0.1 * rows[0]["d_loss"]


def test_its_own_failure_rule_is_recorded(tmp_path, data, monkeypatch):
    run, _, _ = train(toy(tmp_path, data, "toy.balance_floor=10.0"), monkeypatch)
    info = run.read_json("run.json")
    assert info["failed_at"] == 4
    assert info["reason"] == "balance below 10 for more than 3 steps in a row (since step 1)"


def test_generates_from_its_checkpoint_and_its_export(tmp_path, data, monkeypatch):
    run, _, _ = train(toy(tmp_path, data), monkeypatch)
    for source in (run.path, run.path / "generator.keras"):
        out = tmp_path / source.name
        assert generate.main([str(source), "--n", "5", "--out", str(out), "--seed", "2"]) == 0
        assert len(list(out.glob("0000[0-4].png"))) == 5
    a = [np.asarray(viz.Image.open(p)) for p in sorted((tmp_path / run.path.name).glob("0*.png"))]
    b = [np.asarray(viz.Image.open(p)) for p in sorted((tmp_path / "generator.keras").glob("0*"))]
    np.testing.assert_array_equal(np.stack(a), np.stack(b))


def _start(data: Path, runs: Path, *args: str) -> subprocess.Popen:
    # A gate ratio at which the gate opens and shuts with the data, so that resume must restore
    # the last values that it reads.
    settings = [*SETTINGS, "toy.gate_ratio=0.5", "output.sample_every=100000",
                f'output.runs_dir="{runs}"']
    command = [sys.executable, "-m", "tests.toy_family", *args]
    if "--resume" not in args:
        command += ["--data", str(data), *(x for s in settings for x in ("--set", s))]
    return subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _latest(run: Path) -> int:
    return int(tf.train.latest_checkpoint(str(run / "checkpoints")).rsplit("-", 1)[1])


def _state(run: Path, step: int) -> dict[str, np.ndarray]:
    reader = tf.train.load_checkpoint(str(run / "checkpoints" / f"ckpt-{step}"))
    return {k: reader.get_tensor(k) for k in reader.get_variable_to_shape_map()
            if "save_counter" not in k and k != "_CHECKPOINTABLE_OBJECT_GRAPH"}


@pytest.mark.integration
def test_sigkill_at_any_moment_then_resume_is_bit_identical(tmp_path, data):
    killed = _start(data, tmp_path / "killed", "--steps", "1000000")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and killed.poll() is None:
        state = list((tmp_path / "killed").glob("*/checkpoints/checkpoint"))
        if state and "ckpt-" in state[0].read_text():
            break
        time.sleep(0.02)
    killed.send_signal(signal.SIGKILL)
    killed.wait(timeout=30)
    (run,) = (tmp_path / "killed").iterdir()
    end = _latest(run) + 7  # past the checkpoint, into a new one and not on a checkpoint step
    resumed = _start(data, tmp_path, "--resume", str(run), "--steps", str(end))
    once = _start(data, tmp_path / "once", "--steps", str(end))
    for process in (resumed, once):
        assert process.wait(timeout=300) == 0, process.communicate()[1][-2000:]
    (whole,) = (tmp_path / "once").iterdir()
    timing = ("images_per_s", "wall_s")
    rows = [[[v for k, v in r.items() if k not in timing] for r in RunDir(p).read_losses()]
            for p in (run, whole)]
    assert len(rows[0]) == end
    np.testing.assert_array_equal(np.array(rows[0]), np.array(rows[1]))  # NaN == NaN here
    a, b = _state(run, end), _state(whole, end)
    assert a.keys() == b.keys() and any("balance" in k for k in a) and any("last" in k for k in a)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_a_gate_reads_the_last_value_of_a_phase_skipped_earlier_in_the_step(tmp_path, data,
                                                                              monkeypatch):
    """`reg` runs on odd steps only; D, after it, is gated on reg's value, which is never
    negative: on even steps the gate must read reg's last value, not this step's NaN."""
    from tests import toy_family_nets

    def phases(self):
        return (Phase("reg", ("reg_l1",), every=2),
                Phase("d", ("d_loss",), gate=lambda v: v["reg_l1"] > -1.0),
                Phase("g", ("g_loss",)))

    monkeypatch.setattr(toy_family_nets.Family, "phases", property(phases))
    cfg = toy(tmp_path, data)
    engine = Engine(cfg, load_images(cfg.data.path, 0, cfg.model.image_size))
    rows = [{k: float(v) for k, v in engine.train_step().items()} for _ in range(4)]
    assert [np.isnan(r["reg_l1"]) for r in rows] == [False, True, False, True]
    assert all(np.isfinite(r["d_loss"]) for r in rows), rows


def test_what_the_tools_ask_of_it(tmp_path):
    """bench's FLOPs from its forward networks by hand, bench's settings, and the report's
    score table of its logged rows, through the contract alone."""
    from keras_ganime import families
    from keras_ganime.families.base import forward_flops
    from keras_ganime.report import score_rows

    cfg = config_lib.load(None, ["model.family=\"toy\""])
    family = families.load("toy")
    g, d = (forward_flops(n) for n in family.forward_networks(cfg))
    assert (g, d) == (2 * 4 * 8 * 8 * 3, 2 * 8 * 8 * 3)  # one Dense each: 4 -> 192, 192 -> 1
    assert family.step_flops(cfg, g, d) == 4 * 1536 + 9 * 384 + 3 * 1536 // 2
    for key, value in SPEC.bench_settings.items():
        config_lib.set_value(cfg, key, value)
    assert cfg.toy.gate_ratio == 1e30
    rows = [{"step": s, "d_loss": 0.5, "g_loss": 1.0, "reg_l2": 0.1, "balance": 0.4}
            for s in range(1, 11)]
    assert score_rows(rows, SPEC.scores)[-1] == {"step": 10, "d_loss": 0.5, "g_loss": 1.0,
                                                 "balance": 0.4}



def test_a_family_that_fills_no_networks_is_refused(monkeypatch):
    """Its checkpoints would hold no weights, and a resume would start G and D afresh."""
    from keras_ganime.engines.common import build_family
    from tests import toy_family_nets

    cfg = config_lib.load(None, ["model.family=\"toy\""])
    assert build_family(cfg).networks
    fill = toy_family_nets.Family.__init__

    def without_networks(self, *args, **kwargs):
        fill(self, *args, **kwargs)
        self.networks = {}

    monkeypatch.setattr(toy_family_nets.Family, "__init__", without_networks)
    with pytest.raises(TypeError, match="the toy family's constructor filled no networks"):
        build_family(cfg)


def test_a_logged_name_no_step_gives_is_refused_when_the_family_is_built(monkeypatch):
    """A name the spec logs or shows that neither a phase nor after_step gives is refused at
    build, not a KeyError at the first logged step; and after_step must give what its
    after_outputs names (checked as the step is traced)."""
    from keras_ganime import families
    from keras_ganime.engines import common
    from tests import toy_family, toy_family_nets

    cfg = config_lib.load(None, ["model.family=\"toy\""])
    monkeypatch.setitem(families.SPECS, "toy", dataclasses.replace(
        toy_family.SPEC, logged=lambda cfg: ("d_loss", "balance", "d_gap")))
    with pytest.raises(TypeError, match="logs or shows d_gap, which neither a phase outputs nor "
                                        "after_outputs names"):
        common.build_family(cfg)
    monkeypatch.undo()
    family = common.build_family(cfg)
    monkeypatch.setattr(toy_family_nets.Family, "after_outputs", ("balance", "ratio"))
    with pytest.raises(TypeError, match=r"after_step gave \['balance'\], its after_outputs "
                                        r"names \['balance', 'ratio'\]"):
        common.after_step(family, {"d_loss": 1.0, "g_loss": 2.0}, None)
