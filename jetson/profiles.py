"""Jetson device profiles and JetPack releases, as data.

What `edgeirst deploy` needs to know about a target before it touches it: GPU compute
capability, memory, DLA cores, whether TensorRT has fast FP16 / INT8 there, the JetPack
releases that run on it (each with its L4T, TensorRT, CUDA, cuDNN, Ubuntu and Python) and the
nvpmodel power modes. ``edgeirst deploy --list-profiles`` prints ``PROFILES``.

Sources (read 2026-11; see each table's comment):
- JetPack <-> L4T <-> TensorRT/CUDA/cuDNN: NVIDIA's JetPack archive
  (developer.nvidia.com/embedded/jetpack-archive) and release notes, as also tabulated in
  rbonghi/jetson_stats ``jtop/core/jetson_variables.py`` (NVIDIA_JETPACK) and the Torch-TensorRT
  JetPack 6.1 page (CUDA 12.6, TensorRT 10.3, cuDNN 9.3). Ubuntu/Python are the JetPack line's
  root file system (18.04/3.6, 20.04/3.8, 22.04/3.10, 24.04/3.12).
- Precision: the TensorRT support matrix "Hardware and Precision" (7.2 Jetson AGX Xavier and 8.7
  Orin: FP16, INT8, INT8 tensor cores, DLA); compute capability 5.3 and 6.2 have fast FP16 but no
  INT8 (MathWorks GPU Coder "Data type (TensorRT)": "Compute capability of 6.2 does not support
  INT8 precision"; AlexeyAB/yolo2_light#26: TX2 has no DP4A).
- Modules (memory, CUDA/tensor cores, DLA, P-numbers): NVIDIA Jetson module data sheets and
  the module table of rbonghi/jetson_stats (MODULE_NAME_TABLE, CUDA_TABLE).
- Power modes: ``/etc/nvpmodel.conf`` as shipped per module (``< POWER_MODEL ID=.. NAME=.. >``),
  e.g. the Xavier NX list with ``PM_CONFIG DEFAULT=2``, the Orin Nano Super list (15W, 25W,
  MAXN_SUPER, 7W), the TX2 modes (Max-N, Max-Q, Max-P Core-All/ARM/Denver). Mode ids differ
  between modules AND JetPack releases, so the device's own nvpmodel.conf is the truth: the
  launcher resolves a mode NAME there.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from edgeirst.errors import EdgeirstError
from edgeirst.runtime.trt_api import MIN_JETPACK
from edgeirst.runtime.trt_api import OLDEST as OLDEST_TENSORRT
from edgeirst.runtime.trt_versions import version_tuple


@dataclass(frozen=True)
class JetPackRelease:
    """One JetPack release and the stack it installs."""

    jetpack: str
    l4t: str
    tensorrt: str
    cuda: str
    cudnn: str
    ubuntu: str
    python: str

    @property
    def tensorrt_tuple(self) -> tuple[int, ...]:
        return version_tuple(self.tensorrt)


# JetPack -> stack (see module docstring for sources). Only releases whose components we could
# confirm are listed; a device on a newer release is still detected by its L4T major line.
JETPACKS: dict[str, JetPackRelease] = {r.jetpack: r for r in (
    JetPackRelease("4.6", "32.6.1", "8.0.1", "10.2", "8.2.1", "18.04", "3.6"),
    JetPackRelease("4.6.1", "32.7.1", "8.2.1", "10.2", "8.2.1", "18.04", "3.6"),
    JetPackRelease("4.6.2", "32.7.2", "8.2.1", "10.2", "8.2.1", "18.04", "3.6"),
    JetPackRelease("4.6.3", "32.7.3", "8.2.1", "10.2", "8.2.1", "18.04", "3.6"),
    JetPackRelease("4.6.4", "32.7.4", "8.2.1", "10.2", "8.2.1", "18.04", "3.6"),
    JetPackRelease("4.6.5", "32.7.5", "8.2.1", "10.2", "8.2.1", "18.04", "3.6"),
    JetPackRelease("4.6.6", "32.7.6", "8.2.1", "10.2", "8.2.1", "18.04", "3.6"),
    JetPackRelease("5.0.2", "35.1.0", "8.4.1", "11.4", "8.4.1", "20.04", "3.8"),
    JetPackRelease("5.1", "35.2.1", "8.5.2", "11.4", "8.6.0", "20.04", "3.8"),
    JetPackRelease("5.1.1", "35.3.1", "8.5.2", "11.4", "8.6.0", "20.04", "3.8"),
    JetPackRelease("5.1.2", "35.4.1", "8.5.2", "11.4", "8.6.0", "20.04", "3.8"),
    JetPackRelease("5.1.3", "35.5.0", "8.5.2", "11.4", "8.6.0", "20.04", "3.8"),
    JetPackRelease("5.1.4", "35.6.0", "8.5.2", "11.4", "8.6.0", "20.04", "3.8"),
    JetPackRelease("5.1.5", "35.6.1", "8.5.2", "11.4", "8.6.0", "20.04", "3.8"),
    JetPackRelease("6.0", "36.3.0", "8.6.2", "12.2", "8.9.4", "22.04", "3.10"),
    JetPackRelease("6.1", "36.4.0", "10.3.0", "12.6", "9.3.0", "22.04", "3.10"),
    JetPackRelease("6.2", "36.4.3", "10.3.0", "12.6", "9.3.0", "22.04", "3.10"),
    JetPackRelease("6.2.1", "36.4.4", "10.3.0", "12.6", "9.3.0", "22.04", "3.10"),
    JetPackRelease("7.0", "38.2.0", "10.13.3", "13.0", "9.12.0", "24.04", "3.12"),
)}

# L4T major -> JetPack line, for revisions the table above does not list (no guessed minor).
JETPACK_LINES = {"32": "4.x", "34": "5.0 DP", "35": "5.x", "36": "6.x", "38": "7.x"}

JP4 = ("4.6", "4.6.1", "4.6.2", "4.6.3", "4.6.4", "4.6.5", "4.6.6")
JP5 = ("5.0.2", "5.1", "5.1.1", "5.1.2", "5.1.3", "5.1.4", "5.1.5")
JP6 = ("6.0", "6.1", "6.2", "6.2.1")
JP6_SUPER = ("6.2", "6.2.1")  # MAXN SUPER modes ship with JetPack 6.2 (Orin Nano and Orin NX)


@dataclass(frozen=True)
class PowerModes:
    """nvpmodel modes (id -> name) of a module under some JetPack releases."""

    jetpacks: tuple[str, ...]
    modes: dict[int, str]
    default: int | None = None


@dataclass(frozen=True)
class DeviceProfile:
    """A Jetson module as deploy sees it. ``int8`` means TensorRT runs INT8 layers fast there
    (INT8 tensor cores or DP4A); ``fp16`` means fast FP16."""

    name: str
    module: str
    soc: str
    gpu: str
    compute_capability: tuple[int, int]
    cuda_cores: int
    tensor_cores: int
    memory_mb: int
    dla_cores: int
    fp16: bool
    int8: bool
    jetpacks: tuple[str, ...]
    power: tuple[PowerModes, ...] = ()
    p_numbers: tuple[str, ...] = ()  # module part numbers in /proc/device-tree/compatible
    notes: str = ""

    @property
    def releases(self) -> list[JetPackRelease]:
        return [JETPACKS[j] for j in self.jetpacks]

    def power_mode_names(self, jetpack: str | None = None) -> list[str]:
        """Mode names valid on this module (under ``jetpack`` when given)."""
        names: list[str] = []
        for pm in self.power:
            if jetpack is None or jetpack in pm.jetpacks:
                names += [n for n in pm.modes.values() if n not in names]
        return names

    def summary(self) -> dict:
        """A JSON-able description (what manifest.json records)."""
        return {"name": self.name, "module": self.module, "soc": self.soc, "gpu": self.gpu,
                "compute_capability": "%d.%d" % self.compute_capability, "memory_mb": self.memory_mb,
                "dla_cores": self.dla_cores, "fp16": self.fp16, "int8": self.int8, "jetpacks": list(self.jetpacks)}


_NANO_MODES = (PowerModes(JP4, {0: "MAXN", 1: "5W"}, 0),)  # 10 W / 5 W
_TX2_MODES = (PowerModes(JP4, {0: "MAXN", 1: "MAXQ", 2: "MAXP_CORE_ALL", 3: "MAXP_CORE_ARM", 4: "MAXP_CORE_DENVER"}),)
_XNX_MODES = (PowerModes(JP4 + JP5, {0: "MODE_15W_2CORE", 1: "MODE_15W_4CORE", 2: "MODE_15W_6CORE",
                                     3: "MODE_10W_2CORE", 4: "MODE_10W_4CORE", 5: "MODE_10W_DESKTOP",
                                     6: "MODE_20W_2CORE", 7: "MODE_20W_4CORE", 8: "MODE_20W_6CORE"}, 2),)
_AGX_XAVIER_MODES = (PowerModes(JP4 + JP5, {0: "MAXN", 1: "MODE_10W", 2: "MODE_15W", 3: "MODE_30W_ALL",
                                            4: "MODE_30W_6CORE", 5: "MODE_30W_4CORE", 6: "MODE_30W_2CORE",
                                            7: "MODE_15W_DESKTOP"}),)
_ORIN_NANO_PRE = ("5.1.1", "5.1.2", "5.1.3", "5.1.4", "5.1.5", "6.0", "6.1")
_ORIN_NANO_SUPER = PowerModes(JP6_SUPER, {0: "15W", 1: "25W", 2: "MAXN_SUPER", 3: "7W"}, 2)
_ORIN_NX_PRE = ("5.1", "5.1.1", "5.1.2", "5.1.3", "5.1.4", "5.1.5", "6.0", "6.1")

# Profiles (see module docstring for sources). Memory is the module's total LPDDR, shared by
# CPU and GPU. Thor: JetPack 7 only; its nvpmodel modes are read on the device.
PROFILES: dict[str, DeviceProfile] = {p.name: p for p in (
    DeviceProfile("nano", "Jetson Nano (4GB)", "tegra210", "Maxwell", (5, 3), 128, 0, 4096, 0, True, False, JP4,
                  _NANO_MODES, ("p3448-0000", "p3448-0002")),
    DeviceProfile("nano-2gb", "Jetson Nano 2GB", "tegra210", "Maxwell", (5, 3), 128, 0, 2048, 0, True, False, JP4,
                  _NANO_MODES, ("p3448-0003",)),
    DeviceProfile("tx2", "Jetson TX2 (8GB) / TX2i", "tegra186", "Pascal", (6, 2), 256, 0, 8192, 0, True, False, JP4,
                  _TX2_MODES, ("p3310-1000", "p3489-0000")),
    DeviceProfile("tx2-4gb", "Jetson TX2 4GB", "tegra186", "Pascal", (6, 2), 256, 0, 4096, 0, True, False, JP4,
                  _TX2_MODES, ("p3489-0888",)),
    DeviceProfile("tx2-nx", "Jetson TX2 NX", "tegra186", "Pascal", (6, 2), 256, 0, 4096, 0, True, False, JP4,
                  _TX2_MODES, ("p3636-0001", "p3509-0000")),
    DeviceProfile("xavier-nx", "Jetson Xavier NX (8GB)", "tegra194", "Volta", (7, 2), 384, 48, 8192, 2, True, True,
                  JP4 + JP5, _XNX_MODES, ("p3668-0000", "p3668-0001")),
    DeviceProfile("xavier-nx-16gb", "Jetson Xavier NX 16GB", "tegra194", "Volta", (7, 2), 384, 48, 16384, 2, True,
                  True, JP4 + JP5, _XNX_MODES, ("p3668-0003",)),
    DeviceProfile("agx-xavier", "Jetson AGX Xavier (32GB)", "tegra194", "Volta", (7, 2), 512, 64, 32768, 2, True,
                  True, JP4 + JP5, _AGX_XAVIER_MODES, ("p2888-0004", "p2888-0003", "p2888-0005", "p2888-0008")),
    DeviceProfile("agx-xavier-16gb", "Jetson AGX Xavier 16GB", "tegra194", "Volta", (7, 2), 512, 64, 16384, 2, True,
                  True, JP4 + JP5, _AGX_XAVIER_MODES, ("p2888-0001",)),
    DeviceProfile("orin-nano", "Jetson Orin Nano 8GB", "tegra234", "Ampere", (8, 7), 1024, 32, 8192, 0, True, True,
                  _ORIN_NANO_PRE + JP6_SUPER, (PowerModes(_ORIN_NANO_PRE, {0: "15W", 1: "7W"}, 0), _ORIN_NANO_SUPER),
                  ("p3767-0003", "p3767-0005")),
    DeviceProfile("orin-nano-super", "Jetson Orin Nano Super (8GB, JetPack 6.2+)", "tegra234", "Ampere", (8, 7),
                  1024, 32, 8192, 0, True, True, JP6_SUPER, (_ORIN_NANO_SUPER,), ("p3767-0003", "p3767-0005"),
                  "the Orin Nano 8GB with JetPack 6.2's MAXN_SUPER mode (higher GPU/EMC clocks)"),
    DeviceProfile("orin-nano-4gb", "Jetson Orin Nano 4GB", "tegra234", "Ampere", (8, 7), 512, 16, 4096, 0, True,
                  True, _ORIN_NANO_PRE + JP6_SUPER, (PowerModes(_ORIN_NANO_PRE, {0: "10W", 1: "7W"}, 0),),
                  ("p3767-0004",)),
    DeviceProfile("orin-nx", "Jetson Orin NX 16GB", "tegra234", "Ampere", (8, 7), 1024, 32, 16384, 2, True, True,
                  _ORIN_NX_PRE + JP6_SUPER,
                  (PowerModes(_ORIN_NX_PRE, {0: "MAXN", 1: "10W", 2: "15W", 3: "25W"}),
                   PowerModes(JP6_SUPER, {0: "MAXN_SUPER", 1: "10W", 2: "15W", 3: "25W", 4: "40W"})),
                  ("p3767-0000",)),
    DeviceProfile("orin-nx-8gb", "Jetson Orin NX 8GB", "tegra234", "Ampere", (8, 7), 1024, 32, 8192, 1, True, True,
                  _ORIN_NX_PRE + JP6_SUPER,
                  (PowerModes(_ORIN_NX_PRE, {0: "MAXN", 1: "10W", 2: "15W", 3: "20W"}),
                   PowerModes(JP6_SUPER, {0: "MAXN_SUPER", 1: "10W", 2: "15W", 3: "20W", 4: "40W"})),
                  ("p3767-0001",)),
    DeviceProfile("agx-orin", "Jetson AGX Orin 64GB", "tegra234", "Ampere", (8, 7), 2048, 64, 65536, 2, True, True,
                  JP5 + JP6, (PowerModes(JP5 + JP6, {0: "MAXN", 1: "15W", 2: "30W", 3: "50W"}),),
                  ("p3701-0005",)),
    DeviceProfile("agx-orin-32gb", "Jetson AGX Orin 32GB", "tegra234", "Ampere", (8, 7), 1792, 56, 32768, 2, True,
                  True, JP5 + JP6, (PowerModes(JP5 + JP6, {0: "MAXN", 1: "15W", 2: "30W", 3: "40W"}),),
                  ("p3701-0000", "p3701-0004")),
    DeviceProfile("agx-thor", "Jetson AGX Thor (T5000)", "tegra264", "Blackwell", (11, 0), 2560, 96, 131072, 0, True,
                  True, ("7.0",), (), (),
                  "compute capability 11.0 as CUDA 13 names it (10.1 in CUDA 12.8/12.9); power modes: nvpmodel.conf"),
)}


def get_profile(name: str) -> DeviceProfile:
    """The profile called ``name``; an unknown name is a user error with close matches."""
    key = name.strip().lower().replace("_", "-").replace(" ", "-")
    if key in PROFILES:
        return PROFILES[key]
    close = difflib.get_close_matches(key, PROFILES, n=3, cutoff=0.5)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise EdgeirstError(f"unknown Jetson profile {name!r}; {hint}known: {', '.join(PROFILES)} "
                        "(edgeirst deploy --list-profiles)")


def jetpack_for_l4t(l4t: str) -> str | None:
    """The JetPack release of an exact L4T version (``"36.4.3"`` -> ``"6.2"``), else None."""
    want = version_tuple(l4t)
    for r in JETPACKS.values():
        have = version_tuple(r.l4t)
        if have == want or have == want + (0,) * (len(have) - len(want)):
            return r.jetpack
    return None


def supported(release: JetPackRelease) -> bool:
    """edgeirst runs there: TensorRT with the named-tensor API (>= 8.5) and Python >= 3.8."""
    return release.tensorrt_tuple[:2] >= OLDEST_TENSORRT


def select_releases(profile: DeviceProfile, jetpack: str | None = None) -> list[JetPackRelease]:
    """The JetPack releases a bundle targets: the supported ones of the profile, or the one asked
    for. JetPack 4 and 5.0.2 (TensorRT 8.0-8.4: bindings API only; Python 3.6 on JetPack 4) are
    refused in one line naming the newest JetPack the module runs."""
    if jetpack is not None and jetpack not in profile.jetpacks:
        raise EdgeirstError(f"JetPack {jetpack} does not run on {profile.module}; it supports "
                            f"{', '.join(profile.jetpacks)}")
    wanted = [JETPACKS[jetpack]] if jetpack is not None else profile.releases
    ok = [r for r in wanted if supported(r)]
    if not ok:
        newest = profile.releases[-1]
        old = wanted[-1]
        hint = (f"pass --jetpack {newest.jetpack} (the newest {profile.module} runs)" if supported(newest) else
                f"{profile.module} runs at most JetPack {newest.jetpack}")
        raise EdgeirstError(f"JetPack {old.jetpack} (TensorRT {old.tensorrt}, Python {old.python}) is not supported: "
                            f"edgeirst needs JetPack {MIN_JETPACK} or newer (TensorRT >= 8.5, Python >= 3.8); {hint}")
    return ok


def profiles_table() -> list[dict]:
    """One row per profile, for ``--list-profiles`` (text or JSON)."""
    rows = []
    for p in PROFILES.values():
        trts = sorted({r.tensorrt for r in p.releases}, key=version_tuple)
        rows.append({**p.summary(), "cuda_cores": p.cuda_cores, "tensor_cores": p.tensor_cores,
                     "tensorrt": trts, "python": sorted({r.python for r in p.releases}, key=version_tuple),
                     "power_modes": p.power_mode_names(), "notes": p.notes})
    return rows
