"""One card per shipped model, from the metadata it carries: what it is, the data and split
lists that trained it, the commands and wall time, the threshold it ships with and the metrics
measured when it was shipped (on the validation named beside them), and its INT8 form.

    python tools/model_cards.py [--out docs/models.md]

A maintainer's tool (reads the .pt checkpoints, so it needs the train extra). Cross-scene
figures for the models trained for it are in benchmarks/results/xscene.md (measured by
benchmarks/xscene.py, not stored in the models).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from edgeirst.checkpoint import read_checkpoint
from edgeirst.errors import EdgeirstError
from edgeirst.io import os_error, write_text
from edgeirst.meta import ModelMeta
from edgeirst.weights import WEIGHTS_DIR, aliases, shipped_names

REPO = Path(__file__).resolve().parents[1]
METRICS = (("iou", "IoU", "{:.4f}"), ("niou", "nIoU", "{:.4f}"), ("pd", "Pd", "{:.3f}"), ("fa", "Fa 1e-6", "{:.1f}"),
           ("ap50", "AP50", "{:.3f}"), ("fa_per_frame", "FA/frame", "{:.3f}"), ("images", "images", "{}"),
           ("targets", "targets", "{}"))


def _listed(value) -> str:
    """A dataset or split (or a list of them), named without the folders of the machine that trained it."""
    if value is None:
        return "-"
    return " + ".join(f"`{Path(v).name}`" for v in (value if isinstance(value, list) else [value]))


def card(name: str, names_for: dict[str, list[str]]) -> str:
    meta = ModelMeta.from_dict(read_checkpoint(WEIGHTS_DIR / f"{name}.pt")["meta"])
    train, metrics = meta.train or {}, meta.metrics or {}
    also = names_for.get(name, [])
    lines = [f"## `{name}`" + (f" (also `{'`, `'.join(also)}`)" if also else ""), ""]
    if train.get("note"):
        lines += [train["note"], ""]
    kwargs = ", ".join(f"{k}={v}" for k, v in meta.kwargs.items())
    lines += [f"- model: `{meta.name}`" + (f" ({kwargs})" if kwargs else "") + f", tasks {', '.join(meta.tasks)}, "
              f"threshold {meta.threshold:g}" + (" on a calibrated confidence" if meta.decode_args.get("confidence")
                                                 else ""),
              f"- trained on: {_listed(train.get('data'))}, split {_listed(train.get('split'))}; "
              f"selected on {_listed(train.get('val_split'))}",
              f"- schedule: {train.get('epochs', '-')} of {train.get('planned_epochs', '-')} epochs, batch "
              f"{train.get('batch', '-')}, crops {train.get('size', '-')}, {train.get('optimizer', '-')} lr "
              f"{train.get('lr', '-')}; {train.get('wall_s', 0) / 60:.0f} min of the last run on "
              f"{train.get('hardware', '-')}"]
    if train.get("pruning"):
        pr = train["pruning"]
        lines.append(f"- pruned from `{pr.get('pruned_from')}` ({pr.get('importance')} importance): "
                     f"{pr['before']['params'] / 1e6:.2f}M -> {pr['after']['params'] / 1e6:.2f}M params, "
                     f"{pr['before']['gmacs']:.2f} -> {pr['after']['gmacs']:.2f} GMACs at {pr.get('count_size')}, "
                     f"{pr.get('finetune_epochs')} epochs of fine-tuning")
    commands = train.get("command") or []
    if commands:
        lines += ["- commands, in order:", "", "  ```text", *(f"  {c}" for c in
                                                          (commands if isinstance(commands, list) else [commands])),
                  "  ```"]
    int8 = WEIGHTS_DIR / f"{name}-int8.onnx"
    lines.append(f"- INT8 form: `{int8.stem}`" if int8.is_file() else "- INT8 form: none shipped")
    if metrics:
        split = metrics.get("sources") or _listed(metrics.get("split"))
        lines += ["", f"Measured when shipped, on {split}" + (" (images it was trained on)"
                                                              if metrics.get("in_training") else "") + ":", "",
                  "| " + " | ".join(h for k, h, _ in METRICS if k in metrics) + " |",
                  "|" + "---|" * sum(k in metrics for k, _, _ in METRICS),
                  "| " + " | ".join(f.format(metrics[k] * (1e6 if k == "fa" else 1)) for k, _, f in METRICS
                                    if k in metrics) + " |"]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "docs" / "models.md"))
    args = ap.parse_args()
    names_for: dict[str, list[str]] = {}
    for alias, target in aliases().items():
        names_for.setdefault(target, []).append(alias)
    shipped = [n for n in shipped_names(with_aliases=False) if (WEIGHTS_DIR / f"{n}.pt").is_file()]
    text = "# Shipped models\n\nWritten by `python tools/model_cards.py` from each model's own metadata.\n\n" + \
        "\n".join(card(n, names_for) for n in shipped)
    write_text(args.out, text)
    print(f"wrote {args.out} ({len(shipped)} models)")


if __name__ == "__main__":
    try:
        main()
    except EdgeirstError as e:  # a checkpoint that cannot be read: one line, as the CLI says it
        raise SystemExit(f"error: {e}") from None
    except OSError as e:  # an unwritable --out, a full disk: one line naming the path
        raise SystemExit(f"error: {os_error(e, action='write')}") from None
