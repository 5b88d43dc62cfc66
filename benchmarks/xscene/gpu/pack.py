"""Pack what the cross-scene training runs need for a lent GPU machine (the `device` tool).

That machine reaches no network and gets only this checkout (64 MiB in all, tracked files
included), not ../shared/data. This writes, in folders that .git/info/exclude ignores:

- ``.devdata/``: the images of NUAA-SIRST trainval and of the SIRST-v2 scene lists as lossless
  WebP (about 2/3 of their PNG size; grey images stay bit-exact), their masks and split lists;
  the background training frames of the ``iraytek`` sequence thinned to every third one
  (near-duplicates: every second frame of one sequence already), listed in
  ``.devdata/lists/train-sub.txt``;
- ``.whl/``: an edgeirst wheel built from HEAD that ships only the default, tiny and SIWD
  checkpoints (``--keep``, for runs that continue them), and tomli-w, so the machine's Python
  needs no build and no download.

The 49 MB of shipped weights in the working tree would not fit beside them: ``--aside`` removes
the tracked ``edgeirst/weights/*.onnx|*.pt`` for the call (refused while they have uncommitted
changes), ``--restore`` checks them out again. Then, with the device tool:
``run(command="bash benchmarks/xscene/gpu/train.sh $OUT", carry=[".devdata", ".whl"], timeout_s=600)``.

    python benchmarks/xscene/gpu/pack.py --data ../shared/data --aside
    python benchmarks/xscene/gpu/pack.py --restore
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2

from edgeirst.errors import EdgeirstError
from edgeirst.io import os_error, write_bytes, write_text

REPO = Path(__file__).resolve().parents[3]
LISTS = REPO / "benchmarks" / "xscene"
KEEP = ("mshnet-w05-lc.pt", "light-sgmtlm-tiny.pt", "mtunet-siwd-w025.pt")


def _ids(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def _put(src: Path, dst: Path, ids: list[str]) -> None:
    (dst / "images").mkdir(parents=True, exist_ok=True)
    (dst / "masks").mkdir(parents=True, exist_ok=True)
    for i in ids:
        image = next((src / "images").glob(f"{i}.*"), None)
        im = None if image is None else cv2.imread(str(image), cv2.IMREAD_UNCHANGED)
        if im is None:
            raise EdgeirstError(f"no readable image for id {i!r} in {src / 'images'}")
        if im.ndim == 3:  # grey frames stored as 3 equal channels
            im = cv2.cvtColor(im, cv2.COLOR_BGR2GRAY)
        ok, buf = cv2.imencode(".webp", im, [cv2.IMWRITE_WEBP_QUALITY, 101])  # > 100: lossless
        if not ok or not (cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE) == im).all():
            raise EdgeirstError(f"{image} does not round-trip through lossless WebP")
        write_bytes(dst / "images" / f"{i}.webp", buf.tobytes())
        for mask in (src / "masks").glob(f"{i}*.png"):
            if mask.stem in (i, f"{i}_pixels0"):
                write_bytes(dst / "masks" / mask.name, mask.read_bytes())


def pack(data: Path, keep: tuple[str, ...]) -> None:
    out = REPO / ".devdata"
    shutil.rmtree(out, ignore_errors=True)
    _put(data / "sirst", out / "sirst", _ids(data / "sirst" / "idx_427" / "trainval.txt"))
    for split in (data / "sirst" / "idx_427").glob("*.txt"):
        write_text(out / "sirst" / "idx_427" / split.name, split.read_text())
    backgrounds = _ids(LISTS / "backgrounds-train.txt")
    seq = sorted((b for b in backgrounds if b.startswith("iraytek-")), key=lambda b: int(b.split("-")[1]))
    train = _ids(LISTS / "scenes-train.txt") + seq[::3] + [b for b in backgrounds if not b.startswith("iraytek-")]
    _put(data / "sirst-v2-scenes", out / "sirst-v2-scenes", train + _ids(LISTS / "val.txt"))
    write_text(out / "lists" / "train-sub.txt", "\n".join(train) + "\n")

    whl = REPO / ".whl"
    shutil.rmtree(whl, ignore_errors=True)
    whl.mkdir()
    with tempfile.TemporaryDirectory() as tmp:  # HEAD as committed, with only the checkpoints kept
        subprocess.run(f"git -C {REPO} archive HEAD | tar -x -C {tmp}", shell=True, check=True)
        for f in (Path(tmp) / "edgeirst" / "weights").glob("*.*"):
            if f.suffix in (".onnx", ".pt") and f.name not in keep:
                f.unlink()
        subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                        "-w", whl, tmp], check=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "-d", whl,
                    "tomli-w==1.2.0"], check=True)
    exclude = REPO / ".git" / "info" / "exclude"  # neither is committed
    text = exclude.read_text() if exclude.exists() else ""
    missing = [name for name in ("/.devdata/", "/.whl/") if name not in text.split()]
    if missing:
        sep = "" if not text or text.endswith("\n") else "\n"
        write_text(exclude, text + sep + "".join(f"{m}\n" for m in missing))


def _tracked_weights() -> list[str]:
    out = subprocess.run(["git", "-C", str(REPO), "ls-files", "edgeirst/weights"], capture_output=True, text=True,
                         check=True).stdout.split()
    return [p for p in out if p.endswith((".onnx", ".pt"))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--keep", nargs="*", default=list(KEEP), help="checkpoints the wheel ships")
    ap.add_argument("--aside", action="store_true", help="remove the tracked weights from the tree (committed)")
    ap.add_argument("--restore", action="store_true", help="check them out again from git")
    a = ap.parse_args()
    if a.restore:
        subprocess.run(["git", "-C", str(REPO), "checkout", "--", "edgeirst/weights"], check=True)
        print("restored the weights from git")
        return
    if not (a.data / "sirst").is_dir() or not (a.data / "sirst-v2-scenes").is_dir():
        raise EdgeirstError(f"{a.data} holds no sirst/ and sirst-v2-scenes/ (pass --data)")
    if a.aside:  # committed, so git puts them back; uncommitted changes there would be lost: refuse
        changed = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "edgeirst/weights"],
                                 capture_output=True, text=True, check=True).stdout.splitlines()
        if changed:
            raise EdgeirstError(f"edgeirst/weights has {len(changed)} uncommitted change(s) (git status); "
                                "commit them before --aside")
    pack(a.data, tuple(a.keep))
    if a.aside:
        for p in _tracked_weights():
            (REPO / p).unlink()
        print("removed the tracked weights from the tree; put them back with --restore after the call")
    size = sum(f.stat().st_size for d in (".devdata", ".whl") for f in (REPO / d).rglob("*") if f.is_file())
    print(f"packed {size / 2**20:.1f} MiB in .devdata/ and .whl/")


def _fail(line: str) -> None:
    print(f"error: {line}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    try:
        main()
    except EdgeirstError as e:
        _fail(str(e))
    except subprocess.CalledProcessError as e:
        _fail(f"{' '.join(map(str, e.cmd)) if isinstance(e.cmd, list) else e.cmd} failed (exit {e.returncode})")
    except OSError as e:  # a full disk, an unreadable file: one line naming the path
        _fail(str(os_error(e, action="write")))
