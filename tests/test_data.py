"""keras_ganime.data: folder of images -> HDF5 (`prepare`), its CLI, and reading it back.

Images are made on the fly with Pillow, tiny (20x30 sources, --size 16), so the file runs in
seconds; one test uses the real anime faces in ../shared/data and skips where they are absent.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
from PIL import Image, features

from keras_ganime import data
from keras_ganime.data import DataError, load_images, prepare, read_h5, tagged, to_rgb, write_h5
from keras_ganime.data import __main__ as data_command
from tests.faces import tagged_faces

REPO = Path(__file__).resolve().parents[1]
FACES = REPO.parent / "shared" / "data" / "anime-faces-64" / "images"
SRC_SIZE = (20, 30)  # width, height: not square, not the output size
SIZE = 16
RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def save(path: Path, img: Image.Image, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, **kwargs)
    return path


def solid(colour=RED, mode="RGB", size=SRC_SIZE) -> Image.Image:
    return Image.new(mode, size, colour)


def noise(seed: int = 0, size=SRC_SIZE) -> Image.Image:
    """Random pixels: compresses badly, so cutting the file in half loses pixel data."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), np.uint8))


def run(src: Path, out: Path, **kwargs) -> tuple[data.PrepareSummary, data.ImageSet]:
    kwargs = {"size": SIZE, "workers": 1, "progress": False, **kwargs}
    summary = prepare(src, out, **kwargs)
    return summary, read_h5(out)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "keras_ganime.data", "prepare", *map(str, args)],
        check=False, capture_output=True, text=True, cwd=REPO, timeout=120,
    )


def assert_one_line_error(text: str, *needles: str) -> None:
    assert "\n" not in text.strip(), text
    assert "Traceback" not in text
    for needle in needles:
        assert needle in text


# --- layouts -------------------------------------------------------------------------------


def test_flat_folder_has_no_classes(tmp_path):
    src = tmp_path / "flat"
    save(src / "b.png", solid(GREEN))
    save(src / "a.png", solid(RED))
    save(src / "c.bmp", solid(BLUE))
    summary, ds = run(src, tmp_path / "out.h5")
    assert summary.count == 3 and summary.bad == [] and summary.ignored == 0
    assert ds.filenames == ["a.png", "b.png", "c.bmp"]  # sorted, relative
    assert ds.class_names == []
    assert ds.labels.dtype == np.int32 and ds.labels.tolist() == [-1, -1, -1]
    assert ds.images.shape == (3, SIZE, SIZE, 3) and ds.images.dtype == np.uint8
    for img, colour in zip(ds.images, [RED, GREEN, BLUE]):
        assert (img == colour).all()


def test_class_folders_give_sorted_classes_and_matching_labels(tmp_path):
    src = tmp_path / "thumb"  # like nagadomi's thumb/<id>_<name>/*.png
    save(src / "025_shana" / "b.png", solid(RED))
    save(src / "025_shana" / "a.png", solid(RED))
    save(src / "003_haruhi" / "x.png", solid(GREEN))
    save(src / "100_ミク" / "y.jpg", solid(BLUE))
    summary, ds = run(src, tmp_path / "out.h5")
    assert summary.count == 4
    assert ds.class_names == ["003_haruhi", "025_shana", "100_ミク"]
    assert ds.filenames == ["003_haruhi/x.png", "025_shana/a.png", "025_shana/b.png",
                            "100_ミク/y.jpg"]
    for name, label, img in zip(ds.filenames, ds.labels, ds.images):
        assert ds.class_names[label] == name.split("/")[0]
        expected = {"003_haruhi": GREEN, "025_shana": RED, "100_ミク": BLUE}[name.split("/")[0]]
        assert np.abs(img.astype(int) - expected).max() <= 8, name
    assert ds.labels.tolist() == [0, 1, 1, 2]


# --- formats and modes ---------------------------------------------------------------------


def _grey16(value: int) -> Image.Image:
    return Image.fromarray(np.full(SRC_SIZE[::-1], value, np.uint16))


def _palette(transparent: bool) -> Image.Image:
    img = Image.new("P", SRC_SIZE, 1)
    img.putpalette([0, 0, 255, 255, 0, 0] + [0] * 762)  # 0 blue, 1 red
    if transparent:
        img.info["transparency"] = 1
    return img


