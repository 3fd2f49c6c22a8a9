"""Settings: TOML files, overrides, validation, and the command line's dry run and errors."""

import itertools
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from keras_ganime import config as config_lib
from keras_ganime.config import EXPERIMENTS_DIR, Config
from keras_ganime.settings import ConfigError
from keras_ganime.train import main

# What each experiment file must change from the reference, from the paper's table.
PAPER = {
    "batch16": {"train.batch_size": 16},
    "batch32": {"train.batch_size": 32},
    "batch128": {"train.batch_size": 128},
    "flip": {"labels.flip": True},
    "dlr": {"d_optim.learning_rate": 0.001},
    "upsample": {"model.upsampling": "upsample", "d_optim.learning_rate": 0.001},
    "adamax": {"d_optim.name": "adamax", "g_optim.name": "adamax"},
    "sgd": {"d_optim.name": "sgd", "d_optim.learning_rate": 0.01},
}


flat = config_lib.flatten


def test_default_toml_states_exactly_what_dry_run_prints(capsys):
    """default.toml is documentation of the defaults, not a source of them: the dataclasses are.
    Its settings (all but its [experiment] table) must equal --dry-run's, key for key."""
    assert main(["--dry-run"]) == 0
    printed = tomllib.loads(capsys.readouterr().out)
    stated = config_lib.read_toml(EXPERIMENTS_DIR / "default.toml")
    assert set(stated.pop("experiment")) == {"description", "paper"}
    assert stated == printed
    assert config_lib.load(EXPERIMENTS_DIR / "default.toml") == Config()


def test_the_defaults_are_the_reference():
    cfg = config_lib.load()
    assert (cfg.train.batch_size, cfg.d_optim.name, cfg.d_optim.learning_rate) == (64, "adam", 2e-4)
    assert (cfg.g_optim.learning_rate, cfg.d_optim.beta_1, cfg.g_optim.beta_1) == (1e-4, 0.5, 0.5)
    assert (cfg.model.upsampling, cfg.model.noise, cfg.labels.soft) == ("transpose", "binary", 0.1)
    assert cfg.train.warmup_steps == 20 and cfg.train.steps == 100_000


@pytest.mark.parametrize("name", sorted(PAPER))
def test_each_experiment_changes_only_its_paper_row(name, capsys):
    assert main(["--config", str(EXPERIMENTS_DIR / f"{name}.toml"), "--dry-run"]) == 0
    printed = config_lib.from_dict(tomllib.loads(capsys.readouterr().out), "dry run")
    reference = flat(Config())
    diff = {k: v for k, v in flat(printed).items() if reference[k] != v}
    assert diff == {**PAPER[name], "output.name": name}


def test_overrides_and_types():
    cfg = config_lib.load(None, ["train.batch_size=16", "d_optim.learning_rate=1e-3",
                                 "labels.flip=true", "model.upsampling=upsample",
                                 'data.path="x.h5"', "labels.soft=1"])
    assert cfg.train.batch_size == 16 and cfg.d_optim.learning_rate == 1e-3
    assert cfg.labels.flip is True and cfg.model.upsampling == "upsample"
    assert cfg.data.path == "x.h5" and cfg.labels.soft == 1.0


@pytest.mark.parametrize("override, message", [
    ("train.batchsize=3", "unknown setting 'train.batchsize'"),
    ("nosuch.key=3", "unknown setting 'nosuch.key'"),
    ("model.image_size=0", "model.image_size must be positive"),
    ("model.filters=0", "model.filters must be positive"),
    ("model.image_size=48", "model.image_size must be a power of two"),
    ("train.batch_size=-4", "train.batch_size must be positive"),
    ("d_optim.name=rmsprop", "d_optim.name must be one of adam, adamax, sgd"),
    ("labels.flip_prob=1.5", r"labels.flip_prob must be in \[0, 1\]"),
    ("labels.soft=-0.1", r"labels.soft must be in \[0, 1\]"),
    ("train.batch_size=2.5", "train.batch_size must be int"),
    ("labels.flip=yes", "labels.flip must be bool"),
    ("train.steps", "--set needs section.key=value"),
    ("d_optim.learning_rate=nan", "d_optim.learning_rate must be a finite number"),
    ("g_optim.beta_1=1.0", r"g_optim.beta_1 must be in \[0, 1\)"),
    ("train.seed=-1", r"train.seed must be in \[0, 2\*\*32\)"),
    ('model.initializer="foo"', "model.initializer must be one of glorot_uniform"),
    ('output.runs_dir=""', "output.runs_dir must not be empty"),
    ("train.distribute=gpus", "train.distribute must be one of none, mirrored, multiworker"),
    ("train.sync_batchnorm=1", "train.sync_batchnorm must be bool"),
])
def test_bad_settings_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        config_lib.load(None, [override])


