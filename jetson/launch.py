"""The launcher a bundle runs on the device: ``python -m edgeirst.jetson.launch BUNDLE/edgeirst.toml``.

1. applies the power settings (nvpmodel mode by name, jetson_clocks) when running as root;
2. picks the engine: with TensorRT (and pycuda or cuda-python) it builds one on first start with
   edgeirst's builder (``edgeirst.runtime.engine_build.cached_engine``) or ``trtexec``, cached per
   device and TensorRT version, from the bundle's QDQ model (TensorRT >= 8.6) or float model plus
   calibration cache (TensorRT 8.x) for INT8; without TensorRT it says so and runs the ONNX model
   on onnxruntime;
3. runs the detector as ``edgeirst run`` does (same library call, settings from the TOML), with
   tegrastats sampling power when present, and ends with the run summary and fps per watt.

Log lines go to stderr: stdout carries the JSON lines when ``[sinks] jsonl = "-"``.
Never imports torch.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from shutil import which

import edgeirst
from edgeirst import __version__
from edgeirst.errors import EdgeirstError
from edgeirst.jetson.config import LaunchConfig, load_config
from edgeirst.jetson.detect import detect_local
from edgeirst.jetson.power import jetson_clocks, set_power_mode
from edgeirst.jetson.profiles import PROFILES
from edgeirst.jetson.tegrastats import TegrastatsSampler, find_tegrastats
from edgeirst.meta import ModelMeta
from edgeirst.runtime.backends import BackendOptions, tensorrt_available
from edgeirst.runtime.engine_build import (BuildOptions, _profile_shapes, cache_dir, cache_key, cached_engine,
                                           publish_engine, read_onnx_meta)
from edgeirst.runtime.pipeline import run_stream
from edgeirst.runtime.trt_api import MIN_JETPACK, api_for
from edgeirst.runtime.trt_policy import int8_form


def _log(line: str) -> None:
    print(f"[edgeirst] {line}", file=sys.stderr, flush=True)


def _bundle_meta(bundle: Path, name: str) -> ModelMeta | None:
    """A model's metadata from manifest.json (so the device needs neither onnx nor onnxruntime for it)."""
    try:
        entry = json.loads((bundle / "manifest.json").read_text())["models"][name]["meta"]
    except (OSError, KeyError, TypeError, json.JSONDecodeError):
        return None
    return ModelMeta.from_dict(entry) if entry else None


def tensorrt_status() -> tuple[str | None, str]:
    """(TensorRT version or None, why not usable)."""

    if not tensorrt_available():
        if importlib.util.find_spec("tensorrt") is None:
            return None, "tensorrt does not import for this Python (JetPack: apt install python3-libnvinfer)"
        return None, "tensorrt imports but neither pycuda nor cuda-python does (pip install 'edgeirst[jetson]')"
    import tensorrt

    if api_for(tensorrt.__version__) is None:
        return None, (f"TensorRT {tensorrt.__version__} has only the bindings API; edgeirst's engines need TensorRT "
                      f">= 8.5 (JetPack {MIN_JETPACK}+)")
    return tensorrt.__version__, ""


def engine_plan(cfg: LaunchConfig, bundle: Path, trt_version: str) -> tuple[Path, BuildOptions]:
    """(ONNX file, TensorRT build options) for this TensorRT version and the bundle's precision."""
    m = cfg.model
    api = api_for(trt_version)
    # FP16 for the float layers of INT8 too, where the release still has weak typing (not TensorRT 11)
    fp16 = m.precision == "fp16" or m.precision == "int8" and api is not None and api.weak_typing
    build = dataclasses.replace(cfg.engine, max_hw=tuple(m.input_size), fp16=fp16)
    if m.precision == "int8":
        if int8_form(trt_version) == "qdq" and m.onnx_int8:
            return bundle / m.onnx_int8, dataclasses.replace(build, int8=True)
        if m.calibration_cache and m.onnx:
            return bundle / m.onnx, dataclasses.replace(build, int8=True,
                                                        calibration_cache=str(bundle / m.calibration_cache))
        have = [f for f in (m.onnx_int8 and "a QDQ model (TensorRT >= 8.6)",
                            m.calibration_cache and "a calibration cache") if f]
        raise EdgeirstError(f"this bundle has no INT8 form for TensorRT {trt_version} (it has {' and '.join(have) or 'none'}); "
                            "redeploy for this JetPack, or set [model] precision = \"fp16\" in edgeirst.toml")
    return bundle / (m.onnx or m.onnx_int8), build


