"""``--source`` strings -> readers, started as threaded ``Capture`` objects.

| source | reader | live |
|---|---|---|
| ``0``, ``/dev/video0`` (``?fourcc=Y16&width=640&height=512&fps=30``) | V4L2 camera | yes |
| ``clip.mp4`` | video file | no |
| ``frames/``, ``frames/*.png`` | image folder / glob, sorted | no |
| ``rtsp://...``, ``http://.../stream.mjpg`` | network stream (FFmpeg, or GStreamer if built in) | yes |
| ``videotestsrc ! ... ! appsink`` (contains ``!``) | raw GStreamer pipeline | yes |
| ``csi://0`` (``?width=1280&height=720&fps=30``) | Jetson CSI camera via ``nvarguscamerasrc`` | yes |
| ``synthetic://?seed=3&targets=2&fps=30`` | ``edgeirst.data.synth.SynthSequence`` | with ``realtime=1`` |

Thermal Y16 frames are delivered as uint16 without any RGB conversion; preprocessing applies
the automatic gain. Cameras that do not open fail at start; live streams that drop later
reconnect with backoff.
"""

from __future__ import annotations

import glob
import time
import warnings
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import cv2
import numpy as np

from edgeirst.data.synth import SynthSequence
from edgeirst.errors import EdgeirstError, EdgeirstWarning, finite_number, parse_range
from edgeirst.runtime.capture import Backoff, Capture, Reader, SourceLost

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm", ".mpg", ".mpeg", ".ts")
NETWORK_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "udp", "tcp")


def _built_with(name: str) -> bool:
    return any(line.strip().startswith(f"{name}:") and "YES" in line for line in cv2.getBuildInformation().splitlines())


def has_gstreamer() -> bool:
    return _built_with("GStreamer")


def _split_options(spec: str) -> tuple[str, dict[str, str]]:
    if "?" not in spec:
        return spec, {}
    head, query = spec.split("?", 1)
    return head, dict(parse_qsl(query, keep_blank_values=True))


def y16_plane(image: np.ndarray, hw: tuple[int, int] | None) -> np.ndarray:
    """Raw Y16 as OpenCV may hand it over (16UC1, HxWx2 bytes, or one flat row) -> HxW uint16."""
    if image.dtype == np.uint16:
        return image if image.ndim == 2 else image[:, :, 0]
    if image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 2:
        return np.ascontiguousarray(image).view("<u2")[:, :, 0]
    if image.dtype == np.uint8 and hw is not None and image.size == hw[0] * hw[1] * 2:
        return np.ascontiguousarray(image).reshape(-1).view("<u2").reshape(hw)
    return image


class VideoCaptureReader(Reader):
    """Anything OpenCV's VideoCapture opens: files, V4L2 cameras, network streams, GStreamer."""

    def __init__(self, target, api: int, name: str, live: bool, props: dict[int, float] | None = None,
                 y16: bool = False, open_hint: str = "", open_params: list[int] | None = None) -> None:
        self.target, self.api, self.name, self.live = target, api, name, live
        self.open_params = open_params or []
        self.props = props or {}
        self.y16 = y16
        self.open_hint = open_hint
        self.cap: cv2.VideoCapture | None = None
        self.fps: float | None = None
        self.frames = 0
        self.expected = 0  # frame count a video file's header announces
        self._hw: tuple[int, int] | None = None

    def open(self) -> None:
        cap = cv2.VideoCapture(self.target, self.api, self.open_params)
        for prop, value in self.props.items():
            cap.set(prop, value)
        if not cap.isOpened():
            cap.release()
            raise EdgeirstError(f"cannot open source {self.name}" + (f"; {self.open_hint}" if self.open_hint else ""))
        self.cap = cap
        fps = cap.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps and fps > 0 else None
        if not self.live:
            self.expected = max(0, int(cap.get(cv2.CAP_PROP_FRAME_COUNT)))
        h, w = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)), int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
        self._hw = (h, w) if h > 0 and w > 0 else None

    def read(self) -> np.ndarray | None:
        ok, image = self.cap.read()
        if not ok or image is None:
            if self.live:
                raise SourceLost("no frame from the stream")
            if self.expected and self.frames < self.expected:
                warnings.warn(f"video {self.name} ended after {self.frames} of the {self.expected} frames its header "
                              "announces (truncated or corrupt file)", EdgeirstWarning, stacklevel=2)
            return None
        self.frames += 1
        return y16_plane(image, self._hw) if self.y16 else image

    def close(self) -> None:
        if self.cap is not None:
            self.cap.release()
            self.cap = None


