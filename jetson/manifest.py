"""A bundle's ``manifest.json``: the sha256 of every file ``edgeirst deploy`` wrote, checked on
the device by ``python -m edgeirst.jetson.check`` and on the host by ``deploy --verify``.

Device side: the standard library only (the host-side builder, ``bundle``, imports this).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import List, Union

MANIFEST = "manifest.json"


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
        if not p.is_file():
            problems.append(f"{name}: missing")
        elif sha256_file(p) != entry.get("sha256"):
            problems.append(f"{name}: sha256 differs from the manifest")
    if not manifest.get("files"):
        problems.append(f"{MANIFEST} lists no files")
    return problems
