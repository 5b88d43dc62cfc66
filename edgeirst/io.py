"""Writing files safely: every file edgeirst writes goes through here.

``atomic_output(path)`` yields a temporary name in the same folder and renames it into place
only when the block completes, so a full disk, a signal or an error leaves the old file intact
and no partial file behind. ``refuse_input_as_output`` stops a command from writing over one of
its own inputs (compared by resolved path and inode, not by string). ``os_error`` turns an
OSError a user can cause into one line that names the path and the cause.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from edgeirst.errors import EdgeirstError


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
    return EdgeirstError(f"cannot {action} {where}: {cause}" if where else f"cannot {action} a file: {cause}")


@contextlib.contextmanager
def atomic_output(path: str | Path, mode: int = 0o644) -> Iterator[Path]:
    """``with atomic_output(p) as tmp: write(tmp)`` -> ``p`` appears complete or not at all."""
    path = Path(path)
    if path.is_dir():
        raise EdgeirstError(f"cannot write {path}: it is a directory, expected a file name")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
    except OSError as e:
        raise os_error(e, path) from None
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, mode)
        os.replace(tmp, path)
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
    """EdgeirstError when ``output`` is one of ``inputs`` (writing it would destroy the input)."""
    if output is None or str(output) == "-":
        return
    for source in inputs:
        if source is None or str(source) == "-":
            continue
        with contextlib.suppress(TypeError, ValueError):
            if Path(str(source)).expanduser().exists() and same_file(output, str(source)):
                raise EdgeirstError(f"{option} {output} is also an input of this command; writing it would destroy "
                                    "the input: choose another output name")


__all__ = ["atomic_output", "os_error", "refuse_input_as_output", "same_file", "write_bytes", "write_text"]
