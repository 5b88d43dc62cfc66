"""A bundle's ``manifest.json``: the sha256 of every file ``edgeirst deploy`` wrote, checked on
the device by ``python -m edgeirst.jetson.check`` and on the host by ``deploy verify``.

``edgeirst.toml`` is the user's to edit: it is listed but not held to its hash (its readers
check it for validity instead). Every name in a manifest must stay inside the bundle: an entry
such as ``../x`` or ``/etc/x`` is refused, never read, replaced or deleted.

Device side: the standard library and ``edgeirst.errors`` only (the host-side builder imports this).
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path, PurePosixPath
from typing import List, Union

from edgeirst.errors import EdgeirstError

# The oldest Python the device side (runtime, launcher, device check) runs on: JetPack 5's 3.8. The
# bundle expects it (manifest.json), the device wheel says it (Requires-Python) and the device check
# tests it; the host side (training, export, deploy) needs 3.10.
DEVICE_PYTHON = (3, 8)

MANIFEST = "manifest.json"
EDITABLE = ("edgeirst.toml",)  # files a field engineer may edit: checked for validity, not by hash
_UNIT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}")


def confined(name: str) -> bool:
    """``name`` is a relative path that stays inside the bundle folder."""
    p = PurePosixPath(name)
    return bool(name) and "\\" not in name and not p.is_absolute() and ".." not in p.parts and p.parts != ()


def check_service_name(name: str) -> str:
    """A systemd unit name that is also a plain file name in the bundle (never a path)."""
    if not _UNIT_NAME.fullmatch(name or "") or name.endswith(".service"):
        raise EdgeirstError(f"--service-name {name!r} is not a unit name: use letters, digits and _.@- (at most 64, "
                            "no '/', no leading '.', without the .service suffix)")
    return name


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_bundle(out: Union[str, Path]) -> List[str]:
    """Problems with a bundle: missing manifest, files missing or not matching their sha256."""
    out = Path(out)
    try:
        manifest = json.loads((out / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError) as e:
        return [f"{out / MANIFEST}: {getattr(e, 'strerror', None) or e}"]
    problems = []
    for name, entry in sorted(manifest.get("files", {}).items()):
        p = out / name
        if not confined(name):
            problems.append(f"{name}: the entry points outside the bundle")
        elif not p.is_file():
            problems.append(f"{name}: missing")
        elif name not in EDITABLE and sha256_file(p) != entry.get("sha256"):
            problems.append(f"{name}: sha256 differs from the manifest")
    if not manifest.get("files"):
        problems.append(f"{MANIFEST} lists no files")
    return problems
