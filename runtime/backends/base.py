"""The backend protocol: one ``Backend`` base class that validates, subclasses that infer.

Polygraphy's runner shape: ``infer()`` checks names, shapes and dtypes against the model's
declared inputs, then calls ``_infer_impl()``; optional libraries (onnxruntime, torch,
tensorrt, pycuda) are imported inside ``load()`` so importing this module costs nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

from edgeirst.errors import EdgeirstError
from edgeirst.meta import ModelMeta

Dim = Union[int, str, None]  # a fixed size, a symbolic name, or unknown


# what backends say when an allocation fails (onnxruntime: RuntimeException/Fail "bad_alloc",
# "Failed to allocate memory"; CUDA and TensorRT: "out of memory")
ALLOCATION_WORDS = ("bad_alloc", "failed to allocate", "out of memory", "cannot allocate memory")


def is_allocation_failure(e: BaseException) -> bool:
    return isinstance(e, MemoryError) or any(w in str(e).lower() for w in ALLOCATION_WORDS)


class OutOfMemory(EdgeirstError):
    """An inference that could not get its memory: the input is too large for what this process
    may use now. A stream skips that frame and goes on."""


@dataclass(frozen=True)
class TensorInfo:
    """One model input or output: name, shape (ints for fixed dims, str/None for dynamic), dtype."""

    name: str
    shape: tuple[Dim, ...]
    dtype: np.dtype

    def matches(self, shape: tuple[int, ...]) -> bool:
        if len(shape) != len(self.shape):
            return False
        return all(not isinstance(d, int) or d < 0 or d == s for d, s in zip(self.shape, shape))

    def describe(self) -> str:
        dims = ",".join(str(d) if isinstance(d, int) and d >= 0 else (d or "?") for d in self.shape)
        return f"{self.name}[{dims}]:{np.dtype(self.dtype).name}"


class Backend:
    """A loaded model that turns an NxCxHxW float32 batch into its named outputs (batch kept).

    Subclasses set ``inputs``/``outputs`` in ``load()`` and implement ``_infer_impl``.
    Use as a context manager, or call ``close()``.
    """

    name = "base"

    def __init__(self, path: Path, meta: ModelMeta | None = None) -> None:
        self.path = Path(path)
        self.meta: ModelMeta = meta  # type: ignore[assignment]  # set by load() when None
        self.inputs: list[TensorInfo] = []
        self.outputs: list[TensorInfo] = []
        self._buffers: dict[tuple[int, ...], np.ndarray] = {}
        self._closed = False
        # seconds of the last inference by phase, where the backend can tell them apart (a GPU
        # backend: "h2d", "compute", "d2h"); empty when copies are not separate (a CPU backend)
        self.last_timing: dict[str, float] = {}

    # -- lifecycle ---------------------------------------------------------------------
    def load(self) -> "Backend":
        raise NotImplementedError

    def close(self) -> None:
        self._buffers.clear()
        self._closed = True

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- buffers -------------------------------------------------------------------------
    def input_buffer(self, shape: tuple[int, ...]) -> np.ndarray:
        """A pre-allocated NxCxHxW float32 buffer that preprocessing writes into directly.

        Reused while the shape stays the same (GPU backends hand out page-locked memory)."""
        shape = tuple(int(s) for s in shape)
        buf = self._buffers.get(shape)
        if buf is None:
            self._buffers.clear()
            buf = self._buffers[shape] = self._allocate_input(shape)
        return buf

    def _allocate_input(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.zeros(shape, np.float32)

    # -- inference -------------------------------------------------------------------------
    def infer(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Run one batch. Raises EdgeirstError when the batch does not fit the model."""
        if self._closed:
            raise EdgeirstError(f"{self.name} backend for {self.path.name} is closed")
        self.validate(batch)
        try:
            if batch.shape[0] > 1 and self.inputs[0].shape[0] == 1:
                # a model exported with batch 1: run the frames one by one, keep the batch dimension
                parts = [self._infer_impl(batch[i:i + 1]) for i in range(batch.shape[0])]
                out = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
            else:
                out = self._infer_impl(batch)
        except Exception as e:  # noqa: BLE001 - only allocation failures are translated, the rest re-raised
            if isinstance(e, EdgeirstError) or not is_allocation_failure(e):
                raise
            size = re.search(r"buffer of size (\d+)", str(e))
            cause = f"a buffer of {int(size.group(1)) / 2**20:.0f} MiB" if size else type(e).__name__
            raise OutOfMemory(f"{self.name} could not allocate the memory for a {batch.shape[3]}x{batch.shape[2]} "
                              f"input ({cause}); --fixed-size runs every frame at the model's input size") from None
        missing = [n for n in self.meta.outputs if n not in out]
        if missing:
            raise RuntimeError(f"{self.name} backend returned {sorted(out)}, missing {missing}")
        return {n: out[n] for n in self.meta.outputs}

    def validate(self, batch: np.ndarray) -> None:
        spec = self.inputs[0]
        if not isinstance(batch, np.ndarray):
            raise EdgeirstError(f"expected a numpy array for input {spec.name!r}, got {type(batch).__name__}")
        if batch.dtype != np.float32:
            raise EdgeirstError(f"input {spec.name!r} must be float32, got {batch.dtype}; "
                                "use edgeirst.preprocess.prepare() to build the batch")
        if batch.ndim != 4:
            raise EdgeirstError(f"input {spec.name!r} must be NxCxHxW, got shape {batch.shape}")
        shape = batch.shape if spec.shape[0] != 1 else (1,) + batch.shape[1:]
        if not spec.matches(shape):
            raise EdgeirstError(f"input {spec.name!r} expects shape {spec.describe()}, got {list(batch.shape)}"
                                + ("" if self.meta.dynamic else f"; this model needs input_size {list(self.meta.input_size)}"
                                   " (use a fixed Letterbox)"))
        if batch.shape[1] != self.meta.in_chans:
            raise EdgeirstError(f"model takes {self.meta.in_chans} channel(s), batch has {batch.shape[1]}")
        d = self.meta.size_divisor
        if self.meta.dynamic and (batch.shape[2] % d or batch.shape[3] % d):
            raise EdgeirstError(f"input height/width must be multiples of {d}, got {batch.shape[2]}x{batch.shape[3]}")

    def _infer_impl(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def __repr__(self) -> str:
        ins = ", ".join(t.describe() for t in self.inputs)
        outs = ", ".join(t.describe() for t in self.outputs)
        return f"<{type(self).__name__} {self.path.name}: {ins} -> {outs}>"
