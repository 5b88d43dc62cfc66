"""One ``tegrastats`` parser for every Jetson generation, and a sampler for FPS per watt.

tegrastats prints one line per interval; its fields differ by generation and JetPack:

- Nano/TX1 (L4T 32): ``RAM 1923/3964MB (lfb 2x2MB) SWAP ... IRAM 0/252kB(lfb 252kB) CPU [5%@1224,...]
  EMC_FREQ 0%@1600 GR3D_FREQ 0%@76 ... PLL@37C ... POM_5V_IN 1750/1628 POM_5V_GPU 0/0 POM_5V_CPU 366/406``
- TX2 (L4T 32): rails ``VDD_SYS_GPU 153/158 ... VDD_IN 3140/3208``, ``EMC_FREQ 0%`` without a clock;
- AGX Xavier (L4T 32): rails without a VDD_ prefix (``GPU 463/463 CPU 618/618 SOC 2936/2936 ...``);
- Xavier NX / Orin Nano / Orin NX: ``VDD_IN``, ``VDD_CPU_GPU_CV``, ``VDD_SOC``; from JetPack 5 with an
  ``mW`` unit and a leading ``MM-DD-YYYY HH:MM:SS`` time stamp, ``GR3D_FREQ 0%@[114]``;
- AGX Orin: ``VDD_GPU_SOC``, ``VDD_CPU_CV``, ``VIN_SYS_5V0``, ``VDDQ_VDD2_1V8AO`` and unconnected
  ``NC`` channels; ``GR3D_FREQ 0%@[0,0]`` (two GPCs); sensors that are off read ``-256C``.

Rails are ``<name> <current>/<average>`` in milliwatts. The board's power is ``VDD_IN`` (Xavier NX,
Orin Nano/NX, TX2) or ``POM_5V_IN`` (Nano); modules without an input rail (AGX Xavier, AGX Orin)
report the sum of their rails, as jetson-stats does. ``parse_line`` and ``TegrastatsSampler`` are
the API that ``run``, ``bench`` and the deploy launcher use.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import threading
import time
from dataclasses import dataclass, field

from edgeirst.errors import EdgeirstError

INPUT_RAILS = ("VDD_IN", "POM_5V_IN")
SENSOR_OFF_C = -256.0  # tegrastats' value for a thermal zone that is switched off

_STAMP = re.compile(r"^\s*(\d\d-\d\d-\d{4} \d\d:\d\d:\d\d)\s")
_RAM = re.compile(r"\bRAM (\d+)/(\d+)MB(?: \(lfb (\d+)x(\d+)MB\))?")
_SWAP = re.compile(r"\bSWAP (\d+)/(\d+)MB(?: \(cached (\d+)MB\))?")
_CPU = re.compile(r"\bCPU \[([^\]]*)\]")
_EMC = re.compile(r"\bEMC_FREQ (\d+)%(?:@(\d+))?")
_GR3D = re.compile(r"\b(GR3D2?)_FREQ (\d+)%(?:@\[?([\d,]+)\]?)?")
_TEMP = re.compile(r"\b([A-Za-z][\w]*)@(-?\d+(?:\.\d+)?)C\b")
_RAIL = re.compile(r"\b([A-Za-z][A-Za-z0-9_]*) (\d+)(?:mW)?/(\d+)(?:mW)?(?=\s|$)")


@dataclass(frozen=True)
class Rail:
    """A power rail: the current and tegrastats' running average, in milliwatts."""

    current_mw: int
    average_mw: int


@dataclass
class TegrastatsSample:
    """One parsed tegrastats line. Fields a generation does not print stay None / empty."""

    time: str | None = None
    ram_used_mb: int | None = None
    ram_total_mb: int | None = None
    swap_used_mb: int | None = None
    swap_total_mb: int | None = None
    swap_cached_mb: int | None = None
    cpu: list[tuple[int, int | None] | None] = field(default_factory=list)  # (load %, MHz), None = off
    emc_load: int | None = None
    emc_mhz: int | None = None
    gpu_load: int | None = None
    gpu_mhz: list[int] = field(default_factory=list)  # one per GPC on Orin
    temperatures: dict[str, float] = field(default_factory=dict)
    rails: dict[str, Rail] = field(default_factory=dict)

    @property
    def power_source(self) -> str | None:
        """Which reading ``power_mw`` is: an input rail's name, or ``"sum of rails"``."""
        for name in INPUT_RAILS:
            if name in self.rails:
                return name
        return "sum of rails" if self.rails else None

    @property
    def power_mw(self) -> int | None:
        """The board's current power draw in mW (input rail, else the sum of all rails)."""
        source = self.power_source
        if source is None:
            return None
        if source in self.rails:
            return self.rails[source].current_mw
        return sum(r.current_mw for r in self.rails.values())

    @property
    def cpu_load_mean(self) -> float | None:
        loads = [c[0] for c in self.cpu if c is not None]
        return sum(loads) / len(loads) if loads else None

    def to_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "rails"}
        d["rails"] = {k: {"current_mw": r.current_mw, "average_mw": r.average_mw} for k, r in self.rails.items()}
        d["power_mw"], d["power_source"] = self.power_mw, self.power_source
        return d


