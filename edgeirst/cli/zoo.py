"""``edgeirst zoo``: every registered model with its parameters and multiply-adds, beside the
figures its paper (or official code) reports.

"GFLOPs" here means multiply-adds (GMACs), the way the papers count, measured with torch's
``FlopCounterMode`` (``edgeirst.models.complexity.count_macs``) on one 1 x C x size x size input.
C defaults to 3, as the papers count; infrared models run with 1 (``--in-chans 1``).

Counting builds every model (the 29M- and 45M-parameter ones included) and takes tens of seconds,
so the counts at ``FACTS_SIZES`` are facts of the registry recorded once in
``edgeirst/models/zoo_facts.json`` (``python tools/zoo_facts.py`` rewrites it; a slow test
recounts it). ``edgeirst zoo`` at those sizes answers from the file, without torch (a core
install has none); any other size or channel count is counted, which needs torch.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from importlib import resources
from typing import Any

import click

from edgeirst.errors import EdgeirstError
from edgeirst.progress import progress_bar
from edgeirst.runtime.backends.onnxruntime import session_hints, session_notes
from edgeirst.runtime.engine_build import read_onnx_meta
from edgeirst.weights import aliases, shipped_model, shipped_names

GFLOPS_MEANS = "multiply-adds (GMACs), as the papers count"
FACTS_SIZES = ((320, 3), (256, 1))  # (side, input channels): the papers' count, and our infrared input
FACTS_FILE = ("models", "zoo_facts.json")  # inside the edgeirst package


def count_facts(name: str, sizes: tuple[tuple[int, int], ...] = FACTS_SIZES) -> dict[str, Any]:
    """Build ``name`` at full width and count what the zoo shows: tasks, outputs, size divisor,
    paper figures, params per input-channel count and multiply-adds per ``"{side}x{channels}"``."""
    from edgeirst.models import create_model, model_entry
    from edgeirst.models.complexity import count_macs, count_params

    entry = model_entry(name)
    models = {c: create_model(name, in_chans=c) for c in sorted({c for _, c in sizes})}
    spec = next(iter(models.values())).spec
    for size, _ in sizes:
        if size % spec.size_divisor:
            raise EdgeirstError(f"--size {size} is not a multiple of {spec.size_divisor}, which {name} needs; "
                                f"try {-(-size // spec.size_divisor) * spec.size_divisor}")
    return {"tasks": list(spec.tasks), "outputs": list(spec.outputs), "size_divisor": spec.size_divisor,
            "paper": asdict(entry.paper), "params": {str(c): count_params(m) for c, m in models.items()},
            "macs": {f"{s}x{c}": count_macs(models[c], s, c) for s, c in sizes}}  # eval, no_grad, batch 1


def recorded_facts() -> dict[str, dict[str, Any]]:
    """The counts recorded in ``zoo_facts.json``: registry name -> ``count_facts(name)``."""
    path = resources.files("edgeirst").joinpath(*FACTS_FILE)
    return json.loads(path.read_text())["models"]


def describe_model(name: str, size: int = 320, in_chans: int = 3) -> dict[str, Any]:
    """One zoo row: params and GMACs of ``name`` at full width at ``size`` x ``size``, recorded
    or (at other sizes) counted."""
    facts = recorded_facts().get(name)
    if facts is None or f"{size}x{in_chans}" not in facts["macs"]:
        facts = count_facts(name, ((size, in_chans),))
    params, paper = facts["params"][str(in_chans)], facts["paper"]
    return {
        "name": name,
        "tasks": facts["tasks"],
        "outputs": facts["outputs"],
        "params": params,
        "params_m": round(params / 1e6, 3),
        "gflops": round(facts["macs"][f"{size}x{in_chans}"] / 1e9, 3),
        "gflops_means": GFLOPS_MEANS,
        "size": size,
        "in_chans": in_chans,
        "paper_params_m": paper["params_m"],
        "paper_gflops": paper["gflops"],
        "paper_size": paper["size"],
        "paper_source": paper["source"],
    }


def shipped_catalog() -> dict[str, list[dict[str, Any]]]:
    """Zoo name -> the shipped weights of that model (like timm's pretrained tags): shipped
    name, aliases, model arguments, how it was trained and its validation metrics."""

    alias_of: dict[str, list[str]] = {}
    for alias, target in aliases().items():
        alias_of.setdefault(target, []).append(alias)
    catalog: dict[str, list[dict[str, Any]]] = {}
    for name in shipped_names(with_aliases=False):
        path = shipped_model(name)
        meta = read_onnx_meta(path)
        keys = ("iou", "niou", "pd", "fa", "ap50", "ap", "split", "in_training")
        train = meta.train or {}
        catalog.setdefault(meta.name, []).append({
            "name": name, "aliases": sorted(alias_of.get(name, [])), "kwargs": meta.kwargs,
            "onnx_bytes": path.stat().st_size, "precision": meta.quant.get("precision", "fp32"),
            "onnxruntime_session": session_hints(meta) or None,
            "pruned": "pruning" in train, "epochs": train.get("epochs"), "train_split": train.get("split"),
            "val": {k: meta.metrics[k] for k in keys if k in meta.metrics},
            "val_before_trainval": {k: v for k, v in (train.get("val_before_trainval") or {}).items() if k in keys}
            or None})
    return catalog


def describe_zoo(names: list[str] | None = None, size: int = 320, in_chans: int = 3,
                 progress: bool = False) -> list[dict[str, Any]]:
    """Zoo rows for ``names`` (default: every model of the built-in registry, as recorded).
    """

    names = list(names) if names else sorted(recorded_facts())
    bar = progress_bar(names, desc="counting", unit="model", disable=None if progress else True)
    rows = [describe_model(n, size, in_chans) for n in bar]  # first: a size that needs torch fails at once
    catalog = shipped_catalog()
    return [{**row, "shipped": catalog.get(row["name"], [])} for row in rows]


def _fmt(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _shipped_cell(w: dict[str, Any], tasks: list[str]) -> str:
    """``mshnet-w05=default (0.742)``: the shipped name, its aliases, its val IoU (AP50 for a
    detection-only model, whose IoU is not measured), starred when val was in its training data."""
    name = "=".join([w["name"], *w.get("aliases", [])])
    key = "iou" if "segmentation" in tasks else "ap50"
    value = w["val"].get(key)
    star = "*" if w["val"].get("in_training") else ""
    return name if value is None else f"{name} ({value:.3f}{star})"


def format_table(rows: list[dict[str, Any]]) -> str:
    size, in_chans = (rows[0]["size"], rows[0]["in_chans"]) if rows else (0, 0)
    header = ("model", "tasks", "params (M)", f"GFLOPs@{size}", "paper params (M)", "paper GFLOPs", "shipped (val IoU; AP50 if detection only)")
    body = []
    for r in rows:
        paper_g = _fmt(r["paper_gflops"], 2)
        if r["paper_gflops"] is not None:
            paper_g += f"@{r['paper_size']}"
        shipped = ", ".join(_shipped_cell(w, r["tasks"]) for w in r.get("shipped", [])) or "-"
        body.append((r["name"], "+".join(r["tasks"]), f"{r['params_m']:.3f}", f"{r['gflops']:.2f}",
                     _fmt(r["paper_params_m"], 3), paper_g, shipped))
    widths = [max(len(str(c)) for c in col) for col in zip(header, *body)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(line, widths)).rstrip() for line in [header, *body]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines.append("")
    if any(w["val"].get("in_training") for r in rows for w in r.get("shipped", [])):
        lines.append("* trained on train+val after its schedule was fixed on val: its val score is not a held-out score "
                     "(`--json` has the score before)")
    lines += session_notes([(w["name"], w.get("onnxruntime_session")) for r in rows for w in r.get("shipped", [])])
    lines.append(f"GFLOPs = {GFLOPS_MEANS}; ours counted with torch FlopCounterMode on a 1x{in_chans}x{size}x{size} "
                 f"input, paper figures at the size shown, 3-channel input.")
    return "\n".join(lines)


@click.command(name="zoo", help="List the model zoo: tasks, params and GFLOPs (= multiply-adds, GMACs, as the "
                                "papers count) at --size, beside the papers' figures.")
@click.argument("names", nargs=-1)
@click.option("--size", default=320, show_default=True, type=click.IntRange(32, 4096),
              help="Square input side for counting GFLOPs (a multiple of every model's size divisor, e.g. 32). "
                   "320 (3 channels) and 256 (1 channel) are recorded; other sizes are counted, which needs PyTorch.")
@click.option("--in-chans", default=3, show_default=True, type=click.IntRange(1, 16),
              help="Input channels for counting: 3 as the papers count; infrared models run with 1.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list of objects (params is a count, "
                                                      "gflops is multiply-adds in GMACs).")
def command(names: tuple[str, ...], size: int, in_chans: int, as_json: bool) -> None:
    """NAMES: models to list (default: all registered)."""
    rows = describe_zoo(list(names), size, in_chans, progress=not as_json)
    click.echo(json.dumps(rows, indent=2) if as_json else format_table(rows))
