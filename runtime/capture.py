"""Threaded capture: a reader runs in its own thread and hands frames to the pipeline.

Live sources (cameras, RTSP, GStreamer, paced synthetic) keep only the newest frame and count
the ones the pipeline never saw; files and image folders are handed over frame by frame
through a small bounded buffer, none skipped. A live reader that fails is reopened with
exponential backoff; a failure of a file reader (or a live one that will not come back) is
re-raised in the pipeline's thread, after every frame read before it.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from dataclasses import dataclass

import numpy as np

from edgeirst.errors import EdgeirstError

log = logging.getLogger("edgeirst.runtime")


class SourceLost(Exception):
    """A live reader lost its stream (camera unplugged, network dropped): reconnect."""


@dataclass
class Frame:
    """One captured frame: pixels as delivered (uint8 or uint16, never colour-converted here),
    its index in the source, the wall-clock time it was captured, the source name, how long
    the capture (grab + decode) took, and the image file it was read from (image sources only)."""

    image: np.ndarray
    index: int
    time: float
    source: str
    capture_s: float
    file: str | None = None


class Reader:
    """One opened stream, read synchronously. Subclasses implement ``open``/``read``/``close``;
    ``read`` returns an image, ``None`` at the end of a file, or raises ``SourceLost``;
    ``current`` is the file the last image came from, for readers of image files."""

    live = False
    name = "source"
    current = None

    def open(self) -> None:
        raise NotImplementedError

    def read(self) -> np.ndarray | None:
        raise NotImplementedError

    def close(self) -> None:
        pass


@dataclass
class Backoff:
    """Reconnect delays: ``first``, doubling up to ``longest``; ``tries`` None = forever."""

    first: float = 0.5
    longest: float = 8.0
    tries: int | None = None

    def delays(self):
        d, n = self.first, 0
        while self.tries is None or n < self.tries:
            yield d
            d, n = min(d * 2, self.longest), n + 1


class Capture:
    """Runs ``reader`` in a daemon thread. ``read()`` returns the next ``Frame`` or ``None``
    once the stream has ended (``stop()``, end of file, ``max_frames``)."""

    def __init__(self, reader: Reader, backoff: Backoff | None = None, buffer: int = 4) -> None:
        self.reader = reader
        self.name = reader.name
        self.live = reader.live
        self.backoff = backoff or Backoff()
        self.buffer = 1 if reader.live else max(1, buffer)
        self.frames = 0  # frames captured
        self.dropped = 0  # live frames replaced before the pipeline took them
        self.reconnects = 0
        self._buf: collections.deque[Frame] = collections.deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._done = False
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    @property
    def skipped(self) -> int:
        """Unreadable frames the reader skipped (a corrupt image in a folder)."""
        return int(getattr(self.reader, "skipped", 0))

    def start(self) -> "Capture":
        """Open the reader (errors surface here, in the caller's thread) and start capturing."""
        self.reader.open()
        self._thread = threading.Thread(target=self._run, name=f"capture:{self.name}", daemon=True)
        self._thread.start()
        return self

    # -- capture thread ------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                t0 = time.perf_counter()
                try:
                    image = self.reader.read()
                except SourceLost as e:
                    if not self._reconnect(e):
                        return
                    continue
                if image is None:
                    return
                file = None if self.reader.current is None else str(self.reader.current)
                self._put(Frame(image, self.frames, time.time(), self.name, time.perf_counter() - t0, file))
                self.frames += 1
        except BaseException as e:  # handed to the pipeline thread, re-raised there
            self._error = e
        finally:
            self.reader.close()
            with self._cond:
                self._done = True
                self._cond.notify_all()

    def _reconnect(self, why: Exception) -> bool:
        self.reader.close()
        for delay in self.backoff.delays():
            log.warning("%s: %s; reconnecting in %.1f s", self.name, why, delay)
            if self._stop.wait(delay):
                return False
            try:
                self.reader.open()
            except EdgeirstError as e:
                why = e
                continue
            self.reconnects += 1
            log.warning("%s: reconnected", self.name)
            return True
        raise EdgeirstError(f"source {self.name} was lost and did not come back after "
                            f"{self.backoff.tries} tries ({why})")

    def _put(self, frame: Frame) -> None:
        with self._cond:
            if self.live:
                if self._buf:
                    self._buf.popleft()
                    self.dropped += 1
            else:
                while len(self._buf) >= self.buffer and not self._stop.is_set():
                    self._cond.wait(0.1)
            self._buf.append(frame)
            self._cond.notify_all()

    # -- pipeline side ------------------------------------------------------------------------
    def read(self, timeout: float | None = None) -> Frame | None:
        """The next frame; ``None`` when the stream is over. Re-raises a capture failure."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while not self._buf and not self._done and not self._stop.is_set():
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise EdgeirstError(f"source {self.name} delivered no frame for {timeout:.0f} s")
                self._cond.wait(0.5 if left is None else min(left, 0.5))
            if self._buf:
                frame = self._buf.popleft()
                self._cond.notify_all()
                return frame
        if self._error is not None:
            err, self._error = self._error, None
            raise err
        return None

    def request_stop(self) -> None:
        """Ask the capture to end without waiting for it (safe from a signal handler)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()

    def stop(self) -> None:
        self.request_stop()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)

    close = stop

    def __enter__(self) -> "Capture":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
