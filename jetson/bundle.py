"""A deployment bundle: one folder that turns a model into a detection service on a Jetson.

``build_bundle`` writes::

    model.onnx           float model, metadata inside (FP32/FP16 engines; INT8 with the cache; onnxruntime)
    model.int8.onnx      QDQ INT8 model for TensorRT >= 8.6                       (int8 only)
    calibration.cache    TensorRT 8.x calibration cache of model.onnx             (int8, TensorRT < 8.6 only)
    edgeirst.toml        source, precision, input size, run and tracker settings, sinks, engine, power
    launch.sh            builds/caches the engine on the device, then runs the detector
    install.sh           offline install (wheels unpacked into ./lib) + device check [+ --service]
    edgeirst.service     systemd unit (install.sh --service fills in the paths)
    wheels/edgeirst_device-*.whl   the device side of edgeirst (Python >= 3.8), and tqdm's wheel
    manifest.json        sha256 of every file, the profile, the versions it expects, the pre-flight
    SHA256SUMS           the same hashes for `sha256sum -c` (covers manifest.json; not edgeirst.toml, the user's to edit)

Running it again with the same inputs changes no file, byte for byte: generated files are
deterministic, expensive ones (export, quantization, calibration cache, wheel) are reused when
the key of their inputs recorded in manifest.json is unchanged and the file still verifies, and
a file is only replaced (through ``<name>.tmp`` and ``os.replace``) when its bytes differ.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import tomli_w

from edgeirst import __version__
from edgeirst.checkpoint import load_checkpoint, read_checkpoint
from edgeirst.errors import EdgeirstError, missing_extra
from edgeirst.io import publish
from edgeirst.export import export_onnx
from edgeirst.jetson import templates
from edgeirst.jetson.config import DeviceSettings, LaunchConfig, ModelSettings, PowerSettings, SourceSettings
from edgeirst.jetson.manifest import DEVICE_PYTHON, EDITABLE, MANIFEST, check_service_name, confined, sha256_file
from edgeirst.jetson.preflight import (PreflightResult, check_input_size, int8_forms, is_qdq, resolve_precision,
                                      run_preflight)
from edgeirst.jetson.profiles import DeviceProfile, get_profile, select_releases
from edgeirst.jetson.wheel import (DEVICE_DEPENDENCIES, check_wheel, device_files, device_wheel, device_wheel_name,
                                   files_hash, installed_wheel)
from edgeirst.meta import ModelMeta
from edgeirst.quantize import QuantConfig, quantize_model, write_calibration_cache
from edgeirst.quantize.qdq_check import require_tensorrt_layout, tensorrt_layout_problems
from edgeirst.runtime.engine_build import BuildOptions, read_onnx_meta
from edgeirst.runtime.pipeline import RunConfig
from edgeirst.runtime.trt_policy import int8_form
from edgeirst.runtime.trt_versions import version_tuple
from edgeirst.runtime.sinks import SinkOptions
from edgeirst.weights import WEIGHTS_DIR, resolve_model

FORMAT = 1
SUMS, CONFIG = "SHA256SUMS", "edgeirst.toml"
FLOAT_MODEL, INT8_MODEL, CALIB_CACHE = "model.onnx", "model.int8.onnx", "calibration.cache"
EXECUTABLE = ("launch.sh", "install.sh")


@dataclass
class BundleOptions:
    """Everything ``edgeirst deploy`` takes for the bundle (None = the model's or profile's default).
    ``run``, ``sinks`` and ``engine`` are the runtime's own types, written into edgeirst.toml as
    they are and read back by the launcher."""

    model: str
    profile: str
    out: Path
    precision: str = "fp16"
    calib_data: str | None = None
    calib_split: str = "train"
    calib_images: int = 64
    val_split: str | None = "val"
    jetpack: str | None = None
    source: str = SourceSettings.uri
    input_size: tuple[int, int] | None = None
    run: RunConfig = field(default_factory=RunConfig)
    sinks: SinkOptions = field(default_factory=lambda: LaunchConfig().sinks)
    engine: BuildOptions = field(default_factory=BuildOptions)
    power_mode: str = ""
    jetson_clocks: bool = False
    tegrastats: bool = True
    wheel: str | None = None
    extra_wheels: tuple[str, ...] = ()
    service: str = "edgeirst"

    def __post_init__(self) -> None:
        check_service_name(self.service)


@dataclass
class BundleResult:
    out: Path
    profile: DeviceProfile
    preflight: PreflightResult
    manifest: dict
    steps: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"out": str(self.out), "profile": self.profile.name, "preflight": self.preflight.to_dict(),
                "files": sorted(self.manifest.get("files", {})), "written": self.written,
                "unchanged": self.unchanged, "removed": self.removed, "steps": self.steps}




def _key(*parts) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def tree_hash(root: Path) -> str:
    """Content hash of every file under ``root`` (the calibration data set's identity)."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            p = Path(dirpath) / name
            h.update(p.relative_to(root).as_posix().encode() + b"\0" + sha256_file(p).encode())
    return h.hexdigest()


def read_manifest(out: Path) -> dict | None:
    """The manifest of an existing bundle in ``out``; None for a missing or empty folder. A
    non-empty folder that is not a bundle is refused (deploy never writes into foreign folders)."""
    if not out.exists():
        return None
    if not out.is_dir():
        raise EdgeirstError(f"--out {out} exists and is not a folder")
    path = out / MANIFEST
    if not path.is_file():
        if any(out.iterdir()):
            raise EdgeirstError(f"--out {out} is a non-empty folder without {MANIFEST}: refusing to write a bundle "
                                "into it; pick a new or empty folder")
        return None
    try:
        manifest = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}  # a damaged manifest: nothing is reused, everything is rewritten
    return manifest if isinstance(manifest, dict) else {}




