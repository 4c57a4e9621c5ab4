"""Where and how a process computes: the device, bf16 or fp32, and its rank under ``torchrun``."""

from __future__ import annotations

import os
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from .config import Precision


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 autocast is fast here: GPUs with bf16, CPUs with AVX512-BF16 or AMX."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return torch.backends.mkldnn.is_available() and torch.ops.mkldnn._is_mkldnn_bf16_supported()


def process_rank() -> int:
    """This process's rank in a ``torchrun`` job (0 when it runs alone)."""
    return int(os.environ.get("RANK", "0"))


@dataclass
class Runtime:
    """Where and how this process computes: device, precision, DDP rank."""

    device: torch.device
    bf16: bool
    rank: int = 0
    world_size: int = 1

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def cuda(self) -> bool:
        return self.device.type == "cuda"

    def autocast(self) -> Any:
        return torch.autocast(self.device.type, dtype=torch.bfloat16) if self.bf16 else nullcontext()


def setup_runtime(precision: Precision) -> Runtime:
    """Pick the device (CUDA when present), join the process group when run under ``torchrun``
    (nccl on GPUs, gloo on CPUs), and set the fast-math switches."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if torch.cuda.is_available():
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    else:
        device = torch.device("cpu")
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", str(world_size)))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    if world_size > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    # CPUs with AVX512-BF16 or AMX run bf16 convolutions about twice as fast (benchmarks/train.py).
    bf16 = precision == "bf16" or (precision == "auto" and native_bf16(device))
    return Runtime(device=device, bf16=bf16, rank=process_rank(), world_size=world_size)
