"""The model zoo: ``create_model(name, **kwargs)`` and ``list_models()``.

One level of name -> factory lookup in a plain dict; every family module is imported
explicitly here. Every model takes ``in_chans`` (default 1), returns a dict of named output
tensors and carries a ``spec`` (``edgeirst.models.base.ModelSpec``) saying its tasks, its
inference outputs and how they decode.
"""

from __future__ import annotations

import difflib

from torch import nn

from edgeirst.errors import EdgeirstError
from edgeirst.models import dnanet, light_sgmtlm, mlsa_yolov8, mshnet, mtunet
from edgeirst.models.base import ModelSpec

_MODELS = {
    "mshnet": mshnet.mshnet,
    "dnanet": dnanet.dnanet,
    "mlsa-yolov8": mlsa_yolov8.mlsa_yolov8,
    "mtunet": mtunet.mtunet,
    "mtunet-det": mtunet.mtunet_det,
    "mtunet-seg": mtunet.mtunet_seg,
    "mtunet-siwd": mtunet.mtunet_siwd,
    "light-sgmtlm": light_sgmtlm.light_sgmtlm,
    "light-sgmtlm-tiny": light_sgmtlm.light_sgmtlm_tiny,
}

# Figures reported by the papers / official code, shown beside our counts by `edgeirst zoo`.
# params in millions; gflops = multiply-adds (GMACs, as the papers count) at `size`, 3-channel input.
PAPER_FIGURES: dict[str, dict] = {
    "mshnet": {"params_m": 4.066, "gflops": 6.0, "size": 256, "source": "official code"},
    "dnanet": {"params_m": 4.697, "gflops": 13.9, "size": 256, "source": "official code (resnet_18, deep supervision)"},
    "mlsa-yolov8": {"params_m": None, "gflops": None, "size": 320,
                    "source": "no paper figures on hand; ours is scale n (width 0.25, depth 0.33), the Ultralytics "
                              "yolov8n-p2 layout with 1 class (yolov8n-p2 with 80 classes: 3.354M params)"},
    "mtunet": {"params_m": 29.06, "gflops": 88.78, "size": 320, "source": "paper"},
    "mtunet-det": {"params_m": 29.06, "gflops": 86.85, "size": 320, "source": "paper"},
    "mtunet-seg": {"params_m": 29.05, "gflops": 77.38, "size": 320, "source": "paper"},
    "mtunet-siwd": {"params_m": None, "gflops": None, "size": 320,
                    "source": "ours (no paper figures): mtunet with SIWD encoder stages"},
    "light-sgmtlm": {"params_m": 45.53, "gflops": 19.68, "size": 320, "source": "paper (thop MACs)"},
    "light-sgmtlm-tiny": {"params_m": 0.49, "gflops": 0.26, "size": 320, "source": "paper (thop MACs)"},
}


def list_models() -> list[str]:
    return sorted(_MODELS)


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model. Unknown names raise an EdgeirstError with close matches."""
    try:
        factory = _MODELS[name]
    except KeyError:
        close = difflib.get_close_matches(name, _MODELS, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise EdgeirstError(f"unknown model {name!r}{hint} (available: {', '.join(list_models())})") from None
    try:
        return factory(**kwargs)
    except TypeError as e:
        raise EdgeirstError(f"bad arguments for model {name!r}: {e}") from None


__all__ = ["ModelSpec", "PAPER_FIGURES", "create_model", "list_models"]
