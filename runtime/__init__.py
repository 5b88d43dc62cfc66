"""edgeirst.runtime: run a deployed model on a stream.

``load_backend(model, backend="auto", **options)`` loads a ``.pt``/``.onnx``/``.engine`` file
(or ``default``) on torch, onnxruntime or TensorRT; sources, the tracker, sinks and the pipeline
live in their own modules. Nothing here imports torch (the torch backend does, lazily).
"""

from edgeirst.runtime.backends import Backend, TensorInfo, load_backend

__all__ = ["Backend", "TensorInfo", "load_backend"]