def _resolve_input(model: str) -> Path:
    path = resolve_model(model)
    if path.suffix.lower() not in (".onnx", ".pt", ".pth"):
        raise EdgeirstError(f"deploy takes a .pt checkpoint, an .onnx model or a shipped model name, not {path.name}: "
                            "TensorRT engines are built on the device, for its GPU and TensorRT version")
    return path.resolve()


def _refuse_overlap(out: Path, inputs: list[Path]) -> None:
    """An output folder that is, contains or lies inside one of the inputs is refused."""
    o = out.resolve()
    for p in inputs:
        r = p.resolve()
        if r == o or o in r.parents or (r.is_dir() and r in o.parents):
            raise EdgeirstError(f"--out {out} overlaps the input {p}; write the bundle to a separate folder")
        if o.exists() and r.exists() and os.path.samefile(o, r):
            raise EdgeirstError(f"--out {out} is the input {p}")


def _float_meta(path: Path) -> ModelMeta:
    if path.suffix.lower() == ".onnx":
        return read_onnx_meta(path)

    return ModelMeta.from_dict(read_checkpoint(path)["meta"])


class _Builder:
    """Collects the bundle's files (name -> path of their bytes) and the steps it takes."""

    def __init__(self, opts: BundleOptions, out: Path, old: dict | None, tmp: Path, dry_run: bool,
                 log: Callable[[str], None]) -> None:
        self.opts, self.out, self.old, self.tmp, self.dry_run, self.log = opts, out, old or {}, tmp, dry_run, log
        self.files: dict[str, Path] = {}
        self.inputs: dict[str, str] = {}
        self.steps: list[str] = []

    def step(self, text: str) -> None:
        self.steps.append(text)
        self.log(("would " if self.dry_run else "") + text)

    def reusable(self, name: str, key: str) -> bool:
        """``name`` was made from the same inputs last time and still verifies: keep it."""
        entry = self.old.get("files", {}).get(name)
        path = self.out / name
        if self.old.get("inputs", {}).get(name) == key and entry and path.is_file() \
                and sha256_file(path) == entry.get("sha256"):
            self.files[name], self.inputs[name] = path, key
            self.step(f"reuse {name} (same inputs as the last run)")
            return True
        return False

    def make(self, name: str, key: str, what: str, produce: Callable[[Path], None]) -> None:
        """Reuse ``name`` or produce it into the temp folder (a no-op in a dry run)."""
        if self.reusable(name, key):
            return
        self.step(what)
        self.inputs[name] = key
        if not self.dry_run:
            target = self.tmp / name
            target.parent.mkdir(parents=True, exist_ok=True)
            produce(target)
            self.files[name] = target

    def text(self, name: str, content: str) -> None:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
        self.files[name] = path


