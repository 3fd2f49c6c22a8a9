"""keras_ganime.data.fetch: download (with resume), check, unzip and prepare the animeface zip.

A local HTTP server on 127.0.0.1 serves a small zip built here (3 characters x 4 tiny PNGs, in
the real archive's animeface-character-dataset/thumb/<character>/ layout), so nothing leaves the
machine; the size thresholds are passed small. Runs in a few seconds.
"""

from __future__ import annotations

import http.server
import io
import socket
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from keras_ganime import data
from keras_ganime.data import DataError, fetch, read_h5

CHARACTERS = ("000_hatsune_miku", "001_kinomoto_sakura", "002_suzumiya_haruhi")
PER_CHARACTER = 4
PREFIX = "animeface-character-dataset/thumb"
SIZE = 16
SMALL = {"min_classes": 3, "min_images": 12}


def png(seed: int) -> bytes:
    # Random pixels: PNG cannot shrink them, so the archive is big enough to cut in the middle.
    pixels = np.random.default_rng(seed).integers(0, 256, (12, 10, 3), np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def build_zip(compression: int = zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as zf:
        for c, character in enumerate(CHARACTERS):
            for i in range(PER_CHARACTER):
                zf.writestr(f"{PREFIX}/{character}/face_{i}.png", png(c * 10 + i))
            # The real folders hold a non-image file too; prepare ignores it.
            zf.writestr(f"{PREFIX}/{character}/color.csv", "1,2,3\n")
    return buffer.getvalue()


ZIP = build_zip()


@dataclass
class Server:
    """What the handler serves, and the Range header of every request it got (None: none)."""

    body: bytes = ZIP
    honour_range: bool = True
    cut_first: int = 0  # > 0: the first response sends only this many bytes, then hangs up
    ranges: list[str | None] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    url: str = ""


@pytest.fixture(autouse=True)
def no_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    # An http_proxy in the environment must not send the requests for 127.0.0.1 elsewhere.
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")


@pytest.fixture
def server() -> Iterator[Server]:
    state = Server()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked = self.headers.get("Range")
            state.ranges.append(asked)
            start = 0
            if asked and state.honour_range:
                start = int(asked.removeprefix("bytes=").removesuffix("-"))
                self.send_response(206)
                self.send_header("Content-Range",
                                 f"bytes {start}-{len(state.body) - 1}/{len(state.body)}")
            else:
                self.send_response(200)
            state.statuses.append(206 if start else 200)
            body = state.body[start:]
            self.send_header("Content-Type", "application/zip")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if state.cut_first and len(state.ranges) == 1:
                body = body[:state.cut_first]
                self.close_connection = True
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/animeface-character-dataset.zip"
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def run(tmp_path: Path, **kwargs) -> data.PrepareSummary:
    kwargs = {"size": SIZE, "workers": 1, "progress": False, "timeout": 5.0, **SMALL, **kwargs}
    return fetch.fetch_animeface(tmp_path / "animeface.h5", **kwargs)


def assert_prepared(tmp_path: Path) -> None:
    images = read_h5(tmp_path / "animeface.h5")
    assert images.class_names == list(CHARACTERS)
    assert images.images.shape == (len(CHARACTERS) * PER_CHARACTER, SIZE, SIZE, 3)
    assert np.bincount(images.labels).tolist() == [PER_CHARACTER] * len(CHARACTERS)
    codes, characters = images.attributes["character"]
    assert characters == CHARACTERS and (codes == images.labels).all()
    assert (tmp_path / "animeface-character-dataset.zip").read_bytes() == ZIP
    assert not list(tmp_path.glob("*.part"))
    thumb = tmp_path / "animeface-character-dataset" / "thumb"
    assert sorted(p.name for p in thumb.iterdir()) == list(CHARACTERS)


def assert_one_line(e: pytest.ExceptionInfo, *needles: str) -> None:
    text = str(e.value)
    assert "\n" not in text, text
    for needle in needles:
        assert needle in text, text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_download_then_prepare(tmp_path: Path, server: Server) -> None:
    summary = run(tmp_path, url=server.url)
    assert summary.count == len(CHARACTERS) * PER_CHARACTER
    assert server.ranges == [None]
    assert_prepared(tmp_path)


def test_interrupted_download_resumes_with_range(tmp_path: Path, server: Server) -> None:
    server.cut_first = len(ZIP) // 2
    with pytest.raises(DataError) as e:
        run(tmp_path, url=server.url)
    assert_one_line(e, server.url, f"{server.cut_first} of {len(ZIP)}", "resume")
    part = tmp_path / "animeface-character-dataset.zip.part"
    assert part.stat().st_size == server.cut_first
    assert not (tmp_path / "animeface-character-dataset.zip").exists()
    run(tmp_path, url=server.url)
    assert server.ranges == [None, f"bytes={server.cut_first}-"]
    assert server.statuses == [200, 206]
    assert_prepared(tmp_path)


def test_server_ignoring_range_restarts_from_zero(tmp_path: Path, server: Server) -> None:
    server.cut_first = len(ZIP) // 3
    server.honour_range = False
    with pytest.raises(DataError):
        run(tmp_path, url=server.url)
    run(tmp_path, url=server.url)
    assert server.ranges == [None, f"bytes={server.cut_first}-"]
    assert server.statuses == [200, 200]
    assert_prepared(tmp_path)  # the whole body once: the partial bytes were not kept in front


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_corrupt_archive(tmp_path: Path, compression: int) -> None:
    body = bytearray(build_zip(compression))
    with zipfile.ZipFile(io.BytesIO(bytes(body))) as zf:
        info = zf.getinfo(f"{PREFIX}/{CHARACTERS[1]}/face_2.png")
    # The member's data starts after its 30-byte local header, name and extra field.
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    for i in range(start + 40, start + 48):
        body[i] ^= 0xFF
    path = tmp_path / "by-hand.zip"
    path.write_bytes(bytes(body))
    with pytest.raises(DataError) as e:
        run(tmp_path, from_zip=path)
    assert_one_line(e, str(path), info.filename)
    assert not (tmp_path / "animeface.h5").exists()
    assert not (tmp_path / "by-hand").exists()


def test_too_few_folders_and_images(tmp_path: Path) -> None:
    path = tmp_path / "animeface-character-dataset.zip"
    path.write_bytes(ZIP)
    with pytest.raises(DataError) as e:
        run(tmp_path, from_zip=path, min_classes=170, min_images=14000)
    assert_one_line(e, str(path), "3 character folders and 12 images", "170", "14000")
    assert not (tmp_path / "animeface.h5").exists()


def test_from_zip_skips_the_download(tmp_path: Path) -> None:
    path = tmp_path / "animeface-character-dataset.zip"
    path.write_bytes(ZIP)
    run(tmp_path, from_zip=path, url="http://127.0.0.1:1/never-asked.zip")
    assert_prepared(tmp_path)


def test_no_server(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/animeface-character-dataset.zip"
    with pytest.raises(DataError) as e:
        run(tmp_path, url=url)
    assert_one_line(e, url, "--from-zip")
    assert not list(tmp_path.iterdir())
