"""Writing files safely: every file edgeirst writes goes through here.

``atomic_output(path)`` yields a temporary name in the same folder and renames it into place
only when the block completes, so a full disk, a signal or an error leaves the old file intact
and no partial file behind. ``publish(tmp, path)`` is that last step for a file another tool
wrote (TensorRT, trtexec, a wheel build), the only place edgeirst renames a file into place.

What an output may be (``check_output``, consulted by every writer):

- a new name, or an existing regular file: replaced atomically;
- a character device or a fifo (``/dev/null``, a named pipe, a terminal), or the system's own
  links to open files (``/dev/stdout``, ``/dev/fd/N``, ``/proc/self/fd/N``): written *into*, as
  ``cp`` and ``tee`` do, never renamed over (``/dev/full`` then says "no space left on device");
- anything else that exists is refused in one line: a folder, a socket, a block device, and a
  symbolic link to a file (replacing the link would silently leave its target stale, writing
  through it would silently change a file under another name: give the target's own path);
- one of the running command's inputs (``protect_inputs``, compared by device and inode) is
  refused, and so is an existing model (``.pt`` checkpoint, ONNX file, TensorRT engine) that the
  new file would replace with another kind of content (ONNX bytes over a checkpoint, a CSV over
  a model) unless the command was asked to (``allow_replacing_models``: ``--overwrite``). A
  model over a model of its own kind is an ordinary update.

The inputs live in a scope (``command_scope``, a context variable the CLI opens around each
command and resets after it); outside any scope only the file-type rules apply.
``os_error`` turns an OSError a user can cause into one line that names the path and the cause.
"""

from __future__ import annotations

import contextlib
import contextvars
import errno
import os
import re
import shutil
import stat
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterator, Optional, Tuple

from edgeirst.errors import EdgeirstError

CHECKPOINT, ONNX, ENGINE = "checkpoint", "ONNX model", "TensorRT engine"
CHECKPOINT_SUFFIXES = (".pt", ".pth", ".ckpt")
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")
# the system's links to already open files: written into, like the device or pipe behind them
STREAM_LINK_DIRS = ("/dev/", "/proc/")
UNKNOWN = "unknown"  # check_output's kind when the content is not written yet


def os_error(e: OSError, path: str | Path | None = None, action: str = "write") -> EdgeirstError:
    """One line for an OSError: what, where, why (``No space left on device`` ...)."""
    where = path if path is not None else e.filename
    cause = e.strerror or str(e)
    if e.errno == errno.ENOSPC:
        cause = "no space left on device"
    elif e.errno == errno.EISDIR:
        cause = "it is a directory, expected a file"
    elif e.errno == errno.ENOTDIR:
        cause = "a parent of it is a file, not a directory"
    elif e.errno == errno.EFBIG:
        cause = "file too large (over the file-size limit, ulimit -f, or the file system's largest file)"
    return EdgeirstError(f"cannot {action} {where}: {cause}" if where else f"cannot {action} a file: {cause}")


# -- the running command's inputs ----------------------------------------------------------------
@dataclass
class _Scope:
    inputs: Dict[Tuple[int, int], str] = field(default_factory=dict)
    replace_models: bool = False


_SCOPE: contextvars.ContextVar[Optional[_Scope]] = contextvars.ContextVar("edgeirst_io_scope", default=None)


@contextlib.contextmanager
def command_scope() -> Iterator[None]:
    """Within the block, outputs are checked against the inputs ``protect_inputs`` names (a
    nested scope starts with its parent's inputs); reset when the block ends."""
    parent = _SCOPE.get()
    token = _SCOPE.set(_Scope(dict(parent.inputs), parent.replace_models) if parent else _Scope())
    try:
        yield
    finally:
        _SCOPE.reset(token)


def protect_inputs(*paths: str | Path | None) -> None:
    """Name files the running command reads: no writer in this scope may write over them.
    Names that are not existing regular files (``-``, ``default``, a URL, a camera) are ignored."""
    scope = _SCOPE.get()
    if scope is None:
        return
    for p in paths:
        if p is None or str(p) == "-":
            continue
        try:
            st = os.stat(Path(str(p)).expanduser())
        except (OSError, ValueError):
            continue
        if stat.S_ISREG(st.st_mode):
            scope.inputs[(st.st_dev, st.st_ino)] = str(p)


