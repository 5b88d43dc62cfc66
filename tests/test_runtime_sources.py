"""Sources with real files, real OpenCV decoding, real sockets (MJPEG over loopback HTTP)."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

from edgeirst.errors import EdgeirstError, EdgeirstWarning
from edgeirst.runtime.capture import Backoff
from edgeirst.runtime.preview import MJPEGServer
from edgeirst.runtime.sources import has_gstreamer, make_reader, open_source, y16_plane
from test_runtime_helpers import write_video


def drain(cap, timeout=10.0):
    frames = []
    while (f := cap.read(timeout)) is not None:
        frames.append(f)
    return frames


def test_video_file_frame_by_frame(tmp_path):
    path = write_video(tmp_path / "clip.mp4", frames=12)
    with open_source(str(path), buffer=2) as cap:
        assert not cap.live
        time.sleep(0.2)  # the capture thread is ahead of us: it must wait, not drop
        frames = drain(cap)
    assert [f.index for f in frames] == list(range(12))
    assert cap.dropped == 0 and frames[0].image.shape == (96, 128, 3) and frames[0].capture_s > 0


def test_image_folder_and_glob_sorted_16bit_kept(tmp_path):
    for i in (3, 1, 2):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), np.full((20, 30), 1000 * i, np.uint16))
    (tmp_path / "notes.txt").write_text("not an image")
    with open_source(str(tmp_path)) as cap:
        frames = drain(cap)
    assert [int(f.image[0, 0]) for f in frames] == [1000, 2000, 3000]
    assert frames[0].image.dtype == np.uint16
    with open_source(str(tmp_path / "f[12].png")) as cap:
        assert len(drain(cap)) == 2


def test_corrupt_image_in_a_folder_is_skipped_with_a_warning(tmp_path):
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"a{i}.png"), np.zeros((8, 8), np.uint8))
    (tmp_path / "a3.png").write_bytes(b"truncated")
    cv2.imwrite(str(tmp_path / "a4.png"), np.full((8, 8), 7, np.uint8))
    with pytest.warns(EdgeirstWarning, match="skipped .*a3.png: unreadable"):
        with open_source(str(tmp_path)) as cap:
            frames = drain(cap)
            skipped = cap.skipped
    assert [f.index for f in frames] == [0, 1, 2, 3]  # the stream goes on past the bad file
    assert int(frames[-1].image[0, 0]) == 7
    assert skipped == 1


@pytest.mark.parametrize("spec, match", [
    ("nope/missing.mp4", "does not exist"),
    ("ftp://host/x", "unsupported source scheme"),
    ("", "empty --source"),
    ("synthetic://?colour=red", "unknown synthetic:// option"),
    ("csi://x", "sensor number"),
])
def test_bad_sources(spec, match):
    with pytest.raises(EdgeirstError, match=match):
        make_reader(spec)


def test_unsupported_file_and_empty_folder(tmp_path):
    (tmp_path / "data.csv").write_text("1,2")
    with pytest.raises(EdgeirstError, match="unsupported source file"):
        make_reader(str(tmp_path / "data.csv"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(EdgeirstError, match="has no images"):
        make_reader(str(tmp_path / "empty"))
    (tmp_path / "broken.mp4").write_bytes(b"\x00" * 100)
    with pytest.raises(EdgeirstError, match="cannot open source"):
        open_source(str(tmp_path / "broken.mp4"))


def test_camera_that_cannot_open():
    with pytest.raises(EdgeirstError, match="cannot open source 63.*/dev/video63"):
        open_source("63")


@pytest.mark.skipif(has_gstreamer(), reason="this OpenCV has GStreamer; the no-GStreamer message does not apply")
@pytest.mark.parametrize("spec", ["videotestsrc ! videoconvert ! appsink", "csi://0"])
def test_gstreamer_sources_need_gstreamer(spec):
    with pytest.raises(EdgeirstError, match="no GStreamer support"):
        make_reader(spec)


@pytest.mark.skipif(not has_gstreamer(), reason="this OpenCV build has no GStreamer (pip wheel)")
def test_gstreamer_pipeline_reads():
    with open_source("videotestsrc num-buffers=5 ! video/x-raw,format=GRAY8,width=64,height=48 ! appsink",
                     Backoff(tries=0)) as cap:
        assert cap.read(10).image.shape[:2] == (48, 64)


def test_csi_pipeline_text():
    from edgeirst.runtime.sources import csi_pipeline

    p = csi_pipeline(1, 640, 480, 60)
    assert p.startswith("nvarguscamerasrc sensor-id=1 ") and "framerate=60/1" in p and "appsink" in p


def test_y16_plane_layouts():
    raw = (np.arange(12, dtype=np.uint16) * 1000).reshape(3, 4)
    assert np.array_equal(y16_plane(raw.view(np.uint8).reshape(3, 4, 2), None), raw)
    assert np.array_equal(y16_plane(raw.view(np.uint8).reshape(1, 24), (3, 4)), raw)
    assert y16_plane(raw, (3, 4)) is raw


def test_synthetic_source_is_deterministic():
    spec = "synthetic://?seed=3&targets=2&fps=30&frames=4&size=96x64"
    with open_source(spec) as a, open_source(spec) as b:
        fa, fb = drain(a), drain(b)
    assert len(fa) == 4 and fa[0].image.shape == (64, 96)
    assert all(np.array_equal(x.image, y.image) for x, y in zip(fa, fb))
    with open_source("synthetic://?frames=2&bits=16&size=64x64") as c:
        assert c.read(10).image.dtype == np.uint16


def test_live_source_keeps_newest_and_counts_drops():
    with open_source("synthetic://?realtime=1&fps=200&size=64x64") as cap:
        assert cap.live
        seen = []
        for _ in range(5):
            seen.append(cap.read(5).index)
            time.sleep(0.06)  # a slow pipeline: ~12 frames arrive per read
    assert cap.dropped >= 20
    assert all(b - a > 1 for a, b in zip(seen[1:], seen[2:]))  # we got the newest, not the next


def _pump(server, stop):
    i = 0
    while not stop.is_set():
        img = np.zeros((48, 64, 3), np.uint8)
        img[:, i % 64] = 255
        server.publish(img)
        i += 1
        time.sleep(0.02)


def test_network_stream_reconnects_after_drop():
    stop = threading.Event()
    server = MJPEGServer("127.0.0.1:0")
    port = server.address[1]
    threading.Thread(target=_pump, args=(server, stop), daemon=True).start()
    cap = open_source(f"http://127.0.0.1:{port}/stream.mjpg", Backoff(first=0.2, longest=0.5, tries=20))
    try:
        assert cap.live and cap.read(5).image.shape == (48, 64, 3)
        stop.set()
        server.close()  # the camera goes away...
        time.sleep(0.5)
        stop2 = threading.Event()
        server = MJPEGServer(f"127.0.0.1:{port}")  # ...and comes back on the same address
        threading.Thread(target=_pump, args=(server, stop2), daemon=True).start()
        deadline = time.monotonic() + 10
        while cap.reconnects == 0 and time.monotonic() < deadline:
            cap.read(5)
        assert cap.reconnects >= 1
        assert cap.read(5).image.shape == (48, 64, 3)
        stop2.set()
    finally:
        cap.stop()
        server.close()


def test_network_stream_that_never_returns_fails_clearly():
    stop = threading.Event()
    server = MJPEGServer("127.0.0.1:0")
    threading.Thread(target=_pump, args=(server, stop), daemon=True).start()
    cap = open_source(f"http://127.0.0.1:{server.address[1]}/stream.mjpg", Backoff(first=0.1, longest=0.1, tries=2))
    try:
        cap.read(5)
        stop.set()
        server.close()
        with pytest.raises(EdgeirstError, match="did not come back after 2 tries"):
            while True:
                cap.read(10)
    finally:
        cap.stop()


@pytest.mark.parametrize("query, words", [("seed=abc", "seed 'abc' is not a whole number >= 0"),
                                          ("frames=-3", "frames '-3' is not a whole number >= 1"),
                                          ("frames=0", "frames '0' is not a whole number >= 1"),
                                          ("targets=-1", "targets '-1' is not N or MIN-MAX")])
def test_synthetic_parameters_are_checked_where_they_enter(query, words):
    with pytest.raises(EdgeirstError, match=words):
        make_reader(f"synthetic://?{query}")