# name, file, image, save options, mode Pillow opens it in, expected RGB, tolerance
CASES = [
    ("png-rgb", "x.png", solid(RED), {}, "RGB", RED, 0),
    ("jpeg-rgb", "x.jpg", solid(RED), {"quality": 95}, "RGB", RED, 6),
    ("bmp-rgb", "x.bmp", solid(BLUE), {}, "RGB", BLUE, 0),
    ("gif-palette", "x.gif", _palette(False), {}, "P", RED, 0),
    ("gif-palette-transparent", "x.gif", _palette(True), {"transparency": 1}, "P", WHITE, 0),
    ("png-palette-transparent", "x.png", _palette(True), {"transparency": 1}, "P", WHITE, 0),
    ("png-rgba-clear", "x.png", solid((255, 0, 0, 0), "RGBA"), {}, "RGBA", WHITE, 0),
    ("png-rgba-opaque", "x.png", solid((0, 255, 0, 255), "RGBA"), {}, "RGBA", GREEN, 0),
    ("png-rgba-half", "x.png", solid((255, 0, 0, 128), "RGBA"), {}, "RGBA", (255, 127, 127), 1),
    ("png-rgb-trns", "x.png", solid(RED), {"transparency": RED}, "RGB", WHITE, 0),
    ("png-l", "x.png", solid(100, "L"), {}, "L", (100, 100, 100), 0),
    ("jpeg-l", "x.jpg", solid(100, "L"), {"quality": 95}, "L", (100, 100, 100), 2),
    ("png-la-clear", "x.png", solid((0, 0), "LA"), {}, "LA", WHITE, 0),
    ("png-la-opaque", "x.png", solid((60, 255), "LA"), {}, "LA", (60, 60, 60), 0),
    ("png-16bit-mid", "x.png", _grey16(32768), {}, "I;16", (128, 128, 128), 1),
    ("png-16bit-white", "x.png", _grey16(65535), {}, "I;16", WHITE, 0),
    ("png-16bit-dark", "x.png", _grey16(200), {}, "I;16", (1, 1, 1), 1),
    ("jpeg-cmyk", "x.jpg", solid((0, 255, 255, 0), "CMYK"), {"quality": 95}, "CMYK", RED, 6),
]
if features.check("webp"):
    CASES.append(("webp-rgb", "x.webp", solid(GREEN), {"lossless": True}, "RGB", GREEN, 0))
    CASES.append(("webp-rgba-clear", "x.webp", solid((0, 0, 255, 0), "RGBA"),
                  {"lossless": True, "exact": True}, "RGBA", WHITE, 0))


