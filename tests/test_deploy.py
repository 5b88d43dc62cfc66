"""`edgeirst deploy` bundles on this machine: contents, manifest, idempotence byte for byte, the
host pre-flight, and one clear error line (exit 2) for each bad input. The SSH push is in
test_deploy_ssh.py."""

from __future__ import annotations

import importlib.metadata
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from edgeirst.cli.stream_options import pop_run_config
from edgeirst.errors import EdgeirstError
from edgeirst.jetson.bundle import BundleOptions, build_bundle
from edgeirst.jetson.config import load_config
from edgeirst.jetson.launch import run_command_line
from edgeirst.jetson.manifest import verify_bundle
from edgeirst.runtime.engine_build import BuildOptions
from edgeirst.runtime.pipeline import RunConfig
from edgeirst.runtime.sinks import SinkOptions
from edgeirst.runtime.tracker import TrackerConfig
from edgeirst.weights import shipped_model



def _deploy(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgeirst", "deploy", *args], capture_output=True, text=True,
                          timeout=timeout)


def _one_error_line(r: subprocess.CompletedProcess, *needles: str) -> None:
    assert r.returncode == 2, r.stdout + r.stderr
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "Traceback" not in r.stderr, r.stderr
    assert sum(ln.startswith("error:") for ln in lines) == 1
    for n in needles:
        assert n in lines[-1], lines[-1]


def _snapshot(root: Path) -> dict[str, tuple[bytes, int, int]]:
    return {p.relative_to(root).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_ino)
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("deploy") / "B"
    r = _deploy("--device", "jetson", "--profile", "orin-nano", "--precision", "fp16", "--out", str(out), "default")
    assert r.returncode == 0, r.stderr
    return out


@pytest.fixture(scope="module")
def wheel(bundle) -> Path:
    return next((bundle / "wheels").glob("edgeirst_device-*.whl"))


def test_bundle_contents_and_manifest(bundle):
    names = {p.relative_to(bundle).as_posix() for p in bundle.rglob("*") if p.is_file()}
    assert names == {"manifest.json", "SHA256SUMS", "edgeirst.toml", "launch.sh", "install.sh", "edgeirst.service",
                     "model.onnx", "wheels/edgeirst_device-0.1.0-py3-none-any.whl",
                     f"wheels/tqdm-{importlib.metadata.version('tqdm')}-py3-none-any.whl"}
    assert verify_bundle(bundle) == []
    assert subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=bundle).returncode == 0
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["profile"]["name"] == "orin-nano" and manifest["profile"]["compute_capability"] == "8.7"
    assert manifest["expects"]["tensorrt"] == ["8.5.2", "8.6.2", "10.3.0"] and manifest["expects"]["python"] == ">=3.8"
    assert manifest["precision"] == {"requested": "fp16", "effective": "fp16"}
    assert manifest["models"]["model.onnx"]["meta"]["name"] == "mshnet"
    assert set(manifest["files"]) == names - {"manifest.json", "SHA256SUMS"}
    pf = manifest["preflight"]
    assert pf["input_size"] == [1088, 1920] and 0 < pf["memory_estimate_mb"] < pf["usable_memory_mb"]
    cfg = load_config(bundle / "edgeirst.toml")
    assert (cfg.model.precision, cfg.model.onnx, cfg.model.onnx_int8, cfg.device.profile) == ("fp16", "model.onnx", "",
                                                                                              "orin-nano")
    from edgeirst.runtime.engine_build import read_onnx_meta

    # the model's own threshold (the default's is chosen for a false-alarm budget by `edgeirst calibrate`)
    assert cfg.run.threshold == read_onnx_meta(shipped_model("default")).threshold
    assert cfg.run.tracker == TrackerConfig() and cfg.engine == BuildOptions()
    assert cfg.source.uri == "csi://0" and cfg.sinks.jsonl == "-"
    assert (bundle / "model.onnx").read_bytes() == shipped_model("default").read_bytes()
    assert (bundle / "launch.sh").stat().st_mode & 0o111 and (bundle / "install.sh").stat().st_mode & 0o111
    with zipfile.ZipFile(next((bundle / "wheels").glob("edgeirst_device-*.whl"))) as whl:
        listed = whl.namelist()
    assert "edgeirst/jetson/launch.py" in listed and "edgeirst/runtime/engine_build.py" in listed
    assert not any(n.endswith((".onnx", ".pt")) or n.startswith("tests/") for n in listed)  # model.onnx is beside it