class ImageFolderReader(Reader):
    """Sorted images of a folder or a glob, read unchanged (16-bit PNG/TIFF stay 16-bit)."""

    def __init__(self, paths: list[Path], name: str) -> None:
        self.paths, self.name = paths, name
        self.i = 0
        self.skipped = 0
        self.current: Path | None = None

    def open(self) -> None:
        self.i = 0

    def read(self) -> np.ndarray | None:
        """The next readable image; an unreadable one is skipped with a warning and counted in
        ``skipped`` (like a dropped frame), and the run goes on."""
        while self.i < len(self.paths):
            self.current = path = self.paths[self.i]
            self.i += 1
            image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
            if image is not None and image.size:
                return image
            self.skipped += 1
            warnings.warn(f"skipped {path}: unreadable (corrupt, or not an image)", EdgeirstWarning, stacklevel=2)
        return None


class SyntheticReader(Reader):
    """Synthetic IR video from ``edgeirst.data.synth``. Frame by frame as fast as consumed, or
    paced at ``fps`` and treated as live with ``realtime=1``."""

    PARAMS = {"seed", "targets", "fps", "width", "height", "size", "background", "scr", "sizes", "noise", "bits",
              "bit_depth", "speed", "frames", "realtime"}

    def __init__(self, options: dict[str, str], name: str) -> None:
        try:
            from edgeirst.data.synth import SynthConfig
        except ImportError:
            raise EdgeirstError("synthetic:// needs edgeirst.data.synth, which this install lacks") from None

        unknown = sorted(set(options) - self.PARAMS)
        if unknown:
            raise EdgeirstError(f"unknown synthetic:// option(s) {', '.join(unknown)}; known: {', '.join(sorted(self.PARAMS))}")
        def whole(key: str, low: int) -> int:
            text = options[key]
            if not text.strip().lstrip("-").isdigit() or int(text) < low:
                raise EdgeirstError(f"{key} {text!r} is not a whole number >= {low}")
            return int(text)

        try:
            kw: dict = {}
            if "seed" in options:
                kw["seed"] = whole("seed", 0)
            if "fps" in options:
                kw["fps"] = finite_number(options["fps"], "fps")
            if "noise" in options:
                kw["noise"] = finite_number(options["noise"], "noise")
            if "background" in options:
                kw["background"] = options["background"]
            if "bits" in options or "bit_depth" in options:
                kw["bit_depth"] = int(options.get("bits", options.get("bit_depth")))
            if "size" in options:
                w, h = options["size"].lower().split("x")
                kw["width"], kw["height"] = int(w), int(h)
            for key in ("width", "height"):
                if key in options:
                    kw[key] = int(options[key])
            for key, typ in (("targets", int), ("scr", float), ("sizes", float), ("speed", float)):
                if key in options:
                    kw[key] = parse_range(options[key], key, typ)
            self.frames = whole("frames", 1) if "frames" in options else None
            self.live = options.get("realtime", "0").lower() in ("1", "true", "yes")
        except (ValueError, EdgeirstError) as e:
            raise EdgeirstError(f"bad synthetic:// option in {name!r}: {e}") from None
        self.cfg = SynthConfig(**kw)
        self.name = name
        self.fps = self.cfg.fps
        self._it = None

    def open(self) -> None:
        self.sequence = SynthSequence(self.cfg, frames=self.frames)
        self._it = iter(self.sequence)
        self._next_t = time.monotonic()

    def read(self) -> np.ndarray | None:
        if self.live:
            self._next_t += 1.0 / self.fps
            delay = self._next_t - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        item = next(self._it, None)
        return None if item is None else item[0]


def _camera(index: int, name: str, options: dict[str, str]) -> VideoCaptureReader:
    props: dict[int, float] = {}
    fourcc = options.get("fourcc", "").upper()
    y16 = fourcc in ("Y16", "Y16 ")
    if fourcc:
        props[cv2.CAP_PROP_FOURCC] = cv2.VideoWriter_fourcc(*fourcc.ljust(4)[:4])
    if y16:
        props[cv2.CAP_PROP_CONVERT_RGB] = 0  # raw 16-bit counts, no RGB conversion
    for key, prop in (("width", cv2.CAP_PROP_FRAME_WIDTH), ("height", cv2.CAP_PROP_FRAME_HEIGHT), ("fps", cv2.CAP_PROP_FPS)):
        if key in options:
            props[prop] = finite_number(options[key], f"{name}: {key}")
    props[cv2.CAP_PROP_BUFFERSIZE] = 1
    return VideoCaptureReader(index, cv2.CAP_V4L2, name, True, props, y16,
                              f"check that /dev/video{index} exists, is a capture device and no other program holds it")


