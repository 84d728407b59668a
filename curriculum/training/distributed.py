"""Data-parallel Learner workers: the torch.distributed set-up of one worker (plain Python, no Ray).

A Learner with `ray.learner.count = N > 1` is N worker processes in one process group (NCCL on
GPUs, gloo on CPU). Each worker sets the variables torchrun would (`worker_environment`) and joins
the group (`join`) before its TRL trainer is built; transformers' Trainer, through accelerate, then
wraps the model in DistributedDataParallel and shards every batch with a distributed sampler, so
each worker trains on its share of a step's pairs or groups and the gradients are all-reduced.
agents/learner_group.py starts the workers and sends each call to all of them.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import timedelta


@dataclass(frozen=True)
class WorkerSpec:
    """Where one worker stands in the group: its rank of `world_size`, and rank 0's address and port."""

    rank: int
    world_size: int
    master_addr: str
    master_port: int

    def __post_init__(self) -> None:
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} is outside a group of {self.world_size}")


def backend_for(device: str) -> str:
    return "nccl" if device == "cuda" else "gloo"


def worker_environment(spec: WorkerSpec) -> dict[str, str]:
    """What torchrun would set for this worker. LOCAL_RANK is 0 for every worker: Ray shows each
    actor only the GPU it was given (CUDA_VISIBLE_DEVICES), which is therefore always cuda:0, and
    accelerate picks the device cuda:LOCAL_RANK."""
    return {
        "RANK": str(spec.rank),
        "WORLD_SIZE": str(spec.world_size),
        "LOCAL_RANK": "0",
        "LOCAL_WORLD_SIZE": "1",
        "MASTER_ADDR": spec.master_addr,
        "MASTER_PORT": str(spec.master_port),
    }


def join(spec: WorkerSpec, device: str, timeout_s: float) -> None:
    """Set this process's distributed environment and join the group; blocks until every rank has
    joined (or `timeout_s` passes). Called once per process, before any trainer is built."""
    import torch.distributed as dist

    os.environ.update(worker_environment(spec))
    if dist.is_initialized():
        raise RuntimeError("this process has joined a process group already")
    dist.init_process_group(
        backend_for(device), rank=spec.rank, world_size=spec.world_size, timeout=timedelta(seconds=timeout_s)
    )


def leave() -> None:
    """Leave the process group (a test ending its workers; a process that ends leaves it anyway)."""
    import torch.distributed as dist

    if dist.is_initialized():
        dist.destroy_process_group()


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on `host` now, for rank 0 to listen on (torchrun picks its port the same way)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])
