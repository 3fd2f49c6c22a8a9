"""A run's settings, gathered: the one source of truth.

A run's settings are the common sections (`settings.py`) and the sections its model family owns
or extends (`model.family`, resolved first; `families/`). Their values are the dataclass
defaults, then an experiment file over them, then command-line `--set section.key=value`
overrides over both.
Validation raises `ConfigError` with one line that names the key at fault. Nothing here imports
TensorFlow: every command line checks its settings before TensorFlow starts.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keras_ganime import families, metric_names
from keras_ganime.runs import run_json_problem
from keras_ganime.settings import (
    AUGMENT_POLICIES,
    COMMON,
    DEFAULT_FAMILY,
    OPTIMIZERS,
    AugmentConfig,
    ConfigError,
    DataConfig,
    EvalConfig,
    FailureConfig,
    ModelConfig,
    OptimConfig,
    OutputConfig,
    TrainConfig,
    check_choices,
    check_not_negative,
    check_positive,
    check_range,
)

# Shipped in the package, so that an installed copy finds them; a checkout's top-level
# experiments/ is a link to this folder.
EXPERIMENTS_DIR = Path(__file__).resolve().parent / "experiments"


# Where a file is not valid TOML: the way to see what valid settings look like.
TOML_HINT = "python -m keras_ganime.train --dry-run prints every setting as valid TOML"


class Config:
    """The sections of one run, in order: the common ones, each replaced by the family's own
    dataclass where it extends one, then the sections only the family has (`[labels]`)."""

    model: ModelConfig
    data: DataConfig
    d_optim: OptimConfig
    g_optim: OptimConfig
    train: TrainConfig
    augment: AugmentConfig
    output: OutputConfig
    eval: EvalConfig
    failure: FailureConfig

    def __init__(self, family: str = DEFAULT_FAMILY) -> None:
        owned = family_spec(family).sections
        factories = {**{name: owned.get(name, kind) for name, kind in COMMON.items()}, **owned}
        self.sections: dict[str, Any] = {name: make() for name, make in factories.items()}
        self.sections["model"].family = family
        self.__dict__.update(self.sections)

    @property
    def family(self) -> str:
        return self.model.family

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Config) and self.sections == other.sections

    def __repr__(self) -> str:
        return f"Config({self.sections!r})"

    def validate(self) -> Config:
        for key, value in flatten(self).items():
            if isinstance(value, float) and not math.isfinite(value):
                raise ConfigError(f"{key} must be a finite number, got {value}", key)
        check_positive(self, [
            "model.image_size", "model.latent_dim", "data.synth_n", "train.batch_size",
            "train.steps", "output.log_every", "output.sample_every", "output.checkpoint_every",
            "output.keep_checkpoints", "d_optim.learning_rate", "g_optim.learning_rate",
            "failure.duplicate_limit", "failure.fid_jump"])
        check_choices(self, {
            "data.sampling": ("uniform", "epoch"),
            "d_optim.name": OPTIMIZERS,
            "g_optim.name": OPTIMIZERS,
            "train.jit_compile": ("auto", "on", "off"),
            "train.mixed_precision": ("off", "bfloat16", "float16"),
            "train.distribute": ("none", "mirrored", "multiworker"),
            "failure.action": ("continue", "stop"),
        })
        if self.train.distribute != "none" and self.train.jit_compile == "on":
            raise ConfigError("train.jit_compile = on needs train.distribute = none: the "
                              "distributed step is not compiled with XLA")
        # A beta or momentum of 1 would never forget: Adam then divides by zero.
        check_range(self, ["d_optim.beta_1", "d_optim.beta_2", "g_optim.beta_1",
                           "g_optim.beta_2", "d_optim.momentum", "g_optim.momentum"], 0.0, 1.0,
                    closed=False)
        if not 0 <= self.train.seed < 2**32:
            raise ConfigError(f"train.seed must be in [0, 2**32), got {self.train.seed}",
                              "train.seed")
        check_not_negative(self, ["eval.every", "d_optim.epsilon", "g_optim.epsilon",
                                  "output.progress_s"])
        if not self.output.name or "/" in self.output.name:
            raise ConfigError(f"output.name must be a plain name, got {self.output.name!r}")
        try:  # none named is a run that never evaluates; with eval.every set, an error
            if self.eval_metrics() or self.eval.every:
                metric_names.check(self.eval_metrics(), self.eval.inception_weights)
        except ValueError as e:
            raise ConfigError(f"eval.metrics: {e}") from None
        if self.eval.samples < 2:
            raise ConfigError(f"eval.samples must be at least 2, got {self.eval.samples}")
        if not self.output.runs_dir:
            raise ConfigError("output.runs_dir must not be empty")
        try:
            if any(m <= 0 for m in self.milestones()):
                raise ValueError
        except ValueError:
            raise ConfigError(f"output.milestones must be positive steps separated by commas, "
                              f"got {self.output.milestones!r}") from None
        aug = self.augment
        unknown = [name for name in aug.policies() if name not in AUGMENT_POLICIES]
        if unknown:
            raise ConfigError(f"augment.policy: {unknown[0]!r} is not one of "
                              f"{', '.join(AUGMENT_POLICIES)}", "augment.policy")
        check_range(self, ["augment.p", "augment.target"], 0.0, 1.0)
        check_positive(self, ["augment.interval", "augment.speed_images"])
        if aug.adaptive and not aug.policies():
            raise ConfigError("augment.adaptive needs an augment.policy to adapt",
                              "augment.adaptive")
        self._check_condition()
        family_spec(self.family).validate(self)
        return self

    def _check_condition(self) -> None:
        names = self.model.conditions()
        if not names:
            return
        spec = family_spec(self.family)
        if "condition" not in spec.capabilities:
            raise ConfigError(f"model.condition: the {spec.name} family has no conditional form "
                              f"({spec.condition_note or 'not offered'}); set it to \"\"",
                              "model.condition")
        if len(set(names)) != len(names):
            raise ConfigError(f"model.condition names an attribute twice: "
                              f"{self.model.condition!r}", "model.condition")
        try:
            raw = json.loads(self.model.condition_values or "{}")
            ok = isinstance(raw, dict) and all(
                isinstance(v, list) and v and all(isinstance(x, str) for x in v)
                and len(set(v)) == len(v) for v in raw.values())
            vocabulary = self.model.vocabulary() if ok else {}
        except (ValueError, AttributeError, TypeError):
            ok = False
        if not ok or (vocabulary and tuple(vocabulary) != names):
            raise ConfigError(f"model.condition_values does not list the values of "
                              f"{', '.join(names)}; leave it empty (the run fills it from its "
                              f"data)", "model.condition_values")

    def eval_metrics(self) -> list[str]:
        return [m.strip() for m in self.eval.metrics.split(",") if m.strip()]

    def milestones(self) -> list[int]:
        return sorted({int(m) for m in self.output.milestones.split(",") if m.strip()})


# --- families, keys and values -------------------------------------------------------------


def family_spec(name: Any) -> Any:
    """The registered family `name` (families.FamilySpec)."""
    if name not in families.SPECS:
        raise ConfigError(f"model.family must be one of {', '.join(families.SPECS)}; "
                          f"got {name!r}")
    return families.SPECS[name]


def flatten(cfg: Config) -> dict[str, Any]:
    """{"section.key": value} for every setting."""
    return {f"{s}.{k}": v for s, values in to_dict(cfg).items() for k, v in values.items()}


def _coerce(key: str, value: Any, default: Any) -> Any:
    """Check a value from TOML or the command line against the type of the field's default."""
    kind = type(default)
    if kind is float and type(value) is int:
        return float(value)
    if type(value) is not kind:
        raise ConfigError(f"{key} must be {kind.__name__}, got {value!r}")
    return value


