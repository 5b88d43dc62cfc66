"""Bench results as files and tables: ``--json`` (a list of row objects), ``--csv``, ``--md``,
and the aligned table on the terminal.

The JSON file is a list of row objects (``Row.to_dict()``); each row carries the machine stamp
(``machine``: CPU, cores, GPUs, library versions, UTC date), so rows from several files and
machines can be concatenated and still say where they came from. CSV rows carry the date and a
one-line machine description; the markdown table ends with the stamp.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from edgeirst.bench.rows import METRIC_KEYS, Row
from edgeirst.errors import EdgeirstError
from edgeirst.io import check_output, protect_inputs, write_bytes
from edgeirst.machine import describe
from edgeirst.runtime.pipeline import STAGES

CSV_FIELDS = ("model", "weights", "backend", "precision", "size", "batch", "mode", "network", "device", "params",
              "gflops", "file_mb", "runs", "latency_ms", "mean_ms", "p90_ms", "p99_ms", "min_ms", "max_ms", "iqr_ms",
              "fps", "mem_mb", "mem_kind", *METRIC_KEYS, "eval_split", "watts", "fps_per_watt",
              *(f"{s}_ms" for s in STAGES), "mtl_ratio", "note", "date", "machine", "file")


def _clean(value: Any) -> Any:
    """JSON-safe: NaN and infinities become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def to_json(rows: Sequence[Row]) -> str:
    """The ``--json`` document: a list of row objects, each with its machine stamp."""
    return json.dumps([_clean(r.to_dict()) for r in rows], indent=1) + "\n"


def csv_record(row: Row) -> dict[str, Any]:
    d = _clean(row.to_dict())
    rec = {k: d.get(k) for k in CSV_FIELDS if k in d}
    for s in STAGES:
        rec[f"{s}_ms"] = (row.stages or {}).get(s, {}).get("median_ms")
    rec["mtl_ratio"] = row.mtl["ratio"] if row.mtl else None
    rec["date"] = (row.machine or {}).get("date")
    rec["machine"] = describe(row.machine) if row.machine else None
    return rec


def to_csv(rows: Sequence[Row]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=list(CSV_FIELDS), lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if v is None else v) for k, v in csv_record(r).items()})
    return buf.getvalue()


