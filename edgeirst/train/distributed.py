"""Data-parallel training with torch.distributed: gloo on CPU, nccl on CUDA.

Two ways in: ``edgeirst train ... --nproc N`` spawns N local workers itself, or an external
launcher (``torchrun --nproc-per-node N -m edgeirst train ...``) sets RANK/WORLD_SIZE and each
process joins from the environment.
"""

from __future__ import annotations

import os
import socket
from contextlib import closing

import torch
import torch.distributed as dist


def launched_externally() -> bool:
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def backend_for(device: torch.device) -> str:
    return "nccl" if device.type == "cuda" else "gloo"


def init(rank: int, world: int, device: torch.device, port: int | None = None) -> None:
    """Join the process group (from the environment when launched by torchrun)."""
    if launched_externally():
        dist.init_process_group(backend_for(device))
    else:
        dist.init_process_group(backend_for(device), init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def all_gather_object(obj) -> list:
    """Every rank's ``obj``, in rank order (a one-element list when not distributed)."""
    if not dist.is_initialized():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
