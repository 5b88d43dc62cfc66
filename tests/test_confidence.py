"""Scores that rank: the calibrated confidence of segmentation targets (``edgeirst.confidence``),
its use in decoding, and ``edgeirst calibrate`` end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from edgeirst.confidence import component_features, confidence_of, fit_logistic, threshold_for_budget
from edgeirst.meta import ModelMeta
from edgeirst.postprocess import components, decode_outputs
from edgeirst.preprocess import Letterbox

CALIB = {"features": ["peak_logit", "mean_logit", "log_area"], "coef": [0.2, 0.0, 0.0], "bias": -6.0}


def _logit_map() -> np.ndarray:
    logit = np.full((40, 40), -8.0, np.float32)
    logit[5:9, 5:9] = 45.0  # a confident 16-pixel target
    logit[20, 20] = 12.0  # a one-pixel blob the sigmoid also saturates on
    return logit


def test_features_per_component_by_hand() -> None:
    logit = _logit_map()
    logit[6, 6] = 70.0
    n, labels, _, _ = components(logit > 0)
    f = component_features(logit, labels, n)
    assert f.shape == (2, 3)
    assert f[0, 0] == pytest.approx(60.0)  # peak clipped at LOGIT_CLIP
    assert f[0, 1] == pytest.approx((15 * 45.0 + 60.0) / 16)
    assert f[0, 2] == pytest.approx(math.log(16)) and f[1].tolist() == pytest.approx([12.0, 12.0, 0.0])


def test_decoding_ranks_by_confidence_and_thresholds_agree() -> None:
    logit = _logit_map()
    meta = ModelMeta("mshnet", outputs=("seg", "seg_logit"), decode="cluster", threshold=0.5,
                     decode_args={"confidence": CALIB})
    outs = {"seg": (1 / (1 + np.exp(-logit)))[None], "seg_logit": logit[None]}
    box = Letterbox(src_hw=(40, 40), dst_hw=(40, 40), scale=1.0)
    pred = decode_outputs(outs, meta, box)
    # both blobs have probability 1.000 after the sigmoid; the confidence tells them apart
    assert float(outs["seg"][0][20, 20]) > 0.99999
    strong, weak = confidence_of(np.array([[45.0, 45.0, math.log(16)], [12.0, 12.0, 0.0]]), CALIB)
    assert strong > 0.9 and weak < 0.05
    assert len(pred.targets) == 1 and pred.targets.scores[0] == pytest.approx(strong)
    # the map holds each component's confidence, so a lower threshold brings the weak one back
    assert pred.prob[20, 20] == pytest.approx(weak) and pred.prob[0, 0] == 0.0
    assert len(decode_outputs(outs, meta, box, threshold=0.01).targets) == 2
    # without the logit output (an older export) the peak probability scores as before
    plain = decode_outputs({"seg": outs["seg"]}, meta, box)
    assert len(plain.targets) == 2 and plain.targets.scores.min() > 0.99


def test_logistic_fit_separates_what_is_separable() -> None:
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(60, 8, (50, 1)), rng.normal(25, 8, (50, 1))])
    y = np.concatenate([np.ones(50), np.zeros(50)])
    coef, bias = fit_logistic(x, y)
    p = 1 / (1 + np.exp(-(x @ coef + bias)))
    assert coef[0] > 0 and p[:50].mean() > 0.8 and p[50:].mean() < 0.2


def test_threshold_for_budget_takes_the_lowest_that_fits() -> None:
    roc = [{"threshold": t, "fa_per_frame": f} for t, f in ((0.1, 0.9), (0.3, 0.25), (0.5, 0.1), (0.7, 0.0))]
    assert threshold_for_budget(roc, 0.2)["threshold"] == 0.5
    assert threshold_for_budget(roc, 1.0)["threshold"] == 0.1
    assert threshold_for_budget(roc[:2], 0.0) is None


@pytest.mark.slow  # 32 s: calibrate + eval on real images; the fitting tests above are fast (2-core VM, busy)
def test_calibrate_command_on_real_images(sirst_root: Path, tmp_path: Path) -> None:
    """A shipped model (the previous default, which raises a few false alarms on SIRST val),
    exported with its logit and calibrated on a few val images."""
    from edgeirst.cli import cli

    onnx_path = tmp_path / "d.onnx"
    runner = CliRunner()
    r = runner.invoke(cli, ["export", "mshnet-w05", "--out", str(onnx_path), "--no-check"])
    assert r.exit_code == 0, r.output
    ids = (sirst_root / "idx_427" / "val.txt").read_text().split()[:24]
    (tmp_path / "few.txt").write_text("\n".join(ids) + "\n")
    out = tmp_path / "cal.onnx"
    r = runner.invoke(cli, ["calibrate", str(onnx_path), "--data", str(sirst_root), "--split", str(tmp_path / "few.txt"),
                            "--max-fa-per-frame", "0.5", "--out", str(out), "--json", "-q"])
    if r.exit_code != 0 and "both true targets and false alarms" in str(r.exception):
        pytest.skip("these val images gave the default no false alarm to calibrate against")
    assert r.exit_code == 0, r.output
    result = json.loads(r.output.strip().splitlines()[-1])
    from edgeirst.runtime import load_backend

    with load_backend(str(out)) as be:
        assert be.meta.decode_args["confidence"]["features"] == ["peak_logit", "mean_logit", "log_area"]
        assert be.meta.threshold == result["threshold"]
    same = runner.invoke(cli, ["calibrate", str(out), "--data", str(sirst_root), "--out", str(out)])
    assert same.exit_code != 0 and "destroy" in str(same.exception)
