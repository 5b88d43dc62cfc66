"""``edgeirst.toml``: what a deployed bundle runs, as the types the runtime itself takes.

``deploy`` writes it (``LaunchConfig.tables`` through tomli-w, in ``bundle``); the launcher on the
device reads it (``load_config``). A field engineer may edit it and restart the service: it is
checked for validity when read (by ``deploy verify``, ``install.sh`` and the launcher), not by hash.

| table | type (defaults live there) |
|---|---|
| ``[model]`` | ``ModelSettings``: the bundle's model files, precision, largest input (H, W) |
| ``[source]`` | ``SourceSettings``: the stream |
| ``[run]``, ``[tracker]`` | ``edgeirst.runtime.pipeline.RunConfig`` and its ``TrackerConfig``, as ``edgeirst run`` builds them |
| ``[sinks]`` | ``edgeirst.runtime.sinks.SinkOptions`` (``jsonl = "-"``: the service journal) |
| ``[engine]`` | ``edgeirst.runtime.engine_build.BuildOptions``: builder, workspace, DLA core, cache folder |
| ``[power]``, ``[device]`` | ``PowerSettings``, ``DeviceSettings`` |

A key left out takes its type's default (for ``threshold``: the model's own). Reading uses
``tomllib`` (Python >= 3.11) or ``tomli`` when present, else a small reader for what deploy
writes (JetPack 5 and 6 ship Python 3.8 and 3.10, without tomllib): tables, ``key = value`` with
strings, numbers, booleans and one-line arrays, and comments. Python 3.8-clean.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from edgeirst.errors import EdgeirstError
from edgeirst.runtime.engine_build import DEFAULT_MAX_HW, BuildOptions
from edgeirst.runtime.pipeline import RunConfig
from edgeirst.runtime.sinks import SinkOptions

PRECISIONS = ("fp32", "fp16", "int8")


@dataclass
class ModelSettings:
    onnx: str = "model.onnx"  # float model: FP32/FP16 engines, INT8 with the cache (TensorRT < 8.6), onnxruntime
    onnx_int8: str = ""  # QDQ INT8 model for TensorRT >= 8.6 ("" = none)
    calibration_cache: str = ""  # TensorRT 8.x INT8 calibration cache for `onnx` ("" = none)
    precision: str = "fp16"  # fp32 | fp16 | int8
    input_size: list = field(default_factory=lambda: list(DEFAULT_MAX_HW))  # largest frame (H, W) the engine takes


@dataclass
class SourceSettings:
    uri: str = "csi://0"


@dataclass
class PowerSettings:
    mode: str = ""  # nvpmodel mode NAME, e.g. MAXN_SUPER ("" = leave as is; needs root)
    jetson_clocks: bool = False  # lock clocks at the mode's maximum (needs root)
    tegrastats: bool = True  # sample power while running; report fps per watt at the end


@dataclass
class DeviceSettings:
    profile: str = ""


def _journal() -> SinkOptions:
    return SinkOptions(jsonl="-")


@dataclass
class LaunchConfig:
    """The whole file: one attribute per TOML table (``[tracker]`` is ``run.tracker``)."""

    model: ModelSettings = field(default_factory=ModelSettings)
    source: SourceSettings = field(default_factory=SourceSettings)
    run: RunConfig = field(default_factory=RunConfig)
    sinks: SinkOptions = field(default_factory=_journal)
    engine: BuildOptions = field(default_factory=BuildOptions)
    power: PowerSettings = field(default_factory=PowerSettings)
    device: DeviceSettings = field(default_factory=DeviceSettings)

    def validate(self) -> "LaunchConfig":
        if self.model.precision not in PRECISIONS:
            raise EdgeirstError(f"[model] precision must be one of {', '.join(PRECISIONS)}, got {self.model.precision!r}")
        size = self.model.input_size
        if len(size) != 2 or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in size):
            raise EdgeirstError(f"[model] input_size must be [height, width] in pixels, got {size!r}")
        return self

    def tables(self) -> Dict[str, dict]:
        """The TOML tables (keys whose value is None are left out: they take their default)."""
        out = {}
        for table, (path, keys) in TABLES.items():
            obj = _get(self, path)
            names = keys or [f.name for f in dataclasses.fields(obj)]
            values = {k: getattr(obj, k) for k in names}
            out[table] = {k: list(v) if isinstance(v, tuple) else v for k, v in values.items() if v is not None}
        return out


# TOML table -> (attribute path in LaunchConfig, the keys it holds; None = every field)
TABLES: Dict[str, Tuple[str, Optional[Tuple[str, ...]]]] = {
    "model": ("model", None),
    "source": ("source", None),
    "run": ("run", ("threshold", "track", "fixed_size", "agc")),
    "tracker": ("run.tracker", ("m", "n", "gate", "max_missed", "method")),
    "sinks": ("sinks", ("jsonl", "save", "serve")),
    "engine": ("engine", ("builder", "workspace_mb", "dla_core", "cache_dir")),
    "power": ("power", None),
    "device": ("device", None),
}
# keys whose default is None: the type a value must have
OPTIONAL_TYPES = {("run", "threshold"): float, ("run", "fixed_size"): bool, ("run", "agc"): list,
                  ("sinks", "jsonl"): str, ("sinks", "save"): str, ("sinks", "serve"): str,
                  ("engine", "dla_core"): int, ("engine", "cache_dir"): str}


def _get(cfg: Any, path: str) -> Any:
    for part in path.split("."):
        cfg = getattr(cfg, part)
    return cfg


def _set(cfg: Any, path: str, value: Any) -> Any:
    """A copy of ``cfg`` with the object at ``path`` replaced (each level rebuilt, so its checks run)."""
    head, _, rest = path.partition(".")
    return dataclasses.replace(cfg, **{head: _set(getattr(cfg, head), rest, value) if rest else value})


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
    """The TOML deploy writes -> a dict of tables (arrays may span lines, as tomli-w writes them)."""
    data: dict[str, dict] = {}
    table: dict | None = None
    lines = iter(enumerate(text.splitlines(), 1))
    for n, raw in lines:
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
            while not value.endswith("]"):
                more = next(lines, None)
                if more is None:
                    raise EdgeirstError(f"{where}: the array is not closed")
                value += " " + _split_value(more[1].strip())
            table[m.group(1)] = [_scalar(i, where) for i in _items(value[1:-1])]
        else:
            table[m.group(1)] = _scalar(value, where)
    return data


def loads(text: str, name: str = "edgeirst.toml") -> dict:
    try:
        import tomllib  # novermin (Python >= 3.11; the except below reads 3.8-3.10)
    except ImportError:
        try:
            import tomli as tomllib  # type: ignore[no-redef]
        except ImportError:
            return parse_toml_subset(text, name)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise EdgeirstError(f"{name} is not valid TOML: {e}") from None


def _typed(value: Any, want: type, optional: bool, where: str) -> Any:
    """``value`` as ``want`` (an int is a float; "" is None for an optional string), or a one-line error."""
    if want is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if optional and want is str and value == "":
        return None
    if isinstance(value, bool) != (want is bool) or not isinstance(value, want):
        raise EdgeirstError(f"{where} must be a {want.__name__}, got {value!r}")
    return value


def from_dict(data: dict, name: str = "edgeirst.toml") -> LaunchConfig:
    """Tables -> LaunchConfig; unknown tables or keys, wrong types and values each type's own
    checks refuse are user errors, in one line naming the file."""
    cfg = LaunchConfig()
    for table, values in data.items():
        if table not in TABLES:
            raise EdgeirstError(f"{name}: unknown table [{table}]; known: {', '.join(TABLES)}")
        if not isinstance(values, dict):
            raise EdgeirstError(f"{name}: {table} must be a table")
        path, keys = TABLES[table]
        obj = _get(cfg, path)
        known = {f.name: f for f in dataclasses.fields(obj)}
        allowed = keys or tuple(known)
        changes = {}
        for k, v in values.items():
            if k not in allowed:
                raise EdgeirstError(f"{name}: unknown key {k!r} in [{table}]; known: {', '.join(allowed)}")
            optional = (table, k) in OPTIONAL_TYPES
            want = OPTIONAL_TYPES[(table, k)] if optional else type(getattr(type(obj)(), k))
            changes[k] = _typed(v, want, optional, f"{name}: [{table}] {k}")
        try:
            cfg = _set(cfg, path, dataclasses.replace(obj, **changes))
        except EdgeirstError as e:
            raise EdgeirstError(f"{name}: [{table}] {e}") from None
    try:
        return cfg.validate()
    except EdgeirstError as e:
        raise EdgeirstError(f"{name}: {e}") from None


def load_config(path: str | Path) -> LaunchConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise EdgeirstError(f"cannot read {path}: {e.strerror}") from None
    return from_dict(loads(text, str(path)), str(path))