def build_bundle(opts: BundleOptions, log: Callable[[str], None] | None = None, dry_run: bool = False) -> BundleResult:
    """Write (or with ``dry_run`` only plan) the bundle for ``opts``; see the module docstring."""
    log = log or (lambda line: print(line, file=sys.stderr, flush=True))
    profile = get_profile(opts.profile)
    releases = select_releases(profile, opts.jetpack)
    src = _resolve_input(opts.model)
    out = Path(opts.out).expanduser()
    extra = [check_wheel(Path(w).expanduser(), "--extra-wheel") for w in opts.extra_wheels]
    extra += [check_wheel(Path(opts.wheel).expanduser())] if opts.wheel else []
    calib = Path(opts.calib_data).expanduser() if opts.calib_data else None
    if calib is not None and not calib.is_dir():
        raise EdgeirstError(f"--calib-data {calib} is not a folder")
    _refuse_overlap(out, [src] + extra + ([calib] if calib else []))
    old = read_manifest(out)
    with tempfile.TemporaryDirectory(prefix="edgeirst-deploy-") as tmp:
        b = _Builder(opts, out, old, Path(tmp), dry_run, log)
        pf, models = _models(b, profile, releases, src, calib)
        _scripts(b, profile, pf, models)
        _wheels(b, extra)
        manifest = _manifest(b, profile, releases, pf, models)
        result = BundleResult(out, profile, pf, manifest, b.steps)
        if dry_run:
            return result
        _commit(b, result)
    return result


def _fp32_source(src: Path) -> Path | None:
    """The FP32 model an edgeirst INT8 file was quantized from (its metadata's ``quant.source``):
    the shipped model of that name for a shipped file, else that file next to it; None when it
    is not there or is not the same model in FP32."""
    meta = read_onnx_meta(src)
    name = Path(str((meta.quant or {}).get("source") or "")).name
    if not name.lower().endswith(".onnx"):
        return None
    path = (WEIGHTS_DIR if src.resolve().parent == WEIGHTS_DIR else src.parent) / name
    if not path.is_file() or path.resolve() == src.resolve():
        return None
    source = read_onnx_meta(path)
    return path if not source.quant and source.name == meta.name and source.kwargs == meta.kwargs else None


def _tensorrt_input(b: _Builder, src: Path) -> Path:
    """``src``, or for an INT8 model TensorRT cannot build (onnxruntime's CPU layout) its FP32
    source, re-quantized for TensorRT on the way; without a known source, one error line."""
    if src.suffix.lower() != ".onnx" or not is_qdq(src):
        return src
    problems = tensorrt_layout_problems(src)
    if not problems:
        return src
    target = (read_onnx_meta(src).quant or {}).get("target", "unknown")
    source = _fp32_source(src)
    if source is None:
        raise EdgeirstError(f"{src.name} is INT8 quantized for target {target}, not TensorRT's layout "
                            f"({'; '.join(problems)}), and its FP32 source is not known: deploy the FP32 model with "
                            "--calib-data, or `edgeirst quantize` it with --target tensorrt")
    b.log(f"note: {src.name} is INT8 for target {target}, not TensorRT's layout ({problems[0]}): using its FP32 "
          f"source {source.name}, quantized for TensorRT here")
    return source


