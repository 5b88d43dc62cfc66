"""CUDA buffers of edgeirst's TensorRT backend (``edgeirst.runtime.cuda``) on a real GPU, for each
binding that imports there (pycuda, cuda-python, libcudart through ctypes): a device, a stream,
a copied and a mapped buffer through ``round_trip``. Run on a lent GPU machine beside the
training runs (``PYTHONPATH`` at the installed wheel): python3 benchmarks/xscene/gpu/cuda_check.py"""

from __future__ import annotations

from edgeirst.runtime.cuda import CudaDevice, available_apis, round_trip


def main() -> int:
    apis = available_apis()
    print("bindings that import:", apis)
    bad = 0
    for api in apis:
        try:
            dev = CudaDevice(0, api=api)
            print(f"{api}: {dev.name} cc {dev.compute_capability} integrated={dev.integrated}")
            for mapped in (False, True):
                ok = round_trip(dev, mapped)
                print(f"  mapped={mapped}: round trip {'ok' if ok else 'WRONG'}")
                bad += not ok
            dev.close()
        except Exception as e:  # noqa: BLE001 - report every binding, then fail
            print(f"{api}: FAILED {type(e).__name__}: {e}")
            bad += 1
    return 1 if bad or not apis else 0


if __name__ == "__main__":
    raise SystemExit(main())
