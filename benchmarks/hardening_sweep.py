"""Issue 23's independent sweep: ~30 fresh cases of the hardening classes (outputs that are
devices, links, inputs or folders; names with .. / NUL; bad values and files) across commands,
each run as a real ``python -m edgeirst`` process in a temporary tree. For each: exit status,
whether stderr is one ``error:`` line or a traceback, and which files that existed before were
replaced or destroyed (a snapshot of the tree before and after: type, inode, content).

    python benchmarks/hardening_sweep.py [--out benchmarks/results/hardening-sweep.md]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "edgeirst" / "weights"


def snapshot(root: Path) -> dict[str, tuple]:
    out = {}
    for p in sorted(root.rglob("*")):
        st = os.lstat(p)
        digest = hashlib.sha256(p.read_bytes()).hexdigest()[:12] if stat.S_ISREG(st.st_mode) else None
        target = os.readlink(p) if stat.S_ISLNK(st.st_mode) else None
        out[str(p.relative_to(root))] = (stat.S_IFMT(st.st_mode), st.st_ino, digest, target)
    return out


def changed(before: dict, after: dict) -> list[str]:
    return [name for name, was in before.items() if name not in after or after[name] != was]


def _limits():
    resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))  # a runaway allocation fails, not the machine


def build_tree(t: Path) -> None:
    shutil.copyfile(SHIPPED / "light-sgmtlm-tiny.onnx", t / "m.onnx")
    shutil.copyfile(SHIPPED / "light-sgmtlm-tiny.pt", t / "m.pt")
    subprocess.run([sys.executable, "-m", "edgeirst", "data", "synth", str(t / "ds"), "--images", "6", "--height", "64",
                    "--width", "64"], check=True, capture_output=True)
    (t / "file.txt").write_text("keep")
    (t / "folder").mkdir()
    os.mknod(t / "full.csv", stat.S_IFCHR | 0o666, os.makedev(1, 7))
    os.mknod(t / "null.csv", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    (t / "dangling.jsonl").symlink_to(t / "nowhere")
    (t / "img-link.csv").symlink_to(t / "ds" / "images" / "synth_00000.png")
    os.link(t / "m.pt", t / "pt-hard.onnx")
    os.link(t / "ds" / "masks" / "synth_00001_pixels0.png", t / "mask-hard.pt")
    (t / "split-link.onnx").symlink_to(t / "ds" / "idx_synth" / "val.txt")
    with zipfile.ZipFile(t / "zip.pt", "w") as z:
        z.writestr("a.txt", "not a checkpoint")
    (t / "nul-split.txt").write_bytes(b"synth_00000\x00\nsynth_00001\n")
    ids = (t / "ds" / "idx_synth" / "train.txt").read_text()
    (t / "utf16-twice.txt").write_bytes((ids + ids).encode("utf-16"))


def cases(t: Path) -> list[tuple[str, list[str]]]:
    m, pt, ds = str(t / "m.onnx"), str(t / "m.pt"), str(t / "ds")
    synth = "synthetic://?size=64x64"
    return [
        ("eval --roc symlink to a dataset image", ["eval", m, "--data", ds, "--split", "val", "-q", "--roc", str(t / "img-link.csv")]),
        ("eval --roc a full device", ["eval", m, "--data", ds, "--split", "val", "-q", "--roc", str(t / "full.csv")]),
        ("eval --roc a null device", ["eval", m, "--data", ds, "--split", "val", "-q", "--roc", str(t / "null.csv")]),
        ("eval --split list with a NUL byte", ["eval", m, "--data", ds, "--split", str(t / "nul-split.txt"), "-q"]),
        ("eval --split UTF-16 list, every id twice", ["eval", m, "--data", ds, "--split", str(t / "utf16-twice.txt"), "-q"]),
        ("export --out hard link to the input .pt", ["export", pt, "--no-check", "--out", str(t / "pt-hard.onnx")]),
        ("export --size 0x5", ["export", pt, "--out", str(t / "e.onnx"), "--size", "0x5"]),
        ("export --size 16384 (memory)", ["export", pt, "--no-check", "--out", str(t / "e.onnx"), "--size", "16384"]),
        ("export a zip that is not a checkpoint", ["export", str(t / "zip.pt"), "--out", str(t / "e.onnx")]),
        ("quantize --out an existing folder", ["quantize", m, "--precision", "fp16", "--val-split", "none", "-q", "--out", str(t / "folder")]),
        ("quantize a .pt model", ["quantize", pt, "--precision", "fp16", "--val-split", "none", "-q", "--out", str(t / "q.onnx")]),
        ("calibrate --out symlink to the split list", ["calibrate", m, "--data", ds, "-q", "--out", str(t / "split-link.onnx")]),
        ("prune --out hard link to a mask", ["prune", pt, "--ratio", "0.2", "--count-size", "64", "--out", str(t / "mask-hard.pt")]),
        ("bench --csv a socket", ["bench", "--models", m, "--size", "64", "--runs", "1", "--warmup", "0", "-q", "--csv", str(t / "sock")]),
        ("bench --md under a file", ["bench", "--models", m, "--size", "64", "--runs", "1", "--warmup", "0", "-q", "--md", str(t / "file.txt/x.md")]),
        ("data coco --out the split list", ["data", "coco", ds, "--split", "val", "--out", str(t / "ds/idx_synth/val.txt")]),
        ("data synth OUT an existing file", ["data", "synth", str(t / "file.txt"), "--images", "1"]),
        ("data synth --targets 5-2", ["data", "synth", str(t / "new1"), "--images", "1", "--targets", "5-2"]),
        ("data synth --scr 0", ["data", "synth", str(t / "new2"), "--images", "1", "--scr", "0"]),
        ("run --jsonl a dangling symlink", ["run", m, "--source", synth, "--max-frames", "1", "-q", "--jsonl", str(t / "dangling.jsonl")]),
        ("run --save-dir the input images folder", ["run", m, "--source", str(t / "ds/images"), "-q", "--save-dir", str(t / "ds/images")]),
        ("run synthetic://?seed=abc", ["run", m, "--source", "synthetic://?seed=abc", "--max-frames", "1", "-q"]),
        ("run synthetic://?size=99999x99999", ["run", m, "--source", "synthetic://?size=99999x99999", "--max-frames", "1", "-q"]),
        ("run synthetic://?frames=-3", ["run", m, "--source", "synthetic://?frames=-3&size=64x64", "-q"]),
        ("demo --out a .txt name", ["demo", m, "--frames", "1", "--size", "64", "--out", str(t / "d.txt")]),
        ("demo --size 0", ["demo", m, "--frames", "1", "--size", "0", "--out", str(t / "d.mp4")]),
        ("deploy bundle --out the model's own folder", ["deploy", "bundle", m, "--profile", "orin-nano", "--dry-run", "--out", str(t)]),
        ("deploy bundle --service-name 'a b'", ["deploy", "bundle", m, "--profile", "orin-nano", "--out", str(t / "b"), "--service-name", "a b"]),
        ("deploy push --remote-dir a/./../..", ["deploy", "push", m, "--host", "u@h", "--profile", "orin-nano", "--dry-run", "--remote-dir", "a/./../.."]),
        ("train --out an existing file", ["train", "mshnet", "--data", ds, "--epochs", "1", "--out", str(t / "file.txt")]),
        # last: it replaces a dataset image that is no input of the run (by design: a name given as --roc)
        ("eval --roc a dataset image itself", ["eval", m, "--data", ds, "--split", "val", "-q", "--roc", str(t / "ds/images/synth_00002.png")]),
        ("train --data ''", ["train", "mshnet", "--data", "", "--epochs", "1", "--out", str(t / "r")]),
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "hardening-sweep.md")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgeirst-sweep-") as tree:
        t = Path(tree)
        build_tree(t)
        with socket.socket(socket.AF_UNIX) as sock:
            sock.bind(str(t / "sock"))
            for name, argv in cases(t):
                before = snapshot(t)
                p = subprocess.run([sys.executable, "-m", "edgeirst", *argv], capture_output=True, text=True, cwd=tree,
                                   timeout=300, preexec_fn=_limits, env={**os.environ, "OMP_NUM_THREADS": "1"})
                errors = [ln for ln in p.stderr.splitlines() if ln.startswith("error:")]
                shape = "traceback" if "Traceback" in p.stderr else f"{len(errors)} error line(s)"
                lost = changed(before, snapshot(t))
                line = (errors[0] if errors else p.stderr.strip().splitlines()[-1] if p.stderr.strip() else "")
                rows.append((name, p.returncode, shape, ", ".join(lost) or "none",
                             line.replace(tree, "T").replace("\x00", "\\0")[:160]))
                print(f"{p.returncode:>3}  {shape:<18} {name}", flush=True)
    table = ["| case | exit | stderr | replaced/destroyed | first error (T = the temporary tree) |",
             "|---|---|---|---|---|"]
    table += [f"| {n} | {rc} | {s} | {lost} | {line.replace('|', '/')} |" for n, rc, s, lost, line in rows]
    print("\n".join(table))
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(table) + "\n")


if __name__ == "__main__":
    main()
