"""One HTML page from every run under runs/, beside what the paper (or the source) reports;
`make report`.

    python -m keras_ganime.report [--runs runs] [--out report] [--steps 30000,100000]

Runs are grouped by experiment (output.name); several seeds of one experiment are summarised by
their mean and spread. Per experiment the page shows the loss curves (as the paper's Figures 3, 5
and 7), the fixed-noise grids at the chosen steps side by side (as its Figures 2, 4 and 6), the
metric curves, a table of the measured numbers next to the source's words, and per run the
losses and D's real and fake scores at a few steps (as the table of Anik et al.'s report). The
page links only to PNG files written beside it, so the folder can be copied anywhere.
"""

from __future__ import annotations

import argparse
import html
import json
import shutil
import statistics
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from keras_ganime import config as config_lib
from keras_ganime import errors, families
from keras_ganime.config import Config
from keras_ganime.images import viz
from keras_ganime.runs import atomic_write, read_csv
from keras_ganime.settings import ConfigError

GRID_COLUMNS = 4  # chosen steps shown when --steps is not given
TABLE_METRICS = ("fid_anime", "kid_anime", "swd", "fid_inception", "kid_inception")


class ReportError(errors.Error):
    """Nothing to report, or a folder that cannot be used; its message is one line."""


@dataclass
class Run:
    path: Path
    cfg: Config
    info: dict
    losses: list[dict[str, float]]
    scores: list[dict[str, float]]  # metrics.csv, then evaluate's metrics.json at other steps
    samples: dict[int, Path] = field(default_factory=dict)

    @property
    def seed(self) -> int:
        return self.cfg.train.seed

    @property
    def last_step(self) -> int:
        return self.losses[-1]["step"] if self.losses else 0

    def best(self, name: str) -> float | None:
        return min((s[name] for s in self.scores if name in s), default=None)

    @property
    def images_per_s(self) -> float | None:
        # The first logged rows include tracing and warm-up: the median skips past them.
        speeds = [r["images_per_s"] for r in self.losses[1:]]
        return statistics.median(speeds) if speeds else None


def read_run(path: Path) -> Run:
    """The run in path; ReportError, saying why, for a folder that is not one or not readable."""
    try:
        cfg = config_lib.read_run_config(path)
        info = json.loads((path / "run.json").read_text()) if (path / "run.json").is_file() else {}
    except (ConfigError, json.JSONDecodeError, OSError) as e:
        raise ReportError(str(e).splitlines()[0]) from None
    scores = read_csv(path / "metrics.csv")
    logged = {r["step"]: r for r in scores}
    for file in sorted(path.glob("eval/*/metrics.json")):
        row = json.loads(file.read_text())
        if row["step"] in logged:  # what evaluate adds to a step training scored (cond_acc)
            logged[row["step"]].update({k: v for k, v in row.items()
                                        if k not in logged[row["step"]]})
        else:
            scores.append(row)
    scores.sort(key=lambda r: r["step"])
    samples = {int(p.stem): p for p in (path / "samples").glob("*.png") if p.stem.isdigit()}
    return Run(path, cfg, info, read_csv(path / "loss.csv"), scores, samples)


def chosen_steps(runs: list[Run], wanted: list[int] | None) -> list[int]:
    """Steps at which every run of the experiment that has grids has one: the ones asked for
    (each moved to the nearest such step at or below it); else the runs' milestones reached and
    their failure steps; else up to GRID_COLUMNS spread evenly, with the failure steps."""
    with_grids = [set(r.samples) for r in runs if r.samples]
    common = sorted(set.intersection(*with_grids)) if with_grids else []
    if not common:
        return []
    failed = {int(r.info["failed_at"]) for r in runs if "failed_at" in r.info}
    if not wanted:
        reached = {m for r in runs for m in r.cfg.milestones() if m <= common[-1]}
        if reached:
            wanted = sorted(reached | failed)
    if wanted:
        return sorted({max((s for s in common if s <= w), default=common[0]) for w in wanted})
    if len(common) <= GRID_COLUMNS:
        picks = common
    else:
        picks = [common[round(i * (len(common) - 1) / (GRID_COLUMNS - 1))]
                 for i in range(GRID_COLUMNS)]
    at_failure = {max((s for s in common if s <= f), default=common[0]) for f in failed}
    return sorted(set(picks) | at_failure)


def at_step(rows: list[dict[str, float]], step: int, name: str) -> float | None:
    """The metric at the last evaluation at or before step."""
    values = [r[name] for r in rows if r["step"] <= step and name in r]
    return values[-1] if values else None


def spread(values: list[float | None], digits: int = 3) -> str:
    """mean ± standard deviation over seeds, with how many seeds had a value if not all."""
    present = [v for v in values if v is not None]
    if not present:
        return "–"
    text = f"{statistics.fmean(present):.{digits}g}"
    if len(present) > 1:
        text += f" ± {statistics.stdev(present):.2g}"
    if len(present) < len(values):
        text += f" ({len(present)} of {len(values)})"
    return text


