"""``edgeirst.toml``: what a deployed bundle runs, as typed dataclasses and their TOML form.

``deploy`` writes it; the launcher on the device reads it. A field engineer may edit it and
restart the service. Reading uses ``tomllib`` (Python >= 3.11) or ``tomli`` when present, else a
small reader for the subset this module writes (JetPack 6 ships Python 3.10, without tomllib):
tables, ``key = value`` with strings, numbers, booleans and one-line arrays, and comments.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgeirst.errors import EdgeirstError

PRECISIONS = ("fp32", "fp16", "int8")
BUILDERS = ("auto", "edgeirst", "trtexec")


@dataclass
class ModelSettings:
    onnx: str = "model.onnx"  # float model: FP32/FP16 engines, INT8 with the cache (TensorRT < 8.6), onnxruntime
    onnx_int8: str = ""  # QDQ INT8 model for TensorRT >= 8.6 ("" = none)
    calibration_cache: str = ""  # TensorRT 8.x INT8 calibration cache for `onnx` ("" = none)
    precision: str = "fp16"  # fp32 | fp16 | int8
    threshold: float = 0.5
    input_size: list[int] = field(default_factory=lambda: [1088, 1920])  # largest frame (H, W) the engine takes
    fixed_size: bool = False  # scale frames to the model's input size instead of padding


@dataclass
class SourceSettings:
    uri: str = "csi://0"


@dataclass
class TrackerSettings:
    enabled: bool = True
    confirm: str = "3/5"
    gate: float = 8.0


@dataclass
class SinkSettings:
    jsonl: str = "-"  # file or "-" (stdout: the service journal)
    save: str = ""  # annotated video file ("" = none)
    serve: str = ""  # MJPEG preview HOST:PORT ("" = none)


@dataclass
class EngineSettings:
    builder: str = "auto"  # auto (edgeirst's builder) | edgeirst | trtexec
    workspace_mb: int = 1024
    dla_core: int = -1  # -1 = GPU only
    cache_dir: str = ""  # "" = ~/.cache/edgeirst/engines (per TensorRT version and GPU)


@dataclass
class PowerSettings:
    mode: str = ""  # nvpmodel mode NAME, e.g. MAXN_SUPER ("" = leave as is; needs root)
    jetson_clocks: bool = False  # lock clocks at the mode's maximum (needs root)
    tegrastats: bool = True  # sample power while running; report fps per watt at the end


@dataclass
class DeviceSettings:
    profile: str = ""


@dataclass
class LaunchConfig:
    """The whole file, one dataclass per TOML table."""

    model: ModelSettings = field(default_factory=ModelSettings)
    source: SourceSettings = field(default_factory=SourceSettings)
    tracker: TrackerSettings = field(default_factory=TrackerSettings)
    sinks: SinkSettings = field(default_factory=SinkSettings)
    engine: EngineSettings = field(default_factory=EngineSettings)
    power: PowerSettings = field(default_factory=PowerSettings)
    device: DeviceSettings = field(default_factory=DeviceSettings)

    def validate(self) -> "LaunchConfig":
        if self.model.precision not in PRECISIONS:
            raise EdgeirstError(f"[model] precision must be one of {', '.join(PRECISIONS)}, got {self.model.precision!r}")
        if self.engine.builder not in BUILDERS:
            raise EdgeirstError(f"[engine] builder must be one of {', '.join(BUILDERS)}, got {self.engine.builder!r}")
        size = self.model.input_size
        if len(size) != 2 or any(not isinstance(v, int) or v < 1 for v in size):
            raise EdgeirstError(f"[model] input_size must be [height, width] in pixels, got {size!r}")
        if not 0.0 <= self.model.threshold <= 1.0:
            raise EdgeirstError(f"[model] threshold must be in [0, 1], got {self.model.threshold}")
        return self


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return json.dumps(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {type(v).__name__} to TOML")


def to_toml(cfg: LaunchConfig, header: str = "") -> str:
    """The TOML text of ``cfg`` (deterministic: same config, same bytes)."""
    lines = [f"# {h}" if h else "#" for h in header.splitlines()]
    for section in dataclasses.fields(cfg):
        lines += ["", f"[{section.name}]"]
        for f in dataclasses.fields(getattr(cfg, section.name)):
            lines.append(f"{f.name} = {_value(getattr(getattr(cfg, section.name), f.name))}")
    return "\n".join(lines).lstrip("\n") + "\n"


# -- reading ----------------------------------------------------------------------------------
_KEY = re.compile(r"^([A-Za-z0-9_-]+)\s*=\s*(.*)$")


def _scalar(text: str, where: str) -> Any:
    text = text.strip()
    if text.startswith('"'):
        try:
            return json.loads(text)
        except json.JSONDecodeError:
            raise EdgeirstError(f"{where}: bad string {text}") from None
    if text.startswith("'") and text.endswith("'") and len(text) >= 2:
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text.replace("_", ""))
    except ValueError:
        pass
    try:
        return float(text.replace("_", ""))
    except ValueError:
        raise EdgeirstError(f"{where}: cannot read value {text!r} (this reader takes strings, numbers, booleans "
                            "and one-line arrays)") from None


def _unquoted(text: str):
    """(index, character) of the characters of ``text`` outside TOML strings."""
    quote, escaped = None, False
    for i, ch in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif ch == "\\" and quote == '"':
                escaped = True
            elif ch == quote:
                quote = None
        elif ch in "\"'":
            quote = ch
        else:
            yield i, ch


def _split_value(rest: str) -> str:
    """The value part of ``rest`` without a trailing comment (``#`` outside strings)."""
    end = next((i for i, ch in _unquoted(rest) if ch == "#"), len(rest))
    return rest[:end].strip()


def _items(body: str) -> list[str]:
    """The items of a one-line array's body, split at commas outside strings."""
    cuts = [i for i, ch in _unquoted(body) if ch == ","] + [len(body)]
    parts, start = [], 0
    for cut in cuts:
        parts.append(body[start:cut])
        start = cut + 1
    return [p for p in parts if p.strip()]


def parse_toml_subset(text: str, name: str = "edgeirst.toml") -> dict:
    """The TOML subset ``to_toml`` writes -> a dict of tables."""
    data: dict[str, dict] = {}
    table: dict | None = None
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{name} line {n}"
        m = re.fullmatch(r"\[([A-Za-z0-9_-]+)\]\s*(#.*)?", line)
        if m:
            table = data.setdefault(m.group(1), {})
            continue
        m = _KEY.match(line)
        if not m or table is None:
            raise EdgeirstError(f"{where}: expected [table] or key = value inside a table, got {line!r}")
        value = _split_value(m.group(2))
        if value.startswith("["):
            if not value.endswith("]"):
                raise EdgeirstError(f"{where}: arrays must close on the same line")
            table[m.group(1)] = [_scalar(i, where) for i in _items(value[1:-1])]
        else:
            table[m.group(1)] = _scalar(value, where)
    return data


def loads(text: str, name: str = "edgeirst.toml") -> dict:
    try:
        import tomllib  # Python >= 3.11
    except ImportError:
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            return parse_toml_subset(text, name)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise EdgeirstError(f"{name} is not valid TOML: {e}") from None


def from_dict(data: dict, name: str = "edgeirst.toml") -> LaunchConfig:
    """Tables -> LaunchConfig; unknown tables or keys and wrong types are user errors."""
    cfg = LaunchConfig()
    sections = {f.name for f in dataclasses.fields(cfg)}
    for key, table in data.items():
        if key not in sections:
            raise EdgeirstError(f"{name}: unknown table [{key}]; known: {', '.join(sorted(sections))}")
        if not isinstance(table, dict):
            raise EdgeirstError(f"{name}: {key} must be a table")
        obj = getattr(cfg, key)
        fields = {f.name: f for f in dataclasses.fields(obj)}
        for k, v in table.items():
            if k not in fields:
                raise EdgeirstError(f"{name}: unknown key {k!r} in [{key}]; known: {', '.join(fields)}")
            default = getattr(obj, k)
            if isinstance(default, bool) != isinstance(v, bool) or (
                    isinstance(default, float) and not isinstance(v, (int, float))) or (
                    isinstance(default, (str, list)) and not isinstance(v, type(default))) or (
                    isinstance(default, int) and not isinstance(default, bool) and not isinstance(v, int)):
                raise EdgeirstError(f"{name}: [{key}] {k} must be a {type(default).__name__}, got {v!r}")
            setattr(obj, k, float(v) if isinstance(default, float) else v)
    return cfg.validate()


def load_config(path: str | Path) -> LaunchConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise EdgeirstError(f"cannot read {path}: {e.strerror}") from None
    return from_dict(loads(text, str(path)), str(path))
