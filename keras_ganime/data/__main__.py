"""python -m keras_ganime.data: prepare, draw, split, fetch or describe a dataset (see the package's
docstring, which --help prints)."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from keras_ganime import data, errors
from keras_ganime.data import (
    FITS,
    RESAMPLES,
    fetch,
    prepare,
    read_h5,
    synth,
    write_h5,
)
from keras_ganime.data.tagged import load_tagged_faces, split

# The subsets' draw: a permutation of the train split by this seed, each subset its first N
# (a smaller subset inside every larger one).
SUBSET_SEED = 0


def split_tagged(src: str | Path, out_dir: str | Path, subsets: Sequence[int] = ()
                 ) -> list[Path]:
    """A folder of tagged faces (images/ and tags.csv, as ../shared/data/anime-faces-64) ->
    OUT_DIR/train.h5 and OUT_DIR/held-out.h5, split as the anime encoder was trained and tested
    (data.tagged.split): a GAN trained on the first can be scored against the second, faces that
    neither it nor the encoder has seen. Each N of `subsets` adds OUT_DIR/train-N.h5, N faces of
    the train split drawn at random (SUBSET_SEED), for training on a small set."""
    faces = load_tagged_faces(src)
    train, held_out = split(len(faces.images))
    if any(not 2 <= n <= len(train) for n in subsets):
        raise errors.Error(f"--subset: each N must be from 2 to the {len(train)} faces of the "
                           f"train split, got {', '.join(map(str, subsets))}")
    order = np.random.default_rng(SUBSET_SEED).permutation(train)
    parts = {"train": train, "held-out": held_out,
             **{f"train-{n}": np.sort(order[:n]) for n in subsets}}
    out_dir = Path(out_dir)
    for name, index in parts.items():
        drawn = name.startswith("train-")
        subset = {"subset_of": "train", "subset_seed": SUBSET_SEED} if drawn else {}
        write_h5(out_dir / f"{name}.h5", faces.images[index], faces.hair[index],
                 faces.hair_names, [faces.filenames[i] for i in index],
                 {"hair": (faces.hair[index], tuple(faces.hair_names)),
                  "eyes": (faces.eyes[index], tuple(faces.eye_names))},
                 made={"by": "split", "source": str(Path(src).resolve()), "part": name,
                       "of": len(faces.images), **subset})
    return [out_dir / f"{name}.h5" for name in parts]


@errors.command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m keras_ganime.data", description=data.__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare",
                       help="a folder of images (flat or one sub-folder per class) -> HDF5")
    p.add_argument("src", help="folder of images")
    p.add_argument("out", help="output HDF5 file")
    p.add_argument("--size", type=int, default=64, help="output side in pixels (default 64)")
    p.add_argument("--fit", choices=FITS, default="stretch",
                   help="stretch: resize to the square (default); pad: keep the aspect ratio "
                        "and fill the rest with black bars (the paper's BEGAN data)")
    p.add_argument("--resample", choices=list(RESAMPLES), default="lanczos",
                   help="lanczos (default, antialiased) or nearest (carpedm20/BEGAN-tensorflow's)")
    p.add_argument("--workers", type=int, default=None,
                   help="decoding processes (default: all cores)")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.add_argument("--labels", default="", metavar="CSV|folders",
                   help="each image's attributes: a CSV file (image,hair,eyes: one column per "
                        "attribute; or image,tags with tags such as 'blue hair red eyes'), or "
                        "folders (the sub-folder, as the attribute character)")
    s = sub.add_parser("synth", help="draw the built-in synthetic faces into HDF5")
    s.add_argument("out", help="output HDF5 file")
    s.add_argument("--n", type=int, default=20000, help="number of faces (default 20000)")
    s.add_argument("--size", type=int, default=64, help="side in pixels (default 64)")
    s.add_argument("--seed", type=int, default=0)
    t = sub.add_parser("split", help="tagged faces (images/, tags.csv) -> train.h5 and "
                                     "held-out.h5, the anime encoder's split")
    t.add_argument("src", help="folder with images/ and tags.csv")
    t.add_argument("out_dir", help="folder for train.h5 and held-out.h5")
    t.add_argument("--subset", type=int, nargs="+", default=[], metavar="N",
                   help="also train-N.h5: N faces of the train split drawn at random (a "
                        "smaller one inside each larger), to train on a small set")
    i = sub.add_parser("info", help="a prepared HDF5 file's images, classes, format and how it "
                                    "was made")
    i.add_argument("file", help="HDF5 file")
    g = sub.add_parser("fetch", help="download, check and unzip a public dataset, then prepare it "
                                     "(keras_ganime/data/fetch.py)")
    g.add_argument("name", choices=["animeface"],
                   help="animeface: nagadomi's animeface-character-dataset")
    g.add_argument("--url", default=None, help="download from here instead of the author's page")
    g.add_argument("--from-zip", metavar="PATH", default=None,
                   help="use this zip, downloaded by hand, instead of downloading")
    g.add_argument("--out", default="data/animeface.h5",
                   help="output HDF5 file (default data/animeface.h5); the zip goes beside it")
    g.add_argument("--size", type=int, default=64, help="output side in pixels (default 64)")
    g.add_argument("--force", action="store_true", help="replace OUT if it exists")
    args = parser.parse_args(argv)
    if args.command == "info":
        print(data.info(args.file))
    elif args.command == "split":
        for path in split_tagged(args.src, args.out_dir, args.subset):
            print(f"wrote {path} ({len(read_h5(path).images)} faces)")
    elif args.command == "fetch":
        print(fetch.fetch_animeface(args.out, args.url or fetch.ANIMEFACE_URL,
                                    args.from_zip, args.size, args.force))
    elif args.command == "prepare":
        # No progress bar into a pipe or log: stderr then holds just the one-line error.
        print(prepare(args.src, args.out, args.size, args.workers, args.force,
                      progress=sys.stderr.isatty(), fit=args.fit, resample=args.resample,
                      labels=args.labels))
    else:
        start = time.perf_counter()
        out = synth(args.out, args.n, args.size, args.seed, progress=sys.stderr.isatty())
        print(f"wrote {args.n} synthetic faces to {out} in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