def failures(runs: list[Run]) -> str:
    failed = [r.info.get("failed_at") for r in runs]
    return spread(failed, 6) if any(f is not None for f in failed) else "no failure"


def paper_says(name: str) -> str:
    """The [experiment] table's `paper` of the experiment file named as the runs' output.name."""
    known = config_lib.experiments().get(name)
    return known.paper if known and known.paper else "not one of the paper's experiments."


def sentence_case(text: str) -> str:
    """The first letter upper case, the rest as written (names such as NVlabs keep theirs)."""
    return text[:1].upper() + text[1:]


def who_says(name: str) -> str:
    """Whose report `paper_says` quotes: the experiment's source document, else the paper."""
    known = config_lib.experiments().get(name)
    return known.source if known and known.source else "the paper"


SCORE_ROWS = 6


def score_rows(losses: list[dict[str, float]], scores: Callable[[Mapping[str, float]],
               dict[str, float] | None] | None) -> list[dict[str, float]]:
    """The family's score table of a run (FamilySpec.scores: for a DCGAN, Anik et al.'s per-epoch
    line), each row of one logged step (as the report's per-epoch lines are of the epoch's last
    batch), at up to SCORE_ROWS logged steps spread evenly, the last included; [] for a family
    without one."""
    if not losses or scores is None or scores(losses[0]) is None:
        return []
    picks = sorted({round(i * (len(losses) - 1) / (SCORE_ROWS - 1)) for i in range(SCORE_ROWS)})
    return [{"step": losses[i]["step"], **scores(losses[i])} for i in picks]


def score_table(rows: list[dict[str, float]]) -> str:
    if not rows:
        return ""
    columns = [c for c in rows[0] if c != "step"]
    head = "".join(f"<th>{c}</th>" for c in ("mini-batch", *columns))
    body = "".join("<tr>" + f"<td>{r['step']:,}</td>" + "".join(
        f"<td>{r[c]:.4f}</td>" for c in columns) + "</tr>" for r in reversed(rows))
    return f'<table class="scores"><tr>{head}</tr>{body}</table>'


def table_rows(runs: list[Run], steps: list[int]) -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    names = [n for n in TABLE_METRICS if any(n in r for run in runs for r in run.scores)]
    for name in names:
        for step in steps:
            rows.append((f"{name} at {step:,}", spread([at_step(r.scores, step, name)
                                                        for r in runs])))
        rows.append((f"{name}, best", spread([r.best(name) for r in runs])))
    for name in ("dup_anime", "dup_inception", "checkerboard"):
        if any(name in s for r in runs for s in r.scores):
            rows.append((f"{name}, last", spread([at_step(r.scores, r.last_step, name)
                                                  for r in runs])))
    rows.append(("failed at step", failures(runs)))
    rows.append(("mini-batches run", spread([r.last_step for r in runs], 6)))
    rows.append(("images/s", spread([r.images_per_s for r in runs])))
    return rows


def _copy(src: Path, out: Path, name: str) -> str:
    shutil.copyfile(src, out / name)
    return name


def experiment_html(name: str, runs: list[Run], out: Path, wanted: list[int] | None) -> str:
    runs = sorted(runs, key=lambda r: (r.seed, r.path.name))
    steps = chosen_steps(runs, wanted)
    note = families.SPECS[runs[0].cfg.family].note
    paper = paper_says(name)
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>"
                   for k, v in table_rows(runs, steps))
    seeds = ", ".join(str(r.seed) for r in runs)
    parts = [f'<section id="{html.escape(name)}"><h2>{html.escape(name)}</h2><div class="row">',
             (f"<table><tr><th>measured: {len(runs)} run(s), seeds {seeds}</th><th>mean ± sd</th>"
             f"</tr>{rows}</table>"),
             (f'<p class="paper"><b>{html.escape(sentence_case(who_says(name)))} reports:</b> '
              f'{html.escape(paper)}</p>'),
             (f'<p class="paper"><b>Read with:</b> {html.escape(note)}</p>' if note else ""),
             "</div>"]
    for run in runs:
        label = f"{run.path.name} (seed {run.seed})"
        reason = run.info.get("reason")
        failures = run.info.get("eval_failures", 0)
        # A failed evaluation leaves no row in metrics.csv: the table's "at" a step reads the one
        # before it, so the page says so.
        eval_note = (f"{failures} evaluation(s) failed, the last at step "
                     f"{run.info.get('last_eval_error_step')}: {run.info.get('last_eval_error')}"
                     if failures else "")
        warmup = getattr(run.cfg.train, "warmup_steps", 0)
        parts.append(f"<h3>{html.escape(label)}</h3>"
                     + "".join(f'<p class="fail">{html.escape(text)}</p>'
                               for text in (reason, eval_note) if text)
                     + (f"<p>G's warm-up held its updates for the first {warmup:,} steps "
                        f"(train.warmup_steps): its loss starts at step {warmup + 1:,}.</p>"
                        if warmup else "")
                     + '<div class="row">')
        if run.losses:
            loss_png = f"{run.path.name}-loss.png"
            spec = families.SPECS[run.cfg.family]
            viz.loss_plot(run.losses, spec.plots(run.cfg), out / loss_png, label)
            parts.append(f'<img class="loss" src="{loss_png}" alt="losses of {label}">')
            parts.append(score_table(score_rows(run.losses, spec.scores)))
        for s in (s for s in steps if s in run.samples):
            grid = _copy(run.samples[s], out, f"{run.path.name}-{s:07d}.png")
            parts.append(f'<figure><img class="grid" src="{grid}" alt="step {s}">'
                         f"<figcaption>mini-batch {s:,}</figcaption></figure>")
        parts.append("</div>")
        confusion = next((s["confusion"] for s in reversed(run.scores) if "confusion" in s),
                         None)
        if confusion:  # a conditional run's latest evaluation, by the encoder's heads
            png = f"{run.path.name}-confusion.png"
            viz.confusion_plot(confusion, out / png, f"{label}: what was asked, what was read")
            parts.append(f'<img class="plot" src="{png}" alt="confusion of {label}">')
    names = [n for n in (*TABLE_METRICS, "dup_anime", "checkerboard")
             if any(n in s for r in runs for s in r.scores)]
    if names:
        metrics_png = f"{name}-metrics.png"
        viz.metric_plot({f"seed {r.seed}": r.scores for r in runs}, names, out / metrics_png,
                        name)
        parts.append(f'<img class="plot" src="{metrics_png}" alt="metrics of {name}">')
    parts.append("</section>")
    return "\n".join(parts)


