"""Where results go: JSON Lines, an annotated video, a window, the MJPEG preview.

Every sink takes ``write(result)`` once per processed frame and ``close()`` once. The JSON
Lines sink flushes each line as it is written, so a run that is killed keeps every frame it
reported.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from edgeirst.errors import EdgeirstError
from edgeirst.io import check_output, open_stream, os_error, publish, refuse_input_as_output, same_file, write_bytes
from edgeirst.preprocess import to_unit
from edgeirst.runtime.capture import Frame
from edgeirst.runtime.preview import MJPEGServer


@dataclass
class Detection:
    """One reported target in source pixels; ``id`` is the track ID (None without tracking)."""

    cx: float
    cy: float
    box: tuple[float, float, float, float]
    area: float
    score: float
    id: int | None = None

    def to_dict(self) -> dict:
        return {"id": self.id, "cx": round(self.cx, 2), "cy": round(self.cy, 2),
                "box": [round(v, 2) for v in self.box], "area": round(self.area, 2), "score": round(self.score, 4)}


@dataclass
class FrameResult:
    frame: Frame
    detections: list[Detection] = field(default_factory=list)
    source_index: int = 0


class Sink:
    main_thread = False  # True: write() must run in the pipeline's main thread (GUI windows)

    def write(self, result: FrameResult) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class JsonlSink(Sink):
    """One JSON object per processed frame: frame, time, source (and file, for image sources),
    detections. ``-`` = stdout.

    Each line is written whole with one ``os.write`` loop and is durable in the file when
    ``write`` returns, so a killed run keeps every frame it reported; if the disk fills, the
    partial line is cut off again (the file ends with the last complete line) and the run ends
    with one error line.
    """

    def __init__(self, target: str) -> None:
        self.target = target
        self.fd: int | None = None
        self.offset = 0
        if target == "-":
            return
        path = Path(target)
        if path.is_dir():
            raise EdgeirstError(f"cannot write {path}: it is a directory, expected a file name for --jsonl")
        # a device or fifo is written into, never truncated; a file must not be an input or a model
        stream = check_output(path, kind=None) == "stream"
        try:
            self.fd = open_stream(path) if stream else os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        except OSError as e:
            raise os_error(e, path) from None

    def write(self, result: FrameResult) -> None:
        rec = {"frame": result.frame.index, "time": round(result.frame.time, 6), "source": result.frame.source,
               **({"file": result.frame.file} if result.frame.file else {}),
               "detections": [d.to_dict() for d in result.detections]}
        line = json.dumps(rec) + "\n"
        if self.fd is None:
            sys.stdout.write(line)
            sys.stdout.flush()
            return
        data = line.encode()
        done = 0
        try:
            while done < len(data):
                done += os.write(self.fd, data[done:])
        except OSError as e:
            with contextlib.suppress(OSError):  # a device such as /dev/full cannot be truncated
                os.ftruncate(self.fd, self.offset)  # never leave a cut line behind
            raise os_error(e, self.target) from None
        self.offset += len(data)

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def display_image(image: np.ndarray, agc: tuple[float, float] | None = None) -> np.ndarray:
    """Any source frame -> BGR uint8 for drawing (16-bit frames through the same gain as inference)."""
    if image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
        return image.copy()
    if image.dtype == np.uint8 and image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    unit = to_unit(image, agc)
    return cv2.cvtColor((unit * 255.0 + 0.5).astype(np.uint8), cv2.COLOR_GRAY2BGR)


def annotate(result: FrameResult, agc: tuple[float, float] | None = None) -> np.ndarray:
    """The frame with a box, track ID and score per detection."""
    img = display_image(result.frame.image, agc)
    for d in result.detections:
        x1, y1, x2, y2 = (int(round(v)) for v in d.box)
        pad = 3  # small targets: draw the box a little outside them
        colour = (0, 255, 0) if d.id is not None else (0, 200, 255)
        cv2.rectangle(img, (x1 - pad, y1 - pad), (x2 + pad, y2 + pad), colour, 1)
        label = f"{d.id}:{d.score:.2f}" if d.id is not None else f"{d.score:.2f}"
        cv2.putText(img, label, (x1 - pad, max(8, y1 - pad - 2)), cv2.FONT_HERSHEY_PLAIN, 0.8, colour, 1, cv2.LINE_AA)
    return img


class VideoSink(Sink):
    """Annotated frames to a video file (mp4v in .mp4, MJPG in .avi); opened on the first frame.

    Frames go to a temporary file beside the target, renamed into place when the run closes the
    sink, so an existing video at that name stays intact until the new one is complete.
    """

    CODECS = {".mp4": "mp4v", ".avi": "MJPG"}

    def __init__(self, path: str, fps: float = 25.0, agc: tuple[float, float] | None = None) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() not in self.CODECS:
            raise EdgeirstError(f"cannot write video {self.path}: use a .mp4 (mp4v) or .avi (MJPG) name")
        if self.path.is_dir():
            raise EdgeirstError(f"cannot write {self.path}: it is a directory, expected a video file name")
        if not self.path.parent.is_dir():
            raise EdgeirstError(f"cannot write {self.path}: folder {self.path.parent} does not exist")
        # the frames go to a temporary file (beside the video, or in the temp folder for a device
        # or fifo), which publish() puts in place
        folder = self.path.parent if check_output(self.path) == "file" else Path(tempfile.gettempdir())
        self.tmp = folder / f".{self.path.stem}.{os.getpid()}.partial{self.path.suffix}"
        try:  # fail now, with the real cause, rather than after the first frame
            os.close(os.open(self.tmp, os.O_WRONLY | os.O_CREAT, 0o644))
        except OSError as e:
            raise os_error(e, self.path) from None
        self.fps = fps
        self.agc = agc
        self.writer: cv2.VideoWriter | None = None
        self.size: tuple[int, int] | None = None
        self.frames = 0

    def write(self, result: FrameResult) -> None:
        img = annotate(result, self.agc)
        h, w = img.shape[:2]
        if self.writer is None:
            fourcc = self.CODECS[self.path.suffix.lower()]
            self.writer = cv2.VideoWriter(str(self.tmp), cv2.VideoWriter_fourcc(*fourcc), self.fps, (w, h))
            if not self.writer.isOpened():
                raise EdgeirstError(f"OpenCV cannot encode {fourcc} video into {self.path}")
            self.size = (w, h)
        if (w, h) != self.size:  # a source that changed size mid-run: keep the file playable
            img = cv2.resize(img, self.size)
        self.writer.write(img)
        self.frames += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.release()
            self.writer = None
        try:
            if self.tmp.exists() and self.frames and self.tmp.stat().st_size > 0:
                publish(self.tmp, self.path)
        finally:
            with contextlib.suppress(OSError):
                self.tmp.unlink()


class ImageDirSink(Sink):
    """One annotated image per input image, under the input's file name in ``folder``
    (``--save-dir``). Refuses the folder an input image lies in, so no input is ever
    overwritten, and two inputs of the same name (which would overwrite each other's output)."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)
        if self.folder.exists() and not self.folder.is_dir():
            raise EdgeirstError(f"--save-dir {self.folder} is a file; give a folder")
        self.written: dict[str, str] = {}  # output name -> the input it annotates

    def write(self, result: FrameResult) -> None:
        frame = result.frame
        if frame.file is None:
            raise EdgeirstError(f"--save-dir writes one image per input image; source {frame.source} is a stream "
                                "or video: use --save out.mp4 for it")
        source = Path(frame.file)
        if self.folder.is_dir() and same_file(self.folder, source.parent):
            raise EdgeirstError(f"--save-dir {self.folder} is the folder of the input images ({source}): "
                                "choose another folder, inputs are never overwritten")
        if self.written.setdefault(source.name, frame.file) != frame.file:
            raise EdgeirstError(f"--save-dir: inputs {self.written[source.name]} and {source} have the same name; "
                                "their annotated images would overwrite each other")
        ok, data = cv2.imencode(source.suffix, annotate(result))
        if not ok:
            raise EdgeirstError(f"OpenCV cannot encode an annotated {source.suffix} image for {source}")
        self.folder.mkdir(parents=True, exist_ok=True)
        write_bytes(self.folder / source.name, data.tobytes())


class ShowSink(Sink):
    """An OpenCV window per source; ``q`` or Esc ends the run."""

    main_thread = True  # HighGUI windows are drawn and polled from the thread that created them

    def __init__(self, agc: tuple[float, float] | None = None) -> None:
        if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise EdgeirstError("--show needs a display (DISPLAY is not set); use --serve 127.0.0.1:8080 "
                                "to watch in a browser, or --save out.mp4")
        self.agc = agc
        self.quit = False

    def write(self, result: FrameResult) -> None:
        cv2.imshow(f"edgeirst: {result.frame.source}", annotate(result, self.agc))
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
            self.quit = True

    def close(self) -> None:
        cv2.destroyAllWindows()


class PreviewSink(Sink):
    """Annotated frames of the first source to the MJPEG server."""

    def __init__(self, address: str, agc: tuple[float, float] | None = None) -> None:
        self.server = MJPEGServer(address)
        self.agc = agc

    def write(self, result: FrameResult) -> None:
        if result.source_index == 0:
            self.server.publish(annotate(result, self.agc))

    def close(self) -> None:
        self.server.close()


@dataclass
class SinkOptions:
    """Where ``edgeirst run`` sends results: ``jsonl`` (a file or ``-``), ``save`` (annotated
    video; one file per source with several), ``save_dir`` (one annotated image per input
    image), ``show`` (window), ``serve`` (MJPEG HOST:PORT)."""

    jsonl: str | None = None
    save: str | None = None
    show: bool = False
    serve: str | None = None
    save_dir: str | None = None

    def check_against(self, sources: list[str]) -> None:
        """Refuse an output that is one of the run's input files."""

        for option, out in (("--jsonl", self.jsonl), ("--save", self.save)):
            refuse_input_as_output(out, *sources, option=option)
        folders = [s if Path(s).is_dir() else Path(s).parent for s in sources if Path(s).exists()]
        if self.save_dir and Path(self.save_dir).is_dir() and any(same_file(self.save_dir, f) for f in folders):
            raise EdgeirstError(f"--save-dir {self.save_dir} is the folder of the input images: choose another "
                                "folder, inputs are never overwritten")


def open_sinks(options: SinkOptions, fps: float, agc: tuple[float, float] | None, n_sources: int) -> list[Sink]:
    """The sinks ``options`` asks for (the caller closes them)."""
    sinks: list[Sink] = []
    try:
        if options.jsonl:
            sinks.append(JsonlSink(options.jsonl))
        if options.save:
            if n_sources == 1:
                sinks.append(VideoSink(options.save, fps, agc))
            else:  # one file per source: out_0.mp4, out_1.mp4, ...
                p = Path(options.save)
                sinks += [SourceFilter(i, VideoSink(str(p.with_name(f"{p.stem}_{i}{p.suffix}")), fps, agc))
                          for i in range(n_sources)]
        if options.save_dir:
            sinks.append(ImageDirSink(options.save_dir))
        if options.show:
            sinks.append(ShowSink(agc))
        if options.serve:
            sinks.append(PreviewSink(options.serve, agc))
    except BaseException:
        for s in sinks:
            s.close()
        raise
    return sinks


class SourceFilter(Sink):
    """Passes on only the results of one source (a video file per source)."""

    def __init__(self, index: int, sink: Sink) -> None:
        self.index, self.sink = index, sink

    def write(self, result: FrameResult) -> None:
        if result.source_index == self.index:
            self.sink.write(result)

    def close(self) -> None:
        self.sink.close()