"""Dataset-level evaluation loops shared by ``edgeirst eval``, the trainer and ``bench``.

``evaluate_backend`` runs a loaded runtime backend over a dataset (prepare -> infer -> decode
-> ``Evaluator``); ``fit_confidence`` fits a segmentation model's calibrated confidence (``edgeirst.confidence``)
on a dataset; ``evaluate_predictions`` scores saved probability maps (``<id>.png``, 8-bit,
value/255 = probability) from any model. Both return ``(metrics, roc_rows)`` as defined in
``edgeirst.metrics``. numpy + OpenCV only (a backend may use torch internally).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import cv2
import numpy as np

from edgeirst.confidence import FEATURES, LOGIT_OUTPUT, component_features, fit_logistic
from edgeirst.errors import EdgeirstError
from edgeirst.meta import BOX_DECODERS
from edgeirst.metrics import Evaluator, components_cropped, match_targets
from edgeirst.postprocess import Prediction, cluster_targets, components, decode_outputs
from edgeirst.preprocess import prepare, refuse_over_memory, to_unit
from edgeirst.progress import progress_bar

AP_SCORE_FLOOR = 0.05


class MaskDataset(Protocol):
    """What evaluation needs of a dataset (``edgeirst.data.sirst.SirstDataset`` is one):
    ``len(ds)`` and ``ds[i]`` with ``.id``, ``.image`` and a bool ``.mask`` at source size."""

    def __len__(self) -> int: ...

    def __getitem__(self, i: int) -> Any: ...


def _run(dataset: MaskDataset, predict: Callable[[Any], Prediction], evaluator: Evaluator,
         desc: str, progress: bool) -> tuple[dict, list[dict]]:
    with progress_bar(total=len(dataset), desc=desc, unit="img", file=sys.stderr, disable=not progress,
              dynamic_ncols=True, leave=False) as bar:  # closed (and cleared) before any error prints
        for i in range(len(dataset)):
            sample = dataset[i]
            evaluator.update(sample.mask, predict(sample))
            bar.update()
    return evaluator.compute(), evaluator.roc()


def evaluate_backend(backend: Any, dataset: MaskDataset, threshold: float | None = None,
                     roc_thresholds: Sequence[float] | None = None, progress: bool = True,
                     det_threshold: float | None = None) -> tuple[dict, list[dict]]:
    """Run ``backend`` (``edgeirst.runtime.load_backend``) on every image of ``dataset``.

    ``threshold`` (default: the model's own) sets the foreground for IoU, nIoU, Pd and Fa and
    the clustering of segmentation maps. Box decoders (CenterNet, YOLO) keep detections down to
    ``det_threshold`` (default ``min(threshold, 0.05)``) so that AP ranks the low-score tail as
    COCO intends; their rasterised boxes still enter the pixel metrics at ``threshold``.
    """
    meta = backend.meta
    thr = meta.threshold if threshold is None else float(threshold)
    decode_thr = thr
    if meta.decode in BOX_DECODERS:
        decode_thr = min(thr, AP_SCORE_FLOOR) if det_threshold is None else float(det_threshold)

    def predict(sample: Any) -> Prediction:
        return predict_sample(backend, sample, decode_thr)

    return _run(dataset, predict, Evaluator(thr, roc_thresholds), f"eval {meta.name}", progress)


def _infer(backend: Any, sample: Any) -> tuple[dict[str, np.ndarray], Any]:
    """One dataset sample through ``backend`` as evaluation runs it -> (raw outputs, its Letterbox)."""
    refuse_over_memory(sample.image, backend.meta, f"image {sample.id}")
    x, box = prepare(sample.image, backend.meta)
    return backend.infer(x[None]), box


def predict_sample(backend: Any, sample: Any, threshold: float | None = None) -> Prediction:
    """One dataset sample through ``backend`` as evaluation runs it -> its Prediction in source pixels."""
    out, box = _infer(backend, sample)
    return decode_outputs({k: v[0] for k, v in out.items()}, backend.meta, box, threshold)


def logit_map(backend: Any, sample: Any) -> np.ndarray:
    """A segmentation model's ``seg_logit`` for one dataset sample, in source pixels (float32)."""
    out, box = _infer(backend, sample)
    return box.map_to_source(np.ascontiguousarray(out[LOGIT_OUTPUT][0][0], np.float32))


def load_prediction(path: Path, hw: tuple[int, int], threshold: float = 0.5) -> Prediction:
    """A saved 8-bit probability map (value/255) -> Prediction; targets are its eight-connected
    clusters above ``threshold`` scored by their peak probability."""
    if not path.is_file():
        raise EdgeirstError(f"missing prediction {path}; expected one 8-bit <id>.png per image of the split")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise EdgeirstError(f"cannot read prediction {path}; expected an 8-bit PNG")
    if image.dtype != np.uint8:
        raise EdgeirstError(f"prediction {path} is {image.dtype}; expected 8-bit (probability x 255)")
    prob = to_unit(image)
    if prob.shape != tuple(hw):
        raise EdgeirstError(f"prediction {path} is {prob.shape[1]}x{prob.shape[0]} px but its image is "
                            f"{hw[1]}x{hw[0]}; save predictions at the image's own resolution")
    return Prediction(prob, cluster_targets(prob, threshold)[0])


def evaluate_predictions(dataset: MaskDataset, predictions: str | Path, threshold: float = 0.5,
                         roc_thresholds: Sequence[float] | None = None,
                         progress: bool = True) -> tuple[dict, list[dict]]:
    """Score saved predictions ``<predictions>/<id>.png`` against ``dataset``'s masks."""
    folder = Path(predictions).expanduser()
    if not folder.is_dir():
        raise EdgeirstError(f"predictions folder {folder} does not exist; expected a folder of <id>.png maps")
    missing = [folder / f"{i}.png" for i in getattr(dataset, "ids", []) if not (folder / f"{i}.png").is_file()]
    if missing:
        raise EdgeirstError(f"missing prediction {missing[0]}" + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")
                            + f"; expected one 8-bit <id>.png per image of the split ({len(dataset)} images)")

    def predict(sample: Any) -> Prediction:
        return load_prediction(folder / f"{sample.id}.png", sample.mask.shape, threshold)

    return _run(dataset, predict, Evaluator(threshold, roc_thresholds), f"eval {folder.name}", progress)


def has_logit(meta: Any) -> bool:
    """The model is a segmenter with a ``seg_logit`` output (what a calibrated confidence is fitted on)."""
    return meta.decode == "cluster" and LOGIT_OUTPUT in meta.outputs


def fit_confidence(backend: Any, dataset: Any, progress: bool = True) -> dict[str, Any]:
    """Run ``backend`` (a segmentation model with a ``seg_logit`` output) over ``dataset`` and
    fit the confidence of its components -> the ``decode_args["confidence"]`` entry."""
    meta = backend.meta
    if not has_logit(meta):
        raise EdgeirstError(f"{meta.name}: confidence calibration needs a segmentation model with a {LOGIT_OUTPUT!r} "
                            "output; re-export it with this edgeirst (`edgeirst export CHECKPOINT.pt`)")
    feats, labels = [], []
    for i in progress_bar(range(len(dataset)), desc="calibrate", unit="img", file=sys.stderr, disable=not progress, leave=False):
        sample = dataset[i]
        logit = logit_map(backend, sample)
        n, lab, _, cents = components(logit > 0)
        if n <= 1:
            continue
        _, gt_cents = components_cropped(np.asarray(sample.mask) > 0)
        feats.append(component_features(logit, lab, n))
        labels.append(match_targets(gt_cents, cents[1:]).astype(np.float64))
    if not feats:
        raise EdgeirstError("the model found no component on the calibration images: nothing to calibrate")
    x, y = np.concatenate(feats), np.concatenate(labels)
    if y.min() == y.max():
        raise EdgeirstError(f"calibration needs both true targets and false alarms; the {len(y)} components found "
                            f"are all {'true' if y[0] else 'false'} (add images with targets and background frames)")
    coef, bias = fit_logistic(x, y)
    return {"features": list(FEATURES), "coef": [float(c) for c in coef], "bias": bias,
            "components": int(len(y)), "true": int(y.sum())}