def _unknown(cfg: Config, key: str) -> ConfigError:
    """The error for a key this config lacks: another family's, or no one's."""
    owners = [name for name in families.SPECS
              if name != cfg.family and key in flatten(Config(name))]
    if owners:
        return ConfigError(f"{key} is a setting of the {' and '.join(owners)} family, not of "
                           f"model.family = {cfg.family!r}")
    section, _, _ = key.partition(".")
    if section not in cfg.sections and "." in key:
        close = difflib.get_close_matches(section, sorted(cfg.sections), n=1)
        if close:
            return ConfigError(f"unknown setting {key!r} (did you mean "
                               f"{close[0]}.{key.partition('.')[2]}?); sections are "
                               f"{', '.join(sorted(cfg.sections))}")
    if section in cfg.sections and "." in key:
        fields = sorted(f.name for f in dataclasses.fields(cfg.sections[section]))
        close = difflib.get_close_matches(key.partition(".")[2], fields, n=1)
        guess = f" (did you mean {section}.{close[0]}?)" if close else ""
        return ConfigError(f"unknown setting {key!r}{guess}; {section} has {', '.join(fields)}")
    return ConfigError(f"unknown setting {key!r}; sections are {', '.join(sorted(cfg.sections))}")


def set_value(cfg: Config, key: str, value: Any) -> None:
    parts = key.split(".")
    section = cfg.sections.get(parts[0]) if len(parts) == 2 else None
    if section is None or parts[1] not in {f.name for f in dataclasses.fields(section)}:
        raise _unknown(cfg, key)
    if key == "model.family" and value != cfg.family:
        raise ConfigError(f"model.family is chosen before the other settings; got {value!r} "
                          f"after {cfg.family!r}")
    setattr(section, parts[1], _coerce(key, value, getattr(section, parts[1])))


