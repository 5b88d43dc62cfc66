"""edgeirst.jetson: Jetson device profiles and deployment bundles (``edgeirst deploy``).

Not available yet. The runtime pieces a Jetson needs (TensorRT backend, pycuda buffers with
zero-copy mapped memory, ``csi://`` camera pipelines) live in ``edgeirst.runtime``.
"""
