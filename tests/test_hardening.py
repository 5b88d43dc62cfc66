"""What an unhappy user does: full disks, outputs that are inputs, runs in used folders,
interrupted training, values out of range, signals, data as it is in the wild. Each class of
failure ends in one clear line (or a warning) and loses nothing already written."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from edgeirst.data.sirst import SirstDataset, read_split
from edgeirst.io import atomic_output, refuse_input_as_output
from edgeirst.errors import EdgeirstError
from test_runtime_helpers import (REPO, char_device, edgeirst_cmd, read_jsonl, run_cli, tiny_checkpoint, tiny_meta,
                                  tiny_onnx)


def one_error_line(p: subprocess.CompletedProcess, status: int = 2) -> str:
    assert p.returncode == status, (p.returncode, p.stderr[-2000:])
    assert "Traceback" not in p.stderr, p.stderr
    errors = [ln for ln in p.stderr.strip().splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, p.stderr
    return errors[0]


def limited(max_bytes: int):
    """preexec_fn: files this process writes may not grow beyond ``max_bytes`` (EFBIG, as a full disk)."""
    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    return apply


# -- never destroy or half-write a user's file ------------------------------------------------

def test_atomic_output_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "model.onnx"
    target.write_bytes(b"old model")
    with pytest.raises(RuntimeError):
        with atomic_output(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("disk full")
    assert target.read_bytes() == b"old model" and sorted(tmp_path.iterdir()) == [target]


def test_export_on_a_full_disk_keeps_the_existing_model(tmp_path):
    ckpt = tiny_checkpoint(tmp_path)
    out = tmp_path / "out" / "m.onnx"
    out.parent.mkdir()
    out.write_bytes(b"the model that was here")
    p = subprocess.run(edgeirst_cmd("export", ckpt, "--out", out, "--no-check"), capture_output=True, text=True,
                       cwd=REPO, timeout=300, preexec_fn=limited(64 * 1024))
    line = one_error_line(p)
    assert str(out) in line and "too large" in line.lower()
    assert out.read_bytes() == b"the model that was here"
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.onnx"]  # no temporary left behind


def test_outputs_that_are_inputs_are_refused(tmp_path):
    ckpt = tiny_checkpoint(tmp_path)
    before = ckpt.read_bytes()
    assert "also an input" in one_error_line(run_cli("export", ckpt, "--out", ckpt, timeout=120))
    link = tmp_path / "same.pt"
    os.link(ckpt, link)  # another name, the same file: compared by inode
    assert "also an input" in one_error_line(run_cli("export", ckpt, "--out", link, timeout=120))
    assert ckpt.read_bytes() == before
    video = tmp_path / "src.mp4"
    from test_runtime_helpers import write_video

    write_video(video)
    data = video.read_bytes()
    model = tiny_onnx(tmp_path)
    assert "--save" in one_error_line(run_cli("run", model, "--source", video, "--save", video))
    assert "--jsonl" in one_error_line(run_cli("run", model, "--source", video, "--jsonl", video))
    assert video.read_bytes() == data
    with pytest.raises(EdgeirstError):
        refuse_input_as_output(tmp_path / "." / "src.mp4", video)


def test_jsonl_keeps_whole_lines_when_the_disk_fills(tmp_path):
    out = tmp_path / "o.jsonl"
    p = subprocess.run(edgeirst_cmd("run", tiny_onnx(tmp_path), "--source", "synthetic://?size=64x64&targets=3",
                                    "--no-track", "--jsonl", out, "-q"),
                       capture_output=True, text=True, cwd=REPO, timeout=120, preexec_fn=limited(3000))
    line = one_error_line(p)
    assert str(out) in line and "frames in" in p.stderr  # the summary, then the error line
    text = out.read_text()
    assert text.endswith("\n") and len(text) <= 3000
    assert [r["frame"] for r in read_jsonl(out)] == list(range(len(text.splitlines())))


@pytest.mark.slow  # 70 s: three training runs in subprocesses (2-core VM, busy)
def test_train_refuses_a_folder_that_holds_a_run(synth_root, tmp_path):
    pytest.importorskip("torch")
    args = ["train", "mshnet", "--data", synth_root, "--width", "0.25", "--epochs", "1", "--batch", "2", "--size", "64",
            "--max-steps", "1", "--out", tmp_path / "run"]
    assert run_cli(*args, timeout=300).returncode == 0
    best = (tmp_path / "run" / "best.pt").read_bytes()
    line = one_error_line(run_cli(*args, timeout=300))
    assert "already holds a run" in line and "--resume" in line and "--exist-ok" in line
    assert (tmp_path / "run" / "best.pt").read_bytes() == best
    assert run_cli(*args, "--exist-ok", timeout=300).returncode == 0
    assert len((tmp_path / "run" / "results.csv").read_text().splitlines()) == 2  # replaced, not appended


# -- resume is exact --------------------------------------------------------------------------

@pytest.mark.slow  # 17 s; test_train.py resumes in the fast set (2-core VM, busy)
def test_resume_reproduces_the_uninterrupted_run(synth_root, tmp_path):
    torch = pytest.importorskip("torch")
    from edgeirst.train import TrainConfig
    from edgeirst.train.trainer import train, weights_sha1
    from edgeirst.checkpoint import load_checkpoint

    def cfg(out, **kw):
        return TrainConfig(model="mshnet", data=str(synth_root), out=str(out), model_kwargs={"width": 0.25}, epochs=3,
                           batch=2, size=64, max_steps=2, optimizer="adam", lr=1e-3, warmup_epochs=1, threads=1,
                           **kw)

    whole = train(cfg(tmp_path / "whole"), progress=False)
    part = cfg(tmp_path / "part")
    with pytest.raises(KeyboardInterrupt):  # interrupted after the first of three epochs
        train(part, progress=False, callbacks=[_stop_after(0)])
    resumed = train(TrainConfig.for_resume(str(tmp_path / "part" / "last.pt")), progress=False)
    lr = lambda run: [row.split(",")[1] for row in (Path(run) / "results.csv").read_text().splitlines()[1:]]  # noqa: E731
    assert lr(tmp_path / "whole") == lr(tmp_path / "part") and len(lr(tmp_path / "part")) == 3
    a, _, _ = load_checkpoint(whole["last"])
    b, _, _ = load_checkpoint(resumed["last"])
    assert weights_sha1(a) == weights_sha1(b)
    assert torch.equal(a.state_dict()["stem.weight"], b.state_dict()["stem.weight"])


def _stop_after(epoch: int):
    def callback(e, row, model):
        if e == epoch:
            raise KeyboardInterrupt
    return callback


@pytest.mark.slow  # 43 s; test_train.py resumes in the fast set (2-core VM, busy)
def test_resume_takes_the_runs_settings_and_refuses_contradictions(synth_root, tmp_path):
    pytest.importorskip("torch")
    out = tmp_path / "run"
    assert run_cli("train", "mshnet", "--data", synth_root, "--width", "0.25", "--epochs", "1", "--batch", "2",
                   "--size", "64", "--max-steps", "1", "--lr", "0.002", "--out", out, timeout=300).returncode == 0
    last = out / "last.pt"
    line = one_error_line(run_cli("train", "--resume", last, "--lr", "0.5", timeout=300))
    assert "lr=0.5" in line and "0.002" in line
    p = run_cli("train", "--resume", last, "--epochs", "2", "--json", timeout=300)  # extending is allowed
    assert p.returncode == 0, p.stderr
    rows = (out / "results.csv").read_text().splitlines()
    assert [r.split(",")[0] for r in rows[1:]] == ["0", "1"]
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["lr"] == 0.002 and cfg["size"] == 64 and cfg["model_kwargs"] == {"width": 0.25}


# -- every value is checked where it enters ---------------------------------------------------

@pytest.mark.parametrize("args, words", [
    (["train", "mshnet", "--data", ".", "--batch", "0"], "--batch"),
    (["train", "mshnet", "--data", ".", "--lr", "-1"], "--lr"),
    (["train", "mshnet", "--data", ".", "--val-every", "0"], "--val-every"),
    (["train", "mshnet", "--data", ".", "--device", "tpu"], "--device"),
    (["train", "mshnet", "--data", ".", "--epochs", "0"], "--epochs"),
    (["train", "mshnet", "--data", ".", "--threshold", "2"], "--threshold"),
    (["train", "mshnet", "--data", ".", "--width", "0"], "--width"),
    (["export", "default", "--out", "x.onnx", "--size", "0"], "--size"),
    (["export", "default", "--out", "x.onnx", "--opset", "5"], "--opset"),
    (["run", "default", "--source", "synthetic://", "--threshold", "-0.5"], "--threshold"),
    (["run", "default", "--source", "synthetic://", "--gate", "-3"], "--gate"),
    (["demo", "--scr", "15-8"], "MIN 15"),
    (["demo", "--size", "abc"], "--size"),
    (["eval", "default", "--data", ".", "--threshold", "1.5"], "--threshold"),
])
def test_bad_values_are_one_line(args, words):
    assert words in one_error_line(run_cli(*args, timeout=120))


def test_os_errors_name_the_path(tmp_path):
    model = tiny_onnx(tmp_path)
    full = char_device(tmp_path / "full", 1, 7)  # never the machine's own /dev/full
    line = one_error_line(run_cli("run", model, "--source", "synthetic://?size=64x64", "--jsonl", full,
                                  "--max-frames", "3", "-q"))
    assert str(full) in line and "no space left" in line
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    root = _dataset(tmp_path / "d", {"a": np.zeros((8, 8), np.uint8)})
    line = one_error_line(run_cli("data", "coco", root, "--out", blocker / "c.json"))
    assert "afile" in line
    line = one_error_line(run_cli("run", model, "--source", "synthetic://?size=64x64", "--save", blocker / "v.mp4"))
    assert "afile" in line and ".mp4 name" not in line


def test_model_metadata_missing_fields_is_refused(tmp_path):
    import onnx

    m = onnx.load(str(tiny_onnx(tmp_path)))
    d = json.loads({p.key: p.value for p in m.metadata_props}["edgeirst"])
    del d["std"], d["threshold"]
    onnx.helper.set_model_props(m, {"edgeirst": json.dumps(d)})
    onnx.save(m, str(tmp_path / "partial.onnx"))
    line = one_error_line(run_cli("run", tmp_path / "partial.onnx", "--source", "synthetic://", "--max-frames", "1"))
    assert "std" in line and "threshold" in line


# -- never die silently -------------------------------------------------------------------------

def test_a_frame_too_large_for_memory_is_scaled_with_a_warning(tmp_path):
    import onnx

    m = onnx.load(str(tiny_onnx(tmp_path)))
    meta = tiny_meta(memory_per_pixel=1e9)  # a model that claims a GB per pixel: every frame is "too large"
    onnx.helper.set_model_props(m, {"edgeirst": meta.to_json()})
    onnx.save(m, str(tmp_path / "hungry.onnx"))
    p = run_cli("run", tmp_path / "hungry.onnx", "--source", "synthetic://?size=128x96", "--max-frames", "3", "-q",
                "--json", "--jsonl", tmp_path / "o.jsonl")
    assert p.returncode == 0, p.stderr
    warnings = [ln for ln in p.stderr.splitlines() if "warning:" in ln]
    assert len(warnings) == 1 and "--fixed-size" in warnings[0] and "128x96" in warnings[0]
    assert json.loads(p.stdout)["frames"] == 3 and len(read_jsonl(tmp_path / "o.jsonl")) == 3


def _default_sigint() -> None:
    """In the child: SIGINT as a terminal delivers it. A shell starts background jobs with SIGINT
    ignored, and Python then installs no KeyboardInterrupt handler: a test run launched with `&`
    would otherwise see training finish instead of stopping."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.parametrize("sig, status", [pytest.param(signal.SIGINT, 130, marks=pytest.mark.slow),  # 29 s each
                                         (signal.SIGTERM, 143)])
