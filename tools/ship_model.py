"""Ship a trained checkpoint with the package: ``edgeirst/weights/<NAME>.pt`` (weights and
metadata, no optimizer state) and ``<NAME>.onnx`` (through ``edgeirst export``'s own path and
parity check), its val metrics measured now and its training commands recorded in the metadata;
optionally ``<NAME>-int8.onnx`` (``edgeirst quantize``, calibrated on the training split) and an
alias (``default``) in ``aliases.json``.

    python tools/ship_model.py /work/runs/x/best.pt mshnet-w05 --data ../shared/data/sirst \\
        --command "edgeirst train mshnet --width 0.5 ..." [--command ...] [--alias default] [--int8]

A maintainer's tool (it needs the dataset and the train extra); users get the result.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edgeirst.checkpoint import load_checkpoint, save_checkpoint
from edgeirst.data.sirst import describe_sources, open_datasets
from edgeirst.evaluate import evaluate_backend
from edgeirst.export import export_onnx
from edgeirst.errors import EdgeirstError
from edgeirst.io import refuse_input_as_output, write_text
from edgeirst.runtime.backends.torch import TorchBackend
from edgeirst.weights import WEIGHTS_DIR, aliases

METRIC_KEYS = ("iou", "niou", "pd", "fa", "ap50", "ap", "fa_per_frame", "fa_frames", "images", "targets", "threshold")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkpoint")
    ap.add_argument("name", help="shipped name; begins with the model's zoo name")
    ap.add_argument("--data", required=True, action="append", help="dataset folder (repeat: validated as one set)")
    ap.add_argument("--val-split", action="append", help="split per --data (default: val)")
    ap.add_argument("--command", action="append", default=[], help="a command that produced it (repeatable, in order)")
    ap.add_argument("--note", help="one line on how it was trained or selected")
    ap.add_argument("--alias", action="append", default=[])
    ap.add_argument("--threshold", type=float, help="the score threshold the model ships with (default: as trained)")
    ap.add_argument("--honest-val-from", metavar="PT",
                    help="the val split was trained on (trainval): the metrics are still measured and shipped, marked "
                         "in_training, and this earlier checkpoint's val metrics (trained on train only) are recorded "
                         "as train['val_before_trainval']")
    ap.add_argument("--int8", action="store_true", help="also ship <NAME>-int8.onnx (edgeirst quantize, target cpu)")
    ap.add_argument("--max-drop", help="the INT8 accuracy budget, as `edgeirst quantize --max-drop` (default: its own)")
    ap.add_argument("--pruning-record", metavar="PT",
                    help="copy train['pruning'] from this checkpoint: CHECKPOINT is a longer fine-tune of it made by "
                         "a trainer that did not yet carry the record over")
    args = ap.parse_args()

    args.val_split = args.val_split or ["val"]
    refuse_input_as_output(WEIGHTS_DIR / f"{args.name}.pt", args.checkpoint, option="NAME")
    model, meta, _ = load_checkpoint(args.checkpoint)
    if args.threshold is not None:
        meta = meta.replace(threshold=args.threshold)
    if not args.name.startswith(meta.name):
        raise SystemExit(f"error: a shipped name begins with its zoo name {meta.name!r}, got {args.name!r}")
    metrics, _ = evaluate_backend(TorchBackend.from_model(model, meta), open_datasets(args.data, args.val_split),
                                  progress=False)
    names = [Path(d).name for d in args.data]  # dataset names, not this machine's paths
    val = args.val_split[0] if len(args.val_split) == 1 else [Path(v).name for v in args.val_split]
    metrics = {k: metrics[k] for k in METRIC_KEYS if k in metrics} | {"split": val}
    if len(args.data) > 1:
        metrics["sources"] = describe_sources(names, [Path(v).name for v in args.val_split])
    if args.honest_val_from:
        metrics["in_training"] = True
    train = dict(meta.train)
    data = train.get("data", args.data)
    train["data"] = Path(data).name if isinstance(data, str) else [Path(d).name for d in data]
    for key in ("split", "val_split"):  # list files kept in the repository: their names
        if isinstance(train.get(key), list):
            train[key] = [Path(s).name if Path(s).suffix else s for s in train[key]]
    if "config" in train:  # keep the recipe (fine-tuning reads it), not this machine's folders
        init = train["config"].get("init")  # a shipped name stays; a file keeps its run folder and name
        if init and Path(init).suffix:
            init = "/".join(Path(init).parts[-2:])
        train["config"] = train["config"] | {"data": train["data"], "out": None, "init": init,
                                             "split": train.get("split"), "val_split": val}
    if args.pruning_record and "pruning" not in train:
        _, source, _ = load_checkpoint(args.pruning_record)
        if "pruning" not in source.train:
            raise SystemExit(f"error: {args.pruning_record} has no pruning record (train['pruning'])")
        train["pruning"] = source.train["pruning"]
    if train.get("pruning", {}).get("pruned_from"):  # a shipped model by name, a run by its folder and file
        origin = Path(train["pruning"]["pruned_from"])
        train["pruning"] = train["pruning"] | {
            "pruned_from": origin.stem if origin.parent == WEIGHTS_DIR else "/".join(origin.parts[-2:])}
    train["command"] = args.command or train.get("command")
    if args.note:
        train["note"] = args.note
    if args.honest_val_from:
        _, before, _ = load_checkpoint(args.honest_val_from)
        train["val_before_trainval"] = dict(before.metrics)
    meta = meta.replace(metrics=metrics, train=train)
    pt = save_checkpoint(WEIGHTS_DIR / f"{args.name}.pt", model, meta)
    onnx = export_onnx(model, meta, WEIGHTS_DIR / f"{args.name}.onnx")
    print(json.dumps({"pt": str(pt), "onnx": str(onnx), "metrics": metrics}))
    if args.int8:
        from edgeirst.quantize import QuantConfig, parse_max_drop, quantize_model

        budget = {"max_drop": parse_max_drop(args.max_drop)} if args.max_drop else {}
        result = quantize_model(onnx, WEIGHTS_DIR / f"{args.name}-int8.onnx",
                                QuantConfig(data=args.data[0], split=_first(train.get("split", "train")),
                                            val_split=args.val_split[0],
                                            **budget), progress=False)
        print(json.dumps({k: v for k, v in result.to_dict().items() if k not in ("decisions", "kept_float")}, default=str))
        if not any(d.get("precision") == "int8" for d in result.decisions):
            result.path.unlink()  # every node stayed float: it would be an FP32 model under an INT8 name
            print(f"not shipped: {result.path.name} has no int8 node left (the accuracy guard kept all float)")
    if args.alias:
        table = aliases() | {a: args.name for a in args.alias}
        write_text(WEIGHTS_DIR / "aliases.json", json.dumps(dict(sorted(table.items())), indent=1) + "\n")


def _first(split):
    """The first dataset's split (INT8 calibration and its guard read one dataset)."""
    return split if isinstance(split, str) else split[0]


if __name__ == "__main__":
    try:
        main()
    except EdgeirstError as e:  # bad input: one line, as the CLI says it
        raise SystemExit(f"error: {e}") from None
    except OSError as e:  # an unwritable weights folder, a full disk: one line naming the path
        from edgeirst.io import os_error

        raise SystemExit(f"error: {os_error(e, action='access')}") from None