@pytest.mark.parametrize(("file", "img", "options", "mode", "expected", "tolerance"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_format_and_mode_come_out_as_rgb(tmp_path, file, img, options, mode, expected,
                                         tolerance):
    path = save(tmp_path / "src" / file, img, **options)
    with Image.open(path) as reopened:
        assert reopened.mode == mode  # the test exercises the conversion it names
    summary, ds = run(tmp_path / "src", tmp_path / "out.h5")
    assert summary.count == 1 and summary.bad == []
    out = ds.images[0]
    assert out.shape == (SIZE, SIZE, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - expected).max() <= tolerance, out[0, 0]


def test_to_rgb_of_in_memory_modes():
    assert np.asarray(to_rgb(solid(1, "1"))).min() == 255
    assert (np.asarray(to_rgb(Image.fromarray(np.full((4, 4), 32768, np.int32))))
            == 128).all()  # 32-bit "I" holding 16-bit data
    assert (np.asarray(to_rgb(Image.fromarray(np.full((4, 4), 77, np.int32)))) == 77).all()
    assert to_rgb(solid((9, 9, 9, 0), "RGBA")).mode == "RGB"


def test_exif_orientation_is_applied(tmp_path):
    arr = np.zeros((32, 32, 3), np.uint8)
    arr[:16] = RED  # top red, bottom blue
    arr[16:] = BLUE
    exif = Image.Exif()
    exif[0x0112] = 3  # rotate 180 degrees on display
    save(tmp_path / "src" / "r.jpg", Image.fromarray(arr), exif=exif, quality=95)
    _, ds = run(tmp_path / "src", tmp_path / "out.h5")
    img = ds.images[0].astype(int)
    assert np.abs(img[1, SIZE // 2] - BLUE).max() < 30  # now on top
    assert np.abs(img[-2, SIZE // 2] - RED).max() < 30


# --- resize --------------------------------------------------------------------------------


def test_every_source_size_comes_out_at_size(tmp_path):
    src = tmp_path / "src"
    for i, wh in enumerate([(20, 30), (100, 50), (9, 9), (16, 16), (64, 64), (33, 17)]):
        save(src / f"{i}.png", noise(i, wh))
        save(src / f"{i}.jpg", noise(i, wh), quality=90)
    summary, ds = run(src, tmp_path / "out.h5")
    assert summary.count == 12
    assert ds.images.shape == (12, SIZE, SIZE, 3) and ds.images.dtype == np.uint8
    assert ds.images.min() >= 0 and ds.images.max() <= 255
    assert ds.images.std() > 10  # noise stays noise-like, not a constant


def test_an_image_already_at_size_is_unchanged(tmp_path):
    src_img = noise(3, (SIZE, SIZE))
    save(tmp_path / "src" / "n.png", src_img)
    _, ds = run(tmp_path / "src", tmp_path / "out.h5")
    np.testing.assert_array_equal(ds.images[0], np.asarray(src_img))


def test_downscale_is_antialiased(tmp_path):
    # A 1-pixel checkerboard: nearest-neighbour would give all 0 or all 255; averaging gives grey.
    board = ((np.indices((64, 64)).sum(0) % 2) * 255).astype(np.uint8)
    save(tmp_path / "src" / "board.png", Image.fromarray(board))
    _, ds = run(tmp_path / "src", tmp_path / "out.h5")
    img = ds.images[0].astype(float)
    assert abs(img.mean() - 127.5) < 4
    assert img.std() < 8


# --- fit and resample: the paper's black bars ----------------------------------------------

AMBER = (255, 200, 40)  # bright in every channel: content is never mistaken for a bar
PAD = 128
# 100x60 -> 128 x round-half-up(60 * 128 / 100 = 76.8) = 128x77; 51 bar rows, 25 above, 26 below.
CONTENT, BAR_BEFORE, BAR_AFTER = 77, 25, 26


def test_pad_gives_a_wide_image_black_bars_of_exactly_25_rows_above_and_26_below(tmp_path):
    save(tmp_path / "src" / "wide.png", solid(AMBER, size=(100, 60)))
    _, ds = run(tmp_path / "src", tmp_path / "out.h5", size=PAD, fit="pad")
    img = ds.images[0]
    assert img.shape == (PAD, PAD, 3)
    assert BAR_BEFORE + CONTENT + BAR_AFTER == PAD
    assert (img[:BAR_BEFORE] == 0).all() and (img[PAD - BAR_AFTER:] == 0).all()
    content = img[BAR_BEFORE:PAD - BAR_AFTER]
    assert content[0].any(axis=-1).all() and content[-1].any(axis=-1).all()  # first, last rows
    assert (content == AMBER).all()  # a solid colour stays solid, full width, no darkened edge


def test_pad_puts_the_bars_of_a_tall_image_left_and_right(tmp_path):
    save(tmp_path / "src" / "tall.png", solid(AMBER, size=(60, 100)))
    _, ds = run(tmp_path / "src", tmp_path / "out.h5", size=PAD, fit="pad")
    img = ds.images[0]
    assert (img[:, :BAR_BEFORE] == 0).all() and (img[:, PAD - BAR_AFTER:] == 0).all()
    assert (img[:, BAR_BEFORE:PAD - BAR_AFTER] == AMBER).all()


@pytest.mark.parametrize("resample", ["lanczos", "nearest"])
def test_pad_of_a_square_image_equals_stretch(resample):
    for side in (40, SIZE):  # resized, and already at size
        img = noise(side, (side, side))
        padded = data.fit_square(img, SIZE, "pad", resample)
        np.testing.assert_array_equal(np.asarray(padded),
                                      np.asarray(data.fit_square(img, SIZE, "stretch", resample)))
    np.testing.assert_array_equal(np.asarray(data.fit_square(noise(1, (SIZE, SIZE)), SIZE, "pad")),
                                  np.asarray(noise(1, (SIZE, SIZE))))


def test_nearest_upscales_a_checker_to_exact_blocks(tmp_path):
    checker = (np.indices((2, 2)).sum(0) % 2 * 255).astype(np.uint8)
    big = np.asarray(data.fit_square(Image.fromarray(checker).convert("RGB"), 4,
                                     resample="nearest"))
    np.testing.assert_array_equal(big[..., 0], np.kron(checker, np.ones((2, 2), np.uint8)))
    # and through prepare's workers' path: an 8x8 one-pixel checker at 16 is 2x2 blocks
    board = (np.indices((8, 8)).sum(0) % 2 * 255).astype(np.uint8)
    save(tmp_path / "src" / "board.png", Image.fromarray(board))
    _, ds = run(tmp_path / "src", tmp_path / "out.h5", resample="nearest")
    np.testing.assert_array_equal(ds.images[0, ..., 1], np.kron(board, np.ones((2, 2), np.uint8)))


def test_default_is_stretch_with_lanczos(tmp_path):
    src_img = noise(5, (100, 60))
    save(tmp_path / "src" / "n.png", src_img)
    _, default = run(tmp_path / "src", tmp_path / "default.h5")
    _, explicit = run(tmp_path / "src", tmp_path / "explicit.h5", fit="stretch",
                      resample="lanczos")
    expected = np.asarray(src_img.resize((SIZE, SIZE), Image.Resampling.LANCZOS))
    np.testing.assert_array_equal(default.images[0], expected)
    np.testing.assert_array_equal(explicit.images[0], expected)


def test_bad_fit_or_resample_is_an_error(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out.h5"
    save(src / "a.png", solid())
    for kwargs in ({"fit": "crop"}, {"resample": "bicubic"}):
        with pytest.raises(DataError, match="crop|bicubic") as info:
            prepare(src, out, size=SIZE, workers=1, progress=False, **kwargs)
        assert "\n" not in str(info.value)
    proc = cli(src, out, "--fit", "crop")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]  # argparse's: usage lines, then the error
    assert last.startswith("python -m keras_ganime.data prepare: error: argument --fit: "
                           "invalid choice: 'crop' (choose from ")  # quoting varies by Python
    assert "stretch" in last and "pad" in last
    assert not out.exists()


# --- bad files -----------------------------------------------------------------------------


def _half(path: Path) -> None:
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


def make_bad_folder(src: Path, good: bool = True) -> set[str]:
    """Writes bad files (and, if good, two good ones) under src; returns the bad names."""
    if good:
        save(src / "a_good.png", solid(RED))
        save(src / "sub" / "b_good.jpg", solid(GREEN), quality=95)
    _half(save(src / "trunc.png", noise(1, (40, 40))))
    _half(save(src / "sub" / "trunc.jpg", noise(2, (40, 40)), quality=95))
    (src / "zero.png").write_bytes(b"")
    (src / "text.jpg").write_text("this is not a JPEG\n")
    return {"trunc.png", "sub/trunc.jpg", "zero.png", "text.jpg"}


def test_bad_files_are_skipped_counted_and_named(tmp_path):
    src = tmp_path / "src"
    bad = make_bad_folder(src)
    (src / "notes.txt").write_text("not an image, by name\n")
    (src / ".hidden.png").write_bytes(b"")  # hidden: neither read nor counted
    summary, ds = run(src, tmp_path / "out.h5")
    assert summary.count == 2
    assert {name for name, _ in summary.bad} == bad
    assert all(why and "\n" not in why for _, why in summary.bad)
    assert summary.ignored == 1  # notes.txt, not counted as bad
    assert ds.filenames == ["a_good.png", "sub/b_good.jpg"]
    assert (ds.images[0] == RED).all()
    assert ds.class_names == ["sub"] and ds.labels.tolist() == [-1, 0]
    text = str(summary)
    assert "wrote 2 images" in text and "skipped 4 image files" in text
    assert "ignored 1 files that are not images by name: notes.txt" in text
    assert all(name in text for name in bad)


def test_a_linked_folder_and_an_animated_image_are_named_in_the_summary(tmp_path):
    """A link to a folder is not followed (it may lead outside, or round in a circle), and an
    animated GIF gives its first frame: both said, neither silently."""
    src, elsewhere = tmp_path / "src", tmp_path / "elsewhere"
    for folder in (src / "own", elsewhere):
        folder.mkdir(parents=True)
        Image.new("RGB", (16, 16), RED).save(folder / "face.png")
    (src / "linked").symlink_to(elsewhere, target_is_directory=True)
    frames = [Image.new("RGB", (16, 16), c) for c in (RED, (0, 0, 255), (0, 255, 0))]
    frames[0].save(src / "own" / "moving.gif", save_all=True, append_images=frames[1:])
    summary, ds = run(src, tmp_path / "out.h5")
    assert ds.filenames == ["own/face.png", "own/moving.gif"]
    assert (ds.images[1] == RED).all()  # the first frame
    text = str(summary)
    assert "did not follow 1 links to folders (a link can lead outside the folder or round in a " \
           "circle): linked/" in text
    assert "kept 1 image files in part:\n  own/moving.gif: took the first of its 3 frames" in text


# --- errors --------------------------------------------------------------------------------


def _missing(tmp_path: Path) -> Path:
    return tmp_path / "no-such-folder"


def _empty(tmp_path: Path) -> Path:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("no images here\n")
    return tmp_path / "empty"


def _only_bad(tmp_path: Path) -> Path:
    make_bad_folder(tmp_path / "bad", good=False)
    return tmp_path / "bad"


FOLDERS = [_missing, _empty, _only_bad]


@pytest.mark.parametrize("make", FOLDERS, ids=lambda f: f.__name__.strip("_"))
def test_unusable_folder_raises_one_line_data_error(tmp_path, make):
    src, out = make(tmp_path), tmp_path / "out.h5"
    with pytest.raises(DataError) as info:
        prepare(src, out, size=SIZE, workers=1, progress=False)
    assert str(src) in str(info.value) and "\n" not in str(info.value)
    assert not out.exists() and not out.with_name(out.name + ".tmp").exists()


def test_size_below_8_is_an_error(tmp_path):
    save(tmp_path / "src" / "a.png", solid())
    with pytest.raises(DataError, match="--size"):
        prepare(tmp_path / "src", tmp_path / "out.h5", size=4, workers=1, progress=False)


def test_existing_out_is_kept_without_force_and_replaced_with_it(tmp_path):
    src, out = tmp_path / "src", tmp_path / "out.h5"
    save(src / "a.png", solid(BLUE))
    out.write_bytes(b"precious")
    with pytest.raises(DataError, match="already exists") as info:
        prepare(src, out, size=SIZE, workers=1, progress=False)
    assert "\n" not in str(info.value) and str(out) in str(info.value)
    assert out.read_bytes() == b"precious"

    proc = cli(src, out, "--size", SIZE)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: ")
    assert_one_line_error(proc.stderr, str(out), "--force")
    assert out.read_bytes() == b"precious"

    proc = cli(src, out, "--size", SIZE, "--workers", 1, "--force")
    assert proc.returncode == 0, proc.stderr
    assert "wrote 1 images" in proc.stdout
    ds = read_h5(out)
    assert ds.images.shape == (1, SIZE, SIZE, 3) and (ds.images == BLUE).all()


# --- parallel ------------------------------------------------------------------------------


class _RedrawingTqdm(data.tqdm):
    """tqdm.update() may return True (it did redraw); prepare must not take that as a result."""

    def update(self, n=1):
        super().update(n)
        return True


def test_parallel_equals_serial(tmp_path, monkeypatch):
    src = tmp_path / "src"
    for i in range(10):
        save(src / f"c{i % 3}" / f"{i}.png", noise(i, (20 + i, 30)))
        save(src / f"c{i % 3}" / f"{i}.jpg", noise(i, (30, 20 + i)), quality=90)
    save(src / "rgba.png", solid((1, 2, 3, 0), "RGBA"))
    (src / "zero.png").write_bytes(b"")
    monkeypatch.setattr(data, "tqdm", _RedrawingTqdm)
    s1, one = run(src, tmp_path / "one.h5", workers=1, progress=True)
    s2, two = run(src, tmp_path / "two.h5", workers=2, progress=True)
    assert s1.count == s2.count == 21
    assert s1.bad == s2.bad and [b for b, _ in s1.bad] == ["zero.png"]
    np.testing.assert_array_equal(one.images, two.images)
    np.testing.assert_array_equal(one.labels, two.labels)
    assert one.filenames == two.filenames and one.class_names == two.class_names


# --- real data -----------------------------------------------------------------------------


def test_real_anime_faces(tmp_path):
    if not FACES.is_dir():
        pytest.skip(f"real data not present: {FACES}")
    names = sorted(p.name for p in FACES.iterdir() if p.suffix == ".jpg")[:300]
    if len(names) < 300:
        pytest.skip(f"fewer than 300 images in {FACES}")
    links = tmp_path / "links"
    links.mkdir()
    for name in names:
        (links / name).symlink_to(FACES / name)
    summary = prepare(links, tmp_path / "faces.h5", progress=False)
    ds = read_h5(tmp_path / "faces.h5")
    assert summary.count == 300 and summary.bad == [] and summary.ignored == 0
    assert ds.images.shape == (300, 64, 64, 3) and ds.images.dtype == np.uint8
    assert ds.images.min() < 30 and ds.images.max() > 225  # real pictures, full range
    assert ds.filenames == names
    assert ds.class_names == [] and (ds.labels == -1).all()
    for i in (0, 7, 299):  # the sources are 64x64 already: bytes as Pillow decodes them
        with Image.open(FACES / names[i]) as img:
            np.testing.assert_array_equal(ds.images[i], np.asarray(img.convert("RGB")))


# --- reading -------------------------------------------------------------------------------


def test_read_h5_rejects_missing_and_non_hdf5_files(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_h5(tmp_path / "missing.h5")
    (tmp_path / "text.h5").write_text("not hdf5\n")
    with pytest.raises(DataError, match="not a keras_ganime HDF5"):
        read_h5(tmp_path / "text.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f.create_dataset("something", data=[1, 2, 3])
    with pytest.raises(DataError, match="not a keras_ganime HDF5"):
        read_h5(tmp_path / "other.h5")


def test_write_read_round_trip_and_load_images_resizes(tmp_path):
    images = np.stack([np.asarray(noise(i, (32, 32))) for i in range(3)])
    write_h5(tmp_path / "d.h5", images, np.array([0, -1, 1]), ["a", "b"], ["x", "y", "z"])
    ds = read_h5(tmp_path / "d.h5")
    np.testing.assert_array_equal(ds.images, images)
    assert ds.labels.tolist() == [0, -1, 1] and ds.class_names == ["a", "b"]
    assert ds.filenames == ["x", "y", "z"]
    assert not (tmp_path / "d.h5.tmp").exists()
    np.testing.assert_array_equal(load_images(str(tmp_path / "d.h5"), 0, 32), images)
    small = load_images(str(tmp_path / "d.h5"), 0, 16)
    assert small.shape == (3, 16, 16, 3) and small.dtype == np.uint8


def test_split_holds_out_the_encoders_tenth(tmp_path):
    """`data split`: tagged faces -> train.h5 and held-out.h5, disjoint, the held-out ones the
    faces the anime encoder was tested on (encoder.split), so that a GAN trained on train.h5 is
    scored against faces neither it nor the encoder has seen."""
    faces = tagged_faces(tmp_path / "faces")
    assert data_command.main(["split", str(faces), str(tmp_path / "out")]) == 0
    train, held = (read_h5(tmp_path / "out" / f"{n}.h5") for n in ("train", "held-out"))
    assert (len(train.images), len(held.images)) == (27, 3)
    _, held_index = tagged.split(30)
    assert sorted(held.filenames) == sorted(f"{i}.png" for i in held_index)
    assert not set(train.filenames) & set(held.filenames)
    np.testing.assert_array_equal(held.images[:, 0, 0, 0], [i * 8 for i in held_index])
    # Every tag kept with its face, the values the same in both files.
    for faces in (train, held):
        index = [int(f.removesuffix(".png")) for f in faces.filenames]
        assert {k: n for k, (_, n) in faces.attributes.items()} == {
            "hair": ("blue", "red"), "eyes": ("brown", "green")}
        np.testing.assert_array_equal(faces.attributes["hair"][0], [i % 2 for i in index])
        np.testing.assert_array_equal(faces.attributes["eyes"][0], [i % 3 > 0 for i in index])


def test_split_subsets_are_drawn_from_the_train_split_each_inside_the_next(tmp_path, capsys):
    """`data split --subset 5 12`: train-5.h5 and train-12.h5, faces of train.h5 alone, the 5
    among the 12, the draw recorded; the same again from a second call; a subset larger than the
    train split is one line."""
    faces = tagged_faces(tmp_path / "faces", size=8)
    names = []
    for out in ("a", "b"):
        assert data_command.main(["split", str(faces), str(tmp_path / out),
                                  "--subset", "5", "12"]) == 0
        names.append({n: read_h5(tmp_path / out / f"train-{n}.h5").filenames for n in (5, 12)})
    assert names[0] == names[1]
    five, twelve = names[0][5], names[0][12]
    train = read_h5(tmp_path / "a" / "train.h5").filenames
    assert (len(five), len(twelve)) == (5, 12) and set(five) < set(twelve) < set(train)
    assert "subset_seed: 0" in data.info(tmp_path / "a" / "train-5.h5")
    capsys.readouterr()
    assert data_command.main(["split", str(faces), str(tmp_path / "c"), "--subset", "28"]) == 2
    assert capsys.readouterr().err == ("error: --subset: each N must be from 2 to the 27 faces "
                                       "of the train split, got 28\n")
    assert not (tmp_path / "c").exists()


def test_info_says_how_a_file_was_prepared_and_an_old_file_that_it_does_not(tmp_path, capsys):
    """prepare, synth and split record their command, settings and counts in the file
    (format 2); `data info` prints them without reading the images; a file of format 1 (no
    attributes) reads as before and says it does not record them; a newer format is one line."""
    src = tmp_path / "src"
    make_bad_folder(src)
    run(src, tmp_path / "faces.h5", fit="pad", resample="nearest")
    assert data_command.main(["info", str(tmp_path / "faces.h5")]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"{tmp_path / 'faces.h5'}: 2 images of {SIZE}x{SIZE} pixels, HDF5 "
                           f"format {data.FORMAT_VERSION}\n")
    for line in ("made by `data prepare` on ", f"source: {src.resolve()}\n", f"size: {SIZE}\n",
                 "fit: pad\n", "resample: nearest\n", "images kept: 2\n", "skipped: 4\n"):
        assert line in text, line
    assert data_command.main(["synth", str(tmp_path / "s.h5"), "--n", "3", "--size", "8",
                              "--seed", "5"]) == 0
    assert data_command.main(["info", str(tmp_path / "s.h5")]) == 0
    text = capsys.readouterr().out
    assert "made by `data synth`" in text and "seed: 5\n" in text
    assert "attributes: hair (12 values), hair_length (2 values)," in text

    old = tmp_path / "old.h5"
    images = np.zeros((2, 8, 8, 3), np.uint8)
    with h5py.File(old, "w") as f:  # format 1: the datasets, no attributes
        f.create_dataset("images", data=images)
        f.create_dataset("labels", data=np.array([0, -1], np.int32))
        f.create_dataset("class_names", data=["a"], dtype=h5py.string_dtype())
        f.create_dataset("filenames", data=["x", "y"], dtype=h5py.string_dtype())
    np.testing.assert_array_equal(read_h5(old).images, images)
    assert data_command.main(["info", str(old)]) == 0
    text = capsys.readouterr().out
    assert "HDF5 format 1\n" in text and "how it was made: not recorded" in text
    assert "classes: 1 (a), 1 images labelled" in text
    with h5py.File(old, "a") as f:
        f.attrs["format_version"] = data.FORMAT_VERSION + 1
    for call in (lambda: read_h5(old), lambda: data.info(old)):
        with pytest.raises(DataError, match=f"format {data.FORMAT_VERSION + 1}, made by a newer "
                                            f"keras_ganime .*; upgrade keras_ganime$"):
            call()
    assert data_command.main(["info", str(tmp_path)]) == 2
    assert "a folder, where an HDF5 file of faces is needed" in capsys.readouterr().err


# --- labels --------------------------------------------------------------------------------


def labelled_folder(root: Path) -> Path:
    """root/src: a.png ... d.png at the top, e.png in the sub-folder sub/."""
    for i, name in enumerate(["a.png", "b.png", "c.png", "d.png", "sub/e.png"]):
        save(root / "src" / name, noise(i))
    return root / "src"


def test_labels_from_a_csv_one_column_per_attribute(tmp_path):
    """image,hair,eyes: each image's values, in sorted vocabularies; d.png has no row: -1 and
    named in the summary; a row for an image that could not be read is no error."""
    src = labelled_folder(tmp_path)
    (src / "bad.png").write_bytes(b"not a png")
    csv = tmp_path / "tags.csv"
    csv.write_text("image,hair,eyes\na.png,blue,red\nb.png,aqua,red\nc.png,blue,green\n"
                   "sub/e.png,aqua,green\nbad.png,blue,red\n")
    summary, faces = run(src, tmp_path / "out.h5", labels=str(csv))
    assert faces.filenames == ["a.png", "b.png", "c.png", "d.png", "sub/e.png"]
    assert {k: n for k, (_, n) in faces.attributes.items()} == {
        "hair": ("aqua", "blue"), "eyes": ("green", "red")}
    np.testing.assert_array_equal(faces.attributes["hair"][0], [1, 0, 1, -1, 0])
    np.testing.assert_array_equal(faces.attributes["eyes"][0], [1, 1, 0, -1, 0])
    assert summary.unlabelled == ["d.png"] and "without a label: 1 (d.png)" in str(summary)
    assert "attributes: hair (2 values), eyes (2 values)" in data.info(tmp_path / "out.h5")


def test_labels_in_mldss_one_column_form(tmp_path):
    src = labelled_folder(tmp_path)
    csv = tmp_path / "tags.csv"
    csv.write_text("image,tags\na.png,blue hair red eyes\nb.png,aqua hair red eyes\n")
    _, faces = run(src, tmp_path / "out.h5", labels=str(csv))
    assert faces.attributes["hair"][1] == ("aqua", "blue")
    np.testing.assert_array_equal(faces.attributes["hair"][0], [1, 0, -1, -1, -1])
    np.testing.assert_array_equal(faces.attributes["eyes"][0], [0, 0, -1, -1, -1])


def test_labels_from_the_folders_are_the_character(tmp_path):
    src = labelled_folder(tmp_path)
    save(src / "zed" / "f.png", noise(9))
    summary, faces = run(src, tmp_path / "out.h5", labels="folders")
    codes, names = faces.attributes["character"]
    assert names == ("sub", "zed")
    np.testing.assert_array_equal(codes, [-1, -1, -1, -1, 0, 1])
    assert len(summary.unlabelled) == 4


@pytest.mark.parametrize("text, line", [
    ("image,hair\na.png,blue\nz.png,red\n", "row 3: 'z.png' is not an image of the folder"),
    ("image,hair,eyes\na.png,blue,red\nb.png,,red\n", "row 3: no hair for 'b.png'"),
    ("file,hair\na.png,blue\n", "row 1: the header file,hair does not name a column image"),
    ("image,hair\na.png,blue,red\n", "row 2: 3 fields, the header has 2"),
    ("image,tags\na.png,blue-haired\n", "row 2: tags 'blue-haired' are not of the form"),
    ("image,hair\na.png,blue\na.png,red\n", "row 3: 'a.png' has a row already"),
], ids=["missing-image", "empty-label", "no-image-column", "width", "tags", "twice"])
def test_a_bad_labels_file_is_one_line_naming_it_and_the_row(tmp_path, capsys, text, line):
    src = labelled_folder(tmp_path)
    (tmp_path / "tags.csv").write_text(text)
    code = data_command.main(["prepare", str(src), str(tmp_path / "out.h5"), "--labels",
                              str(tmp_path / "tags.csv"), "--workers", "1"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith(f"error: {tmp_path / 'tags.csv'}: {line}"), err
    assert_one_line_error(err)
    assert not (tmp_path / "out.h5").exists()


def test_labels_that_cannot_be_had_are_one_line_before_reading_images(tmp_path, capsys):
    src = labelled_folder(tmp_path)
    for labels, line in ((str(tmp_path / "no.csv"), f"{tmp_path / 'no.csv'}: no such file"),
                         ("folders", None)):
        flat = tmp_path / "flat"
        save(flat / "a.png", noise(0))
        code = data_command.main(["prepare", str(src if line else flat), str(tmp_path / "o.h5"),
                                  "--labels", labels, "--workers", "1"])
        err = capsys.readouterr().err
        assert code == 2, err
        assert err.startswith(f"error: {line}" if line else f"error: {flat}: --labels folders "
                              f"needs one sub-folder per character")
    assert not (tmp_path / "o.h5").exists()


def test_synth_stores_its_attributes_and_they_read_back(tmp_path):
    from keras_ganime.data import synthetic

    data.synth(tmp_path / "s.h5", n=6, size=16, seed=3, workers=1, progress=False)
    faces = read_h5(tmp_path / "s.h5")
    _, drawn = synthetic.draw_faces(6, 16, 3, 0)
    assert list(faces.attributes) == list(synthetic.ATTRIBUTES)
    for j, (name, values) in enumerate(synthetic.ATTRIBUTES.items()):
        assert faces.attributes[name][1] == values
        np.testing.assert_array_equal(faces.attributes[name][0], drawn[:, j])