def test_signals_end_training_with_the_shell_status(synth_root, tmp_path, sig, status):
    pytest.importorskip("torch")
    proc = subprocess.Popen(edgeirst_cmd("train", "mshnet", "--data", synth_root, "--width", "0.25", "--epochs", "50",
                                         "--batch", "2", "--size", "64", "--out", tmp_path / "run"),
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_default_sigint)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not (tmp_path / "run" / "last.pt").exists():
        time.sleep(0.2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == status, err[-2000:]
    assert "Traceback" not in err and "--resume" in err and (tmp_path / "run" / "last.pt").exists()


# -- datasets as they are in the wild ------------------------------------------------------------

def _dataset(root: Path, masks: dict[str, np.ndarray], images: dict[str, np.ndarray] | None = None) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    for i, mask in masks.items():
        image = images[i] if images else np.full(mask.shape, 40, np.uint8)
        cv2.imwrite(str(root / "images" / f"{i}.png"), image)
        cv2.imwrite(str(root / "masks" / f"{i}_pixels0.png"), mask)
    return root


def test_mask_at_another_resolution_evaluates_with_one_warning(tmp_path):
    """The public SIRST release has such a mask (same aspect ratio): resize it, warn once."""
    image = np.full((50, 60), 40, np.uint8)
    image[20:23, 30:33] = 250
    mask = np.zeros((90, 108), np.uint8)  # 1.8x the image's resolution
    mask[36:41, 54:59] = 255
    root = _dataset(tmp_path / "d", {"a": mask}, {"a": image})
    sample = SirstDataset(root)[0]
    assert sample.mask.shape == (50, 60) and sample.mask[21, 31]
    preds = tmp_path / "preds"
    preds.mkdir()
    cv2.imwrite(str(preds / "a.png"), sample.mask.astype(np.uint8) * 255)
    p = run_cli("eval", "--data", root, "--split", "all", "--predictions", preds, "--json")
    assert p.returncode == 0, p.stderr
    warnings = [ln for ln in p.stderr.splitlines() if "warning:" in ln]
    assert len(warnings) == 1 and warnings[0].startswith("warning: mask") and "resized" in warnings[0]
    assert json.loads(p.stdout)["pd"] == 1.0
    bad = _dataset(tmp_path / "e", {"a": np.zeros((50, 90), np.uint8)}, {"a": image})
    with pytest.raises(EdgeirstError, match="aspect ratio"):
        SirstDataset(bad)[0]
    report = run_cli("data", "check", root)
    assert report.returncode == 0 and "resized to the image" in report.stdout


def test_masks_drawn_with_100_and_empty_splits_are_reported(tmp_path):
    mask = np.zeros((32, 32), np.uint8)
    mask[10:13, 10:13] = 100
    root = _dataset(tmp_path / "d", {"a": mask, "b": np.zeros((32, 32), np.uint8)})
    (root / "empty.txt").write_text("b\n")
    assert SirstDataset(root, "all")[0].mask.sum() == 9  # 0/100 reads as drawn, not as empty
    report = run_cli("data", "check", root)
    assert "value 100, not 255" in report.stdout and "all 1 masks are empty" in report.stdout
    assert "no problems found, 2 warning(s)" in report.stdout


def test_split_lists_in_utf16_and_files_for_folders(tmp_path):
    root = _dataset(tmp_path / "d", {"a": np.zeros((8, 8), np.uint8), "b": np.zeros((8, 8), np.uint8)})
    (root / "bom.txt").write_bytes("a\r\nb\r\n".encode("utf-16"))  # Notepad's "Unicode"
    (root / "nobom.txt").write_bytes("a\nb\n".encode("utf-16-le"))
    assert read_split(root / "bom.txt") == ["a", "b"] and read_split(root / "nobom.txt") == ["a", "b"]
    assert len(SirstDataset(root, "bom")) == 2
    f = tmp_path / "file.txt"
    f.write_text("x")
    assert "is a file" in one_error_line(run_cli("data", "check", f))


def test_eval_prints_metrics_before_an_unwritable_roc(tmp_path):
    root = _dataset(tmp_path / "d", {"a": np.zeros((32, 32), np.uint8)})
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    p = run_cli("eval", tiny_onnx(tmp_path), "--data", root, "--split", "all", "--json", "--roc", blocker / "r.png")
    assert "afile" in one_error_line(p)
    assert json.loads(p.stdout)["images"] == 1


def test_component_labels_follow_the_references_row_major_order():
    ndimage = pytest.importorskip("scipy.ndimage")
    from edgeirst.postprocess import components

    rng = np.random.default_rng(0)
    for _ in range(50):
        b = cv2.dilate((rng.random((40, 50)) < 0.06).astype(np.uint8), np.ones((2, 2), np.uint8))
        ref, n = ndimage.label(b, structure=np.ones((3, 3)))
        count, labels, _, _ = components(b)
        assert count == n + 1 and np.array_equal(labels, ref)
