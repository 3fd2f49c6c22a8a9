"""A run's fixed-noise sample frames as one looping GIF; `python -m keras_ganime.animate RUN`.

    python -m keras_ganime.animate runs/00007-batch16    # writes runs/00007-batch16/training.gif
    python -m keras_ganime.animate runs/00007-batch16 --out b16.gif --ms 100
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from keras_ganime import errors
from keras_ganime.images import viz


class AnimateError(errors.Error):
    """A request that cannot be carried out; its message is one line."""


def sample_frames(run: Path) -> list[Path]:
    """samples/NNNNNNN.png in step order: sorted by number, as the zero padding runs out at
    ten million steps."""
    frames = [p for p in (run / "samples").glob("*.png") if p.stem.isdigit()]
    return sorted(frames, key=lambda p: int(p.stem))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m keras_ganime.animate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", metavar="RUN", help="a run directory")
    p.add_argument("--out", metavar="FILE.gif", help="the GIF to write (default RUN/training.gif)")
    p.add_argument("--ms", type=int, default=200, help="milliseconds per frame (default 200)")
    return p.parse_args(argv)


def animate_run(run: Path, out: Path, ms: int) -> str:
    """Writes the GIF and says so."""
    if ms <= 0:
        raise AnimateError(f"--ms must be positive, got {ms}")
    if not run.is_dir():
        raise AnimateError(f"{run}: no such run directory")
    frames = sample_frames(run)
    if not frames:
        raise AnimateError(f"{run}: no sample frames in {run / 'samples'}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        viz.animate(frames, out, ms)
    except OSError as e:
        raise AnimateError(f"{out} not written: {e}") from None
    first, last = int(frames[0].stem), int(frames[-1].stem)
    return f"wrote {out} ({len(frames)} frames, steps {first} to {last}, {ms} ms each)"


@errors.command
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run = Path(args.run)
    out = Path(args.out) if args.out else run / "training.gif"
    print(animate_run(run, out, args.ms))
    return 0


if __name__ == "__main__":
    sys.exit(main())