def _models(b: _Builder, profile: DeviceProfile, releases, src: Path, calib: Path | None):
    opts = b.opts
    src = _tensorrt_input(b, src)
    qdq_input = src.suffix.lower() == ".onnx" and is_qdq(src)
    models: dict[str, dict] = {}
    float_path: Path | None = None
    if src.suffix.lower() == ".onnx" and not qdq_input:
        b.make(FLOAT_MODEL, _key("copy", sha256_file(src)), f"copy {src} -> {FLOAT_MODEL}",
               lambda t: shutil.copyfile(src, t))
        float_path = b.files.get(FLOAT_MODEL, src)
    elif src.suffix.lower() in (".pt", ".pth"):
        try:
            import torch
        except ImportError:
            raise missing_extra("torch (to export a .pt checkpoint)", "train") from None

        def export(target: Path) -> None:
            model, meta, _ = load_checkpoint(src)
            export_onnx(model, meta, target, dynamic=True)

        b.make(FLOAT_MODEL, _key("export", sha256_file(src), 17, __version__, torch.__version__),
               f"export {src} -> {FLOAT_MODEL} (ONNX opset 17, dynamic height/width, metadata inside)", export)
        float_path = b.files.get(FLOAT_MODEL)
    meta = _float_meta(float_path or src)
    pf = run_preflight(profile, releases, meta, float_path or src, opts.precision, opts.input_size, opts.engine.dla_core,
                       opts.power_mode, opts.engine.workspace_mb) if (float_path or src.suffix == ".onnx") else None
    if pf is None:  # a dry run of a checkpoint: no ONNX yet to estimate memory from

        precision, warnings = resolve_precision(profile, opts.precision)
        pf = PreflightResult(precision, check_input_size(meta, opts.input_size), False, False, None,
                             profile.memory_mb, warnings + ["memory is checked after the export (skipped in a dry run)"])
        pf.needs_qdq, pf.needs_cache = int8_forms(releases) if precision == "int8" else (False, False)
    for w in pf.warnings:
        b.log(f"warning: {w}")
    if float_path is not None or src.suffix.lower() in (".pt", ".pth"):
        models[FLOAT_MODEL] = {"role": "float: FP32/FP16 engines, INT8 with calibration.cache, onnxruntime",
                               "qdq": False, "meta": meta.to_dict()}
    if pf.precision == "int8":
        _int8(b, profile, releases, pf, src, qdq_input, float_path, calib, models)
    elif opts.calib_data:
        b.log(f"note: --calib-data is not used for {pf.precision}")
    return pf, models


def _int8(b: _Builder, profile, releases, pf: PreflightResult, src: Path, qdq_input: bool, float_path: Path | None,
          calib: Path | None, models: dict) -> None:
    opts = b.opts
    trt_old = sorted({r.tensorrt for r in releases if int8_form(r.tensorrt) == "cache"}, key=version_tuple)
    if pf.needs_cache and qdq_input:
        raise EdgeirstError(f"{src.name} is already INT8 (QDQ), but TensorRT {', '.join(trt_old)} on {profile.module} "
                            "needs the float model and a calibration cache: pass the float .onnx/.pt with --calib-data, "
                            "or target JetPack 6+ with --jetpack")
    if calib is None and not (qdq_input and not pf.needs_cache):
        forms = (["a QDQ model (TensorRT >= 8.6)"] if pf.needs_qdq else []) + \
                ([f"a calibration cache (TensorRT {', '.join(trt_old)})"] if pf.needs_cache else [])
        raise EdgeirstError(f"INT8 on {profile.module} needs {' and '.join(forms)}, made from calibration images: "
                            "pass --calib-data DIR (a SIRST-style dataset), or use --precision fp16")
    data_key = tree_hash(calib) if calib is not None else None
    if pf.needs_qdq:
        if qdq_input:
            b.make(INT8_MODEL, _key("copy", sha256_file(src)), f"copy {src} -> {INT8_MODEL} (already QDQ INT8)",
                   lambda t: shutil.copyfile(src, t))
        else:
            import onnxruntime

            def quantize(target: Path) -> None:
                cfg = QuantConfig(precision="int8", target="tensorrt", data=str(calib), split=opts.calib_split,
                                  calib_images=opts.calib_images, val_split=opts.val_split)
                quantize_model(b.files[FLOAT_MODEL], target, cfg, progress=False)

            b.make(INT8_MODEL, _key("qdq", b.inputs[FLOAT_MODEL], data_key, opts.calib_split, opts.calib_images,
                                    opts.val_split, __version__, onnxruntime.__version__),
                   f"quantize {FLOAT_MODEL} -> {INT8_MODEL} (TensorRT QDQ, {opts.calib_images} images of "
                   f"{calib} split {opts.calib_split})", quantize)
        q = b.files.get(INT8_MODEL)
        qmeta = _float_meta(q) if q is not None else None
        if q is not None:  # what TensorRT's explicit INT8 takes, checked here: the device has no onnx
            require_tensorrt_layout(q, INT8_MODEL)
        models[INT8_MODEL] = {"role": "QDQ INT8 for TensorRT >= 8.6", "qdq": True, "layout": "tensorrt",
                              "meta": qmeta.to_dict() if qmeta else None}
    if pf.needs_cache:
        def cache(target: Path) -> None:
            # the header names the TensorRT that reads it (the launcher rewrites it if another runs)
            write_calibration_cache(b.files[FLOAT_MODEL], target, str(calib), opts.calib_split, opts.calib_images,
                                    progress=False, trt_version=trt_old[0])

        b.make(CALIB_CACHE, _key("cache", b.inputs[FLOAT_MODEL], data_key, opts.calib_split, opts.calib_images,
                                 trt_old[0], __version__),
               f"write {CALIB_CACHE} (TensorRT {', '.join(trt_old)} INT8 calibration of {FLOAT_MODEL})", cache)