def merge(cfg: Config, table: dict[str, Any], source: str) -> None:
    for section, values in table.items():
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: {section!r} must be a [section] table")
        for name, value in values.items():
            try:
                set_value(cfg, f"{section}.{name}", value)
            except ConfigError as e:
                raise ConfigError(f"{source}: {e}") from None


def read_toml(path: Path) -> dict[str, Any]:
    try:
        # A byte-order mark, which some Windows editors write, is accepted as Python's
        # utf-8-sig reads it: TOML itself does not allow one.
        return tomllib.loads(path.read_bytes().decode("utf-8-sig"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e}); {TOML_HINT}") from None
    except UnicodeDecodeError as e:  # tomllib decodes the bytes first, and says nothing of it
        raise ConfigError(f"{path}: not valid TOML (not UTF-8 text: byte "
                          f"{e.object[e.start]:#04x} at position {e.start}); {TOML_HINT}"
                          ) from None


def parse_override(text: str) -> tuple[str, Any]:
    """`section.key=value`; the value is read as TOML (1e-3, true, "x"), else as a bare string."""
    key, sep, raw = text.partition("=")
    if not sep:
        raise ConfigError(f"--set needs section.key=value, got {text!r}")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip(), value


def _family_of(table: dict[str, Any], overrides: Sequence[tuple[str, Any]], source: str) -> str:
    """model.family, resolved before anything else: the file's, unless an override names one."""
    model = table.get("model", {})
    family = model.get("family", DEFAULT_FAMILY) if isinstance(model, dict) else DEFAULT_FAMILY
    for key, value in overrides:
        if key == "model.family":
            family, source = value, "--set"
    try:
        family_spec(family)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None
    return family


def build(table: dict[str, Any], source: str, overrides: Sequence[str] = ()) -> Config:
    """The dataclass defaults of the table's family, then the table, then the overrides."""
    pairs = [parse_override(text) for text in overrides]
    cfg = Config(_family_of(table, pairs, source))
    merge(cfg, {s: {k: v for k, v in values.items() if f"{s}.{k}" != "model.family"}
                if isinstance(values, dict) else values for s, values in table.items()}, source)
    for key, value in pairs:
        if key != "model.family":
            set_value(cfg, key, value)
    try:
        return cfg.validate()
    except ConfigError as e:
        # A bad value that the file set, and no override replaced, is the file's to fix.
        in_file = {f"{s}.{k}" for s, values in table.items() if isinstance(values, dict)
                   for k in values}
        if e.key in in_file - {k for k, _ in pairs}:
            raise ConfigError(f"{source}: {e}", e.key) from None
        raise


@dataclass(frozen=True)
class Experiment:
    """The [experiment] table of an experiment file: what it is, not a setting."""

    name: str  # the file's stem, which is also its output.name
    description: str = ""  # one line
    paper: str = ""  # what its source reports of it, stated here only
    source: str = ""  # the seed document it reproduces; empty: the paper
    base: str = ""  # an experiment whose settings this one changes (its name or path)
    hardware: str = ""  # "gpu": too big for a CPU (bench skips it there); empty: any


