"""PyTorch backend for ``.pt`` checkpoints: rebuilds the network from its metadata
(``create_model(meta.name, **meta.kwargs)``), loads the weights, runs in eval mode and returns
only the inference outputs (``meta.outputs``). torch is imported inside ``load()``: the rest
of the runtime never imports it."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edgeirst.checkpoint import load_checkpoint
from edgeirst.errors import missing_extra
from edgeirst.meta import ModelMeta
from edgeirst.runtime.backends.base import Backend, TensorInfo


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

        if self.threads:  # torch's thread count is process-wide: set while this backend lives, restored by close()
            self._threads_before = torch.get_num_threads()
            torch.set_num_threads(int(self.threads))
        model, self.meta, _ = load_checkpoint(self.path, self.meta)
        return self._adopt(model, torch.device(self.device_name))

    @classmethod
    def from_model(cls, model, meta: ModelMeta, device=None) -> "TorchBackend":
        """A backend over an in-memory model (the trainer's validation uses the same inference
        code as ``edgeirst run --backend torch``). The model is used as it is (not copied)."""
        import torch

        backend = cls(Path(f"<in-memory {meta.name}>"), meta)
        return backend._adopt(model, torch.device(device) if device is not None else next(model.parameters()).device)

    def _adopt(self, model, device) -> "TorchBackend":
        import torch

        self._torch = torch
        self.device = device
        self.model = model.eval().to(self.device)
        dims = ("batch", self.meta.in_chans, "height", "width") if self.meta.dynamic else \
            ("batch", self.meta.in_chans) + tuple(self.meta.input_size)
        self.inputs = [TensorInfo("images", dims, np.dtype(np.float32))]
        self.outputs = [TensorInfo(n, ("batch", None, "height", "width"), np.dtype(np.float32)) for n in self.meta.outputs]
        return self

    def _infer_impl(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        torch = self._torch
        cuda = self.device.type == "cuda"
        sync = torch.cuda.synchronize if cuda else (lambda: None)
        with torch.inference_mode():
            t0 = time.perf_counter()
            x = torch.from_numpy(batch).to(self.device)
            sync()
            t1 = time.perf_counter()
            out = self.model(x)
            sync()
            t2 = time.perf_counter()
        if not isinstance(out, dict):
            out = {self.meta.outputs[0]: out}
        result = {n: out[n].float().cpu().numpy() for n in self.meta.outputs if n in out}
        if cuda:  # on a GPU the copies are timed apart from the compute
            self.last_timing = {"h2d": t1 - t0, "compute": t2 - t1, "d2h": time.perf_counter() - t2}
        return result

    def close(self) -> None:
        self.model = None
        if getattr(self, "_threads_before", None):
            self._torch.set_num_threads(self._threads_before)
            self._threads_before = None
        super().close()