def trtexec_engine(trtexec: str, onnx: Path, meta: ModelMeta, build: BuildOptions, trt_version: str) -> Path:
    """Build with ``trtexec`` into the same per-device, per-TensorRT cache, with the metadata sidecar."""

    info = detect_local()
    cc = next((p.compute_capability for p in PROFILES.values() if p.soc == info.soc), (0, 0))
    folder = cache_dir(trt_version, info.model or "jetson", cc, build.cache_dir)
    engine = folder / f"{onnx.stem}-trtexec-{cache_key(onnx, build)}.engine"
    if engine.is_file():
        return engine
    folder.mkdir(parents=True, exist_ok=True)
    tmp = engine.with_name(engine.name + ".tmp")
    argv = [trtexec, f"--onnx={onnx}", f"--saveEngine={tmp}"]
    api = api_for(trt_version)
    if api is not None and not api.weak_typing:  # TensorRT 11: strongly typed only, no --fp16/--int8
        if build.fp16 or build.calibration_cache:
            raise EdgeirstError(f"trtexec of TensorRT {trt_version} builds strongly typed networks only: set [model] "
                                "precision = \"fp32\", or int8 from a QDQ model, in edgeirst.toml")
    else:
        argv += ["--fp16"] * bool(build.fp16) + ["--int8"] * bool(build.int8)
    if build.calibration_cache:
        argv.append(f"--calib={build.calibration_cache}")
    if build.dla_core is not None:
        argv += [f"--useDLACore={build.dla_core}", "--allowGPUFallback"]
    argv.append(f"--memPoolSize=workspace:{build.workspace_mb}M")
    if meta.dynamic:
        shape = (-1, meta.in_chans, -1, -1)
        for flag, dims in zip(("--minShapes", "--optShapes", "--maxShapes"), _profile_shapes(shape, meta, build)):
            argv.append(f"{flag}=images:{'x'.join(map(str, dims))}")
    _log("building the TensorRT engine: " + shlex.join(argv))
    r = subprocess.run(argv, capture_output=True, text=True)
    if r.returncode != 0 or not tmp.is_file():
        tail = [ln for ln in (r.stdout + r.stderr).splitlines() if ln.strip()][-3:]
        raise EdgeirstError(f"trtexec failed to build {onnx.name}: {' | '.join(tail)}")
    info_d = {"tensorrt": trt_version, "device": info.model, "builder": "trtexec", "onnx": str(onnx),
              "options": dataclasses.asdict(build)}
    return publish_engine(tmp, engine, meta, info_d)


