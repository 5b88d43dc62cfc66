"""Which Jetson is this? Read on the device (or from a remote probe) and matched to a profile.

Three witnesses, as NVIDIA and jetson-stats read them:
- ``/etc/nv_tegra_release``: ``# R36 (release), REVISION: 4.3, GCID: 38968081, BOARD: generic, ...``
  -> L4T 36.4.3 -> JetPack 6.2;
- the ``nvidia-l4t-core`` package version (``dpkg-query -W -f='${Version}' nvidia-l4t-core``):
  ``36.4.3-20250107174145`` -> L4T 36.4.3 (present where nv_tegra_release is not, e.g. containers);
- ``/proc/device-tree/model`` (``NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super``)
  and ``/proc/device-tree/compatible`` (NUL-separated: ``nvidia,p3768-0000+p3767-0005-super``,
  ``nvidia,p3767-0005``, ``nvidia,tegra234``): the module part number picks the profile.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edgeirst.jetson.manifest import DEVICE_PYTHON
from edgeirst.jetson.profiles import JETPACK_LINES, PROFILES, DeviceProfile, jetpack_for_l4t
from edgeirst.runtime.trt_versions import version_tuple

_RELEASE = re.compile(r"#\s*R(\d+)\s*\(release\),\s*REVISION:\s*(\d+(?:\.\d+)*)(?:.*?BOARD:\s*([^,\s]+))?")
_PNUM = re.compile(r"p\d{4}-\d{4}")
_SOC = re.compile(r"tegra\d{3}")

# /proc/device-tree/model keywords -> candidate profiles (memory decides between sizes).
# "Jetson-AGX" is AGX Xavier's model string on L4T 32; "quill" is the TX2 board's codename.
_MODEL_KEYWORDS = (
    ("thor", ("agx-thor",)),
    ("agx orin", ("agx-orin", "agx-orin-32gb")),
    ("orin nx", ("orin-nx", "orin-nx-8gb")),
    ("orin nano", ("orin-nano", "orin-nano-4gb")),
    ("xavier nx", ("xavier-nx", "xavier-nx-16gb")),
    ("agx xavier", ("agx-xavier", "agx-xavier-16gb")),
    ("jetson-agx", ("agx-xavier", "agx-xavier-16gb")),
    ("tx2 nx", ("tx2-nx",)),
    ("tx2", ("tx2", "tx2-4gb")),
    ("quill", ("tx2", "tx2-4gb")),
    ("nano", ("nano", "nano-2gb")),
)


@dataclass
class DeviceInfo:
    """What was read about a device. Unknown fields stay None."""

    l4t: str | None = None
    board: str | None = None
    model: str | None = None
    compatible: list[str] = field(default_factory=list)
    mem_total_mb: int | None = None
    mem_available_mb: int | None = None
    disk_free_mb: int | None = None
    arch: str | None = None
    python: str | None = None
    tensorrt: str | None = None
    trtexec: str | None = None
    systemd: bool | None = None
    user: str | None = None
    uid: int | None = None
    directory: str | None = None

    @property
    def is_jetson(self) -> bool:
        return bool(self.l4t or self.soc)

    @property
    def jetpack(self) -> str | None:
        """The exact JetPack release, or its line (``"6.x"``) when the L4T revision is not listed."""
        if not self.l4t:
            return None
        return jetpack_for_l4t(self.l4t) or JETPACK_LINES.get(self.l4t.split(".")[0])

    @property
    def soc(self) -> str | None:
        for entry in self.compatible:
            m = _SOC.search(entry)
            if m:
                return m.group(0)
        return None

    @property
    def p_numbers(self) -> list[str]:
        """Module part numbers, carrier boards' included (``p3768-0000+p3767-0005`` gives both)."""
        out: list[str] = []
        for entry in self.compatible:
            out += [p for p in _PNUM.findall(entry) if p not in out]
        return out

    @property
    def super_mode(self) -> bool:
        return any("super" in e.lower() for e in self.compatible) or "super" in (self.model or "").lower()

    def to_dict(self) -> dict:
        return {**asdict(self), "jetpack": self.jetpack, "soc": self.soc}


def parse_nv_tegra_release(text: str) -> tuple[str, str | None] | None:
    """First line of /etc/nv_tegra_release -> (L4T version, board), e.g. ("32.7.1", "t210ref")."""
    m = _RELEASE.search(text or "")
    if not m:
        return None
    return f"{m.group(1)}.{m.group(2)}", m.group(3)


def parse_l4t_core_version(text: str) -> str | None:
    """``nvidia-l4t-core`` package version -> L4T version: ``'36.4.3-20250107174145'`` -> ``36.4.3``."""
    text = (text or "").strip().strip("'\"")
    m = re.match(r"(\d+\.\d+(?:\.\d+)?)(?:-|$)", text)
    return m.group(1) if m else None


def parse_device_tree_string(raw: str | bytes) -> list[str]:
    """A NUL-separated device-tree property (``model``, ``compatible``) -> its strings."""
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", "replace")
    return [s.strip() for s in raw.split("\0") if s.strip()]


