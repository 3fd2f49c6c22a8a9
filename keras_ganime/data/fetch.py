"""Fetch a public dataset and prepare it as HDF5: `python -m keras_ganime.data fetch animeface`.

animeface: nagadomi's animeface-character-dataset (about 14,490 face thumbnails of 176
characters), the paper's dataset. The zip is downloaded from its author's page beside the output
file, resumed with an HTTP Range request if an earlier download was cut off, checked, unzipped
beside the zip, and its `thumb/<character>/` folders become the classes of the HDF5 file
(`keras_ganime.data.prepare`).

What is checked: every member's CRC-32 (as `zipfile.ZipFile.testzip` does), and that the archive
holds a `thumb/` folder with at least MIN_CLASSES character folders and MIN_IMAGES images. No
SHA-256 of the real archive is pinned: it could not be established where this module was written
(no internet access there), and a made-up one would reject the genuine file. The CRCs catch a
damaged download; the counts catch a truncated or different archive.

Nothing half-written is ever left under a final name: the download goes to OUT.zip.part (kept on
failure so the next run resumes it) and the unzipped folder to FOLDER.part, each renamed when
complete; the HDF5 file is written atomically by `prepare`.

No TensorFlow here, as in the rest of data/.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from PIL import Image
from tqdm import tqdm

from keras_ganime.data import DataError, PrepareSummary, prepare

ANIMEFACE_URL = ("http://www.nurs.or.jp/~nagadomi/animeface-character-dataset/data/"
                 "animeface-character-dataset.zip")
ANIMEFACE_ZIP = "animeface-character-dataset.zip"
# The real archive has 176 character folders and 14,490 images; a little slack for a re-release.
MIN_CLASSES = 170
MIN_IMAGES = 14000
CHUNK = 1 << 16


def _manual(url: str) -> str:
    return (f"download {url} by hand (e.g. in a browser), then run: "
            "python -m keras_ganime.data fetch animeface --from-zip PATH")


def _one_line(e: BaseException) -> str:
    text = str(getattr(e, "reason", "") or e) or type(e).__name__
    return " ".join(text.split())[:200]


def _open(url: str, start: int, timeout: float) -> http.client.HTTPResponse | None:
    """The response to GET url, from byte start if start > 0; None if the server says the range
    is past the end of the file (416), which the caller decides about."""
    request = urllib.request.Request(url, headers={"User-Agent": "keras_ganime"})
    if start:
        request.add_header("Range", f"bytes={start}-")
    try:
        return urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and start:
            e.close()
            return None
        raise DataError(f"{url}: HTTP {e.code} {e.reason}; {_manual(url)}") from None
    except (OSError, http.client.HTTPException, ValueError) as e:
        # URLError (offline, refused, DNS), timeouts, a dropped connection, a malformed URL.
        raise DataError(f"cannot download {url} ({_one_line(e)}); {_manual(url)}") from None


def download(url: str, dest: str | Path, progress: bool = True, timeout: float = 60.0) -> Path:
    """Download url to dest through dest.part, resuming a partial dest.part where the server
    honours Range requests; dest appears only once complete."""
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    response = _open(url, have, timeout)
    dest.parent.mkdir(parents=True, exist_ok=True)  # only once there is something to write
    if response is None:
        # 416: nothing lies at or after `have`. Either an earlier run got every byte but stopped
        # before the rename, or the file on the server shrank; the zip check tells which, and
        # a bad one is named there.
        part.replace(dest)
        return dest
    with response:
        total = None
        if response.status == 206:
            match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)",
                                 response.headers.get("Content-Range", "").strip())
            if not match or int(match[1]) != have:
                if not have:
                    raise DataError(f"{url}: the server sent part of the file when asked for all "
                                    f"of it ({response.headers.get('Content-Range')}); "
                                    f"{_manual(url)}")
                # Not the range asked for: appending it would corrupt the file, so start over.
                response.close()
                part.unlink()
                return download(url, dest, progress, timeout)
            total = None if match[2] == "*" else int(match[2])
            mode = "ab"
        else:
            # A 200 to a Range request is the whole file again: truncate rather than append.
            have, mode = 0, "wb"
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
        got, error = have, ""
        with open(part, mode) as f, tqdm(total=total, initial=have, unit="B", unit_scale=True,
                                         unit_divisor=1024, desc=dest.name,
                                         disable=not progress) as bar:
            try:
                while chunk := response.read(CHUNK):
                    f.write(chunk)
                    got += len(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as e:
                error = f" ({_one_line(e)})"
    # http.client ends a body cut short by a closed connection silently; only the count shows it.
    if error or (total is not None and got != total):
        of = f" of {total}" if total is not None else ""
        raise DataError(f"{url}: download stopped at {got}{of} bytes{error}; {part} is kept: "
                        "run the same command again to resume it")
    part.replace(dest)
    return dest


@dataclass
class Archive:
    """The thumb/ tree of a checked archive."""

    path: Path
    prefix: str  # the members' path up to and including "thumb", e.g. "animeface-.../thumb"
    members: list[zipfile.ZipInfo]  # every file under prefix/<character>/
    classes: int  # character folders that hold at least one image
    images: int


def _test_members(zf: zipfile.ZipFile) -> tuple[str, str] | None:
    """(name, why) of the first member that does not read back intact, else None.

    This is testzip()'s loop: testzip() returns a member whose CRC is wrong, but a member whose
    compressed data is broken raises out of it (zlib.error) without saying which one.
    """
    for info in zf.infolist():
        try:
            with zf.open(info) as member:
                while member.read(1 << 20):
                    pass
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError) as e:
            # "Bad CRC-32 for file 'NAME'": the caller names the member already.
            return info.filename, _one_line(e).replace(f" for file {info.filename!r}", "")
    return None


def check_archive(path: str | Path, min_classes: int = MIN_CLASSES,
                  min_images: int = MIN_IMAGES) -> Archive:
    """Check the zip at path: intact members, and a thumb/<character>/<image> tree with at least
    min_classes character folders and min_images images."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        with zipfile.ZipFile(path) as zf:
            bad = _test_members(zf)
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(f"{path}: not a readable zip archive ({_one_line(e)}); delete it and "
                        "download it again") from None
    if bad:
        raise DataError(f"{path}: corrupt archive, member {bad[0]} is damaged ({bad[1]}); delete "
                        "it and download it again")
    image_ext = set(Image.registered_extensions())
    trees: dict[str, list[zipfile.ZipInfo]] = {}
    for info in infos:
        parts = PurePosixPath(info.filename).parts
        if info.is_dir() or len(parts) < 3 or parts[-3] != "thumb":
            continue
        trees.setdefault("/".join(parts[:-2]), []).append(info)
    if not trees:
        raise DataError(f"{path}: no thumb/<character>/<image> members; not the "
                        "animeface-character-dataset archive")
    # One thumb/ tree in the real archive; should another appear, the biggest is the dataset.
    prefix, members = max(trees.items(), key=lambda kv: len(kv[1]))
    images = [m for m in members if PurePosixPath(m.filename).suffix.lower() in image_ext]
    classes = len({PurePosixPath(m.filename).parts[-2] for m in images})
    if classes < min_classes or len(images) < min_images:
        raise DataError(f"{path}: {prefix}/ holds {classes} character folders and {len(images)} "
                        f"images, expected at least {min_classes} and {min_images}")
    return Archive(path, prefix, members, classes, len(images))


