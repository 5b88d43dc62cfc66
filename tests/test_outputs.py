"""Where outputs may go (edgeirst.io, consulted by every writer): devices and fifos are written
into, never replaced; links, sockets, a command's own inputs and models of another kind are
refused in one line; and only edgeirst/io.py renames files into place."""

from __future__ import annotations

import os
import re
import shutil
import socket
import stat
import subprocess
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeirst import io
from edgeirst.errors import EdgeirstError
from test_hardening import one_error_line
from test_runtime_helpers import REPO, char_device, edgeirst_cmd, read_jsonl, run_cli, tiny_checkpoint, tiny_onnx

SHIPPED = REPO / "edgeirst" / "weights"


def _read_fifo(path: Path, into: list) -> threading.Thread:
    def reader():
        with open(path, "rb") as f:
            into.append(f.read())
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    return t


# -- devices, fifos, links, sockets ------------------------------------------------------------

def test_a_fifo_is_written_into_not_replaced(tmp_path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[bytes] = []
    t = _read_fifo(fifo, got)
    io.write_text(fifo, "a,b\n1,2\n")
    t.join(10)
    assert got == [b"a,b\n1,2\n"]
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)  # still the fifo
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]  # no temporary left beside it


def test_a_null_device_stays_a_device_and_a_full_one_is_one_line(tmp_path):
    null, full = char_device(tmp_path / "null", 1, 3), char_device(tmp_path / "full", 1, 7)
    before = os.stat(null)
    io.write_bytes(null, b"x" * 1000)
    after = os.stat(null)
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev and after.st_ino == before.st_ino
    with pytest.raises(EdgeirstError, match="no space left on device"):
        io.write_text(full, "x")
    assert stat.S_ISCHR(os.stat(full).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full", "null"]  # no temporary left beside them


def test_links_sockets_and_folders_are_refused(tmp_path):
    target = tmp_path / "model.onnx"
    target.write_bytes(b"keep")
    link = tmp_path / "link.csv"
    link.symlink_to(target)
    with pytest.raises(EdgeirstError, match="symbolic link"):
        io.write_text(link, "x")
    dangling = tmp_path / "dangling.csv"
    dangling.symlink_to(tmp_path / "nowhere")
    with pytest.raises(EdgeirstError, match="does not exist"):
        io.write_text(dangling, "x")
    sock_path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(sock_path))
        with pytest.raises(EdgeirstError, match="socket"):
            io.write_text(sock_path, "x")
    with pytest.raises(EdgeirstError, match="directory"):
        io.write_text(tmp_path, "x")
    assert target.read_bytes() == b"keep" and os.path.islink(link) and os.path.islink(dangling)


def test_eval_roc_to_dev_full_and_a_fifo_through_the_cli(tmp_path):
    root = tmp_path / "d"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    mask = np.zeros((32, 32), np.uint8)
    mask[10:13, 10:13] = 255
    cv2.imwrite(str(root / "images" / "a.png"), np.where(mask > 0, 250, 40).astype(np.uint8))
    cv2.imwrite(str(root / "masks" / "a_pixels0.png"), mask)
    model = tiny_onnx(tmp_path)
    full = char_device(tmp_path / "full", 1, 7)
    line = one_error_line(run_cli("eval", model, "--data", root, "--split", "all", "--roc", full, "-q"))
    assert str(full) in line and "no space left on device" in line
    assert stat.S_ISCHR(os.stat(full).st_mode)
    fifo = tmp_path / "roc.csv"
    os.mkfifo(fifo)
    got: list[bytes] = []
    t = _read_fifo(fifo, got)
    p = run_cli("eval", model, "--data", root, "--split", "all", "--roc", fifo, "-q", timeout=120)
    t.join(10)
    assert p.returncode == 0, p.stderr
    assert got and got[0].startswith(b"threshold")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_jsonl_to_dev_stdout_follows_what_was_printed(tmp_path):
    out = tmp_path / "stdout.txt"
    with open(out, "w") as f:
        f.write("before\n")
        f.flush()
        p = subprocess.run(edgeirst_cmd("run", tiny_onnx(tmp_path), "--source", "synthetic://?size=64x64",
                                        "--max-frames", "2", "-q", "--jsonl", "/dev/stdout"),
                           stdout=f, stderr=subprocess.DEVNULL, cwd=REPO, timeout=60)
    assert p.returncode == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "before" and len(lines) == 3 and '"frame": 1' in lines[2]


# -- outputs that are inputs, models of another kind ---------------------------------------------

def test_the_writer_refuses_the_scopes_inputs_and_the_scope_ends(tmp_path):
    model = tmp_path / "m.bin"
    model.write_bytes(b"input")
    other = tmp_path / "hard.bin"
    os.link(model, other)
    with io.command_scope():
        io.protect_inputs(model, "default", "-", None, tmp_path / "missing")
        with pytest.raises(EdgeirstError, match="also an input"):
            io.write_text(other, "x")  # another name, the same inode
        with io.command_scope():  # a nested scope keeps its parent's inputs
            with pytest.raises(EdgeirstError, match="also an input"):
                io.write_text(model, "x")
    io.write_bytes(tmp_path / "fine.bin", b"ok")
    assert model.read_bytes() == b"input"
    io.write_text(other, "x")  # outside the command's scope the file is an ordinary output
    assert other.read_text() == "x" and model.read_bytes() == b"input"  # replaced, not written through