def parse_meminfo_mb(text: str, key: str = "MemTotal") -> int | None:
    m = re.search(rf"^{key}:\s+(\d+)\s*kB", text or "", re.M)
    return int(m.group(1)) // 1024 if m else None


def match_profile(info: DeviceInfo) -> DeviceProfile | None:
    """The profile of a detected device: module part number first, then the model string;
    between sizes of one module the closest memory wins; Orin Nano with JetPack 6.2+ or a
    ``super`` device tree is ``orin-nano-super``."""
    candidates: list[DeviceProfile] = []
    for pnum in info.p_numbers:
        candidates += [p for p in PROFILES.values() if pnum in p.p_numbers and p not in candidates]
    if not candidates and info.model:
        low = info.model.lower()
        for key, names in _MODEL_KEYWORDS:
            if key in low:
                candidates = [PROFILES[n] for n in names]
                break
    if not candidates:
        return None
    if any(p.name == "orin-nano-super" for p in candidates):
        l4t = version_tuple(info.l4t or "0")
        is_super = info.super_mode or (36, 4, 3) <= l4t < (38,)  # JetPack 6.2 (L4T 36.4.3) brought MAXN_SUPER
        candidates = [p for p in candidates if (p.name == "orin-nano-super") == is_super] or candidates
    if len(candidates) > 1 and info.mem_total_mb:
        candidates.sort(key=lambda p: abs(p.memory_mb - info.mem_total_mb))
    return candidates[0]


def _read(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except OSError:
        return None


def l4t_core_package_version() -> str | None:
    """``dpkg-query``'s version of nvidia-l4t-core, or None where dpkg or the package is absent."""
    try:
        r = subprocess.run(["dpkg-query", "--showformat=${Version}", "--show", "nvidia-l4t-core"],
                           capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_l4t_core_version(r.stdout) if r.returncode == 0 else None


def detect_local(root: str | Path = "/") -> DeviceInfo:
    """Read this machine's Jetson identity (``root`` lets a test point at a prepared tree)."""
    root = Path(root)
    info = DeviceInfo()
    raw = _read(root / "etc/nv_tegra_release")
    parsed = parse_nv_tegra_release(raw.decode("utf-8", "replace")) if raw else None
    if parsed:
        info.l4t, info.board = parsed
    elif str(root) == "/":
        info.l4t = l4t_core_package_version()
    for name in ("proc/device-tree/model", "sys/firmware/devicetree/base/model"):
        raw = _read(root / name)
        if raw:
            info.model = " ".join(parse_device_tree_string(raw))
            break
    raw = _read(root / "proc/device-tree/compatible")
    if raw:
        info.compatible = parse_device_tree_string(raw)
    raw = _read(root / "proc/meminfo")
    if raw:
        text = raw.decode("utf-8", "replace")
        info.mem_total_mb = parse_meminfo_mb(text)
        info.mem_available_mb = parse_meminfo_mb(text, "MemAvailable")
    return info


PROBE_KEYS = ("nv_tegra_release", "l4t_core", "model", "compatible", "meminfo_total_kb", "meminfo_available_kb",
              "disk_free_kb", "arch", "python", "tensorrt", "trtexec", "systemd", "user", "uid", "dir")


def parse_probe(text: str) -> DeviceInfo:
    """The ``key=value`` lines of the remote probe script (``edgeirst.jetson.remote``) -> DeviceInfo."""
    kv: dict[str, str] = {}
    for line in (text or "").splitlines():
        key, sep, value = line.partition("=")
        if sep and key in PROBE_KEYS:
            kv[key] = value.strip()
    info = DeviceInfo()
    parsed = parse_nv_tegra_release(kv.get("nv_tegra_release", ""))
    if parsed:
        info.l4t, info.board = parsed
    else:
        info.l4t = parse_l4t_core_version(kv.get("l4t_core", ""))
    info.model = kv.get("model") or None
    info.compatible = [s for s in kv.get("compatible", "").split("|") if s]
    for key, attr in (("meminfo_total_kb", "mem_total_mb"), ("meminfo_available_kb", "mem_available_mb"),
                      ("disk_free_kb", "disk_free_mb")):
        if kv.get(key, "").isdigit():
            setattr(info, attr, int(kv[key]) // 1024)
    info.arch = kv.get("arch") or None
    info.python = kv.get("python") or None
    info.tensorrt = kv.get("tensorrt") or None
    info.trtexec = kv.get("trtexec") or None
    info.systemd = kv.get("systemd") == "yes" if "systemd" in kv else None
    info.user = kv.get("user") or None
    info.uid = int(kv["uid"]) if kv.get("uid", "").isdigit() else None
    info.directory = kv.get("dir") or None
    return info


def python_ok(version: str | None, minimum: tuple[int, int] = DEVICE_PYTHON) -> bool:
    return bool(version) and version_tuple(version)[:2] >= minimum