def test_bad_key_in_a_file_names_the_file(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[train]\nbatch = 3\n")
    with pytest.raises(ConfigError, match="bad.toml: unknown setting 'train.batch'"):
        config_lib.load(path)
    path.write_text("[train\n")
    with pytest.raises(ConfigError, match="bad.toml: not valid TOML"):
        config_lib.load(path)
    with pytest.raises(ConfigError, match="missing.toml: no such config file or experiment"):
        config_lib.load(tmp_path / "missing.toml")


def test_a_byte_order_mark_is_read_as_python_s_utf_8_sig(tmp_path):
    """Some Windows editors start a UTF-8 file with one; TOML allows none, Python's utf-8-sig
    reads past it. A file with and without one hold the same settings."""
    text = '[train]\nbatch_size = 16\n\n[data]\npath = "faces-\u00e9t\u00e9.h5"\n'
    (tmp_path / "plain.toml").write_text(text, encoding="utf-8")
    (tmp_path / "bom.toml").write_text(text, encoding="utf-8-sig")
    assert (tmp_path / "bom.toml").read_bytes()[:3] == b"\xef\xbb\xbf"
    plain, bom = (config_lib.load(tmp_path / f"{n}.toml") for n in ("plain", "bom"))
    assert bom == plain and bom.train.batch_size == 16 and bom.data.path == "faces-\u00e9t\u00e9.h5"


def test_toml_round_trip():
    cfg = config_lib.load(EXPERIMENTS_DIR / "upsample.toml", ['data.path="a \\"b\\".h5"'])
    again = config_lib.from_dict(tomllib.loads(config_lib.to_toml(cfg)), "round trip")
    assert again == cfg


@pytest.mark.parametrize("args, message", [
    (["--set", "labels.flip_prob=2"], "labels.flip_prob must be in [0, 1]"),
    (["--config", "nope"], "nope: no such config file or experiment; experiments: default, "),
    (["--steps", "0"], "train.steps must be positive"),
    (["--data", "missing.h5", "--steps", "1"], "missing.h5: no such file"),
    (["--resume", "nowhere"], "nowhere: not a run directory"),
])
def test_cli_errors_are_one_line_with_exit_code_2(args, message, tmp_path, capsys):
    # Bad config files and data: tests/test_bad_input.py.
    runs = tmp_path / "runs"
    code = main([*args, "--set", f'output.runs_dir="{runs}"', "--set", "model.image_size=16"]
                if "--resume" not in args else args)
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("error: ") and err.count("\n") == 1 and message in err, err
    assert not runs.exists() or not list(runs.iterdir()), "a failed start left a run directory"


def test_cli_error_in_a_real_process_has_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "keras_ganime.train", "--set", "labels.flip_prob=2"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, check=False,
    )
    assert result.returncode == 2
    assert "error: labels.flip_prob must be in [0, 1], got 2.0" in result.stderr
    assert "Traceback" not in result.stderr


def readme_table_rows() -> list[str]:
    return [f"| `make exp-{name}` | `experiments/{name}.toml` | {e.description} | "
            f"{e.source or 'the paper'} | {e.paper} |"
            for name, e in config_lib.experiments().items() if e.paper]


def test_the_docs_table_is_made_from_the_experiment_files():
    """Each experiment's description, source and its source's claim are stated once, in its
    file; the table of them in docs/experiments.md must be the one they make."""
    page = (Path(__file__).resolve().parent.parent / "docs" / "experiments.md").read_text()
    assert "\n".join(readme_table_rows()) in page
    assert set(PAPER) | {"default"} <= {n for n, e in config_lib.experiments().items() if e.paper}
    assert all(e.paper for n, e in config_lib.experiments().items() if n != "train")


