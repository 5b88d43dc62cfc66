"""PyTorch backend for ``.pt`` checkpoints: rebuilds the network from its metadata
(``create_model(meta.name, **meta.kwargs)``), loads the weights, runs in eval mode and returns
only the inference outputs (``meta.outputs``). torch is imported inside ``load()``: the rest
of the runtime never imports it."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import numpy as np

from edgeirst.errors import EdgeirstError, missing_extra
from edgeirst.meta import ModelMeta
from edgeirst.runtime.backends.base import Backend, TensorInfo


def read_checkpoint(path: Path) -> dict:
    """``{"meta": dict, "state_dict": ...}`` from a .pt file, or an EdgeirstError saying why not."""
    import torch

    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, zipfile.BadZipFile, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise EdgeirstError(f"{path} is not a loadable PyTorch checkpoint ({first[:200]})") from None
    if not isinstance(ckpt, dict) or "meta" not in ckpt or "state_dict" not in ckpt:
        raise EdgeirstError(f"{path} is not an edgeirst checkpoint: expected a dict with 'meta' and 'state_dict' "
                            "(save with edgeirst train, or torch.save({'meta': meta.to_dict(), 'state_dict': ...}))")
    return ckpt


class TorchBackend(Backend):
    """Options: ``device`` ("cpu", "cuda", "cuda:1"; default cpu), ``threads`` (0 = torch default)."""

    name = "torch"

    def __init__(self, path: Path, meta: ModelMeta | None = None, device: str = "cpu", threads: int = 0) -> None:
        super().__init__(path, meta)
        self.device_name = device
        self.threads = threads
        self.model = None

    def load(self) -> "TorchBackend":
        try:
            import torch
        except ImportError:
            raise missing_extra("torch", "train") from None
        from edgeirst.models import create_model

        ckpt = read_checkpoint(self.path)
        if self.meta is None:
            self.meta = ModelMeta.from_dict(ckpt["meta"])
        if self.threads:
            torch.set_num_threads(int(self.threads))
        model = create_model(self.meta.name, **self.meta.kwargs)
        try:
            model.load_state_dict(ckpt["state_dict"])
        except RuntimeError as e:
            raise EdgeirstError(f"{self.path}: weights do not fit {self.meta.name}({self.meta.kwargs}): "
                                f"{str(e).splitlines()[0][:200]}") from None
        self._torch = torch
        self.device = torch.device(self.device_name)
        self.model = model.eval().to(self.device)
        dims = ("batch", self.meta.in_chans, "height", "width") if self.meta.dynamic else \
            ("batch", self.meta.in_chans) + tuple(self.meta.input_size)
        self.inputs = [TensorInfo("images", dims, np.dtype(np.float32))]
        self.outputs = [TensorInfo(n, ("batch", None, "height", "width"), np.dtype(np.float32)) for n in self.meta.outputs]
        return self

    def _infer_impl(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        torch = self._torch
        with torch.inference_mode():
            out = self.model(torch.from_numpy(batch).to(self.device))
        if not isinstance(out, dict):
            out = {self.meta.outputs[0]: out}
        return {n: out[n].float().cpu().numpy() for n in self.meta.outputs if n in out}

    def close(self) -> None:
        self.model = None
        super().close()