def _cpu_cores(text: str) -> list[tuple[int, int | None] | None]:
    cores: list[tuple[int, int | None] | None] = []
    for item in text.split(","):
        item = item.strip()
        m = re.fullmatch(r"(\d+)%(?:@(\d+))?", item)
        cores.append((int(m.group(1)), int(m.group(2)) if m.group(2) else None) if m else None)
    return cores


def parse_line(line: str) -> TegrastatsSample | None:
    """One tegrastats line -> a sample; None when the line is not a tegrastats line (no RAM field)."""
    ram = _RAM.search(line)
    if not ram:
        return None
    s = TegrastatsSample(ram_used_mb=int(ram.group(1)), ram_total_mb=int(ram.group(2)))
    m = _STAMP.match(line)
    s.time = m.group(1) if m else None
    m = _SWAP.search(line)
    if m:
        s.swap_used_mb, s.swap_total_mb = int(m.group(1)), int(m.group(2))
        s.swap_cached_mb = int(m.group(3)) if m.group(3) else None
    m = _CPU.search(line)
    if m:
        s.cpu = _cpu_cores(m.group(1))
    m = _EMC.search(line)
    if m:
        s.emc_load, s.emc_mhz = int(m.group(1)), int(m.group(2)) if m.group(2) else None
    for m in _GR3D.finditer(line):
        if m.group(1) == "GR3D":
            s.gpu_load = int(m.group(2))
        s.gpu_mhz += [int(f) for f in (m.group(3) or "").split(",") if f]
    for name, value in _TEMP.findall(line):
        if float(value) != SENSOR_OFF_C:
            s.temperatures[name] = float(value)
    for name, cur, avg in _RAIL.findall(line):
        if name != "NC":  # unconnected INA3221 channels on AGX Orin
            s.rails[name] = Rail(int(cur), int(avg))
    return s


def find_tegrastats() -> str | None:
    """The tegrastats binary (on PATH or JetPack's /usr/bin), or None off a Jetson."""
    return shutil.which("tegrastats") or (shutil.which("tegrastats", path="/usr/bin:/usr/sbin"))


class TegrastatsSampler:
    """Runs ``tegrastats --interval N`` in a subprocess and parses its lines in a thread.

    ``with TegrastatsSampler() as power: ...`` then ``power.mean_watts()``, or ``power.report(fps)``
    for an ``fps per watt`` line. ``command`` is the tegrastats executable (argv list allowed,
    e.g. ``["sudo", "-n", "tegrastats"]``)."""

    def __init__(self, interval_ms: int = 500, command: str | list[str] | None = None, keep: int = 7200) -> None:
        if interval_ms < 1:
            raise EdgeirstError(f"tegrastats interval must be >= 1 ms, got {interval_ms}")
        self.interval_ms = int(interval_ms)
        exe = command or find_tegrastats()
        if exe is None:
            raise EdgeirstError("tegrastats not found: it ships with JetPack on a Jetson (/usr/bin/tegrastats)")
        self.argv = ([exe] if isinstance(exe, str) else list(exe)) + ["--interval", str(self.interval_ms)]
        self.keep = keep
        self._samples: list[tuple[float, TegrastatsSample]] = []
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None
        self.ignored_lines = 0

    def start(self) -> "TegrastatsSampler":
        try:
            self._proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                          bufsize=1)
        except OSError as e:
            raise EdgeirstError(f"cannot start {self.argv[0]}: {e.strerror or e}") from None
        self._thread = threading.Thread(target=self._read, name="tegrastats", daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            sample = parse_line(line)
            with self._lock:
                if sample is None:
                    self.ignored_lines += 1
                    continue
                self._samples.append((time.monotonic(), sample))
                del self._samples[:-self.keep]

    def stop(self) -> None:
        """End tegrastats (terminate, then kill after 5 s) and the reader thread."""
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "TegrastatsSampler":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def samples(self) -> list[TegrastatsSample]:
        with self._lock:
            return [s for _, s in self._samples]

    def mean_watts(self, since: float | None = None) -> float | None:
        """Mean board power in W over the samples (taken after ``time.monotonic()`` = ``since``)."""
        with self._lock:
            mw = [s.power_mw for t, s in self._samples if (since is None or t >= since) and s.power_mw is not None]
        return sum(mw) / len(mw) / 1000.0 if mw else None

    def report(self, fps: float, since: float | None = None) -> str:
        """``"4.83 W mean (VDD_IN, 12 samples): 6.2 fps per W"``, or why there is no number."""
        watts = self.mean_watts(since)
        if watts is None or watts <= 0:
            return "no power reading from tegrastats (no rails in its output)"
        samples = self.samples
        source = samples[-1].power_source if samples else "?"
        return f"{watts:.2f} W mean ({source}, {len(samples)} samples): {fps / watts:.2f} fps per W"