def test_an_experiment_table_holds_only_what_it_should(tmp_path):
    path = tmp_path / "x.toml"
    path.write_text('[experiment]\ndescription = "x"\nclaim = "y"\n')
    with pytest.raises(ConfigError, match="x.toml: \\[experiment\\] holds only base, "
                                          "description, hardware, paper, source"):
        config_lib.load(path)


def test_list_names_every_experiment_file(capsys):
    """A line per experiment, and under it, indented, what its source reports of it."""
    assert main(["--list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in out if not line.startswith(" ")] == list(
        config_lib.experiments())
    said = dict(itertools.pairwise(out))
    assert said[next(line for line in out if line.startswith("batch16 "))].split() == [
        "the", "paper", "reports:", "Ran", "much", "faster;", "images", "about", "as", "good",
        "as", "batch", "64."]
    seed001 = next(line for line in out if line.startswith("seed001 "))
    assert said[seed001].lstrip().startswith("the Keras blog's DCGAN (\"Generating new Anime "
                                             "faces with DCGAN\") reports: Faces within")


def test_the_family_is_resolved_first_and_owns_its_settings(tmp_path):
    cfg = config_lib.load(None, ["labels.flip=true"])
    assert cfg.family == "dcgan" and cfg.labels.flip
    assert config_lib.load(None, ['model.family="dcgan"']) == Config()
    # The toy family (tests/toy_family.py) has no [labels], no warm-up, no loss limit.
    from tests import toy_family  # noqa: F401

    for key in ("labels.flip=true", "train.warmup_steps=3", "failure.loss_limit=3.0",
                "model.upsampling=upsample"):
        with pytest.raises(ConfigError, match=f"{key.split('=')[0]} is a setting of the dcgan "
                                              f"family, not of model.family = 'toy'"):
            config_lib.load(None, ['model.family="toy"', key])
    # A file's family, overridden on the command line: the file's keys are checked against it.
    path = tmp_path / "toy.toml"
    path.write_text('[model]\nfamily = "toy"\npenalty = "l1"\n')
    assert config_lib.load(path).model.penalty == "l1"
    with pytest.raises(ConfigError, match="toy.toml: model.penalty is a setting of the toy "
                                          "family, not of model.family = 'dcgan'"):
        config_lib.load(path, ['model.family="dcgan"'])
    assert "labels" not in config_lib.to_toml(config_lib.load(path))


def test_command_line_options_keep_their_values_as_typed(capsys):
    path = "dir\\\\x 'q\" y.h5"
    assert main(["--data", path, "--seed", "7", "--steps", "5", "--dry-run"]) == 0
    printed = config_lib.from_dict(tomllib.loads(capsys.readouterr().out), "dry run")
    assert (printed.data.path, printed.train.seed, printed.train.steps) == (path, 7, 5)


def test_no_metric_is_a_run_that_never_evaluates():
    assert config_lib.load(None, ['eval.metrics=""']).eval_metrics() == []
    with pytest.raises(ConfigError, match="eval.metrics: no metric named"):
        config_lib.load(None, ['eval.metrics=""', "eval.every=10"])


def test_an_experiment_is_found_by_name_from_any_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for name in ("batch16", "batch16.toml"):
        assert main(["--config", name, "--dry-run"]) == 0
        printed = tomllib.loads(capsys.readouterr().out)
        assert printed["train"]["batch_size"] == 16 and printed["output"]["name"] == "batch16"
    (tmp_path / "batch16.toml").write_text("[train]\nbatch_size = 3\n")  # a path comes first
    assert config_lib.load("batch16.toml").train.batch_size == 3


def test_a_relative_data_path_is_kept_with_what_it_resolved_to(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["--data", "faces.h5", "--dry-run"]) == 0
    data = tomllib.loads(capsys.readouterr().out)["data"]
    assert (data["path"], data["resolved_path"]) == ("faces.h5", str(tmp_path / "faces.h5"))