def test_a_model_is_not_replaced_by_another_kind(tmp_path):
    pt = tmp_path / "a.pt"
    shutil.copyfile(SHIPPED / "light-sgmtlm-tiny.pt", pt)
    onnx_file = tmp_path / "a.onnx"
    shutil.copyfile(SHIPPED / "light-sgmtlm-tiny.onnx", onnx_file)
    engine = tmp_path / "a.engine"
    engine.write_bytes(b"\x00plan")
    assert [io.model_kind(p) for p in (pt, onnx_file, engine, tmp_path / "x.csv")] == [io.CHECKPOINT, io.ONNX,
                                                                                       io.ENGINE, None]
    for path in (pt, onnx_file, engine):
        with pytest.raises(EdgeirstError, match="holds"):
            io.write_text(path, "threshold,pd\n")
    with pytest.raises(EdgeirstError, match="holds a checkpoint"):
        io.write_bytes(pt, onnx_file.read_bytes())
    io.write_bytes(onnx_file, onnx_file.read_bytes())  # a model over its own kind: an update
    plan = tmp_path / "a.engine.tmp"  # as TensorRT leaves it: bytes that say nothing of their kind
    plan.write_bytes(b"p2")
    with pytest.raises(EdgeirstError, match="holds a TensorRT engine"):
        io.publish(plan, engine)
    io.publish(plan, engine, kind=io.ENGINE)
    assert engine.read_bytes() == b"p2" and not plan.exists()
    with io.command_scope():
        io.allow_replacing_models()
        io.write_bytes(pt, onnx_file.read_bytes())
    assert io.model_kind(pt) is None  # ONNX bytes under a .pt name: asked for, done


def test_the_three_reported_overwrites_are_refused_through_the_cli(tmp_path):
    ckpt = tiny_checkpoint(tmp_path)
    copy = tmp_path / "mcopy.pt"
    shutil.copyfile(ckpt, copy)
    data = copy.read_bytes()
    root = tmp_path / "d"
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    cv2.imwrite(str(root / "images" / "a.png"), np.full((32, 32), 40, np.uint8))
    cv2.imwrite(str(root / "masks" / "a_pixels0.png"), np.zeros((32, 32), np.uint8))
    assert "also an input" in one_error_line(run_cli("eval", copy, "--data", root, "--split", "all", "--roc", copy,
                                                     "-q", timeout=120))
    assert "also an input" in one_error_line(run_cli("eval", copy, "--data", root, "--split", "all", "--roc",
                                                     root / "images" / "a.png", "-q", timeout=120))
    assert copy.read_bytes() == data
    good = tiny_onnx(tmp_path)
    model_bytes = good.read_bytes()
    link = tmp_path / "sl.jsonl"
    link.symlink_to(good)
    assert "symbolic link" in one_error_line(run_cli("run", good, "--source", "synthetic://?size=64x64",
                                                     "--max-frames", "1", "-q", "--jsonl", link))
    hard = tmp_path / "hard.jsonl"
    os.link(good, hard)
    assert "also an input" in one_error_line(run_cli("run", good, "--source", "synthetic://?size=64x64",
                                                     "--max-frames", "1", "-q", "--jsonl", hard))
    assert good.read_bytes() == model_bytes
    other = tmp_path / "other.pt"
    shutil.copyfile(ckpt, other)
    line = one_error_line(run_cli("export", ckpt, "--out", other, "--no-check", timeout=120))
    assert "holds a checkpoint" in line and "--overwrite" in line
    assert other.read_bytes() == ckpt.read_bytes()
    p = run_cli("export", ckpt, "--out", other, "--no-check", "--overwrite", timeout=120)
    assert p.returncode == 0, p.stderr
    assert io.model_kind(other) is None and other.read_bytes()[:1] == b"\x08"
    jsonl = tmp_path / "o.jsonl"  # an ordinary output still works, and so does rewriting it
    for _ in range(2):
        assert run_cli("run", good, "--source", "synthetic://?size=64x64", "--max-frames", "2", "-q",
                       "--jsonl", jsonl).returncode == 0
    assert len(read_jsonl(jsonl)) == 2


# -- one place renames files into place ----------------------------------------------------------

def test_os_replace_is_called_only_in_edgeirst_io():
    calls = []
    for path in REPO.rglob("*.py"):
        rel = path.relative_to(REPO)
        if rel.parts[0] in ("tests", "build") or any(part.startswith(".") or part.endswith(".egg-info")
                                                     for part in rel.parts):
            continue
        for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            if re.search(r"\bos\.replace\(|\bos\.rename\(|\.replace\(\s*tmp|\bshutil\.move\(", line):
                calls.append(f"{rel}:{n}")
    assert [c for c in calls if not c.startswith("edgeirst/io.py:")] == []
    assert any(c.startswith("edgeirst/io.py:") for c in calls)  # the one home is still found by the search