def unzip_thumbs(archive: Archive, folder: str | Path) -> Path:
    """The archive's thumb/ tree as folder/thumb/<character>/..., extracted through folder.part.

    An existing folder is reused when it holds exactly the archive's files and sizes (an earlier
    run, or the zip unzipped by hand); any other existing folder is left alone and named in the
    error, since it may be someone's own files.
    """
    folder = Path(folder)
    expected = {}
    for info in archive.members:
        character, name = PurePosixPath(info.filename).parts[-2:]
        # Only these two names reach the file system; neither may climb out of the folder.
        if {character, name} & {".", ".."} or "\\" in character + name:
            raise DataError(f"{archive.path}: unsafe member name {info.filename}")
        expected[f"{character}/{name}"] = info
    thumb = folder / "thumb"
    if folder.exists():
        found = {p.relative_to(thumb).as_posix(): p.stat().st_size
                 for p in thumb.glob("*/*") if p.is_file()} if thumb.is_dir() else {}
        if found == {k: v.file_size for k, v in expected.items()}:
            return thumb
        raise DataError(f"{folder}: exists but does not hold {archive.path}'s thumb/ files; move "
                        "it away or delete it, then run again")
    tmp = folder.with_name(folder.name + ".part")
    if tmp.exists():
        shutil.rmtree(tmp)  # ours: left by an unzip that was cut off
    with zipfile.ZipFile(archive.path) as zf:
        for rel, info in expected.items():
            target = tmp / "thumb" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, CHUNK)
    os.replace(tmp, folder)
    return thumb


def _zip_name(url: str) -> str:
    name = PurePosixPath(urllib.parse.urlparse(url).path).name
    return name if name.endswith(".zip") else ANIMEFACE_ZIP


def fetch_animeface(
    out: str | Path = "data/animeface.h5", url: str = ANIMEFACE_URL,
    from_zip: str | Path | None = None, size: int = 64, force: bool = False,
    workers: int | None = None, progress: bool | None = None,
    min_classes: int = MIN_CLASSES, min_images: int = MIN_IMAGES, timeout: float = 60.0,
) -> PrepareSummary:
    """Download (or take from_zip), check and unzip the animeface-character-dataset, and prepare
    out from its thumb/ folder, one class per character.

    The zip goes beside out (its name from the URL), the unzipped folder beside the zip, named
    after it without .zip. progress None: a bar only when stderr is a terminal.
    """
    out = Path(out)
    if progress is None:
        progress = sys.stderr.isatty()
    # Before a long download, not after it.
    if out.exists() and not force:
        raise DataError(f"{out}: already exists; pass --force to replace it")
    if from_zip is not None:
        path = Path(from_zip)
    else:
        path = out.parent / _zip_name(url)
        if not path.is_file():
            download(url, path, progress, timeout)
    archive = check_archive(path, min_classes, min_images)
    stem = path.name[:-4] if path.name.lower().endswith(".zip") else ""
    thumb = unzip_thumbs(archive, path.with_name(stem or f"{path.name}.unzipped"))
    # Each face's character, its sub-folder, as the attribute that a conditional run can ask for.
    return prepare(thumb, out, size, workers, force, progress, labels="folders")
