"""A small MJPEG preview server: ``--serve 127.0.0.1:8080``.

``/`` is a page with the live image, ``/stream.mjpg`` the multipart MJPEG stream (browsers,
VLC, ``cv2.VideoCapture``), ``/frame.jpg`` the latest frame. Frames are JPEG-encoded once per
published frame, only while someone is watching, in the client's thread.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

from edgeirst.errors import EdgeirstError

BOUNDARY = "edgeirstframe"
PAGE = b"""<!doctype html><html><head><title>edgeirst</title></head>
<body style="margin:0;background:#111"><img src="/stream.mjpg" style="max-width:100%"></body></html>"""


def parse_address(address: str) -> tuple[str, int]:
    """``HOST:PORT`` or ``PORT`` -> (host, port); host defaults to 127.0.0.1 (loopback only)."""
    host, _, port = str(address).rpartition(":")
    try:
        port_n = int(port)
    except ValueError:
        raise EdgeirstError(f"--serve expects HOST:PORT (e.g. 127.0.0.1:8080), got {address!r}") from None
    if not 0 <= port_n < 65536:
        raise EdgeirstError(f"port {port_n} is out of range")
    return host or "127.0.0.1", port_n


class MJPEGServer:
    def __init__(self, address: str = "127.0.0.1:8080", quality: int = 80) -> None:
        host, port = parse_address(address)
        self.quality = quality
        self._cond = threading.Condition()
        self._image: np.ndarray | None = None
        self._seq = 0
        self._jpeg: tuple[int, bytes] = (-1, b"")
        self._closed = False
        self.clients = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:  # quiet: the pipeline prints its own stats
                pass

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path in ("/", "/index.html"):
                    self._send(200, "text/html", PAGE)
                elif path == "/frame.jpg":
                    seq, jpeg = server.wait_jpeg(-1, timeout=5.0)
                    self._send(200, "image/jpeg", jpeg) if jpeg else self._send(503, "text/plain", b"no frame yet")
                elif path == "/stream.mjpg":
                    self._stream()
                else:
                    self._send(404, "text/plain", b"not found")

            def _send(self, code: int, ctype: str, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _stream(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                with server._cond:
                    server.clients += 1
                seq = -1
                try:
                    while not server._closed:
                        seq, jpeg = server.wait_jpeg(seq, timeout=1.0)
                        if not jpeg:
                            continue
                        self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode())
                        self.wfile.write(jpeg + b"\r\n")
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the viewer went away
                finally:
                    with server._cond:
                        server.clients -= 1

        try:
            self.httpd = ThreadingHTTPServer((host, port), Handler)
        except OSError as e:
            raise EdgeirstError(f"cannot serve on {host}:{port}: {e.strerror or e}") from None
        self.httpd.daemon_threads = True
        self.address = self.httpd.server_address[:2]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="mjpeg", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.address[0]}:{self.address[1]}/"

    def publish(self, image: np.ndarray) -> None:
        """Offer a new (BGR or grey uint8) frame to the viewers."""
        with self._cond:
            self._image = image
            self._seq += 1
            self._cond.notify_all()

    def wait_jpeg(self, after: int, timeout: float) -> tuple[int, bytes]:
        """The JPEG of the first frame newer than ``after`` (or the latest one if ``after`` < 0)."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._closed or (self._image is not None and self._seq > after), timeout):
                return after, b""
            if self._closed or self._image is None:
                return after, b""
            seq, image = self._seq, self._image
            if self._jpeg[0] == seq:
                return self._jpeg
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        jpeg = buf.tobytes() if ok else b""
        with self._cond:
            self._jpeg = (seq, jpeg)
        return seq, jpeg

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> "MJPEGServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
