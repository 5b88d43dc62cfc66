"""`edgeirst run` / `edgeirst demo` end to end, as real subprocesses on real files and sockets."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import cv2
import numpy as np
import pytest

from test_runtime_helpers import REPO, edgeirst_cmd, read_jsonl, run_cli, tiny_checkpoint, tiny_onnx, write_video

SYN = "synthetic://?seed=3&targets=2&size=64x48"


@pytest.fixture(scope="module")
def onnx_model(tmp_path_factory):
    return tiny_onnx(tmp_path_factory.getbasetemp())


def one_error_line(proc):
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert proc.returncode == 2, proc.stderr
    assert lines and lines[-1].startswith("error: ") and "Traceback" not in proc.stderr, proc.stderr
    return lines[-1]


def test_synthetic_max_frames_jsonl_and_json_summary(onnx_model, tmp_path):
    out = tmp_path / "out.jsonl"
    p = run_cli("run", onnx_model, "--source", "synthetic://?size=64x64", "--max-frames", "100", "--jsonl", out,
                "--json", "-q")
    assert p.returncode == 0, p.stderr
    recs = read_jsonl(out)
    assert [r["frame"] for r in recs] == list(range(100))
    assert set(recs[0]) == {"frame", "time", "source", "detections"} and recs[0]["source"] == "synthetic://?size=64x64"
    summary = json.loads(p.stdout)
    assert summary["frames"] == 100 and summary["stopped_by"] == "max frames"
    assert set(summary["stages"]) == {"capture", "preprocess", "infer", "postprocess", "sinks"}
    for r in recs:
        for d in r["detections"]:
            assert set(d) == {"id", "cx", "cy", "box", "area", "score"} and len(d["box"]) == 4


def test_video_file_with_saved_video(onnx_model, tmp_path):
    video = write_video(tmp_path / "in.mp4", frames=15)
    out, saved = tmp_path / "out.jsonl", tmp_path / "annotated.mp4"
    p = run_cli("run", onnx_model, "--source", video, "--jsonl", out, "--save", saved, "--no-track")
    assert p.returncode == 0, p.stderr
    assert "15 frames" in p.stderr and "infer" in p.stderr  # the summary
    recs = read_jsonl(out)
    assert [r["frame"] for r in recs] == list(range(15))
    assert all(d["id"] is None for r in recs for d in r["detections"])  # --no-track
    cap = cv2.VideoCapture(str(saved))
    n = 0
    while cap.read()[0]:
        n += 1
    assert cap.isOpened() is not None and n == 15
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (128, 96)


def test_image_folder_and_stdout_jsonl(onnx_model, tmp_path):
    for i in range(4):
        cv2.imwrite(str(tmp_path / f"img{i}.png"), np.full((40, 50), 60 * i, np.uint8))
    cv2.imwrite(str(tmp_path / "img4.png"), np.full((40, 50), 9000, np.uint16))  # a 16-bit frame
    p = run_cli("run", onnx_model, "--source", tmp_path, "--jsonl", "-", "-q")
    assert p.returncode == 0, p.stderr
    recs = [json.loads(ln) for ln in p.stdout.splitlines()]
    assert [r["frame"] for r in recs] == list(range(5))


def test_torch_checkpoint_runs(tmp_path):
    # in-process (run_stream is the body of `edgeirst run`): a subprocess would pay torch's import again
    from edgeirst.runtime.pipeline import RunConfig, run_stream
    from edgeirst.runtime.sinks import SinkOptions

    ckpt = tiny_checkpoint(tmp_path)
    summary = run_stream(ckpt, [SYN], sinks=SinkOptions(jsonl=str(tmp_path / "o.jsonl")),
                         config=RunConfig(max_frames=3, report_every=0))
    assert summary.frames == 3 and summary.stopped_by == "max frames"
    assert len(read_jsonl(tmp_path / "o.jsonl")) == 3


def test_runtime_path_never_imports_torch(onnx_model, tmp_path):
    wrapper = tmp_path / "guard.py"
    wrapper.write_text(
        "import sys\n"
        "class NoTorch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ImportError('torch imported on the runtime path')\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        "from edgeirst.cli import main\n"
        "try:\n"
        "    main(sys.argv[1:])\n"
        "finally:\n"
        "    assert 'torch' not in sys.modules\n"
        "    print('NO-TORCH-OK', file=sys.stderr)\n")
    for source in (SYN, str(write_video(tmp_path / "v.mp4", frames=6))):
        p = subprocess.run([sys.executable, str(wrapper), "run", str(onnx_model), "--source", source,
                            "--max-frames", "5", "--jsonl", str(tmp_path / "o.jsonl"), "--save", str(tmp_path / "o.mp4")],
                           capture_output=True, text=True, timeout=60, cwd=REPO)
        assert p.returncode == 0 and "NO-TORCH-OK" in p.stderr, p.stderr
        assert len(read_jsonl(tmp_path / "o.jsonl")) == 5


def test_killed_run_keeps_every_reported_line(onnx_model, tmp_path):
    out = tmp_path / "live.jsonl"
    proc = subprocess.Popen(edgeirst_cmd("run", onnx_model, "--source", SYN, "--jsonl", out, "-q"),
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not out.exists() or out.read_text().count("\n") < 5):
            time.sleep(0.05)
        assert proc.poll() is None, "an endless source must keep running"
        proc.kill()
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    text = out.read_text()
    lines = text.splitlines()
    assert len(lines) >= 5
    assert text.endswith("\n")  # no half-written line
    assert [json.loads(ln)["frame"] for ln in lines] == list(range(len(lines)))


def test_sigterm_finishes_video_and_summary(onnx_model, tmp_path):
    saved = tmp_path / "t.mp4"
    proc = subprocess.Popen(edgeirst_cmd("run", onnx_model, "--source", SYN, "--save", saved,
                                         "--jsonl", tmp_path / "t.jsonl", "-q"),
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and (not (tmp_path / "t.jsonl").exists()
                                           or (tmp_path / "t.jsonl").read_text().count("\n") < 5):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 143 and "(terminated)" in err, err  # 143 after SIGTERM, as a shell reports it
    n_lines = len(read_jsonl(tmp_path / "t.jsonl"))
    cap = cv2.VideoCapture(str(saved))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == n_lines >= 5


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_mjpeg_preview(onnx_model):
    port = _free_port()
    proc = subprocess.Popen(edgeirst_cmd("run", onnx_model, "--source", SYN, "--serve", f"127.0.0.1:{port}", "-q"),
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        jpeg, deadline = None, time.monotonic() + 30
        while jpeg is None and time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/frame.jpg", timeout=5) as r:
                    assert r.headers["Content-Type"] == "image/jpeg"
                    jpeg = r.read()
            except (ConnectionError, urllib.error.URLError):
                time.sleep(0.1)
        img = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert img.shape == (48, 64, 3)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/stream.mjpg", timeout=5) as r:
            assert r.headers["Content-Type"].startswith("multipart/x-mixed-replace")
            head = r.read(200)
            assert head.startswith(b"--edgeirstframe\r\nContent-Type: image/jpeg")
    finally:
        proc.terminate()
        proc.wait(20)


def test_several_sources_share_inference(onnx_model, tmp_path):
    video = write_video(tmp_path / "in.mp4", frames=6)
    out = tmp_path / "o.jsonl"
    p = run_cli("run", onnx_model, "--source", video, "--source", SYN + "&frames=4", "--jsonl", out,
                "--save", tmp_path / "s.mp4", "-q")
    assert p.returncode == 0, p.stderr
    recs = read_jsonl(out)
    by_src = {}
    for r in recs:
        by_src.setdefault(r["source"], []).append(r["frame"])
    assert by_src == {str(video): list(range(6)), SYN + "&frames=4": list(range(4))}
    assert (tmp_path / "s_0.mp4").exists() and (tmp_path / "s_1.mp4").exists()


def test_bad_inputs_fail_with_one_line(onnx_model, tmp_path):
    garbage = tmp_path / "junk.onnx"
    garbage.write_bytes(os.urandom(300))
    assert "does not exist" in one_error_line(run_cli("run", onnx_model, "--source", tmp_path / "nope.mp4"))
    assert "cannot open source 63" in one_error_line(run_cli("run", onnx_model, "--source", "63"))
    assert "not a loadable ONNX" in one_error_line(run_cli("run", garbage, "--source", SYN))
    assert "cannot run" in one_error_line(run_cli("run", onnx_model, "--backend", "torch", "--source", SYN))
    assert "unsupported source file" in one_error_line(run_cli("run", onnx_model, "--source", garbage))
    assert "onnxruntime backend does not take option(s) int8" in one_error_line(
        run_cli("run", onnx_model, "--source", SYN, "--int8"))
    assert "'--agc': '5' is not LOW,HIGH" in one_error_line(run_cli("run", onnx_model, "--source", SYN, "--agc", "5"))
    assert "'--confirm': '5/3' is not M/N with 1 <= M <= N" in one_error_line(
        run_cli("run", onnx_model, "--source", SYN, "--confirm", "5/3"))
    if not os.environ.get("DISPLAY"):
        assert "needs a display" in one_error_line(run_cli("run", onnx_model, "--source", SYN, "--show"))


def test_unreadable_image_is_skipped_and_counted(onnx_model, tmp_path):
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(3):
        cv2.imwrite(str(folder / f"f{i}.png"), np.zeros((32, 32), np.uint8))
    (folder / "f3.png").write_bytes(b"\x89PNG broken")
    out = tmp_path / "o.jsonl"
    (folder / "f4.png").write_bytes((folder / "f0.png").read_bytes())
    p = run_cli("run", onnx_model, "--source", folder, "--jsonl", out, "-q", "--json")
    assert p.returncode == 0, p.stderr
    warnings = [ln for ln in p.stderr.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and "skipped" in warnings[0] and "f3.png" in warnings[0]
    assert json.loads(p.stdout)["skipped"] == 1 and json.loads(p.stdout)["frames"] == 4
    assert [r["frame"] for r in read_jsonl(out)] == [0, 1, 2, 3]  # the run went on past the broken image


def test_demo_with_explicit_model(onnx_model, tmp_path):
    out = tmp_path / "demo.mp4"
    p = run_cli("demo", onnx_model, "--frames", "30", "--size", "96x64", "--out", out)
    assert p.returncode == 0, p.stderr
    assert "30 frames" in p.stdout and f"wrote {out}" in p.stdout and "warning" not in p.stderr
    cap = cv2.VideoCapture(str(out))
    n = 0
    while cap.read()[0]:
        n += 1
    assert n == 30


def test_demo_old_model_option_still_works_with_a_warning(onnx_model, tmp_path):
    p = run_cli("demo", "--model", onnx_model, "--frames", "3", "--size", "96x64", "--out", tmp_path / "d.mp4")
    assert p.returncode == 0, p.stderr
    assert "warning: --model is the old spelling" in p.stderr and f"demo: {onnx_model}" in p.stdout


def test_demo_default(tmp_path):
    out = tmp_path / "demo.mp4"
    p = run_cli("demo", "--frames", "10", "--size", "96x64", "--out", out, timeout=120)
    assert p.returncode == 0, p.stderr
    assert "10 frames" in p.stdout and out.stat().st_size > 0