def test_second_run_changes_no_file(bundle):
    before = _snapshot(bundle)
    r = _deploy("--device", "jetson", "--profile", "orin-nano", "--precision", "fp16", "--out", str(bundle), "default",
                "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["written"] == [] and result["removed"] == [] and len(result["unchanged"]) == 9
    assert _snapshot(bundle) == before  # bytes, modification times and inodes: nothing was rewritten


def test_changed_setting_rewrites_only_what_it_changes(bundle, tmp_path):
    copy = tmp_path / "B"
    shutil.copytree(bundle, copy)
    r = _deploy("bundle", "default", "--profile", "orin-nano", "--out", str(copy), "--threshold", "0.4", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["written"] == ["edgeirst.toml", "manifest.json", "SHA256SUMS"]
    assert load_config(copy / "edgeirst.toml").run.threshold == 0.4 and verify_bundle(copy) == []


def test_run_settings_reach_the_launcher_as_one_type(bundle, tmp_path):
    """deploy's run, tracker, sink and engine options -> edgeirst.toml -> the launcher's RunConfig, equal."""
    copy = tmp_path / "B"
    shutil.copytree(bundle, copy)
    r = _deploy("bundle", "default", "--profile", "orin-nano", "--out", str(copy), "--threshold", "0.3",
                "--confirm", "2/4", "--gate", "6", "--agc", "1,99.5", "--fixed-size", "--save", "out.mp4",
                "--builder", "trtexec", "--workspace-mb", "512")
    assert r.returncode == 0, r.stderr
    cfg = load_config(copy / "edgeirst.toml")
    assert cfg.run == RunConfig(threshold=0.3, fixed_size=True, agc=(1.0, 99.5),
                                tracker=TrackerConfig(gate=6.0, m=2, n=4))
    assert cfg.sinks == SinkOptions(jsonl="-", save="out.mp4")
    assert cfg.engine == BuildOptions(builder="trtexec", workspace_mb=512)
    text = (copy / "edgeirst.toml").read_text()
    assert "m = 2\nn = 4\n" in text and "confirm" not in text  # integers, not the string "2/4"
    argv = run_command_line(cfg, copy / "model.onnx", "onnxruntime")
    assert argv[argv.index("--confirm") + 1] == "2/4" and argv[argv.index("--threshold") + 1] == "0.3"
    # what `edgeirst run` builds from the same options is the same object
    from edgeirst.cli.run import command as run_command

    ctx = run_command.make_context("run", ["default", "-s", "x", "--threshold", "0.3", "--confirm", "2/4", "--gate", "6",
                                           "--agc", "1,99.5", "--fixed-size"])
    assert pop_run_config(dict(ctx.params)) == cfg.run


def test_edited_toml_is_checked_for_validity_not_by_hash(bundle, tmp_path):
    copy = tmp_path / "B"
    shutil.copytree(bundle, copy)
    toml = copy / "edgeirst.toml"
    toml.write_text(toml.read_text().replace('uri = "csi://0"', 'uri = "/dev/video1"'))
    assert verify_bundle(copy) == [] and "every file matches" in _deploy("verify", str(copy)).stdout
    assert subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=copy).returncode == 0  # install.sh's check
    toml.write_text(toml.read_text().replace("\nm = 3\n", "\nm = 9\n"))
    _one_error_line(_deploy("verify", str(copy)), "edgeirst.toml", "1 <= M <= N")


def test_names_that_become_paths_stay_in_the_bundle(bundle, tmp_path, wheel):
    keep = tmp_path / "keepme.service"
    keep.write_text("mine")
    for name in ("../keepme", "../../etc/evil", ".hidden", "a/b", "x.service"):
        _one_error_line(_deploy("bundle", "default", "--profile", "orin-nano", "--out", str(tmp_path / "B2"),
                                "--wheel", str(wheel), "--service-name", name), "--service-name")
    assert keep.read_text() == "mine" and not (tmp_path / "B2").exists()
    with pytest.raises(EdgeirstError, match="not a unit name"):
        BundleOptions(model="default", profile="orin-nano", out=tmp_path / "B3", service="../x")
    # a manifest entry that escapes the bundle is reported, and re-deploying never deletes it
    copy = tmp_path / "B"
    shutil.copytree(bundle, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["files"]["../keepme.service"] = {"sha256": "0" * 64, "size": 4}
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert "../keepme.service: the entry points outside the bundle" in verify_bundle(copy)
    _one_error_line(_deploy("verify", str(copy)), "outside the bundle")
    r = _deploy("bundle", "default", "--profile", "orin-nano", "--out", str(copy), "--wheel", str(wheel))
    assert r.returncode == 0, r.stderr
    assert keep.read_text() == "mine" and verify_bundle(copy) == []


def test_tampered_bundle_is_reported_and_repaired(bundle, tmp_path, wheel):
    copy = tmp_path / "B"
    shutil.copytree(bundle, copy)
    data = bytearray((copy / "model.onnx").read_bytes())
    data[-1] ^= 0xFF
    (copy / "model.onnx").write_bytes(bytes(data))
    assert verify_bundle(copy) == ["model.onnx: sha256 differs from the manifest"]
    _one_error_line(_deploy("--verify", str(copy)), "does not verify", "model.onnx")  # the old spelling
    r = _deploy("--device", "jetson", "--profile", "orin-nano", "--out", str(copy), "default", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["written"] == ["model.onnx"] and verify_bundle(copy) == []
    assert "every file matches" in _deploy("verify", str(copy)).stdout


def test_stale_files_of_a_previous_bundle_are_removed(bundle, tmp_path, wheel):
    copy = tmp_path / "B"
    shutil.copytree(bundle, copy)
    result = build_bundle(BundleOptions(model="default", profile="orin-nano", out=copy, wheel=str(wheel),
                                        service="detector"), log=lambda _: None)
    assert result.removed == ["edgeirst.service"]
    assert (copy / "detector.service").is_file() and not (copy / "edgeirst.service").exists()
    assert verify_bundle(copy) == []


def test_dry_run_writes_nothing(tmp_path, wheel):
    out = tmp_path / "never"
    result = build_bundle(BundleOptions(model="default", profile="xavier-nx", out=out, wheel=str(wheel)),
                          log=lambda _: None, dry_run=True)
    assert not out.exists()
    assert any(s.startswith("copy") for s in result.steps) and any("edgeirst.toml" in s for s in result.steps)
    r = _deploy("--device", "jetson", "--profile", "orin-nano", "--out", str(out), "--host", "me@192.0.2.1",
                "--dry-run", "default")
    assert r.returncode == 0, r.stderr
    assert "would build wheels/edgeirst" in r.stderr and "would copy: ssh -p 22" in r.stderr
    assert "StrictHostKeyChecking=yes" in r.stderr and "StrictHostKeyChecking=no" not in r.stderr
    assert "would run: ssh" in r.stderr and not out.exists()


def test_jetpack4_and_502_are_refused_in_one_line(tmp_path, wheel):
    """TensorRT 8.0-8.4 has only the bindings API (and JetPack 4 Python 3.6): deploy names the way out."""
    for args, needle in ((("--profile", "nano"), "JetPack 4.6.6 (TensorRT 8.2.1, Python 3.6) is not supported: "
                          "edgeirst needs JetPack 5.1 or newer (TensorRT >= 8.5, Python >= 3.8); Jetson Nano (4GB) "
                          "runs at most JetPack 4.6.6"),
                         (("--profile", "xavier-nx", "--jetpack", "5.0.2"), "pass --jetpack 5.1.5")):
        r = _deploy("bundle", "default", *args, "--out", str(tmp_path / "B"), "--wheel", str(wheel))
        assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("error: ") and needle in r.stderr
        assert "Traceback" not in r.stderr and not (tmp_path / "B").exists()


def test_dla_core_input_size_and_power_mode_reach_the_toml(tmp_path, wheel):
    cfg_dir = tmp_path / "B"
    r = _deploy("bundle", "default", "--profile", "orin-nx", "--dla-core", "1", "--input-size", "640x512",
                "--power-mode", "maxn", "--out", str(cfg_dir), "--wheel", str(wheel))
    assert r.returncode == 0, r.stderr
    cfg = load_config(cfg_dir / "edgeirst.toml")
    assert cfg.engine.dla_core == 1 and cfg.model.input_size == [512, 640] and cfg.power.mode == "MAXN"
    # the old spelling, height first as two values, still works and says how to write it now
    r = _deploy("--device", "jetson", "--profile", "orin-nx", "--input-size", "256", "320", "--out", str(cfg_dir),
                "--wheel", str(wheel), "default")
    assert r.returncode == 0, r.stderr
    assert "use --input-size 320x256" in r.stderr and load_config(cfg_dir / "edgeirst.toml").model.input_size == [256, 320]


def test_systemd_unit_is_rendered_by_install(bundle, tmp_path):
    unit = (bundle / "edgeirst.service").read_text()
    rendered = unit.replace("@BUNDLE@", str(tmp_path)).replace("@USER@", "jetson").replace("@CACHE@", "/home/jetson/c")
    assert f"ExecStart=/bin/sh {tmp_path}/launch.sh" in rendered and "User=jetson" in rendered
    assert "Environment=EDGEIRST_CACHE=/home/jetson/c" in rendered  # the installing user's engines, shared
    assert "Restart=on-failure" in rendered and "WantedBy=multi-user.target" in rendered
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed here to verify the unit")
    (tmp_path / "launch.sh").write_text("#!/bin/sh\n")
    (tmp_path / "launch.sh").chmod(0o755)
    unit_file = tmp_path / "edgeirst-test.service"
    unit_file.write_text(rendered.replace("User=jetson", "User=root"))
    r = subprocess.run([analyze, "verify", str(unit_file)], capture_output=True, text=True, timeout=60)
    assert "edgeirst-test.service" not in r.stderr or r.returncode == 0, r.stderr


def test_list_profiles(tmp_path):
    r = _deploy("profiles")
    assert r.returncode == 0 and "orin-nano-super" in r.stdout and "agx-thor" in r.stdout
    assert _deploy("--list-profiles").stdout == r.stdout  # the old spelling
    rows = json.loads(_deploy("profiles", "--json").stdout)["profiles"]
    assert {row["name"] for row in rows} >= {"nano", "tx2", "xavier-nx", "agx-xavier", "orin-nano", "orin-nx",
                                             "agx-orin", "agx-thor"}


# -- bad input: one clear line, exit 2 ----------------------------------------------------------


@pytest.mark.parametrize("args, needles", [
    (["--profile", "orin-nan"], ["unknown Jetson profile 'orin-nan'", "did you mean orin-nano"]),
    (["--profile", "orin-nano", "--precision", "int8"], ["INT8 on Jetson Orin Nano 8GB needs", "--calib-data"]),
    (["--profile", "orin-nano-4gb", "--input-size", "8192", "8192"], ["needs about", "MiB usable on Jetson Orin Nano 4GB"]),
    (["--profile", "orin-nano", "--input-size", "100", "200"], ["positive multiples of 16"]),
    (["--profile", "orin-nano", "--dla-core", "0"], ["has no DLA"]),
    (["--profile", "orin-nx", "--dla-core", "2"], ["has 2 DLA core(s)"]),
    (["--profile", "orin-nano", "--power-mode", "TURBO"], ["power mode 'TURBO'", "15W"]),
    (["--profile", "nano", "--jetpack", "6.2"], ["JetPack 6.2 does not run on Jetson Nano"]),
    (["--profile", "orin-nano", "--confirm", "6/5"], ["--confirm"]),
])
def test_bad_input_is_one_error_line(tmp_path, wheel, args, needles):
    out = tmp_path / "B"
    r = _deploy("--device", "jetson", *args, "--out", str(out), "--wheel", str(wheel), "default")
    _one_error_line(r, *needles)
    assert not out.exists()


def test_bad_invocations_are_one_error_line(tmp_path, bundle):
    _one_error_line(_deploy("default", "--out", str(tmp_path / "x")), "cannot tell which Jetson")  # jetson: the default
    _one_error_line(_deploy("--device", "jetsn", "default", "--out", str(tmp_path / "x")), "--device")
    _one_error_line(_deploy("--device", "jetson", "--profile", "orin-nano", "default"), "--out")
    _one_error_line(_deploy("--device", "jetson", "--profile", "orin-nano", "--out", str(tmp_path / "x"), "no-such.onnx"),
                    "does not exist")
    _one_error_line(_deploy("--device", "jetson", "--profile", "orin-nano", "--out", str(tmp_path / "x"),
                            "--install-service", "default"), "--install-service")  # a `push` option
    _one_error_line(_deploy("--device", "jetson", "--profile", "orin-nano", "--out", str(tmp_path / "x"),
                            "--host", "no-at-sign", "default"), "USER@ADDRESS")
    _one_error_line(_deploy("--device", "jetson", "--out", str(tmp_path / "x"), "default"), "cannot tell which Jetson this machine is")
    engine = tmp_path / "m.engine"
    engine.write_bytes(b"plan")
    _one_error_line(_deploy("--device", "jetson", "--profile", "orin-nano", "--out", str(tmp_path / "x"), str(engine)),
                    "engines are built on the device")


def test_output_folder_must_be_new_empty_or_a_bundle(tmp_path, wheel):
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    _one_error_line(_deploy("--device", "jetson", "--profile", "orin-nano", "--out", str(foreign), "default"),
                    "non-empty folder without manifest.json")
    assert (foreign / "notes.txt").read_text() == "keep me"
    inside = tmp_path / "B"
    inside.mkdir()
    shutil.copyfile(shipped_model("default"), inside / "m.onnx")
    _one_error_line(_deploy("--device", "jetson", "--profile", "orin-nano", "--out", str(inside), str(inside / "m.onnx")),
                    "overlaps the input")


# -- INT8 (edgeirst.quantize) ------------------------------------------------------------------


@pytest.mark.slow  # 220 s: calibrates INT8 on real images, twice (2-core VM, busy)
def test_int8_bundle_for_orin_nano_verifies_and_is_idempotent(tmp_path, wheel, sirst_root):
    out = tmp_path / "B"
    args = ["--device", "jetson", "--profile", "orin-nano", "--precision", "int8", "--calib-data", str(sirst_root),
            "--out", str(out), "--wheel", str(wheel), "default"]
    r = _deploy(*args, timeout=1200)
    assert r.returncode == 0, r.stderr
    assert verify_bundle(out) == [] and (out / "edgeirst.toml").is_file()
    assert (out / "model.int8.onnx").is_file() and (out / "calibration.cache").is_file()  # JetPack 6 and 5 forms
    assert (out / "calibration.cache").read_text().startswith("TRT-")
    cfg = load_config(out / "edgeirst.toml")
    assert (cfg.model.precision, cfg.model.onnx_int8, cfg.model.calibration_cache) == ("int8", "model.int8.onnx",
                                                                                        "calibration.cache")
    before = _snapshot(out)
    assert _deploy(*args, timeout=1200).returncode == 0
    assert _snapshot(out) == before


@pytest.mark.slow  # quantizes on real images (about 100 s on the busy 2-core VM)
def test_cpu_int8_default_is_remade_from_its_fp32_source_for_jetpack6(tmp_path, wheel, sirst_root):
    """The shipped default-int8 is onnxruntime's CPU layout: the bundle holds its FP32 source and a
    TensorRT-layout QDQ model quantized from it (no calibration cache for JetPack 6 only)."""
    import onnx

    from edgeirst.quantize.qdq_check import tensorrt_layout_problems

    out = tmp_path / "B"
    r = _deploy("--device", "jetson", "--profile", "orin-nx", "--jetpack", "6.2", "--precision", "int8",
                "--calib-data", str(sirst_root), "--calib-images", "8", "--out", str(out), "--wheel", str(wheel),
                "default-int8", timeout=1200)
    assert r.returncode == 0, r.stderr
    assert "not TensorRT's layout" in r.stderr and f"using its FP32 source {shipped_model('default').name}" in r.stderr
    assert (out / "model.onnx").read_bytes() == shipped_model("default").read_bytes()
    assert (out / "model.int8.onnx").is_file() and not (out / "calibration.cache").exists()
    assert tensorrt_layout_problems(out / "model.int8.onnx") == []
    m = onnx.load(str(out / "model.int8.onnx"))
    producer = {o: n.op_type for n in m.graph.node for o in n.output}
    convs = [n for n in m.graph.node if n.op_type == "Conv"]
    int8 = [n for n in convs if producer.get(n.input[1]) == "DequantizeLinear"]
    assert 2 * len(int8) >= len(convs), (len(int8), len(convs))
    assert json.loads((out / "manifest.json").read_text())["models"]["model.int8.onnx"]["layout"] == "tensorrt"


def test_cpu_int8_without_its_fp32_source_is_refused(tmp_path, wheel):
    import onnx

    lone = tmp_path / "in" / "q.onnx"
    lone.parent.mkdir()
    shutil.copyfile(shipped_model("default-int8"), lone)  # its source is not next to it
    quantizers = sum(n.op_type == "QuantizeLinear" for n in onnx.load(str(lone)).graph.node)
    _one_error_line(_deploy("--device", "jetson", "--profile", "orin-nano", "--precision", "int8", "--jetpack", "6.2",
                            "--out", str(tmp_path / "B"), "--wheel", str(wheel), str(lone)),
                    "quantized for target cpu, not TensorRT's layout", f"{quantizers} QuantizeLinear uint8",
                    "non-zero zero point", "FP32 source is not known")
    assert not (tmp_path / "B").exists()


# -- a checkpoint is exported on the way ---------------------------------------------------------


@pytest.mark.slow  # 41 s: export inside deploy (2-core VM, busy)
def test_checkpoint_is_exported_to_onnx_with_metadata(tmp_path, wheel):
    pytest.importorskip("torch")
    out = tmp_path / "B"
    r = _deploy("--device", "jetson", "--profile", "orin-nano", "--out", str(out), "--wheel", str(wheel),
                str(shipped_model("default", "pt")))
    assert r.returncode == 0, r.stderr
    assert "export " in r.stderr and verify_bundle(out) == []
    from edgeirst.runtime.engine_build import read_onnx_meta

    meta = read_onnx_meta(out / "model.onnx")
    assert meta.name == "mshnet" and meta.dynamic
    before = _snapshot(out)
    r = _deploy("--device", "jetson", "--profile", "orin-nano", "--out", str(out), "--wheel", str(wheel),
                str(shipped_model("default", "pt")))
    assert r.returncode == 0 and "reuse model.onnx" in r.stderr
    assert _snapshot(out) == before


@pytest.fixture(scope="module")
def qdq_model(tmp_path_factory) -> Path:
    """A real QDQ (S8S8 symmetric, float biases: TensorRT's layout) export of the shipped default, made
    with onnxruntime's quantizer on two random frames: its accuracy does not matter here, its form does."""
    import numpy as np
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Frames(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(0)
            self.frames = iter([{"images": rng.random((1, 1, 64, 64), dtype=np.float32)} for _ in range(2)])

        def get_next(self):
            return next(self.frames, None)

    out = tmp_path_factory.mktemp("qdq") / "default.int8.onnx"
    quantize_static(str(shipped_model("default")), str(out), Frames(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, per_channel=True,
                    extra_options={"ActivationSymmetric": True, "QuantizeBias": False})
    return out


def test_qdq_model_deploys_to_jetpack6_without_calibration_data(tmp_path, wheel, qdq_model):
    out = tmp_path / "B"
    r = _deploy("--device", "jetson", "--profile", "orin-nx", "--jetpack", "6.2", "--precision", "int8",
                "--out", str(out), "--wheel", str(wheel), str(qdq_model))
    assert r.returncode == 0, r.stderr
    assert (out / "model.int8.onnx").read_bytes() == qdq_model.read_bytes() and not (out / "model.onnx").exists()
    cfg = load_config(out / "edgeirst.toml")
    assert (cfg.model.precision, cfg.model.onnx, cfg.model.onnx_int8, cfg.model.calibration_cache) == (
        "int8", "", "model.int8.onnx", "")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["models"]["model.int8.onnx"]["qdq"] and manifest["expects"]["tensorrt"] == ["10.3.0"]
    assert verify_bundle(out) == []
    from edgeirst.jetson.launch import engine_plan

    onnx, opts = engine_plan(cfg, out, "10.3.0.30")
    assert onnx == out / "model.int8.onnx" and opts.int8


def test_qdq_model_for_jetpack5_needs_the_float_model(tmp_path, wheel, qdq_model):
    _one_error_line(_deploy("--device", "jetson", "--profile", "orin-nx", "--precision", "int8", "--out",
                            str(tmp_path / "B"), "--wheel", str(wheel), str(qdq_model)),
                    "already INT8 (QDQ)", "TensorRT 8.5.2")