def prepare_model(cfg: LaunchConfig, bundle: Path) -> tuple[Path, str]:
    """(model file to run, backend): a cached or freshly built engine, or the ONNX model on onnxruntime."""
    trt_version, why = tensorrt_status()
    if trt_version is None:
        onnx = cfg.model.onnx or cfg.model.onnx_int8
        _log(f"TensorRT is not available here ({why}): running {onnx} on onnxruntime instead")
        return bundle / onnx, "onnxruntime"
    onnx, build = engine_plan(cfg, bundle, trt_version)
    meta = _bundle_meta(bundle, onnx.name)
    trtexec = None
    if build.builder == "trtexec":
        trtexec = which("trtexec") or next((p for p in ("/usr/src/tensorrt/bin/trtexec",) if Path(p).is_file()), None)
        if trtexec is None:
            raise EdgeirstError("[engine] builder = \"trtexec\" but trtexec is not installed (JetPack: "
                                "/usr/src/tensorrt/bin/trtexec, package libnvinfer-bin)")
    started = time.monotonic()
    _log(f"TensorRT {trt_version}: engine for {onnx.name} ({cfg.model.precision}) - cached per device and "
         "TensorRT version; the first start builds it, which can take minutes")
    if trtexec:
        engine = trtexec_engine(trtexec, onnx, meta or read_onnx_meta(onnx), build, trt_version)
    else:
        engine = cached_engine(onnx, build, meta=meta)
    _log(f"engine {engine} ready in {time.monotonic() - started:.1f} s")
    return engine, "tensorrt"


def apply_power(cfg: LaunchConfig) -> None:
    p = cfg.power
    if not (p.mode or p.jetson_clocks):
        return
    if os.geteuid() != 0:
        _log("warning: [power] settings need root; leaving the power mode and clocks as they are")
        return

    if p.mode:
        mode = set_power_mode(p.mode)
        _log(f"power mode {mode.name} (nvpmodel -m {mode.id})")
    if p.jetson_clocks:
        jetson_clocks("on")
        _log("clocks locked at the power mode's maximum (jetson_clocks)")


def run_command_line(cfg: LaunchConfig, model: Path, backend: str) -> list[str]:
    """The `edgeirst run` command this launcher is equivalent to (logged for the field engineer)."""
    run, t = cfg.run, cfg.run.tracker
    argv = ["edgeirst", "run", str(model), "--source", cfg.source.uri, "--backend", backend]
    argv += ["--threshold", str(run.threshold)] if run.threshold is not None else []
    argv += ["--confirm", t.confirm, "--gate", str(t.gate)] if run.track else ["--no-track"]
    argv += ["--fixed-size"] if run.fixed_size else []
    argv += ["--agc", f"{run.agc[0]},{run.agc[1]}"] if run.agc else []
    for flag, value in (("--jsonl", cfg.sinks.jsonl), ("--save", cfg.sinks.save), ("--serve", cfg.sinks.serve)):
        argv += [flag, value] if value else []
    return argv


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edgeirst.jetson.launch", description=__doc__.splitlines()[0])
    ap.add_argument("config", help="the bundle's edgeirst.toml")
    ap.add_argument("--build-only", action="store_true", help="prepare the engine (or the fallback) and stop")
    ap.add_argument("--max-frames", type=int, help="stop after this many frames")
    args = ap.parse_args(argv)
    try:
        cfg = load_config(args.config)
        bundle = Path(args.config).resolve().parent
        _log(f"edgeirst {__version__} from {Path(edgeirst.__file__).resolve().parent}, Python "
             f"{sys.version.split()[0]}, profile {cfg.device.profile or '?'}")
        apply_power(cfg)
        model, backend = prepare_model(cfg, bundle)
        if args.build_only:
            _log(f"ready: {model} on {backend}")
            return 0

        _log("running: " + shlex.join(run_command_line(cfg, model, backend)))
        sampler = TegrastatsSampler().start() if cfg.power.tegrastats and find_tegrastats() else None
        try:
            summary = run_stream(str(model), [cfg.source.uri], BackendOptions(backend=backend), cfg.sinks,
                                 dataclasses.replace(cfg.run, max_frames=args.max_frames))
        finally:
            if sampler is not None:
                sampler.stop()
        _log(summary.text())
        if sampler is not None:
            _log("power: " + sampler.report(summary.fps))
        if summary.error:
            print(f"error: {summary.error}", file=sys.stderr, flush=True)
            return 2
        return {"interrupted": 130, "terminated": 143}.get(summary.stopped_by, 0)
    except EdgeirstError as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr, flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