def _scripts(b: _Builder, profile: DeviceProfile, pf: PreflightResult, models: dict) -> None:
    opts = b.opts
    meta = models.get(FLOAT_MODEL, models.get(INT8_MODEL, {})).get("meta") or {}
    run = opts.run
    if run.threshold is None:  # the model's own, written out so that a field engineer sees it
        run = dataclasses.replace(run, threshold=ModelMeta.from_dict(meta).threshold if meta else ModelMeta.threshold)
    cfg = LaunchConfig(
        model=ModelSettings(onnx=FLOAT_MODEL if FLOAT_MODEL in models else "",
                            onnx_int8=INT8_MODEL if INT8_MODEL in models else "",
                            calibration_cache=CALIB_CACHE if pf.precision == "int8" and pf.needs_cache else "",
                            precision=pf.precision, input_size=list(pf.input_size)),
        source=SourceSettings(opts.source), run=run, sinks=opts.sinks, engine=opts.engine,
        power=PowerSettings(opts.power_mode.upper(), bool(opts.jetson_clocks), bool(opts.tegrastats)),
        device=DeviceSettings(profile.name)).validate()
    header = (f"edgeirst.toml for {profile.module}, written by edgeirst deploy {__version__}.\n"
              f"Edit it on the device and restart the service (sudo systemctl restart {opts.service}); a key left\n"
              "out takes its default. `python -m edgeirst.jetson.check` (install.sh) checks it.")
    b.text(CONFIG, config_text(cfg, header))
    values = {"profile": profile.name, "service": opts.service}
    b.text("launch.sh", templates.render(templates.LAUNCH_SH, **values))
    b.text("install.sh", templates.render(templates.INSTALL_SH, **values))
    b.text(f"{opts.service}.service", templates.render(templates.SERVICE_UNIT, **values))
    b.step(f"write {CONFIG}, launch.sh, install.sh and {opts.service}.service")


def config_text(cfg: LaunchConfig, header: str = "") -> str:
    """edgeirst.toml's text: ``header`` as comments, then the tables (tomli-w; deterministic)."""
    comments = "".join(f"# {line}\n" if line else "#\n" for line in header.splitlines())
    return comments + ("\n" if comments else "") + tomli_w.dumps(cfg.tables())


