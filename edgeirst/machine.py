"""Which machine a measurement ran on, and when: the stamp every benchmark result carries.

``machine_stamp()`` is shared by ``bench`` (every row), and meant for ``train`` and ``quantize``
too (a checkpoint's ``train.hardware``, a quantized model's metadata). It reads ``/proc``,
``nvidia-smi`` and package metadata; it imports neither torch nor tensorrt (a GPU is described
through ``torch.cuda`` only when torch is already imported), so it is cheap on any install.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

# library -> distribution names that provide it (the first installed one wins)
LIBRARIES: dict[str, tuple[str, ...]] = {
    "edgeirst": ("edgeirst",),
    "numpy": ("numpy",),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu", "onnxruntime-openvino", "onnxruntime-directml"),
    "torch": ("torch",),
    "tensorrt": ("tensorrt", "tensorrt-cu12", "tensorrt-cu11", "nvidia-tensorrt"),
    "opencv": ("opencv-python", "opencv-python-headless", "opencv-contrib-python"),
}
_MODULES = {"opencv": "cv2"}


def utc_now() -> str:
    """The current time, UTC, ISO 8601 to the second (``2026-11-22T10:04:51Z``)."""
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return None


def cpu_model(cpuinfo: str | None = None) -> str:
    """The CPU's name from ``/proc/cpuinfo`` (``model name``; ``Hardware``/``Model`` on ARM
    boards), else ``platform.processor()``, else the architecture."""
    text = _read("/proc/cpuinfo") if cpuinfo is None else cpuinfo
    for key in ("model name", "Hardware", "Model", "cpu model"):
        for line in (text or "").splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip() == key and value.strip():
                return value.strip()
    return platform.processor() or platform.machine()


def cpu_flags(cpuinfo: str | None = None, wanted: tuple[str, ...] = ("avx2", "avx512f", "avx512_vnni", "amx_int8",
                                                                      "amx_bf16", "asimd", "asimddp")) -> list[str]:
    """The speed-relevant instruction-set flags this CPU reports (of ``wanted``)."""
    text = _read("/proc/cpuinfo") if cpuinfo is None else cpuinfo
    for line in (text or "").splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() in ("flags", "Features"):
            have = set(value.split())
            return [f for f in wanted if f in have]
    return []


def memory_gib() -> float | None:
    """Total memory in GiB from ``/proc/meminfo``."""
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            return round(int(line.split()[1]) / 2**20, 1)
    return None


def gpus() -> list[dict[str, Any]]:
    """GPUs via ``nvidia-smi`` (name, driver, memory), else via ``torch.cuda`` when torch is
    already imported, else a Jetson's board model from the device tree; ``[]`` when none."""
    smi = shutil.which("nvidia-smi")
    if smi:
        try:
            out = subprocess.run([smi, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=10)
            rows = [[c.strip() for c in line.split(",")] for line in out.stdout.splitlines() if line.strip()]
            if out.returncode == 0 and rows:
                return [{"name": r[0], "driver": r[1] if len(r) > 1 else None,
                         "memory": r[2] if len(r) > 2 else None} for r in rows]
        except (OSError, subprocess.SubprocessError):
            pass
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        return [{"name": torch.cuda.get_device_name(i), "driver": None,
                 "memory": f"{torch.cuda.get_device_properties(i).total_memory // 2**20} MiB"}
                for i in range(torch.cuda.device_count())]
    board = (_read("/proc/device-tree/model") or "").strip("\x00\n ")
    if board and (_read("/etc/nv_tegra_release") is not None or "jetson" in board.lower()):
        return [{"name": board, "driver": (_read("/etc/nv_tegra_release") or "").split(",")[0].strip("# \n") or None,
                 "memory": "shared"}]
    return []


def library_versions(names: tuple[str, ...] | None = None) -> dict[str, str | None]:
    """Installed versions (``None`` = not installed), from package metadata without importing
    the libraries; a module already imported without metadata (e.g. JetPack's tensorrt) gives
    its ``__version__``."""
    out = {}
    for lib in names or tuple(LIBRARIES):
        version = None
        for dist in LIBRARIES.get(lib, (lib,)):
            try:
                version = importlib.metadata.version(dist)
                break
            except importlib.metadata.PackageNotFoundError:
                continue
        if version is None:
            module = sys.modules.get(_MODULES.get(lib, lib))
            version = getattr(module, "__version__", None)
        out[lib] = version
    return out


def machine_stamp() -> dict[str, Any]:
    """Machine and date of a measurement: CPU model, cores, memory, GPUs, OS, Python, library
    versions, the UTC date (ISO 8601), and the load average (1, 5, 15 min) at stamping time: on a
    shared machine, how busy the neighbours were."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "date": utc_now(),
        "host": platform.node(),
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "cores": os.cpu_count(),
        "cores_usable": affinity,
        "memory_gib": memory_gib(),
        "gpus": gpus(),
        "load_avg": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "os": f"{platform.system()} {platform.release()} {platform.machine()}",
        "python": platform.python_version(),
        "libraries": library_versions(),
    }


def describe(stamp: dict[str, Any]) -> str:
    """One line for a table footer: ``Intel Xeon (2 cores, 23.4 GiB), no GPU, onnxruntime 1.31.1,
    torch 2.13.0, 2026-11-22T10:04:51Z``."""
    gpu = ", ".join(g["name"] for g in stamp.get("gpus") or []) or "no GPU"
    libs = ", ".join(f"{k} {v}" for k, v in (stamp.get("libraries") or {}).items() if v and k != "edgeirst")
    edge = (stamp.get("libraries") or {}).get("edgeirst")
    load = stamp.get("load_avg")
    return (f"{stamp.get('cpu')} ({stamp.get('cores_usable') or stamp.get('cores')} cores, "
            f"{stamp.get('memory_gib')} GiB), {gpu}; edgeirst {edge}, {libs}; {stamp.get('date')}"
            + (f"; load average {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f}" if load else ""))


__all__ = ["cpu_model", "describe", "gpus", "library_versions", "machine_stamp", "utc_now"]