def _experiment(path: Path, table: dict[str, Any]) -> Experiment:
    info = table.get("experiment", {})
    fields = {f.name for f in dataclasses.fields(Experiment)} - {"name"}
    if not isinstance(info, dict) or set(info) - fields or not all(
            isinstance(v, str) for v in info.values()):
        raise ConfigError(f"{path}: [experiment] holds only {', '.join(sorted(fields))}, "
                          f"as strings")
    if info.get("hardware", "") not in ("", "gpu"):
        raise ConfigError(f"{path}: [experiment] hardware must be \"gpu\" or absent, got "
                          f"{info['hardware']!r}")
    return Experiment(path.stem, **info)


def experiments() -> dict[str, Experiment]:
    """Every experiment file's [experiment] table, by name: the reference first."""
    paths = sorted(EXPERIMENTS_DIR.glob("*.toml"), key=lambda p: (p.stem != "default", p.stem))
    return {p.stem: _experiment(p, read_toml(p)) for p in paths}


def experiment_file(name: str | Path) -> Path:
    """A config file's path, or the shipped experiment of that name (`batch16`, `batch16.toml`)."""
    path = Path(name)
    if path.is_file():
        return path
    known = experiments()
    if path.parent == Path() and path.stem in known and path.suffix in ("", ".toml"):
        return EXPERIMENTS_DIR / f"{path.stem}.toml"
    raise ConfigError(f"{name}: no such config file or experiment; experiments: "
                      f"{', '.join(known)}")


def load(path: str | Path | None = None, overrides: Sequence[str] = ()) -> Config:
    """The experiment file at `path` or of that name (none: the defaults) with
    `section.key=value` overrides."""
    if path is None:
        return build({}, "defaults", overrides)
    path = experiment_file(path)
    table = read_toml(path)
    if not table:  # an empty file is the defaults; more likely a save or a copy that failed
        raise ConfigError(f"{path}: holds no settings; write the ones to change in it ("
                          f"{TOML_HINT}), or leave out --config for the defaults")
    return build(settings(Path(path), table), str(path), overrides)


def settings(path: Path, table: dict[str, Any], seen: tuple[str, ...] = ()) -> dict[str, Any]:
    """An experiment file's settings on top of its base's, section by section."""
    base = _experiment(path, table).base
    own = {k: v for k, v in table.items() if k != "experiment"}
    if not base:
        return own
    if Path(base).stem in (*seen, path.stem):
        raise ConfigError(f"{path}: [experiment] base = {base!r} leads back to "
                          f"{path.stem}; a base must not build on itself")
    base_path = experiment_file(base)
    merged = settings(base_path, read_toml(base_path), (*seen, path.stem))
    for section, values in own.items():
        if isinstance(values, dict) and isinstance(merged.get(section), dict):
            merged[section] = {**merged[section], **values}
        else:
            merged[section] = values
    return merged


def from_dict(table: dict[str, Any], source: str) -> Config:
    """The settings of a table read from `source`, whose name every error starts with."""
    try:
        return build(table, source)
    except ConfigError as e:
        raise ConfigError(str(e) if str(e).startswith(source) else f"{source}: {e}",
                          e.key) from None


def read_run_config(run: str | Path) -> Config:
    """The settings of a run directory, from its config.toml: the one reader of it."""
    path = Path(run) / "config.toml"
    if not path.is_file():
        raise ConfigError(f"{run}: not a run directory (no config.toml); name a folder that "
                          f"python -m keras_ganime.train made, such as runs/00000-default")
    # Before its settings: a newer version's run may hold settings this one does not know.
    if (problem := run_json_problem(Path(run))) is not None:
        raise ConfigError(problem)
    return from_dict(read_toml(path), str(path))


def to_dict(cfg: Config) -> dict[str, dict[str, Any]]:
    return {name: dataclasses.asdict(section) for name, section in cfg.sections.items()}


def to_toml(cfg: Config) -> str:
    lines = []
    for section, values in to_dict(cfg).items():
        lines.append(f"[{section}]")
        for name, value in values.items():
            if isinstance(value, bool):
                text = "true" if value else "false"
            elif isinstance(value, str):
                text = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
            else:
                text = repr(value)
            lines.append(f"{name} = {text}")
        lines.append("")
    return "\n".join(lines)