def allow_replacing_models() -> None:
    """The running command may replace an existing model with content of another kind (``--overwrite``)."""
    scope = _SCOPE.get()
    if scope is not None:
        scope.replace_models = True


# -- what an output may be -----------------------------------------------------------------------
def _sniff(head: bytes) -> Optional[str]:
    """The kind of model these first bytes begin (None: not a model we recognise)."""
    if head.startswith(b"PK\x03\x04") or (len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5):
        return CHECKPOINT  # torch.save: a zip archive (or a pickle, before torch 1.6)
    if len(head) >= 3 and head[0] == 0x08:  # ONNX ModelProto: ir_version (field 1, a varint) first
        i = 1
        while i < len(head) and head[i] & 0x80:
            i += 1
        if i + 1 < len(head) and head[i + 1] in (0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42):
            return ONNX
    return None


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(16)
    except OSError:
        return b""


def model_kind(path: str | Path) -> Optional[str]:
    """The kind of model an existing file holds: a TensorRT engine by its suffix, a checkpoint by
    its suffix and zip/pickle bytes, an ONNX model by its suffix and protobuf bytes; else None."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in ENGINE_SUFFIXES:
        return ENGINE
    kind = _sniff(_head(path)) if suffix in CHECKPOINT_SUFFIXES + (".onnx",) else None
    return kind if kind == (ONNX if suffix == ".onnx" else CHECKPOINT) else None


def _a(kind: str) -> str:
    return ("an " if kind[0] in "AEIOU" else "a ") + kind


def _is_stream(path: Path, st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode)


def check_output(path: str | Path, kind: Optional[str] = UNKNOWN) -> str:
    """How ``path`` may be written: ``"file"`` (a new or regular file, replaced atomically) or
    ``"stream"`` (a device, fifo or open-file link, written into); EdgeirstError for anything
    else (see the module's docstring). ``kind`` is what will be written (``model_kind``'s words,
    or None for anything else): an existing model of another kind is refused; ``UNKNOWN`` (the
    default) leaves that check to the moment the content exists (``publish``)."""
    path = Path(path)
    try:
        link = stat.S_ISLNK(os.lstat(path).st_mode)
    except (FileNotFoundError, NotADirectoryError):  # a new name (a missing folder: the write says so)
        return "file"
    except OSError as e:
        raise os_error(e, path) from None
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise EdgeirstError(f"cannot write {path}: it is a symbolic link to {os.readlink(path)}, which does not "
                            "exist; give a file name that is not a link") from None
    except OSError as e:
        raise os_error(e, path) from None
    if _is_stream(path, st) or (link and str(path).startswith(STREAM_LINK_DIRS) and stat.S_ISREG(st.st_mode)):
        return "stream"
    if stat.S_ISDIR(st.st_mode):
        raise EdgeirstError(f"cannot write {path}: it is a directory, expected a file name")
    if not stat.S_ISREG(st.st_mode):
        what = "a socket" if stat.S_ISSOCK(st.st_mode) else "a block device" if stat.S_ISBLK(st.st_mode) \
            else "not a regular file"
        raise EdgeirstError(f"cannot write {path}: it is {what}; give a file name")
    if link:
        raise EdgeirstError(f"cannot write {path}: it is a symbolic link to {os.readlink(path)}; edgeirst does not "
                            "replace links or write through them: give the file's own path, or remove the link")
    scope = _SCOPE.get()
    if scope is not None and (st.st_dev, st.st_ino) in scope.inputs:
        raise EdgeirstError(f"{path} is also an input of this command ({scope.inputs[(st.st_dev, st.st_ino)]}); "
                            "writing it would destroy the input: choose another output name")
    existing = model_kind(path)
    if existing is not None and kind != UNKNOWN and kind != existing and not (scope is not None and scope.replace_models):
        raise EdgeirstError(f"cannot write {path}: it holds {_a(existing)} and this would replace it with "
                            f"{_a(kind) if kind else 'a file that is not a model'}; choose another name, or remove "
                            "it first (commands that write models take --overwrite)")
    return "file"


def open_stream(path: str | Path) -> int:
    """A descriptor that writes into the device, fifo or open file ``path`` (``check_output``
    said ``"stream"``): ``/dev/stdout``, ``/dev/fd/N``... share the process's own descriptor (and
    its position, after what was printed), anything else is opened without truncating it."""
    text = str(path)
    m = re.fullmatch(r"/dev/(stdout|stderr)|/dev/fd/(\d+)|/proc/self/fd/(\d+)", text)
    if m:
        fd = {"stdout": 1, "stderr": 2}.get(m.group(1) or "", None)
        fd = fd if fd is not None else int(m.group(2) or m.group(3))
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        return os.dup(fd)
    return os.open(text, os.O_WRONLY | os.O_APPEND)


def _copy_into(src: Path, dst: Path) -> None:
    """Write ``src``'s bytes into the device, fifo or open file ``dst``."""
    with open(src, "rb") as fin, open(open_stream(dst), "wb", closefd=True) as fout:
        shutil.copyfileobj(fin, fout)


