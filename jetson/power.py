"""Thin wrappers over JetPack's power tools: ``nvpmodel`` (power modes) and ``jetson_clocks``.

Mode ids differ between modules and JetPack releases (MAXN_SUPER is id 2 on an Orin Nano and
id 0 on an Orin NX 16GB), so modes are addressed by NAME and resolved through the device's own
``/etc/nvpmodel.conf``. Setting modes and clocks needs root.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from edgeirst.errors import EdgeirstError

NVPMODEL_CONF = Path("/etc/nvpmodel.conf")
_MODEL = re.compile(r"<\s*POWER_MODEL\s+ID\s*=\s*(\d+)\s+NAME\s*=\s*([^\s>]+)\s*>")
_DEFAULT = re.compile(r"<\s*PM_CONFIG\s+DEFAULT\s*=\s*(\d+)\s*>")


@dataclass(frozen=True)
class PowerMode:
    id: int
    name: str


def parse_nvpmodel_conf(text: str) -> tuple[list[PowerMode], int | None]:
    """``/etc/nvpmodel.conf`` -> (modes in file order, default mode id or None)."""
    modes = [PowerMode(int(i), n) for i, n in _MODEL.findall(text or "")]
    m = _DEFAULT.search(text or "")
    return modes, (int(m.group(1)) if m else None)


def parse_nvpmodel_query(text: str) -> PowerMode | None:
    """``nvpmodel -q`` output (``NV Power Mode: MAXN_SUPER`` then the id on the next line)."""
    m = re.search(r"NV Power Mode:\s*(\S+)\s*\n\s*(\d+)", text or "")
    return PowerMode(int(m.group(2)), m.group(1)) if m else None


def _tool(name: str) -> str:
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin")
    if path is None:
        raise EdgeirstError(f"{name} not found: it ships with JetPack on a Jetson")
    return path


def _run(argv: list[str], timeout: float = 60) -> str:
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise EdgeirstError(f"{' '.join(argv)} did not finish in {timeout:.0f} s") from None
    if r.returncode != 0:
        why = (r.stderr or r.stdout).strip().splitlines()[-1:] or [f"exit status {r.returncode}"]
        hint = " (needs root: run as root or with sudo)" if "root" not in why[0] and _denied(r) else ""
        raise EdgeirstError(f"{' '.join(argv)} failed: {why[0]}{hint}")
    return r.stdout


def _denied(r: subprocess.CompletedProcess) -> bool:
    text = (r.stderr + r.stdout).lower()
    return "permission" in text or "denied" in text or "not permitted" in text


def query_power_mode() -> PowerMode:
    """The active nvpmodel mode."""
    out = _run([_tool("nvpmodel"), "-q"])
    mode = parse_nvpmodel_query(out)
    if mode is None:
        raise EdgeirstError(f"cannot read the power mode from nvpmodel -q: {out.strip()[:200]!r}")
    return mode


def resolve_power_mode(mode: str | int, conf_text: str | None = None) -> PowerMode:
    """A mode name (``MAXN_SUPER``) or id -> the device's PowerMode, from its nvpmodel.conf."""
    if conf_text is None:
        try:
            conf_text = NVPMODEL_CONF.read_text()
        except OSError as e:
            raise EdgeirstError(f"cannot read {NVPMODEL_CONF}: {e.strerror}") from None
    modes, _ = parse_nvpmodel_conf(conf_text)
    for m in modes:
        if str(mode) == str(m.id) or str(mode).upper() == m.name.upper():
            return m
    raise EdgeirstError(f"power mode {mode!r} is not one of this device's modes: "
                        + ", ".join(f"{m.id}={m.name}" for m in modes))


def set_power_mode(mode: str | int, conf_text: str | None = None) -> PowerMode:
    """Switch to ``mode`` (name or id) with ``nvpmodel -m``; some switches need a reboot (nvpmodel says so)."""
    target = resolve_power_mode(mode, conf_text)
    _run([_tool("nvpmodel"), "-m", str(target.id)])
    return target


def jetson_clocks(action: str = "on") -> str:
    """``on``: lock clocks at the mode's maximum; ``show``: print them; ``store``/``restore``:
    save and restore the current settings (``jetson_clocks --store/--restore``)."""
    flags = {"on": [], "show": ["--show"], "store": ["--store"], "restore": ["--restore"]}
    if action not in flags:
        raise EdgeirstError(f"jetson_clocks action must be one of {', '.join(flags)}, got {action!r}")
    return _run([_tool("jetson_clocks"), *flags[action]])