# -- tables ------------------------------------------------------------------------------------
def _ms(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def _num(v: float | None, fmt: str) -> str:
    return "-" if v is None or (isinstance(v, float) and not math.isfinite(v)) else format(v, fmt)


def table_rows(rows: Sequence[Row]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the summary table (metric and power columns only when some row has them)."""
    metrics = any(getattr(r, k) is not None for r in rows for k in METRIC_KEYS)
    power = any(r.watts is not None for r in rows)
    sizes = len({r.size for r in rows}) > 1 or len({r.batch for r in rows}) > 1
    header = ["model", "weights", "backend", "precision"] + (["size", "batch"] if sizes else []) + \
        ["params M", "GMACs", "file MB", "median ms", "p90", "p99", "IQR", "min", "FPS", "mem MB"]
    if metrics:
        header += ["IoU", "nIoU", "Pd", "Fa 1e-6", "AP50", "FA/frame"]
    if power:
        header += ["W", "FPS/W"]
    header.append("note")
    body = []
    for r in rows:
        model = r.model + (" (pipeline)" if r.mode == "pipeline" else "")
        cells = [model, r.weights, r.backend, r.precision] + ([str(r.size), str(r.batch)] if sizes else []) + [
            _num(r.params / 1e6 if r.params else None, ".3f"), _num(r.gflops, ".2f"), _num(r.file_mb, ".1f"),
            _ms(r.latency_ms), _ms(r.p90_ms), _ms(r.p99_ms), _ms(r.iqr_ms), _ms(r.min_ms), _num(r.fps, ".1f"),
            _num(r.mem_mb, ".0f")]
        if metrics:
            cells += [_num(r.iou, ".4f"), _num(r.niou, ".4f"), _num(r.pd, ".4f"),
                      _num(r.fa * 1e6 if r.fa is not None else None, ".1f"), _num(r.ap50, ".4f"),
                      _num(r.fa_per_frame, ".3f")]
        if power:
            cells += [_num(r.watts, ".2f"), _num(r.fps_per_watt, ".2f")]
        cells.append(r.note or "")
        body.append(cells)
    return header, body


def _stage_table(rows: Sequence[Row]) -> tuple[list[str], list[list[str]]] | None:
    piped = [r for r in rows if r.mode == "pipeline" and r.stages]
    if not piped:
        return None
    header = ["model", "backend", "precision", "frames", "FPS"] + [f"{s} ms" for s in STAGES]
    body = [[r.model, r.backend, r.precision, str(r.runs), _num(r.fps, ".1f")]
            + [_ms((r.stages.get(s) or {}).get("median_ms")) for s in STAGES] for r in piped]
    return header, body


def _align(header: list[str], body: list[list[str]]) -> str:
    widths = [max(len(c) for c in col) for col in zip(header, *body)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() for line in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _markdown(header: list[str], body: list[list[str]]) -> str:
    esc = lambda c: c.replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(esc(c) for c in cells) + " |" for cells in body]
    return "\n".join(lines)


def footer(rows: Sequence[Row], settings: str, extra: Sequence[str] = ()) -> list[str]:
    stamp = next((r.machine for r in rows if r.machine), None)
    lines = [settings] + list(extra)
    if any(r.weights == "random" for r in rows):
        lines.append("weights random = untrained registry variant: speed only, no accuracy.")
    lines.append("GMACs = multiply-adds at size x size, 1 input channel; latency over the timed runs after warm-up, "
                 "rows interleaved in rounds; mem = rise of peak RSS (cuda: torch allocator) while loading and "
                 "warming up.")
    if stamp:
        lines.append(f"machine: {describe(stamp)}")
    return lines


def format_table(rows: Sequence[Row], settings: str = "", extra: Sequence[str] = ()) -> str:
    """The aligned terminal table, the pipeline stage table when there is one, and the footer."""
    parts = [_align(*table_rows(rows))]
    stages = _stage_table(rows)
    if stages:
        parts += ["", "pipeline stages (median ms per frame):", _align(*stages)]
    parts += [""] + footer(rows, settings, extra)
    return "\n".join(parts)


def to_markdown(rows: Sequence[Row], settings: str = "", extra: Sequence[str] = ()) -> str:
    parts = [_markdown(*table_rows(rows))]
    stages = _stage_table(rows)
    if stages:
        parts += ["", "Pipeline stages (median ms per frame):", "", _markdown(*stages)]
    parts += [""] + [line + "  " for line in footer(rows, settings, extra)]
    return "\n".join(parts).rstrip() + "\n"


# -- files -------------------------------------------------------------------------------------
def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write a report (text or PNG bytes) through ``edgeirst.io`` (atomic, devices written into)."""
    return write_bytes(path, data.encode() if isinstance(data, str) else data)


def _writable(folder: Path) -> bool:
    """A file can be created in ``folder`` (tried, not guessed from permission bits)."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".edgeirst-probe-"):
            return True
    except OSError:
        return False


def check_outputs(outputs: dict[str, str | Path | None], inputs: Sequence[str | Path] = ()) -> dict[str, Path]:
    """Validate output paths before anything runs: a writable folder, not a folder itself, not
    the same file twice, not one of the command's inputs. Returns ``{option: Path}``."""
    protect_inputs(*inputs)  # and at write time too (edgeirst.io)
    out: dict[str, Path] = {}
    seen: dict[Path, str] = {}
    resolved_inputs = {Path(p).expanduser().resolve(): p for p in inputs if p}
    for option, value in outputs.items():
        if not value:
            continue
        path = Path(value).expanduser()
        parent = path.parent if str(path.parent) else Path(".")
        if path.is_dir():
            raise EdgeirstError(f"{option} {path} is a folder; give a file name")
        if not parent.is_dir():
            raise EdgeirstError(f"{option} {path}: folder {parent} does not exist")
        if not _writable(parent) or (path.exists() and not os.access(path, os.W_OK)):
            raise EdgeirstError(f"{option} {path} is not writable")
        check_output(path, kind=None)  # not a link, socket or other special file (a device or fifo is written into)
        real = path.resolve()
        if real in seen:
            raise EdgeirstError(f"{option} and {seen[real]} both write {path}; give different files")
        for inp in resolved_inputs:
            if real == inp or (path.exists() and inp.exists() and os.path.samefile(path, inp)):
                raise EdgeirstError(f"{option} {path} is one of the bench's inputs; give another file")
        seen[real] = option
        out[option] = path
    return out


__all__ = ["CSV_FIELDS", "check_outputs", "csv_record", "format_table", "table_rows", "to_csv", "to_json",
           "to_markdown", "write_atomic"]