def publish(tmp: str | Path, path: str | Path, mode: Optional[int] = 0o644, kind: Optional[str] = None) -> Path:
    """Put the finished file ``tmp`` in place at ``path`` (``check_output`` first): renamed over a
    regular file, or copied into a device/fifo and removed. ``kind`` says what ``tmp`` holds
    when its bytes do not (a TensorRT plan); by default it is sniffed. ``mode`` None keeps tmp's."""
    tmp, path = Path(tmp), Path(path)
    try:
        how = check_output(path, kind or _sniff(_head(tmp)))
        if how == "stream":
            _copy_into(tmp, path)
            tmp.unlink()
            return path
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except OSError as e:
        raise os_error(e, path) from None
    return path


@contextlib.contextmanager
def atomic_output(path: str | Path, mode: int = 0o644, kind: Optional[str] = None) -> Iterator[Path]:
    """``with atomic_output(p) as tmp: write(tmp)`` -> ``p`` appears complete or not at all
    (or, for a device or fifo, is written into once the content is complete)."""
    path = Path(path)
    how = check_output(path)
    try:
        if how == "file":
            path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp",
                                    dir=path.parent if how == "file" else None)
        os.close(fd)
    except OSError as e:
        raise os_error(e, path) from None
    tmp = Path(name)
    try:
        yield tmp
        publish(tmp, path, mode, kind)
    except OSError as e:
        raise os_error(e, path) from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def write_text(path: str | Path, text: str) -> Path:
    with atomic_output(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_bytes(path: str | Path, data: bytes) -> Path:
    with atomic_output(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def same_file(a: str | Path, b: str | Path) -> bool:
    """Both name the same existing file (same device and inode), or the same resolved path."""
    a, b = Path(a).expanduser(), Path(b).expanduser()
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


def refuse_input_as_output(output: str | Path | None, *inputs: str | Path | None, option: str = "--out") -> None:
    """EdgeirstError when ``output`` is one of ``inputs`` (writing it would destroy the input),
    checked now, before any work; the inputs also stay protected for every later write."""
    protect_inputs(*inputs)
    if output is None or str(output) == "-":
        return
    for source in inputs:
        if source is None or str(source) == "-":
            continue
        with contextlib.suppress(TypeError, ValueError):
            if Path(str(source)).expanduser().exists() and same_file(output, str(source)):
                raise EdgeirstError(f"{option} {output} is also an input of this command; writing it would destroy "
                                    "the input: choose another output name")


__all__ = ["CHECKPOINT", "ENGINE", "ONNX", "allow_replacing_models", "atomic_output", "check_output", "command_scope",
           "model_kind", "open_stream", "os_error", "protect_inputs", "publish", "refuse_input_as_output", "same_file", "write_bytes",
           "write_text"]