def summary_row(name: str, runs: list[Run]) -> str:
    """One line of the table at the top of the page."""
    cells = [f'<a href="#{html.escape(name)}">{html.escape(name)}</a>', str(len(runs)),
             spread([r.last_step for r in runs], 6),
             spread([r.best("fid_anime") for r in runs]), failures(runs),
             spread([r.images_per_s for r in runs]), html.escape(paper_says(name))]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


STYLE = """body{font-family:sans-serif;margin:2em}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:.2em .6em}
.row{display:flex;gap:1em;flex-wrap:wrap;align-items:flex-start}figure{margin:0;text-align:center}
.grid{width:260px;image-rendering:pixelated}.loss{width:460px}.plot{max-width:100%}
.paper{background:#f4f0e0;padding:.6em;max-width:28em}.fail{color:#b00}"""


def read_runs(runs_dir: Path) -> tuple[list[Run], list[str]]:
    """The runs in runs_dir, and a line for each folder skipped, saying why."""
    runs, skipped = [], []
    for path in sorted(p for p in runs_dir.iterdir() if p.is_dir()):
        try:
            runs.append(read_run(path))
        except ReportError as e:
            skipped.append(f"skipped {path.name}: {e}")
    return runs, skipped


def build(runs_dir: Path, out: Path, wanted: list[int] | None = None
          ) -> tuple[Path, list[str]]:
    """Writes out/index.html and its PNGs; returns the page's path and the skipped folders."""
    if not runs_dir.is_dir():
        raise ReportError(f"{runs_dir}: no such folder")
    runs, skipped = read_runs(runs_dir)
    if not runs:
        raise ReportError(f"{runs_dir}: holds no run directory"
                          + (f" that could be read ({skipped[0]})" if skipped else ""))
    groups: dict[str, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.cfg.output.name, []).append(run)
    out.mkdir(parents=True, exist_ok=True)
    known = config_lib.experiments()
    order = [n for n in known if n in groups] + sorted(set(groups) - set(known))
    index = "".join(summary_row(n, groups[n]) for n in order)
    body = "\n".join(experiment_html(n, groups[n], out, wanted) for n in order)
    page = (f"<!doctype html><html><head><meta charset='utf-8'><title>keras_ganime report"
            f"</title><style>{STYLE}</style></head><body><h1>keras_ganime: runs against the "
            f"paper</h1><p>{len(runs)} run(s) from {html.escape(str(runs_dir))}.</p>"
            + "".join(f'<p class="fail">{html.escape(line)}</p>' for line in skipped) +
            f"<table><tr><th>experiment</th><th>runs</th><th>mini-batches</th>"
            f"<th>best fid_anime</th><th>failed at</th><th>images/s</th>"
            f"<th>the source reports</th></tr>{index}</table>"
            f"{body}</body></html>\n")
    atomic_write(out / "index.html", page)
    return out / "index.html", skipped


@errors.command
def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m keras_ganime.report", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", default="runs", help="folder of run directories (default runs)")
    p.add_argument("--out", default="report", help="folder for index.html and its PNGs")
    p.add_argument("--steps", help="comma-separated steps for the grids and the table "
                                   "(default: up to 4 spread over each experiment's runs)")
    args = p.parse_args(argv)
    try:
        wanted = [int(s) for s in args.steps.split(",")] if args.steps else None
    except ValueError:
        raise ReportError(f"--steps must be comma-separated integers, got {args.steps!r}"
                          ) from None
    page, skipped = build(Path(args.runs), Path(args.out), wanted)
    for line in skipped:
        print(line, file=sys.stderr)
    print(f"wrote {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