def _wheels(b: _Builder, extra: list[Path]) -> None:
    """The device wheel (or the --wheel given), and a wheel of each pure-Python dependency the device
    path imports (repacked from this host's install, unless an --extra-wheel already brings it)."""
    opts = b.opts
    if opts.wheel:
        w = Path(opts.wheel).expanduser()
        b.make(f"wheels/{w.name}", _key("copy", sha256_file(w)), f"copy the edgeirst wheel {w}",
               lambda t: shutil.copyfile(w, t))
    else:
        files = device_files()
        name = f"wheels/{device_wheel_name()}"
        b.make(name, _key("device-wheel", files_hash(files)),
               f"build {name} ({len(files)} files of the installed edgeirst, Python >= 3.8)",
               lambda t: device_wheel(t.parent, files))
    brought = {w.name.split("-", 1)[0].lower().replace("_", "-") for w in extra}
    for dist in DEVICE_DEPENDENCIES:
        if dist in brought:
            continue
        try:
            version = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            raise EdgeirstError(f"{dist} is not installed on this host; the bundle carries it for the device "
                                f"(pip install {dist}, or pass its wheel with --extra-wheel)") from None

        def repack(t: Path, dist: str = dist) -> None:
            built = installed_wheel(dist, t.parent)
            if built != t:
                publish(built, t)

        b.make(f"wheels/{dist}-{version}-py3-none-any.whl", _key("installed-wheel", dist, version),
               f"pack {dist} {version} from this host for the device", repack)
    for w in extra:
        if w == (Path(opts.wheel).expanduser() if opts.wheel else None):
            continue
        b.make(f"wheels/{w.name}", _key("copy", sha256_file(w)), f"copy the extra wheel {w}",
               lambda t, w=w: shutil.copyfile(w, t))


def _manifest(b: _Builder, profile: DeviceProfile, releases, pf: PreflightResult, models: dict) -> dict:
    files = {} if b.dry_run else {name: {"sha256": sha256_file(p), "size": p.stat().st_size}
                                  for name, p in sorted(b.files.items())}
    manifest = {
        "format": FORMAT, "edgeirst": __version__, "profile": profile.summary(),
        "precision": {"requested": b.opts.precision, "effective": pf.precision},
        "expects": {"jetpack": [r.jetpack for r in releases], "l4t": [r.l4t for r in releases],
                    "tensorrt": sorted({r.tensorrt for r in releases}, key=version_tuple),
                    "cuda": sorted({r.cuda for r in releases}, key=version_tuple),
                    "python": ">=%d.%d" % DEVICE_PYTHON,
                    "jetpack_python": sorted({r.python for r in releases}, key=version_tuple)},
        "models": models, "preflight": pf.to_dict(), "inputs": dict(sorted(b.inputs.items())), "files": files,
    }
    if not b.dry_run:
        b.text(MANIFEST, json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        b.text(SUMS, "".join(f"{sha256_file(b.files[n])}  {n}\n" for n in sorted(b.files)
                             if n != SUMS and n not in EDITABLE))
    return manifest


def _same_bytes(a: Path, b: Path) -> bool:
    if a.resolve() == b.resolve():
        return True
    if a.stat().st_size != b.stat().st_size:
        return False
    with open(a, "rb") as fa, open(b, "rb") as fb:
        while True:
            ca, cb = fa.read(1 << 20), fb.read(1 << 20)
            if ca != cb:
                return False
            if not ca:
                return True


def _commit(b: _Builder, result: BundleResult) -> None:
    """Move the files into the bundle: only those whose bytes differ, each via ``<name>.tmp``;
    manifest.json and SHA256SUMS last, so an interrupted run never leaves a bundle that verifies."""
    out = b.out
    out.mkdir(parents=True, exist_ok=True)
    order = sorted(n for n in b.files if n not in (MANIFEST, SUMS)) + [MANIFEST, SUMS]
    for name in order:
        src, dst = b.files[name], out / name
        if dst.is_file() and _same_bytes(src, dst):
            result.unchanged.append(name)
            continue
        dst.parent.mkdir(parents=True, exist_ok=True)
        tmp = dst.with_name(dst.name + ".tmp")
        shutil.copyfile(src, tmp)
        publish(tmp, dst, mode=0o755 if name in EXECUTABLE else 0o644)
        result.written.append(name)
    for name in sorted(set(b.old.get("files", {})) - set(b.files)):
        if not confined(name):  # a tampered manifest never makes deploy delete outside the bundle
            continue
        stale = out / name
        if stale.is_file():
            stale.unlink()
            result.removed.append(name)
