"""edgeirst.jetson: from a model to a detection service on a Jetson (``edgeirst deploy``).

| module | what |
|---|---|
| ``profiles`` | Jetson modules and JetPack releases as data (``--list-profiles``) |
| ``detect`` | which Jetson this is: nv_tegra_release, device tree, nvidia-l4t-core |
| ``preflight`` | host checks: precision, INT8 forms, input size, DLA, memory |
| ``bundle`` | the bundle: models, edgeirst.toml, scripts, wheel, manifest; idempotent |
| ``wheel`` | the device wheel (``edgeirst-device``, Python >= 3.8) and its dependencies' wheels, for the offline install |
| ``config`` | edgeirst.toml as dataclasses (read without tomllib on Python 3.8-3.10) |
| ``templates`` | launch.sh, install.sh, the systemd unit |
| ``remote`` | SSH push: probe, copy, install, engine build, service, first output |
| ``launch`` | on the device: engine build/cache or onnxruntime fallback, then the run |
| ``check`` | on the device: imports (OpenCV with GStreamer, no PyTorch), bundle hashes |
| ``tegrastats`` | ``parse_line`` and ``TegrastatsSampler``: power for FPS per watt (run, bench) |
| ``power`` | ``nvpmodel`` / ``jetson_clocks`` wrappers |

Nothing here imports torch or tensorrt at import time; the device side needs neither PyTorch
nor the ``train`` extra. The TensorRT backend, pycuda buffers and ``csi://`` cameras live in
``edgeirst.runtime``.
"""
