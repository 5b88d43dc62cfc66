"""Issue 23's acceptance matrix, run in process (``cli_in_process``) to fit the test-time budget:
every writing command and output option against a device file, a fifo, a symbolic link and a
hard link to one of its inputs (edgeirst.io's classes), every path-forming name against ``..``,
``/`` and NUL, and item 6's last tracebacks and silent acceptances."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from edgeirst.cli.options import MAX_SIDE, SIZE
from edgeirst.errors import EdgeirstError
from edgeirst.jetson.remote import check_remote_dir
from edgeirst.jetson.wheel import check_wheel
from test_hardening import limited, one_error_line
from test_outputs import _read_fifo
from test_runtime_helpers import REPO, char_device, cli_in_process, tiny_checkpoint, tiny_onnx

SYNTH = "synthetic://?size=64x64&seed=1"


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("models")
    return {"onnx": tiny_onnx(base), "pt": tiny_checkpoint(base)}


# -- the writers: (name, argv given the output, models and dataset, the input a hard link copies) --
def _argv(name: str, out: Path, m: dict, data: Path) -> list:
    return {
        "eval --roc": ["eval", m["onnx"], "--data", data, "--split", "val", "-q", "--roc", out],
        "export --out": ["export", m["pt"], "--no-check", "--out", out],
        "quantize --out": ["quantize", m["onnx"], "--precision", "fp16", "--val-split", "none", "-q", "--out", out],
        "calibrate --out": ["calibrate", m["onnx"], "--data", data, "--split", "val", "-q", "--out", out],
        "prune --out": ["prune", m["pt"], "--ratio", "0.25", "--count-size", "64", "--out", out],
        "bench --json": ["bench", "--models", m["onnx"], "--size", "64", "--runs", "1", "--warmup", "0",
                         "--settle", "0", "-q", "--json", out],
        "data coco --out": ["data", "coco", data, "--split", "val", "--out", out],
        "run --jsonl": ["run", m["onnx"], "--source", SYNTH, "--max-frames", "2", "-q", "--jsonl", out],
        "run --save": ["run", m["onnx"], "--source", SYNTH, "--max-frames", "2", "-q", "--save", out],
        "demo --out": ["demo", m["onnx"], "--frames", "2", "--size", "64", "--out", out],
    }[name]


FILE_WRITERS = ["eval --roc", "export --out", "quantize --out", "calibrate --out", "prune --out", "bench --json",
                "data coco --out", "run --jsonl", "run --save", "demo --out"]
# the input whose hard link each writer is given ("data": an image of the dataset)
INPUT = {"eval --roc": "onnx", "export --out": "pt", "quantize --out": "onnx", "calibrate --out": "onnx",
         "prune --out": "pt", "bench --json": "onnx", "data coco --out": "data", "run --jsonl": "onnx",
         "run --save": "onnx", "demo --out": "onnx"}


# the name a writer's output needs (a video its container's suffix, a model .onnx); devices and
# fifos are made under that name
SUFFIX = {"quantize --out": ".onnx", "export --out": ".onnx", "run --save": ".mp4", "demo --out": ".mp4",
          "prune --out": ".pt", "calibrate --out": ".onnx"}
# what the tiny inputs cannot run to the end (calibrate needs true targets and false alarms): only
# the refusals, which calibrate makes before any work (check_output in edgeirst/cli/calibrate.py)
REFUSALS_ONLY = {"calibrate --out"}


def _snapshot(*folders: Path) -> dict:
    return {p: (p.read_bytes() if p.is_file() and not p.is_symlink() else os.readlink(p) if p.is_symlink() else None)
            for f in folders for p in sorted(f.rglob("*")) if not stat.S_ISFIFO(os.lstat(p).st_mode)
            and not stat.S_ISCHR(os.lstat(p).st_mode)}


@pytest.mark.parametrize("writer", FILE_WRITERS)
def test_every_file_output_against_every_class(writer, models, synth_root, tmp_path):
    before = _snapshot(models["onnx"].parent, synth_root)
    suffix = SUFFIX.get(writer, "")
    # a device: written into, still the same device
    null = char_device(tmp_path / f"null{suffix}", 1, 3)
    fifo = tmp_path / f"fifo{suffix}"
    os.mkfifo(fifo)
    if writer not in REFUSALS_ONLY:
        rdev = os.stat(null).st_rdev
        p = cli_in_process(*_argv(writer, null, models, synth_root))
        assert p.returncode == 0, p.stderr[-2000:]
        assert stat.S_ISCHR(os.lstat(null).st_mode) and os.stat(null).st_rdev == rdev
        # a fifo: written into, still a fifo
        got: list[bytes] = []
        t = _read_fifo(fifo, got)
        p = cli_in_process(*_argv(writer, fifo, models, synth_root))
        with contextlib.suppress(OSError):  # a writer that refused still lets the reader end
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        t.join(20)
        assert p.returncode == 0, p.stderr[-2000:]
        assert got and got[0], writer
        assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    # a symbolic link to another file: refused, link and file untouched
    keep = tmp_path / "keep.txt"
    keep.write_text("keep")
    link = tmp_path / f"link{suffix}"
    link.symlink_to(keep)
    assert "symbolic link" in one_error_line(cli_in_process(*_argv(writer, link, models, synth_root)))
    assert keep.read_text() == "keep" and os.readlink(link) == str(keep)
    # a hard link to the command's own input: refused, the input untouched
    val = (synth_root / "idx_synth" / "val.txt").read_text().split()[0]
    source = synth_root / "images" / f"{val}.png" if INPUT[writer] == "data" else models[INPUT[writer]]
    hard = tmp_path / f"hard{suffix or source.suffix}"
    os.link(source, hard)
    assert "input" in one_error_line(cli_in_process(*_argv(writer, hard, models, synth_root)))
    assert _snapshot(models["onnx"].parent, synth_root) == before  # nothing replaced or destroyed
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([fifo.name, hard.name, "keep.txt", link.name,
                                                                 null.name])  # no temporary left behind


# -- folder outputs: a device, fifo or link to a file is not a folder; nothing replaced ---------
def _folder_argv(name: str, out: Path, m: dict, data: Path) -> list:
    return {
        "data synth OUT": ["data", "synth", out, "--images", "2", "--height", "32", "--width", "32"],
        "run --save-dir": ["run", m["onnx"], "--source", data / "images", "--max-frames", "1", "-q", "--save-dir", out],
        "train --out": ["train", "mshnet", "--data", data, "--epochs", "1", "--out", out],
        "deploy bundle --out": ["deploy", "bundle", m["onnx"], "--profile", "orin-nano", "--out", out],
    }[name]


@pytest.mark.parametrize("writer", ["data synth OUT", "run --save-dir", "train --out", "deploy bundle --out"])
@pytest.mark.parametrize("kind", ["device", "fifo", "link to a file"])
def test_every_folder_output_refuses_what_is_not_a_folder(writer, kind, models, synth_root, tmp_path):
    keep = tmp_path / "keep.txt"
    keep.write_text("keep")
    out = tmp_path / "out"
    if kind == "device":
        char_device(out, 1, 3)
    elif kind == "fifo":
        os.mkfifo(out)
    else:
        out.symlink_to(keep)
    mode = os.lstat(out).st_mode
    before = _snapshot(models["onnx"].parent, synth_root)
    one_error_line(cli_in_process(*_folder_argv(writer, out, models, synth_root)))
    assert os.lstat(out).st_mode == mode and keep.read_text() == "keep"
    assert _snapshot(models["onnx"].parent, synth_root) == before


# -- path-forming names ---------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["../evil", "a/b", "a\0b", "..", "/etc/x"])
def test_service_names_are_plain_names(name, models, tmp_path):
    line = one_error_line(cli_in_process("deploy", "bundle", models["onnx"], "--profile", "orin-nano", "--out",
                                         tmp_path / "b", "--service-name", name))
    assert "--service-name" in line
    assert not (tmp_path / "b").exists()


@pytest.mark.parametrize("text, words", [("../x", "'..'"), ("a/../../x", "'..'"), ("~/../root", "'..'"),
                                         ("a\0b", "NUL"), ("a\nb", "control"), ("/", "home or root"),
                                         ("~", "home or root"), (".", "home or root"), ("", "home or root")])
def test_remote_dir_stays_a_folder_of_its_own(text, words):
    with pytest.raises(EdgeirstError, match="--remote-dir") as e:
        check_remote_dir(text)
    assert words in str(e.value) or "NUL" in words and "control" in str(e.value)


def test_remote_dir_relative_to_home_or_absolute():
    assert [check_remote_dir(t) for t in ("edgeirst", "~/apps/edgeirst", "/opt/edgeirst")] == \
        ["edgeirst", "apps/edgeirst", "/opt/edgeirst"]
    line = one_error_line(cli_in_process("deploy", "push", "default", "--host", "u@h", "--profile", "orin-nano",
                                         "--dry-run", "--remote-dir", "../elsewhere"))
    assert "--remote-dir" in line and ".." in line


@pytest.mark.parametrize("args, option", [
    (["eval", "default", "--data", "d\0", "-q"], "--data"),
    (["export", "default", "--out=x\0.onnx"], "--out"),
    (["run", "default", "--source", SYNTH, "--jsonl", "a\0b"], "--jsonl"),
    (["data", "synth", "o\0ut", "--images", "1"], "argument"),
    (["bench", "--md", "\0"], "--md"),
])
def test_a_nul_byte_in_any_argument_is_one_line_naming_it(args, option):
    line = one_error_line(cli_in_process(*args))
    assert f"error: {option} " in line and "NUL byte" in line


# -- item 6 -----------------------------------------------------------------------------------------
def test_sizes_are_bounded_where_they_enter(models, tmp_path):
    line = one_error_line(cli_in_process("export", models["pt"], "--out", tmp_path / "x.onnx", "--size", "99999984"))
    assert "--size" in line and str(MAX_SIDE) in line
    assert SIZE.convert(f"{MAX_SIDE}x16", None, None) == (16, MAX_SIDE)
    line = one_error_line(cli_in_process("export", models["pt"], "--out", tmp_path / "x.onnx", "--size", "16000",
                                         "--no-check"))
    assert "--size is 16000x16000" in line and "GiB" in line
    assert one_error_line(cli_in_process("data", "synth", tmp_path / "s", "--images", "1", "--height", "99999999"))
    assert not (tmp_path / "x.onnx").exists() and not (tmp_path / "s").exists()


@pytest.mark.parametrize("structure, words", [([1, 2], "is a list, not a dict"),
                                              ({"shapes": "x"}, "not dicts"),
                                              ({"shapes": {"a.weight": "3x3"}}, "not a list of sizes"),
                                              ({"groups": {"a": 0}}, "positive whole number")])
def test_a_checkpoint_structure_of_another_form_is_one_line(structure, words, models, tmp_path):
    ckpt = torch.load(models["pt"], weights_only=True)
    ckpt["structure"] = structure
    bad = tmp_path / "bad.pt"
    torch.save(ckpt, bad)
    line = one_error_line(cli_in_process("export", bad, "--out", tmp_path / "x.onnx", "--no-check"))
    assert str(bad) in line and words in line


def test_a_checkpoint_structure_that_grows_a_layer_is_one_line(models, tmp_path):
    ckpt = torch.load(models["pt"], weights_only=True)
    name, tensor = next((k, v) for k, v in ckpt["state_dict"].items() if v.dim() == 4)
    ckpt["structure"] = {"shapes": {name: [tensor.shape[0] * 1000, *tensor.shape[1:]]}, "groups": {}}
    bad = tmp_path / "grown.pt"
    torch.save(ckpt, bad)
    line = one_error_line(cli_in_process("export", bad, "--out", tmp_path / "x.onnx", "--no-check"))
    assert str(bad) in line and name in line and "does not fit" in line


def test_quantize_under_a_file_size_limit_names_the_file(models, tmp_path):
    p = subprocess.run([sys.executable, "-m", "edgeirst", "quantize", str(models["onnx"]), "--precision", "fp16",
                        "--val-split", "none", "-q", "--out", str(tmp_path / "q.onnx")],
                       capture_output=True, text=True, cwd=REPO, timeout=120, preexec_fn=limited(20000))
    line = one_error_line(p)
    assert "file too large" in line and ("edgeirst-quant-" in line or "q.onnx" in line), line
    assert not (tmp_path / "q.onnx").exists()


def test_deploy_refuses_a_wheel_that_is_not_one(models, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a wheel")
    fake = tmp_path / "fake-1.0-py3-none-any.whl"
    fake.write_text("not a zip")
    empty = tmp_path / "empty-1.0-py3-none-any.whl"
    with zipfile.ZipFile(empty, "w") as z:
        z.writestr("empty/__init__.py", "")
    for option, wheel, words in (("--wheel", notes, "does not end in .whl"), ("--extra-wheel", fake, "not a zip"),
                                 ("--wheel", empty, "no *.dist-info/WHEEL")):
        line = one_error_line(cli_in_process("deploy", "bundle", models["onnx"], "--profile", "orin-nano",
                                             "--out", tmp_path / "b", option, wheel))
        assert f"{option} {wheel} is not a wheel" in line and words in line
    assert not (tmp_path / "b").exists()
    good = tmp_path / "good-1.0-py3-none-any.whl"
    with zipfile.ZipFile(good, "w") as z:
        z.writestr("good-1.0.dist-info/WHEEL", "Wheel-Version: 1.0\n")
    assert check_wheel(good) == good


def test_a_split_that_repeats_ids_warns_once_and_counts_each_image_once(synth_root, tmp_path):
    ids = (synth_root / "idx_synth" / "val.txt").read_text()
    twice = tmp_path / "twice.txt"
    twice.write_text(ids + ids)
    p = cli_in_process("eval", "default", "--data", synth_root, "--split", twice, "-q", "--json")
    assert p.returncode == 0, p.stderr
    n = len(ids.split())
    warnings = [ln for ln in p.stderr.splitlines() if ln.startswith("warning:")]
    assert len(warnings) == 1 and f"lists {n} id(s) more than once" in warnings[0]
    assert f'"images": {n}' in p.stdout


def test_data_synth_refuses_a_non_empty_folder_unless_overwrite(synth_root, tmp_path):
    out = tmp_path / "mine"
    (out / "images").mkdir(parents=True)
    (out / "images" / "synth_00000.png").write_bytes(b"my own image")
    line = one_error_line(cli_in_process("data", "synth", out, "--images", "2", "--height", "32", "--width", "32"))
    assert str(out) in line and "not empty" in line and "--overwrite" in line
    assert (out / "images" / "synth_00000.png").read_bytes() == b"my own image"
    assert sorted(p.name for p in out.rglob("*")) == ["images", "synth_00000.png"]
    p = cli_in_process("data", "synth", out, "--images", "2", "--height", "32", "--width", "32", "--overwrite")
    assert p.returncode == 0, p.stderr
    assert (out / "images" / "synth_00000.png").read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("query", ["targets=-1", "targets=a", "targets=3-1", "scr=-2", "sizes=1-"])
def test_synthetic_ranges_are_one_line_naming_the_parameter(query):
    line = one_error_line(cli_in_process("run", "default", "--source", f"synthetic://?{query}", "--max-frames", "1"))
    key = query.partition("=")[0]
    assert f"{key} '" in line and ("N or MIN-MAX" in line or "greater than MAX" in line), line


def test_a_synthetic_frame_larger_than_any_size_option_is_one_line():
    line = one_error_line(cli_in_process("run", "default", "--source", "synthetic://?size=99999x99999",
                                         "--max-frames", "1"))
    assert "99999x99999" in line and str(MAX_SIDE) in line