def csi_pipeline(sensor: int, width: int = 1280, height: int = 720, fps: int = 30, flip: int = 0) -> str:
    """The Jetson Argus pipeline for a CSI camera, delivering grey frames to OpenCV."""
    return (f"nvarguscamerasrc sensor-id={sensor} ! video/x-raw(memory:NVMM),width={width},height={height},"
            f"framerate={fps}/1 ! nvvidconv flip-method={flip} ! video/x-raw,format=GRAY8 ! "
            "appsink drop=true max-buffers=1 sync=false")


def _gstreamer(pipeline: str, name: str) -> VideoCaptureReader:
    if not has_gstreamer():
        raise EdgeirstError("this OpenCV build has no GStreamer support (pip wheels lack it); on a Jetson use "
                            "JetPack's OpenCV (apt install python3-opencv) for GStreamer and csi:// sources")
    if "appsink" not in pipeline:
        pipeline += " ! appsink drop=true max-buffers=1 sync=false"
    return VideoCaptureReader(pipeline, cv2.CAP_GSTREAMER, name, True,
                              open_hint="check the pipeline with gst-launch-1.0 (replace appsink by fakesink)")


def make_reader(spec: str) -> Reader:
    """Parse a ``--source`` string into a reader (not opened yet)."""
    spec = str(spec).strip()
    if not spec:
        raise EdgeirstError("empty --source; give a camera index, a video file, an image folder, rtsp://, csi://N, "
                        "a GStreamer pipeline or synthetic://")
    if "!" in spec:
        return _gstreamer(spec, "gstreamer")
    scheme = urlsplit(spec).scheme.lower() if "://" in spec else ""
    if scheme == "synthetic":
        head, options = _split_options(spec)
        return SyntheticReader(options, spec)
    if scheme == "csi":
        head, options = _split_options(spec)
        sensor = head[len("csi://"):] or "0"
        if not sensor.isdigit():
            raise EdgeirstError(f"csi:// needs a sensor number, e.g. csi://0; got {spec!r}")
        try:
            kw = {k: int(v) for k, v in options.items() if k in ("width", "height", "fps", "flip")}
        except ValueError as e:
            raise EdgeirstError(f"bad csi:// option in {spec!r}: {e}") from None
        return _gstreamer(csi_pipeline(int(sensor), **kw), spec)
    if scheme in NETWORK_SCHEMES:
        # FFmpeg where built in (pip wheels, most builds); otherwise GStreamer's uridecodebin takes the URL.
        # For hardware decoding on a Jetson pass a pipeline: rtspsrc location=... ! rtph264depay ! ... ! appsink
        api = cv2.CAP_FFMPEG if _built_with("FFMPEG") or not has_gstreamer() else cv2.CAP_GSTREAMER
        return VideoCaptureReader(spec, api, spec, True, open_hint="check the address, the network and that the stream is up",
                                  open_params=[cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, 5000, cv2.CAP_PROP_READ_TIMEOUT_MSEC, 5000])
    if scheme:
        raise EdgeirstError(f"unsupported source scheme {scheme}:// in {spec!r}; expected rtsp://, http://, csi:// "
                            "or synthetic://")
    head, options = _split_options(spec)
    if head.isdigit() or head.startswith("/dev/video"):
        index = int(head) if head.isdigit() else int(head[len("/dev/video"):] or 0)
        return _camera(index, spec, options)
    if any(c in spec for c in "*?["):
        paths = sorted(Path(p) for p in glob.glob(spec) if Path(p).suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise EdgeirstError(f"no images match {spec!r} (looked for {', '.join(IMAGE_SUFFIXES)})")
        return ImageFolderReader(paths, spec)
    path = Path(spec).expanduser()
    if path.is_dir():
        paths = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not paths:
            raise EdgeirstError(f"image folder {path} has no images ({', '.join(IMAGE_SUFFIXES)})")
        return ImageFolderReader(paths, spec)
    if not path.exists():
        raise EdgeirstError(f"source {spec!r} does not exist; give a camera index, a video file, an image folder or "
                            "glob, rtsp://..., csi://N, a GStreamer pipeline (with '!') or synthetic://")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageFolderReader([path], spec)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise EdgeirstError(f"unsupported source file {path.name}: expected a video ({', '.join(VIDEO_SUFFIXES)}) "
                            f"or an image ({', '.join(IMAGE_SUFFIXES)})")
    return VideoCaptureReader(str(path), cv2.CAP_ANY, spec, False,
                              open_hint="the file is not a video OpenCV can decode")


def open_source(spec: str, backoff: Backoff | None = None, buffer: int = 4) -> Capture:
    """Open ``spec`` and start capturing in a thread. Raises EdgeirstError when it cannot open."""
    return Capture(make_reader(spec), backoff, buffer).start()
